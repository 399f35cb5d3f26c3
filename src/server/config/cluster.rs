//! The cluster flags (`CLUSTER.md`): `--redis`, `--redis-prefix`,
//! `--node-timeout`, `--reuse-port`. Without `--redis`, nothing here is
//! used but `--reuse-port`, and no Redis is touched.

use super::value;
use crate::server::redis::RedisUrl;
use std::time::Duration;

/// Cluster mode: the Redis every node shares, and how nodes judge each
/// other.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct ClusterConfig {
    /// Redis to join a cluster through: redis://[:PASSWORD@]HOST:PORT[/DB];
    /// every roomd with the same Redis and prefix is one server
    #[arg(long, value_name = "URL", value_parser = RedisUrl::parse)]
    pub redis: Option<RedisUrl>,
    /// Prefix of every Redis key and channel, so several clusters can share
    /// one Redis
    #[arg(long, value_name = "NAME", value_parser = value::prefix, default_value = "roomd")]
    pub redis_prefix: String,
    /// Seconds after which a silent node, or a Redis that answers nothing,
    /// is dead (0.5 and 250ms work too)
    #[arg(long, value_name = "SECS", value_parser = value::duration, default_value = "5")]
    pub node_timeout: Duration,
    /// Set SO_REUSEPORT on the listeners, so several processes on one
    /// machine share a port
    #[arg(long)]
    pub reuse_port: bool,
}
