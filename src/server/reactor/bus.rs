//! The reactor's side of cluster mode: the Redis client (`--redis`) on the
//! same poll, driven by its sockets' readiness and its deadline. It
//! carries: the engine's bus commands go out as the scripts of
//! [`scripts`], and what Redis says comes back to the engine as
//! [`Input::Bus`].

use super::Reactor;
use crate::engine::{BusCommand, BusInput, BusReply, Input};
use crate::protocol::resp::Reply;
use crate::server::config::Config;
use crate::server::redis::scripts::{self, Call};
use crate::server::redis::{Event, RedisClient, RedisConfig};
use mio::{Registry, Token};
use std::io;

/// The Redis client's sockets: commands, subscriber.
pub(super) const REDIS: [Token; 2] = [Token(usize::MAX - 2), Token(usize::MAX - 3)];

/// The Redis client, connecting, when `--redis` is set.
pub(super) fn start(
    config: &Config,
    registry: &Registry,
    now: u64,
) -> io::Result<Option<RedisClient>> {
    let Some(url) = &config.cluster.redis else {
        return Ok(None);
    };
    let redis_config = RedisConfig::new(url.clone(), config.cluster.node_timeout);
    log::info!("cluster mode: redis at {url}");
    let mut client = RedisClient::new(redis_config, REDIS, now)?;
    client.start(registry, now);
    Ok(Some(client))
}

impl Reactor {
    /// Drives the Redis client: a readiness event of its sockets, or its
    /// deadline (`None`); then hands the engine what it said.
    pub(super) fn on_redis(&mut self, event: Option<&mio::event::Event>, now: u64) {
        let Some(redis) = &mut self.redis else {
            return;
        };
        match event {
            Some(event) => redis.handle_event(self.poll.registry(), event, now),
            None => redis.handle_timeout(self.poll.registry(), now),
        }
        self.drain_redis(now);
    }

    /// Feeds the engine every event the Redis client has (commands the
    /// engine sends meanwhile may add more).
    fn drain_redis(&mut self, now: u64) {
        while let Some(event) = self.redis.as_mut().and_then(RedisClient::poll_event) {
            let input = match event {
                Event::Up => BusInput::Up,
                Event::Down => BusInput::Down,
                Event::Subscribed { .. } => BusInput::Subscribed,
                Event::Reply { id, reply } => BusInput::Reply {
                    id,
                    reply: reply.map_or(BusReply::Failed, bus_reply),
                },
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
        let Some(redis) = &mut self.redis else {
            return;
        };
        match scripts::call(prefix, timeout_ms, command.clone()) {
            Call::Subscribe => redis.subscribe(scripts::events_channel(prefix), false, now),
            Call::Plain(args) => redis.submit(id, args, now),
            Call::Script(script, keys, args) => redis.submit_script(id, script, keys, args, now),
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
