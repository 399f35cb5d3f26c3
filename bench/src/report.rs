//! The side-by-side table: reads the JSON summary lines each server's runs
//! left in `DIR/<server>.jsonl` and prints one row per figure with the
//! ratios roomd/node and roomd/limit. A scenario may have run several
//! times per server (`run.sh` runs every scenario in rounds): a cell is
//! the median over those runs.

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
        label: "fanout 100 msg/s: server CPU µs per delivery",
        scenario: "fanout",
        mode: Some("rate"),
        key: "server_cpu_us_per_delivery",
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

/// Width of the first column.
const LABEL_W: usize = 44;

/// Summaries of one server's runs.
fn load(dir: &Path, server: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{server}.jsonl")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The runs among `runs` of the scenario (and mode) `row` reads.
fn runs_of<'a>(runs: &'a [Value], row: &Row) -> Vec<&'a Value> {
    runs.iter()
        .filter(|v| v["scenario"] == row.scenario && row.mode.is_none_or(|m| v["mode"] == m))
        .collect()
}

/// The first row of each scenario (and mode), in table order.
fn scenarios() -> Vec<&'static Row> {
    let mut firsts: Vec<&Row> = Vec::new();
    for row in ROWS {
        if !firsts
            .iter()
            .any(|f| f.scenario == row.scenario && f.mode == row.mode)
        {
            firsts.push(row);
        }
    }
    firsts
}

/// A scenario's name in the table: its first row's label up to the colon.
fn scenario_label(row: &Row) -> &'static str {
    row.label.split(':').next().unwrap_or(row.label)
}

/// The median (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The median of `key` over the runs that have it.
fn median_of(runs: &[&Value], key: &str) -> Option<f64> {
    median(runs.iter().filter_map(|v| v[key].as_f64()).collect())
}

/// One cell of the table.
struct Cell {
    /// The median over the runs.
    value: f64,
    /// Whether most of those runs were client-bound.
    bound: bool,
}

/// The cell for `key` over `runs` (those without the figure don't count).
fn cell(runs: &[&Value], key: &str) -> Option<Cell> {
    let with: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|v| v[key].as_f64().is_some())
        .collect();
    let bound = with.iter().filter(|v| v["client_bound"] == true).count();
    Some(Cell {
        value: median_of(&with, key)?,
        bound: 2 * bound > with.len(),
    })
}

fn fmt(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The table as text; a figure most of whose runs were client-bound is
/// marked `*`.
pub fn table(dir: &Path) -> String {
    let runs: Vec<Vec<Value>> = SERVERS.iter().map(|s| load(dir, s)).collect();
    let mut out = format!(
        "| {:<LABEL_W$} | {:>11} | {:>11} | {:>11} | {:>10} | {:>11} |\n|{}|{}|{}|{}|{}|{}|\n",
        "figure",
        "roomd",
        "node",
        "limit",
        "roomd/node",
        "roomd/limit",
        "-".repeat(LABEL_W + 2),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(12),
        "-".repeat(13)
    );
    for row in ROWS {
        let cells: Vec<Option<Cell>> = runs
            .iter()
            .map(|r| cell(&runs_of(r, row), row.key))
            .collect();
        let show = |c: &Option<Cell>| match c {
            None => "-".to_string(),
            Some(c) => format!("{}{}", fmt(c.value), if c.bound { "*" } else { "" }),
        };
        let ratio = |a: &Option<Cell>, b: &Option<Cell>| match (a, b) {
            (Some(a), Some(b)) if b.value != 0.0 => format!("{:.2}", a.value / b.value),
            _ => "-".to_string(),
        };
        out += &format!(
            "| {:<LABEL_W$} | {:>11} | {:>11} | {:>11} | {:>10} | {:>11} |\n",
            row.label,
            show(&cells[0]),
            show(&cells[1]),
            show(&cells[2]),
            ratio(&cells[0], &cells[1]),
            ratio(&cells[0], &cells[2]),
        );
    }
    out += "(each cell is the median over its runs; * = most of them client-bound:\n";
    out += " the load generator used over 80% of its core)\n";
    out += &run_counts(&runs);
    out += "\n";
    out += &cpu_table(&runs);
    out
}

/// One line: how many runs each scenario had per server, e.g. `idle: 3`,
/// or `idle: 3/2/3` (roomd/node/limit) when the servers differ.
fn run_counts(runs: &[Vec<Value>]) -> String {
    let mut parts = Vec::new();
    for row in scenarios() {
        let counts: Vec<usize> = runs.iter().map(|r| runs_of(r, row).len()).collect();
        let label = scenario_label(row);
        if counts.iter().all(|&c| c == 0) {
            continue;
        }
        if counts.iter().all(|&c| c == counts[0]) {
            parts.push(format!("{label}: {}", counts[0]));
        } else {
            let each: Vec<String> = counts.iter().map(usize::to_string).collect();
            parts.push(format!(
                "{label}: {} ({})",
                each.join("/"),
                SERVERS.join("/")
            ));
        }
    }
    format!("runs per server: {}\n", parts.join("; "))
}

/// Where each scenario spent its CPU: server / generator, % of one core
/// (medians over the runs).
fn cpu_table(runs: &[Vec<Value>]) -> String {
    let mut out = format!(
        "| {:<LABEL_W$} | {:>11} | {:>11} | {:>11} |\n|{}|{}|{}|{}|\n",
        "cpu % of a core: server / generator",
        "roomd",
        "node",
        "limit",
        "-".repeat(LABEL_W + 2),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(13)
    );
    for row in scenarios() {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| {
                let these = runs_of(r, row);
                if these.is_empty() {
                    return "-".to_string();
                }
                let pct = |k: &str| {
                    median_of(&these, k).map_or("?".to_string(), |x| format!("{:.0}", x * 100.0))
                };
                format!("{} / {}", pct("server_cpu"), pct("client_cpu"))
            })
            .collect();
        out += &format!(
            "| {:<LABEL_W$} | {:>11} | {:>11} | {:>11} |\n",
            scenario_label(row),
            cells[0],
            cells[1],
            cells[2]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test's JSON files.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("roomd-bench-report-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The table line whose label starts with `label`.
    fn line<'a>(table: &'a str, label: &str) -> &'a str {
        let prefix = format!("| {label}");
        table.lines().find(|l| l.starts_with(&prefix)).unwrap()
    }

    #[test]
    fn builds_rows_and_ratios_from_summaries() {
        let dir = scratch("rows");
        let line_of = |v: f64, bound: bool| {
            format!(r#"{{"scenario":"relay","round_trips_per_s":{v},"client_bound":{bound}}}"#)
        };
        std::fs::write(dir.join("roomd.jsonl"), line_of(90000.0, true)).unwrap();
        std::fs::write(
            dir.join("node.jsonl"),
            format!("noise\n{}\n", line_of(20000.0, false)),
        )
        .unwrap();
        let t = table(&dir);
        let relay = line(&t, "relay 100 pairs: round trips/s");
        assert!(relay.contains("90000*"), "{relay}");
        assert!(relay.contains("20000"), "{relay}");
        assert!(relay.contains("4.50"), "{relay}");
        let storm = line(&t, "storm: rejoined");
        assert!(storm.contains(" - "), "{storm}");
        assert!(
            t.contains("runs per server: relay 100 pairs: 1/1/0 (roomd/node/limit)\n"),
            "{t}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5.0]), Some(5.0));
        assert_eq!(median(vec![300.0, 100.0, 200.0]), Some(200.0));
        assert_eq!(median(vec![40.0, 10.0, 30.0, 20.0]), Some(25.0));
    }

    #[test]
    fn cells_take_the_median_and_the_majority_of_bound_runs() {
        let dir = scratch("median");
        let idle = |rate: f64, bound: bool, server_cpu: f64, client_cpu: f64| {
            format!(
                r#"{{"scenario":"idle","handshakes_per_s":{rate},"client_bound":{bound},"server_cpu":{server_cpu},"client_cpu":{client_cpu}}}"#
            )
        };
        // roomd: three rounds, two of them client-bound, out of order.
        let roomd = [
            idle(18000.0, true, 0.6, 0.9),
            idle(15000.0, false, 0.5, 0.7),
            idle(21000.0, true, 0.7, 0.95),
        ];
        std::fs::write(dir.join("roomd.jsonl"), roomd.join("\n")).unwrap();
        // node: two rounds, one bound: no majority.
        let node = [idle(4000.0, true, 0.9, 0.8), idle(5000.0, false, 1.0, 0.3)];
        std::fs::write(dir.join("node.jsonl"), node.join("\n")).unwrap();
        // limit: the last run is not the median.
        let limit = [
            idle(20000.0, false, 0.6, 0.5),
            idle(24000.0, false, 0.62, 0.5),
            idle(30000.0, false, 0.64, 0.5),
            idle(9000.0, false, 0.2, 0.1),
        ];
        std::fs::write(dir.join("limit.jsonl"), limit.join("\n")).unwrap();

        let t = table(&dir);
        let cells: Vec<&str> = line(&t, "idle: handshakes/s")
            .split('|')
            .map(str::trim)
            .collect();
        // "", label, roomd, node, limit, roomd/node, roomd/limit, ""
        assert_eq!(cells[2], "18000*", "{t}");
        assert_eq!(cells[3], "4500", "{t}");
        assert_eq!(cells[4], "22000", "{t}");
        assert_eq!(cells[5], "4.00", "{t}");
        assert_eq!(cells[6], "0.82", "{t}");
        assert!(t.contains("idle: 3/2/4 (roomd/node/limit)"), "{t}");
        let cpu: Vec<&str> = t
            .lines()
            .rfind(|l| l.starts_with("| idle "))
            .unwrap()
            .split('|')
            .map(str::trim)
            .collect();
        assert_eq!(&cpu[2..5], ["60 / 90", "95 / 55", "61 / 50"], "{t}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
