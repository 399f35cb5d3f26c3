//! The server's settings: the `roomd` flags, and the engine's settings
//! built from them.
//!
//! Each default is written once, in its field's `#[arg]` (the engine's
//! timers and rate limit take [`EngineConfig::default`]'s), and
//! [`Config::default`] is what parsing no flags gives. [`crate::cli`] adds
//! the `ROOMD_<NAME>` variables and the seeds' environment ([`seed_env`]).

use crate::engine::{AuthPolicy, ClusterPolicy, EngineConfig};
use crate::server::auth::AuthMode;
use clap::{Args, FromArgMatches};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod cluster;
mod route;
pub mod seed_env;
mod value;

pub use cluster::ClusterConfig;
pub use route::{Route, default_routes};

/// The rate limiter's burst, as a multiple of `--rate-limit`.
pub const RATE_LIMIT_BURST_FACTOR: u32 = 2;

/// Everything the server is configured with: one field per flag, each
/// documented by its help text (`roomd --help` shows the defaults).
#[derive(Clone, Debug, PartialEq, Args)]
pub struct Config {
    /// Address to listen on, repeatable; without it, PORT and WS_PORT (as
    /// the Node servers use) each mean 0.0.0.0:N
    #[arg(long, value_name = "ADDR", value_delimiter = ',',
          default_value = "127.0.0.1:8080", value_parser = value::address)]
    pub listen: Vec<SocketAddr>,
    /// WebSocket route, repeatable; replaces the default routes
    #[arg(long = "route", value_name = "PATH=PROTOCOL", value_delimiter = ',',
          default_values_t = default_routes())]
    pub routes: Vec<Route>,
    /// Allowed browser Origin, repeatable (FRONTEND_URL, comma-separated, is
    /// read too); none allows every origin, with a warning
    #[arg(long = "allow-origin", value_name = "URL", value_delimiter = ',',
          value_parser = value::origin)]
    pub allow_origins: Vec<String>,
    /// Seconds between pings (0.5 and 250ms work too); a connection that
    /// answers nothing by the next ping is dropped
    #[arg(long, value_name = "SECS", value_parser = value::duration,
          default_value = engine_seconds(|e| e.heartbeat_interval_ms))]
    pub heartbeat_interval: Duration,
    /// Largest incoming message; larger closes with 1009
    #[arg(long, value_name = "BYTES", value_parser = value::positive, default_value_t = 1 << 20)]
    pub max_message_size: usize,
    /// WebSocket connections at once; more are answered 503
    #[arg(long, value_name = "N", value_parser = value::positive, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Bytes queued for one connection before it is dropped as a slow
    /// consumer
    #[arg(long, value_name = "BYTES", value_parser = value::positive, default_value_t = 4 << 20)]
    pub max_outbound_bytes: usize,
    /// Bytes queued for all connections together; past it the largest
    /// queues are dropped as slow consumers first
    #[arg(long, value_name = "BYTES", value_parser = value::positive, default_value_t = 1 << 30)]
    pub max_total_outbound_bytes: usize,
    /// Bytes of incomplete incoming messages held for all connections
    /// together; past it the connections holding the most are closed with
    /// 1009 first
    #[arg(long, value_name = "BYTES", value_parser = value::positive, default_value_t = 256 << 20)]
    pub max_total_inbound_bytes: usize,
    /// Messages per second per connection, in bursts of twice that; excess
    /// gets the protocol's `rate limit exceeded` error; 0 turns it off
    #[arg(long, value_name = "MSGS_PER_SEC",
          default_value_t = EngineConfig::default().rate_limit_per_sec)]
    pub rate_limit: u32,
    /// Seconds of sustained excess over --rate-limit after which a
    /// connection is closed with 1008
    #[arg(long, value_name = "SECS", value_parser = value::duration,
          default_value = engine_seconds(|e| e.rate_limit_close_after_ms))]
    pub rate_limit_close_after: Duration,
    /// Seconds between the presence routes' `stats:` log lines
    #[arg(long, value_name = "SECS", value_parser = value::duration,
          default_value = engine_seconds(|e| e.presence_stats_interval_ms))]
    pub presence_stats_interval: Duration,
    /// Seconds a client has to send its whole request head before it is
    /// dropped (slow-loris)
    #[arg(long, value_name = "SECS", value_parser = value::duration, default_value = "10")]
    pub request_timeout: Duration,
    /// Log level: off, error, warn, info, debug or trace
    #[arg(long, value_name = "LEVEL", value_parser = value::log_level, default_value = "info")]
    pub log_level: log::LevelFilter,
    /// Record every engine input to FILE (truncated at start, continued
    /// across live upgrades) for `roomd replay`
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// The binary a live upgrade (SIGUSR2, `systemctl reload`) hands over
    /// to; without it, the path roomd was started from
    #[arg(long, value_name = "PATH")]
    pub upgrade_binary: Option<PathBuf>,
    /// TLS address to listen on (wss://, https://), repeatable; needs
    /// --tls-cert and --tls-key
    #[arg(long, value_name = "ADDR", value_delimiter = ',', value_parser = value::address)]
    pub tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain for the TLS listeners (re-read on SIGHUP)
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1) for the TLS listeners
    /// (re-read on SIGHUP)
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Signed identities (`--jwt-*`, `--auth`, `--auth-grace`).
    #[command(flatten)]
    pub auth: crate::server::auth::AuthConfig,
    /// Cluster mode (`--redis`, `--redis-prefix`, `--node-timeout`,
    /// `--reuse-port`).
    #[command(flatten)]
    pub cluster: ClusterConfig,
}

/// An engine default in milliseconds, written as a flag value in seconds.
fn engine_seconds(field: fn(&EngineConfig) -> u64) -> String {
    value::seconds(field(&EngineConfig::default()))
}

/// Whole milliseconds, at least 1.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Default for Config {
    /// The configuration of no flags (and no environment).
    fn default() -> Self {
        let matches = Config::augment_args(clap::Command::new("roomd"))
            .no_binary_name(true)
            .try_get_matches_from(std::iter::empty::<&str>())
            .expect("the defaults parse");
        Config::from_arg_matches(&matches).expect("the defaults are a Config")
    }
}

impl Config {
    /// Checks what no single value shows: a route path given twice, a TLS
    /// listener without its certificate and key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.tls_listen.is_empty() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err("invalid --tls-listen: needs --tls-cert and --tls-key".into());
        }
        for (i, route) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|r| r.path == route.path) {
                return Err(format!("invalid --route: path {} given twice", route.path));
            }
        }
        Ok(())
    }

    /// The engine's settings: the heartbeat, the rate limit (bursts of
    /// [`RATE_LIMIT_BURST_FACTOR`] times the rate) and its close, the
    /// presence stats interval; the rest are the engine's defaults.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            heartbeat_interval_ms: millis(self.heartbeat_interval),
            presence_stats_interval_ms: millis(self.presence_stats_interval),
            rate_limit_per_sec: self.rate_limit,
            rate_limit_burst: self.rate_limit.saturating_mul(RATE_LIMIT_BURST_FACTOR),
            rate_limit_close_after_ms: millis(self.rate_limit_close_after),
            auth: (self.auth.mode() != AuthMode::Off).then(|| AuthPolicy {
                grace_ms: self.auth.grace_secs.saturating_mul(1000),
            }),
            cluster: self.cluster.redis.as_ref().map(|_| ClusterPolicy {
                node_timeout_ms: millis(self.cluster.node_timeout),
            }),
            ..EngineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_engines_where_it_has_them() {
        let c = Config::default();
        assert_eq!(c.engine_config(), EngineConfig::default());
        assert_eq!(c.routes, default_routes());
        assert_eq!(c.listen, vec![SocketAddr::from(([127, 0, 0, 1], 8080))]);
        assert_eq!(c.max_message_size, 1 << 20);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.log_level, log::LevelFilter::Info);
        assert_eq!(c.journal, None);
        assert_eq!(c.cluster.redis, None);
        assert_eq!(c.cluster.redis_prefix, "roomd");
        assert_eq!(c.cluster.node_timeout, Duration::from_secs(5));
        assert!(!c.cluster.reuse_port);
    }

    #[test]
    fn engine_config_carries_every_timer() {
        let c = Config {
            heartbeat_interval: Duration::from_millis(250),
            presence_stats_interval: Duration::from_millis(300),
            rate_limit: 7,
            rate_limit_close_after: Duration::from_millis(1_500),
            ..Config::default()
        };
        let e = c.engine_config();
        assert_eq!(e.heartbeat_interval_ms, 250);
        assert_eq!(e.presence_stats_interval_ms, 300);
        assert_eq!((e.rate_limit_per_sec, e.rate_limit_burst), (7, 14));
        assert_eq!(e.rate_limit_close_after_ms, 1_500);
        assert_eq!(
            e.max_rooms_per_conn,
            EngineConfig::default().max_rooms_per_conn
        );
    }

    #[test]
    fn a_route_path_given_twice_is_refused() {
        let mut c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        c.routes.push(c.routes[0].clone());
        assert_eq!(
            c.validate(),
            Err("invalid --route: path /scratch given twice".into())
        );
    }
}
