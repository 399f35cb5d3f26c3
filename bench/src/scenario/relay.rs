//! `relay`: N `signal` rooms, each a host and a guest; the host sends a
//! `signal` stamped `#pair:seq:time#`, the guest sends the same message
//! back, the host measures the round trip and sends the next one. One
//! message in flight per pair. Against a cluster (`--addr2`) the hosts are
//! on the first node and the guests on the second, so every signal crosses
//! nodes both ways. When the run ends the generator waits (bounded) for
//! the signals still in flight: `lost` counts those that never came back.

use super::{Problems, Summary, Target, is_type, per_server_cpu, stamp, str_field, summary};
use crate::args::Args;
use crate::net::{Handler, Net};
use crate::stats::{CpuWindow, Histogram, now_us, report_cpu, round2};
use std::io::Write;
use std::time::Duration;

/// Settings of one relay run.
pub struct Config {
    pairs: usize,
    duration_us: u64,
    path: String,
}

impl Config {
    /// Reads `--pairs --duration --path`.
    pub fn from_args(args: &Args) -> Result<Config, String> {
        Ok(Config {
            pairs: args.get("pairs", 100)?.max(1),
            duration_us: (args.get("duration", 10.0)? * 1e6) as u64,
            path: args.str("path").unwrap_or("/signal").to_string(),
        })
    }
}

struct Pair {
    room: Vec<u8>,
    guest_open: bool,
    ready: bool,
    seq: u64,
}

struct Relay {
    pairs: Vec<Pair>,
    ready: usize,
    running: bool,
    /// Signals the hosts sent.
    sent: u64,
    trips: u64,
    rtt: Histogram,
    problems: Problems,
    msg: Vec<u8>,
}

impl Relay {
    fn join(&mut self, net: &mut Net, pair: usize) {
        let p = &self.pairs[pair];
        if p.guest_open && !p.room.is_empty() {
            self.msg.clear();
            self.msg
                .extend_from_slice(br#"{"type":"join-room","roomId":""#);
            self.msg.extend_from_slice(&p.room);
            self.msg.extend_from_slice(br#""}"#);
            net.send_text(2 * pair + 1, &self.msg);
        }
    }

    fn ping(&mut self, net: &mut Net, pair: usize) {
        let p = &mut self.pairs[pair];
        p.seq += 1;
        self.sent += 1;
        self.msg.clear();
        self.msg
            .extend_from_slice(br#"{"type":"signal","roomId":""#);
        self.msg.extend_from_slice(&p.room);
        let _ = write!(
            self.msg,
            r##"","signal":{{"type":"offer","sdp":"#{pair}:{}:{}#"}}}}"##,
            p.seq,
            now_us()
        );
        net.send_text(2 * pair, &self.msg);
    }
}

impl Handler for Relay {
    fn on_open(&mut self, net: &mut Net, id: usize) {
        if id.is_multiple_of(2) {
            net.send_text(id, br#"{"type":"create-room"}"#);
        } else {
            self.pairs[id / 2].guest_open = true;
            self.join(net, id / 2);
        }
    }

    fn on_text(&mut self, net: &mut Net, id: usize, text: &[u8]) {
        let pair = id / 2;
        if let Some([_, _, sent]) = stamp(text) {
            if id % 2 == 1 {
                net.send_text(id, text); // the guest answers with the same message
            } else {
                self.trips += 1;
                self.rtt.record(net.read_time().saturating_sub(sent));
                if self.running {
                    self.ping(net, pair);
                }
            }
        } else if is_type(text, "room-created") {
            self.pairs[pair].room = str_field(text, "roomId").unwrap_or_default().to_vec();
            self.join(net, pair);
        } else if is_type(text, "peer-joined") {
            if id.is_multiple_of(2) && !self.pairs[pair].ready {
                self.pairs[pair].ready = true;
                self.ready += 1;
            }
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
    println!(
        "relay [{}] {} pairs, one signal in flight per pair, {:.1} s",
        target.label,
        cfg.pairs,
        cfg.duration_us as f64 / 1e6
    );
    let mut net = Net::new(2 * cfg.pairs, target.tls.clone()).map_err(|e| e.to_string())?;
    let mut r = Relay {
        pairs: (0..cfg.pairs)
            .map(|_| Pair {
                room: Vec::new(),
                guest_open: false,
                ready: false,
                seq: 0,
            })
            .collect(),
        ready: 0,
        running: false,
        sent: 0,
        trips: 0,
        rtt: Histogram::default(),
        problems: Problems::default(),
        msg: Vec::with_capacity(256),
    };
    for id in 0..2 * cfg.pairs {
        net.connect(id, target.node(id % 2 == 1), target.source(id), &cfg.path)
            .map_err(|e| format!("connect: {e}"))?;
    }
    let setup_deadline = now_us() + 30_000_000;
    while r.ready < cfg.pairs {
        net.turn(&mut r, Duration::from_millis(5))
            .map_err(|e| e.to_string())?;
        if now_us() > setup_deadline || r.problems.closed > 0 {
            return Err(format!(
                "setup failed: {} of {} pairs ready, {} closed, first error {:?}",
                r.ready,
                cfg.pairs,
                r.problems.closed,
                r.problems.first()
            ));
        }
    }
    println!("  {} pairs ready; running", cfg.pairs);
    r.running = true;
    let cpu = CpuWindow::start(target.server_pid.as_deref());
    let start = now_us();
    for pair in 0..cfg.pairs {
        r.ping(&mut net, pair);
    }
    let end = start + cfg.duration_us;
    let mut next_report = start + 1_000_000;
    let mut last = 0;
    while now_us() < end {
        let now = now_us();
        if now >= next_report {
            println!(
                "  {:>5.1} s  {:>10} round trips/s",
                (now - start) as f64 / 1e6,
                r.trips - last
            );
            last = r.trips;
            next_report += 1_000_000;
        }
        let timeout = end.min(next_report).saturating_sub(now);
        net.turn(&mut r, Duration::from_micros(timeout))
            .map_err(|e| e.to_string())?;
    }
    r.running = false;
    let elapsed = (now_us() - start) as f64 / 1e6;
    let mut json = summary("relay", target);
    report_cpu(&cpu, &mut json);
    let trips = r.trips;
    // The signals still in flight: wait for them (up to 5 s).
    let drain_end = now_us() + 5_000_000;
    while r.trips < r.sent && r.problems.closed == 0 && now_us() < drain_end {
        net.turn(&mut r, Duration::from_millis(10))
            .map_err(|e| e.to_string())?;
    }
    let lost = r.sent.saturating_sub(r.trips);
    // The rate counts the round trips in the window only.
    let rate = trips as f64 / elapsed;
    let (p50, p99) = (r.rtt.quantile(0.5), r.rtt.quantile(0.99));
    println!(
        "  {:.0} round trips/s; RTT p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; errors {}, closed {}",
        rate,
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        r.rtt.max() as f64 / 1e3,
        r.problems.errors,
        r.problems.closed
    );
    println!("  sent {}, lost {lost}", r.sent);
    if let Some(e) = &r.problems.first {
        println!("  first error: {e}");
    }
    json.insert("pairs".into(), cfg.pairs.into());
    json.insert("seconds".into(), round2(elapsed).into());
    json.insert("round_trips".into(), trips.into());
    json.insert("round_trips_per_s".into(), rate.round().into());
    per_server_cpu(&mut json, "round_trips", rate);
    json.insert("rtt_p50_ms".into(), round2(p50 as f64 / 1e3).into());
    json.insert("rtt_p99_ms".into(), round2(p99 as f64 / 1e3).into());
    json.insert("sent".into(), r.sent.into());
    json.insert("lost".into(), lost.into());
    json.insert("errors".into(), r.problems.errors.into());
    Ok(json)
}
