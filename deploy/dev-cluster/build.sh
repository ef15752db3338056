#!/usr/bin/env bash
# Builds the test control plane from the Go module proxy into a cache outside the checkout:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler (from this wrapper module),
# kwok, the LeaderWorkerSet controller with its CRDs, and helm (plain `go install`).
# Each component lives in a folder keyed by its version and is reused when present.
# Prints the folder holding every binary on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${MODELPLEX_CACHE_DIR:-$HOME/.cache/modelplex}
root="$cache/cluster"
bin="$root/bin-k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-lws-$LWS_VERSION-helm-$HELM_VERSION"

say() { printf '[dev-cluster] %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

need_go() {
    command -v go >/dev/null 2>&1 || fail "Go is not installed (needed to build the test control plane; \
install Go >= 1.26 from your distribution or go.dev, then re-run)."
    local proxy
    proxy=$(go env GOPROXY)
    [ "$proxy" != "off" ] || fail "GOPROXY is off: the Go module proxy is needed to fetch Kubernetes sources."
}

check_proxy() {
    # A cheap look-up that fails fast when the module proxy is unreachable.
    if ! GOFLAGS=-mod=mod timeout 120 go list -m "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null 2>&1; then
        fail "the Go module proxy ($(go env GOPROXY)) did not answer for k8s.io/kubernetes@$KUBERNETES_VERSION; \
check network access to it."
    fi
}

stamp() {
    local minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    local pkg=k8s.io/component-base/version
    local date
    date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    printf -- '-s -w -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=%s' \
        "$pkg" "$KUBERNETES_VERSION" "$pkg" "$pkg" "$minor" "$pkg" "$pkg" "$date"
}

build_kubernetes() {
    say "building etcd $ETCD_VERSION and Kubernetes $KUBERNETES_VERSION control plane (cold: tens of minutes on 2 cores)"
    local tmp="$bin.tmp-k8s"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$here" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$(stamp)" -o "$tmp/" \
        ./cmd/etcd \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler) 2>&1 | progress "k8s"
    mv "$tmp"/* "$bin/" && rmdir "$tmp"
}

go_install() {  # name module-path version output-name
    local name=$1 pkg=$2 version=$3 out=$4
    say "building $name $version"
    local gobin="$bin.tmp-$out"
    rm -rf "$gobin" && mkdir -p "$gobin"
    GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS=-trimpath go install -v -ldflags "-s -w" "$pkg@$version" 2>&1 | progress "$name"
    mv "$gobin"/* "$bin/$out" && rmdir "$gobin"
}

progress() {  # turns `go build -v` package lines into a counter so long builds show life
    local label=$1 n=0 line
    while IFS= read -r line; do
        n=$((n + 1))
        case "$line" in
            *" "*|*:*) printf '%s\n' "$line" >&2 ;;  # compiler messages; package paths have neither
        esac
        if [ $((n % 50)) -eq 0 ]; then say "$label: compiled $n packages"; fi
    done
    say "$label: done ($n packages)"
}

module_dir() {  # module version -> its source folder in the module cache
    local dir
    dir=$(cd "$(mktemp -d)" && go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || fail "could not download $1@$2 from the Go module proxy"
    printf '%s\n' "$dir"
}

release_manifests() {
    # Manifests the upstream projects publish in their modules: LWS's CRDs and kwok's stages
    # (node lifecycle with leases, pods Running once scheduled).
    local lws kwok
    lws=$(module_dir sigs.k8s.io/lws "$LWS_VERSION")
    kwok=$(module_dir sigs.k8s.io/kwok "$KWOK_VERSION")
    local tmp="$bin.tmp-manifests"
    rm -rf "$tmp" && mkdir -p "$tmp/lws-crds" "$tmp/kwok-stages"
    cp "$lws"/config/crd/bases/*.yaml "$tmp/lws-crds/"
    cp "$kwok"/kustomize/stage/node/fast/node-initialize.yaml \
        "$kwok"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        "$kwok"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml "$tmp/kwok-stages/"
    chmod -R u+w "$tmp"
    mv "$tmp/lws-crds" "$tmp/kwok-stages" "$bin/" && rmdir "$tmp"
}

main() {
    mkdir -p "$bin"
    local start=$SECONDS built=0
    if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/etcd" ] || [ ! -x "$bin/kube-scheduler" ] \
        || [ ! -x "$bin/kube-controller-manager" ]; then
        need_go; check_proxy; build_kubernetes; built=1
    fi
    if [ ! -x "$bin/kwok" ]; then need_go; go_install kwok "sigs.k8s.io/kwok/cmd/kwok" "$KWOK_VERSION" kwok; built=1; fi
    if [ ! -x "$bin/lws-controller" ]; then need_go; go_install lws "sigs.k8s.io/lws/cmd" "$LWS_VERSION" lws-controller; built=1; fi
    if [ ! -d "$bin/kwok-stages" ]; then need_go; release_manifests; built=1; fi
    if [ ! -x "$bin/helm" ]; then need_go; go_install helm "helm.sh/helm/v3/cmd/helm" "$HELM_VERSION" helm; built=1; fi
    if [ "$built" = 1 ]; then
        say "cold build took $((SECONDS - start)) s"
        printf '%s\n' "$((SECONDS - start))" >"$bin/.build-seconds"
    else
        say "binaries cached in $bin"
    fi
    printf '%s\n' "$bin"
}

main "$@"
