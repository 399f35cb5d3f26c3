//! The presence `stats:` log line, captured through a test logger (its
//! own test binary, since a logger is process-wide).

#[path = "engine/common.rs"]
mod common;
use common::Harness;
use roomd::engine::EngineConfig;
use roomd::protocol::Protocol::Presence;
use std::sync::Mutex;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata())
            && let Ok(mut lines) = LINES.lock()
        {
            lines.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn stats_lines() -> Vec<String> {
    let mut lines = LINES.lock().unwrap();
    let out = lines
        .iter()
        .filter(|l| l.contains("stats:"))
        .cloned()
        .collect();
    lines.clear();
    out
}

#[test]
fn each_presence_route_logs_its_stats_every_interval() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let config = EngineConfig {
        presence_stats_interval_ms: 10_000,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    let mut conns = vec![
        h.connect_with(Presence, "/presence", "userId=1"),
        h.connect_with(Presence, "/presence", "userId=1"),
        h.connect_with(Presence, "/presence", "userId=2"),
    ];
    let online = h.connect_with(Presence, "/ws-online-status", "userId=3");
    h.advance(9_999);
    assert_eq!(stats_lines(), Vec::<String>::new());
    h.advance(1);
    let lines = stats_lines();
    assert_eq!(
        lines,
        vec![
            "/presence: stats: 2 users, 3 connections",
            "/ws-online-status: stats: 1 users, 1 connections"
        ]
    );
    // The same numbers are gauges in `Engine::stats` (and so in /metrics).
    let gauges: Vec<String> = (h.engine.stats().routes.iter())
        .map(|r| {
            format!(
                "{}: stats: {} users, {} connections",
                r.path, r.users, r.connections
            )
        })
        .collect();
    assert_eq!(gauges, lines);
    h.advance(5_000);
    assert_eq!(stats_lines(), Vec::<String>::new());
    h.advance(5_000);
    assert_eq!(stats_lines().len(), 2);
    // A route without connections logs nothing.
    h.close(online);
    h.advance(10_000);
    assert_eq!(
        stats_lines(),
        vec!["/presence: stats: 2 users, 3 connections"]
    );
    conns.drain(..).for_each(|c| h.close(c));
    h.advance(10_000);
    assert_eq!(stats_lines(), Vec::<String>::new());
}
