#!/usr/bin/env python3
"""Checks of the deployment files against the code, the contract and each other (run by
ops/deploy/check.sh inside its venv, after the schema validations there).

  Dockerfile          parsed with dockerfile-parse: the final stage has no Rust toolchain,
                      runs as a non-root USER, has a HEALTHCHECK, exposes 8080 and holds every
                      binary; its one `cargo build` is CI's (the build line of
                      ops/test) with `--release`, and cargo-chef cooks with the same flags.
  docker-compose.yml  the services, their commands (each names a binary of the workspace),
                      env names (each known to common/src/config.rs, amc-sim's config, the
                      README's Configuration table or CONTRACT.md), worker replicas 3,
                      scheduler replicas 2, migrate gating the others, a health check on every
                      service but the stated exemptions (HEALTH_EXEMPT), ours on their own
                      health address; and `docker-compose config` (Debian's 1.29), plain and
                      with ops/deploy/observability.env, expands every ${…} and gives the
                      services of each profile and the OTLP endpoint it promises.
  ops/k8s/*.yaml      every document validated with kubernetes-validate (strict, Kubernetes
                      K8S_VERSION) but the ScaledObject (check.sh validates it against KEDA's
                      schema) and the Kustomization; probes, grace periods, resources, PDBs,
                      the ConfigMap/Secret split, the KEDA target and its replica bounds, and
                      the Postgres connections at maxReplicaCount (replicas × (pool + 1
                      LISTEN)) as the ScaledObject's comment and the README state them.
  ops/prometheus, ops/otel, ops/grafana
                      parse; the collector's pipelines name defined components; every
                      dashboard panel has a PromQL target on the `datasource` variable.

Which series the PromQL names is the telemetry test's to check (it scrapes the processes):
testkit/tests/telemetry/deploy.rs.
"""

import json
import os
import re
import subprocess
import sys

import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S_VERSION = os.environ.get("AMP_K8S_VERSION", "1.33.0")
# The five binaries the image carries and the manifests run (CONTRACT.md).
BINARIES = ("api", "worker", "scheduler", "migrate", "amc-sim")
SECRET_KEYS = ("AMP_JWT_SECRET", "AMP_ENCRYPTION_KEY", "AMP_LWA_CLIENT_SECRET", "AMP_DATABASE_URL")
OBSERVABILITY = ("otel-collector", "jaeger", "prometheus", "grafana")
# Compose services without a healthcheck, and why. Each is checked: it really has none,
# nothing waits on it being healthy, and its reason holds where it can be (the collector's
# health endpoint is configured).
HEALTH_EXEMPT = {
    "migrate": "a one-shot: the others wait for it to complete (service_completed_successfully)",
    "otel-collector": "its image is the collector binary alone (FROM scratch: no shell, wget or "
                      "curl); its health_check extension answers on :13133 to a probe from outside",
}
OBSERVABILITY_ENV = "ops/deploy/observability.env"
OTLP_ENDPOINT = "http://otel-collector:4318"
# Variables our processes read beside AMP_* (README "Configuration" and "Traces").
OTHER_ENV = re.compile(r"^(OTEL_[A-Z0-9_]+|RUST_LOG|AWS_[A-Z0-9_]+)$")

errors = []


def fail(where, message):
    errors.append(f"{where}: {message}")


def path(*parts):
    return os.path.join(ROOT, *parts)


def read(*parts):
    with open(path(*parts), encoding="utf-8") as f:
        return f.read()


def duration_seconds(text):
    """`30s`, `5m`, `1h`, `250ms`, `1m30s` (the forms config.rs reads)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)


# --- what the code and the contract define -------------------------------------------------

def workspace_binaries():
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    names = set()
    for package in json.loads(out)["packages"]:
        for target in package["targets"]:
            if "bin" in target["kind"]:
                names.add(target["name"])
    return names


def known_env():
    names = set()
    for source in ("common/src/config.rs", "amc-sim/src/config.rs", "ops/deploy/amp-healthcheck"):
        names |= set(re.findall(r"\bAMP_[A-Z0-9_]*[A-Z0-9]\b", read(source)))
    readme = read("README.md")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names |= set(re.findall(r"`(AMP_[A-Z0-9_]+)`", table))
    contract = os.environ.get("AMP_CONTRACT") or path("..", "shared", "CONTRACT.md")
    if os.path.exists(contract):
        with open(contract, encoding="utf-8") as f:
            names |= set(re.findall(r"`(AMP_[A-Z0-9_]+)`", f.read()))
    return names


def check_env_names(where, names, known):
    for name in names:
        if name.startswith("AMP_"):
            if name not in known:
                fail(where, f"{name} is read by no process (not in common/src/config.rs, "
                            "amc-sim's config, the README's Configuration table or CONTRACT.md)")
        elif not OTHER_ENV.match(name):
            fail(where, f"{name} is not a variable our processes read")


# --- Dockerfile ----------------------------------------------------------------------------

def release_build_command():
    """CI's build of the binaries (the `cargo build` line of ops/test, which .ci/run runs),
    with `--release` after `cargo build`: the one difference the image may have."""
    for line in read("ops", "test").splitlines():
        line = line.strip()
        if line.startswith("cargo build"):
            words = line.split()
            return " ".join(words[:2] + ["--release"] + words[2:])
    raise SystemExit("ops/test has no `cargo build` line")


def check_dockerfile(binaries):
    where = "Dockerfile"
    dfp = DockerfileParser(path=path("Dockerfile"))
    stages, args = [], {}
    for ins in dfp.structure:
        kind, value = ins["instruction"], ins["value"]
        if kind == "FROM":
            words = value.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"image": image, "alias": alias, "ins": []})
        elif not stages and kind == "ARG":
            name, _, default = value.partition("=")
            args[name.strip()] = default.strip()
        elif stages:
            stages[-1]["ins"].append((kind, value))
    if len(stages) < 2:
        fail(where, "not a multi-stage build")
        return
    final = stages[-1]
    earlier = {s["alias"] for s in stages[:-1] if s["alias"]}
    toolchain = re.compile(r"\b(rust|rustup|rustc|cargo|cargo-chef)\b", re.I)
    if toolchain.search(final["image"]) or final["image"] in earlier:
        fail(where, f"the final stage starts from {final['image']}, which carries a toolchain")
    for kind, value in final["ins"]:
        if kind == "RUN" and toolchain.search(value):
            fail(where, f"the final stage runs a toolchain: RUN {value}")
        if kind == "COPY" and re.search(r"(cargo|rustup)", value):
            fail(where, f"the final stage copies a toolchain: COPY {value}")
    users = [v.strip() for k, v in final["ins"] if k == "USER"]
    if not users:
        fail(where, "the final stage sets no USER (it would run as root)")
    elif users[-1].split(":")[0] in ("root", "0", ""):
        fail(where, f"the final stage runs as {users[-1]}")
    checks = [v for k, v in final["ins"] if k == "HEALTHCHECK"]
    if not checks or checks[-1].strip().upper() == "NONE":
        fail(where, "the final stage has no HEALTHCHECK")
    exposed = " ".join(v for k, v in final["ins"] if k == "EXPOSE").split()
    if "8080" not in [p.split("/")[0] for p in exposed]:
        fail(where, "the final stage does not EXPOSE 8080")
    copies = " ".join(v for k, v in final["ins"] if k == "COPY")
    if "/usr/local/bin" not in copies:
        fail(where, "the final stage copies no binary into /usr/local/bin")
    if "amp-healthcheck" not in copies:
        fail(where, "the final stage lacks amp-healthcheck (its HEALTHCHECK's probe)")
    build_runs = [v for s in stages for k, v in s["ins"] if k == "RUN" and "target/release" in v]
    for name in BINARIES:
        if name not in binaries:
            fail(where, f"{name} is not a binary of the workspace (cargo metadata)")
        if not any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", run) for run in build_runs):
            fail(where, f"the image does not collect the binary {name} from target/release")

    expected = release_build_command()
    builds = [v for s in stages for k, v in s["ins"] if k == "RUN" and "cargo build" in v]
    if len(builds) != 1:
        fail(where, f"{len(builds)} `cargo build` commands; expected one: {expected}")
    else:
        got = " ".join(builds[0].split())
        if got != expected:
            fail(where, f"builds with `{got}`; CI's build (ops/test) "
                        f"with --release is `{expected}`")
    cooks = [v for s in stages for k, v in s["ins"] if k == "RUN" and "cargo chef cook" in v]
    if not cooks:
        fail(where, "no `cargo chef cook` layer (the cached dependencies)")
    for cook in cooks:
        flags = set(re.findall(r"--[\w-]+", expected))
        missing = flags - set(re.findall(r"--[\w-]+", cook))
        if missing:
            fail(where, f"cargo chef cook lacks {sorted(missing)} of the build's flags: the "
                        "build would not reuse the cooked dependencies")
    if not any(k == "RUN" and "cargo chef prepare" in v for s in stages for k, v in s["ins"]):
        fail(where, "no `cargo chef prepare` (planner) stage")

    ignored = [l.strip() for l in read(".dockerignore").splitlines()
               if l.strip() and not l.startswith("#")]
    for entry in ("target", ".git"):
        if entry not in ignored and "/" + entry not in ignored:
            fail(".dockerignore", f"does not leave out {entry}")


# --- docker-compose.yml --------------------------------------------------------------------

def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def port_of(addr):
    return addr.rsplit(":", 1)[1] if addr and ":" in addr else None


def health_test(service):
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        return " ".join(str(t) for t in test)
    return test or ""


def check_compose(binaries, known):
    where = "docker-compose.yml"
    with open(path("docker-compose.yml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    services = doc.get("services", {})
    core = ("postgres", "redis", "migrate", "api", "worker", "scheduler", "amc-sim")
    for name in core:
        if name not in services:
            fail(where, f"no service {name}")
    for name in OBSERVABILITY:
        if name not in services:
            fail(where, f"no service {name} in the observability profile")
        elif services[name].get("profiles") != ["observability"]:
            fail(where, f"{name} is not (only) in the observability profile")
    for name in set(services) - set(core) - set(OBSERVABILITY):
        fail(where, f"unexpected service {name}")
    if any(n not in services for n in core):
        return

    pg = services["postgres"]
    if not re.match(r"^postgres:1[56]\b", pg.get("image", "")):
        fail(where, f"postgres runs {pg.get('image')}, not PostgreSQL 15 or 16")
    if "pg_isready" not in health_test(pg):
        fail(where, "postgres has no pg_isready health check")
    redis = services["redis"]
    if not re.match(r"^redis:7\b", redis.get("image", "")):
        fail(where, f"redis runs {redis.get('image')}, not Redis 7")
    if "redis-cli ping" not in health_test(redis):
        fail(where, "redis has no `redis-cli ping` health check")

    ours = {n: s for n, s in services.items() if n in core[2:]}
    for name, s in ours.items():
        command = s.get("command")
        if isinstance(command, str):
            command = command.split()
        if not command or command[0] not in binaries or command[0] not in BINARIES:
            fail(where, f"{name} runs {command}, not one of the binaries {list(BINARIES)}")
            continue
        expected = ["migrate", "up"] if name == "migrate" else [name]
        if command != expected:
            fail(where, f"{name} runs {command}; expected {expected}")
        if not str(s.get("image", "")).startswith("recomamp") or "build" not in s:
            fail(where, f"{name} does not run the image this repository's Dockerfile builds")
        env = env_of(s)
        check_env_names(f"{where} {name}", env, known)
        if name != "amc-sim":
            for var in ("AMP_DATABASE_URL", "AMP_REDIS_URL", "AMP_JWT_SECRET", "AMP_ENCRYPTION_KEY",
                        "AMP_AMC_BASE_URL", "AMP_LWA_TOKEN_URL"):
                if var not in env:
                    fail(where, f"{name} does not set {var}")
            if env.get("AMP_AMC_BASE_URL") != "http://amc-sim:8090":
                fail(where, f"{name}: AMP_AMC_BASE_URL is not http://amc-sim:8090")
            if not env.get("AMP_LWA_TOKEN_URL", "").startswith("http://amc-sim:8090/"):
                fail(where, f"{name}: AMP_LWA_TOKEN_URL is not amc-sim's")
            if "OTEL_EXPORTER_OTLP_ENDPOINT" not in env:
                fail(where, f"{name} does not pass OTEL_EXPORTER_OTLP_ENDPOINT")
        if name in ("api", "worker", "scheduler"):
            dep = (s.get("depends_on") or {}).get("migrate") if isinstance(s.get("depends_on"), dict) else None
            if not dep or dep.get("condition") != "service_completed_successfully":
                fail(where, f"{name} does not wait for migrate (service_completed_successfully)")
        # A health check on each long-running process, on its own health address.
        health_addr = {"api": "AMP_API_ADDR", "worker": "AMP_WORKER_HEALTH_ADDR",
                       "scheduler": "AMP_SCHEDULER_HEALTH_ADDR", "amc-sim": "AMP_SIM_ADDR"}.get(name)
        if health_addr:
            test = health_test(s)
            port = port_of(env.get(health_addr, ""))
            want = "/sim/admin/stats" if name == "amc-sim" else "/readyz"
            if (s.get("healthcheck") or {}).get("disable") or not test:
                fail(where, f"{name} has no health check")
            elif not port:
                fail(where, f"{name} does not set {health_addr} (its health endpoint)")
            elif f":{port}{want}" not in test:
                fail(where, f"{name}'s health check ({test}) does not ask :{port}{want} "
                            f"({health_addr}={env.get(health_addr)})")
    check_health_exemptions(services)
    if env_of(services["api"]).get("AMP_API_ADDR") != "0.0.0.0:8080":
        fail(where, "api: AMP_API_ADDR is not 0.0.0.0:8080")
    if "8080:8080" not in [str(p) for p in services["api"].get("ports", [])]:
        fail(where, "api does not publish port 8080")
    if env_of(services["amc-sim"]).get("AMP_SIM_ADDR") != "0.0.0.0:8090":
        fail(where, "amc-sim: AMP_SIM_ADDR is not 0.0.0.0:8090")
    for name, want in (("worker", 3), ("scheduler", 2)):
        got = (services[name].get("deploy") or {}).get("replicas")
        if got != want:
            fail(where, f"{name} has deploy.replicas {got}, expected {want}")
    for name in ("api", "worker", "scheduler", "migrate"):
        if (services[name].get("depends_on") or {}).get("postgres", {}).get("condition") != "service_healthy":
            fail(where, f"{name} does not wait for a healthy postgres")

    # The observability profile's files.
    volumes = " ".join(str(v) for s in services.values() for v in s.get("volumes", []))
    for f in ("ops/otel/collector.yml", "ops/prometheus/prometheus.yml", "ops/prometheus/alerts.yml",
              "ops/grafana/provisioning", "ops/grafana/dashboard.json"):
        if "./" + f not in volumes:
            fail(where, f"{f} is not mounted")
        if not os.path.exists(path(f)):
            fail(where, f"mounts {f}, which does not exist")


def check_health_exemptions(services):
    """Every service has a healthcheck but those of HEALTH_EXEMPT, which have none, and
    on which no service waits for `service_healthy`."""
    where = "docker-compose.yml"
    for name, s in services.items():
        has = bool(health_test(s)) and not (s.get("healthcheck") or {}).get("disable")
        if name in HEALTH_EXEMPT:
            if has:
                fail(where, f"{name} has a healthcheck: drop its exemption in HEALTH_EXEMPT")
        elif not has:
            fail(where, f"{name} has no healthcheck (and no exemption in HEALTH_EXEMPT)")
        deps = s.get("depends_on") or {}
        for dep, spec in (deps.items() if isinstance(deps, dict) else []):
            if dep in HEALTH_EXEMPT and (spec or {}).get("condition") == "service_healthy":
                fail(where, f"{name} waits for {dep} to be healthy, which has no healthcheck")
    for name in HEALTH_EXEMPT:
        if name not in services:
            fail("ops/deploy/check_deploy.py", f"HEALTH_EXEMPT names {name}, not a service")
    with open(path("ops", "otel", "collector.yml"), encoding="utf-8") as f:
        otel = yaml.safe_load(f)
    health = (otel.get("extensions") or {}).get("health_check")
    if "health_check" not in otel["service"].get("extensions", []) or health is None \
            or not str((health or {}).get("endpoint", "")).endswith(":13133"):
        fail("ops/otel/collector.yml", "the health_check extension is not on :13133 (the reason "
                                       "otel-collector is exempt from a compose healthcheck)")


def compose_config(env_file=None):
    """`docker-compose config` of docker-compose.yml (with `env_file`), as the text it
    prints; neither profile nor endpoint comes from the caller's shell."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COMPOSE_PROFILES", "OTEL_EXPORTER_OTLP_ENDPOINT", "COMPOSE_FILE")}
    args = ["docker-compose", "-f", "docker-compose.yml"]
    if env_file:
        args += ["--env-file", env_file]
    out = subprocess.run(args + ["config"], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} config failed:\n{out.stderr}")
    return out.stdout


def check_compose_resolved():
    """What docker-compose 1.29 makes of the file: every ${…} expanded (it leaves a nested
    one as text, escaped `$${…}`), plain and with the observability env file, and our
    processes export traces only with the env file, which also turns the observability
    profile on. (`config` lists every service whatever the profile.)"""
    for env_file, endpoint in ((None, ""), (OBSERVABILITY_ENV, OTLP_ENDPOINT)):
        where = f"docker-compose config{' --env-file ' + env_file if env_file else ''}"
        text = compose_config(env_file)
        for number, line in enumerate(text.splitlines(), 1):
            if "${" in line:
                fail(where, f"line {number} keeps an unexpanded variable: {line.strip()}")
        services = yaml.safe_load(text).get("services", {})
        for name in ("migrate", "api", "worker", "scheduler"):
            got = env_of(services.get(name, {})).get("OTEL_EXPORTER_OTLP_ENDPOINT")
            if got != endpoint:
                fail(where, f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT is {got!r}, expected {endpoint!r}")
    settings = dict(line.split("=", 1) for line in read(OBSERVABILITY_ENV).splitlines()
                    if "=" in line and not line.lstrip().startswith("#"))
    if "observability" not in settings.get("COMPOSE_PROFILES", "").split(","):
        fail(OBSERVABILITY_ENV, "does not set COMPOSE_PROFILES=observability")


def check_observability_files():
    with open(path("ops", "otel", "collector.yml"), encoding="utf-8") as f:
        otel = yaml.safe_load(f)
    for pipeline, spec in otel["service"]["pipelines"].items():
        for part in ("receivers", "processors", "exporters"):
            for name in spec.get(part, []):
                if name not in (otel.get(part) or {}):
                    fail("ops/otel/collector.yml", f"pipeline {pipeline} uses {part[:-1]} {name}, "
                                                   "which is not defined")
    if "4318" not in json.dumps(otel["receivers"]):
        fail("ops/otel/collector.yml", "no OTLP/HTTP receiver on 4318 (our processes export there)")

    with open(path("ops", "prometheus", "prometheus.yml"), encoding="utf-8") as f:
        prom = yaml.safe_load(f)
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    for job, port in (("api", 8080), ("worker", 8081), ("scheduler", 8082)):
        if job not in jobs or str(port) not in json.dumps(jobs[job]):
            fail("ops/prometheus/prometheus.yml", f"does not scrape {job} on {port}")
    if "alerts.yml" not in prom.get("rule_files", []):
        fail("ops/prometheus/prometheus.yml", "does not load alerts.yml")

    for sub in ("datasources", "dashboards"):
        folder = path("ops", "grafana", "provisioning", sub)
        files = [f for f in os.listdir(folder) if f.endswith((".yml", ".yaml"))] if os.path.isdir(folder) else []
        if not files:
            fail("ops/grafana/provisioning", f"no {sub} provisioning file")
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                yaml.safe_load(f)

    with open(path("ops", "grafana", "dashboard.json"), encoding="utf-8") as f:
        dash = json.load(f)
    where = "ops/grafana/dashboard.json"
    if not any(v.get("name") == "datasource" and v.get("type") == "datasource"
               for v in dash.get("templating", {}).get("list", [])):
        fail(where, "no `datasource` variable (the dashboard must import into any Grafana)")

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    count = 0
    for p in panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        count += 1
        targets = p.get("targets") or []
        if not targets or not all(t.get("expr") for t in targets):
            fail(where, f"panel {p.get('title')!r} has a target without PromQL")
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            fail(where, f"panel {p.get('title')!r} does not use the datasource variable")
    if count < 20:
        fail(where, f"only {count} panels")


# --- ops/k8s -------------------------------------------------------------------------------

def check_k8s(binaries, known):
    folder = path("ops", "k8s")
    docs = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((name, doc))
    by_kind = {}
    for name, doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append((name, doc))
        where = f"ops/k8s/{name} {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        if doc.get("kind") in ("ScaledObject", "Kustomization"):
            continue  # KEDA's schema (check.sh) and the checks below
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(where, f"invalid for Kubernetes {K8S_VERSION}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            fail(where, f"{doc.get('apiVersion')} {doc.get('kind')} is not a resource of Kubernetes {K8S_VERSION}")
        ns = (doc.get("metadata") or {}).get("namespace")
        if doc.get("kind") != "Namespace" and ns != "recomamp":
            fail(where, f"namespace {ns!r}, not recomamp")

    config = {}
    for name, doc in by_kind.get("ConfigMap", []):
        config.update(doc.get("data") or {})
        check_env_names(f"ops/k8s/{name}", config, known)
        for key in SECRET_KEYS:
            if key in config:
                fail(f"ops/k8s/{name}", f"{key} is a secret: it belongs in the Secret")
    secrets = {}
    for name, doc in by_kind.get("Secret", []):
        secrets.update(doc.get("stringData") or {})
        secrets.update(doc.get("data") or {})
        check_env_names(f"ops/k8s/{name}", secrets, known)
    for key in SECRET_KEYS:
        if key not in secrets:
            fail("ops/k8s Secret", f"no {key}")
    shutdown = duration_seconds(config.get("AMP_SHUTDOWN_TIMEOUT", "30s"))

    deployments = {d["metadata"]["name"]: (n, d) for n, d in by_kind.get("Deployment", [])}
    health_addr = {"api": "AMP_API_ADDR", "worker": "AMP_WORKER_HEALTH_ADDR",
                   "scheduler": "AMP_SCHEDULER_HEALTH_ADDR"}
    for component in ("api", "worker", "scheduler"):
        dname = f"recomamp-{component}"
        if dname not in deployments:
            fail("ops/k8s", f"no Deployment {dname}")
            continue
        file, d = deployments[dname]
        where = f"ops/k8s/{file} Deployment/{dname}"
        pod = d["spec"]["template"]["spec"]
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= shutdown:
            fail(where, f"terminationGracePeriodSeconds {grace} is not above AMP_SHUTDOWN_TIMEOUT ({shutdown:g}s)")
        container = pod["containers"][0]
        command = container.get("args") or container.get("command") or []
        if command != [component] or component not in binaries:
            fail(where, f"runs {command}, expected [{component!r}]")
        env_names = {e["name"] for e in container.get("env", [])}
        check_env_names(where, env_names, known)
        refs = {(("configMapRef" in r) and r["configMapRef"]["name"]) or r.get("secretRef", {}).get("name")
                for r in container.get("envFrom", [])}
        if not {"recomamp-config", "recomamp-secrets"} <= refs:
            fail(where, "does not take its environment from recomamp-config and recomamp-secrets")
        res = container.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    fail(where, f"no resources.{part}.{r}")
        port = port_of(config.get(health_addr[component], ""))
        ports = {p.get("name"): str(p["containerPort"]) for p in container.get("ports", [])}
        for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (container.get(probe) or {}).get("httpGet") or {}
            got_port = ports.get(get.get("port"), str(get.get("port")))
            if get.get("path") != want or got_port != port:
                fail(where, f"{probe} asks {get.get('path')} on {got_port}; expected {want} on "
                            f"{port} ({health_addr[component]})")
        if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
            fail(where, "does not require runAsNonRoot")
        selector = d["spec"]["selector"]["matchLabels"]
        if not any(p["spec"].get("selector", {}).get("matchLabels") == selector
                   for _, p in by_kind.get("PodDisruptionBudget", [])):
            fail(where, "no PodDisruptionBudget selects its pods")
        if not any(s["spec"].get("selector") == selector for _, s in by_kind.get("Service", [])):
            fail(where, "no Service selects its pods")
    if "recomamp-worker" in deployments and "replicas" in deployments["recomamp-worker"][1]["spec"]:
        fail("ops/k8s Deployment/recomamp-worker", "sets replicas, which KEDA owns (an apply would reset them)")

    jobs = [d for _, d in by_kind.get("Job", [])]
    if not any(j["spec"]["template"]["spec"]["containers"][0].get("args") == ["migrate", "up"] for j in jobs):
        fail("ops/k8s", "no Job runs `migrate up`")

    scaled = by_kind.get("ScaledObject", [])
    if len(scaled) != 1:
        fail("ops/k8s", f"{len(scaled)} ScaledObjects; expected one, for the workers")
    for name, so in scaled:
        where = f"ops/k8s/{name}"
        spec = so["spec"]
        if spec["scaleTargetRef"].get("name") != "recomamp-worker":
            fail(where, "does not scale the recomamp-worker Deployment")
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if not 1 <= lo <= hi:
            fail(where, f"minReplicaCount {lo} / maxReplicaCount {hi}: want 1 ≤ min ≤ max")
        for key in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
            if key not in spec:
                fail(where, f"no {key}")
        for trigger in spec["triggers"]:
            if trigger["type"] != "prometheus":
                fail(where, f"a {trigger['type']} trigger; expected prometheus")
            query = trigger["metadata"].get("query", "")
            if "runnable_jobs" not in query or "max by (queue)" not in " ".join(query.split()):
                fail(where, f"query {query!r} is not the runnable-work signal sum(max by (queue) (runnable_jobs))")
            if float(trigger["metadata"].get("threshold", "0")) <= 0:
                fail(where, "no positive threshold")

    check_connection_arithmetic(deployments, config, scaled)

    kustomization = [d for _, d in by_kind.get("Kustomization", [])]
    if len(kustomization) == 1:
        listed = set(kustomization[0].get("resources", []))
        files = {n for n, _ in docs} - {"kustomization.yaml", "migrate-job.yaml"}
        for missing in sorted(files - listed):
            fail("ops/k8s/kustomization.yaml", f"does not list {missing}")
        for extra in sorted(listed - {n for n, _ in docs}):
            fail("ops/k8s/kustomization.yaml", f"lists {extra}, which does not exist")
        if "migrate-job.yaml" in listed:
            fail("ops/k8s/kustomization.yaml", "lists the migrate Job: it must run before the Deployments")


def default_pool(component):
    """The pool size a process takes without AMP_DATABASE_MAX_CONNECTIONS (its
    `config.pool_size(N)`; the worker's is its concurrency, which the manifests cap)."""
    found = re.search(r"pool_size\((\d+)\)", read(component, "src", "lib.rs"))
    return int(found.group(1)) if found else None


def check_connection_arithmetic(deployments, config, scaled):
    """The Postgres connections at the most workers, as the ScaledObject's comment and the
    README state them: every replica holds its pool (AMP_DATABASE_MAX_CONNECTIONS, else the
    process's default) plus one LISTEN connection; the max_connections both advise leaves room
    for a `migrate` run (2) and Postgres's 3 superuser-reserved connections."""
    if not scaled or any(f"recomamp-{c}" not in deployments for c in ("api", "worker", "scheduler")):
        return
    total = 0
    for component in ("api", "worker", "scheduler"):
        _, d = deployments[f"recomamp-{component}"]
        env = {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        pool = env.get("AMP_DATABASE_MAX_CONNECTIONS") or config.get("AMP_DATABASE_MAX_CONNECTIONS")
        pool = int(pool) if pool else default_pool(component)
        if pool is None:
            fail(f"ops/k8s Deployment/recomamp-{component}", "sets no AMP_DATABASE_MAX_CONNECTIONS "
                                                             "and its default pool is unknown")
            return
        replicas = scaled[0][1]["spec"].get("maxReplicaCount", 100) if component == "worker" \
            else d["spec"].get("replicas", 1)
        total += replicas * (pool + 1)
    for where, text in ((f"ops/k8s/{scaled[0][0]}", read("ops", "k8s", scaled[0][0])),
                        ("README.md", read("README.md"))):
        flat = " ".join(text.replace("#", " ").split())
        if f"= {total}" not in flat:
            fail(where, f"does not state the {total} Postgres connections of the most workers "
                        "(replicas × (pool + 1 LISTEN))")
        advised = [int(n) for n in re.findall(r"max_connections`? ≥ (\d+)", flat)]
        if not advised or min(advised) < total + 2 + 3:
            fail(where, f"advises max_connections {advised or 'nowhere'}; at least {total + 5} "
                        f"({total} + a migrate run's 2 + 3 superuser-reserved)")


def main():
    binaries = workspace_binaries()
    known = known_env()
    check_dockerfile(binaries)
    check_compose(binaries, known)
    check_compose_resolved()
    check_observability_files()
    check_k8s(binaries, known)
    if errors:
        print(f"{len(errors)} problem(s) in the deployment files:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print(f"deployment files agree with the code and the contract (Kubernetes {K8S_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
