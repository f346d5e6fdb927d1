//! Commit order under concurrent writers: transactions that write events and stay open a
//! random few hundred milliseconds (some roll back), while a reader follows the feed a
//! small page at a time and, after each page, reads it whole from the start again. The
//! reader sees every committed event exactly once, in `(txid, seq)` order, and the whole
//! feed always begins with what it has seen: no event ever appears behind its cursor.

use common::event::feed::{self, FeedEvent, FeedPosition, FeedQuery};
use common::event::{self as events, EventType, NewEvent};
use common::ids::{ExecutionId, UserId};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::TestDb;
use uuid::Uuid;

fn random(below: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(below)) as u64
}

async fn new_user(db: &DatabaseConnection, email: &str) -> UserId {
    let id = UserId::new();
    crate::exec(
        db,
        &format!("INSERT INTO users (id, email) VALUES ('{id}', '{email}')"),
    )
    .await;
    id
}

fn query(user: UserId, after: FeedPosition, limit: u64) -> FeedQuery {
    FeedQuery {
        user,
        after,
        types: Vec::new(),
        limit,
    }
}

/// One writer: transactions of 1–3 events (of `user`, and sometimes of `other`), open
/// 50–450 ms, one in six rolled back, until `until`. Returns the committed ids of `user`.
pub async fn writer(
    db: DatabaseConnection,
    user: UserId,
    other: UserId,
    until: tokio::time::Instant,
) -> Vec<Uuid> {
    let mut committed = Vec::new();
    while tokio::time::Instant::now() < until {
        let txn = db.begin().await.expect("begin");
        let mut mine = Vec::new();
        for _ in 0..=random(3) {
            let subject = Uuid::new_v4();
            let of = if random(4) == 0 { other } else { user };
            events::record(
                &txn,
                NewEvent {
                    user: of,
                    event_type: EventType::ExecutionQueued,
                    subject: ExecutionId(subject).into(),
                    payload: json!({"id": subject}),
                },
            )
            .await
            .expect("record");
            if of == user {
                mine.push(subject);
            }
            tokio::time::sleep(Duration::from_millis(random(100))).await;
        }
        tokio::time::sleep(Duration::from_millis(50 + random(350))).await;
        if random(6) == 0 {
            txn.rollback().await.expect("rollback");
        } else {
            txn.commit().await.expect("commit");
            committed.extend(mine);
        }
    }
    committed
}

fn subjects(events: &[FeedEvent]) -> Vec<Uuid> {
    events
        .iter()
        .map(|e| {
            e.data["id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .expect("subject")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_read_once_each_in_commit_order() {
    let tdb = TestDb::new().await.expect("database");
    let db = common::db::connect(&tdb.url, 16).await.expect("connect");
    let user = new_user(&db, "order@example.com").await;
    let other = new_user(&db, "other@example.com").await;

    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    let writers: Vec<_> = (0..8)
        .map(|_| tokio::spawn(writer(db.clone(), user, other, until)))
        .collect();
    // How many events were committed, once the writers are done.
    let done: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));

    // The reader: a small page at a time from its cursor; after each page, the whole feed
    // from the start must begin with everything it has seen, in the same order. Events
    // become readable once every older transaction of the cluster has ended (other tests'
    // included), so it reads until it has as many as were committed (or 20 s have passed).
    let reader = {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: Vec<FeedEvent> = Vec::new();
            let mut at = FeedPosition::START;
            let mut reads = 0;
            let deadline = until + Duration::from_secs(20);
            loop {
                let expected = *done.lock().unwrap();
                if expected.is_some_and(|n| seen.len() >= n)
                    || tokio::time::Instant::now() > deadline
                {
                    return (seen, reads);
                }
                let page = feed::page(&db, &query(user, at, 7)).await.expect("page");
                reads += 1;
                for e in &page {
                    assert!(e.position > at, "{:?} came after {at:?}", e.position);
                    at = e.position;
                }
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    continue;
                }
                seen.extend(page);
                let whole = feed::page(&db, &query(user, FeedPosition::START, 100_000))
                    .await
                    .expect("whole feed");
                assert!(
                    whole.len() >= seen.len() && whole[..seen.len()] == seen[..],
                    "an event appeared behind the cursor: seen {:?}, whole feed {:?}",
                    subjects(&seen),
                    subjects(&whole)
                );
            }
        })
    };

    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.expect("writer"));
    }
    *done.lock().unwrap() = Some(committed.len());
    let (seen, reads) = reader.await.expect("reader");

    let seen_ids = subjects(&seen);
    let unique: HashSet<_> = seen_ids.iter().collect();
    assert_eq!(unique.len(), seen_ids.len(), "an event was read twice");
    let expected: HashSet<_> = committed.iter().collect();
    assert_eq!(
        unique, expected,
        "the reader saw exactly the committed events of its user"
    );
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    assert!(
        committed.len() >= 30 && reads > 20,
        "the test wrote {} events in {reads} reads",
        committed.len()
    );
    // The final feed is what the reader saw, and the order is commit order within a
    // transaction too (seq), not the event ids' order.
    let whole = feed::page(&db, &query(user, FeedPosition::START, 100_000))
        .await
        .expect("whole");
    assert_eq!(whole, seen);

    // Positions: by id, for its user only; the horizon starts after everything visible.
    let last = seen.last().expect("events");
    assert_eq!(
        feed::position_of(&db, user, last.id)
            .await
            .expect("position"),
        Some(last.position)
    );
    assert_eq!(
        feed::position_of(&db, other, last.id)
            .await
            .expect("position"),
        None
    );
    let now = feed::horizon(&db).await.expect("horizon");
    assert!(now > last.position);
    assert!(
        feed::page(&db, &query(user, now, 10))
            .await
            .expect("page")
            .is_empty()
    );
    // A type filter keeps the order and drops the rest.
    let filtered = FeedQuery {
        types: vec![EventType::ExecutionSucceeded],
        ..query(user, FeedPosition::START, 100)
    };
    assert!(feed::page(&db, &filtered).await.expect("page").is_empty());
    drop(db);
    tdb.drop_db().await;
}
