//! The worker's steps driven in-process ([`worker::testing::Driver`]): jobs run one at a
//! time, in order, against real Postgres, Redis and amc-sim, and each round's rows can be
//! checked. The jobs are pushed in the JSON earlier builds pushed (every step kind: submit,
//! admit, poll, fetch, cancel), so jobs already queued by them still decode and run.

use common::config::Config;
use common::connection::{self, Connector};
use common::execution::{self, ExecutionStatus, NewExecution, TriggeredBy};
use common::ids::{
    AmcInstanceId, EntityId, ExecutionId, InstanceId, MarketplaceId, Region, UserId,
};
use common::jobs::{AdmitJob, CancelJob, FetchJob, PollJob, SubmitJob};
use common::repo::{accounts, instances, users, workflows};
use common::time_window::TimeWindow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use testkit::{TestDb, unique};
use worker::testing::Driver;

struct Setup {
    db: TestDb,
    sim: amc_sim::SimHandle,
    config: Arc<Config>,
}

async fn setup(run_duration: Duration) -> Setup {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let db = TestDb::new().await.expect("database");
    let sim = amc_sim::spawn(amc_sim::SimConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        run_duration,
        ..Default::default()
    })
    .await
    .expect("amc-sim");
    let prefix = unique("ampdrv");
    let results = std::env::temp_dir().join(unique("amp_driver_results"));
    let vars: HashMap<String, String> = [
        ("AMP_DATABASE_URL", db.url.clone()),
        ("AMP_REDIS_PREFIX", prefix.clone()),
        ("AMP_AMC_BASE_URL", sim.base_url()),
        ("AMP_LWA_TOKEN_URL", sim.token_url()),
        ("AMP_RESULTS_URL", results.display().to_string()),
        ("AMP_POLL_MIN", "1s".into()),
        ("AMP_POLL_MAX", "1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = Arc::new(Config::from_map(&vars).expect("config"));
    Setup { db, sim, config }
}

/// The user, instance and runs of [`two_queued_runs`].
struct Runs {
    user: UserId,
    instance: InstanceId,
    ids: [ExecutionId; 2],
}

/// A user with a connection, an account, an instance (cap 10) and a workflow; two queued
/// runs of it.
async fn two_queued_runs(driver: &Driver) -> Runs {
    let ctx = &driver.ctx;
    let user = users::create_user(&ctx.db, "driver@example.com", "x")
        .await
        .expect("user");
    let connector = Connector {
        db: &ctx.db,
        cipher: &ctx.cipher,
        lwa: &ctx.lwa,
        producer: &ctx.producer,
    };
    connection::connect(&connector, user.id, "Atzr|driver")
        .await
        .expect("connect");
    let account = accounts::create_account(
        &ctx.db,
        user.id,
        accounts::NewAccount {
            name: "Brand".into(),
            entity_id: EntityId("ENTITY1".into()),
            marketplace_id: MarketplaceId("ATVPDKIKX0DER".into()),
            region: Region::NA,
            max_concurrent_executions: None,
        },
    )
    .await
    .expect("account");
    let instance = instances::create_instance(
        &ctx.db,
        user.id,
        instances::NewInstance {
            account_id: account.id,
            name: "main".into(),
            amc_instance_id: AmcInstanceId("amcdriver".into()),
            max_concurrent_executions: 10,
            daily_execution_quota: None,
            time_zone: "UTC".into(),
            collection_reserve: None,
        },
    )
    .await
    .expect("instance");
    let sql = "SELECT campaign FROM dsp_impressions";
    let workflow = workflows::create_workflow(
        &ctx.db,
        user.id,
        workflows::NewWorkflow {
            instance_id: instance.id,
            name: "wf".into(),
            description: None,
            sql_query: sql.into(),
            parameters: serde_json::json!({}),
            tags: Vec::new(),
            template_id: None,
        },
    )
    .await
    .expect("workflow");
    let window = TimeWindow::parse("2026-01-01T00:00:00", "2026-01-08T00:00:00", None).unwrap();
    let mut ids = Vec::new();
    for n in 0..2 {
        let new = NewExecution {
            user_id: user.id,
            workflow_id: workflow.id,
            workflow_version: workflow.version,
            instance_id: instance.id,
            sql_query: format!("{sql} /* run {n} */"),
            parameters: serde_json::json!({}),
            window: window.clone(),
            triggered_by: TriggeredBy::Api,
            idempotency: None,
            links: Default::default(),
            trace: None,
        };
        ids.push(
            execution::create(&ctx.db, &new)
                .await
                .expect("create")
                .row()
                .id,
        );
    }
    Runs {
        user: user.id,
        instance: instance.id,
        ids: [ids[0], ids[1]],
    }
}

/// A step job as the build before the typed jobs pushed it (`StepJobV1`, serde's default
/// for `Option<DateTime<Utc>>`).
fn step_v1(id: ExecutionId, due: Option<chrono::DateTime<chrono::Utc>>) -> Vec<u8> {
    let due = due.map_or("null".to_owned(), |d| {
        format!(
            "\"{}\"",
            d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )
    });
    format!(r#"{{"execution_id":"{id}","due":{due}}}"#).into_bytes()
}

/// What amc-sim received (`/sim/admin/stats`).
async fn sim_stats(sim: &amc_sim::SimHandle) -> serde_json::Value {
    reqwest::get(format!("{}/sim/admin/stats", sim.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

async fn status(driver: &Driver, id: ExecutionId) -> execution::ExecutionRow {
    execution::find(&driver.ctx.db, id)
        .await
        .expect("find")
        .expect("row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_go_from_queued_to_succeeded_one_step_at_a_time() {
    let s = setup(Duration::from_millis(200)).await;
    let mut driver = Driver::new(s.config.clone()).await.expect("driver");
    let Runs {
        instance,
        ids: [a, b],
        ..
    } = two_queued_runs(&driver).await;
    let p = &driver.ctx.producer;
    // The JSON earlier builds pushed: a submit step without `due`, and an admission.
    p.push_raw(
        "execution.submit",
        format!(r#"{{"execution_id":"{a}"}}"#).into_bytes(),
    )
    .await
    .expect("push");
    p.push_raw(
        "instance.admit",
        format!(r#"{{"instance_id":"{instance}"}}"#).into_bytes(),
    )
    .await
    .expect("push");

    // One round: both admitted and submitted to AMC, nothing further due yet. The
    // admission sends the runs it admits itself: no submit job of theirs goes out.
    let ran = driver.run_pending(10).await.expect("round");
    assert!(
        ran.of::<AdmitJob>() >= 1 && ran.of::<SubmitJob>() == 1,
        "{ran:?}"
    );
    for id in [a, b] {
        let row = execution::find(&driver.ctx.db, id).await.unwrap().unwrap();
        assert_eq!(row.status, ExecutionStatus::Running, "{id}");
        assert!(row.amc_execution_id.is_some());
    }
    // Rounds until AMC is done, the checks (a second ahead) not waited for, then the fetch.
    driver.lookahead = Duration::from_millis(1500);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        driver.run_pending(10).await.expect("round");
        let done = [a, b].iter().all(|id| {
            futures::executor::block_on(execution::find(&driver.ctx.db, *id))
                .unwrap()
                .unwrap()
                .status
                == ExecutionStatus::Succeeded
        });
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs never succeeded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in [a, b] {
        let row = execution::find(&driver.ctx.db, id).await.unwrap().unwrap();
        assert!(row.row_count.is_some_and(|n| n > 0), "{row:?}");
        let trail: Vec<ExecutionStatus> = execution::transitions(&driver.ctx.db, id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.to_status)
            .collect();
        use ExecutionStatus::*;
        assert_eq!(trail, [Queued, Submitting, Running, Fetching, Succeeded]);
    }
    // AMC received each run once.
    let stats = sim_stats(&s.sim).await;
    let runs = stats["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{stats}");
    assert!(runs.iter().all(|r| r["submissions"] == 1), "{stats}");
    // What is left are the admissions the freed slots asked for (nothing queued to admit).
    let rest = driver.run_pending(3).await.unwrap();
    assert_eq!(rest.total(), rest.of::<AdmitJob>(), "{rest:?}");
    assert_eq!(driver.run_pending(3).await.unwrap().total(), 0);
    let _ = driver.ctx.producer.remove_prefix_keys().await;
    let _ = s.sim.shutdown().await;
    s.db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_fetch_and_cancel_jobs_of_the_previous_build_run() {
    // AMC runs take 3 s, so the cancelled run is still running there when it is cancelled.
    let s = setup(Duration::from_secs(3)).await;
    let driver = Driver::new(s.config.clone()).await.expect("driver");
    assert!(driver.queues().contains(&"execution.cancel"));
    let Runs {
        user,
        instance,
        ids: [a, b],
    } = two_queued_runs(&driver).await;
    let p = &driver.ctx.producer;
    p.enqueue(&AdmitJob {
        instance_id: instance,
    })
    .await
    .expect("push");
    driver.run_pending(10).await.expect("submit");
    for id in [a, b] {
        assert_eq!(status(&driver, id).await.status, ExecutionStatus::Running);
    }
    // The status checks the submissions scheduled are dropped: from here on, only the
    // jobs pushed below in the old JSON move the runs.
    let far = std::time::SystemTime::now() + Duration::from_secs(3600);
    let dropped = p.take_runnable::<PollJob>(100, far).await.expect("take");
    assert_eq!(dropped.len(), 2);

    // Cancel (`"due":null`, as the API pushed it): brings b's check forward, which
    // cancels it at AMC.
    assert!(matches!(
        execution::request_cancel(&driver.ctx.db, user, b)
            .await
            .expect("cancel"),
        execution::CancelOutcome::Requested(_)
    ));
    p.push_raw("execution.cancel", step_v1(b, None))
        .await
        .expect("push");
    assert_eq!(driver.run_due::<CancelJob>().await.expect("cancel"), 1);
    assert_eq!(driver.run_due::<PollJob>().await.expect("check"), 1);
    assert_eq!(status(&driver, b).await.status, ExecutionStatus::Cancelled);

    // Poll, due at the row's `next_check_at`, once AMC has finished a.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let due = status(&driver, a).await.next_check_at;
    assert!(due.is_some());
    p.push_raw("execution.poll", step_v1(a, due))
        .await
        .expect("push");
    assert_eq!(driver.run_due::<PollJob>().await.expect("check"), 1);
    let row = status(&driver, a).await;
    assert_eq!(row.status, ExecutionStatus::Fetching);

    // Fetch: the job the check pushed is replaced by the old JSON of the same step.
    let pushed = p.take_runnable::<FetchJob>(100, far).await.expect("take");
    assert_eq!(pushed.len(), 1);
    p.push_raw("execution.fetch", step_v1(a, row.next_check_at))
        .await
        .expect("push");
    assert_eq!(driver.run_due::<FetchJob>().await.expect("fetch"), 1);
    let row = status(&driver, a).await;
    assert_eq!(row.status, ExecutionStatus::Succeeded);
    assert!(row.row_count.is_some_and(|n| n > 0), "{row:?}");

    // AMC was asked to cancel b, once.
    let stats = sim_stats(&s.sim).await;
    assert_eq!(stats["cancels"], 1, "{stats}");
    let _ = driver.ctx.producer.remove_prefix_keys().await;
    let _ = s.sim.shutdown().await;
    s.db.drop_db().await;
}
