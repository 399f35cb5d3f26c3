//! The bodies of `/health`, `/api/ping` and `/metrics`.

use crate::engine::{ClusterStats, RouteStats, Stats};
use crate::protocol::Protocol;
use crate::protocol::token::Refusal;
use std::fmt::Write;

/// Counters kept by the reactor itself (the engine keeps the others).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerCounters {
    /// TCP connections accepted since start.
    pub accepted: u64,
    /// HTTP requests answered without an upgrade.
    pub http_requests: u64,
    /// Upgrades refused, by status: 400, 403, 404, 426, 503.
    pub rejected_upgrades: [u64; REJECT_STATUSES.len()],
    /// Connections dropped because their outbound queue was too long.
    pub slow_consumer_drops: u64,
    /// Connections closed (1009) for holding the most incoming bytes when
    /// all incomplete messages together were over budget.
    pub inbound_budget_closes: u64,
    /// Connections dropped for not sending a request head in time.
    pub request_timeouts: u64,
    /// Tokens refused at upgrades and in-band, by [`Refusal::ALL`] index.
    pub refused_tokens: [u64; Refusal::ALL.len()],
    /// Connections closed with 4401 because their token expired.
    pub token_expiry_closes: u64,
    /// TLS handshakes that failed (garbage, no shared version or cipher).
    pub tls_handshake_failures: u64,
    /// The TLS certificate's `notAfter` (seconds since the epoch), if TLS
    /// is configured.
    pub tls_certificate_expiry: Option<i64>,
    /// WebSocket connections open now (read off the reactor's tables).
    pub websockets_open: u64,
    /// Client sockets held now, in any phase (request, WebSocket,
    /// closing; read off the reactor's tables).
    pub sockets_open: u64,
    /// The Redis client's counters, with `--redis`.
    pub redis: Option<RedisCounters>,
    /// Live upgrades done, counted on across upgrades.
    pub upgrades_done: u64,
    /// Live upgrades refused or failed (the process served on).
    pub upgrades_refused: u64,
    /// The last hand-over's pause, milliseconds (from the old process's
    /// last read to the new one's first).
    pub last_handover_ms: Option<u64>,
}

/// What the Redis client of cluster mode did since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RedisCounters {
    /// Commands sent (scripts and plain commands).
    pub commands: u64,
    /// Replies received (error replies included).
    pub replies: u64,
    /// Error replies, and commands that got no reply (connection lost,
    /// queue full).
    pub errors: u64,
    /// Times Redis came back after being lost.
    pub reconnects: u64,
    /// Round trips measured (replies) and their total, milliseconds.
    pub round_trips: u64,
    /// See [`Self::round_trips`].
    pub round_trip_ms_total: u64,
}

/// The statuses counted in [`ServerCounters::rejected_upgrades`], in order.
pub const REJECT_STATUSES: [u16; 6] = [400, 401, 403, 404, 426, 503];

impl ServerCounters {
    /// Counts one refused token.
    pub fn refuse_token(&mut self, refusal: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|r| *r == refusal) {
            self.refused_tokens[i] += 1;
        }
    }

    /// Counts one refused upgrade.
    pub fn reject(&mut self, status: u16) {
        if let Some(i) = REJECT_STATUSES.iter().position(|s| *s == status) {
            self.rejected_upgrades[i] += 1;
        }
    }
}

fn totals(stats: &Stats) -> (u64, u64) {
    let conns = stats.per_protocol.iter().map(|p| p.connections).sum();
    let rooms = stats.per_protocol.iter().map(|p| p.rooms).sum();
    (conns, rooms)
}

/// `GET /health`.
/// In cluster mode it adds `"redis":"up"` or `"down"` and `"nodes"`
/// (live nodes); the status is `"unavailable"` while the node cannot
/// serve (Redis away, or synchronising).
pub fn health_json(stats: &Stats, uptime_secs: u64) -> String {
    let (connections, rooms) = totals(stats);
    let mut protocols = serde_json::Map::new();
    for p in Protocol::ALL {
        let s = stats.of(p);
        protocols.insert(
            p.name().to_string(),
            serde_json::json!({"connections": s.connections, "rooms": s.rooms}),
        );
    }
    let mut health = serde_json::json!({
        "status": "ok",
        "uptimeSeconds": uptime_secs,
        "connections": connections,
        "rooms": rooms,
        "protocols": protocols,
    });
    if let Some(c) = stats.cluster {
        health["redis"] = (if c.redis_up { "up" } else { "down" }).into();
        health["nodes"] = c.nodes.into();
        if !c.ready {
            health["status"] = "unavailable".into();
        }
    }
    health.to_string()
}

/// `GET /api/ping`.
pub fn api_ping_json(stats: &Stats) -> String {
    let (connections, rooms) = totals(stats);
    serde_json::json!({
        "status": "ok",
        "message": "WebSocket signaling server is running",
        "roomsActive": rooms,
        "clientsConnected": connections,
    })
    .to_string()
}

/// A per-protocol series: name, type, help, how to read it.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::engine::ProtocolStats) -> u64,
);

/// A per-route gauge: name, help, which routes have it, how to read it.
type RouteSeries = (
    &'static str,
    &'static str,
    fn(&&RouteStats) -> bool,
    fn(&RouteStats) -> u64,
);

/// `value` as a Prometheus label value (`\`, `"` and line feeds escaped).
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`, in the Prometheus text exposition format.
pub fn metrics_text(stats: &Stats, server: &ServerCounters, uptime_secs: u64) -> String {
    let mut out = String::with_capacity(4096);
    let per_protocol: [Series; 9] = [
        (
            "roomd_connections",
            "gauge",
            "Open WebSocket connections.",
            |s| s.connections,
        ),
        ("roomd_rooms", "gauge", "Live rooms or sessions.", |s| {
            s.rooms
        }),
        ("roomd_users", "gauge", "Online users (presence).", |s| {
            s.users
        }),
        (
            "roomd_messages_in_total",
            "counter",
            "Messages received.",
            |s| s.messages_in,
        ),
        (
            "roomd_messages_out_total",
            "counter",
            "Messages sent, one per recipient.",
            |s| s.messages_out,
        ),
        ("roomd_bytes_in_total", "counter", "Bytes received.", |s| {
            s.bytes_in
        }),
        (
            "roomd_bytes_out_total",
            "counter",
            "Bytes sent, per recipient.",
            |s| s.bytes_out,
        ),
        (
            "roomd_errors_sent_total",
            "counter",
            "Error messages sent.",
            |s| s.errors_sent,
        ),
        (
            "roomd_rate_limited_total",
            "counter",
            "Messages refused by the rate limiter.",
            |s| s.rate_limited,
        ),
    ];
    for (name, kind, help, get) in per_protocol {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in Protocol::ALL {
            let _ = writeln!(out, "{name}{{protocol=\"{p}\"}} {}", get(stats.of(p)));
        }
    }
    let presence = |r: &&RouteStats| r.protocol == Protocol::Presence;
    let per_route: [RouteSeries; 2] = [
        (
            "roomd_route_connections",
            "Open WebSocket connections per route.",
            |_| true,
            |r| r.connections,
        ),
        (
            "roomd_route_users",
            "Online users per presence route (its `stats:` log line).",
            presence,
            |r| r.users,
        ),
    ];
    for (name, help, keep, get) in per_route {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in stats.routes.iter().filter(keep) {
            let path = label_value(&r.path);
            let (protocol, value) = (r.protocol, get(r));
            let _ = writeln!(
                out,
                "{name}{{protocol=\"{protocol}\",path=\"{path}\"}} {value}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP roomd_rejected_upgrades_total WebSocket upgrades refused, by HTTP status.\n# TYPE roomd_rejected_upgrades_total counter"
    );
    for (status, n) in REJECT_STATUSES.iter().zip(server.rejected_upgrades) {
        let _ = writeln!(
            out,
            "roomd_rejected_upgrades_total{{status=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP roomd_refused_tokens_total Tokens refused, by reason.\n# TYPE roomd_refused_tokens_total counter"
    );
    for (refusal, n) in Refusal::ALL.iter().zip(server.refused_tokens) {
        let reason = refusal.name();
        let _ = writeln!(out, "roomd_refused_tokens_total{{reason=\"{reason}\"}} {n}");
    }
    let singles = [
        (
            "roomd_slow_consumer_drops_total",
            "counter",
            "Connections dropped for a full outbound queue.",
            server.slow_consumer_drops,
        ),
        (
            "roomd_inbound_budget_closes_total",
            "counter",
            "Connections closed with 1009 for holding the most incoming bytes past the total budget.",
            server.inbound_budget_closes,
        ),
        (
            "roomd_request_timeouts_total",
            "counter",
            "Connections dropped before a complete request head.",
            server.request_timeouts,
        ),
        (
            "roomd_token_expiry_closes_total",
            "counter",
            "Connections closed with 4401 because their token expired.",
            server.token_expiry_closes,
        ),
        (
            "roomd_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed.",
            server.tls_handshake_failures,
        ),
        (
            "roomd_accepted_connections_total",
            "counter",
            "TCP connections accepted.",
            server.accepted,
        ),
        (
            "roomd_http_requests_total",
            "counter",
            "Plain HTTP requests answered.",
            server.http_requests,
        ),
        (
            "roomd_websockets_open",
            "gauge",
            "WebSocket connections held by the reactor.",
            server.websockets_open,
        ),
        (
            "roomd_sockets_open",
            "gauge",
            "Client sockets held by the reactor (HTTP, WebSocket or closing).",
            server.sockets_open,
        ),
        (
            "roomd_uptime_seconds",
            "gauge",
            "Seconds since start.",
            uptime_secs,
        ),
        (
            "roomd_upgrades_total",
            "counter",
            "Live upgrades done (counted on across upgrades).",
            server.upgrades_done,
        ),
        (
            "roomd_upgrades_refused_total",
            "counter",
            "Live upgrades refused or failed (the process served on).",
            server.upgrades_refused,
        ),
    ];
    for (name, kind, help, value) in singles {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    if let Some(ms) = server.last_handover_ms {
        let name = "roomd_last_handover_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} The last live upgrade's pause, from the old process's last read to the new one serving.\n# TYPE {name} gauge\n{name} {:.3}",
            ms as f64 / 1000.0
        );
    }
    if let Some(expiry) = server.tls_certificate_expiry {
        let name = "roomd_tls_certificate_expiry_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} The TLS certificate's notAfter, in seconds since the epoch.\n# TYPE {name} gauge\n{name} {expiry}"
        );
    }
    if let (Some(redis), Some(cluster)) = (server.redis, stats.cluster) {
        cluster_metrics(&mut out, &redis, &cluster);
    }
    out
}

/// The cluster mode series of `/metrics`.
fn cluster_metrics(out: &mut String, redis: &RedisCounters, cluster: &ClusterStats) {
    let round_trip_secs = redis.round_trip_ms_total as f64 / 1000.0;
    let series: [(&str, &str, &str, String); 9] = [
        (
            "roomd_redis_up",
            "gauge",
            "1 while Redis is reachable.",
            u8::from(cluster.redis_up).to_string(),
        ),
        (
            "roomd_redis_commands_total",
            "counter",
            "Commands sent to Redis.",
            redis.commands.to_string(),
        ),
        (
            "roomd_redis_replies_total",
            "counter",
            "Replies received from Redis.",
            redis.replies.to_string(),
        ),
        (
            "roomd_redis_errors_total",
            "counter",
            "Redis error replies and commands left without a reply.",
            redis.errors.to_string(),
        ),
        (
            "roomd_redis_reconnects_total",
            "counter",
            "Times Redis came back after being lost.",
            redis.reconnects.to_string(),
        ),
        (
            "roomd_redis_round_trip_seconds_sum",
            "counter",
            "Total time from sending a command to its reply.",
            round_trip_secs.to_string(),
        ),
        (
            "roomd_redis_round_trip_seconds_count",
            "counter",
            "Round trips in roomd_redis_round_trip_seconds_sum.",
            redis.round_trips.to_string(),
        ),
        (
            "roomd_cluster_nodes",
            "gauge",
            "Live nodes at this node's last heartbeat.",
            cluster.nodes.to_string(),
        ),
        (
            "roomd_cluster_nodes_reaped_total",
            "counter",
            "Other nodes removed from the cluster (dead or paused).",
            cluster.nodes_reaped.to_string(),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_sum_over_protocols() {
        let mut stats = Stats::default();
        stats.per_protocol[Protocol::Chat.index()].connections = 2;
        stats.per_protocol[Protocol::Stream.index()].connections = 3;
        stats.per_protocol[Protocol::Stream.index()].rooms = 1;
        let health: serde_json::Value = serde_json::from_str(&health_json(&stats, 7)).unwrap();
        assert_eq!(health["connections"], 5);
        assert_eq!(health["rooms"], 1);
        assert_eq!(health["uptimeSeconds"], 7);
        assert_eq!(health["protocols"]["stream"]["connections"], 3);
        assert_eq!(health["protocols"]["presence"]["rooms"], 0);
        let ping: serde_json::Value = serde_json::from_str(&api_ping_json(&stats)).unwrap();
        assert_eq!(ping["clientsConnected"], 5);
        assert_eq!(ping["roomsActive"], 1);
        let mut server = ServerCounters::default();
        server.reject(403);
        server.slow_consumer_drops = 4;
        server.sockets_open = 9;
        let text = metrics_text(&stats, &server, 1);
        assert!(text.contains("roomd_connections{protocol=\"stream\"} 3\n"));
        assert!(text.contains("roomd_rejected_upgrades_total{status=\"403\"} 1\n"));
        assert!(text.contains("roomd_slow_consumer_drops_total 4\n"));
        assert!(text.contains("# TYPE roomd_sockets_open gauge\nroomd_sockets_open 9\n"));
    }

    #[test]
    fn routes_get_their_connections_and_presence_routes_their_users() {
        let route = |path: &str, protocol, connections, users| RouteStats {
            path: path.into(),
            protocol,
            connections,
            users,
        };
        let stats = Stats {
            routes: vec![
                route("/presence", Protocol::Presence, 3, 2),
                route("/chat", Protocol::Chat, 4, 0),
                route("/odd\"\\", Protocol::Presence, 0, 0),
            ],
            ..Stats::default()
        };
        let text = metrics_text(&stats, &ServerCounters::default(), 1);
        for line in [
            "# TYPE roomd_route_connections gauge\n",
            "roomd_route_connections{protocol=\"presence\",path=\"/presence\"} 3\n",
            "roomd_route_connections{protocol=\"chat\",path=\"/chat\"} 4\n",
            "# TYPE roomd_route_users gauge\n",
            "roomd_route_users{protocol=\"presence\",path=\"/presence\"} 2\n",
            "roomd_route_users{protocol=\"presence\",path=\"/odd\\\"\\\\\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("roomd_route_users{protocol=\"chat\""));
    }
}
