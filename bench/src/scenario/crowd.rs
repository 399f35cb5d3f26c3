//! `idle` and `storm`: many `stream` connections in rooms of ten.
//!
//! `idle` opens N connections (a bounded number of handshakes in flight,
//! spread over source addresses), joins each to its room, holds, and reads
//! the server's resident memory per connection. With `--shard i/n` several
//! processes share the N connections (one process may hold only as many
//! sockets as its open-file limit); they meet through files in `--sync-dir`
//! and shard 0 prints the combined figures.
//!
//! `storm` opens and joins N connections the same way, resets them all at
//! once, reconnects them all at once and times until every one has
//! rejoined its room; a connection that fails is tried again 100 ms later,
//! as a client with auto-reconnect would.

use super::{Problems, Summary, Target, is_type, per_server_cpu, summary};
use crate::args::Args;
use crate::net::{Handler, Net};
use crate::stats::{CpuWindow, epoch_ms, now_us, report_cpu, report_cpu_shards, round2, rss_kib};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of an idle or storm run.
pub struct Config {
    total: usize,
    shard: usize,
    shards: usize,
    room_size: usize,
    in_flight: usize,
    hold_us: u64,
    timeout_us: u64,
    path: String,
    sync_dir: Option<PathBuf>,
}

impl Config {
    /// Reads `--conns --shard i/n --room-size --in-flight --hold --timeout
    /// --path --sync-dir`.
    pub fn from_args(args: &Args) -> Result<Config, String> {
        let (shard, shards) = match args.str("shard") {
            None => (0, 1),
            Some(s) => {
                let bad = || format!("--shard: expected i/n, got {s:?}");
                let (i, n) = s.split_once('/').ok_or_else(bad)?;
                let (i, n): (usize, usize) =
                    (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
                if n == 0 || i >= n {
                    return Err(bad());
                }
                (i, n)
            }
        };
        if shards > 1 && args.str("sync-dir").is_none() {
            return Err("--shard needs --sync-dir".into());
        }
        Ok(Config {
            total: args.get("conns", 1000)?,
            shard,
            shards,
            room_size: args.get("room-size", 10)?.max(1),
            in_flight: args.get("in-flight", 256)?.max(1),
            hold_us: (args.get("hold", 2.0)? * 1e6) as u64,
            timeout_us: (args.get("timeout", 30.0)? * 1e6) as u64,
            path: args.str("path").unwrap_or("/stream").to_string(),
            sync_dir: args.str("sync-dir").map(PathBuf::from),
        })
    }

    /// The global indices this shard connects.
    fn range(&self) -> std::ops::Range<usize> {
        self.total * self.shard / self.shards..self.total * (self.shard + 1) / self.shards
    }
}

/// Connection state, per local id.
struct Crowd<'a> {
    cfg: &'a Config,
    first: usize,
    joined: Vec<bool>,
    joined_count: usize,
    opened: usize,
    last_open_us: u64,
    last_join_us: u64,
    problems: Problems,
    /// Whether a failed connection is tried again (as a client with
    /// auto-reconnect would), and which are due when.
    reconnect: bool,
    retry: Vec<(usize, u64)>,
}

/// How long a client waits before trying a failed connection again.
const RETRY_DELAY_US: u64 = 100_000;

impl Handler for Crowd<'_> {
    fn on_open(&mut self, net: &mut Net, id: usize) {
        self.opened += 1;
        self.last_open_us = now_us();
        let g = self.first + id;
        let room = g / self.cfg.room_size;
        let join = format!(
            r#"{{"type":"join-room","roomId":"r{room}","userId":"u{g}","userName":"n{g}"}}"#
        );
        net.send_text(id, join.as_bytes());
    }

    fn on_text(&mut self, _net: &mut Net, id: usize, text: &[u8]) {
        if is_type(text, "room-joined") {
            if !self.joined[id] {
                self.joined[id] = true;
                self.joined_count += 1;
                self.last_join_us = now_us();
            }
        } else if is_type(text, "error") {
            self.problems.error_reply(text);
        }
    }

    fn on_close(&mut self, _net: &mut Net, id: usize, why: &str) {
        self.problems.closed(id, why);
        if self.joined[id] {
            self.joined[id] = false;
            self.joined_count -= 1;
        }
        if self.reconnect {
            self.retry.push((id, now_us() + RETRY_DELAY_US));
        }
    }
}

impl Crowd<'_> {
    fn new(cfg: &Config) -> Crowd<'_> {
        let range = cfg.range();
        Crowd {
            cfg,
            first: range.start,
            joined: vec![false; range.len()],
            joined_count: 0,
            opened: 0,
            last_open_us: 0,
            last_join_us: 0,
            problems: Problems::default(),
            reconnect: false,
            retry: Vec::new(),
        }
    }

    /// Connects every local id with at most `in_flight` not yet joined, and
    /// returns when all have joined, or the deadline passed, or a
    /// connection failed (unless failed ones are retried).
    fn connect_all(
        &mut self,
        net: &mut Net,
        target: &Target,
        in_flight: usize,
        deadline: u64,
    ) -> Result<(), String> {
        let n = self.joined.len();
        let mut started = 0;
        while self.joined_count < n
            && now_us() < deadline
            && (self.reconnect || self.problems.closed == 0)
        {
            let now = now_us();
            let mut i = 0;
            while i < self.retry.len() {
                let (id, due) = self.retry[i];
                if due > now {
                    i += 1;
                    continue;
                }
                self.retry.swap_remove(i);
                let g = self.first + id;
                net.connect(id, target.addr, target.source(g), &self.cfg.path)
                    .map_err(|e| format!("reconnect #{id}: {e}"))?;
            }
            while started < n && started - self.joined_count.min(started) < in_flight {
                let g = self.first + started;
                net.connect(started, target.addr, target.source(g), &self.cfg.path)
                    .map_err(|e| format!("connect #{started}: {e}"))?;
                started += 1;
            }
            net.turn(self, Duration::from_millis(2))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// A file in the sync directory.
fn sync_file(cfg: &Config, name: &str) -> Option<PathBuf> {
    cfg.sync_dir.as_ref().map(|d| d.join(name))
}

/// Waits (bounded) until `path` exists.
fn wait_for(net: &mut Net, h: &mut Crowd, path: &std::path::Path, limit_us: u64) -> bool {
    let deadline = now_us() + limit_us;
    while now_us() < deadline {
        if path.exists() {
            return true;
        }
        let _ = net.turn(h, Duration::from_millis(20));
    }
    false
}

/// Runs `idle` and prints its lines (shard 0 prints the combined figures).
pub fn run_idle(target: &Target, cfg: &Config) -> Result<Summary, String> {
    let range = cfg.range();
    println!(
        "idle [{}] {} connections (shard {}/{}: {}), rooms of {}, hold {:.1} s",
        target.label,
        cfg.total,
        cfg.shard,
        cfg.shards,
        range.len(),
        cfg.room_size,
        cfg.hold_us as f64 / 1e6
    );
    let pid = target.server_pid.as_deref();
    let rss_before = pid.and_then(rss_kib);
    let mut net = Net::new(range.len(), target.tls.clone()).map_err(|e| e.to_string())?;
    let mut crowd = Crowd::new(cfg);
    let go = sync_file(cfg, "go");
    if let Some(go) = &go {
        if cfg.shard == 0 {
            std::fs::write(go, b"go").map_err(|e| e.to_string())?;
        } else if !wait_for(&mut net, &mut crowd, go, 20_000_000) {
            return Err("shard 0 never started".into());
        }
    }
    let cpu = CpuWindow::start(pid);
    let start_ms = epoch_ms();
    let start = now_us();
    crowd.connect_all(&mut net, target, cfg.in_flight, start + cfg.timeout_us)?;
    let used = cpu.fractions();
    let opened = crowd.opened;
    let connect_s = (crowd.last_open_us.max(start + 1) - start) as f64 / 1e6;
    let end_ms = start_ms + (crowd.last_open_us.saturating_sub(start)) / 1000;
    println!(
        "  {} of {} opened in {:.2} s ({:.0} handshakes/s), {} joined, {} closed, {} errors {}",
        opened,
        range.len(),
        connect_s,
        opened as f64 / connect_s,
        crowd.joined_count,
        crowd.problems.closed,
        crowd.problems.errors,
        crowd.problems.first()
    );
    let mut json = summary("idle", target);
    let mine = serde_json::json!({
        "opened": opened, "joined": crowd.joined_count, "start_ms": start_ms, "end_ms": end_ms,
        "client_cpu": round2(used.0)
    });

    if cfg.shard != 0 {
        report_cpu_shards(used, &[], &mut json);
        let done = sync_file(cfg, &format!("shard-{}.done", cfg.shard));
        if let Some(done) = done {
            std::fs::write(&done, mine.to_string()).map_err(|e| e.to_string())?;
        }
        if let Some(release) = sync_file(cfg, "release") {
            wait_for(&mut net, &mut crowd, &release, cfg.timeout_us + 30_000_000);
        }
        json.insert("scenario".into(), "idle-shard".into());
        json.insert("shard".into(), cfg.shard.into());
        json.insert("opened".into(), opened.into());
        return Ok(json);
    }

    // Shard 0: gather the others, hold, read the server's memory.
    let mut shards = vec![mine];
    for k in 1..cfg.shards {
        if let Some(path) = sync_file(cfg, &format!("shard-{k}.done")) {
            if !wait_for(&mut net, &mut crowd, &path, cfg.timeout_us + 10_000_000) {
                return Err(format!("shard {k} never finished"));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            shards.push(serde_json::from_str(&text).map_err(|e| e.to_string())?);
        }
    }
    let hold_end = now_us() + cfg.hold_us;
    while now_us() < hold_end {
        net.turn(&mut crowd, Duration::from_millis(20))
            .map_err(|e| e.to_string())?;
    }
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or_default();
    let opened_all: u64 = shards.iter().map(|s| field(s, "opened")).sum();
    let joined_all: u64 = shards.iter().map(|s| field(s, "joined")).sum();
    let first_ms = shards
        .iter()
        .map(|s| field(s, "start_ms"))
        .min()
        .unwrap_or(0);
    let last_ms = shards.iter().map(|s| field(s, "end_ms")).max().unwrap_or(0);
    let seconds = (last_ms.saturating_sub(first_ms)).max(1) as f64 / 1e3;
    let rate = opened_all as f64 / seconds;
    let rss_after = pid.and_then(rss_kib);
    println!(
        "  all shards: {opened_all} of {} opened, {joined_all} joined in {seconds:.2} s: {rate:.0} handshakes/s",
        cfg.total
    );
    // The shards share the generator core: it was as busy as their sum.
    let others: Vec<f64> = shards[1..]
        .iter()
        .map(|s| {
            s.get("client_cpu")
                .and_then(Value::as_f64)
                .unwrap_or_default()
        })
        .collect();
    report_cpu_shards(used, &others, &mut json);
    json.insert("conns".into(), cfg.total.into());
    json.insert("opened".into(), opened_all.into());
    json.insert("joined".into(), joined_all.into());
    json.insert("seconds".into(), round2(seconds).into());
    json.insert("handshakes_per_s".into(), rate.round().into());
    per_server_cpu(&mut json, "handshakes", rate);
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let per_conn = after.saturating_sub(before) as f64 * 1024.0 / opened_all.max(1) as f64;
        println!(
            "  server RSS {before} KiB before, {after} KiB after: {:.2} KiB per connection",
            per_conn / 1024.0
        );
        json.insert("rss_before_kib".into(), before.into());
        json.insert("rss_after_kib".into(), after.into());
        json.insert("rss_per_conn_kib".into(), round2(per_conn / 1024.0).into());
    }
    if let Some(release) = sync_file(cfg, "release") {
        let _ = std::fs::write(release, b"release");
    }
    Ok(json)
}

/// Runs `storm` and prints its lines.
pub fn run_storm(target: &Target, cfg: &Config) -> Result<Summary, String> {
    let n = cfg.range().len();
    println!(
        "storm [{}] {n} connections in rooms of {}: reset all, reconnect all",
        target.label, cfg.room_size
    );
    let mut net = Net::new(n, target.tls.clone()).map_err(|e| e.to_string())?;
    let mut crowd = Crowd::new(cfg);
    let start = now_us();
    crowd.connect_all(&mut net, target, cfg.in_flight, start + cfg.timeout_us)?;
    if crowd.joined_count < n {
        return Err(format!(
            "setup: only {} of {n} joined: {}",
            crowd.joined_count,
            crowd.problems.first()
        ));
    }
    println!(
        "  {n} joined in {:.2} s; settling",
        (now_us() - start) as f64 / 1e6
    );
    let settle = now_us() + cfg.hold_us.min(1_000_000);
    while now_us() < settle {
        net.turn(&mut crowd, Duration::from_millis(10))
            .map_err(|e| e.to_string())?;
    }

    let cpu = CpuWindow::start(target.server_pid.as_deref());
    let drop_at = now_us();
    for id in 0..n {
        net.abort(id);
        crowd.joined[id] = false;
    }
    crowd.joined_count = 0;
    crowd.opened = 0;
    crowd.problems.closed = 0;
    crowd.reconnect = true;
    // Everyone at once: the in-flight bound is the whole crowd.
    crowd.connect_all(&mut net, target, n, drop_at + cfg.timeout_us)?;
    let took_ms = (crowd.last_join_us.max(drop_at) - drop_at) as f64 / 1e3;
    let all = crowd.joined_count == n;
    let mut json = summary("storm", target);
    report_cpu(&cpu, &mut json);
    println!(
        "  {} of {n} rejoined {} {:.0} ms after the drop{}",
        crowd.joined_count,
        if all { "all" } else { "(NOT all)" },
        took_ms,
        if crowd.problems.closed > 0 {
            format!(
                "; {} attempts failed and were retried after {} ms (first: {})",
                crowd.problems.closed,
                RETRY_DELAY_US / 1000,
                crowd.problems.first()
            )
        } else {
            String::new()
        }
    );
    json.insert("conns".into(), n.into());
    json.insert("rejoined".into(), crowd.joined_count.into());
    json.insert("all_rejoined".into(), all.into());
    json.insert("failed_attempts".into(), crowd.problems.closed.into());
    json.insert("rejoin_ms".into(), round2(took_ms).into());
    Ok(json)
}
