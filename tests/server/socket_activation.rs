//! systemd socket activation end to end: `systemd-socket-activate` (from
//! the systemd package, which roomd's unit targets) binds the address and
//! starts roomd with `LISTEN_FDS` on the port of `dist/roomd.socket`;
//! roomd must serve on that socket and not bind its own `--listen`.

use crate::live::binary::{KillOnDrop, next_line};
use crate::live::dist::unit_value;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::Message;

const ACTIVATE: &str = "systemd-socket-activate";

/// `dist/roomd.socket`'s `ListenStream=` port on a loopback address
/// nothing else uses, a random 127.x.y.1 (released again for the activator
/// to bind); a port the kernel hands out if another process holds that
/// port on every address.
fn unit_address() -> SocketAddr {
    let port: u16 = unit_value("roomd.socket", "ListenStream")
        .parse()
        .expect("ListenStream= is a port number");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let ip = format!(
        "127.{}.{}.1",
        1 + (nanos >> 8) % 250,
        1 + (std::process::id() % 250)
    );
    let probe = TcpListener::bind((ip.as_str(), port)).or_else(|e| {
        eprintln!("port {port} of roomd.socket is taken ({e}): using another");
        TcpListener::bind((ip.as_str(), 0))
    });
    probe.expect("bind a probe").local_addr().unwrap()
}

#[test]
fn serves_on_the_socket_systemd_passes() {
    let found = Command::new(ACTIVATE).arg("--help").output();
    assert!(
        found.is_ok(),
        "{ACTIVATE} not found: install systemd (apt-get install systemd)"
    );
    let addr = unit_address();
    let mut child = Command::new(ACTIVATE)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .args(["-l", &addr.to_string()])
        .arg(env!("CARGO_BIN_EXE_roomd"))
        // Would fail to bind if it were used: it is the activated address.
        .args(["--listen", &addr.to_string(), "--log-level", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the activator");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut child = KillOnDrop(child);
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // The activator starts roomd on the first connection.
    let deadline = Instant::now() + crate::live::TIMEOUT;
    let stream = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "{ACTIVATE} not listening: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/chat"), stream).expect("handshake");
    let greeting = ws.read().expect("a greeting");
    assert!(
        matches!(&greeting, Message::Text(t) if t.as_str().contains("\"system\"")),
        "{greeting:?}"
    );
    next_line(&log, "using 1 listener(s) from socket activation");
    let line = next_line(&log, "listening on ");
    assert!(line.ends_with(&format!("listening on {addr}")), "{line}");

    drop(ws);
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "roomd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
}
