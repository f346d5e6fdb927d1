//! `migrate_up` and the `migrate` binary against the real PostgreSQL server.

mod support;

use migrations::{Migrator, MigratorTrait, database_name, migrate_up, migrate_up_applied};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use std::process::Command;
use support::*;

const TABLES: &[&str] = &[
    "amazon_connections",
    "amc_saved_workflows",
    "amc_accounts",
    "amc_instances",
    "api_keys",
    "batches",
    "collection_windows",
    "collections",
    "dead_jobs",
    "events",
    "execution_transitions",
    "executions",
    "query_templates",
    "refresh_tokens",
    "schedule_runs",
    "schedulers",
    "schedules",
    "users",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
    "workers",
    "workflows",
];

const ALL_MIGRATIONS: [&str; 14] = [
    "m20260101_000001_initial",
    "m20261130_000001_execution_keys",
    "m20261201_000001_user_tokens",
    "m20261202_000001_schedules",
    "m20261207_000001_collections",
    "m20261208_000001_webhooks",
    "m20261209_000001_telemetry",
    "m20261210_000001_execution_lists",
    "m20261211_000001_workflow_versions",
    "m20261211_000002_query_templates",
    "m20261212_000001_result_types",
    "m20261213_000001_saved_workflows",
    "m20261214_000001_batches",
    "m20261215_000001_collection_attempts",
];

/// A user, account, instance and workflow with fixed ids.
const SEED: &[&str] = &[
    "INSERT INTO users (id, email) VALUES ('00000000-0000-7000-8000-000000000001', 'a@example.com')",
    "INSERT INTO amc_accounts (id, user_id, name, entity_id, marketplace_id, region) VALUES \
     ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'acc', 'ENT1', 'ATVPDKIKX0DER', 'NA')",
    "INSERT INTO amc_instances (id, user_id, account_id, name, amc_instance_id) VALUES \
     ('00000000-0000-7000-8000-000000000003', '00000000-0000-7000-8000-000000000001', \
      '00000000-0000-7000-8000-000000000002', 'inst', 'amcabc123')",
    "INSERT INTO workflows (id, user_id, instance_id, name, sql_query) VALUES \
     ('00000000-0000-7000-8000-000000000004', '00000000-0000-7000-8000-000000000001', \
      '00000000-0000-7000-8000-000000000003', 'wf', 'SELECT 1')",
];

/// A second user with an account, an instance and a workflow of their own.
const OTHER_USER: &[&str] = &[
    "INSERT INTO users (id, email) VALUES ('00000000-0000-7000-8000-000000000011', 'z@example.com')",
    "INSERT INTO amc_accounts (id, user_id, name, entity_id, marketplace_id, region) VALUES \
     ('00000000-0000-7000-8000-000000000012', '00000000-0000-7000-8000-000000000011', 'acc', 'ENT2', 'ATVPDKIKX0DER', 'NA')",
    "INSERT INTO amc_instances (id, user_id, account_id, name, amc_instance_id) VALUES \
     ('00000000-0000-7000-8000-000000000013', '00000000-0000-7000-8000-000000000011', \
      '00000000-0000-7000-8000-000000000012', 'theirs', 'amctheirs')",
    "INSERT INTO workflows (id, user_id, instance_id, name, sql_query) VALUES \
     ('00000000-0000-7000-8000-000000000014', '00000000-0000-7000-8000-000000000011', \
      '00000000-0000-7000-8000-000000000013', 'theirs', 'SELECT 1')",
];

fn execution_insert(id_suffix: u32, extra_cols: &str, extra_vals: &str) -> String {
    format!(
        "INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
         time_window_start, time_window_end{extra_cols}) VALUES \
         ('00000000-0000-7000-9000-{id_suffix:012}', '00000000-0000-7000-8000-000000000001', \
          '00000000-0000-7000-8000-000000000004', '00000000-0000-7000-8000-000000000003', 'queued', \
          'SELECT 1', '{{}}', '2026-01-01 00:00:00', '2026-01-08 00:00:00'{extra_vals})"
    )
}

#[tokio::test]
async fn migrate_up_creates_database_and_whole_schema() {
    let url = fresh_database_url("mig");
    let name = database_name(&url).expect("name");
    let guard = DropGuard(url.clone());
    assert!(!database_exists(&name).await);

    let applied = migrate_up_applied(&url).await.expect("first migrate_up");
    assert_eq!(applied, ALL_MIGRATIONS);
    assert!(database_exists(&name).await);
    // Twice is fine and applies nothing.
    assert!(migrate_up_applied(&url).await.expect("second").is_empty());
    migrate_up(&url).await.expect("third");

    let db = Database::connect(&url).await.expect("connect");
    let tables = table_names(&db).await;
    for t in TABLES {
        assert!(
            tables.iter().any(|x| x == t),
            "table {t} missing: {tables:?}"
        );
    }
    assert_eq!(
        Migrator::get_pending_migrations(&db)
            .await
            .expect("pending")
            .len(),
        0
    );
    assert_eq!(
        Migrator::get_applied_migrations(&db)
            .await
            .expect("applied")
            .len(),
        ALL_MIGRATIONS.len()
    );

    let exec_unique = unique_indexes(&db, "executions").await;
    for idx in [
        "executions_idempotency_key_idx",
        "executions_amc_execution_id_idx",
        "executions_schedule_fire_key",
    ] {
        assert!(
            exec_unique.iter().any(|x| x == idx),
            "{idx}: {exec_unique:?}"
        );
    }
    assert!(
        unique_indexes(&db, "users")
            .await
            .iter()
            .any(|x| x == "users_email_key")
    );
    assert!(
        unique_indexes(&db, "amazon_connections")
            .await
            .iter()
            .any(|x| x == "amazon_connections_user_id_key")
    );

    for sql in SEED {
        exec(&db, sql).await;
    }
    // Same (user, idempotency_key) → unique violation; a null key never conflicts.
    exec(&db, &execution_insert(1, ", idempotency_key", ", 'k1'")).await;
    let code = exec_err(&db, &execution_insert(2, ", idempotency_key", ", 'k1'")).await;
    assert_eq!(code, "23505");
    exec(&db, &execution_insert(3, "", "")).await;
    exec(&db, &execution_insert(4, "", "")).await;
    // Same AMC execution id on one instance → unique violation.
    exec(&db, &execution_insert(5, ", amc_execution_id", ", 'amc-1'")).await;
    let code = exec_err(&db, &execution_insert(6, ", amc_execution_id", ", 'amc-1'")).await;
    assert_eq!(code, "23505");
    // A run may sit on another instance of its user than its workflow's (a batch run),
    // never on another user's instance, nor run another user's workflow.
    exec(
        &db,
        "INSERT INTO amc_instances (id, user_id, account_id, name, amc_instance_id) VALUES \
         ('00000000-0000-7000-8000-000000000006', '00000000-0000-7000-8000-000000000001', \
          '00000000-0000-7000-8000-000000000002', 'other', 'amcother')",
    )
    .await;
    let on_instance = |n: u32, instance: &str| {
        execution_insert(n, "", "").replace(
            "'00000000-0000-7000-8000-000000000003', 'queued'",
            &format!("'{instance}', 'queued'"),
        )
    };
    exec(
        &db,
        &on_instance(11, "00000000-0000-7000-8000-000000000006"),
    )
    .await;
    for s in OTHER_USER {
        exec(&db, s).await;
    }
    assert_eq!(
        exec_err(
            &db,
            &on_instance(12, "00000000-0000-7000-8000-000000000013")
        )
        .await,
        "23503",
        "another user's instance"
    );
    let their_workflow = execution_insert(13, "", "").replace(
        "'00000000-0000-7000-8000-000000000004', '00000000-0000-7000-8000-000000000003'",
        "'00000000-0000-7000-8000-000000000014', '00000000-0000-7000-8000-000000000003'",
    );
    assert_eq!(
        exec_err(&db, &their_workflow).await,
        "23503",
        "another user's workflow"
    );
    // Unknown status and an empty time window violate checks.
    let bad_status = execution_insert(7, "", "").replace("'queued'", "'paused'");
    assert_eq!(exec_err(&db, &bad_status).await, "23514");
    let bad_window =
        execution_insert(8, "", "").replace("'2026-01-08 00:00:00'", "'2026-01-01 00:00:00'");
    assert_eq!(exec_err(&db, &bad_window).await, "23514");
    // Email is unique, role is checked.
    assert_eq!(
        exec_err(
            &db,
            "INSERT INTO users (id, email) VALUES (gen_random_uuid(), 'a@example.com')"
        )
        .await,
        "23505"
    );
    assert_eq!(
        exec_err(&db, "INSERT INTO users (id, email, role) VALUES (gen_random_uuid(), 'b@example.com', 'root')").await,
        "23514"
    );
    // Schedules fire once per (schedule, scheduled_for).
    exec(
        &db,
        "INSERT INTO schedules (id, user_id, workflow_id, name, cron, time_window_rule) VALUES \
         ('00000000-0000-7000-8000-000000000005', '00000000-0000-7000-8000-000000000001', \
          '00000000-0000-7000-8000-000000000004', 's', '0 6 * * *', '{\"kind\":\"last_days\"}')",
    )
    .await;
    let fire = |n| {
        execution_insert(
            n,
            ", triggered_by, schedule_id, scheduled_for",
            ", 'schedule', '00000000-0000-7000-8000-000000000005', '2026-02-01T06:00:00Z'",
        )
    };
    exec(&db, &fire(9)).await;
    assert_eq!(exec_err(&db, &fire(10)).await, "23505");
    // Deleting the schedule keeps its execution (set null); deleting the user cascades.
    exec(&db, "DELETE FROM schedules").await;
    exec(&db, "DELETE FROM users").await;
    let left = sea_orm::ConnectionTrait::query_one_raw(
        &db,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM executions) + (SELECT count(*) FROM workflows) \
             + (SELECT count(*) FROM amc_accounts) AS n",
        ),
    )
    .await
    .expect("count")
    .expect("row");
    assert_eq!(left.try_get::<i64>("", "n").expect("n"), 0);
    db.close().await.expect("close");

    drop(guard);
    assert!(!database_exists(&name).await, "database not dropped");
}

#[tokio::test]
async fn the_execution_keys_migration_goes_down_and_up_again() {
    let url = fresh_database_url("migkeys");
    let _guard = DropGuard(url.clone());
    migrate_up(&url).await.expect("migrate up");
    let db = Database::connect(&url).await.expect("connect");
    let composite = [
        "executions_batch_fkey",
        "executions_collection_id_fkey",
        "executions_instance_fkey",
        "executions_retry_of_fkey",
        "executions_schedule_id_fkey",
        "executions_workflow_fkey",
    ];
    assert_eq!(foreign_keys(&db, "executions").await, composite);
    // Down through the execution keys (the migrations after it go first).
    let after = ALL_MIGRATIONS.len() - 1;
    Migrator::down(&db, Some(after as u32)).await.expect("down");
    assert_eq!(
        foreign_keys(&db, "executions").await,
        [
            "executions_collection_id_fkey",
            "executions_instance_id_fkey",
            "executions_schedule_id_fkey",
            "executions_user_id_fkey",
            "executions_workflow_id_fkey",
        ]
    );
    assert!(
        unique_indexes(&db, "executions")
            .await
            .iter()
            .any(|x| x == "executions_schedule_fire_key")
    );
    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(foreign_keys(&db, "executions").await, composite);
    db.close().await.expect("close");
}

#[tokio::test]
async fn the_execution_lists_migration_goes_down_and_up_again() {
    let url = fresh_database_url("miglists");
    let _guard = DropGuard(url.clone());
    migrate_up(&url).await.expect("migrate up");
    let db = Database::connect(&url).await.expect("connect");
    let indexes = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            let rows = db
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT indexname::text AS n FROM pg_indexes WHERE tablename = 'executions' \
                     AND indexdef LIKE '%created_at, id)%' ORDER BY 1",
                ))
                .await
                .expect("indexes");
            rows.iter()
                .map(|r| r.try_get::<String>("", "n").expect("n"))
                .collect::<Vec<_>>()
        }
    };
    let keyset = [
        "executions_batch_created_idx",
        "executions_collection_id_idx",
        "executions_instance_created_idx",
        "executions_schedule_created_idx",
        "executions_user_created_idx",
        "executions_user_status_created_idx",
        "executions_user_trigger_created_idx",
        "executions_workflow_created_idx",
    ];
    assert_eq!(indexes(&db).await, keyset);
    // Down through the execution lists migration and those after it.
    let through = ALL_MIGRATIONS
        .iter()
        .position(|m| *m == "m20261210_000001_execution_lists")
        .expect("the execution lists migration");
    let steps = (ALL_MIGRATIONS.len() - through) as u32;
    Migrator::down(&db, Some(steps)).await.expect("down");
    assert!(indexes(&db).await.is_empty());
    assert!(
        !foreign_keys(&db, "executions")
            .await
            .contains(&"executions_retry_of_fkey".to_string())
    );
    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(indexes(&db).await, keyset);
    db.close().await.expect("close");
}

#[tokio::test]
async fn concurrent_migrate_up_applies_once() {
    let url = fresh_database_url("migc");
    let _guard = DropGuard(url.clone());
    let (a, b, c) = tokio::join!(
        migrate_up_applied(&url),
        migrate_up_applied(&url),
        migrate_up_applied(&url)
    );
    let applied: usize = [a, b, c]
        .into_iter()
        .map(|r| r.expect("concurrent migrate_up").len())
        .sum();
    assert_eq!(applied, ALL_MIGRATIONS.len());
}

#[tokio::test]
async fn drop_database_of_missing_database_is_ok() {
    let url = fresh_database_url("migd");
    migrations::drop_database(&url).await.expect("drop missing");
}

#[test]
fn migrate_binary_up_twice_status_and_usage() {
    let url = fresh_database_url("migbin");
    let _guard = DropGuard(url.clone());
    let bin = env!("CARGO_BIN_EXE_migrate");
    for round in 0..2 {
        let out = Command::new(bin)
            .arg("up")
            .env("AMP_DATABASE_URL", &url)
            .output()
            .expect("run migrate up");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if round == 0 {
            for name in ALL_MIGRATIONS {
                assert!(stdout.contains(&format!("applied {name}")), "{stdout}");
            }
        } else {
            assert!(stdout.contains("up to date"), "{stdout}");
        }
    }
    let out = Command::new(bin)
        .arg("status")
        .env("AMP_DATABASE_URL", &url)
        .output()
        .expect("run migrate status");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ALL_MIGRATIONS {
        assert!(stdout.contains(&format!("applied  {name}")), "{stdout}");
    }

    for args in [&["bogus"][..], &[][..], &["up", "extra"][..]] {
        let out = Command::new(bin)
            .args(args)
            .env("AMP_DATABASE_URL", &url)
            .output()
            .expect("run migrate");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: migrate"));
    }
}

#[tokio::test]
async fn the_user_tokens_migration_notifies_and_goes_down_and_up_again() {
    let url = fresh_database_url("migusers");
    let _guard = DropGuard(url.clone());
    migrate_up(&url).await.expect("migrate up");
    let db = Database::connect(&url).await.expect("connect");
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect(&url)
        .await
        .expect("listener");
    listener.listen("amp_users").await.expect("listen");
    for s in SEED.iter().take(1) {
        db.execute_unprepared(s).await.expect("seed");
    }
    let id = "00000000-0000-7000-8000-000000000001";
    db.execute_unprepared("UPDATE users SET email = 'b@example.com'")
        .await
        .expect("update");
    db.execute_unprepared("UPDATE users SET token_version = token_version + 1")
        .await
        .expect("bump");
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .expect("recv");
    // The email change did not notify; the version change did.
    assert_eq!(n.payload(), id);
    db.execute_unprepared("DELETE FROM users")
        .await
        .expect("delete");
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .expect("recv");
    assert_eq!(n.payload(), id);
    // Down through this migration (and those after it), then up again.
    let after = ALL_MIGRATIONS.len() - 2;
    Migrator::down(&db, Some(after as u32)).await.expect("down");
    Migrator::up(&db, None).await.expect("up again");
    db.close().await.expect("close");
}

#[tokio::test]
async fn the_collections_migration_checks_windows_and_reserves_and_goes_down_and_up() {
    let url = fresh_database_url("migcoll");
    let _guard = DropGuard(url.clone());
    migrate_up(&url).await.expect("migrate up");
    let db = Database::connect(&url).await.expect("connect");
    for s in SEED {
        exec(&db, s).await;
    }
    exec(
        &db,
        "INSERT INTO collections (id, user_id, workflow_id, instance_id, name, start_date, end_date, granularity, sql_query) \
         VALUES ('00000000-0000-7000-8000-000000000006', '00000000-0000-7000-8000-000000000001', \
         '00000000-0000-7000-8000-000000000004', '00000000-0000-7000-8000-000000000003', 'c', '2026-01-01', '2026-01-03', 'day', 'SELECT 1')",
    )
    .await;
    let window = |pos: u32, start: &str, end: &str| {
        format!(
            "INSERT INTO collection_windows (collection_id, position, window_start, window_end) VALUES \
             ('00000000-0000-7000-8000-000000000006', {pos}, '{start}', '{end}')"
        )
    };
    exec(&db, &window(0, "2026-01-01", "2026-01-02")).await;
    // One row per position; a window must not be empty; statuses are checked.
    assert_eq!(
        exec_err(&db, &window(0, "2026-01-02", "2026-01-03")).await,
        "23505"
    );
    assert_eq!(
        exec_err(&db, &window(1, "2026-01-02", "2026-01-02")).await,
        "23514"
    );
    assert_eq!(
        exec_err(&db, "UPDATE collection_windows SET status = 'running'").await,
        "23514"
    );
    assert_eq!(
        exec_err(&db, "UPDATE collections SET granularity = 'hour'").await,
        "23514"
    );
    // A reserve must stay below its instance's cap (10 by default).
    exec(&db, "UPDATE amc_instances SET collection_reserve = 9").await;
    assert_eq!(
        exec_err(&db, "UPDATE amc_instances SET collection_reserve = 10").await,
        "23514"
    );
    assert_eq!(
        exec_err(
            &db,
            "UPDATE amc_instances SET max_concurrent_executions = 9"
        )
        .await,
        "23514"
    );
    assert_eq!(
        exec_err(&db, "UPDATE amc_instances SET collection_reserve = -1").await,
        "23514"
    );
    // Down (week collections survive, as weeks), then up again.
    let through = ALL_MIGRATIONS
        .iter()
        .position(|m| *m == "m20261207_000001_collections")
        .expect("the collections migration");
    let steps = (ALL_MIGRATIONS.len() - through) as u32;
    Migrator::down(&db, Some(steps)).await.expect("down");
    let tables = table_names(&db).await;
    assert!(tables.iter().any(|t| t == "collection_weeks"));
    assert!(!tables.iter().any(|t| t == "collection_windows"));
    Migrator::up(&db, None).await.expect("up again");
    assert!(
        table_names(&db)
            .await
            .iter()
            .any(|t| t == "collection_windows")
    );
    db.close().await.expect("close");
}

#[tokio::test]
async fn the_saved_workflows_migration_records_workflows_and_goes_down_and_up_again() {
    let url = fresh_database_url("migsaved");
    let _guard = DropGuard(url.clone());
    migrate_up(&url).await.expect("migrate up");
    let db = Database::connect(&url).await.expect("connect");
    for sql in SEED {
        exec(&db, sql).await;
    }
    exec(
        &db,
        &execution_insert(
            1,
            ", amc_workflow_id",
            ", 'amp_0123456789abcdef0123456789abcdef'",
        ),
    )
    .await;
    let saved = "INSERT INTO amc_saved_workflows (instance_id, workflow_id, sql_hash) VALUES \
         ('00000000-0000-7000-8000-000000000003', 'amp_0123456789abcdef0123456789abcdef', 'ab')";
    exec(&db, saved).await;
    // One row per (instance, workflow id).
    assert_eq!(exec_err(&db, saved).await, "23505");
    // Down through this migration (two follow it), then up again.
    Migrator::down(&db, Some(3)).await.expect("down");
    assert!(
        !table_names(&db)
            .await
            .iter()
            .any(|t| t == "amc_saved_workflows")
    );
    assert_eq!(
        exec_err(&db, "SELECT amc_workflow_id FROM executions").await,
        "42703"
    );
    Migrator::up(&db, None).await.expect("up again");
    exec(&db, saved).await;
    assert_eq!(
        foreign_keys(&db, "amc_saved_workflows").await,
        ["amc_saved_workflows_instance_id_fkey"]
    );
    db.close().await.expect("close");
}

#[tokio::test]
async fn the_batches_migration_keeps_tenancy_and_goes_down_and_up_again() {
    let url = fresh_database_url("migbatch");
    let _guard = DropGuard(url.clone());
    migrate_up(&url).await.expect("migrate up");
    let db = Database::connect(&url).await.expect("connect");
    for s in SEED.iter().chain(OTHER_USER) {
        exec(&db, s).await;
    }
    exec(
        &db,
        "INSERT INTO amc_instances (id, user_id, account_id, name, amc_instance_id) VALUES \
         ('00000000-0000-7000-8000-000000000006', '00000000-0000-7000-8000-000000000001', \
          '00000000-0000-7000-8000-000000000002', 'second', 'amcsecond')",
    )
    .await;
    let batch = |user: &str| {
        format!(
            "INSERT INTO batches (id, user_id, workflow_id, workflow_version, name, run_count) VALUES \
             ('00000000-0000-7000-8000-000000000007', '{user}', '00000000-0000-7000-8000-000000000004', 1, 'b', 2)"
        )
    };
    // A batch names its user's workflow.
    assert_eq!(
        exec_err(&db, &batch("00000000-0000-7000-8000-000000000011")).await,
        "23503"
    );
    exec(&db, &batch("00000000-0000-7000-8000-000000000001")).await;
    let run = |n: u32, instance: &str| {
        execution_insert(
            n,
            ", triggered_by, batch_id",
            ", 'batch', '00000000-0000-7000-8000-000000000007'",
        )
        .replace(
            "'00000000-0000-7000-8000-000000000003', 'queued'",
            &format!("'{instance}', 'queued'"),
        )
    };
    // One run on the workflow's instance, one on another of the user's; none on the other
    // user's instance, and no run of another user joins the batch.
    exec(&db, &run(1, "00000000-0000-7000-8000-000000000003")).await;
    exec(&db, &run(2, "00000000-0000-7000-8000-000000000006")).await;
    assert_eq!(
        exec_err(&db, &run(3, "00000000-0000-7000-8000-000000000013")).await,
        "23503"
    );
    let theirs = run(4, "00000000-0000-7000-8000-000000000013").replace(
        "'00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000004'",
        "'00000000-0000-7000-8000-000000000011', '00000000-0000-7000-8000-000000000014'",
    );
    assert_eq!(
        exec_err(&db, &theirs).await,
        "23503",
        "another user's run in the batch"
    );
    assert_eq!(
        exec_err(&db, &execution_insert(5, ", triggered_by", ", 'manual'")).await,
        "23514"
    );
    // A plain run on the workflow's instance survives the way down.
    exec(&db, &execution_insert(6, "", "")).await;
    let count = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM executions",
            ))
            .await
            .expect("count")
            .expect("row")
            .try_get::<i64>("", "n")
            .expect("n")
        }
    };
    assert_eq!(count(&db).await, 3);
    // Down through this migration (one follows it).
    Migrator::down(&db, Some(2)).await.expect("down");
    assert!(!table_names(&db).await.iter().any(|t| t == "batches"));
    assert_eq!(count(&db).await, 1, "the batch runs went with the batches");
    assert_eq!(
        foreign_keys(&db, "executions").await,
        [
            "executions_collection_id_fkey",
            "executions_retry_of_fkey",
            "executions_schedule_id_fkey",
            "executions_workflow_fkey",
        ]
    );
    // The old composite key again: a run's instance is its workflow's.
    assert_eq!(
        exec_err(
            &db,
            &execution_insert(7, "", "").replace(
                "'00000000-0000-7000-8000-000000000003', 'queued'",
                "'00000000-0000-7000-8000-000000000006', 'queued'",
            )
        )
        .await,
        "23503"
    );
    Migrator::up(&db, None).await.expect("up again");
    assert!(table_names(&db).await.iter().any(|t| t == "batches"));
    exec(&db, &batch("00000000-0000-7000-8000-000000000001")).await;
    exec(&db, &run(8, "00000000-0000-7000-8000-000000000006")).await;
    // Deleting an instance takes its runs, a batch run on it included.
    exec(
        &db,
        "DELETE FROM amc_instances WHERE id = '00000000-0000-7000-8000-000000000006'",
    )
    .await;
    assert_eq!(count(&db).await, 1);
    db.close().await.expect("close");
}

/// `SELECT count(*) FROM {from}`.
async fn count(db: &sea_orm::DatabaseConnection, from: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT count(*) AS n FROM {from}"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{from}: {e}"))
    .expect("a row")
    .try_get::<i64>("", "n")
    .expect("n")
}

/// A collection row as the week-only schema wrote it.
fn legacy_collection(id: u32, status: &str, max_concurrency: u32) -> String {
    format!(
        "INSERT INTO collections (id, user_id, workflow_id, name, start_date, end_date, max_concurrency, status, \
           weeks_total, created_at, updated_at) VALUES \
         ('00000000-0000-7000-a000-{id:012}', '00000000-0000-7000-8000-000000000001', \
          '00000000-0000-7000-8000-000000000004', 'legacy {id}', '2025-11-05', '2025-11-26', {max_concurrency}, \
          '{status}', 3, now() - interval '1 day', now() - interval '1 hour')"
    )
}

/// Week `n` (from 2025-11-05, a Wednesday) of a legacy collection, with its run if any.
fn legacy_week(collection: u32, n: u32, status: &str, run: Option<u32>) -> String {
    let run = run.map_or("NULL".to_owned(), |r| {
        format!("'00000000-0000-7000-9000-{r:012}'")
    });
    format!(
        "INSERT INTO collection_weeks (collection_id, week_start, week_end, status, execution_id, attempts) VALUES \
         ('00000000-0000-7000-a000-{collection:012}', '2025-11-05'::timestamp + interval '{start} days', \
          '2025-11-05'::timestamp + interval '{end} days', '{status}', {run}, {attempts})",
        start = n * 7,
        end = n * 7 + 7,
        attempts = u32::from(status != "pending"),
    )
}

/// A legacy collection's run of week `n`.
fn legacy_run(id: u32, collection: u32, n: u32, status: &str) -> String {
    execution_insert(id, ", triggered_by, collection_id", &format!(", 'collection', '00000000-0000-7000-a000-{collection:012}'"))
        .replace("'queued'", &format!("'{status}'"))
        .replace(
            "'2026-01-01 00:00:00', '2026-01-08 00:00:00'",
            &format!(
                "'2025-11-05'::timestamp + interval '{} days', '2025-11-05'::timestamp + interval '{} days'",
                n * 7,
                n * 7 + 7
            ),
        )
}

#[tokio::test]
async fn legacy_collections_are_readable_and_advance_after_migrating() {
    use common::collection::{self, CollectionStatus, ShownStatus, WindowQuery, WindowStatus};
    use common::ids::{CollectionId, ExecutionId, UserId};
    let url = fresh_database_url("miglegacy");
    let _guard = DropGuard(url.clone());
    migrations::create_database_if_missing(&url)
        .await
        .expect("create");
    let db = Database::connect(&url).await.expect("connect");
    let position = |name: &str| {
        ALL_MIGRATIONS
            .iter()
            .position(|m| *m == name)
            .expect("migration") as u32
    };
    // The schema before collections had windows, with a user, an instance and a workflow.
    Migrator::up(&db, Some(position("m20261207_000001_collections")))
        .await
        .expect("up to weeks");
    for s in SEED {
        exec(&db, s).await;
    }
    // 1: running, two at once: week 0 succeeded, week 1 running at AMC, week 2 not started.
    exec(&db, &legacy_collection(1, "running", 2)).await;
    exec(&db, &legacy_run(101, 1, 0, "succeeded")).await;
    exec(&db, &legacy_run(102, 1, 1, "running")).await;
    exec(&db, &legacy_week(1, 0, "succeeded", Some(101))).await;
    exec(&db, &legacy_week(1, 1, "running", Some(102))).await;
    exec(&db, &legacy_week(1, 2, "pending", None)).await;
    // 2: running but its weeks were never written: nothing to recover.
    exec(&db, &legacy_collection(2, "running", 1)).await;
    // 3: succeeded, without an end time.
    exec(&db, &legacy_collection(3, "succeeded", 1)).await;
    exec(&db, &legacy_run(103, 3, 0, "succeeded")).await;
    exec(&db, &legacy_week(3, 0, "succeeded", Some(103))).await;
    Migrator::up(&db, Some(1)).await.expect("up to windows");
    // 4: as the collections migration left a legacy row before it copied weeks: no
    // instance, no SQL, no window.
    exec(
        &db,
        "INSERT INTO collections (id, user_id, workflow_id, name, start_date, end_date, status, sql_query, updated_at) \
         VALUES ('00000000-0000-7000-a000-000000000004', '00000000-0000-7000-8000-000000000001', \
         '00000000-0000-7000-8000-000000000004', 'legacy 4', '2025-11-05', '2025-11-26', 'paused', '', \
         now() - interval '1 hour')",
    )
    .await;
    Migrator::up(&db, None).await.expect("up to the latest");

    let user = UserId("00000000-0000-7000-8000-000000000001".parse().unwrap());
    let id = |n: u32| CollectionId(format!("00000000-0000-7000-a000-{n:012}").parse().unwrap());
    let run = |n: u32| ExecutionId(format!("00000000-0000-7000-9000-{n:012}").parse().unwrap());
    // Every collection reads as GET and the list show it.
    let listed = collection::list(&db, user, None, 50).await.expect("list");
    assert_eq!(listed.len(), 4);
    let get = |n: u32| {
        let db = db.clone();
        async move {
            collection::get(&db, user, id(n))
                .await
                .expect("get")
                .expect("found")
        }
    };
    let one = get(1).await;
    assert_eq!(one.status, CollectionStatus::Running);
    assert_eq!(
        one.instance_id.0.to_string(),
        "00000000-0000-7000-8000-000000000003"
    );
    assert_eq!(one.sql_query, "SELECT 1");
    assert_eq!(one.week_starts.as_str(), "wednesday");
    assert_eq!(one.window_count, 3);
    assert_eq!(
        (one.counts.succeeded, one.counts.running, one.counts.queued),
        (1, 1, 1)
    );
    assert!(one.completed_at.is_none() && one.status_reason.is_none());
    let page = |n: u32| {
        let db = db.clone();
        async move {
            collection::window_page(
                &db,
                user,
                id(n),
                WindowQuery {
                    after: None,
                    limit: 10,
                    status: None,
                },
            )
            .await
            .expect("windows")
            .expect("owned")
        }
    };
    let w = page(1).await;
    assert_eq!(w.len(), 3);
    assert_eq!(
        w.iter().map(|x| x.status).collect::<Vec<_>>(),
        [
            WindowStatus::Succeeded,
            WindowStatus::Active,
            WindowStatus::Pending
        ]
    );
    assert_eq!(w[1].shown_status(), ShownStatus::Running);
    assert_eq!(w[0].window_end, w[1].window_start, "the weeks tile");
    // Their runs are linked to their windows.
    assert_eq!(w[0].execution_ids, [run(101)]);
    assert_eq!(w[1].execution_ids, [run(102)]);
    assert!(w[2].execution_ids.is_empty());
    // Nothing to recover: closed as cancelled, saying why.
    let (two, four) = (get(2).await, get(4).await);
    for (n, c) in [(2, &two), (4, &four)] {
        assert_eq!(c.status, CollectionStatus::Cancelled, "{n}");
        assert!(c.completed_at.is_some(), "{n}");
        assert!(
            c.status_reason
                .as_deref()
                .unwrap_or("")
                .contains("weeks were lost"),
            "{n}: {:?}",
            c.status_reason
        );
        assert_eq!(c.instance_id, one.instance_id);
    }
    let three = get(3).await;
    assert_eq!(three.status, CollectionStatus::Succeeded);
    assert!(three.completed_at.is_some());
    assert_eq!(three.counts.succeeded, 1);

    // The reconciler's step: its look finds the running one with room for its next week,
    // and advancing it starts that week's run (linked to it); the ended ones stay as they are.
    let replica = common::schedule::Replica::register(&db, std::time::Duration::from_secs(5))
        .await
        .expect("replica");
    let look = common::reconcile::look(&db, &replica, std::time::Duration::ZERO, 100)
        .await
        .expect("the reconciler's look");
    assert_eq!(look.stalled_collections, [id(1)]);
    let all: Vec<CollectionId> = (1..=4).map(id).collect();
    let moved = collection::advance_stalled(&db, &all)
        .await
        .expect("advance");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].started.len(), 1);
    assert!(moved[0].ended.is_none());
    let w = page(1).await;
    assert_eq!(w[2].status, WindowStatus::Active);
    assert_eq!(w[2].execution_ids, moved[0].started);
    for (n, before) in [(2, two), (3, three), (4, four)] {
        let after = get(n).await;
        assert_eq!(
            (after.status, after.completed_at),
            (before.status, before.completed_at),
            "{n}"
        );
    }
    assert_eq!(
        count(&db, "events WHERE event_type LIKE 'collection.%'").await,
        0,
        "no collection ended again"
    );

    // Down through the collections migration: the week windows are weeks again; up again.
    let steps = ALL_MIGRATIONS.len() as u32 - position("m20261207_000001_collections");
    Migrator::down(&db, Some(steps)).await.expect("down");
    assert_eq!(count(&db, "collection_weeks").await, 4);
    assert_eq!(
        count(&db, "collection_weeks WHERE status = 'running'").await,
        2
    );
    Migrator::up(&db, None).await.expect("up again");
    let w = page(1).await;
    assert_eq!(w.len(), 3);
    assert_eq!(w[2].execution_ids, moved[0].started);
    db.close().await.expect("close");
}
