#!/usr/bin/env bash
# Builds prometheus and promtool from Prometheus' Go module into a cache outside the checkout, for
# the tests that read a real Prometheus (the autoscaler's Prometheus source, the console's charts)
# and check the chart's alert rules with promtool. Every service-discovery plugin but file and http
# is left out (the `remove_all_sd` build tag), which drops the cloud SDKs from the build; the web UI's
# assets are not embedded (the API is all the tests read).
# The folder is keyed by the version and reused when present. Prints it on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
label=prometheus
# shellcheck source=../go-build.sh
source "$here/../go-build.sh"

cache=${MODELPLEX_CACHE_DIR:-$HOME/.cache/modelplex}
root="$cache/prometheus"
dir="$root/prometheus-$PROMETHEUS_VERSION"
module=github.com/prometheus/prometheus

build() {
    say "building prometheus and promtool $PROMETHEUS_VERSION (cold: about 4 minutes on 2 cores)"
    local gobin="$dir.tmp"
    rm -rf "$gobin" && mkdir -p "$gobin"
    GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS=-trimpath go install -v -tags remove_all_sd -ldflags "-s -w" \
        "$module/cmd/prometheus@$PROMETHEUS_VERSION" "$module/cmd/promtool@$PROMETHEUS_VERSION" 2>&1 | progress prometheus
    [ -x "$gobin/prometheus" ] && [ -x "$gobin/promtool" ] || fail "go install left no prometheus/promtool in $gobin"
    rm -rf "$dir" && mv "$gobin" "$dir"
}

main() {
    local start=$SECONDS
    # One build at a time per cache; whoever waited finds the binaries built and skips.
    mkdir -p "$root"
    if command -v flock >/dev/null; then
        exec 9>"$root/.build.lock"
        flock 9
    fi
    if [ ! -x "$dir/prometheus" ] || [ ! -x "$dir/promtool" ]; then
        need_go Prometheus; check_proxy "$module" "$PROMETHEUS_VERSION"; build
        say "cold build took $((SECONDS - start)) s"
        printf '%s\n' "$((SECONDS - start))" >"$dir/.build-seconds"
    else
        say "binaries cached in $dir"
    fi
    printf '%s\n' "$dir"
}

main "$@"
