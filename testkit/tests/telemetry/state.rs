//! The shared-state gauges equal the real state: jobs queued, delayed, pending and dead on
//! purpose in a system with no worker, and runs in and out of their instances' slots.

use crate::Observed;
use crate::exposition::Exposition;
use common::ids::ExecutionId;
use common::jobs::{ALL_QUEUES, DeliverJob, FetchJob, PollJob, SubmitJob};
use queue::{Job, Producer, QueueConfig};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What Redis and Postgres hold for one queue.
#[derive(Debug, Default, PartialEq)]
struct Real {
    depth: f64,
    pending: f64,
    delayed: f64,
    dead: f64,
}

async fn real(o: &Observed, queue: &str, dead: &HashMap<String, i64>) -> Real {
    let client = redis::Client::open(o.sys.redis_url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys = QueueConfig::new(o.sys.redis_url.clone(), o.sys.prefix.clone()).keys(queue);
    let len: u64 = redis::cmd("XLEN")
        .arg(&keys.stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    let delayed: u64 = redis::cmd("ZCARD")
        .arg(&keys.delayed)
        .query_async(&mut conn)
        .await
        .unwrap();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&keys.stream)
        .arg(queue::GROUP)
        .query_async(&mut conn)
        .await
        .unwrap_or(redis::Value::Nil);
    let pending = match pending {
        redis::Value::Array(v) => match v.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    };
    Real {
        depth: (len - pending) as f64,
        pending: pending as f64,
        delayed: delayed as f64,
        dead: dead.get(queue).copied().unwrap_or(0) as f64,
    }
}

fn shown(e: &Exposition, queue: &str) -> Real {
    let v = |name: &str| e.value(name, &[("queue", queue)]).unwrap_or(-1.0);
    Real {
        depth: v("queue_depth"),
        pending: v("queue_pending"),
        delayed: v("queue_delayed"),
        dead: v("queue_dead_jobs"),
    }
}

async fn dead_rows(o: &Observed) -> HashMap<String, i64> {
    let db = o.sys.db.connect().await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT queue, count(*) AS n FROM dead_jobs GROUP BY queue",
        ))
        .await
        .expect("dead rows");
    rows.iter()
        .map(|r| (r.try_get("", "queue").unwrap(), r.try_get("", "n").unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_series_equal_what_redis_and_dead_jobs_hold() {
    let o = Observed::start(0, Vec::new()).await;
    let producer = Producer::connect(QueueConfig::new(
        o.sys.redis_url.clone(),
        o.sys.prefix.clone(),
    ))
    .await
    .expect("producer");
    let poll = |_| PollJob::new(ExecutionId::new(), None);
    producer
        .enqueue_batch(&(0..5).map(poll).collect::<Vec<_>>())
        .await
        .unwrap();
    for _ in 0..3 {
        producer
            .enqueue_after(&poll(0), Duration::from_secs(3600))
            .await
            .unwrap();
    }
    producer
        .enqueue_batch(&[
            SubmitJob::new(ExecutionId::new(), None),
            SubmitJob::new(ExecutionId::new(), None),
        ])
        .await
        .unwrap();
    // One poll job fetched under the workers' group and never acknowledged.
    let client = redis::Client::open(o.sys.redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = QueueConfig::new(o.sys.redis_url.clone(), o.sys.prefix.clone())
        .keys(PollJob::QUEUE)
        .stream;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(queue::GROUP)
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(queue::GROUP)
        .arg("telemetry-test")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let first_waiting: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let waiting_since = queue::stream_id_ms(&first_waiting.ids[1].id).unwrap();
    let db = o.sys.db.connect().await.unwrap();
    for queue in [FetchJob::QUEUE, FetchJob::QUEUE, DeliverJob::QUEUE] {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO dead_jobs (queue, payload, error, attempts) VALUES ($1, '{}', 'boom', 25)",
            [queue.into()],
        ))
        .await
        .unwrap();
    }

    let e = o
        .scrape_until(&o.scheduler, |e| {
            shown(e, PollJob::QUEUE).pending == 1.0 && shown(e, DeliverJob::QUEUE).dead == 1.0
        })
        .await;
    let scraped_at = now_ms();
    let dead = dead_rows(&o).await;
    let expected = [
        (
            PollJob::QUEUE,
            Real {
                depth: 4.0,
                pending: 1.0,
                delayed: 3.0,
                dead: 0.0,
            },
        ),
        (
            SubmitJob::QUEUE,
            Real {
                depth: 2.0,
                ..Real::default()
            },
        ),
        (
            FetchJob::QUEUE,
            Real {
                dead: 2.0,
                ..Real::default()
            },
        ),
        (
            DeliverJob::QUEUE,
            Real {
                dead: 1.0,
                ..Real::default()
            },
        ),
    ];
    for queue in ALL_QUEUES {
        let want = expected
            .iter()
            .find(|(q, _)| *q == queue)
            .map(|(_, r)| r)
            .unwrap_or(&Real {
                depth: 0.0,
                pending: 0.0,
                delayed: 0.0,
                dead: 0.0,
            });
        assert_eq!(&shown(&e, queue), want, "{queue}: the series");
        assert_eq!(
            &real(&o, queue, &dead).await,
            want,
            "{queue}: Redis and dead_jobs"
        );
    }
    // The oldest poll job waiting to start is the second pushed (the first is pending); the
    // gauge was computed within the last refresh (200 ms) before the scrape.
    let age = e
        .value("queue_oldest_job_age_seconds", &[("queue", PollJob::QUEUE)])
        .unwrap();
    let upper = (scraped_at - waiting_since) as f64 / 1000.0;
    assert!(
        age <= upper && age >= upper - 2.0,
        "age {age}, at most {upper}"
    );
    let idle = e.value(
        "queue_oldest_job_age_seconds",
        &[("queue", FetchJob::QUEUE)],
    );
    assert_eq!(idle, Some(0.0));
    assert_eq!(e.value("workers_alive", &[]), Some(0.0));
    o.cleanup().await;
}

/// `count(*)` of runs submitting or running per instance.
async fn slots_in_use(o: &Observed) -> HashMap<String, f64> {
    let db = o.sys.db.connect().await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT instance_id::text AS id, count(*) AS n FROM executions \
             WHERE status IN ('submitting', 'running') GROUP BY instance_id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get("", "n").unwrap();
            (r.try_get("", "id").unwrap(), n as f64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_series_equal_the_rows() {
    let o = Observed::start(0, Vec::new()).await;
    let mut c = o.sys.client();
    c.register_and_login("slots@example.com").await;
    let full = c
        .first_run_setup(
            "amcfull",
            2,
            "SELECT 1 AS one FROM dsp_impressions",
            json!({}),
        )
        .await;
    let other = c.instance(&full.account_id, "amcother", 5).await;
    let other_wf = c
        .workflow(&other, "SELECT 2 AS two FROM dsp_impressions", json!({}))
        .await;
    let mut on_full = Vec::new();
    for _ in 0..5 {
        on_full.push(c.run(&full.workflow_id, json!({})).await);
    }
    let on_other = c.run(&other_wf, json!({})).await;
    // No worker runs: put two of `full`'s runs in its slots (their submit due), and the
    // other instance's run at AMC, checked again in an hour.
    let db = o.sys.db.connect().await.unwrap();
    let set = |sql: &'static str, ids: Vec<String>| {
        let db = db.clone();
        async move {
            for id in ids {
                let id: uuid::Uuid = id.parse().unwrap();
                db.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [id.into()],
                ))
                .await
                .unwrap();
            }
        }
    };
    set(
        "UPDATE executions SET status = 'submitting', next_check_at = now() - interval '1 second' WHERE id = $1",
        on_full[..2].to_vec(),
    )
    .await;
    set(
        "UPDATE executions SET status = 'running', next_check_at = now() + interval '1 hour' WHERE id = $1",
        vec![on_other],
    )
    .await;

    let want_waiting = |e: &Exposition| {
        e.value(
            "instance_waiting_runs",
            &[
                ("instance_id", &full.instance_id),
                ("reason", "instance_cap"),
            ],
        )
    };
    // Five queued runs on a cap of two also show three waiting before the updates land,
    // so the scrape waits for the slots the updates take as well.
    let slots = |e: &Exposition, instance: &str| {
        e.value("instance_slots_in_use", &[("instance_id", instance)])
    };
    let e = o
        .scrape_until(&o.scheduler, |e| {
            want_waiting(e) == Some(3.0)
                && slots(e, &full.instance_id) == Some(2.0)
                && slots(e, &other) == Some(1.0)
        })
        .await;
    let rows = slots_in_use(&o).await;
    assert_eq!(rows.get(&full.instance_id), Some(&2.0), "{rows:?}");
    assert_eq!(rows.get(&other), Some(&1.0), "{rows:?}");
    let shown: HashMap<String, f64> = e
        .samples("instance_slots_in_use")
        .map(|s| (s.labels["instance_id"].clone(), s.value))
        .collect();
    assert_eq!(shown, rows, "instance_slots_in_use equals the rows");
    assert_eq!(want_waiting(&e), Some(3.0));
    assert_eq!(
        e.samples("instance_waiting_runs").count(),
        1,
        "only the full instance's runs wait"
    );
    // Runnable: the two due submits; no queued run fits a slot; the check is an hour away.
    let runnable = |q: &str| e.value("runnable_jobs", &[("queue", q)]);
    assert_eq!(runnable("execution.submit"), Some(2.0));
    assert_eq!(runnable("execution.poll"), Some(0.0));
    assert_eq!(runnable(DeliverJob::QUEUE), Some(0.0));

    // A slot frees: one queued run becomes runnable, the other two still wait for the cap.
    set(
        "UPDATE executions SET status = 'cancelled', next_check_at = NULL WHERE id = $1",
        on_full[..1].to_vec(),
    )
    .await;
    let e = o
        .scrape_until(&o.scheduler, |e| {
            want_waiting(e) == Some(0.0) || want_waiting(e).is_none()
        })
        .await;
    let reasons: HashMap<String, f64> = e
        .samples("instance_waiting_runs")
        .map(|s| (s.labels["reason"].clone(), s.value))
        .collect();
    assert_eq!(
        reasons,
        HashMap::from([("queued_behind_older_runs".to_owned(), 3.0)])
    );
    assert_eq!(
        e.value("runnable_jobs", &[("queue", "execution.submit")]),
        Some(2.0),
        "one due submit and one admissible run"
    );
    assert_eq!(slots(&e, &full.instance_id), Some(1.0));
    o.cleanup().await;
}
