//! The reactor's side of cluster mode: the Redis client (`--redis`) on the
//! same poll, driven by its sockets' readiness and its deadline. It
//! carries: the engine's bus commands go out as the scripts of
//! [`scripts`], and what Redis says comes back to the engine as
//! [`Input::Bus`].

use super::Reactor;
use crate::engine::{BusCommand, BusInput, BusReply, Input};
use crate::protocol::resp::Reply;
use crate::server::config::Config;
use crate::server::metrics::RedisCounters;
use crate::server::redis::scripts::{self, Call};
use crate::server::redis::{Event, RedisClient, RedisConfig};
use mio::{Registry, Token};
use std::collections::HashMap;
use std::io;

/// The Redis client's sockets: commands, subscriber.
pub(super) const REDIS: [Token; 2] = [Token(usize::MAX - 2), Token(usize::MAX - 3)];

/// The Redis client and what it counts.
pub(super) struct Bus {
    /// The client.
    pub client: RedisClient,
    /// Its counters, for `/metrics`.
    pub counters: RedisCounters,
    /// When each command waiting for its reply was sent.
    sent_at: HashMap<u64, u64>,
    /// Redis was reachable once (a later `Up` is a reconnection).
    pub(super) was_up: bool,
    /// The publishes of this turn, not yet sent: their node, and each
    /// one's command id and event.
    batch: Option<(u32, Vec<u64>, Vec<Vec<u8>>)>,
    /// Batches sent, by the id they were sent with: every command id in
    /// them, in order.
    batches: HashMap<u64, Vec<u64>>,
}

/// Publishes sent in one script call at most.
const MAX_BATCH: usize = 256;

/// The Redis client, connecting, when `--redis` is set.
pub(super) fn start(config: &Config, registry: &Registry, now: u64) -> io::Result<Option<Bus>> {
    let Some(url) = &config.cluster.redis else {
        return Ok(None);
    };
    let redis_config = RedisConfig {
        scripts: scripts::all(),
        ..RedisConfig::new(url.clone(), config.cluster.node_timeout)
    };
    log::info!("cluster mode: redis at {url}");
    let mut client = RedisClient::new(redis_config, REDIS, now)?;
    client.start(registry, now);
    Ok(Some(Bus {
        client,
        counters: RedisCounters::default(),
        sent_at: HashMap::new(),
        was_up: false,
        batch: None,
        batches: HashMap::new(),
    }))
}

/// How long a live upgrade waits for the replies to the commands in
/// flight before it hands over (those still without one fail then).
const DRAIN_MS: u64 = 500;

impl Reactor {
    /// Before a live upgrade's hand-over: drives the Redis client alone,
    /// reading what it has, until every command in flight has its reply
    /// (or [`DRAIN_MS`] has passed), so that the new process need not fail them (a publish
    /// failed gives its sender an error, an open in flight closes 1013).
    /// Nothing else is read meanwhile: a client's readiness is kept for
    /// the next turn (the new process's registration reports it anyway),
    /// a listener's is retried.
    pub(super) fn drain_bus(&mut self) {
        if self.redis.is_none() {
            return;
        }
        let deadline = self.clock.now_ms() + DRAIN_MS;
        let mut events = mio::Events::with_capacity(256);
        // Once at least: what Redis sent while the loop waited (events of
        // other nodes the new process may not have) is read here.
        let mut once = true;
        loop {
            let now = self.clock.now_ms();
            self.flush_bus(now);
            let busy = self
                .redis
                .as_ref()
                .is_some_and(|b| !b.in_flight().is_empty());
            if !(busy || std::mem::take(&mut once)) || now >= deadline {
                return;
            }
            let wait = match busy {
                true => std::time::Duration::from_millis(deadline - now),
                false => std::time::Duration::ZERO,
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return log::warn!("upgrade: waiting for Redis: {e}");
            }
            let now = self.clock.now_ms();
            for event in events.iter() {
                match event.token() {
                    t if REDIS.contains(&t) => self.on_redis(Some(event), now),
                    super::WAKER => {}
                    super::SIGNALS => self.on_signals(),
                    Token(t) if t >= super::LISTENER_BASE => {
                        if let Some(paused) = self.accept_paused.get_mut(t - super::LISTENER_BASE) {
                            *paused = true;
                        }
                    }
                    Token(k) => {
                        if event.is_writable() {
                            self.mark_dirty(k);
                        }
                        self.read_again.push(k);
                    }
                }
            }
            if self.timers.fire(super::timers::Timer::Redis, now) {
                self.on_redis(None, now);
            }
            if let Some(at) = self.redis.as_ref().and_then(|b| b.client.next_deadline()) {
                self.timers.set(super::timers::Timer::Redis, at);
            }
        }
    }

    /// Drives the Redis client: a readiness event of its sockets, or its
    /// deadline (`None`); then hands the engine what it said.
    pub(super) fn on_redis(&mut self, event: Option<&mio::event::Event>, now: u64) {
        let Some(bus) = &mut self.redis else {
            return;
        };
        match event {
            Some(event) => bus.client.handle_event(self.poll.registry(), event, now),
            None => bus.client.handle_timeout(self.poll.registry(), now),
        }
        self.drain_redis(now);
    }

    /// Feeds the engine every event the Redis client has (commands the
    /// engine sends meanwhile may add more).
    fn drain_redis(&mut self, now: u64) {
        while let Some(bus) = &mut self.redis
            && let Some(event) = bus.client.poll_event()
        {
            let input = match event {
                Event::Up => {
                    bus.counters.reconnects += u64::from(bus.was_up);
                    bus.was_up = true;
                    BusInput::Up
                }
                Event::Down => BusInput::Down,
                Event::Subscribed { .. } => BusInput::Subscribed,
                Event::Reply { id, reply } => {
                    let reply = reply.map_or(BusReply::Failed, bus_reply);
                    bus.count_reply(id, &reply, now);
                    if let Some(ids) = bus.batches.remove(&id) {
                        self.feed_batch_replies(now, ids, &reply);
                        continue;
                    }
                    BusInput::Reply { id, reply }
                }
                Event::Message { payload, .. } => match String::from_utf8(payload) {
                    Ok(payload) => BusInput::Message { payload },
                    Err(_) => {
                        log::warn!("cluster: an event that is not UTF-8 ignored");
                        continue;
                    }
                },
            };
            self.feed(now, Input::Bus(input));
        }
    }

    /// Gives each publish of a batch its reply: its own number, or the
    /// batch's error.
    fn feed_batch_replies(&mut self, now: u64, ids: Vec<u64>, reply: &BusReply) {
        for (i, id) in ids.into_iter().enumerate() {
            let reply = match reply.int() {
                Some(first) => BusReply::Int(first + i as i64),
                None => reply.clone(),
            };
            self.feed(now, Input::Bus(BusInput::Reply { id, reply }));
        }
    }

    /// Sends one engine bus command to Redis. Publishes wait for the end
    /// of the turn ([`Self::flush_bus`]) and go out together, in order; any
    /// other command sends them first, so Redis runs everything in the
    /// order the engine asked.
    pub(super) fn send_bus(&mut self, now: u64, id: u64, command: &BusCommand) {
        let Some(bus) = &mut self.redis else {
            return;
        };
        if let BusCommand::Publish { node, event } = command {
            if bus
                .batch
                .as_ref()
                .is_some_and(|(n, ids, _)| n != node || ids.len() >= MAX_BATCH)
            {
                self.flush_bus(now);
            }
            let Some(bus) = &mut self.redis else {
                return;
            };
            let (_, ids, events) = bus
                .batch
                .get_or_insert_with(|| (*node, Vec::new(), Vec::new()));
            ids.push(id);
            events.push(event.as_bytes().to_vec());
            return;
        }
        self.flush_bus(now);
        let prefix = &self.config.cluster.redis_prefix;
        let timeout_ms = self.config.cluster.node_timeout.as_millis() as u64;
        if let Some(bus) = &mut self.redis {
            bus.send(now, id, scripts::call(prefix, timeout_ms, command), prefix);
        }
    }

    /// Sends the publishes waiting for the end of the turn.
    pub(super) fn flush_bus(&mut self, now: u64) {
        let prefix = &self.config.cluster.redis_prefix;
        let Some(bus) = &mut self.redis else {
            return;
        };
        let Some((node, ids, events)) = bus.batch.take() else {
            return;
        };
        let id = ids[0];
        if ids.len() > 1 {
            bus.batches.insert(id, ids);
        }
        bus.send(now, id, scripts::publish(prefix, node, events), prefix);
    }
}

impl Bus {
    /// The engine's commands that have no reply yet (publishes not yet
    /// sent among them), in order: a live upgrade's new process fails them,
    /// as a lost Redis connection does.
    pub fn in_flight(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .sent_at
            .keys()
            .flat_map(|id| self.batches.get(id).cloned().unwrap_or_else(|| vec![*id]))
            .collect();
        if let Some((_, batch, _)) = &self.batch {
            ids.extend(batch);
        }
        ids.sort_unstable();
        ids
    }

    /// Sends `call` as command `id`.
    fn send(&mut self, now: u64, id: u64, call: Call, prefix: &str) {
        let redis = &mut self.client;
        match call {
            Call::Subscribe => return redis.subscribe(scripts::events_channel(prefix), false, now),
            Call::Plain(args) => redis.submit(id, args, now),
            Call::Script(script, keys, args) => redis.submit_script(id, script, keys, args, now),
        }
        self.counters.commands += 1;
        self.sent_at.insert(id, now);
    }

    /// Counts the reply to command `id`, and its round trip.
    fn count_reply(&mut self, id: u64, reply: &BusReply, now: u64) {
        let sent = self.sent_at.remove(&id);
        let c = &mut self.counters;
        match reply {
            BusReply::Failed => c.errors += 1,
            BusReply::Error(_) => {
                c.errors += 1;
                c.replies += 1;
            }
            _ => c.replies += 1,
        }
        if let Some(sent) = sent.filter(|_| *reply != BusReply::Failed) {
            c.round_trips += 1;
            c.round_trip_ms_total += now.saturating_sub(sent);
        }
    }
}

/// A RESP reply as the engine takes it.
fn bus_reply(reply: Reply) -> BusReply {
    match reply {
        Reply::Status(s) => BusReply::Text(s),
        Reply::Error(e) => BusReply::Error(e),
        Reply::Integer(n) => BusReply::Int(n),
        Reply::Bulk(b) => BusReply::Text(String::from_utf8_lossy(&b).into_owned()),
        Reply::Nil => BusReply::Nil,
        Reply::Array(a) => BusReply::Array(a.into_iter().map(bus_reply).collect()),
    }
}
