//! The deployment files name only series the processes export: every PromQL expression of
//! the Grafana dashboard (`ops/grafana/dashboard.json`) and the query of the workers' KEDA
//! trigger (the `ScaledObject` in `ops/k8s/`); and the dashboard shows every series family
//! some process exports. `ops/deploy/check.sh` checks the rest of those files.

use crate::{Observed, promql};
use serde_json::Value;
use std::collections::BTreeSet;

fn repo_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Every PromQL expression of a Grafana dashboard, with the title of its panel: each
/// target's `expr`, in panels and in rows' nested panels, and the queries of its `query`
/// variables (`label_values(metric, label)` gives its metric).
fn dashboard_expressions(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("(untitled)").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                    out.push((format!("panel {title:?}"), expr.to_owned()));
                }
            }
            walk(p["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard["panels"].as_array().map_or(&[], Vec::as_slice),
        &mut out,
    );
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let query = match &v["query"] {
            Value::String(s) => s.clone(),
            q => q["query"].as_str().unwrap_or_default().to_owned(),
        };
        let query = match query.trim().strip_prefix("label_values(") {
            Some(args) if args.contains(',') => args.split(',').next().unwrap_or("").to_owned(),
            Some(_) => continue, // label_values(label): no metric
            None => query,
        };
        let name = v["name"].as_str().unwrap_or("?");
        out.push((format!("variable {name:?}"), query));
    }
    out
}

/// The `query` of every trigger of every `ScaledObject` in a multi-document YAML file
/// (single-line values, quoted or not, and `|`/`>` blocks).
fn keda_queries(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let docs = yaml.split("\n---").filter(|d| {
        d.lines()
            .any(|l| l.trim_end() == "kind: ScaledObject" && !l.starts_with(' '))
    });
    for doc in docs {
        out.extend(promql::values_of(doc, "query"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_the_dashboard_and_the_keda_trigger_use_is_exported() {
    let dashboard: Value = serde_json::from_str(&repo_file("ops/grafana/dashboard.json"))
        .expect("ops/grafana/dashboard.json is JSON");
    let mut exprs = dashboard_expressions(&dashboard);
    assert!(
        exprs.len() >= 20,
        "only {} dashboard expressions",
        exprs.len()
    );
    let k8s = format!("{}/../ops/k8s", env!("CARGO_MANIFEST_DIR"));
    let mut keda = 0;
    for entry in std::fs::read_dir(&k8s).expect("ops/k8s") {
        let path = entry.expect("ops/k8s entry").path();
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("manifest");
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        for query in keda_queries(&text) {
            keda += 1;
            exprs.push((format!("KEDA trigger of ops/k8s/{file}"), query));
        }
    }
    assert!(keda > 0, "no ScaledObject with a query in ops/k8s");
    assert!(
        exprs
            .iter()
            .any(|(w, q)| w.starts_with("KEDA") && q.contains("runnable_jobs")),
        "the KEDA trigger does not scale on runnable_jobs"
    );

    let o = Observed::start(1, Vec::new()).await;
    let mut exported = BTreeSet::new();
    let mut families = BTreeSet::new();
    for base in [o.sys.api_url.clone(), o.worker.clone(), o.scheduler.clone()] {
        let e = o.scrape_until(&base, |e| !e.families.is_empty()).await;
        exported.extend(e.names());
        families.extend(e.families.keys().cloned());
    }
    o.cleanup().await;

    let mut used = BTreeSet::new();
    let mut missing = Vec::new();
    for (whence, expr) in &exprs {
        let names = promql::metric_names(expr);
        assert!(!names.is_empty(), "no metric in `{expr}` ({whence})");
        for name in names {
            if !exported.contains(&name) {
                missing.push(format!("{name} ({whence})"));
            }
            used.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "not exported by any process: {missing:#?}"
    );
    let unshown: Vec<&String> = families
        .iter()
        .filter(|f| {
            !["", "_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|s| used.contains(&format!("{f}{s}")))
        })
        .collect();
    assert!(
        unshown.is_empty(),
        "exported, but on no panel of ops/grafana/dashboard.json: {unshown:?}"
    );
}

#[test]
fn dashboard_expressions_are_read_from_panels_rows_and_variables() {
    let d = serde_json::json!({
        "panels": [
            {"type": "row", "title": "R", "panels": [
                {"title": "nested", "targets": [{"expr": "max(b)"}]}
            ]},
            {"title": "top", "targets": [{"expr": "sum(rate(a_total[$__rate_interval]))"}, {"expr": ""}]}
        ],
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "queue", "type": "query", "query": {"query": "label_values(queue_depth, queue)"}},
            {"name": "inst", "type": "query", "query": "label_values(instance)"}
        ]}
    });
    let got: Vec<String> = dashboard_expressions(&d)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(
        got,
        [
            "max(b)",
            "sum(rate(a_total[$__rate_interval]))",
            "queue_depth"
        ]
    );
    assert_eq!(
        promql::metric_names("sum(rate(a_total[$__rate_interval]))")
            .into_iter()
            .collect::<Vec<_>>(),
        ["a_total"]
    );
}

#[test]
fn keda_queries_are_read_from_scaled_objects_only() {
    let y = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  query: not_this\n---\n\
             apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec:\n  triggers:\n    \
             - type: prometheus\n      metadata:\n        query: sum(max by (queue) (runnable_jobs))\n    \
             - type: prometheus\n      metadata:\n        query: |\n          sum(x)\n            / 2\n        \
             threshold: \"1\"\n    - type: prometheus\n      metadata:\n        query: 'max(y)'\n";
    assert_eq!(
        keda_queries(y),
        [
            "sum(max by (queue) (runnable_jobs))",
            "sum(x)\n/ 2",
            "max(y)"
        ]
    );
}

/// Runs the image's health probe (`ops/deploy/amp-healthcheck`, the Dockerfile's
/// `HEALTHCHECK`) with `args` and only the environment `env`: its exit code and stderr.
fn probe(args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let script = format!(
        "{}/../ops/deploy/amp-healthcheck",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("bash runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The probe of `url`: its exit code.
fn healthcheck(url: &str) -> i32 {
    probe(&[url], &[]).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_healthcheck_passes_a_ready_process_and_fails_otherwise() {
    let o = Observed::start(1, Vec::new()).await;
    for base in [o.sys.api_url.clone(), o.worker.clone(), o.scheduler.clone()] {
        // A process just started may not be ready yet (the image's HEALTHCHECK retries
        // too): it must pass within 15 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let url = format!("{base}/readyz");
            let code = tokio::task::spawn_blocking(move || healthcheck(&url))
                .await
                .unwrap();
            if code == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{base}/readyz still unhealthy after 15 s (exit {code})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    // A path that answers 404, and a port nothing listens on.
    let api = o.sys.api_url.clone();
    let closed = format!("http://127.0.0.1:{}/readyz", testkit::free_port());
    let (missing, refused) = tokio::task::spawn_blocking(move || {
        (
            healthcheck(&format!("{api}/no-such-path")),
            healthcheck(&closed),
        )
    })
    .await
    .unwrap();
    o.cleanup().await;
    assert_eq!(missing, 1, "a 404 is unhealthy");
    assert_eq!(refused, 1, "a refused connection is unhealthy");
}

/// A proc root with an init at pid 1, `kind` (if any) at pid 7 and the probe's own shell at
/// pid 12, as `amp-healthcheck` sees a container's `/proc`.
struct FakeProc(std::path::PathBuf);

impl FakeProc {
    fn new(kind: Option<&str>) -> Self {
        let root = std::env::temp_dir().join(testkit::unique("amp_proc"));
        let procs = [
            Some((1, "docker-init")),
            kind.map(|k| (7, k)),
            Some((12, "amp-healthcheck")),
        ];
        for (pid, comm) in procs.into_iter().flatten() {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(&dir).expect("fake proc dir");
            std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
        }
        Self(root)
    }

    fn root(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Without a URL, `amp-healthcheck` finds the process kind in the proc root
/// (`AMP_HEALTH_PROC`) and probes that kind's own address from its variable: for each of
/// api, worker, scheduler and amc-sim it passes with that variable on the live process
/// (a wildcard host probed on the loopback) and every other variable on a closed port, and
/// fails naming the closed port when only that variable is wrong. `migrate` passes without
/// a probe; no known process, or a worker without its health address, fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_healthcheck_finds_the_process_kind_and_probes_its_address() {
    let o = Observed::start(1, Vec::new()).await;
    let live = |base: &str| base.trim_start_matches("http://").to_owned();
    let kinds = [
        ("api", "AMP_API_ADDR", live(&o.sys.api_url)),
        ("worker", "AMP_WORKER_HEALTH_ADDR", live(&o.worker)),
        ("scheduler", "AMP_SCHEDULER_HEALTH_ADDR", live(&o.scheduler)),
        ("amc-sim", "AMP_SIM_ADDR", live(&o.sys.sim.base_url())),
    ];
    // Ready first (the probe asks `/readyz`); amc-sim runs in this process.
    for base in [&o.sys.api_url, &o.worker, &o.scheduler] {
        let url = format!("{base}/readyz");
        let ready =
            testkit::wait_until(std::time::Duration::from_secs(15), || o.sys.healthy(&url)).await;
        assert!(ready, "{url} never ready");
    }
    let closed_port = testkit::free_port();
    let closed = format!("127.0.0.1:{closed_port}");
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (i, (kind, var, addr)) in kinds.iter().enumerate() {
            let proc_root = FakeProc::new(Some(kind));
            // Only `var` names the live process (the first with a wildcard host).
            let host_port = if i == 0 {
                format!("0.0.0.0:{}", addr.rsplit(':').next().unwrap_or_default())
            } else {
                addr.clone()
            };
            let mut env: Vec<(&str, String)> = kinds
                .iter()
                .map(|(_, v, _)| {
                    (
                        *v,
                        if v == var {
                            host_port.clone()
                        } else {
                            closed.clone()
                        },
                    )
                })
                .collect();
            env.push(("AMP_HEALTH_PROC", proc_root.root()));
            let right = probe(&[], &env);
            // Only `var` is wrong: every other variable names its live process.
            let mut env: Vec<(&str, String)> = kinds
                .iter()
                .map(|(_, v, a)| (*v, if v == var { closed.clone() } else { a.clone() }))
                .collect();
            env.push(("AMP_HEALTH_PROC", proc_root.root()));
            let wrong = probe(&[], &env);
            out.push((*kind, right, wrong));
        }
        let migrate = FakeProc::new(Some("migrate"));
        let nothing = FakeProc::new(None);
        let worker = FakeProc::new(Some("worker"));
        let only_closed = |root: &FakeProc| {
            let mut env: Vec<(&str, String)> =
                kinds.iter().map(|(_, v, _)| (*v, closed.clone())).collect();
            env.push(("AMP_HEALTH_PROC", root.root()));
            env
        };
        let migrate = probe(&[], &only_closed(&migrate));
        let nothing = probe(&[], &only_closed(&nothing));
        let unset = probe(&[], &[("AMP_HEALTH_PROC", worker.root())]);
        (out, migrate, nothing, unset)
    })
    .await
    .unwrap();
    o.cleanup().await;
    let (per_kind, migrate, nothing, unset) = results;
    for (kind, right, wrong) in per_kind {
        assert_eq!(
            right.0, 0,
            "{kind}: its own address live, yet unhealthy: {}",
            right.1
        );
        assert_eq!(wrong.0, 1, "{kind}: its own address closed, yet healthy");
        assert!(
            wrong.1.contains(&format!(":{closed_port}")),
            "{kind}: the failure does not name the closed port {closed_port}: {}",
            wrong.1
        );
    }
    assert_eq!(
        migrate.0, 0,
        "migrate (a one-shot) is healthy while it runs: {}",
        migrate.1
    );
    assert_eq!(nothing.0, 1, "no known process is unhealthy");
    assert!(nothing.1.contains("no api, worker"), "{}", nothing.1);
    assert_eq!(
        unset.0, 1,
        "a worker without AMP_WORKER_HEALTH_ADDR is unhealthy"
    );
    assert!(
        unset.1.contains("AMP_WORKER_HEALTH_ADDR is unset"),
        "{}",
        unset.1
    );
}
