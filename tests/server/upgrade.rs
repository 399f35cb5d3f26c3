//! Live upgrade (SIGUSR2) of the `roomd` binary: clients on all five
//! protocols keep their connections, their messages and their state across
//! five upgrades in a row; refused and failed upgrades leave the old
//! process serving, and are counted; the journal recorded across upgrades
//! replays.

use crate::live::binary::{KillOnDrop, next_line, roomd, scratch_dir, spawn};
use crate::live::raw::frame;
use crate::live::{Client, TIMEOUT, metric_at, ws_at};
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// A roomd that may have been upgraded: the first process (the test's
/// child) and the pid serving now, killed when the test ends.
struct Upgrading {
    first: KillOnDrop,
    pid: u32,
    addr: SocketAddr,
    log: Receiver<String>,
}

impl Drop for Upgrading {
    fn drop(&mut self) {
        if self.pid != self.first.0.id() {
            signal("KILL", self.pid);
        }
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

impl Upgrading {
    fn start(args: &[&str]) -> Upgrading {
        Self::start_with(args, &[])
    }

    fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Upgrading {
        let mut command = roomd();
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied());
        let spawned = spawn(command);
        Upgrading {
            pid: spawned.child.id(),
            first: KillOnDrop(spawned.child),
            addr: spawned.addr,
            log: spawned.log,
        }
    }

    /// Sends SIGUSR2 to the serving process.
    fn ask_upgrade(&self) {
        signal("USR2", self.pid);
    }

    /// Waits for the upgrade asked for to be done: the new pid serves.
    fn upgraded(&mut self) {
        let line = self.outcome();
        let pid = line
            .split("serving as pid ")
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the upgrade failed: {line}"));
        assert_ne!(pid, self.pid);
        self.pid = pid;
    }

    /// Waits for the upgrade asked for to be refused.
    fn refused(&self) -> String {
        let line = self.outcome();
        assert!(line.contains("upgrade refused"), "{line}");
        line
    }

    /// Waits for a log line holding `text`.
    fn await_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no log line with {text:?}"));
            if line.contains(text) {
                return;
            }
        }
    }

    fn outcome(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("an upgrade's outcome in the log");
            if line.contains("upgrade refused") || line.contains("serving as pid ") {
                return line;
            }
        }
    }

    fn metric(&self, name: &str) -> u64 {
        metric_at(self.addr, name)
    }
}

/// The next text message, which must be there (no other text before it).
fn next(c: &mut Client) -> serde_json::Value {
    c.recv()
}

/// Reads until a ping comes from the server (heartbeats go on).
fn await_ping(c: &mut Client) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "no ping in time");
        match c.ws.read().expect("read") {
            Message::Ping(_) => return,
            Message::Text(t) => panic!("unexpected message {t}"),
            _ => {}
        }
    }
}

/// Every client of the five protocols, with traffic in a known state.
struct Clients {
    chat: [Client; 2],
    stream: [Client; 2],
    host: Client,
    guest: Client,
    room: String,
    /// Alice twice, then Bob.
    presence: [Client; 3],
    scratch: [Client; 2],
}

impl Clients {
    fn open(addr: SocketAddr) -> Clients {
        let mut chat = [ws_at(addr, "/chat"), ws_at(addr, "/chat")];
        for c in &mut chat {
            assert_eq!(next(c)["type"], "system");
        }
        let mut stream = [ws_at(addr, "/stream"), ws_at(addr, "/stream")];
        for (i, c) in stream.iter_mut().enumerate() {
            c.send_json(json!({"type": "join-room", "roomId": "r", "userId": format!("u{i}"), "userName": format!("N{i}")}));
            assert_eq!(next(c)["type"], "room-joined");
        }
        assert_eq!(next(&mut stream[0])["type"], "user-joined");
        let mut host = ws_at(addr, "/signal");
        let mut guest = ws_at(addr, "/signal");
        host.send_json(json!({"type": "create-room"}));
        let room = next(&mut host)["roomId"].as_str().unwrap().to_string();
        guest.send_json(json!({"type": "join-room", "roomId": room}));
        assert_eq!(next(&mut host)["type"], "peer-joined");
        assert_eq!(next(&mut guest)["type"], "peer-joined");
        let mut presence = [
            ws_at(addr, "/presence?userId=alice"),
            ws_at(addr, "/presence?userId=alice"),
            ws_at(addr, "/presence?userId=bob"),
        ];
        for c in &mut presence {
            assert_eq!(next(c)["type"], "CONNECTION_ESTABLISHED");
            assert_eq!(next(c)["type"], "ONLINE_USERS");
        }
        // Alice's first connection saw Bob come online; her second one too.
        for c in &mut presence[..2] {
            assert_eq!(next(c)["type"], "USER_ONLINE");
        }
        let mut scratch = [ws_at(addr, "/scratch"), ws_at(addr, "/scratch")];
        for c in &mut scratch {
            c.send_json(json!({"type": "join", "sessionId": "s"}));
            assert_eq!(next(c)["type"], "joined");
        }
        assert_eq!(next(&mut scratch[0])["type"], "user-joined");
        Clients {
            chat,
            stream,
            host,
            guest,
            room,
            presence,
            scratch,
        }
    }

    /// Sends message `n` of every stream (without reading).
    fn send(&mut self, n: u64) {
        self.chat[0].send_json(json!({"type": "chat", "payload": {"n": n}}));
        self.stream[1].send_json(json!({"type": "chat-message", "roomId": "r", "userId": "u1", "content": n.to_string()}));
        self.host
            .send_json(json!({"type": "signal", "roomId": self.room, "sdp": {"n": n}}));
        self.scratch[1].send_json(json!({"type": "sync", "sessionId": "s", "changes": {"n": n}}));
    }

    /// Reads message `n` of every stream: exactly it, nothing before it.
    fn receive(&mut self, n: u64) {
        for c in &mut self.chat {
            let m = next(c);
            assert_eq!(
                (m["type"].as_str(), &m["payload"]["n"]),
                (Some("chat"), &json!(n)),
                "{m}"
            );
        }
        for c in &mut self.stream {
            let m = next(c);
            assert_eq!(m["type"], "chat-message", "{m}");
            assert_eq!(m["content"], n.to_string(), "{m}");
        }
        let m = next(&mut self.guest);
        assert_eq!(
            (m["type"].as_str(), &m["sdp"]["n"]),
            (Some("signal"), &json!(n)),
            "{m}"
        );
        let m = next(&mut self.scratch[0]);
        assert_eq!(
            (m["type"].as_str(), &m["changes"]["n"]),
            (Some("sync"), &json!(n)),
            "{m}"
        );
    }

    /// Presence answers its ping with nothing before (no one went
    /// offline or came online meanwhile).
    fn presence_quiet(&mut self) {
        for c in &mut self.presence {
            c.send_json(json!({"type": "PING"}));
            assert_eq!(next(c)["type"], "PONG");
        }
    }
}

#[test]
fn five_upgrades_in_a_row_close_nothing_and_lose_nothing() {
    let journal = scratch_dir("upgrade-journal").join("journal.jsonl");
    let journal_arg = journal.to_str().unwrap().to_string();
    let mut server = Upgrading::start(&["--heartbeat-interval", "2", "--journal", &journal_arg]);
    let addr = server.addr;
    let mut clients = Clients::open(addr);
    let mut n = 0;
    for round in 0..5 {
        // A message split across the hand-over: its first half now, the
        // rest once the new process serves.
        let mut splitter = ws_at(addr, "/chat");
        assert_eq!(next(&mut splitter)["type"], "system");
        let text = json!({"type": "chat", "payload": {"split": round, "pad": "x".repeat(300)}})
            .to_string();
        let bytes = frame(true, 1, text.as_bytes());
        let half = bytes.len() / 2;
        splitter.ws.get_mut().write_all(&bytes[..half]).unwrap();
        // Traffic before and while the upgrade happens.
        for _ in 0..3 {
            clients.send(n);
            n += 1;
        }
        // A request head cut in two by the hand-over.
        let request = crate::live::upgrade_request("/signal", "");
        let mut head = std::net::TcpStream::connect(addr).unwrap();
        head.set_read_timeout(Some(TIMEOUT)).unwrap();
        head.write_all(&request.as_bytes()[..40]).unwrap();
        server.ask_upgrade();
        // A connection that arrives meanwhile is served.
        let arriving = std::thread::spawn(move || {
            let mut c = ws_at(addr, "/signal");
            c.send_json(json!({"type": "create-room"}));
            next(&mut c)["type"].clone()
        });
        for _ in 0..3 {
            clients.send(n);
            n += 1;
        }
        server.upgraded();
        for i in n - 6..n {
            clients.receive(i);
        }
        assert_eq!(arriving.join().unwrap(), "room-created");
        head.write_all(&request.as_bytes()[40..]).unwrap();
        let mut answer = [0u8; 12];
        std::io::Read::read_exact(&mut head, &mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 101");
        for i in n - 6..n {
            assert_eq!(next(&mut splitter)["payload"]["n"], i);
        }
        splitter.ws.get_mut().write_all(&bytes[half..]).unwrap();
        for c in clients.chat.iter_mut().chain([&mut splitter]) {
            let m = next(c);
            assert_eq!(m["payload"]["split"], round, "{m}");
            assert_eq!(m["payload"]["pad"].as_str().map(str::len), Some(300));
        }
        clients.presence_quiet();
        assert_eq!(server.metric("roomd_upgrades_total"), round + 1);
    }
    assert_eq!(server.metric("roomd_upgrades_refused_total"), 0);
    crate::live::eventually("the splitters' sockets gone", || {
        server.metric("roomd_websockets_open") == 11
    });
    // Heartbeats go on in the last process.
    await_ping(&mut clients.chat[1]);
    // The first process exited once it had handed over.
    let status = server.first.0.wait().expect("wait for the first process");
    assert!(status.success(), "{status:?}");
    // The journal written by six processes replays as one run.
    drop(clients);
    signal("TERM", server.pid);
    next_line(&server.log, "shut down");
    let out = Command::new(env!("CARGO_BIN_EXE_roomd"))
        .args(["replay", "--check", &journal_arg])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What systemd would receive on `socket`: one datagram's lines.
fn notified(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification in time");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.lines().map(str::to_string).collect()
}

/// Writes an executable script at `path` (through a rename, so no
/// half-written file is ever run).
fn script(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The new binary is slow to start (a wrapper sleeps first): while the
/// sockets are sent ahead, the old process serves on; a client that
/// closes meanwhile sees its connection end (the new process drops the
/// socket it was sent ahead), one that connects meanwhile is handed over
/// beside the document, and everyone else talks on.
#[test]
fn connections_closed_or_opened_while_sockets_are_sent_ahead() {
    let dir = scratch_dir("upgrade-ahead");
    let slow = dir.join("roomd-slow");
    script(
        &slow,
        &format!(
            "#!/bin/sh\n[ \"$1\" = handover-versions ] || sleep 1\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_roomd")
        ),
    );
    let mut server = Upgrading::start(&["--upgrade-binary", slow.to_str().unwrap()]);
    let mut clients = Clients::open(server.addr);
    let mut leaving = ws_at(server.addr, "/chat");
    assert_eq!(next(&mut leaving)["type"], "system");
    server.ask_upgrade();
    server.await_log("socket(s) ahead");
    leaving.ws.close(None).expect("close");
    let mut raw = loop {
        match leaving.ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break leaving.ws.into_inner(),
            Err(e) => panic!("closing: {e}"),
        }
    };
    let mut joining = ws_at(server.addr, "/chat");
    assert_eq!(next(&mut joining)["type"], "system");
    clients.send(0);
    clients.receive(0);
    server.upgraded();
    raw.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut rest = Vec::new();
    let end = std::io::Read::read_to_end(&mut raw, &mut rest);
    assert!(end.is_ok(), "the closed connection ends: {end:?}");
    clients.send(1);
    clients.receive(1);
    for n in 0..2 {
        let m = next(&mut joining);
        assert_eq!(
            (m["type"].as_str(), &m["payload"]["n"]),
            (Some("chat"), &json!(n)),
            "the client that came meanwhile: {m}"
        );
    }
    joining.send_json(json!({"type": "chat", "payload": {"n": 2}}));
    for c in &mut clients.chat {
        assert_eq!(next(c)["payload"]["n"], 2);
    }
    clients.presence_quiet();
}

#[test]
fn refused_and_failed_upgrades_leave_the_old_process_serving() {
    let dir = scratch_dir("upgrade-refused");
    let next_binary = dir.join("roomd-next");
    let _ = std::fs::remove_file(&next_binary);
    let notify_path = dir.join("notify");
    let _ = std::fs::remove_file(&notify_path);
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut server = Upgrading::start_with(
        &["--upgrade-binary", next_binary.to_str().unwrap()],
        &[("NOTIFY_SOCKET", notify_path.to_str().unwrap())],
    );
    assert_eq!(notified(&notify), ["READY=1"]);
    let mut clients = Clients::open(server.addr);
    // It reads this build's version, then crashes taking over.
    let versions = std::process::Command::new(env!("CARGO_BIN_EXE_roomd"))
        .arg("handover-versions")
        .output()
        .unwrap();
    let versions = String::from_utf8(versions.stdout).unwrap();
    let crash = format!(
        "#!/bin/sh\nif [ \"$1\" = handover-versions ]; then echo {}; exit 0; fi\n\
         head -c 100 >/dev/null\nexit 3\n",
        versions.trim()
    );
    let cases: [(&str, Option<&str>); 5] = [
        ("cannot run", None),
        ("no hand-over versions", Some("/bin/true")),
        (
            "reads hand-over versions [999]",
            Some("#!/bin/sh\necho 999\n"),
        ),
        ("exited while taking over", Some(&crash)),
        // It hangs: the clients are served meanwhile (below, before the
        // refusal), and the query gives up after 5 s.
        (
            "version query took over",
            Some("#!/bin/sh\nexec sleep 30\n"),
        ),
    ];
    let mut n = 0;
    for (i, (reason, binary)) in cases.into_iter().enumerate() {
        let _ = std::fs::remove_file(&next_binary);
        match binary {
            None => {}
            Some(target) if target.starts_with('/') => {
                std::os::unix::fs::symlink(target, &next_binary).unwrap()
            }
            Some(text) => script(&next_binary, text),
        }
        clients.send(n);
        server.ask_upgrade();
        clients.send(n + 1);
        clients.receive(n);
        clients.receive(n + 1);
        clients.presence_quiet();
        let line = server.refused();
        assert!(line.contains(reason), "{reason:?} not in {line:?}");
        n += 2;
        assert_eq!(notified(&notify)[0], "RELOADING=1");
        assert_eq!(notified(&notify), ["READY=1"]);
        assert_eq!(server.metric("roomd_upgrades_refused_total"), i as u64 + 1);
        assert_eq!(server.metric("roomd_upgrades_total"), 0);
        assert_eq!(server.pid, server.first.0.id(), "the same process serves");
    }
    // The real binary at last: the count of refusals goes on with it.
    let _ = std::fs::remove_file(&next_binary);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_roomd"), &next_binary).unwrap();
    clients.send(n);
    server.ask_upgrade();
    server.upgraded();
    clients.receive(n);
    clients.presence_quiet();
    assert_eq!(notified(&notify)[0], "RELOADING=1");
    assert_eq!(
        notified(&notify),
        [format!("MAINPID={}", server.pid), "READY=1".to_string()]
    );
    assert_eq!(server.metric("roomd_upgrades_refused_total"), 5);
    assert_eq!(server.metric("roomd_upgrades_total"), 1);
    assert!(
        metric_text(server.addr).contains("roomd_last_handover_seconds "),
        "the pause is reported"
    );
}

/// `/metrics` as text.
fn metric_text(addr: SocketAddr) -> String {
    crate::live::http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").2
}

/// `GET /health`: its status and JSON.
fn health(addr: SocketAddr) -> (u16, serde_json::Value) {
    let (status, _, body) = crate::live::http(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    (status, serde_json::from_str(&body).expect("JSON health"))
}

/// Cluster mode: the upgraded node keeps its number (it is not reaped,
/// nor fenced: its clients stay), the other node sees no presence event,
/// messages the other node's client sends all through each upgrade reach
/// the upgraded node's client, none missed (the new process subscribes
/// before the old one stops), and messages cross both ways after it.
#[test]
fn a_cluster_node_upgrades_without_the_other_node_seeing_it() {
    let redis = crate::live::redis::RedisServer::start(None);
    let url = redis.url(0);
    let args = ["--redis", url.as_str(), "--node-timeout", "1000ms"];
    let mut a = Upgrading::start(&args);
    let mut command = roomd();
    command.args(["--listen", "127.0.0.1:0"]).args(args);
    let b = spawn(command);
    let b_addr = b.addr;
    let _b = KillOnDrop(b.child);
    for addr in [a.addr, b_addr] {
        crate::live::eventually("the node to serve", || health(addr).0 == 200);
    }
    let mut alice = ws_at(a.addr, "/presence?userId=alice");
    assert_eq!(next(&mut alice)["type"], "CONNECTION_ESTABLISHED");
    assert_eq!(next(&mut alice)["type"], "ONLINE_USERS");
    let mut bob = ws_at(b_addr, "/presence?userId=bob");
    assert_eq!(next(&mut bob)["type"], "CONNECTION_ESTABLISHED");
    assert_eq!(next(&mut bob)["type"], "ONLINE_USERS");
    assert_eq!(next(&mut alice)["type"], "USER_ONLINE");
    let mut on_a = ws_at(a.addr, "/chat");
    let mut on_b = ws_at(b_addr, "/chat");
    assert_eq!(next(&mut on_a)["type"], "system");
    assert_eq!(next(&mut on_b)["type"], "system");
    for round in 0..3u64 {
        // Traffic on the upgrading node up to the moment it stops, and
        // from the other node all through the upgrade.
        on_a.send_json(json!({"type": "chat", "payload": {"pre": round}}));
        let during = std::thread::spawn(move || {
            for i in 0..30 {
                on_b.send_json(json!({"type": "chat", "payload": {"during": round, "i": i}}));
                // (Pacing: the messages span the whole upgrade.)
                std::thread::sleep(Duration::from_millis(10));
            }
            on_b
        });
        a.ask_upgrade();
        a.upgraded();
        on_b = during.join().unwrap();
        let mut seen = Vec::new();
        for c in [&mut on_a, &mut on_b] {
            let payloads: Vec<_> = (0..31).map(|_| next(c)["payload"].clone()).collect();
            seen.push(payloads);
        }
        assert_eq!(seen[0], seen[1], "one order on both nodes, nothing missed");
        let mut expected: Vec<_> = (0..30).map(|i| json!({"during": round, "i": i})).collect();
        let pre = seen[0].iter().position(|p| p["pre"] == round);
        expected.insert(
            pre.expect("the message sent as it stopped"),
            json!({"pre": round}),
        );
        assert_eq!(seen[0], expected, "none lost, none reordered, no error");
        crate::live::eventually("the upgraded node to serve", || health(a.addr).0 == 200);
        // Past the node timeout: a node that lost its number would have
        // been reaped by now, and its clients closed with 1012.
        // (Waiting is the point: nothing may happen meanwhile.)
        std::thread::sleep(Duration::from_millis(1_500));
        for n in [2 * round, 2 * round + 1] {
            let from = if n % 2 == 0 { &mut on_a } else { &mut on_b };
            from.send_json(json!({"type": "chat", "payload": {"n": n}}));
            for c in [&mut on_a, &mut on_b] {
                assert_eq!(next(c)["payload"]["n"], n);
            }
        }
        for c in [&mut alice, &mut bob] {
            c.send_json(json!({"type": "PING"}));
            assert_eq!(next(c)["type"], "PONG", "no presence event first");
        }
        assert_eq!(health(b_addr).1["nodes"], 2, "round {round}");
    }
}

/// TLS connections cannot be handed over (rustls keeps its session): they
/// are closed with 1012, plaintext ones stay, and the TLS listener serves
/// on in the new process.
#[test]
fn tls_connections_close_1012_and_plaintext_ones_stay() {
    let cert = crate::tls::data("server.pem");
    let key = crate::tls::data("server.key");
    let mut server = Upgrading::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let line = next_line(&server.log, " with TLS");
    let tls_addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|a| a.trim_end_matches(" with TLS").trim().parse().ok())
        .expect("the TLS address");
    let mut plain = ws_at(server.addr, "/chat");
    assert_eq!(next(&mut plain)["type"], "system");
    let mut secure = crate::tls::wss(tls_addr, "/chat");
    assert!(secure.read().expect("a greeting").is_text());
    server.ask_upgrade();
    server.upgraded();
    let code = loop {
        match secure.read().expect("the close frame") {
            Message::Close(Some(frame)) => break u16::from(frame.code),
            Message::Close(None) => panic!("a close without a code"),
            _ => {}
        }
    };
    assert_eq!(code, 1012);
    plain.send_json(json!({"type": "chat", "payload": {"n": 1}}));
    assert_eq!(next(&mut plain)["payload"]["n"], 1);
    let mut again = crate::tls::wss(tls_addr, "/chat");
    assert!(again.read().expect("a greeting").is_text());
}

/// The rate limiter and the heartbeat of a connection go on in the new
/// process where they were: an exhausted bucket stays exhausted, and a
/// client that never answers a ping is still dropped.
#[test]
fn rate_limits_and_heartbeats_go_on_across_an_upgrade() {
    let mut server = Upgrading::start(&["--rate-limit", "1", "--heartbeat-interval", "0.5"]);
    let mut flooder = ws_at(server.addr, "/chat");
    assert_eq!(next(&mut flooder)["type"], "system");
    // A client that never reads, so never answers a ping.
    let silent = ws_at(server.addr, "/chat");
    // A burst of two passes, the third is refused.
    for _ in 0..3 {
        flooder.send_json(json!({"type": "ping"}));
    }
    let started = Instant::now();
    assert_eq!(next(&mut flooder)["type"], "pong");
    assert_eq!(next(&mut flooder)["type"], "pong");
    assert!(
        next(&mut flooder)
            .to_string()
            .contains("rate limit exceeded")
    );
    server.ask_upgrade();
    server.upgraded();
    flooder.send_json(json!({"type": "ping"}));
    let m = next(&mut flooder);
    // A fresh bucket would have let it through (two tokens); the carried
    // one has refilled less than one since the burst.
    if started.elapsed() < Duration::from_millis(900) {
        assert!(m.to_string().contains("rate limit exceeded"), "{m}");
    }
    assert_eq!(server.metric("roomd_upgrades_total"), 1);
    await_ping(&mut flooder);
    // The silent client's socket ends (its pings unanswered).
    let mut silent = silent;
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            Instant::now() < deadline,
            "the silent client was never dropped"
        );
        match std::io::Read::read(silent.ws.get_mut(), &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("no end of the silent client's socket: {e}"),
        }
    }
}
