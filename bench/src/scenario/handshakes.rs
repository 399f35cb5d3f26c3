//! `handshakes`: new connections as fast as the server takes them. Each
//! connects, completes the TLS handshake (on `wss://`; a full one every
//! time, the client keeps no sessions) and the WebSocket upgrade, and is
//! reset (TCP RST, so no port waits in TIME_WAIT) as soon as its `101`
//! arrives, its slot starting the next connection at once. At most
//! `--in-flight` are under way at a time; the run lasts `--duration`
//! seconds and counts the upgrades completed in it.

use super::{Problems, Summary, Target, per_server_cpu, summary};
use crate::args::Args;
use crate::net::{Handler, Net};
use crate::stats::{CpuWindow, Histogram, now_us, report_cpu, round2};
use std::time::Duration;

/// Settings of one handshakes run.
pub struct Config {
    in_flight: usize,
    duration_us: u64,
    path: String,
}

impl Config {
    /// Reads `--in-flight --duration --path`.
    pub fn from_args(args: &Args) -> Result<Config, String> {
        Ok(Config {
            in_flight: args.get("in-flight", 64)?.max(1),
            duration_us: (args.get("duration", 5.0)? * 1e6) as u64,
            path: args.str("path").unwrap_or("/stream").to_string(),
        })
    }
}

struct Handshakes {
    /// When each slot's current connection started.
    started_us: Vec<u64>,
    /// Slots whose connection is done (upgraded or failed), to start again.
    done: Vec<usize>,
    completed: u64,
    /// Connect to `101`, per connection.
    latency: Histogram,
    problems: Problems,
    /// The TLS parameters of the first connection (all are alike).
    tls_params: Option<String>,
}

impl Handler for Handshakes {
    fn on_open(&mut self, net: &mut Net, id: usize) {
        self.completed += 1;
        self.latency
            .record(now_us().saturating_sub(self.started_us[id]));
        if self.tls_params.is_none() {
            self.tls_params = net.tls_params(id);
        }
        self.done.push(id);
    }

    fn on_text(&mut self, _net: &mut Net, _id: usize, _text: &[u8]) {}

    fn on_close(&mut self, _net: &mut Net, id: usize, why: &str) {
        self.problems.closed(id, why);
        self.done.push(id);
    }
}

/// Runs the scenario against `target` and prints its lines.
pub fn run(target: &Target, cfg: &Config) -> Result<Summary, String> {
    let scheme = if target.tls.is_some() { "wss" } else { "ws" };
    println!(
        "handshakes [{}] {scheme}:// connect + upgrade + reset, {} in flight, {:.1} s",
        target.label,
        cfg.in_flight,
        cfg.duration_us as f64 / 1e6
    );
    let mut net = Net::new(cfg.in_flight, target.tls.clone()).map_err(|e| e.to_string())?;
    let mut h = Handshakes {
        started_us: vec![0; cfg.in_flight],
        done: Vec::new(),
        completed: 0,
        latency: Histogram::default(),
        problems: Problems::default(),
        tls_params: None,
    };
    let mut attempts: usize = 0;
    let mut connect = |net: &mut Net, h: &mut Handshakes, id: usize| -> Result<(), String> {
        net.abort(id);
        h.started_us[id] = now_us();
        net.connect(id, target.addr, target.source(attempts), &cfg.path)
            .map_err(|e| format!("connect: {e}"))?;
        attempts += 1;
        Ok(())
    };
    let cpu = CpuWindow::start(target.server_pid.as_deref());
    let start = now_us();
    let end = start + cfg.duration_us;
    for id in 0..cfg.in_flight {
        connect(&mut net, &mut h, id)?;
    }
    let mut next_report = start + 1_000_000;
    let mut last_completed = 0;
    loop {
        let now = now_us();
        if now >= end {
            break;
        }
        if now >= next_report {
            println!(
                "  {:>5.1} s  {:>8} handshakes/s",
                (now - start) as f64 / 1e6,
                h.completed - last_completed
            );
            last_completed = h.completed;
            next_report += 1_000_000;
        }
        let timeout = (end - now).min(next_report.saturating_sub(now)).min(10_000);
        net.turn(&mut h, Duration::from_micros(timeout))
            .map_err(|e| e.to_string())?;
        for id in std::mem::take(&mut h.done) {
            connect(&mut net, &mut h, id)?;
        }
        if h.problems.closed > 0 && h.completed == 0 && now_us() - start > 2_000_000 {
            return Err(format!("no connection completed: {}", h.problems.first()));
        }
    }
    let elapsed = (now_us() - start) as f64 / 1e6;
    let mut json = summary("handshakes", target);
    report_cpu(&cpu, &mut json);
    let rate = h.completed as f64 / elapsed;
    let (p50, p99) = (h.latency.quantile(0.5), h.latency.quantile(0.99));
    println!(
        "  {} completed in {elapsed:.2} s: {rate:.0} handshakes/s; connect to 101 p50 {:.2} ms, p99 {:.2} ms; {} failed {}",
        h.completed,
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        h.problems.closed,
        h.problems.first()
    );
    if let Some(params) = &h.tls_params {
        println!("  TLS: {params}");
        json.insert("tls".into(), params.clone().into());
    }
    json.insert("scheme".into(), scheme.into());
    json.insert("in_flight".into(), cfg.in_flight.into());
    json.insert("seconds".into(), round2(elapsed).into());
    json.insert("completed".into(), h.completed.into());
    json.insert("failed".into(), h.problems.closed.into());
    json.insert("handshakes_per_s".into(), rate.round().into());
    per_server_cpu(&mut json, "handshakes", rate);
    json.insert("p50_ms".into(), round2(p50 as f64 / 1e3).into());
    json.insert("p99_ms".into(), round2(p99 as f64 / 1e3).into());
    Ok(json)
}
