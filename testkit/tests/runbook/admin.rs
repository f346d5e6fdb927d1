//! RUNBOOK "Bootstrap an administrator": `migrate create-admin --email` makes a user whose
//! `GET /me` shows the admin role, with the password from `AMP_ADMIN_PASSWORD` or a random
//! one printed once; a second run with the same email (another password, other case)
//! changes nothing; bad input stops with a message naming it.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use testkit::{System, SystemOptions};

async fn password_hash(sys: &System, email: &str) -> String {
    let db = sys.db.connect().await.expect("db");
    db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT password_hash FROM users WHERE email = $1",
        [email.into()],
    ))
    .await
    .expect("query")
    .expect("user row")
    .try_get("", "password_hash")
    .expect("hash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_makes_an_admin_once() {
    let sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let email = "root.admin@example.com";
    let (ok, out, err) = sys
        .migrate(
            &["create-admin", "--email", email],
            &[("AMP_ADMIN_PASSWORD", "a long admin passphrase")],
        )
        .await
        .expect("migrate");
    assert!(ok, "create-admin failed: {out}{err}");
    assert!(
        out.contains("created admin root.admin@example.com"),
        "{out}"
    );

    let mut c = sys.client();
    let (s, b) = c
        .post(
            "/auth/login",
            json!({"email": email, "password": "a long admin passphrase"}),
        )
        .await;
    assert_eq!(s, 200, "admin login: {b}");
    c.token = b["access_token"].as_str().map(str::to_string);
    let (s, me) = c.get("/me").await;
    assert_eq!(s, 200);
    assert_eq!(me["role"], "admin", "{me}");
    assert_eq!(me["email"], email);
    let hash = password_hash(&sys, email).await;

    let (ok, out, err) = sys
        .migrate(
            &["create-admin", "--email", "Root.Admin@Example.com"],
            &[("AMP_ADMIN_PASSWORD", "another long passphrase")],
        )
        .await
        .expect("migrate");
    assert!(ok, "second create-admin failed: {out}{err}");
    assert!(
        out.contains("already exists") && out.contains("nothing changed"),
        "{out}"
    );
    assert_eq!(
        password_hash(&sys, email).await,
        hash,
        "the password changed"
    );
    let (s, _) = c
        .post(
            "/auth/login",
            json!({"email": email, "password": "a long admin passphrase"}),
        )
        .await;
    assert_eq!(s, 200, "the first password no longer works");

    // An existing ordinary user is not promoted.
    let mut u = sys.client();
    u.register_and_login("plain.user@example.com").await;
    let (ok, out, _) = sys
        .migrate(&["create-admin", "--email", "plain.user@example.com"], &[])
        .await
        .expect("migrate");
    assert!(ok && out.contains("role member"), "{out}");
    assert_eq!(u.get("/me").await.1["role"], "member");

    // Without AMP_ADMIN_PASSWORD, a random password is printed once and works.
    let (ok, out, _) = sys
        .migrate(
            &["create-admin", "--email", "second.admin@example.com"],
            &[],
        )
        .await
        .expect("migrate");
    assert!(ok, "{out}");
    let password = out
        .rsplit("shown this once: ")
        .next()
        .expect("printed password")
        .trim()
        .to_string();
    let (s, b) = sys
        .client()
        .post(
            "/auth/login",
            json!({"email": "second.admin@example.com", "password": password}),
        )
        .await;
    assert_eq!(s, 200, "the printed password: {b}");

    for (args, env, names) in [
        (
            vec!["create-admin", "--email", "not-an-email"],
            vec![],
            "--email",
        ),
        (
            vec!["create-admin", "--email", "x@example.com"],
            vec![("AMP_ADMIN_PASSWORD", "short")],
            "AMP_ADMIN_PASSWORD",
        ),
        (vec!["create-admin"], vec![], "usage"),
    ] {
        let (ok, out, err) = sys.migrate(&args, &env).await.expect("migrate");
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(names), "{args:?}: {err}");
    }
    sys.cleanup().await;
}
