//! The side-by-side table: reads the JSON summary lines each server's runs
//! left in `DIR/<server>.jsonl` and prints one row per figure with the
//! ratios roomd/node and roomd/limit.

use serde_json::Value;
use std::path::Path;

/// One row of the table: a figure taken from one scenario's summary.
struct Row {
    label: &'static str,
    scenario: &'static str,
    mode: Option<&'static str>,
    key: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        label: "fanout 1000x1 64B full: deliveries/s",
        scenario: "fanout",
        mode: Some("full"),
        key: "deliveries_per_s",
    },
    Row {
        label: "  per second of server CPU",
        scenario: "fanout",
        mode: Some("full"),
        key: "deliveries_per_server_cpu_s",
    },
    Row {
        label: "fanout 1000x1 64B full: lost",
        scenario: "fanout",
        mode: Some("full"),
        key: "lost",
    },
    Row {
        label: "fanout 1000x1 64B full: p99 ms",
        scenario: "fanout",
        mode: Some("full"),
        key: "p99_ms",
    },
    Row {
        label: "fanout 100 msg/s into 1000: p50 ms",
        scenario: "fanout",
        mode: Some("rate"),
        key: "p50_ms",
    },
    Row {
        label: "fanout 100 msg/s into 1000: p99 ms",
        scenario: "fanout",
        mode: Some("rate"),
        key: "p99_ms",
    },
    Row {
        label: "fanout 100 msg/s into 1000: max ms",
        scenario: "fanout",
        mode: Some("rate"),
        key: "max_ms",
    },
    Row {
        label: "fanout 100 msg/s into 1000: lost",
        scenario: "fanout",
        mode: Some("rate"),
        key: "lost",
    },
    Row {
        label: "relay 100 pairs: round trips/s",
        scenario: "relay",
        mode: None,
        key: "round_trips_per_s",
    },
    Row {
        label: "  per second of server CPU",
        scenario: "relay",
        mode: None,
        key: "round_trips_per_server_cpu_s",
    },
    Row {
        label: "relay 100 pairs: RTT p50 ms",
        scenario: "relay",
        mode: None,
        key: "rtt_p50_ms",
    },
    Row {
        label: "relay 100 pairs: RTT p99 ms",
        scenario: "relay",
        mode: None,
        key: "rtt_p99_ms",
    },
    Row {
        label: "idle: connections opened",
        scenario: "idle",
        mode: None,
        key: "opened",
    },
    Row {
        label: "idle: handshakes/s",
        scenario: "idle",
        mode: None,
        key: "handshakes_per_s",
    },
    Row {
        label: "  per second of server CPU",
        scenario: "idle",
        mode: None,
        key: "handshakes_per_server_cpu_s",
    },
    Row {
        label: "idle: server RSS KiB/connection",
        scenario: "idle",
        mode: None,
        key: "rss_per_conn_kib",
    },
    Row {
        label: "storm: rejoined",
        scenario: "storm",
        mode: None,
        key: "rejoined",
    },
    Row {
        label: "storm: ms until all rejoined",
        scenario: "storm",
        mode: None,
        key: "rejoin_ms",
    },
];

const SERVERS: [&str; 3] = ["roomd", "node", "limit"];

/// Summaries of one server's runs.
fn load(dir: &Path, server: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{server}.jsonl")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn find<'a>(runs: &'a [Value], row: &Row) -> Option<&'a Value> {
    runs.iter()
        .rev()
        .find(|v| v["scenario"] == row.scenario && row.mode.is_none_or(|m| v["mode"] == m))
}

fn fmt(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The table as text; a figure from a client-bound run is marked `*`.
pub fn table(dir: &Path) -> String {
    let runs: Vec<Vec<Value>> = SERVERS.iter().map(|s| load(dir, s)).collect();
    let mut out = format!(
        "| {:<38} | {:>11} | {:>11} | {:>11} | {:>10} | {:>11} |\n|{}|{}|{}|{}|{}|{}|\n",
        "figure",
        "roomd",
        "node",
        "limit",
        "roomd/node",
        "roomd/limit",
        "-".repeat(40),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(12),
        "-".repeat(13)
    );
    for row in ROWS {
        let cells: Vec<Option<(f64, bool)>> = runs
            .iter()
            .map(|r| {
                let v = find(r, row)?;
                Some((v[row.key].as_f64()?, v["client_bound"] == true))
            })
            .collect();
        let show = |c: &Option<(f64, bool)>| match c {
            None => "-".to_string(),
            Some((v, bound)) => format!("{}{}", fmt(*v), if *bound { "*" } else { "" }),
        };
        let ratio = |a: &Option<(f64, bool)>, b: &Option<(f64, bool)>| match (a, b) {
            (Some((a, _)), Some((b, _))) if *b != 0.0 => format!("{:.2}", a / b),
            _ => "-".to_string(),
        };
        out += &format!(
            "| {:<38} | {:>11} | {:>11} | {:>11} | {:>10} | {:>11} |\n",
            row.label,
            show(&cells[0]),
            show(&cells[1]),
            show(&cells[2]),
            ratio(&cells[0], &cells[1]),
            ratio(&cells[0], &cells[2]),
        );
    }
    out += "(* = the load generator used over 80% of its core: client-bound)\n\n";
    out += &cpu_table(&runs);
    out
}

/// Where each run spent its CPU: server / generator, % of one core.
fn cpu_table(runs: &[Vec<Value>]) -> String {
    let mut out = format!(
        "| {:<38} | {:>11} | {:>11} | {:>11} |\n|{}|{}|{}|{}|\n",
        "cpu % of a core: server / generator",
        "roomd",
        "node",
        "limit",
        "-".repeat(40),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(13)
    );
    let mut seen = Vec::new();
    for row in ROWS {
        if seen.contains(&(row.scenario, row.mode)) {
            continue;
        }
        seen.push((row.scenario, row.mode));
        let cells: Vec<String> = runs
            .iter()
            .map(|r| match find(r, row) {
                None => "-".to_string(),
                Some(v) => {
                    let pct = |k: &str| {
                        v[k].as_f64()
                            .map_or("?".to_string(), |x| format!("{:.0}", x * 100.0))
                    };
                    format!("{} / {}", pct("server_cpu"), pct("client_cpu"))
                }
            })
            .collect();
        let label = row.label.split(':').next().unwrap_or(row.label);
        out += &format!(
            "| {:<38} | {:>11} | {:>11} | {:>11} |\n",
            label, cells[0], cells[1], cells[2]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_rows_and_ratios_from_summaries() {
        let dir = std::env::temp_dir().join(format!("roomd-bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |v: f64, bound: bool| {
            format!(r#"{{"scenario":"relay","round_trips_per_s":{v},"client_bound":{bound}}}"#)
        };
        std::fs::write(dir.join("roomd.jsonl"), line(90000.0, true)).unwrap();
        std::fs::write(
            dir.join("node.jsonl"),
            format!("noise\n{}\n", line(20000.0, false)),
        )
        .unwrap();
        let t = table(&dir);
        let relay = t.lines().find(|l| l.contains("round trips/s")).unwrap();
        assert!(relay.contains("90000*"), "{relay}");
        assert!(relay.contains("20000"), "{relay}");
        assert!(relay.contains("4.50"), "{relay}");
        let storm = t.lines().find(|l| l.contains("storm: rejoined")).unwrap();
        assert!(storm.contains(" - "), "{storm}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
