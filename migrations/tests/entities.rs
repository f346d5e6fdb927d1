//! Round trip through the sea-orm entities of `common::db`: insert and read back rows, so a
//! type mismatch between an entity and the migration fails here.

mod support;

use chrono::{NaiveDate, SubsecRound, Utc};
use common::db::ExecutionStatus;
use common::db::entity::{
    amc_account, amc_instance, collection, event, execution, execution_transition, user,
    webhook_endpoint, worker, workflow,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use support::DropGuard;
use uuid::Uuid;

#[tokio::test]
async fn entities_round_trip() {
    let url = support::fresh_database_url("ent");
    let _guard = DropGuard(url.clone());
    migrations::migrate_up(&url).await.expect("migrate_up");
    let db = common::db::connect(&url, 2).await.expect("connect");
    // Postgres keeps microseconds.
    let now = Utc::now().trunc_subsecs(6);

    let u = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set("round@trip.test".into()),
        password_hash: Set(Some("$argon2id$x".into())),
        role: Set("admin".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .expect("insert user");
    assert_eq!(
        user::Entity::find_by_id(u.id).one(&db).await.expect("find"),
        Some(u.clone())
    );

    let acc = amc_account::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        name: Set("Brand".into()),
        entity_id: Set("ENTITY123".into()),
        marketplace_id: Set("ATVPDKIKX0DER".into()),
        region: Set("EU".into()),
        max_concurrent_executions: Set(200),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .expect("insert account");
    assert_eq!(
        amc_account::Entity::find_by_id(acc.id)
            .one(&db)
            .await
            .expect("find"),
        Some(acc.clone())
    );

    let inst = amc_instance::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        account_id: Set(acc.id),
        name: Set("Main".into()),
        amc_instance_id: Set("amcxyz789".into()),
        max_concurrent_executions: Set(3),
        daily_execution_quota: Set(Some(50)),
        time_zone: Set("America/New_York".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .expect("insert instance");
    assert_eq!(
        amc_instance::Entity::find_by_id(inst.id)
            .one(&db)
            .await
            .expect("find"),
        Some(inst.clone())
    );

    let wf = workflow::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        instance_id: Set(inst.id),
        name: Set("Reach".into()),
        description: Set(None),
        sql_query: Set("SELECT campaign FROM dsp_impressions WHERE x = {{x}}".into()),
        parameters: Set(json!({"x": 1, "names": ["a", "b"]})),
        output_format: Set("CSV".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .expect("insert workflow");
    assert_eq!(
        workflow::Entity::find_by_id(wf.id)
            .one(&db)
            .await
            .expect("find"),
        Some(wf.clone())
    );

    let coll = collection::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        workflow_id: Set(wf.id),
        name: Set("Backfill".into()),
        start_date: Set(NaiveDate::from_ymd_opt(2025, 1, 6).expect("date")),
        end_date: Set(NaiveDate::from_ymd_opt(2025, 12, 29).expect("date")),
        granularity: Set("week".into()),
        max_concurrency: Set(2),
        max_week_attempts: Set(3),
        parameters: Set(json!({})),
        time_zone: Set("UTC".into()),
        status: Set("running".into()),
        weeks_total: Set(52),
        weeks_succeeded: Set(0),
        weeks_failed: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        completed_at: Set(None),
    }
    .insert(&db)
    .await
    .expect("insert collection");

    let start = NaiveDate::from_ymd_opt(2026, 1, 5)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("start");
    let ex = execution::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        workflow_id: Set(wf.id),
        instance_id: Set(inst.id),
        status: Set(ExecutionStatus::Running),
        sql_query: Set("SELECT campaign FROM dsp_impressions WHERE x = 1".into()),
        parameters: Set(json!({"x": 1})),
        time_window_start: Set(start),
        time_window_end: Set(start + chrono::Duration::days(7)),
        time_zone: Set("America/New_York".into()),
        amc_execution_id: Set(Some("exec-abc".into())),
        attempt: Set(1),
        next_check_at: Set(Some(now)),
        submit_started_at: Set(Some(now)),
        cancel_requested_at: Set(None),
        error_code: Set(None),
        error_message: Set(None),
        result_location: Set(Some("results/x.csv".into())),
        result_columns: Set(Some(json!(["campaign", "impressions"]))),
        row_count: Set(Some(5_000_000_000)),
        triggered_by: Set("collection".into()),
        schedule_id: Set(None),
        scheduled_for: Set(None),
        collection_id: Set(Some(coll.id)),
        idempotency_key: Set(Some("idem-1".into())),
        request_hash: Set(Some("abc123".into())),
        created_at: Set(now),
        updated_at: Set(now),
        submitting_at: Set(Some(now)),
        running_at: Set(Some(now)),
        fetching_at: Set(None),
        completed_at: Set(None),
        quota_wait_until: Set(None),
    }
    .insert(&db)
    .await
    .expect("insert execution");
    let back = execution::Entity::find_by_id(ex.id)
        .one(&db)
        .await
        .expect("find");
    assert_eq!(back, Some(ex.clone()));
    // The status column filters by the enum.
    let running = execution::Entity::find()
        .filter(execution::Column::Status.eq(ExecutionStatus::Running))
        .all(&db)
        .await
        .expect("filter by status");
    assert_eq!(running.len(), 1);
    let queued = execution::Entity::find()
        .filter(execution::Column::Status.eq(ExecutionStatus::Queued))
        .all(&db)
        .await
        .expect("filter by status");
    assert!(queued.is_empty());

    // Defaults from the migration apply when the entity leaves columns unset.
    let tr = execution_transition::ActiveModel {
        execution_id: Set(ex.id),
        from_status: Set(Some("submitting".into())),
        to_status: Set("running".into()),
        reason: Set(None),
        detail: Set(Some(json!({"amc_execution_id": "exec-abc"}))),
        ..Default::default()
    }
    .insert(&db)
    .await
    .expect("insert transition");
    assert!(tr.id > 0);
    assert!(tr.created_at > now - chrono::Duration::minutes(5));

    // Arrays and bytea.
    let ep = webhook_endpoint::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        url: Set("http://127.0.0.1:1/hook".into()),
        secret_enc: Set(vec![0, 1, 2, 255]),
        event_types: Set(vec![
            "execution.succeeded".into(),
            "execution.failed".into(),
        ]),
        ..Default::default()
    }
    .insert(&db)
    .await
    .expect("insert endpoint");
    assert!(ep.enabled);
    assert_eq!(ep.failure_streak, 0);
    assert_eq!(ep.secret_enc, vec![0, 1, 2, 255]);
    assert_eq!(ep.event_types.len(), 2);

    let ev = event::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(u.id),
        event_type: Set("execution.succeeded".into()),
        subject_id: Set(Some(ex.id)),
        payload: Set(json!({"id": ex.id})),
        ..Default::default()
    }
    .insert(&db)
    .await
    .expect("insert event");
    assert_eq!(
        event::Entity::find_by_id(ev.id)
            .one(&db)
            .await
            .expect("find"),
        Some(ev)
    );

    let w = worker::ActiveModel {
        id: Set("worker-host-1".into()),
        hostname: Set("host".into()),
        pid: Set(4242),
        queues: Set(vec!["submit".into(), "poll".into()]),
        concurrency: Set(8),
        started_at: Set(now),
        last_heartbeat_at: Set(now),
        stopped_at: Set(None),
    }
    .insert(&db)
    .await
    .expect("insert worker");
    assert_eq!(
        worker::Entity::find_by_id("worker-host-1")
            .one(&db)
            .await
            .expect("find"),
        Some(w)
    );

    // Relations generated by `belongs_to`: an execution finds its instance.
    let related = execution::Entity::find_by_id(ex.id)
        .find_also_related(amc_instance::Entity)
        .one(&db)
        .await
        .expect("join");
    assert_eq!(related.and_then(|(_, i)| i).map(|i| i.id), Some(inst.id));

    db.close().await.expect("close");
}
