//! OpenTelemetry traces: one trace per run, across every hop. Exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf`,
//! the default, or `http/json`; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` as the specification gives them);
//! off, and free, otherwise.
//!
//! A run's trace starts at the HTTP request that created it (its *root*). Every job
//! carries, inside its payload, the root and the span that pushed it (W3C `traceparent`
//! text, `root;link`): the job's span has the root as its parent and a link to the step
//! before it. Inside a request or a job the root is in a task-local ([`scope`]), so any
//! job pushed from there carries it on ([`outgoing`], the queue's trace source).

pub use opentelemetry::trace::SpanContext;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (set once by [`super::init`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

tokio::task_local! {
    /// The root of the trace the current request or job belongs to (written out as
    /// `traceparent` text only when a job is pushed).
    static ROOT: Option<SpanContext>;
}

/// A span context as W3C `traceparent` text (`00-<trace>-<span>-<flags>`); `None` when it
/// is not valid (tracing off, or a span no exporter records).
pub fn traceparent(sc: &SpanContext) -> Option<String> {
    sc.is_valid().then(|| {
        let mut out = String::with_capacity(TRACEPARENT_LEN);
        write_traceparent(&mut out, sc);
        out
    })
}

/// The length of `traceparent` text.
const TRACEPARENT_LEN: usize = 55;

fn write_traceparent(out: &mut String, sc: &SpanContext) {
    out.push_str("00-");
    push_hex(out, &sc.trace_id().to_bytes());
    out.push('-');
    push_hex(out, &sc.span_id().to_bytes());
    out.push('-');
    push_hex(out, &[sc.trace_flags().to_u8()]);
}

/// Lower-case hex, two digits a byte, written in place (every job pushed writes two ids:
/// several times cheaper than formatting a `u128` with `{:032x}`). Ids are at most 16 bytes.
fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 32];
    let digits = &mut buf[..2 * bytes.len()];
    if hex::encode_to_slice(bytes, digits).is_ok()
        && let Ok(text) = std::str::from_utf8(digits)
    {
        out.push_str(text);
    }
}

/// The bytes `text` spells (exactly `N` bytes' worth of hex digits, either case).
fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Reads W3C `traceparent` text (version 00) as a remote span context.
pub fn parse(text: &str) -> Option<SpanContext> {
    let mut parts = text.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() {
        return None;
    }
    let [flags] = from_hex::<1>(flags)?;
    let sc = SpanContext::new(
        TraceId::from_bytes(from_hex(trace)?),
        SpanId::from_bytes(from_hex(span)?),
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// The span context of a `tracing` span (`None` with tracing off, or when it is not valid).
fn context_of(span: &tracing::Span) -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    let sc = span.context().span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The root of the current request or job (see [`scope`]).
pub fn root() -> Option<SpanContext> {
    ROOT.try_with(Clone::clone).ok().flatten()
}

/// What a job pushed now carries: `root;link` (the current request's or job's root, and
/// the current span), or `None` when tracing is off. One allocation per job pushed.
pub fn outgoing() -> Option<String> {
    let sc = context_of(&tracing::Span::current())?;
    let mut out = String::with_capacity(2 * TRACEPARENT_LEN + 1);
    let rooted = ROOT
        .try_with(|r| r.as_ref().map(|r| write_traceparent(&mut out, r)).is_some())
        .unwrap_or(false);
    if !rooted {
        write_traceparent(&mut out, &sc);
    }
    out.push(';');
    write_traceparent(&mut out, &sc);
    Some(out)
}

/// The root part of what [`outgoing`] made.
pub fn root_of(carried: &str) -> &str {
    carried.split(';').next().unwrap_or(carried)
}

/// The queue's trace source: every job pushed carries [`outgoing`].
pub fn source() -> queue::TraceSource {
    std::sync::Arc::new(outgoing)
}

/// Runs `fut` with `root` as the current trace's root.
pub async fn scope<F: std::future::Future>(root: Option<SpanContext>, fut: F) -> F::Output {
    ROOT.scope(root, fut).await
}

/// Makes `span` a child of the root `carried` names and links it to the step before it
/// (call before the span is first entered). Returns the root the span's work belongs to:
/// the carried one, or the span itself when it starts a trace.
pub fn join(span: &tracing::Span, carried: Option<&str>) -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    let mut parts = carried.into_iter().flat_map(|c| c.split(';'));
    let root = parts.next().and_then(parse);
    let link = parts.next().and_then(parse);
    if let Some(root) = &root {
        let cx = opentelemetry::Context::new().with_remote_span_context(root.clone());
        let _ = span.set_parent(cx);
    }
    if let Some(link) = link {
        span.add_link(link);
    }
    root.or_else(|| context_of(span))
}

/// Makes `span` (a request's) continue a caller's trace (`traceparent` text) when one is
/// given; returns `span` itself as the root of what it starts.
pub fn continue_from(span: &tracing::Span, incoming: Option<&str>) -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    if let Some(parent) = incoming.and_then(parse) {
        let cx = opentelemetry::Context::new().with_remote_span_context(parent);
        let _ = span.set_parent(cx);
    }
    context_of(span)
}

/// The current span's context, for a batched statement in this process to link to
/// ([`link_each`]); `None` with tracing off.
pub fn current() -> Option<SpanContext> {
    context_of(&tracing::Span::current())
}

/// Links `span` (a statement serving many runs in this process) to each of their spans.
pub fn link_each<'a>(span: &tracing::Span, contexts: impl IntoIterator<Item = &'a SpanContext>) {
    if !enabled() {
        return;
    }
    for sc in contexts {
        span.add_link(sc.clone());
    }
}

/// Links `span` (a statement serving many runs) to each of their spans, named by what
/// their jobs carry ([`outgoing`]'s text).
pub fn link_all<'a>(span: &tracing::Span, carried: impl IntoIterator<Item = &'a str>) {
    if !enabled() {
        return;
    }
    for c in carried {
        if let Some(sc) = c.split(';').next_back().and_then(parse) {
            span.add_link(sc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip() {
        let t = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let sc = parse(t).unwrap();
        assert!(sc.is_remote());
        assert_eq!(traceparent(&sc).as_deref(), Some(t));
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-xyz-b7ad6b7169203331-01",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        for bad in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        // Every byte value in every position survives the round trip.
        let ids = (0..=255u8).map(|b| {
            let t = [b, !b, b ^ 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, b];
            let sp = [b, 0xff, 0, b.rotate_left(3), 1, 2, 3, b];
            SpanContext::new(
                TraceId::from_bytes(t),
                SpanId::from_bytes(sp),
                TraceFlags::new(b & 1),
                true,
                TraceState::default(),
            )
        });
        for sc in ids {
            let text = traceparent(&sc).unwrap();
            let formatted = format!(
                "00-{:032x}-{:016x}-{:02x}",
                u128::from_be_bytes(sc.trace_id().to_bytes()),
                u64::from_be_bytes(sc.span_id().to_bytes()),
                sc.trace_flags().to_u8()
            );
            assert_eq!(text, formatted);
            assert_eq!(parse(&text), Some(sc.clone()));
            assert_eq!(parse(&text.to_uppercase()), Some(sc));
        }
        assert_eq!(root_of("a;b"), "a");
        assert_eq!(root_of("a"), "a");
    }

    #[test]
    fn off_by_default_and_free() {
        assert!(!enabled());
        assert_eq!(outgoing(), None);
        assert_eq!(join(&tracing::Span::none(), Some("x;y")), None);
    }
}
