//! The batched step statements against a real row: a check is read only while its row is
//! still due, twins in one batch move the row once, a moved row is not moved again, and a
//! cancellation asked for meanwhile comes back with the move. An admitted run whose worker
//! never sent it waits out its lease and reaches AMC once.

use crate::SQL;
use chrono::DurationRound;
use chrono::{DateTime, Utc};
use common::execution::{
    Admit, Reschedule, Status, Submitted, admit_account, begin_submissions, mark_running_many,
    read_due, reschedule_many,
};
use common::ids::{AccountId, AmcExecutionId, ExecutionId};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

async fn next_check_at(db: &sea_orm::DatabaseConnection, id: ExecutionId) -> DateTime<Utc> {
    db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT next_check_at FROM executions WHERE id = $1",
        [id.into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "next_check_at")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_read_and_move_a_row_only_while_it_is_due() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_secs(600);
    // One check right after the submit, then none for a long while.
    opts.env.push(("AMP_POLL_MIN", "10m".to_string()));
    opts.env.push(("AMP_POLL_MAX", "10m".to_string()));
    let mut sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("steps@example.com").await;
    let setup = c.first_run_setup("amcsteps", 1, SQL, json!({})).await;
    let run = c.run(&setup.workflow_id, json!({"n": 1})).await;
    let running = wait_until(Duration::from_secs(15), || async {
        c.get(&format!("/executions/{run}")).await.1["status"] == "running"
    })
    .await;
    assert!(running, "never running");
    // From here on only this test touches the row.
    for w in &mut sys.workers {
        w.sigkill().await;
    }
    let db = sys.db.connect().await.unwrap();
    let id = ExecutionId(run.parse().unwrap());
    let due = next_check_at(&db, id).await;
    let later = due + chrono::Duration::microseconds(1);

    let read = read_due(&db, Status::Running, &[(id, due), (id, later)])
        .await
        .unwrap();
    assert_eq!(read.len(), 1, "only the due check reads the row");
    let step = &read[0];
    assert_eq!(step.row.id, id);
    assert_eq!(step.target.amc_instance_id.as_str(), "amcsteps");
    assert_eq!(step.target.region, common::ids::Region::NA);
    let token = step.token.as_ref().expect("the owner's token state");
    assert_eq!(token.status, common::connection::ConnectionStatus::Active);
    assert!(token.access_token_enc.is_some());
    assert!(
        read_due(&db, Status::Fetching, &[(id, due)])
            .await
            .unwrap()
            .is_empty(),
        "a check of another state reads nothing"
    );

    // Twins in one batch: the row moves once.
    let step = |next| Reschedule {
        id,
        status: Status::Running,
        due,
        next,
        attempt: Some(0),
    };
    let (n1, n2) = (
        due + chrono::Duration::seconds(60),
        due + chrono::Duration::seconds(61),
    );
    let moved = reschedule_many(&db, &[step(n1), step(n2)]).await.unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(moved[0].next == n1 || moved[0].next == n2);
    assert!(!moved[0].cancel_requested);
    assert_eq!(next_check_at(&db, id).await, moved[0].next);
    // A late twin finds the row moved: nothing read, nothing moved.
    assert!(
        read_due(&db, Status::Running, &[(id, due)])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        reschedule_many(&db, &[step(n1)]).await.unwrap().is_empty(),
        "a moved row is not moved again"
    );

    // A cancellation asked for meanwhile comes back with the next move.
    let (s, b) = c
        .post(&format!("/executions/{run}/cancel"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    let now_due = next_check_at(&db, id).await;
    let moved = reschedule_many(
        &db,
        &[Reschedule {
            id,
            status: Status::Running,
            due: now_due,
            next: now_due + chrono::Duration::seconds(60),
            attempt: None,
        }],
    )
    .await
    .unwrap();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].cancel_requested);
    drop(db);
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_killed_mid_call_is_taken_again_without_waiting_out_a_lease() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_secs(4);
    // A lease would hold the row for AMP_AMC_TIMEOUT + 5 s = 35 s.
    opts.env.push(("AMP_AMC_TIMEOUT", "30s".to_string()));
    let mut sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("killed-check@example.com").await;
    let setup = c.first_run_setup("amckilled", 1, SQL, json!({})).await;
    let run = c.run(&setup.workflow_id, json!({"n": 1})).await;
    let status = |c: &testkit::Client| {
        let (c, run) = (c.clone(), run.clone());
        async move { c.get(&format!("/executions/{run}")).await.1["status"].clone() }
    };
    assert!(
        wait_until(Duration::from_secs(15), || async {
            status(&c).await == "running"
        })
        .await,
        "never running"
    );
    // Every status check now hangs inside AMC; kill the worker in the middle of one.
    let slow = json!({"seed": 1, "rules": [{"route": "get", "probability": 1.0,
        "fault": {"kind": "slow", "delay_ms": 20_000}}]});
    sys.sim_admin("faults", slow).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for w in &mut sys.workers {
        w.sigkill().await;
    }
    let cleared = sys
        .http
        .delete(format!("{}/sim/admin/faults", sys.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    sys.workers.push(sys.spawn_worker().unwrap());
    // Well inside the 35 s a lease would have held the row.
    assert!(
        wait_until(Duration::from_secs(15), || async {
            status(&c).await == "succeeded"
        })
        .await,
        "the run did not finish after its check's worker died: {}",
        status(&c).await
    );
    sys.cleanup().await;
}

async fn set_row(db: &sea_orm::DatabaseConnection, sql: &'static str, id: ExecutionId) {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [id.into()],
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_begin_and_become_running_together_each_once() {
    // Nothing consumes: only this test moves the rows.
    let opts = SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    };
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("submits@example.com").await;
    let setup = c.first_run_setup("amcsubmits", 5, SQL, json!({})).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let run = c.run(&setup.workflow_id, json!({"n": n})).await;
        ids.push(ExecutionId(run.parse().unwrap()));
    }
    let db = sys.db.connect().await.unwrap();
    for id in &ids {
        set_row(
            &db,
            "UPDATE executions SET status = 'submitting', next_check_at = date_trunc('milliseconds', now()) WHERE id = $1",
            *id,
        )
        .await;
    }
    // One submission already begun (in doubt) and one the user cancelled: neither may go
    // straight to AMC.
    set_row(
        &db,
        "UPDATE executions SET submit_started_at = now() WHERE id = $1",
        ids[2],
    )
    .await;
    set_row(
        &db,
        "UPDATE executions SET cancel_requested_at = now() WHERE id = $1",
        ids[3],
    )
    .await;
    let due0 = next_check_at(&db, ids[0]).await;
    let due1 = next_check_at(&db, ids[1]).await;
    let (started, until) = (Utc::now(), Utc::now() + chrono::Duration::seconds(35));
    let started = started
        .duration_trunc(chrono::Duration::microseconds(1))
        .unwrap();
    let until = until
        .duration_trunc(chrono::Duration::microseconds(1))
        .unwrap();
    let wanted: Vec<(ExecutionId, DateTime<Utc>)> = vec![
        (ids[0], due0),
        (ids[0], due0),                                     // a twin in the same batch
        (ids[1], due1 + chrono::Duration::microseconds(1)), // a late step: not due
        (ids[2], next_check_at(&db, ids[2]).await),
        (ids[3], next_check_at(&db, ids[3]).await),
    ];
    let begun = begin_submissions(&db, &wanted, until, started)
        .await
        .unwrap();
    assert_eq!(begun.len(), 1, "only the due, clean submission begins once");
    let step = &begun[0];
    assert_eq!(step.row.id, ids[0]);
    assert_eq!(step.row.next_check_at, Some(until), "leased");
    assert_eq!(step.row.submit_started_at, Some(started));
    assert_eq!(step.target.amc_instance_id.as_str(), "amcsubmits");
    assert!(step.token.is_some(), "the owner's token state comes along");
    assert!(
        begin_submissions(&db, &[(ids[0], due0)], until, started)
            .await
            .unwrap()
            .is_empty(),
        "a leased row does not begin again"
    );

    // AMC accepted it: twins move it to running once, with one audit row and one event.
    let first_check = until + chrono::Duration::seconds(1);
    let run = |held_at| Submitted {
        id: ids[0],
        held_at,
        amc_execution_id: AmcExecutionId("amc-exec-1".into()),
        first_check,
    };
    let moved = mark_running_many(&db, &[run(until), run(until)])
        .await
        .unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].status, Status::Running);
    assert_eq!(
        moved[0].amc_execution_id.as_ref().map(|a| a.as_str()),
        Some("amc-exec-1")
    );
    assert_eq!(moved[0].next_check_at, Some(first_check));
    assert!(moved[0].running_at.is_some());
    assert!(
        mark_running_many(&db, &[run(until)])
            .await
            .unwrap()
            .is_empty(),
        "a moved row is not moved again"
    );
    let trail = common::execution::transitions(&db, ids[0]).await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!(
        (last.from_status, last.to_status),
        (Some(Status::Submitting), Status::Running)
    );
    assert_eq!(
        last.reason.as_deref(),
        Some("submitted to AMC as amc-exec-1")
    );
    assert_eq!(
        trail
            .iter()
            .filter(|t| t.to_status == Status::Running)
            .count(),
        1
    );
    let events = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT payload FROM events WHERE subject_id = $1 AND event_type = 'execution.running'",
            [ids[0].into()],
        ))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let payload: serde_json::Value = events[0].try_get("", "payload").unwrap();
    assert_eq!(payload["status"], "running");
    assert_eq!(payload["amc_execution_id"], "amc-exec-1");
    // A lease taken over meanwhile (another worker's): the stale holder moves nothing.
    let due1 = next_check_at(&db, ids[1]).await;
    let begun = begin_submissions(&db, &[(ids[1], due1)], until, started)
        .await
        .unwrap();
    assert_eq!(begun.len(), 1);
    let stale = Submitted {
        id: ids[1],
        held_at: due1,
        amc_execution_id: AmcExecutionId("amc-exec-2".into()),
        first_check,
    };
    assert!(mark_running_many(&db, &[stale]).await.unwrap().is_empty());
    drop(db);
    sys.cleanup().await;
}

/// A run its admission leased (its submission recorded as begun) whose worker died before
/// sending it: nothing takes it while its lease holds; then a submit step takes it over,
/// finds the submission in doubt, sees that AMC has no such run, and creates it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admitted_run_never_sent_reaches_amc_once_after_its_lease() {
    let opts = SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    };
    let mut sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("unsent@example.com").await;
    let setup = c.first_run_setup("amcunsent", 5, SQL, json!({})).await;
    let run = c.run(&setup.workflow_id, json!({"n": 1})).await;
    let db = sys.db.connect().await.unwrap();
    // The admission of a worker that dies right after its commit: nothing is sent.
    let account = AccountId(setup.account_id.parse().unwrap());
    let admit = Admit {
        limit: 10,
        lease: Duration::from_secs(3),
    };
    let admitted = admit_account(&db, account, admit).await.unwrap();
    assert_eq!(admitted.len(), 1);
    let row = &admitted[0].row;
    assert_eq!(row.id.to_string(), run);
    assert_eq!(row.status, Status::Submitting);
    assert!(row.submit_started_at.is_some(), "its submission begins");
    let lease = row.next_check_at.expect("leased");
    assert!(lease > Utc::now(), "leased into the future");
    assert_eq!(admitted[0].target.amc_instance_id.as_str(), "amcunsent");
    assert!(
        admitted[0].token.is_some(),
        "the owner's token state comes along"
    );

    sys.workers.push(sys.spawn_worker().expect("worker"));
    let runs = c
        .wait_terminal(std::slice::from_ref(&run), Duration::from_secs(40))
        .await;
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
    let running_at: DateTime<Utc> = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT running_at FROM executions WHERE id = $1",
            [row.id.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "running_at")
        .unwrap();
    assert!(
        running_at > lease,
        "taken over at {running_at}, before its lease ran out at {lease}"
    );
    let stats = sys.sim_stats().await.expect("sim stats");
    assert_eq!(stats["creates"].as_u64(), Some(1), "one AMC run: {stats}");
    drop(db);
    sys.cleanup().await;
}
