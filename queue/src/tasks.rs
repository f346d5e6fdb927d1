//! Background tasks of one consumer: fetch loop, claim loop, ack loop, stop watcher.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use apalis_core::worker::context::WorkerContext;
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoConsumersReply, StreamReadReply};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{DEAD_CAP, GROUP};
use crate::consumer::{AckCmd, Delivery, Shared};
use crate::envelope::{Backoff, Envelope};
use crate::error::Result;
use crate::scripts::{FAIL, HAND_BACK};

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// XGROUP CREATE ... 0 MKSTREAM, ignoring BUSYGROUP.
pub(crate) async fn ensure_group<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
) -> redis::RedisResult<()> {
    let r: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Turns stream entries into deliveries; malformed ones go straight to the dead list.
fn to_deliveries(shared: &Shared, entries: &[StreamId], reclaimed: bool) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        match Envelope::from_stream_entry(e) {
            Ok(env) => out.push(Delivery {
                stream_id: e.id.clone(),
                env: Arc::new(env),
                reclaimed,
            }),
            Err(err) => shared.send_ack(AckCmd::Dead {
                stream_id: e.id.clone(),
                env: Arc::new(Envelope {
                    id: e.id.clone(),
                    payload: e.get("p").unwrap_or_default(),
                    attempt: 0,
                    enqueued_ms: 0,
                }),
                error: err.to_string(),
            }),
        }
    }
    out
}

async fn connect_reader(
    client: &redis::Client,
    shared: &Shared,
) -> Result<(MultiplexedConnection, i64)> {
    let cfg = AsyncConnectionConfig::new()
        .set_response_timeout(Some(shared.config.block + Duration::from_secs(2)))
        .set_connection_timeout(Some(Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    ensure_group(&mut conn, &shared.keys.stream).await?;
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await?;
    Ok((conn, id))
}

/// The fetch loop: blocking XREADGROUP on a dedicated connection, never more than the
/// free slots; reconnects with back-off; hands back unstarted entries when stopped.
pub(crate) async fn run_fetcher(
    shared: Arc<Shared>,
    client: redis::Client,
    mut mgr: ConnectionManager,
    stop: CancellationToken,
    worker: Option<WorkerContext>,
) {
    let mut reader: Option<(MultiplexedConnection, i64)> = None;
    let mut backoff = Backoff::new();
    let block = shared.config.block;
    while !stop.is_cancelled() {
        let (conn, client_id) = match reader.as_mut() {
            Some((c, id)) => (c, *id),
            None => match connect_reader(&client, &shared).await {
                Ok(r) => {
                    shared.health.record_ok();
                    backoff.reset();
                    let r = reader.insert(r);
                    (&mut r.0, r.1)
                }
                Err(e) => {
                    shared.health.record_err();
                    tracing::warn!(queue = %shared.queue, error = %e, "consumer: cannot connect to redis; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = stop.cancelled() => {}
                    }
                    continue;
                }
            },
        };
        let paused = worker.as_ref().is_some_and(|w| w.is_paused());
        let free = if paused { 0 } else { shared.free() };
        if free == 0 {
            // All slots busy: wait for one, but keep proving the connection works.
            tokio::select! {
                _ = shared.demand.notified() => continue,
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(block) => {}
            }
            let r: redis::RedisResult<String> = redis::cmd("PING").query_async(conn).await;
            match r {
                Ok(_) => shared.health.record_ok(),
                Err(e) => {
                    shared.health.record_err();
                    tracing::warn!(queue = %shared.queue, error = %e, "consumer: redis ping failed; reconnecting");
                    reader = None;
                }
            }
            continue;
        }
        let count = free.min(shared.config.batch);
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(ms(block).max(1))
            .arg("STREAMS")
            .arg(&shared.keys.stream)
            .arg(">");
        let res = {
            let mut read = pin!(cmd.query_async::<Option<StreamReadReply>>(conn));
            tokio::select! {
                biased;
                r = &mut read => r,
                _ = stop.cancelled() => {
                    // Wake the blocked read so whatever it returns is handed back below.
                    let _: redis::RedisResult<i64> = redis::cmd("CLIENT").arg("UNBLOCK").arg(client_id).query_async(&mut mgr).await;
                    match tokio::time::timeout(block + Duration::from_secs(1), &mut read).await {
                        Ok(r) => r,
                        Err(_) => Ok(None),
                    }
                }
            }
        };
        match res {
            Ok(reply) => {
                shared.health.record_ok();
                backoff.reset();
                let entries: Vec<StreamId> = reply
                    .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                    .unwrap_or_default();
                shared.push_deliveries(to_deliveries(&shared, &entries, false));
            }
            Err(e) if e.code() == Some("NOGROUP") => {
                tracing::warn!(queue = %shared.queue, "consumer: group vanished (flush/restart?); re-creating");
                if let Err(e) = ensure_group(conn, &shared.keys.stream).await {
                    shared.health.record_err();
                    tracing::warn!(queue = %shared.queue, error = %e, "consumer: cannot create group");
                    reader = None;
                }
            }
            Err(e) => {
                shared.health.record_err();
                tracing::warn!(queue = %shared.queue, error = %e, "consumer: read failed; reconnecting");
                reader = None;
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }
    hand_back(&shared, &mut mgr).await;
}

/// Re-adds fetched-but-unstarted entries to the stream (and acks + deletes the originals).
pub(crate) async fn hand_back(shared: &Shared, mgr: &mut ConnectionManager) {
    let items = shared.drain_buffer();
    if items.is_empty() {
        return;
    }
    let mut backoff = Backoff::new();
    for attempt in 0..5 {
        let mut inv = HAND_BACK.key(&shared.keys.stream);
        inv.arg(GROUP);
        for d in &items {
            inv.arg(&d.stream_id)
                .arg(&d.env.id)
                .arg(&d.env.payload)
                .arg(d.env.attempt)
                .arg(d.env.enqueued_ms);
        }
        match inv.invoke_async::<usize>(mgr).await {
            Ok(n) => {
                tracing::info!(queue = %shared.queue, handed_back = n, "consumer stopped; unstarted jobs handed back");
                shared.release(items.iter().map(|d| d.stream_id.as_str()));
                return;
            }
            Err(e) => {
                tracing::warn!(queue = %shared.queue, error = %e, attempt, "hand-back failed");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    tracing::warn!(queue = %shared.queue, count = items.len(), "hand-back gave up; jobs will be reclaimed after claim_idle");
}

/// The claim loop: refresh own pending entries, take over dead consumers' entries,
/// and remove long-idle empty consumers from the group. After `stop` (the worker is
/// shutting down) it only keeps refreshing the entries still running, until `close`, so
/// no other consumer takes them over while they finish (or are handed back).
pub(crate) async fn run_claimer(
    shared: Arc<Shared>,
    mut mgr: ConnectionManager,
    stop: CancellationToken,
    close: CancellationToken,
) {
    let interval = shared.config.claim_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let gc_every =
        (Duration::from_secs(60).as_millis() / interval.as_millis().max(1)).max(1) as u64;
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = close.cancelled() => return,
        }
        if stop.is_cancelled() {
            if let Err(e) = refresh_held(&shared, &mut mgr).await {
                tracing::debug!(queue = %shared.queue, error = %e, "refreshing running entries failed");
            }
            continue;
        }
        if let Err(e) = claim_round(&shared, &mut mgr).await {
            tracing::debug!(queue = %shared.queue, error = %e, "claim round failed");
        }
        n += 1;
        if n.is_multiple_of(gc_every)
            && let Err(e) = gc_consumers(&shared, &mut mgr).await
        {
            tracing::debug!(queue = %shared.queue, error = %e, "consumer gc failed");
        }
    }
}

/// Resets the idle time of every entry this consumer holds (XCLAIM to itself).
async fn refresh_held(shared: &Shared, mgr: &mut ConnectionManager) -> Result<()> {
    let held = shared.held_ids();
    for chunk in held.chunks(500) {
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(&shared.keys.stream)
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg(0)
            .arg(chunk)
            .arg("JUSTID")
            .query_async(mgr)
            .await?;
    }
    Ok(())
}

async fn claim_round(shared: &Shared, mgr: &mut ConnectionManager) -> Result<()> {
    refresh_held(shared, mgr).await?;
    let mut free = shared.free();
    let mut cursor = "0-0".to_owned();
    for _ in 0..10 {
        if free == 0 {
            break;
        }
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&shared.keys.stream)
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg(ms(shared.config.claim_idle))
            .arg(&cursor)
            .arg("COUNT")
            .arg(free)
            .query_async(mgr)
            .await?;
        let fresh: Vec<StreamId> = reply
            .claimed
            .into_iter()
            .filter(|e| !shared.is_held(&e.id))
            .collect();
        let ds = to_deliveries(shared, &fresh, true);
        for d in &ds {
            tracing::warn!(queue = %shared.queue, job_id = %d.env.id, attempt = d.env.attempt, "reclaimed job of a dead consumer");
        }
        free = free.saturating_sub(ds.len());
        shared.push_deliveries(ds);
        cursor = reply.next_stream_id;
        if cursor == "0-0" {
            break;
        }
    }
    Ok(())
}

async fn gc_consumers(shared: &Shared, mgr: &mut ConnectionManager) -> Result<()> {
    let info: StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&shared.keys.stream)
        .arg(GROUP)
        .query_async(mgr)
        .await?;
    let max_idle = ms(shared.config.consumer_gc_idle);
    for c in info.consumers {
        if c.name != shared.consumer && c.pending == 0 && c.idle as u64 > max_idle {
            let _: i64 = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(&shared.keys.stream)
                .arg(GROUP)
                .arg(&c.name)
                .query_async(mgr)
                .await?;
            tracing::info!(queue = %shared.queue, consumer = %c.name, "removed idle consumer");
        }
    }
    Ok(())
}

/// The ack loop: batches acks into pipelines; retries until Redis accepts them.
/// On `stop` it drains what is queued and exits.
pub(crate) async fn run_acker(
    shared: Arc<Shared>,
    mut mgr: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<AckCmd>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            c = rx.recv() => c,
            _ = stop.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        flush(&shared, &mut mgr, batch).await;
    }
    let mut rest = Vec::new();
    while let Ok(c) = rx.try_recv() {
        rest.push(c);
    }
    if !rest.is_empty() {
        flush(&shared, &mut mgr, rest).await;
    }
}

async fn flush(shared: &Shared, mgr: &mut ConnectionManager, batch: Vec<AckCmd>) {
    let mut backoff = Backoff::new();
    loop {
        match try_flush(shared, mgr, &batch).await {
            Ok(()) => {
                shared.release(batch.iter().map(AckCmd::stream_id));
                return;
            }
            Err(e) => {
                tracing::warn!(queue = %shared.queue, error = %e, count = batch.len(), "ack failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

async fn try_flush(shared: &Shared, mgr: &mut ConnectionManager, batch: &[AckCmd]) -> Result<()> {
    let done: Vec<&str> = batch
        .iter()
        .filter_map(|c| match c {
            AckCmd::Done { stream_id } => Some(stream_id.as_str()),
            _ => None,
        })
        .collect();
    if !done.is_empty() {
        let () = redis::pipe()
            .cmd("XACK")
            .arg(&shared.keys.stream)
            .arg(GROUP)
            .arg(&done)
            .ignore()
            .cmd("XDEL")
            .arg(&shared.keys.stream)
            .arg(&done)
            .ignore()
            .query_async(mgr)
            .await?;
    }
    for c in batch {
        let (stream_id, env, mode, due_ms, error) = match c {
            AckCmd::Done { .. } => continue,
            AckCmd::Retry {
                stream_id,
                env,
                due_ms,
            } => (stream_id, env, "retry", *due_ms, ""),
            AckCmd::Dead {
                stream_id,
                env,
                error,
            } => (stream_id, env, "dead", 0, error.as_str()),
        };
        let _: i64 = FAIL
            .key(&shared.keys.stream)
            .key(&shared.keys.delayed)
            .key(&shared.keys.dead)
            .arg(GROUP)
            .arg(stream_id)
            .arg(mode)
            .arg(due_ms)
            .arg(env.encode_member())
            .arg(&env.id)
            .arg(&env.payload)
            .arg(env.attempt)
            .arg(error)
            .arg(env.enqueued_ms)
            .arg(DEAD_CAP)
            .invoke_async(mgr)
            .await?;
        if mode == "retry" {
            crate::timer::notify_local(&shared.config.redis_url, &shared.keys.delayed);
        }
    }
    Ok(())
}

/// Stops the consumer as soon as the worker starts shutting down, so fetched but
/// unstarted entries are handed back at once (not only after in-flight jobs finish).
pub(crate) async fn run_watcher(worker: WorkerContext, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.cancelled() => return,
        }
        if worker.is_shutting_down() {
            stop.cancel();
            return;
        }
    }
}
