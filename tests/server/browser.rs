//! roomd's clients are browsers: headless Debian Chromium, driven by
//! `tests/browser/run.mjs` (playwright-core), opens `wss://` to every route
//! from page JavaScript on an allowed origin and exchanges each protocol's
//! first messages; a page on another origin is refused (403), and the same
//! server under a name its certificate does not carry is refused by the
//! browser. Chromium trusts the test CA through an NSS database of its own
//! (`certutil`), as a user's trust works.
//!
//! Needs Node.js, Chromium (`/usr/bin/chromium`, or `ROOMD_CHROMIUM`),
//! `certutil` (libnss3-tools) and `npm ci` in `tests/browser`: `.ci/run`
//! installs them. Without them the test fails, saying what is missing,
//! unless `ROOMD_SKIP_BROWSER=1`.

use crate::live::binary::{KillOnDrop, next_line, roomd, scratch_dir};
use crate::live::metric_at;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Node starting and serving its pages.
const START: Duration = Duration::from_secs(30);
/// The whole browser run (the script's own watchdog is 90 s).
const RUN: Duration = Duration::from_secs(120);
/// The user the token names, and presence's and stream's user id.
const SUB: &str = "u1";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tls_data(name: &str) -> PathBuf {
    manifest().join("tests/data/tls").join(name)
}

fn chromium() -> PathBuf {
    std::env::var_os("ROOMD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// What the browser test needs and this machine lacks.
fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    if !on_path("node") {
        missing.push("node (Debian: apt-get install nodejs)".to_string());
    }
    if !chromium().is_file() {
        missing.push(format!(
            "{} (Debian: apt-get install chromium; or set ROOMD_CHROMIUM)",
            chromium().display()
        ));
    }
    if !on_path("certutil") {
        missing.push("certutil (Debian: apt-get install libnss3-tools)".to_string());
    }
    if !manifest()
        .join("tests/browser/node_modules/playwright-core")
        .is_dir()
    {
        missing.push("playwright-core (run `npm ci` in tests/browser)".to_string());
    }
    missing
}

/// False (after saying so) when the test should not run: prerequisites
/// missing and `ROOMD_SKIP_BROWSER=1`. Missing without it is a failure.
fn browser_available() -> bool {
    let missing = missing();
    if missing.is_empty() {
        return true;
    }
    let list = missing.join(", ");
    if std::env::var("ROOMD_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("browser test skipped (ROOMD_SKIP_BROWSER=1); missing: {list}");
        return false;
    }
    panic!(
        "the browser test needs: {list}. `.ci/run` installs them; \
         set ROOMD_SKIP_BROWSER=1 to skip this test"
    );
}

/// Lines a child writes to stdout, read in a thread.
fn lines(stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next JSON line of the script within `limit` (its `error` fails the test).
fn next_json(lines: &Receiver<String>, limit: Duration, what: &str) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| panic!("run.mjs: no {what} within {limit:?} ({e})"));
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            eprintln!("run.mjs: {line}");
            continue;
        };
        if let Some(error) = value.get("error") {
            panic!("run.mjs failed: {}", error.as_str().unwrap_or_default());
        }
        return value;
    }
}

/// The browser script, started: its pages are served, their origins known.
struct Script {
    child: KillOnDrop,
    stdin: ChildStdin,
    lines: Receiver<String>,
    allowed: String,
}

impl Script {
    fn start(secret: Option<&Path>) -> Script {
        let mut command = Command::new("node");
        command
            .arg(manifest().join("tests/browser/run.mjs"))
            .arg("--ca")
            .arg(tls_data("ca.pem"))
            .arg("--chromium")
            .arg(chromium())
            .args(["--sub", SUB]);
        if let Some(secret) = secret {
            command.arg("--jwt-secret-file").arg(secret);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node");
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = lines(child.stdout.take().expect("piped stdout"));
        let child = KillOnDrop(child);
        let origins = next_json(&lines, START, "origins");
        let allowed = origins["origins"]["allowed"]
            .as_str()
            .expect("an allowed origin")
            .to_string();
        Script {
            child,
            stdin,
            lines,
            allowed,
        }
    }

    /// Runs the browser against roomd's TLS listener; its results.
    fn run(mut self, tls: SocketAddr) -> Value {
        let go = json!({"wss": format!("wss://localhost:{}", tls.port())});
        writeln!(self.stdin, "{go}").expect("write to run.mjs");
        let results = next_json(&self.lines, RUN, "results");
        // It exits on its own once the results are out (the browser is
        // closed first); the guard kills it otherwise.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.0.try_wait().expect("wait for node").is_none() {
            assert!(Instant::now() < deadline, "run.mjs did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        results["results"].clone()
    }
}

/// roomd with a plaintext listener (for /metrics) and a TLS one, allowing
/// only `origin`.
struct Roomd {
    _child: KillOnDrop,
    plain: SocketAddr,
    tls: SocketAddr,
}

impl Roomd {
    fn start(origin: &str, secret: Option<&Path>) -> Roomd {
        let mut command = roomd();
        command
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(tls_data("server.pem"))
            .arg("--tls-key")
            .arg(tls_data("server.key"))
            .args(["--allow-origin", origin]);
        if let Some(secret) = secret {
            command.arg("--jwt-secret-file").arg(secret);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn roomd");
        let log = lines(child.stdout.take().expect("piped stdout"));
        let child = KillOnDrop(child);
        let (mut plain, mut tls) = (None, None);
        while plain.is_none() || tls.is_none() {
            let line = next_line(&log, "listening on ");
            let rest = line.split("listening on ").nth(1).unwrap().trim();
            match rest.strip_suffix(" with TLS") {
                Some(addr) => tls = addr.parse().ok(),
                None => plain = rest.parse().ok(),
            }
        }
        // Later lines are read (and dropped) so roomd never blocks on them.
        std::thread::spawn(move || log.into_iter().for_each(drop));
        Roomd {
            _child: child,
            plain: plain.unwrap(),
            tls: tls.unwrap(),
        }
    }
}

/// The types of the messages a route received.
fn types(route: &Value) -> Vec<&str> {
    route["received"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["type"].as_str()).collect())
        .unwrap_or_default()
}

/// Every route opened (selecting `protocol`) and got its first messages.
fn assert_every_route(results: &Value, protocol: &str) {
    let routes = &results["routes"];
    for (name, expected) in [
        ("scratch", &["joined"][..]),
        ("signal", &["room-created"]),
        ("presence", &["CONNECTION_ESTABLISHED", "ONLINE_USERS"]),
        ("chat", &["system", "chat"]),
        ("stream", &["room-joined"]),
    ] {
        let route = &routes[name];
        assert_eq!(route["opened"], true, "{name} did not open: {route}");
        assert_eq!(route["error"], Value::Null, "{name}: {route}");
        assert_eq!(route["protocol"], protocol, "{name}'s subprotocol: {route}");
        assert_eq!(types(route), expected, "{name}: {route}");
    }
    let received = |name: &str, i: usize| routes[name]["received"][i].clone();
    assert_eq!(received("scratch", 0)["sessionId"], "browser-session");
    let room = received("signal", 0)["roomId"].clone();
    assert_eq!(room.as_str().map(str::len), Some(6), "{room}");
    assert_eq!(received("presence", 0)["userId"], SUB);
    assert_eq!(received("presence", 1)["userIds"], json!([SUB]));
    assert_eq!(
        received("chat", 0)["payload"]["message"],
        "Connected to WebSocket server"
    );
    assert_eq!(received("chat", 1)["payload"], "hello from chromium");
    assert_eq!(received("stream", 0)["roomId"], "browser-room");
    assert_eq!(received("stream", 0)["participants"][0]["userId"], SUB);
}

/// A WebSocket the browser could not open (close 1006, no message).
fn assert_refused(results: &Value, case: &str) {
    let attempt = &results[case];
    assert_eq!(attempt["opened"], false, "{case} opened: {attempt}");
    assert_eq!(attempt["closeCode"], 1006, "{case}: {attempt}");
    assert_eq!(attempt["received"], json!([]), "{case}: {attempt}");
}

#[test]
fn chromium_speaks_every_protocol_over_wss_from_an_allowed_origin_only() {
    if !browser_available() {
        return;
    }
    let script = Script::start(None);
    let server = Roomd::start(&script.allowed, None);
    let results = script.run(server.tls);
    eprintln!(
        "browser: Chromium {}, launched in {} ms, run in {} ms",
        results["browser"], results["launch_ms"], results["total_ms"]
    );
    assert_eq!(results["page_origin"], results["allowed_origin"]);
    assert_eq!(results["token"], false);
    // No subprotocol offered, none selected.
    assert_every_route(&results, "");
    // The page on the other origin: roomd answered 403.
    assert_refused(&results, "denied");
    let rejected = "roomd_rejected_upgrades_total{status=\"403\"}";
    assert_eq!(metric_at(server.plain, rejected), 1);
    // The certificate is really checked: under another name, Chromium
    // reached roomd and gave up in the handshake.
    assert_refused(&results, "wrong_name");
    assert!(metric_at(server.plain, "roomd_tls_handshake_failures_total") >= 1);
}

#[test]
fn chromium_sends_its_token_in_the_subprotocol_list() {
    if !browser_available() {
        return;
    }
    let secret = scratch_dir("browser-token").join("hs256.secret");
    std::fs::write(&secret, "a browser test secret of at least 32 bytes").unwrap();
    let script = Script::start(Some(&secret));
    let server = Roomd::start(&script.allowed, Some(&secret));
    let results = script.run(server.tls);
    assert_eq!(results["token"], true);
    // Offered `roomd, roomd.token.<JWT>`; the server selected `roomd`.
    assert_every_route(&results, "roomd");
    // Auth is on: the allowed page without a token is refused (401).
    assert_refused(&results, "without_token");
    let rejected = |status: u16| {
        let name = format!("roomd_rejected_upgrades_total{{status=\"{status}\"}}");
        metric_at(server.plain, &name)
    };
    assert_eq!(rejected(401), 1);
    // The other origin, with a valid token: 403.
    assert_refused(&results, "denied");
    assert_eq!(rejected(403), 1);
    assert_refused(&results, "wrong_name");
}
