#!/usr/bin/env bash
# Regenerates deploy/requirements.lock, the package's and its dev tools' complete, hashed package set
# that `make install` installs with --require-hashes (run by hand after changing a pin in
# pyproject.toml; tests/unit/test_supply_chain.py says when it is stale):
#   deploy/lock.sh
# In a scratch virtualenv pip resolves `.[dev]` from pyproject.toml; the frozen result, without
# modelplex itself, gets the sha256 of every release file (deploy/pin_hashes.py).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
lock=$here/requirements.lock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip
# A copy of the sources: the build leaves nothing in the checkout.
git -C "$root" ls-files -z | (cd "$root" && tar --null -T - -cf -) | (mkdir "$work/src" && tar -C "$work/src" -xf -)
"${pip[@]}" install --quiet "$work/src[dev]"
{
    echo "# The package's and its dev tools' complete package set, pinned with hashes. Made by"
    echo "# deploy/lock.sh from pyproject.toml; installed by \`make install\` with --require-hashes and"
    echo "# --no-deps, then modelplex itself with --no-deps. Python $("$work/venv/bin/python" -c \
        'import platform; print(platform.python_version())') on Linux resolved it."
    "${pip[@]}" freeze --all | grep -v '^modelplex[= @]' | sort -f
} >"$work/requirements.lock"
python3 "$here/pin_hashes.py" "$work/requirements.lock"
mv "$work/requirements.lock" "$lock"
echo "Wrote $lock ($(grep -c '^[A-Za-z]' "$lock") packages)" >&2
