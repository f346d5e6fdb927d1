//! Every metric name an alerting rule uses is exported by some process (a rule on a name
//! nobody exports never fires).

use crate::{Observed, promql};
use std::collections::BTreeSet;

/// The alerts the operations issue asks for.
const REQUIRED: [&str; 7] = [
    "NoWorkerConsuming",
    "OldestJobTooOld",
    "DeadJobsRising",
    "AmcErrorRate",
    "TokenRefreshFailing",
    "ScheduleFiresMissed",
    "WebhookEndpointDisabled",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_name_the_alerts_use_is_exported_by_some_process() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ops/prometheus/alerts.yml");
    let yaml = std::fs::read_to_string(path).expect("alerts.yml");
    for alert in REQUIRED {
        assert!(
            yaml.contains(&format!("- alert: {alert}\n")),
            "no alert {alert}"
        );
    }
    let exprs = promql::expressions(&yaml);
    assert_eq!(
        exprs.len(),
        yaml.matches("- alert:").count(),
        "an alert without expr"
    );

    let o = Observed::start(1, Vec::new()).await;
    let mut exported = BTreeSet::new();
    for base in [o.sys.api_url.clone(), o.worker.clone(), o.scheduler.clone()] {
        let e = o.scrape_until(&base, |e| !e.families.is_empty()).await;
        exported.extend(e.names());
    }
    let mut missing = Vec::new();
    for expr in &exprs {
        let names = promql::metric_names(expr);
        assert!(!names.is_empty(), "no metric in `{expr}`");
        missing.extend(names.into_iter().filter(|n| !exported.contains(n)));
    }
    assert!(
        missing.is_empty(),
        "not exported by any process: {missing:?}"
    );
    o.cleanup().await;
}
