//! Measuring: the clock, a fixed-size latency histogram, CPU time of this
//! process and of the server, and the server's resident memory.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static START: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the first call in this process (monotonic).
#[allow(clippy::disallowed_methods)] // the benchmark's only clock
pub fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Wall-clock milliseconds since the epoch (to line up shard processes).
#[allow(clippy::disallowed_methods)]
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

const SUB: u32 = 64; // sub-buckets per power of two: ~1.5% precision
const BUCKETS: usize = 64 * 60;

/// Log-linear histogram of microsecond values; fixed size, no allocation
/// per sample.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < 2 * SUB as u64 {
        return v as usize;
    }
    let p = 63 - v.leading_zeros(); // >= 7
    let shift = p - 6;
    (shift * SUB) as usize + (v >> shift) as usize
}

fn bucket_value(i: usize) -> u64 {
    if i < 2 * SUB as usize {
        return i as u64;
    }
    let shift = (i / SUB as usize - 1) as u32;
    let m = (i % SUB as usize) as u64 + SUB as u64;
    (m << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), to about 1.5%; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for
/// this one), from `/proc/PID/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU use of this process (and of the server, if its pid is known) over a
/// measured window. The server may be several processes (a cluster's
/// nodes and its Redis: pids separated by commas): its figure is their
/// sum, and [`CpuWindow::each`] gives them one by one.
pub struct CpuWindow {
    server_pids: Vec<String>,
    start_us: u64,
    own: f64,
    server: Vec<f64>,
}

impl CpuWindow {
    /// Starts a window now.
    pub fn start(server_pid: Option<&str>) -> CpuWindow {
        let server_pids: Vec<String> = server_pid
            .map(|p| p.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let server = server_pids
            .iter()
            .map(|p| cpu_seconds(p).unwrap_or_default())
            .collect();
        CpuWindow {
            start_us: now_us(),
            own: cpu_seconds("self").unwrap_or_default(),
            server,
            server_pids,
        }
    }

    fn wall(&self) -> f64 {
        (now_us() - self.start_us).max(1) as f64 / 1e6
    }

    /// Fractions of one core each server process used since the start
    /// (empty without a pid; `None` for one that cannot be read).
    pub fn each(&self) -> Vec<Option<f64>> {
        let wall = self.wall();
        self.server_pids
            .iter()
            .zip(&self.server)
            .map(|(pid, start)| cpu_seconds(pid).map(|s| (s - start) / wall))
            .collect()
    }

    /// Fractions of one core used since the start: (own, server if known;
    /// the sum over its processes).
    pub fn fractions(&self) -> (f64, Option<f64>) {
        let own = (cpu_seconds("self").unwrap_or_default() - self.own) / self.wall();
        let each = self.each();
        let server = if each.is_empty() {
            None
        } else {
            each.into_iter().sum::<Option<f64>>()
        };
        (own, server)
    }
}

/// Prints the CPU line (flagging a client-bound run) and adds the fields to
/// the scenario's JSON object.
pub fn report_cpu(cpu: &CpuWindow, json: &mut serde_json::Map<String, serde_json::Value>) {
    let each = cpu.each();
    report_cpu_shards(cpu.fractions(), &[], json);
    if each.len() > 1 {
        // A server of several processes: each one's share, in the order
        // of --server-pid.
        let shares: Vec<String> = each
            .iter()
            .map(|f| f.map_or("?".to_string(), |f| format!("{:.0}%", f * 100.0)))
            .collect();
        println!("  server cpu per process: {}", shares.join(" + "));
        let values: Vec<serde_json::Value> = each
            .iter()
            .map(|f| f.map_or(serde_json::Value::Null, |f| round2(f).into()))
            .collect();
        json.insert("server_cpu_each".into(), values.into());
    }
}

/// [`report_cpu`] for a run split over several generator processes on the
/// same core: `used` is this process's [`CpuWindow::fractions`], `others`
/// the other shards' own generator fractions. The generator figure (and
/// whether the run was client-bound) is the sum over all shards.
pub fn report_cpu_shards(
    used: (f64, Option<f64>),
    others: &[f64],
    json: &mut serde_json::Map<String, serde_json::Value>,
) {
    let (own, server) = used;
    let generator = own + others.iter().sum::<f64>();
    let bound = generator > 0.8;
    let shards = if others.is_empty() {
        String::new()
    } else {
        format!(" ({} shards)", others.len() + 1)
    };
    let server_text = server.map_or(String::new(), |s| format!(", server {:.0}%", s * 100.0));
    println!(
        "  cpu: generator {:.0}% of a core{shards}{server_text}{}",
        generator * 100.0,
        if bound { "  [CLIENT-BOUND]" } else { "" }
    );
    json.insert("client_cpu".into(), round2(generator).into());
    json.insert("client_bound".into(), bound.into());
    if let Some(s) = server {
        json.insert("server_cpu".into(), round2(s).into());
    }
}

/// Rounds to two decimals for the JSON output.
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.01, 1_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.count(), 100_000);
    }

    #[test]
    fn small_values_are_exact_and_buckets_are_monotonic() {
        let mut h = Histogram::default();
        h.record(7);
        assert_eq!(h.quantile(0.5), 7);
        let mut last = 0;
        for v in 0..1_000_000u64 {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
        }
    }

    #[test]
    fn shards_generator_cpu_adds_up_and_sets_client_bound() {
        let mut json = serde_json::Map::new();
        report_cpu_shards((0.49, Some(0.6)), &[0.48], &mut json);
        assert_eq!(json["client_cpu"], 0.97);
        assert_eq!(json["client_bound"], true);
        assert_eq!(json["server_cpu"], 0.6);
        report_cpu_shards((0.49, None), &[], &mut json);
        assert_eq!(json["client_cpu"], 0.49);
        assert_eq!(json["client_bound"], false);
    }

    #[test]
    fn reads_own_cpu_and_rss() {
        assert!(cpu_seconds("self").is_some());
        assert!(rss_kib("self").unwrap() > 0);
    }

    #[test]
    fn a_server_of_several_processes_sums_their_cpu() {
        let me = std::process::id().to_string();
        let cpu = CpuWindow::start(Some(&format!("{me},{me}")));
        let until = now_us() + 50_000;
        let mut x = 0u64;
        while now_us() < until {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let each = cpu.each();
        assert_eq!(each.len(), 2);
        let (_, server) = cpu.fractions();
        let (a, b) = (each[0].unwrap(), each[1].unwrap());
        assert!(
            (server.unwrap() - (a + b)).abs() < 0.2,
            "{each:?} {server:?}"
        );
        assert!(CpuWindow::start(Some("0,self")).fractions().1.is_none());
        assert!(CpuWindow::start(None).each().is_empty());
        let _ = x;
    }
}
