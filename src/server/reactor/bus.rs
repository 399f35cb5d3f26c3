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
    was_up: bool,
}

/// The Redis client, connecting, when `--redis` is set.
pub(super) fn start(config: &Config, registry: &Registry, now: u64) -> io::Result<Option<Bus>> {
    let Some(url) = &config.cluster.redis else {
        return Ok(None);
    };
    let redis_config = RedisConfig::new(url.clone(), config.cluster.node_timeout);
    log::info!("cluster mode: redis at {url}");
    let mut client = RedisClient::new(redis_config, REDIS, now)?;
    client.start(registry, now);
    Ok(Some(Bus {
        client,
        counters: RedisCounters::default(),
        sent_at: HashMap::new(),
        was_up: false,
    }))
}

impl Reactor {
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

    /// Sends one engine bus command to Redis.
    pub(super) fn send_bus(&mut self, now: u64, id: u64, command: &BusCommand) {
        let prefix = &self.config.cluster.redis_prefix;
        let timeout_ms = self.config.cluster.node_timeout.as_millis() as u64;
        let Some(bus) = &mut self.redis else {
            return;
        };
        let redis = &mut bus.client;
        match scripts::call(prefix, timeout_ms, command.clone()) {
            Call::Subscribe => return redis.subscribe(scripts::events_channel(prefix), false, now),
            Call::Plain(args) => redis.submit(id, args, now),
            Call::Script(script, keys, args) => redis.submit_script(id, script, keys, args, now),
        }
        bus.counters.commands += 1;
        bus.sent_at.insert(id, now);
    }
}

impl Bus {
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
