//! `fanout`: N subscribers and K publishers in one `stream` room; each
//! publisher sends `chat-message`s whose content carries `#pub:seq:time#`,
//! every member (publishers included, as the protocol says "all") receives
//! each one. Against a cluster (`--addr2`) the publishers join the first
//! node and the subscribers alternate between the two. Full speed keeps a bounded window of messages in flight per
//! publisher; `--rate` offers a fixed total rate instead.

use super::{Problems, Summary, Target, is_type, per_server_cpu, stamp, summary};
use crate::args::Args;
use crate::net::{Handler, Net};
use crate::stats::{CpuWindow, Histogram, now_us, report_cpu, round2};
use std::io::Write;
use std::time::Duration;

/// Settings of one fanout run.
pub struct Config {
    subs: usize,
    pubs: usize,
    size: usize,
    window: usize,
    rate: f64,
    duration_us: u64,
    setup_us: u64,
    path: String,
    room: String,
}

impl Config {
    /// Reads `--subs --pubs --size --window --rate --duration --path --room`
    /// and `--setup-timeout` (seconds for everyone to join, 120).
    pub fn from_args(args: &Args) -> Result<Config, String> {
        Ok(Config {
            subs: args.get("subs", 1000)?,
            pubs: args.get("pubs", 1)?.max(1),
            size: args.get("size", 64)?,
            window: args.get("window", 256)?.max(1),
            rate: args.get("rate", 0.0)?,
            duration_us: (args.get("duration", 10.0)? * 1e6) as u64,
            setup_us: (args.get("setup-timeout", 120.0)? * 1e6) as u64,
            path: args.str("path").unwrap_or("/stream").to_string(),
            room: args.str("room").unwrap_or("bench").to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Joining,
    Running,
    Draining,
}

struct Publisher {
    id: usize,
    next_seq: u64,
    /// Oldest sequence not yet received by every member.
    done_seq: u64,
    /// Receipts per sequence, indexed by `seq % window` (full speed only).
    ring: Vec<u32>,
    next_send_us: u64,
}

struct Fanout<'a> {
    cfg: &'a Config,
    phase: Phase,
    joined: usize,
    /// Per connection: 1 upgraded, 2 joined (for a failed setup's report).
    state: Vec<u8>,
    pubs: Vec<Publisher>,
    members: u32,
    received: u64,
    received_in_run: u64,
    latency: Histogram,
    problems: Problems,
    msg: Vec<u8>,
}

impl Fanout<'_> {
    fn publish(&mut self, net: &mut Net, p: usize, now: u64) {
        let publisher = &mut self.pubs[p];
        let seq = publisher.next_seq;
        publisher.next_seq += 1;
        if !publisher.ring.is_empty() {
            let slot = (seq % publisher.ring.len() as u64) as usize;
            publisher.ring[slot] = 0;
        }
        let id = publisher.id;
        self.msg.clear();
        let room = &self.cfg.room;
        let _ = write!(
            self.msg,
            r#"{{"type":"chat-message","roomId":"{room}","userId":"u{id}","content":""#
        );
        let content_start = self.msg.len();
        let _ = write!(self.msg, "#{p}:{seq}:{now}#");
        while self.msg.len() - content_start < self.cfg.size {
            self.msg.push(b'x');
        }
        self.msg.extend_from_slice(b"\"}");
        net.send_text(id, &self.msg);
    }

    /// Full speed: send while the window has room.
    fn fill_window(&mut self, net: &mut Net, p: usize) {
        while self.phase == Phase::Running
            && self.pubs[p].next_seq - self.pubs[p].done_seq < self.cfg.window as u64
        {
            self.publish(net, p, now_us());
        }
    }

    fn delivered(&mut self, net: &mut Net, [p, seq, sent]: [u64; 3]) {
        let now = net.read_time();
        self.received += 1;
        if self.phase == Phase::Running {
            self.received_in_run += 1;
        }
        self.latency.record(now.saturating_sub(sent));
        let Some(publisher) = self.pubs.get_mut(p as usize) else {
            return;
        };
        if publisher.ring.is_empty() || seq < publisher.done_seq {
            return;
        }
        let w = publisher.ring.len() as u64;
        publisher.ring[(seq % w) as usize] += 1;
        let mut advanced = false;
        while publisher.done_seq < publisher.next_seq
            && publisher.ring[(publisher.done_seq % w) as usize] >= self.members
        {
            publisher.done_seq += 1;
            advanced = true;
        }
        if advanced {
            self.fill_window(net, p as usize);
        }
    }
}

impl Handler for Fanout<'_> {
    fn on_open(&mut self, net: &mut Net, id: usize) {
        self.state[id] = 1;
        let room = &self.cfg.room;
        let join = format!(
            r#"{{"type":"join-room","roomId":"{room}","userId":"u{id}","userName":"n{id}"}}"#
        );
        net.send_text(id, join.as_bytes());
    }

    fn on_text(&mut self, net: &mut Net, id: usize, text: &[u8]) {
        if let Some(s) = stamp(text) {
            return self.delivered(net, s);
        }
        if is_type(text, "room-joined") {
            self.joined += 1;
            self.state[id] = 2;
        } else if is_type(text, "error") {
            self.problems.error_reply(text);
        }
    }

    fn on_close(&mut self, _net: &mut Net, id: usize, why: &str) {
        self.problems.closed(id, why);
    }
}

/// Runs the scenario against `target` and prints its lines.
pub fn run(target: &Target, cfg: &Config) -> Result<Summary, String> {
    let total = cfg.subs + cfg.pubs;
    let mut net = Net::new(total, target.tls.clone()).map_err(|e| e.to_string())?;
    let full_speed = cfg.rate <= 0.0;
    let mode = if full_speed {
        format!("full speed, window {}", cfg.window)
    } else {
        format!("{} msg/s offered", cfg.rate)
    };
    println!(
        "fanout [{}] {} subscribers, {} publishers, {} B content, {mode}, {:.1} s",
        target.label,
        cfg.subs,
        cfg.pubs,
        cfg.size,
        cfg.duration_us as f64 / 1e6
    );
    let pubs = (cfg.subs..total)
        .map(|id| Publisher {
            id,
            next_seq: 0,
            done_seq: 0,
            ring: if full_speed {
                vec![0; cfg.window]
            } else {
                Vec::new()
            },
            next_send_us: 0,
        })
        .collect();
    let mut f = Fanout {
        cfg,
        phase: Phase::Joining,
        joined: 0,
        state: vec![0; total],
        pubs,
        members: total as u32,
        received: 0,
        received_in_run: 0,
        latency: Histogram::default(),
        problems: Problems::default(),
        msg: Vec::with_capacity(cfg.size + 256),
    };

    // Join everyone, at most 256 handshakes in flight.
    let setup_deadline = now_us() + cfg.setup_us;
    let mut started = 0;
    while f.joined < total {
        while started < total && started - f.joined.min(started) < 256 {
            // With a second node: every other subscriber there, the
            // publishers on the first.
            let second = started < cfg.subs && started % 2 == 1;
            net.connect(
                started,
                target.node(second),
                target.source(started),
                &cfg.path,
            )
            .map_err(|e| format!("connect: {e}"))?;
            started += 1;
        }
        net.turn(&mut f, Duration::from_millis(5))
            .map_err(|e| e.to_string())?;
        if now_us() > setup_deadline || f.problems.closed > 0 {
            // Which connections are missing, by node and by how far they got.
            let mut missing = String::new();
            for (node, second) in [("first", false), ("second", true)] {
                let on_node = |id: &usize| (*id < cfg.subs && id % 2 == 1) == second;
                let ids: Vec<usize> = (0..total).filter(on_node).collect();
                let unopened = ids.iter().filter(|&&i| f.state[i] == 0).count();
                let unjoined: Vec<usize> =
                    ids.iter().copied().filter(|&i| f.state[i] == 1).collect();
                if unopened + unjoined.len() > 0 {
                    missing += &format!(
                        "; {node} node: {unopened} not upgraded, {} upgraded without room-joined (first ids {:?})",
                        unjoined.len(),
                        &unjoined[..unjoined.len().min(8)]
                    );
                }
            }
            return Err(format!(
                "setup failed: {} of {total} joined, {} closed, first error {:?}{missing}",
                f.joined,
                f.problems.closed,
                f.problems.first()
            ));
        }
    }
    // Let the user-joined announcements drain before measuring.
    let settle = now_us() + 300_000;
    while now_us() < settle {
        net.turn(&mut f, Duration::from_millis(5))
            .map_err(|e| e.to_string())?;
    }
    println!("  {total} joined; running");

    f.received = 0;
    f.latency = Histogram::default();
    f.phase = Phase::Running;
    let cpu = CpuWindow::start(target.server_pid.as_deref());
    let start = now_us();
    let end = start + cfg.duration_us;
    let interval_us = if full_speed {
        0
    } else {
        (1e6 * cfg.pubs as f64 / cfg.rate) as u64
    };
    for (i, p) in f.pubs.iter_mut().enumerate() {
        // Spread fixed-rate publishers over the interval.
        p.next_send_us = start + interval_us * i as u64 / cfg.pubs as u64;
    }
    if full_speed {
        for p in 0..cfg.pubs {
            f.fill_window(&mut net, p);
        }
    }
    let mut next_report = start + 1_000_000;
    let mut last_received = 0;
    loop {
        let now = now_us();
        if now >= end {
            break;
        }
        let mut timeout = end - now;
        if !full_speed {
            for p in 0..cfg.pubs {
                while f.pubs[p].next_send_us <= now {
                    f.pubs[p].next_send_us += interval_us;
                    f.publish(&mut net, p, now);
                }
                timeout = timeout.min(f.pubs[p].next_send_us - now);
            }
        }
        if now >= next_report {
            println!(
                "  {:>5.1} s  {:>10} deliveries/s",
                (now - start) as f64 / 1e6,
                f.received_in_run - last_received
            );
            last_received = f.received_in_run;
            next_report += 1_000_000;
        }
        timeout = timeout.min(next_report.saturating_sub(now));
        net.turn(&mut f, Duration::from_micros(timeout))
            .map_err(|e| e.to_string())?;
    }
    let elapsed = (now_us() - start) as f64 / 1e6;
    let mut json = summary("fanout", target);
    report_cpu(&cpu, &mut json);

    // Stop sending, then wait (bounded) for the rest to arrive.
    f.phase = Phase::Draining;
    let published: u64 = f.pubs.iter().map(|p| p.next_seq).sum();
    let expected = published * total as u64;
    // A slow server may still be working through its queues: wait while
    // messages keep arriving, up to 30 s; 2 s without one ends the wait.
    let drain_end = now_us() + 30_000_000;
    let (mut last_count, mut last_progress) = (f.received, now_us());
    while f.received < expected && f.problems.closed == 0 {
        let now = now_us();
        if f.received > last_count {
            (last_count, last_progress) = (f.received, now);
        }
        if now > drain_end || now - last_progress > 2_000_000 {
            break;
        }
        net.turn(&mut f, Duration::from_millis(10))
            .map_err(|e| e.to_string())?;
    }
    let rate = f.received_in_run as f64 / elapsed;
    let lost = expected.saturating_sub(f.received);
    let (p50, p99, max) = (
        f.latency.quantile(0.5),
        f.latency.quantile(0.99),
        f.latency.max(),
    );
    println!(
        "  published {published}, expected {expected} deliveries, received {}, lost {lost}, errors {}, closed {}",
        f.received, f.problems.errors, f.problems.closed
    );
    println!(
        "  {:.0} deliveries/s ({:.0} msgs/s published); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        rate,
        published as f64 / elapsed,
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        max as f64 / 1e3
    );
    if let Some(e) = &f.problems.first {
        println!("  first error: {e}");
    }
    json.insert(
        "mode".into(),
        if full_speed { "full" } else { "rate" }.into(),
    );
    json.insert("subs".into(), cfg.subs.into());
    json.insert("pubs".into(), cfg.pubs.into());
    json.insert("size".into(), cfg.size.into());
    json.insert("seconds".into(), round2(elapsed).into());
    json.insert("published".into(), published.into());
    json.insert("expected".into(), expected.into());
    json.insert("received".into(), f.received.into());
    json.insert("lost".into(), lost.into());
    json.insert("errors".into(), f.problems.errors.into());
    json.insert("deliveries_per_s".into(), rate.round().into());
    per_server_cpu(&mut json, "deliveries", rate);
    if let Some(per_cpu_s) = json
        .get("deliveries_per_server_cpu_s")
        .and_then(serde_json::Value::as_f64)
        .filter(|&v| v > 0.0)
    {
        // One broadcast is `total` sends, one after another on one core:
        // a floor under the last recipient's latency.
        let us = 1e6 / per_cpu_s;
        println!(
            "  one broadcast = {total} sends ≈ {:.2} ms of server CPU",
            us * total as f64 / 1e3
        );
        json.insert("server_cpu_us_per_delivery".into(), round2(us).into());
    }
    json.insert("p50_ms".into(), round2(p50 as f64 / 1e3).into());
    json.insert("p99_ms".into(), round2(p99 as f64 / 1e3).into());
    json.insert("max_ms".into(), round2(max as f64 / 1e3).into());
    Ok(json)
}
