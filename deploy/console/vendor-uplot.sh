#!/usr/bin/env bash
# Vendors uPlot into the console (run by hand when bumping it; nothing at build or run time fetches it):
#   deploy/console/vendor-uplot.sh 1.6.32
# `npm pack` fetches the release tarball, npm checks it against the registry's integrity hash, and the
# built files and the licence are copied with their sha256 written to SOURCE.json, which a unit test
# checks the vendored bytes against.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 UPLOT_VERSION" >&2; exit 2; }
version=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
into=$here/billing/console/static/vendor/uplot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "uplot@$version" >/dev/null)
integrity=$(cd "$work" && npm view "uplot@$version" dist.integrity)
tar -xzf "$work/uplot-$version.tgz" -C "$work"
declare -A from=([LICENSE]=package/LICENSE [uPlot.iife.min.js]=package/dist/uPlot.iife.min.js [uPlot.min.css]=package/dist/uPlot.min.css)
mkdir -p "$into"
entries=()
for name in LICENSE uPlot.iife.min.js uPlot.min.css; do
    cp "$work/${from[$name]}" "$into/$name"
    entries+=("    \"$name\": {\"from\": \"${from[$name]}\", \"sha256\": \"$(sha256sum "$into/$name" | cut -d' ' -f1)\"}")
done
{
    printf '{\n  "package": "uplot",\n  "version": "%s",\n  "licence": "MIT",\n' "$version"
    printf '  "tarball": "https://registry.npmjs.org/uplot/-/uplot-%s.tgz",\n  "integrity": "%s",\n' "$version" "$integrity"
    printf '  "files": {\n'
    (IFS=$'\n'; echo "${entries[*]}" | sed '$!s/$/,/')
    printf '  }\n}\n'
} >"$into/SOURCE.json"
echo "Vendored uplot $version into $into" >&2
