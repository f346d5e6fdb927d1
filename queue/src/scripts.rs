//! Lua scripts: atomic promotion of delayed jobs, failure handling, hand-back.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: delayed, stream, dead. ARGV: now_ms, limit, dead_cap.
/// Moves up to `limit` due members to the stream (ZREM decides, so concurrent promoters
/// never duplicate a job). Returns the number of members handled.
pub(crate) static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local i1 = string.find(m, '\n', 1, true)
  local i2 = i1 and string.find(m, '\n', i1 + 1, true)
  local i3 = i2 and string.find(m, '\n', i2 + 1, true)
  if i3 then
    redis.call('XADD', KEYS[2], '*',
      'id', string.sub(m, 1, i1 - 1),
      'p', string.sub(m, i3 + 1),
      'a', string.sub(m, i1 + 1, i2 - 1),
      't', string.sub(m, i2 + 1, i3 - 1))
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], '*', 'raw', m, 'e', 'malformed delayed member')
  end
  redis.call('ZREM', KEYS[1], m)
end
return #due
"#,
    )
});

/// KEYS: stream, delayed, dead. ARGV: group, stream_id, mode ('retry'|'dead'), due_ms,
/// member, id, payload, attempt, error, enqueued_ms, dead_cap.
/// Acks + deletes the entry and, only if this call acked it, schedules the retry or
/// writes the dead entry. Returns 1 if handled, 0 if someone else had acked it already.
pub(crate) static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 and ARGV[2] ~= '' then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('XDEL', KEYS[1], ARGV[2])
end
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
else
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[11], '*',
    'id', ARGV[6], 'p', ARGV[7], 'a', ARGV[8], 'e', ARGV[9], 't', ARGV[10])
end
return 1
"#,
    )
});

/// KEYS: stream. ARGV: group, then groups of 5: stream_id, id, payload, attempt, enqueued_ms.
/// Re-adds each still-pending entry at the stream's end and acks + deletes the original.
pub(crate) static HAND_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for i = 2, #ARGV, 5 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('XADD', KEYS[1], '*', 'id', ARGV[i + 1], 'p', ARGV[i + 2], 'a', ARGV[i + 3], 't', ARGV[i + 4])
    n = n + 1
  end
end
return n
"#,
    )
});
