#!/usr/bin/env bash
# Installs everything the local platform and the tests need, idempotently.
#
#   tools/install.sh [step ...]     steps: toolchains apt python patroni kafka minio vault helm
#                                   kustomize checkov timescale kubernetes kwok argocd
#                                   (no step = all of them; toolchains is checked before any)
#
# Builds are cached by version under $ITS_CACHE_DIR (default ~/.cache/its-camera-ai), outside
# the clone, so a fresh clone on the same machine reuses them; a version bump in
# tools/versions.env rebuilds only what changed (infra/local/config.py and infra/cluster/ find
# each build in the same cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$ROOT/tools/versions.env"
CACHE="${ITS_CACHE_DIR:-$HOME/.cache/its-camera-ai}"
mkdir -p "$CACHE"

step() { printf '\n==> [install] %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
# Long builds print a heartbeat so a CI log never looks hung.
with_heartbeat() {
  local label="$1"; shift
  local log="$CACHE/logs/$label.log"; mkdir -p "$CACHE/logs"
  local start=$SECONDS
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 20
    kill -0 "$pid" 2>/dev/null && printf '    ... %s still running (%ds, log %s)\n' "$label" $((SECONDS - start)) "$log"
  done
  if ! wait "$pid"; then
    echo "    FAILED: $label; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
  ok "$label built in $((SECONDS - start))s"
}

# The toolchains the builds need, with the oldest version each is known to work with.
# Debian provides some (installed here when missing); the rest must be on PATH already, and a
# missing or too old one stops the install with one line that names it.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }
need_tool() {  # label command minimum "how to read its version" [debian package]
  local label="$1" cmd="$2" minimum="$3" probe="$4" package="${5:-}"
  if ! command -v "$cmd" >/dev/null 2>&1 && [ -n "$package" ]; then
    apt_install "$package"
  fi
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "tools/install.sh: $label $minimum or newer is needed and '$cmd' is not on PATH" \
      "${package:+(Debian: $package)}${package:-(not packaged by Debian in a new enough version)}" >&2
    exit 1
  fi
  local have; have=$(eval "$probe" 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -1)
  if ! version_ge "$have" "$minimum"; then
    echo "tools/install.sh: $label $minimum or newer is needed; '$cmd' is $have" >&2
    exit 1
  fi
  ok "$label $have (>= $minimum)"
}

install_toolchains() {
  step "toolchains"
  # Go: the newest `go` directive of the wrapper modules (tools/*/go.mod) is what they build with.
  local go_min; go_min=$(grep -h '^go ' "$ROOT"/tools/*/go.mod | awk '{print $2}' | sort -V | tail -1)
  need_tool Go go "$go_min" "go version"
  # Rust: RustyVault 0.2.1 builds with the 2021 edition's cargo; 1.74 is the oldest tried.
  need_tool Rust cargo 1.74 "cargo --version"
  need_tool Java java 17 "java -version 2>&1" openjdk-17-jre-headless
  need_tool Maven mvn 3.6.3 "mvn -v" maven
  # The Timescale engine (PGlite) and its socket server are ES modules for Node 18+.
  need_tool Node node 18 "node --version" nodejs
  need_tool npm npm 9 "npm --version" npm
  need_tool "Python 3.11" python3.11 3.11 "python3.11 --version" python3.11-venv
}

apt_install() {  # packages...: install what is missing, with no service started
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The platform runs its own server processes under supervisord: keep the packages'
  # init scripts from starting system-wide copies on the same ports during install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
  fi
  echo "    installing: $*"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

install_apt() {
  step "Debian packages (tools/apt-packages.txt)"
  mapfile -t pkgs < <(grep -v -e '^#' -e '^$' "$ROOT/tools/apt-packages.txt")
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then ok "all ${#pkgs[@]} present"; return; fi
  apt_install "${missing[@]}"
}

install_python() {
  # One virtualenv per lock: its name is the hash of requirements.lock.
  local key; key=$(sha256sum "$ROOT/requirements.lock" | cut -c1-12)
  local venv="$CACHE/venv/$key"
  step "Python virtualenv ($venv)"
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3.11 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade "pip==$PIP_VERSION"
    echo "    pip install -r requirements.lock (torch and ultralytics make this take minutes cold)"
    "$venv/bin/pip" install --progress-bar off -r "$ROOT/requirements.lock" | grep -E '^(Collecting|Successfully)' \
      | awk 'NR % 20 == 1 {print "    " $0; fflush()}'
    touch "$venv/.complete"
  fi
  # The project itself is installed editable into the cached venv: cheap, and always points
  # at this clone.
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT" 2>/dev/null \
    || "$venv/bin/pip" install -q --no-deps -e "$ROOT"
  ln -sfn "$venv" "$ROOT/.venv"
  ok "$(.venv/bin/python --version 2>/dev/null || "$venv/bin/python" --version), linked as .venv"
}

install_kafka() {
  local dir="$CACHE/kafka/$KAFKA_VERSION"
  step "Apache Kafka $KAFKA_VERSION jars (tools/kafka/pom.xml)"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"; mkdir -p "$dir/libs" "$dir/agents"
    mvn -q -B -f "$ROOT/tools/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$dir/libs"
    # The JMX exporter is a -javaagent, not a classpath jar.
    mv "$dir"/libs/jmx_prometheus_javaagent-*.jar "$dir/agents/jmx_prometheus_javaagent.jar"
    touch "$dir/.complete"
  fi
  ok "$(ls "$dir/libs" | wc -l) jars in $dir"
}

go_install() {  # name version package [ldflags]
  local name="$1" version="$2" package="$3" ldflags="${4:-}"
  local dir="$CACHE/$name/$version"
  step "$name $version (go install)"
  # Rebuilt when the build flags change: a binary that reports another version is not the pin.
  if [ ! -x "$dir/bin/$name" ] || [ "$(cat "$dir/.ldflags" 2>/dev/null)" != "$ldflags" ]; then
    mkdir -p "$dir/bin"
    with_heartbeat "$name-$version" env GOBIN="$dir/bin" GOFLAGS=-buildvcs=false \
      go install -ldflags="$ldflags" "$package@$version"
    printf '%s' "$ldflags" > "$dir/.ldflags"
  fi
  ok "$dir/bin/$name"
}

go_build_wrapper() {  # name version module-dir package...: build from a wrapper module of ours
  # (tools/<dir>/go.mod), for upstream modules whose replace directives `go install` refuses.
  local name="$1" version="$2" moddir="$ROOT/tools/$3"; shift 3
  local key; key=$(cat "$moddir/go.mod" "$moddir/go.sum" | sha256sum | cut -c1-12)
  local dir="$CACHE/$name/$version-$key"
  step "$name $version (go build, tools/$(basename "$moddir")/go.mod)"
  mkdir -p "$dir/bin"
  local package
  # Each binary of the list that is not there yet (a binary added to the list is built on the
  # next run); each is written beside its final name and moved, so a broken build leaves none.
  for package in "$@"; do
    local bin; bin=$(basename "$package")
    [ "$bin" != cmd ] || bin="$name"
    [ -x "$dir/bin/$bin" ] && continue
    # -X sets the version the binaries report (Kubernetes' own build scripts do the same).
    with_heartbeat "$name-$bin-$version" bash -c "cd '$moddir' && GOFLAGS='-buildvcs=false -mod=mod' \
      go build -trimpath -ldflags '-s -w -X k8s.io/component-base/version.gitVersion=$version' \
      -o '$dir/bin/$bin.partial' '$package'"
    mv "$dir/bin/$bin.partial" "$dir/bin/$bin"
  done
  touch "$dir/.complete"
  ok "$dir/bin: $(cd "$dir/bin" && echo *)"
}

install_minio() { go_install minio "$MINIO_VERSION" "$MINIO_MODULE"; }
install_kubernetes() {
  go_build_wrapper kubernetes "$KUBERNETES_VERSION" kube k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl
}
install_kwok() {
  go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
  # kwok simulates nodes and pods by Stages its module ships: keep the ones the cluster uses
  # beside the binary (infra/cluster/programs.py reads them from there).
  local src; src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  local dir="$CACHE/kwok/$KWOK_VERSION/stages"
  [ -f "$dir/.complete" ] || {
    [ -d "$src" ] || (cd /tmp && go mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
    mkdir -p "$dir"
    cp "$src/node/fast/node-initialize.yaml" "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
      "$src/pod/fast/pod-ready.yaml" "$src/pod/fast/pod-complete.yaml" "$src/pod/fast/pod-delete.yaml" "$dir/"
    touch "$dir/.complete"
  }
}
install_argocd() {
  go_build_wrapper argocd "$ARGOCD_VERSION" argocd github.com/argoproj/argo-cd/v3/cmd
  # ArgoCD's CRDs at the same version, from its module (infra/cluster/argocd.py applies them).
  local key; key=$(cat "$ROOT/tools/argocd/go.mod" "$ROOT/tools/argocd/go.sum" | sha256sum | cut -c1-12)
  local dir="$CACHE/argocd/$ARGOCD_VERSION-$key/crds"
  [ -f "$dir/.complete" ] || {
    local src; src="$(cd "$ROOT/tools/argocd" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)"
    mkdir -p "$dir" && cp "$src"/manifests/crds/*-crd.yaml "$dir/" && chmod 644 "$dir"/*.yaml
    touch "$dir/.complete"
  }
}
install_helm() {
  # Helm reports its version from a link-time variable (its release builds set it the same way);
  # without it `helm version` says only the minor, and the chart tests check the exact pin.
  go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}
install_kustomize() { go_install kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5; }

install_vault() {
  # No Vault or OpenBao server builds from this machine's registries (see README, "Vault");
  # RustyVault speaks the Vault HTTP API that hvac uses for unseal, KV and AppRole.
  local dir="$CACHE/rusty_vault/$RUSTY_VAULT_VERSION"
  step "RustyVault $RUSTY_VAULT_VERSION (cargo install)"
  if [ ! -x "$dir/bin/rvault" ]; then
    with_heartbeat "rusty_vault-$RUSTY_VAULT_VERSION" \
      cargo install rusty_vault --version "$RUSTY_VAULT_VERSION" --locked --root "$dir"
  fi
  ok "$dir/bin/rvault"
}

install_patroni() {
  # Patroni runs as the postgres user (PostgreSQL refuses root), so it gets its own virtualenv
  # on Debian's python3, in a cache that user can read: the system cache when we are root.
  local base="$CACHE"; [ "$(id -u)" -ne 0 ] || base="/var/cache/its-camera-ai"
  local key; key=$(sha256sum "$ROOT/tools/patroni/requirements.lock" | cut -c1-12)
  local dir="$base/patroni/$PATRONI_VERSION-$key"
  step "Patroni $PATRONI_VERSION (virtualenv on /usr/bin/python3)"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    /usr/bin/python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q --progress-bar off -r "$ROOT/tools/patroni/requirements.lock"
    chmod -R a+rX "$base"
    touch "$dir/.complete"
  fi
  ok "$dir/venv/bin/patroni"
}

install_checkov() {
  # checkov scans the rendered charts (tests/charts/test_checkov.py); its dependency tree
  # conflicts with the project's, so it gets its own virtualenv, named after its lock.
  local key; key=$(sha256sum "$ROOT/tools/checkov/requirements.lock" | cut -c1-12)
  local dir="$CACHE/checkov/$key"
  step "checkov (virtualenv, tools/checkov/requirements.lock)"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    python3.11 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q --progress-bar off -r "$ROOT/tools/checkov/requirements.lock"
    touch "$dir/.complete"
  fi
  ln -sfn "$dir/venv" "$ROOT/tools/checkov/venv"
  ok "$("$dir/venv/bin/checkov" --version 2>/dev/null | tail -1), linked as tools/checkov/venv"
}

install_timescale() {
  local lock="$ROOT/tools/timescale/package-lock.json"
  [ -f "$lock" ] || { echo "    (no tools/timescale yet)"; return; }
  local key; key=$(sha256sum "$lock" | cut -c1-12)
  local dir="$CACHE/timescale/$key"
  step "TimescaleDB (PGlite WASM) engine (tools/timescale, npm ci)"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    cp "$ROOT/tools/timescale/package.json" "$lock" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$dir/.complete"
  fi
  ln -sfn "$dir/node_modules" "$ROOT/tools/timescale/node_modules"
  ok "$dir/node_modules"
}

ALL=(apt python patroni kafka minio vault helm kustomize checkov timescale kubernetes kwok argocd)
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=("${ALL[@]}")
install_toolchains
for s in "${steps[@]}"; do
  case "$s" in
    toolchains) ;;
    apt|python|patroni|kafka|minio|vault|helm|kustomize|checkov|timescale|kubernetes|kwok|argocd) "install_$s" ;;
    *) echo "tools/install.sh: unknown step '$s' (known: ${ALL[*]})" >&2; exit 2 ;;
  esac
done
