//! One row of every table, each column filled (nullable ones too), read back through the
//! function and row type of `common` that reads it, so a column whose type no longer
//! matches its row type (a text enum spelling, an id, a nullable column, an integer's
//! width) fails here rather than at the first request that reads it.

mod support;

use chrono::{NaiveDate, Utc};
use common::batch::BatchStatus;
use common::collection::{CollectionStatus, Granularity, WindowStatus};
use common::event::feed::{self, FeedPosition, FeedQuery};
use common::event::{DeliveryStatus, EventType};
use common::execution::{ErrorCode, ExecutionStatus, TriggeredBy};
use common::ids::*;
use common::repo::users::Role;
use common::schedule::{CatchUpPolicy, Overlap, RunOutcome, WeekStart};
use common::webhook::delivery::{self, AttemptTrigger};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use support::{DropGuard, exec, table_names};
use uuid::Uuid;

/// The ids of the rows: one per table (two runs: the second retries the first).
struct Ids {
    user: UserId,
    account: AccountId,
    instance: InstanceId,
    template: TemplateId,
    workflow: WorkflowId,
    connection: ConnectionId,
    schedule: ScheduleId,
    collection: CollectionId,
    batch: BatchId,
    run: ExecutionId,
    retry: ExecutionId,
    event: EventId,
    endpoint: EndpointId,
    delivery: DeliveryId,
    schedule_run: ScheduleRunId,
}

impl Ids {
    fn new() -> Self {
        Self {
            user: UserId::new(),
            account: AccountId::new(),
            instance: InstanceId::new(),
            template: TemplateId::new(),
            workflow: WorkflowId::new(),
            connection: ConnectionId::new(),
            schedule: ScheduleId::new(),
            collection: CollectionId::new(),
            batch: BatchId::new(),
            run: ExecutionId::new(),
            retry: ExecutionId::new(),
            event: EventId::new(),
            endpoint: EndpointId::new(),
            delivery: DeliveryId::new(),
            schedule_run: ScheduleRunId::new(),
        }
    }

    /// Every row, in an order that satisfies the foreign keys.
    fn inserts(&self) -> Vec<String> {
        let Ids {
            user: u,
            account: a,
            instance: i,
            template: t,
            workflow: w,
            connection: c,
            schedule: s,
            collection: col,
            batch: b,
            run: e,
            retry: r,
            event: ev,
            endpoint: ep,
            delivery: d,
            schedule_run: sr,
        } = self;
        vec![
            format!(
                "INSERT INTO users (id, email, password_hash, role, token_version) \
                 VALUES ('{u}', 'rows@example.com', '$argon2id$x', 'admin', 3)"
            ),
            format!(
                "INSERT INTO amc_accounts (id, user_id, name, entity_id, marketplace_id, region, max_concurrent_executions) \
                 VALUES ('{a}', '{u}', 'Brand', 'ENTITY1', 'A1PA6795UKMFR9', 'EU', 20)"
            ),
            format!(
                "INSERT INTO amc_instances (id, user_id, account_id, name, amc_instance_id, max_concurrent_executions, \
                   daily_execution_quota, time_zone, collection_reserve) \
                 VALUES ('{i}', '{u}', '{a}', 'main', 'amcrows1', 5, 100, 'Europe/Paris', 2)"
            ),
            format!(
                "INSERT INTO query_templates (id, user_id, name, description, sql_query, parameter_schema, is_public, \
                   usage_count, category, tags) \
                 VALUES ('{t}', '{u}', 'Reach', 'reach by day', 'SELECT {{{{days}}}}', \
                   '{{\"type\":\"object\",\"properties\":{{\"days\":{{\"type\":\"integer\"}}}}}}', true, 4, 'reach', '{{a,b}}')"
            ),
            format!(
                "INSERT INTO workflows (id, user_id, instance_id, name, description, sql_query, parameters, version, tags, \
                   template_id) \
                 VALUES ('{w}', '{u}', '{i}', 'wf', 'a workflow', 'SELECT {{{{days}}}}', '{{\"days\":7}}', 2, '{{a}}', '{t}')"
            ),
            format!(
                "INSERT INTO workflow_versions (workflow_id, version, sql_query, parameters) VALUES \
                 ('{w}', 1, 'SELECT 1', '{{}}'), ('{w}', 2, 'SELECT {{{{days}}}}', '{{\"days\":7}}')"
            ),
            format!(
                "INSERT INTO amazon_connections (id, user_id, refresh_token_enc, access_token_enc, access_token_expires_at, \
                   status, last_error) \
                 VALUES ('{c}', '{u}', '\\x01', '\\x02', now() + interval '1 hour', 'reauth_required', 'LWA refused it')"
            ),
            format!(
                "INSERT INTO schedules (id, user_id, workflow_id, name, cron, time_zone, time_window_rule, parameters, \
                   enabled, overlap_policy, catch_up_policy, next_run_at, last_run_at, catch_up_window_secs, \
                   pause_after_failures, consecutive_failures, paused_reason, buffered_for, missed_total, carried_ticks, \
                   workflow_version) \
                 VALUES ('{s}', '{u}', '{w}', 'nightly', '0 3 * * *', 'Europe/Paris', \
                   '{{\"kind\":\"previous_day\",\"lag_days\":0}}', '{{\"days\":1}}', false, 'buffer_one', 'all', \
                   now() + interval '1 day', now(), 3600, 3, 1, 'paused by hand', now(), 2, '[]', 2)"
            ),
            format!(
                "INSERT INTO collections (id, user_id, workflow_id, name, start_date, end_date, granularity, \
                   max_concurrency, max_attempts, parameters, time_zone, status, completed_at, week_starts, sql_query, \
                   instance_id, schedule_id, window_count, workflow_version, status_reason) \
                 VALUES ('{col}', '{u}', '{w}', 'backfill', '2026-01-05', '2026-01-18', 'week', 2, 3, '{{\"days\":7}}', \
                   'Europe/Paris', 'paused', now(), 'sunday', 'SELECT 7', '{i}', '{s}', 2, 2, 'paused by hand')"
            ),
            format!(
                "INSERT INTO batches (id, user_id, workflow_id, workflow_version, name, parameters, time_window_start, \
                   time_window_end, time_zone, status, run_count, completed_at) \
                 VALUES ('{b}', '{u}', '{w}', 2, 'every brand', '{{\"days\":7}}', '2026-01-05', '2026-01-12', \
                   'Europe/Paris', 'failed', 1, now())"
            ),
            format!(
                "INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
                   time_window_start, time_window_end, time_zone, amc_execution_id, attempt, next_check_at, \
                   submit_started_at, cancel_requested_at, error_code, error_message, result_location, result_columns, \
                   row_count, triggered_by, schedule_id, scheduled_for, collection_id, idempotency_key, request_hash, \
                   submitting_at, running_at, fetching_at, completed_at, quota_wait_until, trace_context, retry_of, \
                   workflow_version, results_expired_at, collection_window, batch_id) \
                 SELECT id, '{u}', '{w}', '{i}', status, 'SELECT 7', '{{\"days\":7}}', '2026-01-05', '2026-01-12', \
                   'Europe/Paris', 'amc-' || key, 2, now(), now(), now(), code, 'AMC said no', 'file:///r.csv', \
                   '[{{\"name\":\"n\",\"type\":\"integer\"}}]', 10, origin, '{s}', fire, collection, key, 'hash', \
                   now(), now(), now(), now(), now(), '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', retry, \
                   2, now(), window_at, batch \
                 FROM (VALUES ('{e}'::uuid, 'failed', 'amc_failed', 'key-1', NULL::uuid, now(), 'collection', \
                                 '{col}'::uuid, 0, NULL::uuid), \
                              ('{r}'::uuid, 'succeeded', NULL, 'key-2', '{e}'::uuid, NULL, 'batch', NULL, NULL, '{b}')) \
                   v(id, status, code, key, retry, fire, origin, collection, window_at, batch)"
            ),
            format!(
                "INSERT INTO execution_transitions (execution_id, from_status, to_status, reason, detail) \
                 VALUES ('{e}', 'running', 'failed', 'AMC reports FAILED', '{{\"amc\":\"FAILED\"}}')"
            ),
            format!(
                "INSERT INTO collection_windows (collection_id, position, window_start, window_end, status, attempts, \
                   execution_id, error_code, error_message) \
                 VALUES ('{col}', 0, '2026-01-05', '2026-01-12', 'failed', 3, '{e}', 'amc_failed', 'AMC said no'), \
                        ('{col}', 1, '2026-01-12', '2026-01-19', 'pending', 0, NULL, NULL, NULL)"
            ),
            format!(
                "INSERT INTO schedule_runs (id, schedule_id, scheduled_for, fired_at, outcome, execution_id, missed_count, \
                   error_code, error_message) \
                 VALUES ('{sr}', '{s}', now() - interval '1 hour', now(), 'started', '{e}', 1, 'amc_failed', 'AMC said no')"
            ),
            format!(
                "INSERT INTO webhook_endpoints (id, user_id, url, secret_enc, event_types, enabled, disabled_at, \
                   description, previous_secret_enc, rotated_at, disabled_reason, failing_since, last_success_at) \
                 VALUES ('{ep}', '{u}', 'https://hooks.example.com/amp', '\\x03', '{{execution.failed}}', true, NULL, \
                   'ops', '\\x04', now(), NULL, now(), now())"
            ),
            // The trigger writes the delivery of the subscribed endpoint.
            format!(
                "INSERT INTO events (id, user_id, event_type, subject_id, payload) \
                 VALUES ('{ev}', '{u}', 'execution.failed', '{e}', '{{\"id\":\"{e}\"}}')"
            ),
            format!(
                "UPDATE webhook_deliveries SET id = '{d}', status = 'pending', attempts = 2, \
                   next_attempt_at = now() + interval '1 hour', last_response_code = 503, last_attempt_at = now(), \
                   last_error = 'timed out', manual = true WHERE event_id = '{ev}'"
            ),
            format!(
                "INSERT INTO webhook_attempts (delivery_id, status_code, response_body, error, duration_ms, trigger) \
                 VALUES ('{d}', 503, 'busy', 'timed out', 120, 'manual')"
            ),
        ]
    }
}

/// Reads every row of [`Ids::inserts`] through `common`.
async fn read_back(db: &DatabaseConnection, ids: &Ids) {
    let user = common::repo::users::find_user(db, ids.user)
        .await
        .expect("user")
        .expect("a user");
    assert_eq!((user.role, user.token_version), (Role::Admin, 3));

    let account = common::repo::accounts::get_account(db, ids.user, ids.account)
        .await
        .expect("account");
    assert_eq!(account.region, Region::EU);
    let instance = common::repo::instances::get_instance(db, ids.user, ids.instance)
        .await
        .expect("instance");
    assert_eq!(
        (instance.daily_execution_quota, instance.collection_reserve),
        (Some(100), 2)
    );

    let template = common::template::get(db, ids.user, ids.template)
        .await
        .expect("template");
    assert_eq!(
        (template.id, template.tag_list()),
        (ids.template, vec!["a".to_owned(), "b".to_owned()])
    );
    let workflow = common::repo::workflows::get_workflow(db, ids.user, ids.workflow)
        .await
        .expect("workflow");
    assert_eq!(workflow.template_id, Some(ids.template));
    let version = common::workflow::get_version(db, ids.user, ids.workflow, 1)
        .await
        .expect("version");
    assert_eq!(version.sql_query, "SELECT 1");

    let connection = common::connection::find_connection(db, ids.user)
        .await
        .expect("connection")
        .expect("a connection");
    assert_eq!(connection.id, ids.connection);
    let state = common::connection::token_state(db, ids.connection, false)
        .await
        .expect("token state")
        .expect("a state");
    assert_eq!(state.access_token_enc.as_deref(), Some(&[2u8][..]));

    let schedule = common::schedule::store::get(db, ids.user, ids.schedule)
        .await
        .expect("schedule")
        .expect("a schedule");
    assert_eq!(
        (schedule.overlap_policy, schedule.catch_up_policy),
        (Overlap::BufferOne, CatchUpPolicy::All)
    );
    let history = common::schedule::history::runs(db, ids.user, ids.schedule, None, 10)
        .await
        .expect("history")
        .expect("the schedule's");
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].id, history[0].outcome, history[0].execution_id),
        (ids.schedule_run, RunOutcome::Started, Some(ids.run))
    );

    let collection = common::collection::get(db, ids.user, ids.collection)
        .await
        .expect("collection")
        .expect("a collection");
    assert_eq!(
        (
            collection.status,
            collection.granularity,
            collection.week_starts
        ),
        (
            CollectionStatus::Paused,
            Granularity::Week,
            WeekStart::Sunday
        )
    );
    assert_eq!(
        collection.start_date,
        NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()
    );
    let windows = common::collection::store::windows(
        db,
        ids.user,
        ids.collection,
        common::collection::store::WindowQuery {
            after: None,
            limit: 10,
            status: None,
        },
    )
    .await
    .expect("windows")
    .expect("the collection's");
    let statuses: Vec<_> = windows.iter().map(|w| (w.status, w.run_status)).collect();
    assert_eq!(
        statuses,
        [
            (WindowStatus::Failed, Some(ExecutionStatus::Failed)),
            (WindowStatus::Pending, None)
        ]
    );

    for (id, status, origin) in [
        (ids.run, ExecutionStatus::Failed, TriggeredBy::Collection),
        (ids.retry, ExecutionStatus::Succeeded, TriggeredBy::Batch),
    ] {
        let row = common::execution::find(db, id)
            .await
            .expect("execution")
            .expect("a run");
        assert_eq!((row.status, row.triggered_by), (status, origin));
        assert_eq!(row.row_count, Some(10));
    }
    let failed = common::execution::find(db, ids.run).await.unwrap().unwrap();
    assert_eq!(failed.error_code, Some(ErrorCode::AmcFailed));
    assert_eq!(
        (failed.collection_id, failed.collection_window),
        (Some(ids.collection), Some(0))
    );
    let retry = common::execution::find(db, ids.retry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retry.retry_of, retry.batch_id),
        (Some(ids.run), Some(ids.batch))
    );
    let batch = common::batch::get(db, ids.user, ids.batch)
        .await
        .expect("batch")
        .expect("a batch");
    assert_eq!((batch.status, batch.run_count), (BatchStatus::Failed, 1));
    // A saved workflow, recorded with the run that uses it.
    let saved = common::saved_workflow::SavedWorkflow::for_sql("SELECT 7");
    common::saved_workflow::record_use(db, ids.instance, ids.retry, &saved)
        .await
        .expect("saved workflow");
    let retry = common::execution::find(db, ids.retry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retry.amc_workflow_id, Some(saved.id));
    let trail = common::execution::transitions(db, ids.run)
        .await
        .expect("transitions");
    assert_eq!(
        trail
            .iter()
            .map(|t| (t.from_status, t.to_status))
            .collect::<Vec<_>>(),
        [(Some(ExecutionStatus::Running), ExecutionStatus::Failed)]
    );

    let endpoint = common::webhook::endpoint::get(db, ids.user, ids.endpoint)
        .await
        .expect("endpoint")
        .expect("an endpoint");
    assert!(endpoint.enabled && endpoint.rotated_at.is_some());
    let deliveries = delivery::list(db, ids.user, ids.endpoint, None, 10)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (
            deliveries[0].id,
            deliveries[0].status,
            deliveries[0].event_type
        ),
        (
            ids.delivery,
            DeliveryStatus::Pending,
            EventType::ExecutionFailed
        )
    );
    assert!(deliveries[0].next_attempt_at.is_some());
    let (_, attempts) = delivery::with_attempts(db, ids.user, ids.endpoint, ids.delivery)
        .await
        .expect("attempts")
        .expect("the delivery");
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].trigger, attempts[0].status_code),
        (AttemptTrigger::Manual, Some(503))
    );

    // The feed shows an event once every older transaction of the server has ended.
    let query = FeedQuery {
        user: ids.user,
        after: FeedPosition::START,
        types: Vec::new(),
        limit: 10,
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let events = loop {
        let page = feed::page(db, &query).await.expect("feed");
        if !page.is_empty() || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].id, events[0].event_type),
        (ids.event, EventType::ExecutionFailed)
    );
}

/// The tables without a row type: written and read by the functions that use them.
async fn the_rest(db: &DatabaseConnection, user: UserId) {
    use common::repo::refresh_tokens::{Rotation, insert_refresh_token, rotate_refresh_token};
    let family = Uuid::now_v7();
    let expires = Utc::now() + chrono::Duration::hours(1);
    insert_refresh_token(db, user, family, "hash-1", expires)
        .await
        .expect("token");
    let rotated = rotate_refresh_token(db, "hash-1", "hash-2", expires)
        .await
        .expect("rotate");
    assert!(
        matches!(rotated, Rotation::Rotated { user_id, family_id } if user_id == user && family_id == family),
        "{rotated:?}"
    );

    let me = common::fleet::Identity {
        id: "rows-1-abc".into(),
        hostname: "rows".into(),
        pid: 1,
        queues: vec!["execution.poll".into()],
        concurrency: 4,
    };
    common::fleet::register(db, &me).await.expect("worker");
    let dead = common::fleet::DeadJob {
        id: Uuid::now_v7(),
        queue: "execution.poll".into(),
        payload: serde_json::json!({"execution_id": Uuid::now_v7()}),
        error: "gave up".into(),
        attempts: 25,
    };
    common::fleet::keep_dead_job(db, &dead)
        .await
        .expect("dead job");
    let shared = common::telemetry::metrics::gauges::read(db)
        .await
        .expect("gauges");
    assert_eq!(shared.workers_alive, 1);
    assert_eq!(shared.dead.get("execution.poll"), Some(&1));

    let replica = common::schedule::Replica::register(db, std::time::Duration::from_secs(5))
        .await
        .expect("scheduler");
    let probe = common::schedule::probe(db, &replica).await.expect("probe");
    assert!(probe.alive);
}

/// A fresh, migrated database (dropped with the guard).
async fn migrated(tag: &str) -> (DropGuard, DatabaseConnection) {
    let url = support::fresh_database_url(tag);
    let guard = DropGuard(url.clone());
    migrations::migrate_up(&url).await.expect("migrate_up");
    let db = common::db::connect(&url, 2).await.expect("connect");
    (guard, db)
}

#[tokio::test]
async fn a_row_of_every_table_reads_back_through_its_row_type() {
    let (_guard, db) = migrated("rows").await;
    let ids = Ids::new();
    for sql in ids.inserts() {
        exec(&db, &sql).await;
    }
    read_back(&db, &ids).await;
    the_rest(&db, ids.user).await;

    // Every table holds a row, but `api_keys`: no code reads or writes it.
    let mut empty = Vec::new();
    for table in table_names(&db).await {
        if table == "seaql_migrations" {
            continue;
        }
        let sql = format!("SELECT count(*) AS n FROM {table}");
        let n: i64 = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .expect("count")
            .expect("a row")
            .try_get("", "n")
            .expect("n");
        if n == 0 {
            empty.push(table);
        }
    }
    assert_eq!(empty, ["api_keys"]);
}

/// The spellings of a text enum, sorted.
macro_rules! spellings {
    ($ty:ty) => {{
        let mut v: Vec<String> = <$ty>::ALL.iter().map(|x| x.as_str().to_owned()).collect();
        v.sort();
        v
    }};
}

#[tokio::test]
async fn each_checked_text_column_allows_exactly_its_enums_spellings() {
    use common::connection::ConnectionStatus;
    let (_guard, db) = migrated("rowchk").await;
    let expected: Vec<(&str, Vec<String>)> = vec![
        ("users_role_check", spellings!(Role)),
        ("batches_status_check", spellings!(BatchStatus)),
        (
            "amazon_connections_status_check",
            spellings!(ConnectionStatus),
        ),
        ("amc_accounts_region_check", spellings!(Region)),
        ("executions_status_check", spellings!(ExecutionStatus)),
        ("executions_triggered_by_check", spellings!(TriggeredBy)),
        ("schedules_overlap_policy_check", spellings!(Overlap)),
        ("schedules_catch_up_policy_check", spellings!(CatchUpPolicy)),
        ("schedule_runs_outcome_check", spellings!(RunOutcome)),
        ("collections_granularity_check", spellings!(Granularity)),
        ("collections_week_starts_check", spellings!(WeekStart)),
        ("collections_status_check", spellings!(CollectionStatus)),
        ("collection_windows_status_check", spellings!(WindowStatus)),
        (
            "webhook_deliveries_status_check",
            spellings!(DeliveryStatus),
        ),
        ("webhook_attempts_trigger_check", spellings!(AttemptTrigger)),
    ];
    // Every check that lists values (`col = ANY (ARRAY['a'::text, …])`), by name.
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT conname::text AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint \
             WHERE contype = 'c' AND conrelid <> 0 AND pg_get_constraintdef(oid) LIKE '%ARRAY[%' ORDER BY 1",
        ))
        .await
        .expect("checks");
    let mut found = Vec::new();
    for r in &rows {
        let name: String = r.try_get("", "name").expect("name");
        let def: String = r.try_get("", "def").expect("def");
        let mut values: Vec<String> = def
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        values.sort();
        found.push((name, values));
    }
    let expected: Vec<(String, Vec<String>)> = {
        let mut e: Vec<_> = expected
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        e.sort();
        e
    };
    assert_eq!(found, expected);
}
