//! Record and replay end to end: the real `roomd` binary with `--journal`,
//! clients on several protocols over loopback, then `roomd replay --check`
//! on the journal, and the replayed sends against what clients received.

use roomd::journal::JournalReader;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

use crate::live::TIMEOUT;
use crate::live::binary::roomd;

/// A running `roomd` and its log lines.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
}

/// The binary on port 0 with a journal (`--journal`, or `ROOMD_JOURNAL`
/// when `by_env`) and a heartbeat every `heartbeat_secs`.
fn start(journal: &Path, by_env: bool, heartbeat_secs: &str) -> Server {
    let mut command = roomd();
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--heartbeat-interval",
        heartbeat_secs,
    ]);
    if by_env {
        command.env("ROOMD_JOURNAL", journal);
    } else {
        command.arg("--journal").arg(journal);
    }
    let crate::live::binary::Spawned { child, addr, log } = crate::live::binary::spawn(command);
    Server { child, addr, log }
}

fn stop(mut child: Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "roomd exit status {status:?}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("roomd did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that records every text frame and the close code it got.
struct Client {
    ws: WebSocket<TcpStream>,
    local: SocketAddr,
    texts: Vec<String>,
    close_code: Option<u16>,
}

impl Client {
    fn connect(addr: SocketAddr, path: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        let local = stream.local_addr().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{addr}{path}"), stream).expect("handshake");
        Client {
            ws,
            local,
            texts: Vec::new(),
            close_code: None,
        }
    }

    fn send(&mut self, value: Value) {
        self.send_raw(&value.to_string());
    }

    fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// Reads the next text frame (answering pings on the way).
    fn recv(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no message in time");
            match self.ws.read().expect("read") {
                Message::Text(t) => {
                    self.texts.push(t.to_string());
                    return serde_json::from_str(t.as_str()).expect("JSON");
                }
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// Reads until a message of type `ty`.
    fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let m = self.recv();
            if m["type"] == ty {
                return m;
            }
        }
    }

    /// Reads until the connection ends, recording texts and the close code.
    fn read_to_end(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(t)) => self.texts.push(t.to_string()),
                Ok(Message::Close(frame)) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        panic!("connection did not end in time");
    }

    /// Closes from the client side and reads until the server's reply.
    fn close(&mut self) {
        self.ws.close(None).expect("close");
        self.read_to_end();
        self.close_code = None;
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("roomd-e2e-{}-{name}", std::process::id()))
}

/// The peer address of every connection in the journal's `open` records.
fn peers(journal: &Path) -> BTreeMap<String, u64> {
    let file = std::fs::File::open(journal).unwrap();
    let reader = JournalReader::new(BufReader::new(file)).expect("journal header");
    let mut peers = BTreeMap::new();
    for entry in reader {
        let entry = entry.expect("journal record");
        if let roomd::engine::Input::Open { conn, peer, .. } = entry.record.input {
            peers.insert(peer.expect("peer address").to_string(), conn.0);
        }
    }
    peers
}

/// What `roomd replay FILE` printed for one connection.
#[derive(Default)]
struct Replayed {
    texts: Vec<String>,
    close_code: Option<u16>,
    terminated: bool,
}

/// `roomd replay FILE` output, per connection.
fn replayed(journal: &Path) -> BTreeMap<u64, Replayed> {
    let out = roomd().arg("replay").arg(journal).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut conns: BTreeMap<u64, Replayed> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let action: Value = serde_json::from_str(line).unwrap();
        let conn = conns.entry(action["conn"].as_u64().unwrap()).or_default();
        let payload = &action["payload"];
        match action["kind"].as_str().unwrap() {
            "send" => conn.texts.push(payload.as_str().unwrap().to_string()),
            "close" => conn.close_code = Some(payload["code"].as_u64().unwrap() as u16),
            "terminate" => conn.terminated = true,
            _ => {}
        }
    }
    conns
}

/// Drives joins, broadcasts, relays, malformed input, disconnects and a
/// heartbeat timeout on five protocols; returns every client.
fn scenario(addr: SocketAddr) -> Vec<Client> {
    // Chat: broadcast to all, malformed input, echo.
    let mut chat_a = Client::connect(addr, "/chat");
    chat_a.recv_type("system");
    let mut chat_b = Client::connect(addr, "/chat");
    chat_b.recv_type("system");
    chat_a.send(json!({"type":"chat","payload":{"text":"hello","user":"a"}}));
    assert_eq!(chat_a.recv_type("chat")["payload"]["text"], "hello");
    assert_eq!(chat_b.recv_type("chat")["payload"]["text"], "hello");
    chat_b.send_raw("not json");
    assert_eq!(chat_b.recv()["type"], "error");
    chat_b.send(json!({"type":"typing","payload":true}));
    assert_eq!(chat_b.recv()["type"], "typing");
    // A binary frame on chat closes with 1003.
    chat_b
        .ws
        .send(Message::binary(vec![1, 2, 3]))
        .expect("send");
    chat_b.read_to_end();
    assert_eq!(chat_b.close_code, Some(1003));

    // Signal: create, join, relay an offer and a chat message.
    let mut host = Client::connect(addr, "/signal");
    let mut guest = Client::connect(addr, "/signal");
    host.send(json!({"type":"create-room"}));
    let room = host.recv_type("room-created")["roomId"].clone();
    guest.send(json!({"type":"join-room","roomId":room}));
    host.recv_type("peer-joined");
    guest.recv_type("peer-joined");
    let offer = json!({"type":"signal","roomId":room,"signal":{"type":"offer","sdp":"v=0"}});
    host.send(offer.clone());
    assert_eq!(guest.recv_type("signal"), offer);
    guest.send(json!({"type":"chat-message","roomId":room,"message":"hi"}));
    assert_eq!(host.recv_type("chat-message")["message"], "hi");
    guest.send(json!({"type":"signal","roomId":"000000"}));
    assert_eq!(guest.recv()["type"], "error");

    // Stream: two participants, streaming and chat.
    let mut s1 = Client::connect(addr, "/stream");
    let mut s2 = Client::connect(addr, "/stream");
    s1.send(json!({"type":"join-room","roomId":"r","userId":"u1","userName":"One"}));
    s1.recv_type("room-joined");
    s2.send(json!({"type":"join-room","roomId":"r","userId":"u2","userName":"Two"}));
    s2.recv_type("room-joined");
    s1.recv_type("user-joined");
    s1.send(json!({"type":"start-streaming","roomId":"r","userId":"u1"}));
    s1.recv_type("user-streaming-started");
    s2.recv_type("user-streaming-started");
    s2.send(json!({"type":"chat-message","roomId":"r","userId":"u1","content":"spoof"}));
    assert_eq!(s2.recv()["type"], "error");

    // Presence: two users see each other come and go.
    let mut p1 = Client::connect(addr, "/presence?userId=7");
    p1.recv_type("ONLINE_USERS");
    let mut p2 = Client::connect(addr, "/presence?userId=alice");
    p2.recv_type("ONLINE_USERS");
    assert_eq!(p1.recv_type("USER_ONLINE")["userId"], "alice");
    p2.send(json!({"type":"PING"}));
    p2.recv_type("PONG");

    // Scratch: a session and a sync.
    let mut sc1 = Client::connect(addr, "/scratch");
    let mut sc2 = Client::connect(addr, "/scratch");
    sc1.send(json!({"type":"join","sessionId":"s"}));
    sc1.recv_type("joined");
    sc2.send(json!({"type":"join","sessionId":"s"}));
    sc2.recv_type("joined");
    sc1.recv_type("user-joined");
    sc2.send(json!({"type":"sync","sessionId":"s","changes":{"x":1}}));
    assert_eq!(sc1.recv_type("sync")["changes"], json!({"x":1}));

    // Disconnects, each seen by the peers that remain.
    host.close();
    guest.recv_type("peer-left");
    s1.close();
    s2.recv_type("user-left");
    p2.close();
    p1.recv_type("USER_OFFLINE");
    sc2.close();

    // Heartbeat timeout (every 2 s): a client that never reads never
    // answers a ping, and is terminated within two intervals and a tick.
    let mut idle = Client::connect(addr, "/scratch");
    std::thread::sleep(Duration::from_millis(5_500));
    idle.read_to_end();
    let mut clients = vec![chat_a, chat_b, host, guest, s1, s2, p1, p2, sc1, sc2, idle];
    // Most were terminated meanwhile; close any left from our side (the
    // echo of our close is the WebSocket layer's, not an engine action).
    for c in &mut clients[..] {
        if c.close_code.is_none() {
            let _ = c.ws.close(None);
            c.read_to_end();
            c.close_code = None;
        }
    }
    clients
}

#[test]
fn a_journaled_run_replays_identically_and_matches_what_clients_received() {
    let journal = temp("journal.jsonl");
    let server = start(&journal, false, "2");
    let clients = scenario(server.addr);
    stop(server.child);

    let check = roomd()
        .args(["replay", "--check"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");

    let peers = peers(&journal);
    let replayed = replayed(&journal);
    assert_eq!(peers.len(), clients.len(), "one open per client");
    for client in &clients {
        let conn = peers[&client.local.to_string()];
        let expected = replayed.get(&conn).map(|r| &r.texts[..]).unwrap_or(&[]);
        assert_eq!(client.texts, expected, "texts of conn {conn}");
        let close = replayed.get(&conn).and_then(|r| r.close_code);
        assert_eq!(client.close_code, close, "close of conn {conn}");
    }
    let total: usize = clients.iter().map(|c| c.texts.len()).sum();
    assert!(total >= 30, "only {total} frames received");
    let idle = peers[&clients.last().unwrap().local.to_string()];
    let timed_out = replayed.get(&idle).is_some_and(|r| r.terminated);
    assert!(timed_out, "the idle client was not terminated");

    // Edit one recorded input in a copy: --check finds it at that line.
    let text = std::fs::read_to_string(&journal).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains(r#"\"text\":\"hello\""#))
        .expect("the chat message's line")
        + 1;
    let edited = text.replacen(r#"\"text\":\"hello\""#, r#"\"text\":\"HELLO\""#, 1);
    let copy = temp("edited.jsonl");
    std::fs::write(&copy, edited).unwrap();
    let check = roomd()
        .args(["replay", "--check"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.starts_with(&format!("divergence at line {line} ")),
        "{report}"
    );
    assert!(report.contains("HELLO"), "{report}");
    std::fs::remove_file(&journal).unwrap();
    std::fs::remove_file(&copy).unwrap();
}

#[test]
fn a_journal_write_failure_is_logged_once_and_the_server_goes_on() {
    // /dev/full accepts the open and fails every write with ENOSPC.
    let server = start(Path::new("/dev/full"), true, "30");
    let mut a = Client::connect(server.addr, "/chat");
    a.recv_type("system");
    for round in 0..3 {
        // Past a flush each round (flushes are at most a second apart).
        std::thread::sleep(Duration::from_millis(1_100));
        a.send(json!({"type":"chat","payload":round}));
        assert_eq!(a.recv_type("chat")["payload"], round);
    }
    stop(server.child);
    let log: Vec<String> = server.log.try_iter().collect();
    let failures = log
        .iter()
        .filter(|l| l.contains("journal: write failed"))
        .count();
    assert_eq!(failures, 1, "{log:#?}");
}
