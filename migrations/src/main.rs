//! `migrate`: `migrate up` creates the database named in `AMP_DATABASE_URL` when missing and
//! applies pending migrations; `migrate status` lists the migrations and their state; and
//! the operator's commands: `create-admin`, `rotate-encryption-key`, `replay-dead-jobs`.

use std::process::ExitCode;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/amp";
const USAGE: &str = "usage: migrate <command>\n\
    \n  up                        create the database if missing and apply pending migrations\
    \n  status                    list migrations and whether they are applied\
    \n  create-admin --email E    a new admin user (password: AMP_ADMIN_PASSWORD, or printed once);\
    \n                            an email already taken changes nothing\
    \n  rotate-encryption-key     re-encrypt stored tokens and secrets under AMP_ENCRYPTION_KEY,\
    \n                            opening the old ones with AMP_ENCRYPTION_KEY_PREVIOUS\
    \n  replay-dead-jobs [--queue Q] [--limit N]\
    \n                            put dead jobs (default all, 1000 at most) back on their queues\
    \n\nThe database is AMP_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/amp);\
    \nevery AMP_* variable is read as the processes read it.";

/// Runs an operator's command with the processes' configuration.
async fn admin<F, Fut>(run: F) -> ExitCode
where
    F: FnOnce(std::sync::Arc<common::config::Config>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let config = match common::config::Config::from_env() {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => {
            eprintln!("migrate: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = std::env::var("AMP_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let shown = migrations::database::redact(&url);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["up"] => match migrations::migrate_up_applied(&url).await {
            Ok(applied) if applied.is_empty() => {
                println!("{shown}: up to date, nothing to apply");
                ExitCode::SUCCESS
            }
            Ok(applied) => {
                for name in &applied {
                    println!("applied {name}");
                }
                println!("{shown}: {} migration(s) applied", applied.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("migrate up failed on {shown}: {e:#}");
                ExitCode::FAILURE
            }
        },
        ["status"] => match migrations::migration_status(&url).await {
            Ok(states) => {
                for s in &states {
                    let state = if s.applied { "applied" } else { "pending" };
                    println!("{state:8} {}", s.name);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("migrate status failed on {shown}: {e:#}");
                ExitCode::FAILURE
            }
        },
        ["create-admin", "--email", email] => {
            let email = email.to_string();
            admin(|c| async move { migrations::admin::create_admin_user(&c, &email).await }).await
        }
        ["rotate-encryption-key"] => {
            admin(|c| async move { migrations::admin::rotate_encryption_key(&c).await }).await
        }
        ["replay-dead-jobs", rest @ ..] => match replay_args(rest) {
            Some((queue, limit)) => {
                admin(|c| async move {
                    migrations::admin::replay_dead_jobs(&c, queue.as_deref(), limit).await
                })
                .await
            }
            None => {
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
        },
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `[--queue Q] [--limit N]` in any order.
fn replay_args(rest: &[&str]) -> Option<(Option<String>, u64)> {
    let (mut queue, mut limit) = (None, 1000);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        match *flag {
            "--queue" => queue = Some(it.next()?.to_string()),
            "--limit" => limit = it.next()?.parse().ok().filter(|n| *n > 0)?,
            _ => return None,
        }
    }
    Some((queue, limit))
}
