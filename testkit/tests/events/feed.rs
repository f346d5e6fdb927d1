//! `GET /events` over HTTP: pages in commit order (not id or `created_at` order), a
//! `next_cursor` always, polling from the end, `types`, another user's events and cursors
//! refused, bad input named; then a live stream read while concurrent writers hold their
//! transactions open: every committed event once, in the feed's order.

use crate::order::writer;
use crate::{Next, Sse, exec, field, user, whole_feed};
use common::ids::UserId;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};
use uuid::Uuid;

/// Inserts `n` events of `user` in one statement (one transaction), numbered from `from`,
/// ids random and `created_at` going backwards, types alternating.
async fn insert(db: &sea_orm::DatabaseConnection, user: &str, from: i64, n: i64) {
    exec(
        db,
        &format!(
            "INSERT INTO events (id, user_id, event_type, subject_id, payload, created_at) \
             SELECT gen_random_uuid(), '{user}', \
                    CASE WHEN i % 2 = 0 THEN 'execution.queued' ELSE 'execution.succeeded' END, \
                    gen_random_uuid(), jsonb_build_object('n', i), now() - i * interval '1 second' \
             FROM generate_series({from}, {}) i ORDER BY i",
            from + n - 1
        ),
    )
    .await;
}

/// Waits until the user's feed holds `n` events.
async fn visible(c: &testkit::Client, n: usize) {
    let shown = wait_until(Duration::from_secs(10), || async {
        let (_, page) = c.get("/events?limit=500").await;
        page["items"].as_array().map(Vec::len) == Some(n)
    })
    .await;
    assert!(shown, "the feed never showed {n} events");
}

fn numbers(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|e| e["data"]["n"].as_i64().expect("n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_pages_in_commit_order_for_its_user_only() {
    let sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let db = common::db::connect(&sys.db.url, 12).await.expect("connect");
    let (a, a_id) = user(&sys, "a@example.com").await;
    let (b, b_id) = user(&sys, "b@example.com").await;

    // Nothing yet: an empty page, and still a cursor to poll with.
    let (s, page) = a.get("/events").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"], serde_json::json!([]));
    let mut cursor = page["next_cursor"].as_str().expect("cursor").to_string();

    for k in 0..3 {
        insert(&db, &a_id, k * 40, 40).await;
    }
    insert(&db, &b_id, 1000, 5).await;
    // Committed events are readable once every older transaction of the cluster has
    // ended (other tests' too): B's, written last, showing means all of them do.
    visible(&b, 5).await;

    // Pages of 50: 50, 50, 20, then empty pages with a cursor that stays put.
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let (s, page) = a.get(&format!("/events?limit=50&after={cursor}")).await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        sizes.push(items.len());
        cursor = page["next_cursor"]
            .as_str()
            .expect("always a cursor")
            .to_string();
        if items.is_empty() {
            break;
        }
        got.extend(items);
    }
    assert_eq!(sizes, [50, 50, 20, 0]);
    assert_eq!(numbers(&got), (0..120).collect::<Vec<_>>());
    let first = got[0].as_object().expect("object");
    let mut keys: Vec<_> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "data", "id", "type"]);
    assert_eq!(got[1]["type"], "execution.succeeded");
    let (s, page) = a.get(&format!("/events?after={cursor}")).await;
    assert_eq!((s, page["items"].as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(page["next_cursor"].as_str(), Some(cursor.as_str()));

    // New events show up behind the polling cursor, and only they.
    insert(&db, &a_id, 120, 3).await;
    visible(&a, 123).await;
    let (_, page) = a.get(&format!("/events?after={cursor}")).await;
    assert_eq!(
        numbers(page["items"].as_array().expect("items")),
        [120, 121, 122]
    );

    // Types: one, or several comma-separated.
    let succeeded = whole_feed(&a, "&types=execution.succeeded").await;
    assert_eq!(
        numbers(&succeeded),
        (0..123).filter(|n| n % 2 == 1).collect::<Vec<_>>()
    );
    let both = whole_feed(&a, "&types=execution.succeeded,execution.queued").await;
    assert_eq!(both.len(), 123);

    // Another user: their own events only; A's cursor is refused.
    let b_feed = whole_feed(&b, "").await;
    assert_eq!(numbers(&b_feed), [1000, 1001, 1002, 1003, 1004]);
    let (s, e) = b.get(&format!("/events?after={cursor}")).await;
    assert_eq!((s, field(&e)), (422, "after".to_string()), "{e}");
    let a_event = got[0]["id"].as_str().expect("id").to_string();
    let b_event = b_feed[0]["id"].as_str().expect("id").to_string();

    // Bad input, each named.
    for (query, named) in [
        ("after=nonsense", "after"),
        (
            "after=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "after",
        ),
        ("types=execution.exploded", "types"),
        ("types=execution.queued,nope", "types"),
        ("types=", "types"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
    ] {
        let (s, e) = a.get(&format!("/events?{query}")).await;
        assert_eq!((s, field(&e)), (422, named.to_string()), "{query}: {e}");
        assert_eq!(
            e["detail"].as_str().map(|d| d.starts_with(named)),
            Some(true)
        );
    }
    let (s, page) = a.get("/events?limit=500").await;
    assert_eq!(
        (s, page["items"].as_array().map(Vec::len)),
        (200, Some(123))
    );
    let (s, _) = sys.client().get("/events").await;
    assert_eq!(s, 401);

    // The stream's input: Last-Event-ID must be one of the caller's events.
    let token = a.token.as_deref();
    let unknown = Uuid::new_v4().to_string();
    let unknown_query = format!("?last_event_id={unknown}");
    for (query, headers, named) in [
        ("", vec![("Last-Event-ID", "zzz")], "Last-Event-ID"),
        (
            "",
            vec![("Last-Event-ID", unknown.as_str())],
            "Last-Event-ID",
        ),
        (
            "",
            vec![("Last-Event-ID", b_event.as_str())],
            "Last-Event-ID",
        ),
        (unknown_query.as_str(), vec![], "last_event_id"),
        ("?types=nope", vec![], "types"),
    ] {
        let (s, sse, e) = Sse::open(&a, token, query, &headers).await;
        assert!(sse.is_none());
        assert_eq!((s, field(&e)), (422, named.to_string()), "{query}: {e}");
    }
    // Tickets: for the stream without a bearer token, once.
    let (s, _, _) = Sse::open(&a, None, "", &[]).await;
    assert_eq!(s, 401);
    let (s, t) = sys
        .client()
        .post("/events/stream-tickets", Value::Null)
        .await;
    assert_eq!(s, 401, "{t}");
    let (s, t) = a.post("/events/stream-tickets", Value::Null).await;
    assert_eq!((s, t["expires_in"].as_u64()), (201, Some(60)), "{t}");
    let ticket = t["ticket"].as_str().expect("ticket").to_string();
    let with_ticket = format!("?ticket={ticket}&types=execution.succeeded");
    let headers = [("Last-Event-ID", a_event.as_str())];
    let (s, sse, e) = Sse::open(&a, None, &with_ticket, &headers).await;
    assert_eq!(s, 200, "{e}");
    // After A's first event, the succeeded ones only: from n = 1.
    let mut sse = sse.expect("stream");
    let first = sse.take(2, Duration::from_secs(5)).await;
    assert_eq!(first[0].event, "execution.succeeded");
    assert_eq!(
        (
            first[0].data["data"]["n"].as_i64(),
            first[1].data["data"]["n"].as_i64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        first[0].id,
        first[0].data["id"].as_str().unwrap_or_default()
    );
    drop(sse);
    let (s, _, e) = Sse::open(&a, None, &with_ticket, &[]).await;
    assert_eq!(s, 401, "a ticket works once: {e}");
    let (s, _, _) = Sse::open(&a, None, "?ticket=made-up", &[]).await;
    assert_eq!(s, 401);

    // Live, with concurrent writers holding transactions open: everything committed, once,
    // in the feed's order.
    let (s, sse, e) = Sse::open(&a, token, "", &[]).await;
    assert_eq!(s, 200, "{e}");
    let mut sse = sse.expect("stream");
    let a_user = UserId(Uuid::parse_str(&a_id).expect("uuid"));
    let b_user = UserId(Uuid::parse_str(&b_id).expect("uuid"));
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..5)
        .map(|_| tokio::spawn(writer(db.clone(), a_user, b_user, until)))
        .collect();
    let mut committed = HashSet::new();
    for w in writers {
        committed.extend(w.await.expect("writer"));
    }
    let mut live = Vec::new();
    while live.len() < committed.len() {
        match sse.next(Duration::from_secs(5)).await {
            Next::Event(e) => live.push(e),
            other => panic!(
                "{} of {} events, then {other:?}",
                live.len(),
                committed.len()
            ),
        }
    }
    assert!(matches!(
        sse.next(Duration::from_millis(700)).await,
        Next::Quiet
    ));
    let subjects: Vec<Uuid> = live
        .iter()
        .map(|e| Uuid::parse_str(e.data["data"]["id"].as_str().expect("id")).expect("uuid"))
        .collect();
    assert_eq!(subjects.iter().copied().collect::<HashSet<_>>(), committed);
    let feed_tail: Vec<String> = whole_feed(&a, "").await[123..]
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect();
    let live_ids: Vec<String> = live.iter().map(|e| e.id.clone()).collect();
    assert_eq!(live_ids, feed_tail, "the stream follows the feed's order");
    drop(sse);
    drop(db);
    sys.cleanup().await;
}
