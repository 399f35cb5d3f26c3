//! The reactor's side of cluster mode: the Redis client (`--redis`) on the
//! same poll, driven by its sockets' readiness and its deadline.

use super::Reactor;
use crate::server::config::Config;
use crate::server::redis::{RedisClient, RedisConfig};
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
    /// deadline (`None`). The engine does not use Redis yet: its events
    /// are drained (the client logs up and down itself).
    pub(super) fn on_redis(&mut self, event: Option<&mio::event::Event>, now: u64) {
        let Some(redis) = &mut self.redis else {
            return;
        };
        match event {
            Some(event) => redis.handle_event(self.poll.registry(), event, now),
            None => redis.handle_timeout(self.poll.registry(), now),
        }
        while let Some(event) = redis.poll_event() {
            log::trace!("redis: {event:?}");
        }
    }
}
