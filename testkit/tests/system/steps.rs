//! The batched step statements against a real row: a check is read only while its row is
//! still due, twins in one batch move the row once, a moved row is not moved again, and a
//! cancellation asked for meanwhile comes back with the move.

use crate::SQL;
use chrono::{DateTime, Utc};
use common::execution::{Reschedule, Status, read_due, reschedule_many};
use common::ids::ExecutionId;
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
