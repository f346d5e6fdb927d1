//! `GET /events/stream` with a worker and amc-sim: a run's transitions arrive live and in
//! order; a client that drops mid-run and comes back with `Last-Event-ID` (header, or
//! `?last_event_id=`) gets everything after that event, nothing missed and nothing
//! repeated; at shutdown the stream ends cleanly and does not hold the API up.

use crate::{Next, SQL, Sse, SseEvent, user, whole_feed};
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::{System, SystemOptions};

const TRAIL: [&str; 5] = [
    "execution.queued",
    "execution.submitting",
    "execution.running",
    "execution.fetching",
    "execution.succeeded",
];

fn types(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

fn ids(events: &[SseEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_delivers_runs_live_and_resumes_after_the_last_event_id() {
    let mut sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let (c, _) = user(&sys, "live@example.com").await;
    let setup = c.first_run_setup("amclive", 10, SQL, json!({"n": 0})).await;
    let token = c.token.clone();
    let wait = Duration::from_secs(15);

    // Live: the stream starts now, and shows the run's five transitions in order, each
    // with the execution as its GET shows it.
    let (s, sse, e) = Sse::open(&c, token.as_deref(), "", &[]).await;
    assert_eq!(s, 200, "{e}");
    let mut sse = sse.expect("stream");
    let first = c.run(&setup.workflow_id, json!({"n": 1})).await;
    let mut seen = sse.take(2, wait).await;
    assert_eq!(types(&seen), TRAIL[..2]);
    // The client goes away mid-run; the run ends, and a second one runs, meanwhile.
    drop(sse);
    let runs = c
        .wait_terminal(std::slice::from_ref(&first), Duration::from_secs(30))
        .await;
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
    let second = c.run(&setup.workflow_id, json!({"n": 2})).await;
    c.wait_terminal(std::slice::from_ref(&second), Duration::from_secs(30))
        .await;

    // Back with Last-Event-ID: the first run's last three, then the second's five.
    let last = seen.last().expect("seen").id.clone();
    let (s, sse, e) = Sse::open(&c, token.as_deref(), "", &[("Last-Event-ID", &last)]).await;
    assert_eq!(s, 200, "{e}");
    let mut sse = sse.expect("stream");
    let rest = sse.take(8, wait).await;
    assert!(
        matches!(sse.next(Duration::from_millis(800)).await, Next::Quiet),
        "nothing repeated or extra"
    );
    seen.extend(rest);
    let trail: Vec<&str> = TRAIL.iter().chain(TRAIL.iter()).copied().collect();
    assert_eq!(types(&seen), trail);
    for (i, e) in seen.iter().enumerate() {
        let run = if i < 5 { &first } else { &second };
        assert_eq!(e.data["data"]["id"].as_str(), Some(run.as_str()), "{e:?}");
        assert_eq!(e.data["type"].as_str(), Some(e.event.as_str()));
        assert_eq!(e.data["id"].as_str(), Some(e.id.as_str()));
    }
    assert_eq!(seen[4].data["data"]["status"], "succeeded");
    // Exactly the feed, in the feed's order.
    let feed: Vec<String> = whole_feed(&c, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids(&seen), feed);

    // Live again on the open stream: a third run arrives as it happens.
    let third = c.run(&setup.workflow_id, json!({"n": 3})).await;
    let live = sse.take(5, wait).await;
    assert_eq!(types(&live), TRAIL);
    assert!(live.iter().all(|e| e.data["data"]["id"] == third.as_str()));

    // Resuming by query (what a first EventSource URL can carry), types filtered.
    let query = format!("?last_event_id={}&types=execution.succeeded", seen[4].id);
    let (s, by_query, e) = Sse::open(&c, token.as_deref(), &query, &[]).await;
    assert_eq!(s, 200, "{e}");
    let mut by_query = by_query.expect("stream");
    let succeeded = by_query.take(2, wait).await;
    assert_eq!(ids(&succeeded), [seen[9].id.clone(), live[4].id.clone()]);
    drop(by_query);

    // Shutdown: the open stream ends cleanly at once, and the API exits well within its
    // shutdown timeout (5 s here).
    let started = Instant::now();
    let status = sys.api.sigterm_and_wait().await.expect("api exit");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the API took {:?} to stop: a stream held it",
        started.elapsed()
    );
    assert!(matches!(sse.next(Duration::from_secs(2)).await, Next::End));
    sys.cleanup().await;
}
