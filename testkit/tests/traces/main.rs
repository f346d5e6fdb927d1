//! One trace per run: the real binaries export their spans over OTLP/HTTP (JSON) to a
//! receiver in this test, which posts one execution (with a webhook endpoint subscribed
//! to its completion) and checks, in the spans received, that one trace holds the
//! request, the submit, every status check and the fetch, the AMC calls, and the webhook
//! delivery, each job a child of the request with a link to the step before it.
//! Run `cargo build --workspace --bins` first (`ops/test` does).

use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Route, Server, handler, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions};

type Spans = Arc<Mutex<Vec<Value>>>;

#[handler]
fn traces(body: poem::web::Json<Value>, Data(spans): Data<&Spans>) -> poem::web::Json<Value> {
    let mut all = spans.lock().unwrap();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .map(|a| a["value"]["stringValue"].clone())
            .unwrap_or(Value::Null);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let mut s = s.clone();
                s["service"] = service.clone();
                all.push(s);
            }
        }
    }
    poem::web::Json(json!({}))
}

/// An OTLP/HTTP receiver of JSON trace exports; returns its base URL and what it got.
async fn collector() -> (String, Spans) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spans: Spans = Arc::default();
    let app = Route::new()
        .at("/v1/traces", post(traces))
        .data(spans.clone());
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (format!("http://127.0.0.1:{port}"), spans)
}

fn id(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_lowercase()
}

#[tokio::test]
async fn one_trace_holds_a_run_from_request_to_webhook() {
    let (otlp, spans) = collector().await;
    let sys = System::start(SystemOptions {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_SERVICE_NAME", "recomamp-test".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test".into(),
            ),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let mut c = sys.client();
    c.register_and_login("traces@example.com").await;
    let setup = c
        .first_run_setup(
            "amctrace01",
            10,
            "SELECT campaign FROM dsp_impressions WHERE n = {{n}}",
            json!({"n": 1}),
        )
        .await;
    let receiver = Receiver::start(Behaviour::Accept).await.unwrap();
    let (s, b) = c
        .post(
            "/webhooks",
            json!({"url": receiver.url, "event_types": ["execution.succeeded"]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let run = c.run(&setup.workflow_id, json!({"n": 7})).await;
    let done = c
        .wait_terminal(std::slice::from_ref(&run), Duration::from_secs(30))
        .await;
    assert_eq!(done[0]["status"], "succeeded");
    assert!(
        testkit::wait_until(Duration::from_secs(10), || {
            let r = receiver.clone();
            async move { !r.accepted().is_empty() }
        })
        .await
    );

    // The request's span, then everything in its trace (spans arrive in batches).
    let find_request = || {
        spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "POST /api/v1/workflows/{id}/executions")
            .cloned()
    };
    assert!(
        testkit::wait_until(Duration::from_secs(10), || {
            let found = find_request().is_some();
            async move { found }
        })
        .await,
        "the request's span arrived; got {:?}",
        {
            let mut names: Vec<String> = spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| s["name"].to_string())
                .collect();
            names.sort();
            names.dedup();
            names
        }
    );
    let request = find_request().unwrap();
    let trace = id(&request, "traceId");
    let request_id = id(&request, "spanId");
    let want = [
        "job execution.submit",
        "job execution.poll",
        "job execution.fetch",
        "job webhook.deliver",
    ];
    assert!(
        testkit::wait_until(Duration::from_secs(15), || {
            let all = spans.lock().unwrap().clone();
            let ok = want.iter().all(|w| {
                all.iter()
                    .any(|s| s["name"] == *w && id(s, "traceId") == trace)
            });
            async move { ok }
        })
        .await,
        "every job's span arrived in the request's trace: {:?}",
        {
            let all = spans.lock().unwrap().clone();
            all.iter()
                .filter(|s| {
                    s["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("job ") || n.starts_with("POST"))
                })
                .map(|s| {
                    format!(
                        "{} {} parent={}",
                        s["name"],
                        &id(s, "traceId")[..8],
                        id(s, "parentSpanId")
                    )
                })
                .collect::<Vec<_>>()
        }
    );
    let all: Vec<Value> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| id(s, "traceId") == trace)
        .cloned()
        .collect();
    let by_id: HashMap<String, &Value> = all.iter().map(|s| (id(s, "spanId"), s)).collect();
    assert!(
        all.iter().all(|s| s["service"] == "recomamp-test"),
        "OTEL_SERVICE_NAME is honoured"
    );
    // Which job a span belongs to: its nearest ancestor named `job …`.
    let job_of = |s: &Value| -> Option<String> {
        let mut cur = Some(s);
        while let Some(x) = cur {
            if x["name"].as_str().is_some_and(|n| n.starts_with("job ")) {
                return Some(id(x, "spanId"));
            }
            cur = by_id.get(&id(x, "parentSpanId")).copied();
        }
        None
    };
    let jobs: Vec<&Value> = all
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("job ")))
        .collect();
    let job = |name: &str| -> Vec<&Value> {
        jobs.iter().copied().filter(|s| s["name"] == name).collect()
    };
    for j in &jobs {
        assert_eq!(
            id(j, "parentSpanId"),
            request_id,
            "{} is a child of the request",
            j["name"]
        );
    }
    // The run's steps in the order they ran: the submit that admitted it, the submit that
    // created it at AMC, every status check, the fetch. Each links to the step before it.
    let mut chain: Vec<&Value> = jobs
        .iter()
        .copied()
        .filter(|j| {
            [
                "job execution.submit",
                "job execution.poll",
                "job execution.fetch",
            ]
            .contains(&j["name"].as_str().unwrap_or(""))
        })
        .collect();
    chain.sort_by_key(|j| {
        j["startTimeUnixNano"]
            .as_str()
            .unwrap_or("")
            .parse::<u128>()
            .unwrap_or(0)
    });
    let names: Vec<&str> = chain.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"job execution.submit"), "{names:?}");
    assert_eq!(names.last(), Some(&"job execution.fetch"), "{names:?}");
    assert!(names.contains(&"job execution.poll"), "{names:?}");
    assert_eq!(job("job webhook.deliver").len(), 1);
    let linked_job = |s: &Value| -> Option<String> {
        s["links"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| by_id.get(&id(l, "spanId")).and_then(|x| job_of(x)))
            .next()
    };
    for pair in chain.windows(2) {
        assert_eq!(
            linked_job(pair[1]),
            Some(id(pair[0], "spanId")),
            "{} links to the {} before it ({names:?})",
            pair[1]["name"],
            pair[0]["name"]
        );
    }
    // The AMC calls sit inside the jobs that made them.
    for (call, of) in [
        ("amc create_execution", "job execution.submit"),
        ("amc get_execution", "job execution.poll"),
        ("amc download_urls", "job execution.fetch"),
    ] {
        let calls: Vec<&Value> = all.iter().filter(|s| s["name"] == call).collect();
        assert!(!calls.is_empty(), "{call} in the trace");
        for c in calls {
            let j = job_of(c)
                .and_then(|j| by_id.get(&j).copied())
                .expect("inside a job");
            assert_eq!(j["name"], of, "{call} inside {of}");
        }
    }
    // A batched statement serving many runs links to each of them: every status check's
    // read of its row is a share of a `steps.read` span linked to that check.
    let everything = spans.lock().unwrap().clone();
    for poll in job("job execution.poll") {
        let check = id(poll, "spanId");
        assert!(
            everything.iter().any(|s| s["name"] == "steps.read"
                && s["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|l| id(l, "spanId") == check && id(l, "traceId") == trace)),
            "a steps.read span links to the check {check}"
        );
    }
    sys.cleanup().await;
}
