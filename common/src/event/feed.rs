//! The event feed: a user's events in commit order, for `GET /events` and
//! `GET /events/stream`.
//!
//! Event ids and `created_at` are not commit order: a transaction that started earlier may
//! commit later. The feed's order is `(txid, seq)` (migration `m20261208_000001_webhooks`),
//! and a read only returns events whose transaction is below the oldest one still open
//! (`pg_snapshot_xmin` of the statement's snapshot): every transaction below it has ended,
//! so nothing can still appear before a position a reader has passed. A cursor therefore
//! never skips an event that was not yet committed when the page was read.
//!
//! [`FeedWatcher`] is the one task per process that notices new events cheaply (the
//! events sequence and the snapshot horizon, one small statement per tick) and wakes the
//! live streams ([`follow`]) through a `watch` channel; a stream only queries when woken.

use crate::event::EventType;
use crate::ids::{EventId, UserId};
use chrono::{DateTime, Utc};
use futures::Stream;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How often the watcher looks for new events.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Events a live stream reads at once.
const STREAM_PAGE: u64 = 100;

/// A place in the feed: after the event with this transaction id and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeedPosition {
    pub txid: u64,
    pub seq: i64,
}

impl FeedPosition {
    /// Before every event.
    pub const START: Self = Self { txid: 0, seq: 0 };

    /// The 16 bytes a cursor carries.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.txid.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// The position of [`FeedPosition::to_bytes`]; `None` for anything else.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; 16] = b.try_into().ok()?;
        let txid = u64::from_be_bytes(b[..8].try_into().ok()?);
        let seq = i64::from_be_bytes(b[8..].try_into().ok()?);
        Some(Self { txid, seq })
    }
}

/// One event as the feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub id: EventId,
    pub event_type: EventType,
    pub created_at: DateTime<Utc>,
    /// The subject as its own `GET` showed it when the event was recorded.
    pub data: Value,
    pub position: FeedPosition,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    pub user: UserId,
    /// Events after this position ([`FeedPosition::START`]: from the oldest kept).
    pub after: FeedPosition,
    /// Only these types (empty: every type).
    pub types: Vec<EventType>,
    pub limit: u64,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    id: EventId,
    event_type: EventType,
    created_at: DateTime<Utc>,
    payload: Value,
    /// Named apart from the column, so that `ORDER BY txid` could never sort the text.
    txid_text: String,
    seq: i64,
}

fn stmt(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn txid(text: &str) -> Result<u64, DbErr> {
    text.parse()
        .map_err(|_| DbErr::Type(format!("not a transaction id: {text:?}")))
}

/// The types filter as one parameter (`NULL`: every type).
fn types_param(types: &[EventType]) -> Option<String> {
    (!types.is_empty()).then(|| {
        types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The next events of `q.user` after `q.after`, oldest first, up to `q.limit`: only events
/// whose transaction is below the snapshot's horizon (every older transaction has ended).
pub async fn page<C: ConnectionTrait>(db: &C, q: &FeedQuery) -> Result<Vec<FeedEvent>, DbErr> {
    let rows = Row::find_by_statement(stmt(
        "SELECT id, event_type, created_at, payload, txid::text AS txid_text, seq FROM events \
         WHERE user_id = $1 \
           AND (txid, seq) > ($2::text::xid8, $3) \
           AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
           AND ($4::text IS NULL OR event_type = ANY (string_to_array($4::text, ','))) \
         ORDER BY events.txid, events.seq LIMIT $5",
        [
            q.user.into(),
            q.after.txid.to_string().into(),
            q.after.seq.into(),
            types_param(&q.types).into(),
            (q.limit.min(i64::MAX as u64) as i64).into(),
        ],
    ))
    .all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(FeedEvent {
                position: FeedPosition {
                    txid: txid(&r.txid_text)?,
                    seq: r.seq,
                },
                id: r.id,
                event_type: r.event_type,
                created_at: r.created_at,
                data: r.payload,
            })
        })
        .collect()
}

/// Where `user`'s event `id` is in the feed (`None`: no such event of theirs, or pruned).
pub async fn position_of<C: ConnectionTrait>(
    db: &C,
    user: UserId,
    id: EventId,
) -> Result<Option<FeedPosition>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            "SELECT txid::text AS txid, seq FROM events WHERE user_id = $1 AND id = $2",
            [user.into(), id.into()],
        ))
        .await?;
    row.map(|r| {
        Ok(FeedPosition {
            txid: txid(&r.try_get::<String>("", "txid")?)?,
            seq: r.try_get("", "seq")?,
        })
    })
    .transpose()
}

/// The position before everything not yet in the feed: a reader starting here gets every
/// event that becomes visible from now on, and none that already was ("from now").
pub async fn horizon<C: ConnectionTrait>(db: &C) -> Result<FeedPosition, DbErr> {
    let row = db
        .query_one_raw(stmt(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin",
            [],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the snapshot horizon".into()))?;
    Ok(FeedPosition {
        txid: txid(&row.try_get::<String>("", "xmin")?)?,
        seq: 0,
    })
}

/// One look of the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The events sequence's last value (0 before the first event).
    pub seq: i64,
    /// The horizon: the oldest transaction still open.
    pub xmin: u64,
    /// A transaction id taken after `seq` was read, when `seq` differed from the last one
    /// the watcher knew: every transaction that wrote one of those events is below it.
    pub mark: Option<u64>,
}

/// Reads a [`Probe`]; `known` is the sequence value the watcher last saw (a new
/// transaction id is only taken when it changed).
pub async fn probe<C: ConnectionTrait>(db: &C, known: Option<i64>) -> Result<Probe, DbErr> {
    // The sequence is read first, then the mark's id is assigned (the projection runs
    // after the scan). An event's txid is assigned before its seq (the txid column comes
    // first, and defaults are evaluated in column order), so every writer of a seq up to
    // the one read has a txid below the mark.
    let row = db
        .query_one_raw(stmt(
            "SELECT s.seq, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
                    CASE WHEN s.seq IS DISTINCT FROM $1 THEN pg_current_xact_id()::text END AS mark \
             FROM (SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM events_seq_seq) s",
            [known.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("events_seq_seq".into()))?;
    Ok(Probe {
        seq: row.try_get("", "seq")?,
        xmin: txid(&row.try_get::<String>("", "xmin")?)?,
        mark: row
            .try_get::<Option<String>>("", "mark")?
            .map(|m| txid(&m))
            .transpose()?,
    })
}

/// When to wake the streams, from successive probes. New events wake them at once (they
/// are often committed by then); events still in flight become readable when the horizon
/// passes their transaction, so while a mark is pending every move of the horizon wakes
/// them again, until the horizon is past the mark.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    seq: Option<i64>,
    xmin: u64,
    pending: Option<u64>,
}

impl Tracker {
    /// The sequence value last seen.
    pub fn known(&self) -> Option<i64> {
        self.seq
    }

    /// Takes a probe in; true when the streams should look.
    pub fn observe(&mut self, p: Probe) -> bool {
        let moved = self.seq.is_some_and(|s| s != p.seq);
        let advanced = self.seq.is_some() && p.xmin != self.xmin;
        self.seq = Some(p.seq);
        self.xmin = p.xmin;
        if let Some(m) = p.mark {
            self.pending = Some(self.pending.map_or(m, |old| old.max(m)));
        }
        let mut wake = moved;
        if advanced && let Some(m) = self.pending {
            wake = true;
            if p.xmin > m {
                self.pending = None;
            }
        }
        wake
    }
}

/// The process's watcher: wakes every live stream when the feed may have moved. Closing
/// it (at shutdown) ends every stream.
#[derive(Clone)]
pub struct FeedWatcher {
    wake: watch::Receiver<u64>,
    stop: Arc<Notify>,
}

impl FeedWatcher {
    /// Starts the watcher task (inside tokio): one probe every `every`.
    pub fn start(db: DatabaseConnection, every: Duration) -> Self {
        let (tx, rx) = watch::channel(0u64);
        let stop = Arc::new(Notify::new());
        tokio::spawn(watch_loop(db, every, tx, stop.clone()));
        Self { wake: rx, stop }
    }

    /// A receiver that changes whenever the streams should look.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.clone()
    }

    /// Stops the watcher: every stream ends after what it can read now.
    pub fn close(&self) {
        self.stop.notify_one();
    }
}

async fn watch_loop(
    db: DatabaseConnection,
    every: Duration,
    tx: watch::Sender<u64>,
    stop: Arc<Notify>,
) {
    let mut tracker = Tracker::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tick.tick() => {}
        }
        if tx.is_closed() {
            return;
        }
        match probe(&db, tracker.known()).await {
            Ok(p) => {
                if failing {
                    tracing::info!("the event feed watcher reads the database again");
                    failing = false;
                    // Anything may have happened meanwhile.
                    tx.send_modify(|g| *g += 1);
                }
                if tracker.observe(p) {
                    tx.send_modify(|g| *g += 1);
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "the event feed watcher cannot read the database; live streams wait");
            }
            Err(e) => {
                tracing::debug!(error = %e, "the event feed watcher still cannot read the database")
            }
        }
    }
}

/// A live stream's reading: whose events, from where, which types.
#[derive(Debug, Clone)]
pub struct Follow {
    pub user: UserId,
    pub after: FeedPosition,
    pub types: Vec<EventType>,
}

/// The user's events after `f.after`, in feed order, as they become readable: reads a page
/// whenever `wake` changes. Ends when the watcher is closed (after what it can read
/// then), or on a database error (logged; the client resumes with `Last-Event-ID`).
pub fn follow(
    db: DatabaseConnection,
    f: Follow,
    wake: watch::Receiver<u64>,
) -> impl Stream<Item = FeedEvent> + Send + 'static {
    struct State {
        db: DatabaseConnection,
        q: FeedQuery,
        wake: watch::Receiver<u64>,
        buffer: VecDeque<FeedEvent>,
    }
    let state = State {
        db,
        q: FeedQuery {
            user: f.user,
            after: f.after,
            types: f.types,
            limit: STREAM_PAGE,
        },
        wake,
        buffer: VecDeque::new(),
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.buffer.pop_front() {
                return Some((e, s));
            }
            // Seen before reading, so a wake during the read is not lost.
            s.wake.borrow_and_update();
            match page(&s.db, &s.q).await {
                Ok(events) if events.is_empty() => {
                    if s.wake.changed().await.is_err() {
                        return None;
                    }
                }
                Ok(events) => {
                    if let Some(last) = events.last() {
                        s.q.after = last.position;
                    }
                    s.buffer.extend(events);
                }
                Err(e) => {
                    tracing::warn!(user.id = %s.q.user, error = %e, "an event stream could not read the feed; ending it");
                    return None;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seq: i64, xmin: u64, mark: Option<u64>) -> Probe {
        Probe { seq, xmin, mark }
    }

    #[test]
    fn positions_round_trip_and_order_by_txid_then_seq() {
        let a = FeedPosition {
            txid: 9_000_000_000,
            seq: 7,
        };
        assert_eq!(FeedPosition::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(FeedPosition::from_bytes(&a.to_bytes()[..15]), None);
        assert_eq!(FeedPosition::from_bytes(&[]), None);
        let b = FeedPosition { txid: 10, seq: 900 };
        let c = FeedPosition { txid: 11, seq: 1 };
        assert!(FeedPosition::START < b && b < c && c < a);
    }

    #[test]
    fn the_types_filter_is_one_parameter() {
        assert_eq!(types_param(&[]), None);
        assert_eq!(
            types_param(&[EventType::ExecutionQueued, EventType::WebhookTest]).as_deref(),
            Some("execution.queued,webhook.test")
        );
    }

    #[test]
    fn the_tracker_wakes_on_new_events_and_until_the_horizon_passes_their_writers() {
        let mut t = Tracker::default();
        // The first look only learns where things are (streams read once on their own).
        assert!(!t.observe(p(10, 100, Some(120))));
        // The horizon moves past the start's mark: the in-flight writers have ended.
        assert!(t.observe(p(10, 121, None)));
        // Quiet: no new events, the horizon moving wakes nobody.
        assert!(!t.observe(p(10, 125, None)));
        assert!(!t.observe(p(10, 125, None)));
        // New events: wake at once; their writers are below the mark 140.
        assert!(t.observe(p(12, 126, Some(140))));
        // The horizon does not move (a writer is still open): nothing to wake for.
        assert!(!t.observe(p(12, 126, None)));
        // It moves but not past the mark: wake (some writers ended), still pending.
        assert!(t.observe(p(12, 135, None)));
        // Past the mark: a last wake, then quiet again.
        assert!(t.observe(p(12, 141, None)));
        assert!(!t.observe(p(12, 150, None)));
        // A second burst while the first is pending keeps the later mark.
        assert!(t.observe(p(13, 151, Some(160))));
        assert!(t.observe(p(14, 152, Some(170))));
        assert!(t.observe(p(14, 165, None)));
        assert!(t.observe(p(14, 171, None)));
        assert!(!t.observe(p(14, 180, None)));
        assert_eq!(t.known(), Some(14));
    }
}
