//! `migrate`: `migrate up` creates the database named in `AMP_DATABASE_URL` when missing and
//! applies pending migrations; `migrate status` lists the migrations and their state.

use std::process::ExitCode;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/amp";
const USAGE: &str = "usage: migrate <up|status>\n\
    \n  up       create the database if missing and apply pending migrations\
    \n  status   list migrations and whether they are applied\
    \n\nThe database is AMP_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/amp).";

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
