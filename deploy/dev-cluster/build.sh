#!/usr/bin/env bash
# Builds the test control plane from the Go module proxy into a cache outside the checkout:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler (from this wrapper module),
# the LeaderWorkerSet controller (from lws/, a wrapper module) with its CRDs, kwok and helm
# (plain `go install`).
# Each component lives in a folder keyed by its version and is reused when present.
# Prints the folder holding every binary on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
label=dev-cluster
# shellcheck source=../go-build.sh
source "$here/../go-build.sh"

cache=${MODELPLEX_CACHE_DIR:-$HOME/.cache/modelplex}
root="$cache/cluster"
# One folder per component and version; `bin` links them together for one set of versions.
k8s_dir="$root/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
kwok_dir="$root/kwok-$KWOK_VERSION"
lws_dir="$root/lws-$LWS_VERSION"
helm_dir="$root/helm-$HELM_VERSION"
bin="$root/bin-k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-lws-$LWS_VERSION-helm-$HELM_VERSION"

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
    local tmp="$k8s_dir.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$here" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$(stamp)" -o "$tmp/" \
        ./cmd/etcd \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler) 2>&1 | progress "k8s"
    rm -rf "$k8s_dir" && mv "$tmp" "$k8s_dir"
}

build_lws() {
    say "building the LeaderWorkerSet controller $LWS_VERSION"
    local tmp="$lws_dir.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$here/lws" && CGO_ENABLED=0 go build -v -trimpath -ldflags "-s -w" -o "$tmp/lws-controller" \
        sigs.k8s.io/lws/cmd) 2>&1 | progress lws
    mkdir -p "$lws_dir" && mv "$tmp/lws-controller" "$lws_dir/" && rmdir "$tmp"
}

go_install() {  # name module-path version output-folder output-name
    local name=$1 pkg=$2 version=$3 dir=$4 out=$5
    say "building $name $version"
    local gobin="$dir.tmp"
    rm -rf "$gobin" && mkdir -p "$gobin"
    GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS=-trimpath go install -v -ldflags "-s -w" "$pkg@$version" 2>&1 | progress "$name"
    mkdir -p "$dir" && mv "$gobin"/* "$dir/$out" && rmdir "$gobin"
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
    local tmp="$root/manifests.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp/lws-crds" "$tmp/kwok-stages"
    cp "$lws"/config/crd/bases/*.yaml "$tmp/lws-crds/"
    cp "$kwok"/kustomize/stage/node/fast/node-initialize.yaml \
        "$kwok"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        "$kwok"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml "$tmp/kwok-stages/"
    chmod -R u+w "$tmp"
    mkdir -p "$lws_dir" "$kwok_dir"
    rm -rf "$lws_dir/lws-crds" "$kwok_dir/kwok-stages"
    mv "$tmp/lws-crds" "$lws_dir/" && mv "$tmp/kwok-stages" "$kwok_dir/" && rmdir "$tmp"
}

main() {
    local start=$SECONDS built=0
    # One build at a time per cache (a test run and `make cluster-binaries` may start together);
    # whoever waited finds the binaries built and skips.
    if command -v flock >/dev/null; then
        mkdir -p "$root"
        exec 9>"$root/.build.lock"
        flock 9
    fi
    if [ ! -x "$k8s_dir/kube-apiserver" ]; then
        need_go "the test control plane"; check_proxy k8s.io/kubernetes "$KUBERNETES_VERSION"
        build_kubernetes; built=1
    fi
    if [ ! -x "$kwok_dir/kwok" ]; then
        need_go "the test control plane"; go_install kwok "sigs.k8s.io/kwok/cmd/kwok" "$KWOK_VERSION" "$kwok_dir" kwok; built=1
    fi
    if [ ! -x "$lws_dir/lws-controller" ]; then
        need_go "the test control plane"; build_lws; built=1
    fi
    if [ ! -d "$lws_dir/lws-crds" ] || [ ! -d "$kwok_dir/kwok-stages" ]; then
        need_go "the test control plane"; release_manifests; built=1
    fi
    if [ ! -x "$helm_dir/helm" ]; then
        need_go "the test control plane"; go_install helm "helm.sh/helm/v3/cmd/helm" "$HELM_VERSION" "$helm_dir" helm; built=1
    fi
    mkdir -p "$bin"
    local item
    for item in "$k8s_dir"/* "$kwok_dir"/* "$lws_dir"/* "$helm_dir"/*; do
        ln -sfn "$item" "$bin/$(basename "$item")"
    done
    if [ "$built" = 1 ]; then
        say "cold build took $((SECONDS - start)) s"
        printf '%s\n' "$((SECONDS - start))" >"$bin/.build-seconds"
    else
        say "binaries cached in $bin"
    fi
    printf '%s\n' "$bin"
}

main "$@"
