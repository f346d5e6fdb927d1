//! Deliveries: one row per (event, subscribed endpoint), written with the event by a
//! trigger (`amp_event_deliveries`), and every move a delivery makes, each a named
//! function holding its SQL and its compare-and-set guard on `next_attempt_at` (the
//! lease an attempt holds, or the time its next attempt is due):
//! [`claim_due`] (a dispatcher leases the deliveries due now and attempts them), [`take`]
//! (a job's attempt leases one),
//! [`record`] (the attempt's answer, the next attempt or the end, the endpoint's failing
//! streak and the disable rule), [`defer`] (its endpoint is busy), [`recover`] and
//! [`send_test`]. Rows are the truth; a job only says "attempt delivery X now".

use super::endpoint::{self, EndpointRow};
use crate::crypto::Cipher;
use crate::event::{DeliveryStatus, EventType, NewEvent};
use crate::ids::{DeliveryId, EndpointId, EventId, UserId};
use crate::repo::stmt;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::{Value, json};
use std::time::Duration;

/// The channel that wakes the dispatchers when deliveries are due now.
pub const CHANNEL: &str = "amp_deliveries";

/// At most this much of a receiver's answer is kept per attempt.
pub const BODY_KEPT: usize = 4096;

crate::text_enum! {
    /// What started an attempt.
    pub enum AttemptTrigger("attempt trigger") {
        /// The retry schedule (a fresh delivery's first attempt, or a retry).
        Scheduled = "scheduled",
        /// A person: a recovery or a test delivery (its first attempt).
        Manual = "manual",
    }
}

impl AttemptTrigger {
    /// The trigger of a delivery's next attempt (`manual` set by a recovery or a test).
    pub fn of(manual: bool) -> Self {
        if manual {
            Self::Manual
        } else {
            Self::Scheduled
        }
    }
}

fn at(d: Duration) -> DateTime<Utc> {
    crate::execution::now_micros() + chrono::Duration::from_std(d).unwrap_or_default()
}

/// What an attempt returns of its row, its event and its endpoint ([`Work`]'s columns).
const WORK_COLUMNS: &str = "d.id, d.event_id, e.event_type, d.endpoint_id, d.user_id, d.attempts, d.manual, \
    d.next_attempt_at AS lease, w.url, w.enabled, w.secret_enc, w.previous_secret_enc, w.rotated_at, \
    e.created_at AS event_created_at, e.payload";

/// The most deliveries one claim takes.
pub const MAX_CLAIM: usize = 1024;

/// How many deliveries a claim with `free` attempt slots takes: the largest power of two
/// not above `free` (at most [`MAX_CLAIM`]), so that there are only eleven claim
/// statements, each with its limit written in. A claim whose limit (or status) were bound
/// values would be planned on every call: PostgreSQL's generic plan cannot use the partial
/// due index for a bound status and assumes a tenth of the table for a bound limit, so it
/// keeps to custom plans, and planning the claim costs more than running a small one.
pub fn claim_size(free: usize) -> usize {
    match free.min(MAX_CLAIM) {
        0 => 0,
        n => 1 << n.ilog2(),
    }
}

/// Up to [`claim_size`]`(free)` deliveries due now, oldest first, leased for `lease` by
/// the dispatcher that claims them (`FOR UPDATE SKIP LOCKED`: among many dispatchers one
/// takes each) and attempted by it at once, so a fresh delivery needs no job: each comes
/// with what its attempt sends and `trace`, the root of the trace of the run whose event
/// it delivers (when it has one). A claimed delivery whose dispatcher dies is re-pushed by
/// the reconciler once `lease` has passed, like any overdue one.
pub async fn claim_due(
    db: &DatabaseConnection,
    free: usize,
    lease: Duration,
) -> Result<Vec<(Work, Option<String>)>, DbErr> {
    let size = claim_size(free);
    if size == 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE webhook_deliveries d SET next_attempt_at = $1 FROM events e, webhook_endpoints w \
         WHERE d.id IN ( \
             SELECT id FROM webhook_deliveries WHERE status = '{pending}' AND next_attempt_at <= now() \
             ORDER BY next_attempt_at LIMIT {size} FOR UPDATE SKIP LOCKED) \
           AND e.id = d.event_id AND w.id = d.endpoint_id \
         RETURNING {WORK_COLUMNS}, \
           (SELECT x.trace_context FROM executions x WHERE x.id = e.subject_id) AS trace",
        pending = DeliveryStatus::Pending
    );
    let rows = db.query_all_raw(stmt(&sql, [at(lease).into()])).await?;
    rows.iter()
        .map(|r| Ok((Work::from_query_result(r, "")?, r.try_get("", "trace")?)))
        .collect()
}

/// A delivery an attempt holds: what to send, where, signed with what.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Work {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub endpoint_id: EndpointId,
    pub user_id: UserId,
    pub attempts: i32,
    pub manual: bool,
    /// The lease this attempt holds (`next_attempt_at`).
    pub lease: DateTime<Utc>,
    pub url: String,
    pub enabled: bool,
    pub secret_enc: Vec<u8>,
    pub previous_secret_enc: Option<Vec<u8>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub event_created_at: DateTime<Utc>,
    pub payload: Value,
}

impl Work {
    /// The body: CONTRACT's envelope, `{"type","timestamp","data"}`.
    pub fn body(&self) -> Vec<u8> {
        let v = json!({
            "type": self.event_type,
            "timestamp": self.event_created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.payload,
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The `webhook-id`: the event's id, the same on every attempt and every recovery.
    pub fn webhook_id(&self) -> String {
        format!("msg_{}", self.event_id.0.simple())
    }

    /// The secrets that sign it now.
    pub fn secrets(&self, cipher: &Cipher, now: DateTime<Utc>) -> Vec<super::Secret> {
        endpoint::signing_secrets(
            cipher,
            &self.secret_enc,
            self.previous_secret_enc.as_deref(),
            self.rotated_at,
            now,
        )
    }
}

/// Leases a pending delivery for one attempt: `next_attempt_at` moves from `due` (the
/// dispatcher's lease, or the time a retry was due) to now + `lease`. `None` when a twin
/// took it or it ended.
pub async fn take(
    db: &DatabaseConnection,
    id: DeliveryId,
    due: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<Work>, DbErr> {
    let sql = format!(
        "UPDATE webhook_deliveries d SET next_attempt_at = $3 FROM events e, webhook_endpoints w \
         WHERE d.id = $1 AND d.status = $4 AND d.next_attempt_at = $2 \
           AND e.id = d.event_id AND w.id = d.endpoint_id \
         RETURNING {WORK_COLUMNS}"
    );
    Work::find_by_statement(stmt(
        &sql,
        [
            id.into(),
            due.into(),
            at(lease).into(),
            DeliveryStatus::Pending.into(),
        ],
    ))
    .one(db)
    .await
}

/// What one attempt got back.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// The receiver's status code (none: a timeout or a connection error).
    pub status_code: Option<u16>,
    /// Up to [`BODY_KEPT`] bytes of its answer.
    pub body: Option<String>,
    /// Why no answer came (timeout, refused, blocked address, …).
    pub error: Option<String>,
    pub duration_ms: u32,
}

impl Attempt {
    /// Any 2xx.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Delivered,
    /// Another attempt at this time.
    RetryAt(DateTime<Utc>),
    /// The schedule is spent.
    Failed,
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub status: DeliveryStatus,
    /// The next attempt's due (its delayed job carries it).
    pub next: Option<DateTime<Utc>>,
    /// The endpoint was disabled by this failure (the disable rule).
    pub disabled: bool,
}

/// The disable rule, as published: an endpoint whose deliveries have failed continuously
/// for `disable_after` (no success in between) is disabled.
pub fn should_disable(
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    disable_after: Duration,
) -> bool {
    failing_since
        .is_some_and(|f| now - f >= chrono::Duration::from_std(disable_after).unwrap_or_default())
}

#[derive(Debug, FromQueryResult)]
struct Written {
    moved: i64,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

/// Records an attempt, guarded by the lease the attempt holds: the attempt's row, the
/// delivery's status and next attempt, and the endpoint's streak, in one statement. The
/// endpoint's row is written only when its streak changes (a failure after a success, a
/// success after a failure) or, while healthy, at most once a second, so attempts to one
/// busy endpoint do not queue on its row. A failure past `disable_after` of continuous
/// failure then disables the endpoint by the rule (with its reason and
/// `webhook.endpoint_disabled`) and the delivery is `skipped` (recoverable). `None` when the
/// lease was lost (a twin recorded it).
pub async fn record(
    db: &DatabaseConnection,
    work: &Work,
    attempt: &Attempt,
    after: After,
    disable_after: Duration,
) -> Result<Option<Recorded>, DbErr> {
    let ok = attempt.succeeded();
    let (status, next) = match after {
        After::Delivered => (DeliveryStatus::Delivered, None),
        After::RetryAt(t) => (DeliveryStatus::Pending, Some(t)),
        After::Failed => (DeliveryStatus::Failed, None),
    };
    let written = Written::find_by_statement(stmt(
        "WITH d AS (UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, next_attempt_at = $4, \
             last_response_code = $5, last_attempt_at = now(), last_error = $6, manual = false, updated_at = now() \
           WHERE id = $1 AND status = $7 AND next_attempt_at = $2 RETURNING id), \
         a AS (INSERT INTO webhook_attempts (delivery_id, status_code, response_body, error, duration_ms, trigger) \
           SELECT d.id, $5, $8, $6, $9, $10 FROM d), \
         e AS (UPDATE webhook_endpoints SET \
             failing_since = CASE WHEN $12 THEN NULL ELSE now() END, \
             last_success_at = CASE WHEN $12 THEN now() ELSE last_success_at END \
           WHERE id = $11 AND EXISTS (SELECT 1 FROM d) AND CASE WHEN $12 \
             THEN failing_since IS NOT NULL OR last_success_at IS NULL OR last_success_at < now() - interval '1 second' \
             ELSE failing_since IS NULL END \
           RETURNING failing_since) \
         SELECT (SELECT count(*) FROM d) AS moved, now() AS now, CASE WHEN $12 THEN NULL ELSE \
           coalesce((SELECT failing_since FROM e), (SELECT failing_since FROM webhook_endpoints WHERE id = $11)) END \
           AS failing_since",
        [
            work.id.into(),
            work.lease.into(),
            status.into(),
            next.into(),
            attempt.status_code.map(i32::from).into(),
            attempt.error.clone().into(),
            DeliveryStatus::Pending.into(),
            attempt.body.clone().into(),
            (attempt.duration_ms as i32).into(),
            AttemptTrigger::of(work.manual).into(),
            work.endpoint_id.into(),
            ok.into(),
        ],
    ))
    .one(db)
    .await?;
    let Some(w) = written.filter(|w| w.moved > 0) else {
        return Ok(None);
    };
    if !ok && should_disable(w.failing_since, w.now, disable_after) {
        let txn = db.begin().await?;
        let disabled = disable(&txn, work, disable_after).await?;
        // This delivery waits for a recovery with the others of the disabled endpoint.
        let skipped = txn
            .execute_raw(stmt(
                "UPDATE webhook_deliveries SET status = $2, next_attempt_at = NULL, updated_at = now() \
                 WHERE id = $1 AND status IN ($3, $4) AND next_attempt_at IS NOT DISTINCT FROM $5",
                [
                    work.id.into(),
                    DeliveryStatus::Skipped.into(),
                    DeliveryStatus::Pending.into(),
                    DeliveryStatus::Failed.into(),
                    next.into(),
                ],
            ))
            .await?
            .rows_affected();
        txn.commit().await?;
        if skipped == 1 {
            return Ok(Some(Recorded {
                status: DeliveryStatus::Skipped,
                next: None,
                disabled,
            }));
        }
    }
    Ok(Some(Recorded {
        status,
        next,
        disabled: false,
    }))
}

/// Records the 2xx attempts of many held deliveries with one statement, as [`record`]
/// does for one: each delivery `delivered` (guarded by the lease its attempt holds), its
/// attempt's row, and the streak of each endpoint among them (cleared, or its last success
/// moved at most once a second). Returns the deliveries that moved; one whose lease was
/// taken over meanwhile is left out. A success never disables an endpoint, so nothing
/// else follows.
pub async fn record_delivered(
    db: &DatabaseConnection,
    answered: &[(&Work, &Attempt)],
) -> Result<Vec<DeliveryId>, DbErr> {
    let items: Vec<Value> = answered
        .iter()
        .map(|(work, attempt)| {
            json!({
                "id": work.id,
                "lease": work.lease,
                "endpoint_id": work.endpoint_id,
                "code": attempt.status_code,
                "body": attempt.body,
                "duration_ms": attempt.duration_ms,
                "trig": if work.manual { "manual" } else { "scheduled" },
            })
        })
        .collect();
    let rows = db
        .query_all_raw(stmt(
            "WITH i AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, lease timestamptz, \
                 endpoint_id uuid, code int, body text, duration_ms int, trig text)), \
             d AS (UPDATE webhook_deliveries w SET status = $2, attempts = w.attempts + 1, next_attempt_at = NULL, \
                 last_response_code = i.code, last_attempt_at = now(), last_error = NULL, manual = false, updated_at = now() \
               FROM i WHERE w.id = i.id AND w.status = $3 AND w.next_attempt_at = i.lease \
               RETURNING w.id, w.endpoint_id), \
             a AS (INSERT INTO webhook_attempts (delivery_id, status_code, response_body, error, duration_ms, trigger) \
               SELECT i.id, i.code, i.body, NULL, i.duration_ms, i.trig FROM i JOIN d ON d.id = i.id), \
             e AS (UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = now() \
               WHERE id IN (SELECT endpoint_id FROM d) AND (failing_since IS NOT NULL \
                 OR last_success_at IS NULL OR last_success_at < now() - interval '1 second')) \
             SELECT id FROM d",
            [
                Value::Array(items).into(),
                DeliveryStatus::Delivered.into(),
                DeliveryStatus::Pending.into(),
            ],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "id")).collect()
}

/// Disables the endpoint by the rule and records `webhook.endpoint_disabled`; `false` when
/// it was disabled already.
async fn disable<C: ConnectionTrait>(
    txn: &C,
    work: &Work,
    disable_after: Duration,
) -> Result<bool, DbErr> {
    let reason = format!(
        "disabled: every delivery failed for {} with no success in between (AMP_WEBHOOK_DISABLE_AFTER)",
        crate::config::format_duration(disable_after)
    );
    let sql = format!(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() \
         WHERE id = $1 AND enabled RETURNING {}",
        endpoint::COLUMNS
    );
    let Some(row) =
        EndpointRow::find_by_statement(stmt(&sql, [work.endpoint_id.into(), reason.into()]))
            .one(txn)
            .await?
    else {
        return Ok(false);
    };
    crate::event::record(
        txn,
        NewEvent {
            user: work.user_id,
            event_type: EventType::WebhookEndpointDisabled,
            subject: row.id.into(),
            payload: row.public_json(),
        },
    )
    .await?;
    Ok(true)
}

/// Records that the endpoint is disabled: the held delivery is `skipped` (recoverable).
pub async fn skip(db: &DatabaseConnection, work: &Work) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            "UPDATE webhook_deliveries SET status = $3, next_attempt_at = NULL, updated_at = now() \
             WHERE id = $1 AND status = $4 AND next_attempt_at = $2",
            [
                work.id.into(),
                work.lease.into(),
                DeliveryStatus::Skipped.into(),
                DeliveryStatus::Pending.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Its endpoint is busy (as many attempts in flight as it may have): the held delivery
/// waits `wait` without using an attempt. Returns its new due.
pub async fn defer(
    db: &DatabaseConnection,
    work: &Work,
    wait: Duration,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let due = at(wait);
    let r = db
        .execute_raw(stmt(
            "UPDATE webhook_deliveries SET next_attempt_at = $3 WHERE id = $1 AND status = $4 AND next_attempt_at = $2",
            [
                work.id.into(),
                work.lease.into(),
                due.into(),
                DeliveryStatus::Pending.into(),
            ],
        ))
        .await?;
    Ok((r.rows_affected() == 1).then_some(due))
}

/// Rows reopened per statement by [`recover`].
const RECOVER_BATCH: i64 = 5_000;

/// Delivers again every failed or skipped delivery of the user's endpoint created since
/// `since` (as far back as events are kept), each due now with a fresh budget of
/// attempts, its first attempt recorded as manual. Pages through the deliveries in
/// batches: no limit on how many. `None` when the endpoint is not the user's; else how
/// many were reopened.
pub async fn recover(
    db: &DatabaseConnection,
    user: UserId,
    endpoint: EndpointId,
    since: DateTime<Utc>,
) -> Result<Option<u64>, DbErr> {
    if endpoint::get(db, user, endpoint).await?.is_none() {
        return Ok(None);
    }
    let mut total = 0;
    loop {
        let n = db
            .execute_raw(stmt(
                "UPDATE webhook_deliveries SET status = $6, attempts = 0, next_attempt_at = now(), manual = true, \
                   updated_at = now() \
                 WHERE id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND user_id = $2 \
                   AND created_at >= $3 AND status IN ($4, $5) LIMIT $7 FOR UPDATE SKIP LOCKED)",
                [
                    endpoint.into(),
                    user.into(),
                    since.into(),
                    DeliveryStatus::Failed.into(),
                    DeliveryStatus::Skipped.into(),
                    DeliveryStatus::Pending.into(),
                    RECOVER_BATCH.into(),
                ],
            ))
            .await?
            .rows_affected();
        total += n;
        if n > 0 {
            db.execute_raw(stmt("SELECT pg_notify($1, '')", [CHANNEL.into()]))
                .await?;
        }
        if n < RECOVER_BATCH as u64 {
            return Ok(Some(total));
        }
    }
}

/// Sends a `webhook.test` event to the user's endpoint alone: the event and its delivery
/// in one transaction (a disabled endpoint's is recorded `skipped`).
pub async fn send_test(
    db: &DatabaseConnection,
    user: UserId,
    endpoint: EndpointId,
) -> Result<Option<(EventId, DeliveryId)>, DbErr> {
    let txn = db.begin().await?;
    let Some(row) = endpoint::get(&txn, user, endpoint).await? else {
        return Ok(None);
    };
    let event = EventId::new();
    let delivery = DeliveryId::new();
    txn.execute_raw(stmt(
        "INSERT INTO events (id, user_id, event_type, subject_id, payload) VALUES ($1, $2, $3, $4, $5)",
        [
            event.into(),
            user.into(),
            EventType::WebhookTest.into(),
            crate::event::Subject::from(endpoint).into(),
            json!({"endpoint": row.public_json(), "message": "a test delivery from RecomAMP Engine"}).into(),
        ],
    ))
    .await?;
    let status = if row.enabled {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Skipped
    };
    txn.execute_raw(stmt(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, user_id, event_type, status, next_attempt_at, manual) \
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, true)",
        [
            delivery.into(),
            event.into(),
            endpoint.into(),
            user.into(),
            EventType::WebhookTest.into(),
            status.into(),
            row.enabled.into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt("SELECT pg_notify($1, '')", [CHANNEL.into()]))
        .await?;
    txn.commit().await?;
    Ok(Some((event, delivery)))
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The log's columns; `pending` is the placeholder bound to [`DeliveryStatus::Pending`].
fn delivery_columns(pending: u8) -> String {
    format!(
        "id, event_id, event_type, status, attempts, last_response_code AS last_status_code, last_error, \
         last_attempt_at, CASE WHEN status = ${pending} THEN next_attempt_at END AS next_attempt_at, created_at"
    )
}

/// A page of an endpoint's deliveries, newest first, after `(created_at, id)`.
pub async fn list(
    db: &DatabaseConnection,
    user: UserId,
    endpoint: EndpointId,
    after: Option<(DateTime<Utc>, DeliveryId)>,
    limit: u64,
) -> Result<Vec<DeliveryRow>, DbErr> {
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let sql = format!(
        "SELECT {} FROM webhook_deliveries WHERE endpoint_id = $1 AND user_id = $2 \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
        delivery_columns(6)
    );
    DeliveryRow::find_by_statement(stmt(
        &sql,
        [
            endpoint.into(),
            user.into(),
            at.into(),
            id.into(),
            (limit as i64).into(),
            DeliveryStatus::Pending.into(),
        ],
    ))
    .all(db)
    .await
}

/// One attempt of the log.
#[derive(Debug, Clone, FromQueryResult)]
pub struct AttemptRow {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub trigger: AttemptTrigger,
}

/// One of the user's deliveries with every attempt, oldest first.
pub async fn with_attempts(
    db: &DatabaseConnection,
    user: UserId,
    endpoint: EndpointId,
    id: DeliveryId,
) -> Result<Option<(DeliveryRow, Vec<AttemptRow>)>, DbErr> {
    let sql = format!(
        "SELECT {} FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2 AND user_id = $3",
        delivery_columns(4)
    );
    let Some(d) = DeliveryRow::find_by_statement(stmt(
        &sql,
        [
            id.into(),
            endpoint.into(),
            user.into(),
            DeliveryStatus::Pending.into(),
        ],
    ))
    .one(db)
    .await?
    else {
        return Ok(None);
    };
    let attempts = AttemptRow::find_by_statement(stmt(
        "SELECT attempted_at, status_code, response_body, error, duration_ms, trigger FROM webhook_attempts \
         WHERE delivery_id = $1 ORDER BY id",
        [id.into()],
    ))
    .all(db)
    .await?;
    Ok(Some((d, attempts)))
}

/// A pending delivery made due by a write that leased nothing and pushed no job (its
/// event's insert, a recovery, a test send: each sets `next_attempt_at` to the
/// transaction's `now()`, as `updated_at` is), in SQL over `webhook_deliveries`. Only the
/// dispatchers' claims attempt it; a claim, a deferral or a retry moves `next_attempt_at`
/// alone, away from `updated_at`.
const UNCLAIMED: &str = "next_attempt_at = updated_at";

/// The reconciler's look at deliveries, as two columns of one SELECT, over the pending
/// deliveries overdue by more than the grace (`$3` seconds):
/// - `overdue_deliveries`: those whose lease or due passed (a lost job, or an attempt
///   whose worker died), at most `$4`, with their due, for the reconciler to re-push;
/// - `deliveries_waiting`: whether any of them is unclaimed ([`UNCLAIMED`]). Those wait
///   for a dispatcher with a free slot (a backlog, or a missed wake-up), and dispatchers
///   claim the oldest first, so the reconciler wakes them instead of pushing a job for
///   each, which under a backlog would only add a statement per delivery to a busy
///   database.
pub(crate) fn overdue_columns() -> String {
    format!(
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'due', d.next_attempt_at)), '[]'::jsonb) \
           FROM (SELECT id, next_attempt_at FROM webhook_deliveries WHERE status = '{pending}' \
                   AND next_attempt_at < now() - make_interval(secs => $3) AND NOT ({UNCLAIMED}) \
                 ORDER BY next_attempt_at LIMIT $4) d) \
         AS overdue_deliveries, \
         EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = '{pending}' \
                   AND next_attempt_at < now() - make_interval(secs => $3) AND {UNCLAIMED}) \
         AS deliveries_waiting",
        pending = DeliveryStatus::Pending
    )
}

/// Wakes every worker's dispatcher (`NOTIFY amp_deliveries`).
pub async fn wake_dispatchers(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_raw(stmt("SELECT pg_notify($1, '')", [CHANNEL.into()]))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disable_rule_counts_continuous_failure() {
        let now = Utc::now();
        let five_days = Duration::from_secs(5 * 86_400);
        assert!(!should_disable(None, now, five_days));
        assert!(!should_disable(
            Some(now - chrono::Duration::days(4)),
            now,
            five_days
        ));
        assert!(should_disable(
            Some(now - chrono::Duration::days(5)),
            now,
            five_days
        ));
    }

    #[test]
    fn a_claim_takes_a_power_of_two_of_the_free_slots() {
        let sizes: Vec<usize> = [0, 1, 2, 3, 63, 64, 65, 1000, 5000]
            .into_iter()
            .map(claim_size)
            .collect();
        assert_eq!(sizes, [0, 1, 2, 2, 32, 64, 64, 512, 1024]);
    }

    #[test]
    fn only_a_2xx_succeeds() {
        let a = |c| Attempt {
            status_code: c,
            ..Attempt::default()
        };
        assert!(a(Some(200)).succeeded());
        assert!(a(Some(204)).succeeded());
        assert!(!a(Some(301)).succeeded());
        assert!(!a(Some(429)).succeeded());
        assert!(!a(Some(503)).succeeded());
        assert!(!a(None).succeeded());
    }
}
