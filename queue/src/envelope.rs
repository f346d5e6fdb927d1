//! The job envelope: stream entry fields, delayed-set member encoding, retry back-off.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use redis::streams::StreamId;

use crate::error::{QueueError, Result};

/// One job as stored in Redis: stream fields `id`, `p`, `a`, `t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Job id (UUID v7 string).
    pub id: String,
    /// Payload bytes (JSON).
    pub payload: Vec<u8>,
    /// Attempt number, 0 for the first run.
    pub attempt: u32,
    /// Enqueue wall-clock time, unix ms.
    pub enqueued_ms: u64,
}

impl Envelope {
    /// A fresh envelope (attempt 0, enqueued now) with a new UUID v7 id.
    pub fn new(payload: Vec<u8>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            payload,
            attempt: 0,
            enqueued_ms: now_ms(),
        }
    }

    /// Member of the delayed sorted set: `id \n attempt \n enqueued_ms \n payload`.
    ///
    /// The id makes it unique; the Lua promoter splits it on the first three newlines.
    pub fn encode_member(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.id.len() + self.payload.len() + 32);
        out.extend_from_slice(self.id.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.attempt.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.enqueued_ms.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&self.payload);
        out
    }

    /// Inverse of [`Envelope::encode_member`].
    pub fn decode_member(member: &[u8]) -> Result<Self> {
        let mut parts = member.splitn(4, |b| *b == b'\n');
        let bad = || QueueError::InvalidEntry("malformed delayed member".into());
        let id = std::str::from_utf8(parts.next().ok_or_else(bad)?).map_err(|_| bad())?;
        let attempt = parse_num(parts.next().ok_or_else(bad)?).ok_or_else(bad)?;
        let enqueued_ms = parse_num(parts.next().ok_or_else(bad)?).ok_or_else(bad)?;
        let payload = parts.next().ok_or_else(bad)?.to_vec();
        Ok(Self {
            id: id.to_owned(),
            payload,
            attempt: u32::try_from(attempt).map_err(|_| bad())?,
            enqueued_ms,
        })
    }

    /// Parses the fields of a stream entry.
    pub fn from_stream_entry(entry: &StreamId) -> Result<Self> {
        let id: String = entry
            .get("id")
            .ok_or_else(|| QueueError::InvalidEntry(format!("entry {} has no id", entry.id)))?;
        let payload: Vec<u8> = entry.get("p").unwrap_or_default();
        let attempt: u32 = entry.get("a").unwrap_or(0);
        let enqueued_ms: u64 = entry.get("t").unwrap_or(0);
        Ok(Self {
            id,
            payload,
            attempt,
            enqueued_ms,
        })
    }
}

/// The key of the trace context a payload may carry: the first field of its JSON object,
/// so it is found without parsing the payload; handlers' types ignore it.
const TRACE_FIELD: &[u8] = b"{\"_trace\":\"";

/// `payload` (a JSON object) carrying `trace` (W3C trace context text: `[0-9a-f-;]`);
/// unchanged when either does not fit.
pub fn with_trace(payload: Vec<u8>, trace: &str) -> Vec<u8> {
    let fits = trace
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b';');
    if !fits || trace.is_empty() || payload.first() != Some(&b'{') {
        return payload;
    }
    let mut out = Vec::with_capacity(payload.len() + trace.len() + 14);
    out.extend_from_slice(TRACE_FIELD);
    out.extend_from_slice(trace.as_bytes());
    out.push(b'"');
    if payload.get(1) != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(&payload[1..]);
    out
}

/// The trace context a payload carries (see [`with_trace`]).
pub fn trace_of(payload: &[u8]) -> Option<String> {
    let rest = payload.strip_prefix(TRACE_FIELD)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
}

fn parse_num(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Current wall-clock time in unix milliseconds.
pub fn now_ms() -> u64 {
    to_unix_ms(SystemTime::now())
}

/// A `SystemTime` as unix milliseconds (0 for times before the epoch).
pub fn to_unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A due time as unix milliseconds, rounded up, so a job never fires before its time.
pub fn due_unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| {
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            u64::try_from(ms).unwrap_or(u64::MAX)
        })
        .unwrap_or(0)
}

/// Base retry delay after a failed run with `attempt`: min(2^attempt × 500 ms, 60 s).
pub fn retry_delay(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempt.min(20));
    Duration::from_millis(ms.min(60_000))
}

/// `d` scaled by a random factor in [0.8, 1.2).
pub fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::thread_rng().gen_range(0.8..1.2);
    d.mul_f64(f)
}

/// Exponential reconnect back-off: 50 ms doubling to 2 s, with jitter.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);

    pub(crate) fn new() -> Self {
        Self { next: Self::MIN }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::MIN;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        jitter(d)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn due_times_round_up_to_the_next_millisecond() {
        use std::time::{Duration, UNIX_EPOCH};
        let t = |ns: u64| UNIX_EPOCH + Duration::from_nanos(ns);
        assert_eq!(super::due_unix_ms(t(1_000_000_000)), 1_000);
        assert_eq!(super::due_unix_ms(t(1_000_000_001)), 1_001);
        assert_eq!(super::due_unix_ms(t(1_000_999_999)), 1_001);
        assert_eq!(super::to_unix_ms(t(1_000_999_999)), 1_000);
    }

    use super::*;

    #[test]
    fn member_roundtrip_with_newlines_in_payload() {
        let e = Envelope {
            id: "0190a0b0-0000-7000-8000-000000000001".into(),
            payload: b"{\"a\":\"x\ny\"}\n\xff".to_vec(),
            attempt: 7,
            enqueued_ms: 1_700_000_000_123,
        };
        let m = e.encode_member();
        assert_eq!(Envelope::decode_member(&m).unwrap(), e);
        assert!(Envelope::decode_member(b"no-newlines").is_err());
        assert!(Envelope::decode_member(b"id\nx\n1\np").is_err());
    }

    #[test]
    fn retry_delay_is_capped() {
        assert_eq!(retry_delay(0), Duration::from_millis(500));
        assert_eq!(retry_delay(1), Duration::from_millis(1000));
        assert_eq!(retry_delay(6), Duration::from_millis(32_000));
        assert_eq!(retry_delay(7), Duration::from_secs(60));
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(800) && j < Duration::from_millis(1200));
        }
        let mut b = Backoff::new();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            last = b.next_delay();
        }
        assert!(last <= Duration::from_millis(2400));
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(61));
    }

    #[test]
    fn new_envelope_has_v7_id() {
        let e = Envelope::new(b"{}".to_vec());
        let u = uuid::Uuid::parse_str(&e.id).unwrap();
        assert_eq!(u.get_version_num(), 7);
        assert_eq!(e.attempt, 0);
    }
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn a_payload_carries_its_trace_and_still_decodes() {
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Job {
            n: u32,
        }
        let t = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01;00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
        let p = with_trace(br#"{"n":7}"#.to_vec(), t);
        assert_eq!(trace_of(&p).as_deref(), Some(t));
        assert_eq!(serde_json::from_slice::<Job>(&p).unwrap(), Job { n: 7 });
        assert_eq!(trace_of(br#"{"n":7}"#), None);
        assert_eq!(
            with_trace(b"{}".to_vec(), "00-ab"),
            br#"{"_trace":"00-ab"}"#
        );
        assert_eq!(
            with_trace(br#"{"n":1}"#.to_vec(), "bad\"quote"),
            br#"{"n":1}"#
        );
        assert_eq!(with_trace(b"[1]".to_vec(), "00-ab"), b"[1]");
    }
}
