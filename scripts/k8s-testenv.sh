#!/usr/bin/env bash
# Builds (or reuses) a real Kubernetes control plane for george-k8s's tests: kube-apiserver,
# kube-controller-manager, kube-scheduler and etcd, built from Go modules, plus kwok (a fake
# node that makes pods Running and Ready) when it builds. Prints the directory holding the
# binaries on its last stdout line; everything else goes to stderr. Point
# GEORGE_TEST_K8S_BIN at it.
#
# The binaries are cached per machine under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/george-ci/k8s-<kubernetes version>-<etcd version>/bin
# so only the first run pays the build (10-25 minutes on 2 cores; later runs take a second).
#
# How: `go install k8s.io/kubernetes/cmd/...@version` is refused, because k8s.io/kubernetes
# requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them
# with ./staging paths. So a throw-away module requires k8s.io/kubernetes and
# go.etcd.io/etcd/server/v3 at pinned versions and replaces every staging module with its
# published v0.<minor>.<patch> release; the list is generated from the downloaded go.mod (the
# require lines ending in v0.0.0), since it changes between minors. etcd's module root is its
# `main` package. kwok's module has no replace lines, so a plain `go install` builds it.
#
# Override the versions with GEORGE_K8S_VERSION / GEORGE_ETCD_VERSION / GEORGE_KWOK_VERSION
# (GEORGE_KWOK_VERSION=none skips kwok). The build fails loudly (non-zero exit) when
# kube-apiserver, kube-controller-manager, kube-scheduler or etcd cannot be built; a kwok failure is reported
# and the tests then mark pods Ready through the status subresource themselves.
set -euo pipefail

k8s_version=${GEORGE_K8S_VERSION:-v1.36.3}
etcd_version=${GEORGE_ETCD_VERSION:-v3.6.16}
kwok_version=${GEORGE_KWOK_VERSION:-v0.8.0}

log() { echo "k8s-testenv: $*" >&2; }
trap 'log "FAILED (line $LINENO, exit $?)"' ERR
# The official Go distribution's place, for shells whose PATH lacks it.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { log "the go command is not installed"; exit 1; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/george-ci/k8s-${k8s_version#v}-${etcd_version#v}
bin=$cache/bin
mkdir -p "$cache"
# One build at a time per cache directory (CI and a developer's shell may race).
exec 9>"$cache/.lock"
flock 9

have_all() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd; do [ -x "$bin/$b" ] || return 1; done
}
kwok_wanted() {
  [ "$kwok_version" != none ] && { [ ! -x "$bin/kwok" ] || [ ! -s "$bin/kwok-stages.yaml" ]; } &&
    [ ! -e "$cache/kwok-${kwok_version}.failed" ]
}

if have_all && ! kwok_wanted; then
  log "reusing $bin"
  echo "$bin"
  exit 0
fi

start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/george-k8s-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
staged=$work/bin
mkdir -p "$staged"
# -trimpath and -pgo=off keep the build reproducible and skip profile-guided optimisation
# (which would rebuild the standard library); -s -w drop debug info (a third of the size).
# The version variables make `/version` report the real release instead of v0.0.0-master.
minor=${k8s_version#v1.}
minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version \
  -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
  -X k8s.io/component-base/version.gitTreeState=clean"
gobuild() { go build -pgo=off -trimpath -ldflags "$ldflags" "$@"; }

if ! have_all; then
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $k8s_version and etcd $etcd_version (cold build: 10-25 minutes)"
  mod=$work/mod
  mkdir -p "$mod"
  cd "$mod"
  go mod init george.dev/k8s-testenv >/dev/null 2>&1
  # The downloaded go.mod of k8s.io/kubernetes: its staging modules are the require lines
  # at v0.0.0; each is replaced by its published release v0.<minor>.<patch>.
  dl=$(go mod download -json "k8s.io/kubernetes@$k8s_version" 2>&1) ||
    { log "could not download k8s.io/kubernetes@$k8s_version: $dl"; exit 1; }
  gomod=$(printf '%s\n' "$dl" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -s "$gomod" ] || { log "could not download k8s.io/kubernetes@$k8s_version"; exit 1; }
  staging_version=v0.${k8s_version#v1.}
  replaces=()
  while read -r m; do
    replaces+=("-replace=$m=$m@$staging_version")
  done < <(sed -n 's/^[[:space:]]*\(k8s\.io\/[^[:space:]]*\) v0\.0\.0\( \/\/ indirect\)\{0,1\}$/\1/p' "$gomod")
  [ ${#replaces[@]} -gt 0 ] || { log "no staging modules found in $gomod"; exit 1; }
  log "${#replaces[@]} staging modules replaced at $staging_version"
  go mod edit "${replaces[@]}"
  # Packages at explicit versions: a bare package path would mean @upgrade (the newest).
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$k8s_version" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$k8s_version" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$k8s_version" \
    "go.etcd.io/etcd/server/v3@$etcd_version" >&2
  got=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
  if [ "$got" != "$etcd_version" ]; then
    log "k8s.io/kubernetes@$k8s_version needs etcd $got, newer than the pinned $etcd_version: pin both together"
    exit 1
  fi
  gobuild -o "$staged/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
  gobuild -o "$staged/etcd" go.etcd.io/etcd/server/v3
  log "control plane built in $(($(date +%s) - start)) s"
fi

if kwok_wanted; then
  kstart=$(date +%s)
  log "building kwok $kwok_version"
  # kwok needs its stages (how fake nodes and pods move through their lifecycle) in its
  # config: the module's own "fast" node and pod stages and the node heartbeat.
  if (cd "$work" && GOBIN="$staged" go install -pgo=off -trimpath -ldflags "-s -w" \
      "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" >&2) &&
    kwok_dir=$(cd "$work" && go mod download -json "sigs.k8s.io/kwok@$kwok_version" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') &&
    [ -d "$kwok_dir/kustomize/stage" ]; then
    for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      echo "---"
      cat "$kwok_dir/kustomize/stage/$f"
    done > "$staged/kwok-stages.yaml"
    log "kwok built in $(($(date +%s) - kstart)) s"
  else
    log "!!! kwok $kwok_version did not build (above): tests mark pods Ready through the status subresource"
    touch "$cache/kwok-${kwok_version}.failed"
  fi
fi

mkdir -p "$bin"
for b in "$staged"/*; do
  [ -e "$b" ] || continue
  mv -f "$b" "$bin/.$(basename "$b").tmp"
  mv -f "$bin/.$(basename "$b").tmp" "$bin/$(basename "$b")"
done
printf 'kubernetes %s\netcd %s\nkwok %s\n' "$k8s_version" "$etcd_version" \
  "$([ -x "$bin/kwok" ] && echo "$kwok_version" || echo none)" > "$cache/versions"
have_all || { log "the build left no binaries in $bin"; exit 1; }
log "ready in $(($(date +%s) - start)) s: $bin"
echo "$bin"
