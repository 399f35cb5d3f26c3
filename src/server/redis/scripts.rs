//! The Lua scripts of cluster mode and the keys they use: the Redis side
//! of the engine's [`BusCommand`]s (see `crate::engine::cluster`). Each
//! script runs alone in Redis, so each is one atomic step; every event
//! goes out through [`publish_tail`], which numbers it and publishes it on
//! the one event channel, so all nodes see one sequence.
//!
//! Keys under the prefix `P` (`--redis-prefix`): `P:events` (the channel),
//! `P:seq` (the last event's number), `P:nodes` (sorted set: node number
//! scored with the last heartbeat's time, Redis's own clock), `P:node_seq`
//! (the last node number given), `P:epoch` (which Redis lifetime the
//! registry is from), `P:synced` (set of nodes with a synchronised
//! replica), `P:snap:N` (the snapshot stored for node N, for a minute),
//! `P:log` (the newest messages published, for a node that missed some),
//! `P:beat` (the time of the last heartbeat of any node).

use super::Script;
use crate::engine::BusCommand;
use std::sync::LazyLock;

/// `now` in milliseconds, from Redis's clock.
const NOW: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Refuses a node the registry does not hold (KEYS[1] `P:nodes`,
/// ARGV[1] the node).
const FENCE: &str = "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return redis.error_reply('FENCED node not registered')
end
";

/// Events kept in `P:log` for a node that missed some ([`CATCHUP`]):
/// messages (each one event or a batch), the newest.
pub const LOG_MESSAGES: usize = 4096;

/// Publishes `message` (an expression) on KEYS[3] `P:events` and keeps it
/// in the last key, `P:log`, trimmed to [`LOG_MESSAGES`].
fn announce(message: &str) -> String {
    format!(
        "local message = {message}
redis.call('PUBLISH', KEYS[3], message)
redis.call('RPUSH', KEYS[#KEYS], message)
redis.call('LTRIM', KEYS[#KEYS], -{LOG_MESSAGES}, -1)
"
    )
}

/// Numbers and publishes `payload` (KEYS[2] `P:seq`, KEYS[3] `P:events`,
/// the last key `P:log`).
fn publish_tail(payload: &str) -> String {
    format!(
        "local seq = redis.call('INCR', KEYS[2])
{}return seq
",
        announce(&format!("seq .. ' ' .. {payload}"))
    )
}

/// REGISTER: KEYS `P:node_seq`, `P:nodes`, `P:epoch`; ARGV a fresh
/// epoch. A new node number (above any a previous Redis lifetime may have
/// given, when the counter is new), entered with now; returns
/// `{node, epoch}`.
static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[3], epoch)
end
if not redis.call('GET', KEYS[1]) then
  redis.call('SET', KEYS[1], math.floor(now / 1000) % 8000000)
end
local node = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], now, node)
return {{node, epoch}}
"
    ))
});

/// HEARTBEAT: KEYS `P:nodes`, `P:epoch`, `P:node_seq`, `P:beat`; ARGV
/// node, its epoch, a fresh epoch, the timeout in ms. See
/// [`BusCommand::Heartbeat`]. When no node at all has beaten for a
/// timeout, Redis itself was paused or out of reach: every node was
/// silent for that, not dead, so every entry starts afresh (else the first
/// node back would reap all the others).
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}local beat = tonumber(redis.call('GET', KEYS[4]) or '0')
redis.call('SET', KEYS[4], now)
if beat > 0 and now - beat > tonumber(ARGV[4]) then
  for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    redis.call('ZADD', KEYS[1], now, n)
  end
end
local epoch = redis.call('GET', KEYS[2])
local status = 'ok'
if epoch ~= ARGV[2] then
  if not epoch then
    epoch = ARGV[3]
    redis.call('SET', KEYS[2], epoch)
  end
  status = 'restarted'
  local last = tonumber(redis.call('GET', KEYS[3]) or '0')
  if last < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[3], ARGV[1])
  end
elseif not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {{'fenced'}}
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
local since = now - tonumber(ARGV[4])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf')
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. since)
return {{status, epoch, live, stale}}
"
    ))
});

/// PUBLISH: KEYS `P:nodes`, `P:seq`, `P:events`; ARGV node, then one or
/// more events. Numbers them on from the last and publishes them as one
/// message, `FIRST EVENT` and one further event per line; returns FIRST.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{FENCE}local n = #ARGV - 1
local first = redis.call('INCRBY', KEYS[2], n) - n + 1
{}return first
",
        announce("first .. ' ' .. table.concat(ARGV, '\\n', 2)")
    ))
});

/// SYNC: KEYS `P:nodes`, `P:seq`, `P:events`, `P:synced`; ARGV node, the
/// event if alone, the event if not.
static SYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{FENCE}redis.call('SREM', KEYS[4], ARGV[1])
local payload = ARGV[3]
if redis.call('SCARD', KEYS[4]) == 0 then
  redis.call('SADD', KEYS[4], ARGV[1])
  payload = ARGV[2]
end
{}",
        publish_tail("payload")
    ))
});

/// STORE: KEYS `P:nodes`, `P:seq`, `P:events`, `P:synced`, `P:snap:TO`;
/// ARGV node, to, snapshot, event.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{FENCE}redis.call('SET', KEYS[5], ARGV[3], 'PX', 60000)
redis.call('SADD', KEYS[4], ARGV[2])
{}",
        publish_tail("ARGV[4]")
    ))
});

/// REAP: KEYS `P:nodes`, `P:seq`, `P:events`, `P:synced`; ARGV the dead
/// node, the timeout in ms, its `Gone` event. 0 if it is alive after all.
static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) >= now - tonumber(ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
{}",
        publish_tail("ARGV[3]")
    ))
});

/// Publishes `events` of `node` in one script call; its reply is the
/// first event's number.
pub fn publish(prefix: &str, node: u32, events: Vec<Vec<u8>>) -> Call {
    let key = |name: &str| format!("{prefix}:{name}").into_bytes();
    let mut args = vec![node.to_string().into_bytes()];
    args.extend(events);
    Call::Script(
        &PUBLISH,
        vec![key("nodes"), key("seq"), key("events"), key("log")],
        args,
    )
}

/// Every script, for loading as a connection opens (see
/// [`super::RedisConfig::scripts`]).
pub fn all() -> Vec<Script> {
    [
        &REGISTER, &HEARTBEAT, &PUBLISH, &SYNC, &STORE, &REAP, &CATCHUP,
    ]
    .map(|s| Script::clone(s))
    .to_vec()
}

/// CATCHUP: KEYS `P:log`, `P:epoch`; ARGV the first event wanted.
/// Returns `{epoch, messages}`: the kept messages from the one holding
/// that event on (all of them if the log does not reach back so far).
static CATCHUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local epoch = redis.call('GET', KEYS[2]) or ''
local all = redis.call('LRANGE', KEYS[1], 0, -1)
local from = tonumber(ARGV[1])
local start = 1
for i = #all, 1, -1 do
  local first = tonumber(string.match(all[i], '^(%d+) '))
  if first and first <= from then
    start = i
    break
  end
end
local out = {}
for i = start, #all do
  out[#out + 1] = all[i]
end
return {epoch, out}
",
    )
});

/// The event channel under `prefix`.
pub fn events_channel(prefix: &str) -> Vec<u8> {
    format!("{prefix}:events").into_bytes()
}

/// How a command is sent: a script with its keys and arguments, or a
/// plain command.
pub enum Call {
    /// `EVALSHA` (falling back to `EVAL`).
    Script(&'static Script, Vec<Vec<u8>>, Vec<Vec<u8>>),
    /// A plain command, name first.
    Plain(Vec<Vec<u8>>),
    /// Subscribe to the event channel.
    Subscribe,
}

/// The Redis call for `command` under `prefix`, with the node timeout.
pub fn call(prefix: &str, timeout_ms: u64, command: &BusCommand) -> Call {
    let key = |name: &str| format!("{prefix}:{name}").into_bytes();
    let [nodes, seq, events, synced] = ["nodes", "seq", "events", "synced"].map(key);
    let n = |v: &u32| v.to_string().into_bytes();
    let bytes = |s: &String| s.as_bytes().to_vec();
    match command {
        BusCommand::Subscribe => Call::Subscribe,
        BusCommand::Register { epoch } => Call::Script(
            &REGISTER,
            vec![key("node_seq"), nodes, key("epoch")],
            vec![bytes(epoch)],
        ),
        BusCommand::Heartbeat {
            node,
            epoch,
            fresh_epoch,
        } => Call::Script(
            &HEARTBEAT,
            vec![nodes, key("epoch"), key("node_seq"), key("beat")],
            vec![
                n(node),
                bytes(epoch),
                bytes(fresh_epoch),
                timeout_ms.to_string().into_bytes(),
            ],
        ),
        BusCommand::Publish { node, event } => publish(prefix, *node, vec![bytes(event)]),
        BusCommand::Sync {
            node,
            alone,
            not_alone,
        } => Call::Script(
            &SYNC,
            vec![nodes, seq, events, synced, key("log")],
            vec![n(node), bytes(alone), bytes(not_alone)],
        ),
        BusCommand::Store {
            node,
            to,
            snapshot,
            event,
        } => Call::Script(
            &STORE,
            vec![
                nodes,
                seq,
                events,
                synced,
                key(&format!("snap:{to}")),
                key("log"),
            ],
            vec![n(node), n(to), bytes(snapshot), bytes(event)],
        ),
        BusCommand::Fetch { to } => Call::Plain(vec![b"GET".to_vec(), key(&format!("snap:{to}"))]),
        BusCommand::Catchup { from } => Call::Script(
            &CATCHUP,
            vec![key("log"), key("epoch")],
            vec![from.to_string().into_bytes()],
        ),
        BusCommand::Reap {
            dead,
            timeout_ms,
            event,
        } => Call::Script(
            &REAP,
            vec![nodes, seq, events, synced, key("log")],
            vec![n(dead), timeout_ms.to_string().into_bytes(), bytes(event)],
        ),
    }
}
