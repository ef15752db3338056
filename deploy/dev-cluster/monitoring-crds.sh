#!/usr/bin/env bash
# The prometheus-operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) from its Go module, so
# the chart's monitoring objects are validated by a real API server against the real schemas.
# Cached under the cache keyed by version; prints the folder holding them on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${MODELPLEX_CACHE_DIR:-$HOME/.cache/modelplex}
dir="$cache/cluster/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
kinds=(servicemonitors podmonitors prometheusrules)

fail() { printf '[monitoring-crds] ERROR: %s\n' "$*" >&2; exit 1; }

if [ ! -f "$dir/monitoring.coreos.com_prometheusrules.yaml" ]; then
    command -v go >/dev/null 2>&1 || fail "Go is not installed (it fetches the prometheus-operator module)."
    module=github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION
    source_dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$module" \
        | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$source_dir" ] || fail "could not download $module from the Go module proxy ($(go env GOPROXY))"
    tmp="$dir.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    for kind in "${kinds[@]}"; do
        cp "$source_dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$tmp/"
    done
    chmod -R u+w "$tmp"
    rm -rf "$dir" && mv "$tmp" "$dir"
fi
printf '%s\n' "$dir"
