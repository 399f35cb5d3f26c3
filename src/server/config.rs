//! The server's settings: command-line flags, `ROOMD_<NAME>` environment
//! variables, and the seeds' `PORT` and `FRONTEND_URL`.
//!
//! A flag wins over its environment variable. Repeatable flags given in the
//! environment are comma-separated (`ROOMD_LISTEN=127.0.0.1:80,[::1]:80`).

use crate::protocol::Protocol;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A WebSocket route: a path and the protocol spoken there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The exact, case-sensitive path, e.g. `/chat`.
    pub path: String,
    /// The protocol.
    pub protocol: Protocol,
}

/// Everything the server is configured with. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Addresses to listen on. Default `127.0.0.1:8080` (or `0.0.0.0:$PORT`).
    pub listen: Vec<SocketAddr>,
    /// WebSocket routes. Default: the routes of PROTOCOLS.md.
    pub routes: Vec<Route>,
    /// Allowed origins; empty allows every origin.
    pub allow_origins: Vec<String>,
    /// Interval between heartbeat pings. Default 30 s.
    pub heartbeat_interval: Duration,
    /// Largest incoming message (and frame) in bytes. Default 1 MiB.
    pub max_message_size: usize,
    /// Most simultaneous WebSocket connections. Default 10,000.
    pub max_connections: usize,
    /// Most bytes queued for one connection before it is dropped. Default 4 MiB.
    pub max_outbound_bytes: usize,
    /// Most bytes queued for all connections together; past it the largest
    /// queues are dropped as slow consumers. Default 1 GiB.
    pub max_total_outbound_bytes: usize,
    /// Most bytes of incomplete incoming messages held for all connections
    /// together; past it the connections holding the most are closed with
    /// 1009. Default 256 MiB.
    pub max_total_inbound_bytes: usize,
    /// Messages per second allowed per connection (burst twice that); 0
    /// disables the limit. Default 200.
    pub rate_limit: u32,
    /// Log level. Default `info`.
    pub log_level: log::LevelFilter,
    /// A client that has not sent a complete request head by then is
    /// dropped (slow-loris). Not a flag. Default 10 s.
    pub request_timeout: Duration,
    /// Journal every engine input to this file (JSON Lines, for
    /// `roomd replay`); the file is truncated at start. Default none.
    pub journal: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            routes: default_routes(),
            allow_origins: Vec::new(),
            heartbeat_interval: Duration::from_secs(30),
            max_message_size: 1 << 20,
            max_connections: 10_000,
            max_outbound_bytes: 4 << 20,
            max_total_outbound_bytes: 1 << 30,
            max_total_inbound_bytes: 256 << 20,
            rate_limit: 200,
            log_level: log::LevelFilter::Info,
            request_timeout: Duration::from_secs(10),
            journal: None,
        }
    }
}

impl Config {
    /// The engine's settings from these.
    pub fn engine_config(&self) -> crate::engine::EngineConfig {
        crate::engine::EngineConfig {
            heartbeat_interval_ms: self.heartbeat_interval.as_millis().max(1) as u64,
            rate_limit_per_sec: self.rate_limit,
            rate_limit_burst: self.rate_limit.saturating_mul(2),
            ..crate::engine::EngineConfig::default()
        }
    }
}

/// The default routes of PROTOCOLS.md.
pub fn default_routes() -> Vec<Route> {
    crate::protocol::DEFAULT_ROUTES
        .into_iter()
        .map(|(path, protocol)| Route {
            path: path.to_string(),
            protocol,
        })
        .collect()
}

/// Every flag: name, value placeholder, help text.
const FLAGS: [(&str, &str, &str); 13] = [
    (
        "listen",
        "ADDR",
        "address to listen on, repeatable (default 127.0.0.1:8080, or 0.0.0.0:$PORT)",
    ),
    (
        "route",
        "PATH=PROTOCOL",
        "WebSocket route, repeatable; replaces the default routes",
    ),
    (
        "allow-origin",
        "URL",
        "allowed Origin, repeatable (also FRONTEND_URL, comma-separated)",
    ),
    (
        "heartbeat-interval",
        "SECS",
        "seconds between pings, e.g. 30 or 0.5 or 250ms (default 30)",
    ),
    (
        "max-message-size",
        "BYTES",
        "largest incoming message (default 1048576)",
    ),
    (
        "max-connections",
        "N",
        "most WebSocket connections (default 10000)",
    ),
    (
        "max-outbound-bytes",
        "BYTES",
        "queued bytes per connection before it is dropped (default 4194304)",
    ),
    (
        "max-total-outbound-bytes",
        "BYTES",
        "queued bytes for all connections; past it the largest queues are dropped (default 1073741824)",
    ),
    (
        "max-total-inbound-bytes",
        "BYTES",
        "bytes of incomplete incoming messages for all connections; past it the largest are closed 1009 (default 268435456)",
    ),
    (
        "rate-limit",
        "MSGS_PER_SEC",
        "messages per second per connection, burst 2x, 0 = off (default 200)",
    ),
    (
        "log-level",
        "LEVEL",
        "off, error, warn, info, debug or trace (default info)",
    ),
    (
        "journal",
        "FILE",
        "record every engine input to FILE for `roomd replay` (default off)",
    ),
    ("help", "", "print this help"),
];

/// The `--help` text.
pub fn help() -> String {
    let mut s = String::from(
        "roomd: real-time WebSocket server (rooms, presence, signaling, chat)\n\n\
         Usage: roomd [FLAGS]\n\nFlags (each also read from ROOMD_<NAME>, e.g. ROOMD_MAX_CONNECTIONS):\n",
    );
    for (name, value, text) in FLAGS {
        let flag = format!("--{name} {value}");
        s.push_str(&format!("  {flag:<36} {text}\n"));
    }
    s.push_str("\nSee README.md for routes, HTTP endpoints and the systemd unit.\n");
    s
}

/// An invalid setting: which flag and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag, e.g. `--max-connections`.
    pub flag: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.flag, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run the server.
    Serve(Config),
    /// Print the help.
    Help,
}

fn err(flag: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag: format!("--{flag}"),
        message: message.into(),
    }
}

impl Config {
    /// Reads `args` (without the program name) and the environment through
    /// `env` (a lookup such as `|k| std::env::var(k).ok()`).
    pub fn parse(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        // (flag, value) pairs: environment first, then the command line, so
        // that command-line values are applied last and win.
        let mut from_env = Vec::new();
        for (name, value, _) in FLAGS {
            if value.is_empty() {
                continue;
            }
            let var = format!("ROOMD_{}", name.to_uppercase().replace('-', "_"));
            if let Some(v) = env(&var) {
                from_env.push((name.to_string(), v));
            }
        }
        let mut from_args = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(ConfigError {
                    flag: arg.clone(),
                    message: "unexpected argument (see --help)".into(),
                });
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            let Some((_, placeholder, _)) = FLAGS.iter().find(|(n, _, _)| *n == name) else {
                return Err(err(name, "unknown flag (see --help)"));
            };
            if placeholder.is_empty() {
                return Ok(Command::Help);
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| err(name, "missing value"))?,
            };
            from_args.push((name.to_string(), value));
        }

        let mut config = Config::default();
        let mut listen = Vec::new();
        let mut routes = Vec::new();
        if let Some(urls) = env("FRONTEND_URL") {
            config
                .allow_origins
                .extend(split_list(&urls).iter().map(|u| normalize_origin(u)));
        }
        for (source_is_env, (name, value)) in from_env
            .iter()
            .map(|p| (true, p))
            .chain(from_args.iter().map(|p| (false, p)))
        {
            let values = if source_is_env {
                split_list(value)
            } else {
                vec![value.clone()]
            };
            for value in values {
                config.apply(name, &value, &mut listen, &mut routes)?;
            }
        }
        if listen.is_empty()
            && let Some(port) = env("PORT")
        {
            let port: u16 = port
                .trim()
                .parse()
                .map_err(|_| err("listen", format!("PORT={port:?} is not a port number")))?;
            listen.push(SocketAddr::from(([0, 0, 0, 0], port)));
        }
        if !listen.is_empty() {
            config.listen = listen;
        }
        if !routes.is_empty() {
            config.routes = routes;
        }
        Ok(Command::Serve(config))
    }

    fn apply(
        &mut self,
        name: &str,
        value: &str,
        listen: &mut Vec<SocketAddr>,
        routes: &mut Vec<Route>,
    ) -> Result<(), ConfigError> {
        let bad = |what: &str| err(name, format!("{value:?} is not {what}"));
        match name {
            "listen" => listen.push(
                value
                    .parse()
                    .map_err(|_| bad("an address such as 127.0.0.1:8080"))?,
            ),
            "route" => {
                let (path, protocol) = value.split_once('=').ok_or_else(|| bad("PATH=PROTOCOL"))?;
                if !path.starts_with('/') {
                    return Err(bad("PATH=PROTOCOL with a path starting with /"));
                }
                let protocol = protocol.parse().map_err(|e| err(name, format!("{e}")))?;
                if routes.iter().any(|r: &Route| r.path == path) {
                    return Err(err(name, format!("path {path} given twice")));
                }
                routes.push(Route {
                    path: path.to_string(),
                    protocol,
                });
            }
            "allow-origin" => self.allow_origins.push(normalize_origin(value)),
            "heartbeat-interval" => {
                let d = parse_seconds(value)
                    .ok_or_else(|| bad("a duration such as 30, 0.5 or 250ms"))?;
                if d < Duration::from_millis(10) {
                    return Err(err(name, "must be at least 10ms"));
                }
                self.heartbeat_interval = d;
            }
            "max-message-size" => {
                self.max_message_size = positive(value).ok_or_else(|| bad("a positive number"))?
            }
            "max-connections" => {
                self.max_connections = positive(value).ok_or_else(|| bad("a positive number"))?
            }
            "max-outbound-bytes" => {
                self.max_outbound_bytes = positive(value).ok_or_else(|| bad("a positive number"))?
            }
            "max-total-outbound-bytes" => {
                self.max_total_outbound_bytes =
                    positive(value).ok_or_else(|| bad("a positive number"))?
            }
            "max-total-inbound-bytes" => {
                self.max_total_inbound_bytes =
                    positive(value).ok_or_else(|| bad("a positive number"))?
            }
            "rate-limit" => self.rate_limit = value.trim().parse().map_err(|_| bad("a number"))?,
            "log-level" => self.log_level = value.trim().parse().map_err(|_| bad("a log level"))?,
            "journal" if !value.is_empty() => self.journal = Some(PathBuf::from(value)),
            "journal" => return Err(bad("a file name")),
            _ => return Err(err(name, "unknown flag")),
        }
        Ok(())
    }
}

/// An origin as browsers send it: no trailing slash.
fn normalize_origin(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn positive(value: &str) -> Option<usize> {
    value.trim().parse().ok().filter(|n| *n > 0)
}

/// Seconds as a number (`30`, `0.5`) or a humantime duration (`250ms`).
fn parse_seconds(value: &str) -> Option<Duration> {
    let value = value.trim();
    match value.parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => Some(Duration::from_secs_f64(secs)),
        Ok(_) => None,
        Err(_) => humantime::parse_duration(value).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(&args, &move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    fn serve(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env) {
            Ok(Command::Serve(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(serve(&[], &[]), Config::default());
        assert_eq!(Config::default().routes.len(), 6);
    }

    #[test]
    fn flags_env_and_seed_variables() {
        let c = serve(
            &[
                "--route",
                "/=stream",
                "--heartbeat-interval=0.25",
                "--max-connections",
                "5",
            ],
            &[
                ("PORT", "3001"),
                ("FRONTEND_URL", "http://a, http://b/"),
                ("ROOMD_MAX_CONNECTIONS", "7"),
                ("ROOMD_RATE_LIMIT", "0"),
            ],
        );
        assert_eq!(c.listen, vec!["0.0.0.0:3001".parse().unwrap()]);
        assert_eq!(
            c.routes,
            vec![Route {
                path: "/".into(),
                protocol: Protocol::Stream
            }]
        );
        assert_eq!(c.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(c.max_connections, 5, "flag wins over env");
        assert_eq!(c.rate_limit, 0);
        assert_eq!(c.allow_origins, vec!["http://a", "http://b"]);
        let c = serve(
            &["--listen", "127.0.0.1:1", "--listen", "[::1]:2"],
            &[("PORT", "3"), ("ROOMD_LOG_LEVEL", "debug")],
        );
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert_eq!(
            serve(&["--heartbeat-interval", "250ms"], &[]).heartbeat_interval,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn errors_name_the_flag() {
        for (args, flag) in [
            (vec!["--max-connections", "0"], "--max-connections"),
            (vec!["--max-message-size", "x"], "--max-message-size"),
            (vec!["--listen", "nowhere"], "--listen"),
            (vec!["--route", "/x=nope"], "--route"),
            (vec!["--heartbeat-interval", "-1"], "--heartbeat-interval"),
            (vec!["--rate-limit"], "--rate-limit"),
            (vec!["--bogus", "1"], "--bogus"),
        ] {
            let e = parse(&args, &[]).unwrap_err();
            assert_eq!(e.flag, flag);
            assert!(
                e.to_string().starts_with(&format!("invalid {flag}: ")),
                "{e}"
            );
        }
        assert_eq!(
            parse(&[], &[("ROOMD_MAX_OUTBOUND_BYTES", "-3")])
                .unwrap_err()
                .flag,
            "--max-outbound-bytes"
        );
        assert_eq!(parse(&["--help"], &[]), Ok(Command::Help));
        assert!(help().contains("--max-outbound-bytes"));
    }
}
