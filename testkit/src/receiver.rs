//! A webhook receiver for tests: a local HTTP server that records every request
//! (headers, body, when) and answers as it is told: accept, fail the first attempts of
//! each message with 503, answer slowly, or fail always. It dedups on `webhook-id`, as
//! Standard Webhooks asks receivers to, counting what it accepted more than once.

use poem::listener::TcpAcceptor;
use poem::{EndpointExt, Request, Response, Route, Server, handler, http::StatusCode, web::Data};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 at once.
    Accept,
    /// 503 to the first `n` attempts of each `webhook-id`, then 200.
    FailFirst(usize),
    /// This status to everything.
    Always(u16),
    /// 200 after this long.
    Slow(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    got: Vec<Received>,
    tries: HashMap<String, usize>,
    accepted: HashSet<String>,
    duplicates: usize,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

#[handler]
async fn receive(req: &Request, body: Vec<u8>, Data(state): Data<&Arc<Mutex<State>>>) -> Response {
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let behaviour = {
        let mut s = state.lock().unwrap();
        *s.tries.entry(id.clone()).or_default() += 1;
        s.behaviour.unwrap_or(Behaviour::Accept)
    };
    let status = match behaviour {
        Behaviour::Accept => 200,
        Behaviour::Always(code) => code,
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            200
        }
        Behaviour::FailFirst(n) => {
            let tries = state.lock().unwrap().tries[&id];
            if tries <= n { 503 } else { 200 }
        }
    };
    let mut s = state.lock().unwrap();
    if (200..300).contains(&status) && !s.accepted.insert(id) {
        s.duplicates += 1;
    }
    s.got.push(Received {
        at: Instant::now(),
        headers,
        body,
        status,
    });
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .body("ok")
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub async fn start(behaviour: Behaviour) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            behaviour: Some(behaviour),
            ..State::default()
        }));
        let app = Route::new().at("/*path", receive).data(state.clone());
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        })
    }

    /// Answers differently from now on.
    pub fn set(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = Some(behaviour);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// The `webhook-id`s accepted (answered 2xx) so far.
    pub fn accepted(&self) -> HashSet<String> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Messages accepted more than once.
    pub fn duplicates(&self) -> usize {
        self.state.lock().unwrap().duplicates
    }
}

/// Checks deliveries with the reference implementation of Standard Webhooks (the Python
/// `standardwebhooks` package from PyPI, installed once into `target/venv-webhooks`):
/// every request must verify with `secret`. Returns how many verified.
pub fn verify_with_reference(secret: &str, requests: &[Received]) -> anyhow::Result<usize> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join("target").join("venv-webhooks");
    let python = venv.join("bin").join("python");
    // One installer at a time (tests run in parallel).
    let status = std::process::Command::new("flock")
        .arg(root.join("target").join(".venv-webhooks.lock"))
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "[ -x '{py}' ] && '{py}' -c 'import standardwebhooks' 2>/dev/null || \
             (python3 -m venv '{venv}' && '{venv}/bin/pip' install -q 'standardwebhooks==1.0.0')",
            py = python.display(),
            venv = venv.display()
        ))
        .status()?;
    anyhow::ensure!(status.success(), "installing standardwebhooks failed");
    let lines: Vec<String> = requests
        .iter()
        .map(|r| {
            serde_json::json!({
                "headers": r.headers,
                "body": String::from_utf8_lossy(&r.body),
            })
            .to_string()
        })
        .collect();
    let script = root
        .join("testkit")
        .join("tests")
        .join("webhooks")
        .join("verify.py");
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(lines.join("\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "verification failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}
