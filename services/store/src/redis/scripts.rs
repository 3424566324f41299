//! The Lua scripts that make each multi-key change atomic. Every script
//! touches only keys of one AOR (one hash tag, so one Redis Cluster slot),
//! except that on a standalone Redis the presence scripts also get the
//! slot index as `KEYS[4]` and keep it in the same step.
//!
//! Every presence write carries the writer's ownership epoch and is
//! refused when the presentity's stamp is higher ([`fence!`]).
//!
//! Numbers that can pass 2^31 (versions, message ids) are kept as decimal
//! strings on the way out (`%.0f`): Lua 5.1 numbers are doubles, exact up
//! to 2^53, and their default formatting would use an exponent.

use std::sync::LazyLock;

use redis::Script;

/// How long a key stays whose latest expiry is already past by the Redis
/// server's clock (a caller on virtual time, a skewed clock): the caller's
/// own `now` decides what is expired, the TTL only collects garbage.
pub(super) const PAST_RETENTION_SECS: u64 = 3600;

/// `expire_at(key, at, now)`: the key's TTL follows its latest record.
macro_rules! expire_at {
    () => {
        r#"
local function expire_at(key, at, now)
  if at > now then
    redis.call('EXPIREAT', key, string.format('%.0f', at))
  else
    redis.call('EXPIRE', key, ARGV_PAST_RETENTION)
  end
end
"#
    };
}

fn with_helpers(body: &str) -> Script {
    let helpers = expire_at!().replace("ARGV_PAST_RETENTION", &PAST_RETENTION_SECS.to_string());
    Script::new(&format!("{helpers}{body}"))
}

/// Compare-and-set of a binding set.
/// KEYS[1] `reg:{aor}`. ARGV[1] version the caller read (`0`: none),
/// ARGV[2] JSON array of the new bindings (empty: remove all), ARGV[3]
/// their latest expiry (Unix seconds).
/// Returns 1 when written, 0 when the version moved on (conflict).
///
/// The new version is the server's time in microseconds, or the old one
/// plus one if that is larger: versions never repeat even after the key
/// was deleted, so a writer holding a version from before a removal loses.
pub(super) static REPLACE_BINDINGS: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        r#"
local current = redis.call('HGET', KEYS[1], 'v') or '0'
if current ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
local t = redis.call('TIME')
local version = tonumber(t[1]) * 1000000 + tonumber(t[2])
if tonumber(current) + 1 > version then version = tonumber(current) + 1 end
redis.call('HSET', KEYS[1], 'v', string.format('%.0f', version), 'b', ARGV[2])
expire_at(KEYS[1], tonumber(ARGV[3]), tonumber(t[1]))
return 1
"#,
    )
});

/// Appends to an offline queue unless it already holds `max` unexpired
/// messages. KEYS[1] `msgq:{aor}`, KEYS[2] `msgexp:{aor}`, KEYS[3]
/// `msgid:{aor}`. ARGV[1] now (the message's arrival), ARGV[2] its expiry,
/// ARGV[3] max, ARGV[4] the JSON message.
/// Returns the new id (decimal string), or nil when the queue is full.
/// Expired messages are purged first so they do not count. Ids follow the
/// same rule as binding versions, so they rise even across an emptied queue.
pub(super) static ENQUEUE_MESSAGE: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        r#"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, old in ipairs(expired) do redis.call('HDEL', KEYS[1], old) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return false end
local t = redis.call('TIME')
local id = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if last + 1 > id then id = last + 1 end
id = string.format('%.0f', id)
redis.call('SET', KEYS[3], id)
redis.call('HSET', KEYS[1], id, ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], id)
local latest = tonumber(redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2])
for _, key in ipairs(KEYS) do expire_at(key, latest, tonumber(t[1])) end
return id
"#,
    )
});

/// Removes one queued message; the queue's keys go with its last message.
/// KEYS as [`ENQUEUE_MESSAGE`]; ARGV[1] the id.
pub(super) static REMOVE_MESSAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
return 1
"#,
    )
});

/// The fencing check every presence script starts with (DESIGN.md §3):
/// `EPOCH_KEY` holds the presentity's owner epoch, `EPOCH_ARG` the
/// writer's. A lower writer epoch returns minus the owner's (always
/// negative: the owner's is above the writer's, at least 0) and writes
/// nothing; a higher one stamps the presentity with it.
macro_rules! fence {
    ($key:literal, $arg:literal) => {
        concat!(
            "local owner = tonumber(redis.call('GET', ",
            $key,
            ") or '0')\n",
            "local epoch = tonumber(",
            $arg,
            ")\n",
            "if owner > epoch then return -owner end\n",
            "if epoch > owner then redis.call('SET', ",
            $key,
            ", ",
            $arg,
            ") end\n"
        )
    };
}

/// Writes one presence record. KEYS[1] the hash it goes in (publications
/// or subscriptions), KEYS[2] the presentity's other hash, KEYS[3] its
/// owner epoch, KEYS[4] (only on a standalone Redis) the slot index.
/// ARGV[1] field, ARGV[2] JSON record, ARGV[3] the AOR, ARGV[4] a field of
/// KEYS[1] the record replaces (empty: none), deleted in the same step,
/// ARGV[5] the writer's epoch.
/// Returns 1 if the presentity had no record before, else 0; fenced, minus
/// the owner's epoch.
pub(super) static SAVE_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!("KEYS[3]", "ARGV[5]"),
        r#"
-- The presentity has state again: its epoch stays while it does.
redis.call('PERSIST', KEYS[3])
local was_empty = redis.call('EXISTS', KEYS[1], KEYS[2]) == 0
if ARGV[4] ~= '' and ARGV[4] ~= ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[4] then redis.call('SADD', KEYS[4], ARGV[3]) end
if was_empty then return 1 end
return 0
"#
    ))
});

/// Deletes one presence record. KEYS as [`SAVE_PRESENCE`]; ARGV[1] field,
/// ARGV[2] the AOR, ARGV[3] the writer's epoch. Returns how many of the
/// presentity's two hashes still exist (0: its state is gone, and on a
/// standalone Redis so is its entry in the slot index; its epoch stays
/// [`PAST_RETENTION_SECS`] more, far longer than a stale shard list
/// lasts); fenced, minus the owner's epoch.
pub(super) static DELETE_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    let body = concat!(
        fence!("KEYS[3]", "ARGV[3]"),
        r#"
redis.call('HDEL', KEYS[1], ARGV[1])
local left = redis.call('EXISTS', KEYS[1], KEYS[2])
if left == 0 then
  if KEYS[4] then redis.call('SREM', KEYS[4], ARGV[2]) end
  redis.call('EXPIRE', KEYS[3], ARGV_PAST_RETENTION)
end
return left
"#
    );
    Script::new(&body.replace("ARGV_PAST_RETENTION", &PAST_RETENTION_SECS.to_string()))
});

/// Stamps a presentity with the epoch of a shard taking it over.
/// KEYS[1] its owner epoch, KEYS[2], KEYS[3] its two hashes. ARGV[1] the
/// new owner's epoch. Returns 1; fenced (a newer owner stamped it), minus
/// that owner's epoch. A presentity without state keeps the stamp
/// [`PAST_RETENTION_SECS`].
pub(super) static CLAIM_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    let body = concat!(
        fence!("KEYS[1]", "ARGV[1]"),
        r#"
if redis.call('EXISTS', KEYS[2], KEYS[3]) == 0 then
  redis.call('EXPIRE', KEYS[1], ARGV_PAST_RETENTION)
end
return 1
"#
    );
    Script::new(&body.replace("ARGV_PAST_RETENTION", &PAST_RETENTION_SECS.to_string()))
});

/// Sets the NOTIFY CSeq and winfo version inside a stored subscription,
/// if it is there. KEYS[1] `pres:{aor}:subs`, KEYS[2] the owner epoch.
/// ARGV[1] subscription id, ARGV[2] notify_cseq, ARGV[3] winfo_version
/// (decimal digits), ARGV[4] the writer's epoch.
/// Returns 1 when updated, 0 when the subscription is gone; fenced, minus
/// the owner's epoch.
///
/// Edits the JSON text rather than decoding it: cjson would turn u64
/// fields past 2^53 into doubles. serde_json writes each field name once,
/// at the top level, quoted; inside a string value a quote is escaped, so
/// the patterns cannot match there. A record without both fields is an
/// error, not a silent no-op (the conformance tests would see it).
pub(super) static SAVE_NOTIFY_COUNTERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        fence!("KEYS[2]", "ARGV[4]"),
        r#"
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
local cseq, winfo
record, cseq = string.gsub(record, '"notify_cseq":%d+', '"notify_cseq":' .. ARGV[2], 1)
record, winfo = string.gsub(record, '"winfo_version":%d+', '"winfo_version":' .. ARGV[3], 1)
if cseq ~= 1 or winfo ~= 1 then
  return redis.error_reply('subscription ' .. ARGV[1] .. ' has no counters to update')
end
redis.call('HSET', KEYS[1], ARGV[1], record)
return 1
"#
    ))
});

/// Compare-and-set of one XCAP document. KEYS[1] `xcap:{aor}:doc:<path>`.
/// ARGV[1] the entity tag the caller read (empty: the document must not
/// exist), ARGV[2] the new entity tag (empty: delete), ARGV[3] the content.
/// Returns 1 when written, 0 when the document changed meanwhile.
pub(super) static WRITE_DOCUMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], 'e')
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'e', ARGV[2], 'c', ARGV[3])
end
return 1
"#,
    )
});
