#!/usr/bin/env bash
# Installs the Debian packages the tests start for real (only the missing ones), when run as root.
# Each entry: a command the tests need, then the Debian package that provides it.
set -euo pipefail
needs=(
    redis-server redis-server
    chromium chromium  # the console's browser tests (driven by Playwright, which brings no browser here)
)
missing=()
for ((i = 0; i < ${#needs[@]}; i += 2)); do
    command -v "${needs[i]}" >/dev/null 2>&1 || missing+=("${needs[i + 1]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "[system-deps] missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "[system-deps] installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
