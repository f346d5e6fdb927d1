//! The dispatcher's claim and the reconciler's look at deliveries, against the real
//! database: a claim takes a power of two of its free slots, oldest first, each leased for
//! its attempt; the look re-pushes a delivery whose lease passed and leaves the
//! unclaimed ones to the dispatchers (it says they wait, so that they are woken).

use common::webhook::delivery;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::time::Duration;
use testkit::TestDb;

const LEASE: Duration = Duration::from_secs(20);

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.expect(sql);
}

async fn pending_due(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()",
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get("", "n").expect("n")
}

/// The claimed deliveries' events, by their `seq`, in order.
fn seqs(claimed: &[(delivery::Work, Option<String>)]) -> Vec<i64> {
    let mut s: Vec<i64> = claimed
        .iter()
        .map(|(w, _)| w.payload["seq"].as_i64().expect("seq"))
        .collect();
    s.sort_unstable();
    s
}

#[tokio::test]
async fn a_claim_takes_a_power_of_two_and_the_look_tells_lapsed_from_unclaimed() {
    let tdb = TestDb::new().await.expect("database");
    let db = tdb.connect().await.expect("connect");
    exec(&db, "INSERT INTO users (id, email) VALUES ('00000000-0000-7000-8000-0000000000a1', 'claims@example.com')").await;
    exec(
        &db,
        "INSERT INTO webhook_endpoints (id, user_id, url, secret_enc, event_types) VALUES \
         ('00000000-0000-7000-8000-0000000000e1', '00000000-0000-7000-8000-0000000000a1', \
          'http://127.0.0.1:9/hook', '\\x00', ARRAY['collection.completed'])",
    )
    .await;
    // Six events, one statement each (oldest first); the trigger writes their deliveries.
    for seq in 1..=6 {
        exec(
            &db,
            &format!(
                "INSERT INTO events (user_id, event_type, subject_id, payload) VALUES \
                 ('00000000-0000-7000-8000-0000000000a1', 'collection.completed', gen_random_uuid(), \
                  jsonb_build_object('seq', {seq}))"
            ),
        )
        .await;
    }
    assert_eq!(pending_due(&db).await, 6);

    // Five free slots: a claim of four, the oldest, each leased for its attempt.
    let claimed = delivery::claim_due(&db, 5, LEASE).await.expect("claim");
    assert_eq!(seqs(&claimed), [1, 2, 3, 4]);
    let soon = chrono::Utc::now() + chrono::Duration::seconds(15);
    assert!(
        claimed.iter().all(|(w, _)| w.lease > soon),
        "leased for the attempt"
    );
    assert_eq!(pending_due(&db).await, 2);

    // The first delivery's attempt died with its worker: its lease passed.
    let first = claimed
        .iter()
        .map(|(w, _)| w)
        .find(|w| w.payload["seq"] == 1)
        .expect("the first");
    exec(
        &db,
        &format!(
            "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 minute' WHERE id = '{}'",
            first.id
        ),
    )
    .await;
    let replica = common::schedule::Replica::register(&db, Duration::from_secs(5))
        .await
        .expect("replica");
    let look = common::reconcile::look(&db, &replica, Duration::ZERO, 100)
        .await
        .expect("look");
    let lapsed: Vec<_> = look.overdue_deliveries.iter().map(|(id, _)| *id).collect();
    assert_eq!(lapsed, [first.id], "only the lapsed lease is re-pushed");
    assert!(look.deliveries_waiting, "two unclaimed deliveries wait");

    // A dispatcher's next claim takes all three; then nothing is overdue.
    let again = delivery::claim_due(&db, 64, LEASE).await.expect("claim");
    assert_eq!(seqs(&again), [1, 5, 6]);
    let look = common::reconcile::look(&db, &replica, Duration::ZERO, 100)
        .await
        .expect("look");
    assert!(look.overdue_deliveries.is_empty());
    assert!(!look.deliveries_waiting);
    drop(db);
    tdb.drop_db().await;
}
