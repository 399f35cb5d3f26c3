//! The `roomd` binary itself: flags, and graceful shutdown on SIGTERM.

use crate::live::binary::roomd;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Starts the binary on port 0 and returns it with its address.
fn start(args: &[&str], envs: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut command = roomd();
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(envs.iter().copied());
    let server = crate::live::binary::spawn(command);
    (server.child, server.addr)
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("roomd did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_closes_websockets_1001_and_exits_0() {
    let (mut child, addr) = start(&[], &[]);
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/chat"), stream).expect("handshake");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let code = loop {
        match ws.read().expect("close frame before the timeout") {
            Message::Close(Some(frame)) => {
                assert_eq!(frame.reason.as_str(), "server shutting down");
                break u16::from(frame.code);
            }
            Message::Close(None) => panic!("close without a code"),
            _ => {}
        }
    };
    assert_eq!(code, 1001);
    ws.flush().expect("close reply sent");
    let started = Instant::now();
    let status = wait(&mut child);
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited the whole grace: {:?}",
        started.elapsed()
    );
}

fn sigterm(child: &Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

#[test]
fn systemd_is_notified_ready_and_stopping() {
    let path = std::env::temp_dir().join(format!("roomd-notify-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let (mut child, _) = start(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 notification");
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap().trim(), "READY=1");
    sigterm(&child);
    let n = socket.recv(&mut buf).expect("STOPPING=1 notification");
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap().trim(), "STOPPING=1");
    assert!(wait(&mut child).success());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn invalid_flag_exits_2_naming_it() {
    let out = roomd()
        .args(["--max-connections", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--max-connections"), "{err}");
    let out = roomd().env("ROOMD_RATE_LIMIT", "fast").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate-limit"));
}

#[test]
fn help_lists_every_flag_and_replay_and_version_prints_the_version() {
    let out = roomd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--route",
        "--allow-origin",
        "--heartbeat-interval",
        "--max-message-size",
        "--max-connections",
        "--max-outbound-bytes",
        "--rate-limit",
        "--rate-limit-close-after",
        "--presence-stats-interval",
        "--request-timeout",
        "--log-level",
        "--journal",
        "replay",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let out = roomd().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        concat!("roomd ", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    let mut child = roomd()
        .args(["--listen", "127.0.0.1:0", "--log-level", "debug"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn roomd");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("a listening line").unwrap();
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().parse().unwrap();
        }
    };
    drop(lines); // the log pipe is gone, as when journald restarts
    for round in 0..20 {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
        let (mut ws, _) =
            tungstenite::client(format!("ws://{addr}/chat"), stream).expect("handshake");
        ws.send(Message::text(format!(
            "{{\"type\":\"ping\",\"n\":{round}}}"
        )))
        .unwrap();
        let mut pong = false;
        while !pong {
            match ws.read().expect("an answer") {
                Message::Text(t) => pong = t.as_str().contains("\"pong\""),
                Message::Close(_) => panic!("closed"),
                _ => {}
            }
        }
        let _ = ws.close(None);
    }
    assert!(child.try_wait().unwrap().is_none(), "roomd exited");
    child.kill().unwrap();
    let _ = child.wait();
}

/// The timers' flags reach the engine and the reactor: presence stats
/// every 100 ms (default 30 s), and a client that sends nothing dropped
/// after 300 ms (default 10 s), set through `ROOMD_REQUEST_TIMEOUT`; both
/// defaults are longer than the tests' bounded waits. (The stats line
/// comes on the engine's tick, once a second with the default heartbeat.)
#[test]
fn timer_flags_shorten_the_stats_interval_and_the_request_timeout() {
    let mut command = roomd();
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--presence-stats-interval",
            "100ms",
        ])
        .env("ROOMD_REQUEST_TIMEOUT", "0.3");
    let server = crate::live::binary::spawn(command);
    let mut child = server.child;
    let addr = server.addr;
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let (ws, _) =
        tungstenite::client(format!("ws://{addr}/presence?userId=7"), stream).expect("handshake");
    crate::live::binary::next_line(&server.log, "/presence: stats: 1 users, 1 connections");

    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = std::io::Read::read(&mut silent, &mut buf);
    assert!(
        matches!(read, Ok(0)),
        "{read:?} after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    drop(ws);
    sigterm(&child);
    assert!(wait(&mut child).success());
}
