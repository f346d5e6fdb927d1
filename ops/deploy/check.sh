#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster, in seconds (after the
# first run installs its tools from PyPI into target/venv-deploy, pinned by
# ops/deploy/requirements.txt):
#   - docker-compose.yml against the Compose specification's JSON schema (the copy
#     check-jsonschema ships: --builtin-schema vendor.compose-spec), and `docker-compose
#     config -q` (Debian's docker-compose, installed when missing), plain and with
#     ops/deploy/observability.env (check_deploy.py reads the expanded config: no `${` left);
#   - ops/k8s/worker-scaledobject.yaml against KEDA's ScaledObject schema
#     (ops/deploy/schemas/keda-scaledobject-v1alpha1.json), and ops/k8s/kustomization.yaml
#     against SchemaStore's (ops/deploy/schemas/kustomization.json, README there);
#   - the PromQL of the Grafana dashboard and of the KEDA trigger parses (promtool, when
#     installed: ops/prometheus/check.sh installs it), and ops/prometheus/prometheus.yml;
#   - ops/deploy/check_deploy.py: the Dockerfile (dockerfile-parse), every Kubernetes manifest
#     (kubernetes-validate, strict), and the files against the code, CONTRACT.md and each other.
# That every series the PromQL names is exported is the telemetry test's check
# (testkit/tests/telemetry/deploy.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${AMP_DEPLOY_VENV:-target/venv-deploy}
req=ops/deploy/requirements.txt
if [ ! -x "$venv/bin/check-jsonschema" ] || ! cmp -s "$req" "$venv/.requirements.txt"; then
  echo "installing the deployment checks into $venv…"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements.txt"
fi

echo "-- docker-compose.yml: Compose specification"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
# docker-compose (Debian's, which reads a file with no engine) resolves the anchors,
# extends and profiles and validates the result, plain and with the observability env file.
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
echo "-- docker-compose config -q (default; observability: --env-file ops/deploy/observability.env)"
docker-compose -f docker-compose.yml config -q
docker-compose -f docker-compose.yml --env-file ops/deploy/observability.env config -q
echo "ok -- docker-compose config"

echo "-- ops/k8s/worker-scaledobject.yaml: KEDA ScaledObject schema"
"$venv/bin/check-jsonschema" --schemafile ops/deploy/schemas/keda-scaledobject-v1alpha1.json \
  ops/k8s/worker-scaledobject.yaml

echo "-- ops/k8s/kustomization.yaml: SchemaStore's Kustomization schema"
# The vendored copy is SchemaStore's text unchanged (ops/deploy/schemas/README.md).
echo "a316ee538e3b4b9e63d1205b746e74b80f1b285eb965d89436591cd9f5f153c6  ops/deploy/schemas/kustomization.json" \
  | sha256sum --check --quiet
"$venv/bin/check-jsonschema" --schemafile ops/deploy/schemas/kustomization.json \
  ops/k8s/kustomization.yaml

if command -v promtool >/dev/null 2>&1; then
  echo "-- PromQL of the dashboard and the KEDA trigger, ops/prometheus/prometheus.yml: promtool"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Every expression as a recording rule, so promtool parses it (Grafana's $__rate_interval
  # and $__range become a plain range first).
  "$venv/bin/python" - "$work/promql.yml" <<'PY'
import json, sys, yaml
exprs = []
def walk(panels):
    for p in panels:
        exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
        walk(p.get("panels", []))
walk(json.load(open("ops/grafana/dashboard.json"))["panels"])
for d in yaml.safe_load_all(open("ops/k8s/worker-scaledobject.yaml")):
    exprs.extend(t["metadata"]["query"] for t in d["spec"]["triggers"])
rules = [{"record": f"deploy_check:expr{i}", "expr": e.replace("$__rate_interval", "5m").replace("$__range", "1h")}
         for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "deploy-check", "rules": rules}]}, open(sys.argv[1], "w"))
PY
  promtool check rules "$work/promql.yml" >/dev/null
  promtool check config ops/prometheus/prometheus.yml >/dev/null
  echo "ok -- PromQL parses"
else
  echo "-- promtool not installed: PromQL syntax not checked (ops/prometheus/check.sh installs it)"
fi

echo "-- Dockerfile, docker-compose.yml, ops/k8s, ops/grafana, ops/otel against the code and the contract"
"$venv/bin/python" ops/deploy/check_deploy.py
