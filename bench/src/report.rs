//! The side-by-side table: reads the JSON summary lines each server's runs
//! left in `DIR/<server>.jsonl` and prints one row per figure with the
//! ratios roomd/node and roomd/limit. A scenario may have run several
//! times per server (`run.sh` runs every scenario in rounds): a cell is
//! the median over those runs. [`tls_table`] does the same for the TLS
//! rows (roomd over TLS, roomd plaintext, Node over TLS) and checks them
//! against issue #12's targets.

use serde_json::Value;
use std::path::Path;

/// One row of the table: a figure taken from one scenario's summary.
#[derive(Clone, Copy)]
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

/// The rows of the TLS table: the main table's full-speed fanout and idle
/// rows (by index into [`ROWS`]), then the handshakes scenario's.
const TLS_ROWS: &[Row] = &[
    ROWS[0],
    ROWS[1],
    ROWS[2],
    ROWS[3],
    ROWS[13],
    ROWS[14],
    ROWS[16],
    Row {
        label: "handshakes: per second",
        scenario: "handshakes",
        mode: None,
        key: "handshakes_per_s",
    },
    Row {
        label: "  per second of server CPU",
        scenario: "handshakes",
        mode: None,
        key: "handshakes_per_server_cpu_s",
    },
    Row {
        label: "handshakes: connect to 101 p99 ms",
        scenario: "handshakes",
        mode: None,
        key: "p99_ms",
    },
];

/// Which servers a table compares, and which ratios it shows: (numerator
/// column, denominator column, header).
struct Layout {
    rows: &'static [Row],
    servers: [&'static str; 3],
    ratios: [(usize, usize, &'static str); 2],
}

const MAIN: Layout = Layout {
    rows: ROWS,
    servers: ["roomd", "node", "limit"],
    ratios: [(0, 1, "roomd/node"), (0, 2, "roomd/limit")],
};

const TLS: Layout = Layout {
    rows: TLS_ROWS,
    servers: ["roomd-tls", "roomd-plain", "node-tls"],
    ratios: [(0, 1, "tls/plain"), (0, 2, "tls/node")],
};

/// One of issue #12's TLS targets: the figure `key` of roomd over TLS (a
/// row of [`TLS_ROWS`]), as a ratio to column `against` (or by itself when
/// `None`), at least or at most `bound`.
struct Goal {
    what: &'static str,
    row: usize,
    against: Option<usize>,
    at_least: bool,
    bound: f64,
}

const TLS_GOALS: &[Goal] = &[
    Goal {
        what: "fanout full speed, roomd TLS / roomd plaintext",
        row: 0,
        against: Some(1),
        at_least: true,
        bound: 0.4,
    },
    Goal {
        what: "fanout full speed, roomd TLS / Node TLS",
        row: 0,
        against: Some(2),
        at_least: true,
        bound: 10.0,
    },
    Goal {
        what: "idle, roomd TLS server memory KiB per connection",
        row: 6,
        against: None,
        at_least: false,
        bound: 8.0,
    },
    Goal {
        what: "TLS handshakes/s, roomd / Node",
        row: 7,
        against: Some(2),
        at_least: true,
        bound: 3.0,
    },
];

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
fn scenarios(rows: &'static [Row]) -> Vec<&'static Row> {
    let mut firsts: Vec<&Row> = Vec::new();
    for row in rows {
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
    render(dir, &MAIN).0
}

/// The TLS table (roomd over TLS, roomd plaintext, Node over TLS, from
/// `DIR/{roomd-tls,roomd-plain,node-tls}.jsonl`), then each of issue
/// #12's TLS targets with the figure and whether it is met.
pub fn tls_table(dir: &Path) -> String {
    let (mut out, cells) = render(dir, &TLS);
    out += "\ntargets (roomd over TLS; the same ratio per second of server CPU in brackets):\n";
    for goal in TLS_GOALS {
        let value = |row: usize| -> Option<f64> {
            let mine = cells[row][0].as_ref()?.value;
            match goal.against {
                None => Some(mine),
                Some(col) => {
                    let theirs = cells[row][col].as_ref()?.value;
                    (theirs != 0.0).then(|| mine / theirs)
                }
            }
        };
        let (op, verdict) = match value(goal.row) {
            None => (
                if goal.at_least { ">=" } else { "<=" },
                "no figure".to_string(),
            ),
            Some(v) => {
                let met = if goal.at_least {
                    v >= goal.bound
                } else {
                    v <= goal.bound
                };
                let per_cpu = match (goal.against, TLS_ROWS.get(goal.row + 1)) {
                    (Some(_), Some(next)) if next.key.ends_with("_per_server_cpu_s") => {
                        value(goal.row + 1).map_or(String::new(), |c| format!(" ({c:.2})"))
                    }
                    _ => String::new(),
                };
                (
                    if goal.at_least { ">=" } else { "<=" },
                    format!("{v:.2}{per_cpu}: {}", if met { "met" } else { "NOT met" }),
                )
            }
        };
        out += &format!("  {} {op} {}: {verdict}\n", goal.what, goal.bound);
    }
    out
}

/// The table for `layout` and its cells (per row, per server).
fn render(dir: &Path, layout: &Layout) -> (String, Vec<Vec<Option<Cell>>>) {
    let runs: Vec<Vec<Value>> = layout.servers.iter().map(|s| load(dir, s)).collect();
    let [(_, _, r0), (_, _, r1)] = layout.ratios;
    let (w0, w1) = (r0.len().max(10), r1.len().max(10));
    let [s0, s1, s2] = layout.servers;
    let mut out = format!(
        "| {:<LABEL_W$} | {s0:>11} | {s1:>11} | {s2:>11} | {r0:>w0$} | {r1:>w1$} |\n|{}|{}|{}|{}|{}|{}|\n",
        "figure",
        "-".repeat(LABEL_W + 2),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2)
    );
    let mut all = Vec::new();
    for row in layout.rows {
        let cells: Vec<Option<Cell>> = runs
            .iter()
            .map(|r| cell(&runs_of(r, row), row.key))
            .collect();
        let show = |c: &Option<Cell>| match c {
            None => "-".to_string(),
            Some(c) => format!("{}{}", fmt(c.value), if c.bound { "*" } else { "" }),
        };
        let ratio = |(a, b, _): (usize, usize, &str)| match (&cells[a], &cells[b]) {
            (Some(a), Some(b)) if b.value != 0.0 => format!("{:.2}", a.value / b.value),
            _ => "-".to_string(),
        };
        out += &format!(
            "| {:<LABEL_W$} | {:>11} | {:>11} | {:>11} | {:>w0$} | {:>w1$} |\n",
            row.label,
            show(&cells[0]),
            show(&cells[1]),
            show(&cells[2]),
            ratio(layout.ratios[0]),
            ratio(layout.ratios[1]),
        );
        all.push(cells);
    }
    out += "(each cell is the median over its runs; * = most of them client-bound:\n";
    out += " the load generator used over 80% of its core)\n";
    out += &run_counts(&runs, layout);
    out += "\n";
    out += &cpu_table(&runs, layout);
    (out, all)
}

/// One line: how many runs each scenario had per server, e.g. `idle: 3`,
/// or `idle: 3/2/3` (roomd/node/limit) when the servers differ.
fn run_counts(runs: &[Vec<Value>], layout: &Layout) -> String {
    let mut parts = Vec::new();
    for row in scenarios(layout.rows) {
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
                layout.servers.join("/")
            ));
        }
    }
    format!("runs per server: {}\n", parts.join("; "))
}

/// Where each scenario spent its CPU: server / generator, % of one core
/// (medians over the runs).
fn cpu_table(runs: &[Vec<Value>], layout: &Layout) -> String {
    let [s0, s1, s2] = layout.servers;
    let mut out = format!(
        "| {:<LABEL_W$} | {s0:>11} | {s1:>11} | {s2:>11} |\n|{}|{}|{}|{}|\n",
        "cpu % of a core: server / generator",
        "-".repeat(LABEL_W + 2),
        "-".repeat(13),
        "-".repeat(13),
        "-".repeat(13)
    );
    for row in scenarios(layout.rows) {
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

    #[test]
    fn tls_table_checks_the_targets() {
        let dir = scratch("tls");
        let fanout = |rate: f64| {
            format!(r#"{{"scenario":"fanout","mode":"full","deliveries_per_s":{rate}}}"#)
        };
        let idle = |kib: f64| format!(r#"{{"scenario":"idle","rss_per_conn_kib":{kib}}}"#);
        let hs = |rate: f64| format!(r#"{{"scenario":"handshakes","handshakes_per_s":{rate}}}"#);
        let write = |name: &str, lines: &[String]| {
            std::fs::write(dir.join(format!("{name}.jsonl")), lines.join("\n")).unwrap()
        };
        write("roomd-tls", &[fanout(3e6), idle(9.5), hs(3000.0)]);
        write("roomd-plain", &[fanout(6e6), idle(1.8), hs(20000.0)]);
        write("node-tls", &[fanout(1e5), idle(40.0), hs(1200.0)]);
        let t = tls_table(&dir);
        assert!(
            t.contains("|   roomd-tls | roomd-plain |    node-tls |"),
            "{t}"
        );
        let fan = line(&t, "fanout 1000x1 64B full: deliveries/s");
        assert!(fan.contains(" 0.50 ") && fan.contains(" 30.00 "), "{fan}");
        assert!(
            t.contains("roomd TLS / roomd plaintext >= 0.4: 0.50: met"),
            "{t}"
        );
        assert!(t.contains("roomd TLS / Node TLS >= 10: 30.00: met"), "{t}");
        assert!(t.contains("KiB per connection <= 8: 9.50: NOT met"), "{t}");
        assert!(t.contains("roomd / Node >= 3: 2.50: NOT met"), "{t}");
        assert!(t.contains("handshakes: 1"), "{t}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
