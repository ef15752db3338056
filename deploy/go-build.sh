# Helpers of the build recipes that compile Go from the module proxy into ~/.cache/modelplex
# (deploy/dev-cluster/build.sh, deploy/prometheus/build.sh). Sourced; the recipe sets `label`.

say() { printf '[%s] %s\n' "$label" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

need_go() {  # what-for
    command -v go >/dev/null 2>&1 || fail "Go is not installed (needed to build $1; \
install Go >= 1.26 from your distribution or go.dev, then re-run)."
    [ "$(go env GOPROXY)" != "off" ] || fail "GOPROXY is off: the Go module proxy is needed to fetch $1's sources."
}

check_proxy() {  # module version: a cheap look-up that fails fast when the module proxy is unreachable
    if ! GOFLAGS=-mod=mod timeout 120 go list -m "$1@$2" >/dev/null 2>&1; then
        fail "the Go module proxy ($(go env GOPROXY)) did not answer for $1@$2; check network access to it."
    fi
}

progress() {  # name: turns `go build -v` package lines into a counter so long builds show life
    local name=$1 n=0 line
    while IFS= read -r line; do
        n=$((n + 1))
        case "$line" in
            *" "*|*:*) printf '%s\n' "$line" >&2 ;;  # compiler messages; package paths have neither
        esac
        if [ $((n % 50)) -eq 0 ]; then say "$name: compiled $n packages"; fi
    done
    say "$name: done ($n packages)"
}
