//! The side-by-side table: reads the JSON summary lines each server's runs
//! left in `DIR/<server>.jsonl` and prints one row per figure with the
//! ratios roomd/node and roomd/limit. A scenario may have run several
//! times per server (`run.sh` runs every scenario in rounds): a cell is
//! the median over those runs. [`tls_table`] does the same for the TLS
//! rows (roomd over TLS, roomd plaintext, Node over TLS) and checks them
//! against issue #12's targets; [`cluster_table`] for the cluster rows (a
//! single roomd beside two roomd nodes on one Redis) against issue #11's.

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
    servers: &'static [&'static str],
    ratios: &'static [(usize, usize, &'static str)],
}

const MAIN: Layout = Layout {
    rows: ROWS,
    servers: &["roomd", "node", "limit"],
    ratios: &[(0, 1, "roomd/node"), (0, 2, "roomd/limit")],
};

const TLS: Layout = Layout {
    rows: TLS_ROWS,
    servers: &["roomd-tls", "roomd-plain", "node-tls"],
    ratios: &[(0, 1, "tls/plain"), (0, 2, "tls/node")],
};

/// The rows of the cluster table: the main table's fanout and relay rows
/// (by index into [`ROWS`]), and relay's loss count.
const CLUSTER_ROWS: &[Row] = &[
    ROWS[0],
    ROWS[1],
    ROWS[2],
    ROWS[3],
    ROWS[4],
    ROWS[5],
    ROWS[6],
    ROWS[7],
    ROWS[8],
    ROWS[9],
    ROWS[10],
    ROWS[11],
    ROWS[12],
    Row {
        label: "relay 100 pairs: lost",
        scenario: "relay",
        mode: None,
        key: "lost",
    },
];

const CLUSTER: Layout = Layout {
    rows: CLUSTER_ROWS,
    servers: &["roomd-single", "roomd-cluster"],
    ratios: &[(1, 0, "cluster/single")],
};

/// How a target reads its figure.
#[derive(Clone, Copy)]
enum Compare {
    /// The figure itself.
    Alone,
    /// The figure divided by the same row's figure in this column.
    Ratio(usize),
    /// The figure minus the same row's figure in this column.
    Difference(usize),
}

/// One of an issue's targets: the figure of row `row` (of the layout's
/// rows) in column `column`, compared as `compare` says, at least or at
/// most `bound`.
struct Goal {
    what: &'static str,
    row: usize,
    column: usize,
    compare: Compare,
    at_least: bool,
    bound: f64,
}

/// Issue #12's TLS targets (roomd over TLS is column 0).
const TLS_GOALS: &[Goal] = &[
    Goal {
        what: "fanout full speed, roomd TLS / roomd plaintext",
        row: 0,
        column: 0,
        compare: Compare::Ratio(1),
        at_least: true,
        bound: 0.4,
    },
    Goal {
        what: "fanout full speed, roomd TLS / Node TLS",
        row: 0,
        column: 0,
        compare: Compare::Ratio(2),
        at_least: true,
        bound: 10.0,
    },
    Goal {
        what: "idle, roomd TLS server memory KiB per connection",
        row: 6,
        column: 0,
        compare: Compare::Alone,
        at_least: false,
        bound: 8.0,
    },
    Goal {
        what: "TLS handshakes/s, roomd / Node",
        row: 7,
        column: 0,
        compare: Compare::Ratio(2),
        at_least: true,
        bound: 3.0,
    },
];

/// Issue #11's cluster targets (the cluster is column 1; the loss target,
/// zero over every run, is checked apart: a median of losses could hide
/// one).
const CLUSTER_GOALS: &[Goal] = &[
    Goal {
        what: "fanout full speed per server CPU-second, cluster / single",
        row: 1,
        column: 1,
        compare: Compare::Ratio(0),
        at_least: true,
        bound: 0.7,
    },
    Goal {
        what: "relay round trips per server CPU-second, cluster / single",
        row: 10,
        column: 1,
        compare: Compare::Ratio(0),
        at_least: true,
        bound: 0.4,
    },
    Goal {
        what: "fanout 100 msg/s p50 ms, cluster - single",
        row: 4,
        column: 1,
        compare: Compare::Difference(0),
        at_least: false,
        bound: 1.0,
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
    out += &goals(TLS_GOALS, TLS_ROWS, &cells);
    out
}

/// The cluster table (a single roomd and a cluster of two nodes and a
/// Redis, from `DIR/{roomd-single,roomd-cluster}.jsonl`; the cluster's
/// server CPU is the sum over its processes), then how the cluster's CPU
/// split over its processes, the loss over every run, and each of issue
/// #11's targets with the figure and whether it is met.
pub fn cluster_table(dir: &Path) -> String {
    let (mut out, cells) = render(dir, &CLUSTER);
    let cluster = load(dir, CLUSTER.servers[1]);
    out += "\n";
    out += &cpu_split(&cluster, CLUSTER.rows);
    out += "\ntargets (the cluster: two roomd nodes and a Redis, CPU summed over the three):\n";
    // Zero loss: the sum over every run, not a median.
    let (mut measured, mut lossy, mut lost) = (0, 0, 0.0);
    for l in cluster.iter().filter_map(|v| v["lost"].as_f64()) {
        measured += 1;
        lost += l;
        if l > 0.0 {
            lossy += 1;
        }
    }
    // A run that failed (run.sh writes `"failed":true`: e.g. joins never
    // answered) lost what it never got.
    let failed = cluster.iter().filter(|v| v["failed"] == true).count();
    let failures = if failed == 0 {
        String::new()
    } else {
        format!(", {failed} failed runs")
    };
    let verdict = if measured == 0 {
        "no figure".to_string()
    } else if lost == 0.0 && failed == 0 {
        format!("0 in {measured} runs: met")
    } else {
        format!("{lost:.0} in {lossy} of {measured} runs{failures}: NOT met")
    };
    out += &format!("  cluster messages lost, every fanout and relay run == 0: {verdict}\n");
    out += &goals(CLUSTER_GOALS, CLUSTER_ROWS, &cells);
    out
}

/// One line per goal: the figure and whether it is met (for a ratio of a
/// row followed by its per-server-CPU row, that ratio in brackets).
fn goals(list: &[Goal], rows: &[Row], cells: &[Vec<Option<Cell>>]) -> String {
    let mut out = String::new();
    for goal in list {
        let value = |row: usize| -> Option<f64> {
            let mine = cells[row][goal.column].as_ref()?.value;
            match goal.compare {
                Compare::Alone => Some(mine),
                Compare::Ratio(col) => {
                    let theirs = cells[row][col].as_ref()?.value;
                    (theirs != 0.0).then(|| mine / theirs)
                }
                Compare::Difference(col) => Some(mine - cells[row][col].as_ref()?.value),
            }
        };
        let op = if goal.at_least { ">=" } else { "<=" };
        let verdict = match value(goal.row) {
            None => "no figure".to_string(),
            Some(v) => {
                let met = if goal.at_least {
                    v >= goal.bound
                } else {
                    v <= goal.bound
                };
                let per_cpu = match (goal.compare, rows.get(goal.row + 1)) {
                    (Compare::Ratio(_), Some(next))
                        if next.key.ends_with("_per_server_cpu_s")
                            && !rows[goal.row].key.ends_with("_per_server_cpu_s") =>
                    {
                        value(goal.row + 1).map_or(String::new(), |c| format!(" ({c:.2})"))
                    }
                    _ => String::new(),
                };
                format!("{v:.2}{per_cpu}: {}", if met { "met" } else { "NOT met" })
            }
        };
        out += &format!("  {} {op} {}: {verdict}\n", goal.what, goal.bound);
    }
    out
}

/// Where a cluster's server CPU went, per scenario: each process's share
/// of a core (medians over the runs, in `--server-pid` order: node A,
/// node B, Redis) and the median of their sum.
fn cpu_split(runs: &[Value], rows: &'static [Row]) -> String {
    let dash = "-".repeat(10);
    let mut out = format!(
        "| {:<LABEL_W$} | {:>8} | {:>8} | {:>8} | {:>8} |\n|{}|{dash}|{dash}|{dash}|{dash}|\n",
        "cluster server cpu % of a core",
        "node A",
        "node B",
        "Redis",
        "sum",
        "-".repeat(LABEL_W + 2),
    );
    for row in scenarios(rows) {
        let these = runs_of(runs, row);
        if these.is_empty() {
            continue;
        }
        let pct = |x: Option<f64>| x.map_or("?".to_string(), |x| format!("{:.0}", x * 100.0));
        let part = |i: usize| {
            pct(median(
                these
                    .iter()
                    .filter_map(|v| v["server_cpu_each"][i].as_f64())
                    .collect(),
            ))
        };
        out += &format!(
            "| {:<LABEL_W$} | {:>8} | {:>8} | {:>8} | {:>8} |\n",
            scenario_label(row),
            part(0),
            part(1),
            part(2),
            pct(median_of(&these, "server_cpu"))
        );
    }
    out
}

/// The table for `layout` and its cells (per row, per server).
fn render(dir: &Path, layout: &Layout) -> (String, Vec<Vec<Option<Cell>>>) {
    let runs: Vec<Vec<Value>> = layout.servers.iter().map(|s| load(dir, s)).collect();
    let widths: Vec<usize> = layout.ratios.iter().map(|r| r.2.len().max(10)).collect();
    let columns = column_widths(layout);
    let mut out = format!("| {:<LABEL_W$} |", "figure");
    for (s, c) in layout.servers.iter().zip(&columns) {
        out += &format!(" {s:>c$} |");
    }
    for (r, w) in layout.ratios.iter().zip(&widths) {
        out += &format!(" {:>w$} |", r.2);
    }
    out += &format!("\n|{}|", "-".repeat(LABEL_W + 2));
    for c in &columns {
        out += &format!("{}|", "-".repeat(c + 2));
    }
    for w in &widths {
        out += &format!("{}|", "-".repeat(w + 2));
    }
    out += "\n";
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
        let ratio = |&(a, b, _): &(usize, usize, &str)| match (&cells[a], &cells[b]) {
            (Some(a), Some(b)) if b.value != 0.0 => format!("{:.2}", a.value / b.value),
            _ => "-".to_string(),
        };
        out += &format!("| {:<LABEL_W$} |", row.label);
        for (c, w) in cells.iter().zip(&columns) {
            out += &format!(" {:>w$} |", show(c));
        }
        for (r, w) in layout.ratios.iter().zip(&widths) {
            out += &format!(" {:>w$} |", ratio(r));
        }
        out += "\n";
        all.push(cells);
    }
    out += "(each cell is the median over its runs; * = most of them client-bound:\n";
    out += " the load generator used over 80% of its core)\n";
    out += &run_counts(&runs, layout);
    out += "\n";
    out += &cpu_table(&runs, layout);
    (out, all)
}

/// The width of each server's column: 11, or its name's if longer.
fn column_widths(layout: &Layout) -> Vec<usize> {
    layout.servers.iter().map(|s| s.len().max(11)).collect()
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
    let columns = column_widths(layout);
    let mut out = format!("| {:<LABEL_W$} |", "cpu % of a core: server / generator");
    for (s, c) in layout.servers.iter().zip(&columns) {
        out += &format!(" {s:>c$} |");
    }
    out += &format!("\n|{}|", "-".repeat(LABEL_W + 2));
    for c in &columns {
        out += &format!("{}|", "-".repeat(c + 2));
    }
    out += "\n";
    for row in scenarios(layout.rows) {
        out += &format!("| {:<LABEL_W$} |", scenario_label(row));
        for (r, w) in runs.iter().zip(&columns) {
            let these = runs_of(r, row);
            let cell = if these.is_empty() {
                "-".to_string()
            } else {
                let pct = |k: &str| {
                    median_of(&these, k).map_or("?".to_string(), |x| format!("{:.0}", x * 100.0))
                };
                format!("{} / {}", pct("server_cpu"), pct("client_cpu"))
            };
            out += &format!(" {cell:>w$} |");
        }
        out += "\n";
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

    #[test]
    fn cluster_table_checks_the_targets_and_splits_the_cpu() {
        let dir = scratch("cluster");
        let full = |per_cpu: f64, lost: u64, each: &str| {
            format!(
                r#"{{"scenario":"fanout","mode":"full","deliveries_per_server_cpu_s":{per_cpu},"lost":{lost},"server_cpu":0.9,"server_cpu_each":[{each}]}}"#
            )
        };
        let rate =
            |p50: f64| format!(r#"{{"scenario":"fanout","mode":"rate","p50_ms":{p50},"lost":0}}"#);
        let relay = |per_cpu: f64| {
            format!(
                r#"{{"scenario":"relay","round_trips_per_server_cpu_s":{per_cpu},"lost":0,"server_cpu_each":[0.3,0.3,0.2]}}"#
            )
        };
        let write = |name: &str, lines: &[String]| {
            std::fs::write(dir.join(format!("{name}.jsonl")), lines.join("\n")).unwrap()
        };
        write(
            "roomd-single",
            &[full(4e6, 0, "0.9"), rate(0.5), relay(50000.0)],
        );
        write(
            "roomd-cluster",
            &[
                full(3e6, 0, "0.4,0.3,0.2"),
                full(2e6, 2, "0.5,0.3,0.1"),
                full(3.2e6, 0, "0.3,0.3,0.3"),
                r#"{"scenario":"fanout","mode":"full","failed":true}"#.to_string(),
                rate(2.0),
                relay(15000.0),
            ],
        );
        let t = cluster_table(&dir);
        assert!(
            t.contains("| roomd-single | roomd-cluster | cluster/single |"),
            "{t}"
        );
        // The median of 2e6, 3e6 and 3.2e6 over 4e6.
        assert!(t.contains("cluster / single >= 0.7: 0.75: met"), "{t}");
        assert!(
            t.contains(
                "relay round trips per server CPU-second, cluster / single >= 0.4: 0.30: NOT met"
            ),
            "{t}"
        );
        assert!(t.contains("cluster - single <= 1: 1.50: NOT met"), "{t}");
        assert!(
            t.contains("== 0: 2 in 1 of 5 runs, 1 failed runs: NOT met"),
            "{t}"
        );
        assert!(t.contains("fanout 1000x1 64B full: 1/4 "), "{t}");
        let split: Vec<&str> = t
            .lines()
            .rfind(|l| l.starts_with("| fanout 1000x1 64B full "))
            .unwrap()
            .split('|')
            .map(str::trim)
            .collect();
        assert_eq!(&split[2..6], ["40", "30", "20", "90"], "{t}");
        let relay = t.lines().rfind(|l| l.starts_with("| relay ")).unwrap();
        assert!(relay.contains("|       20 |"), "{t}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
