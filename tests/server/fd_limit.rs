//! The binary out of file descriptors: connections left queued after
//! `EMFILE` are still accepted once sockets close, and it says so once.
//!
//! Only the server process is limited (`ulimit -n` in a `bash -c` wrapper
//! that then `exec`s the binary), never the test process.

use crate::live::raw::Raw;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Kills the server even if the test fails half-way (it would otherwise
/// outlive the test and hold its output pipe open).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Open files allowed to the server: about 8 for itself, the rest sockets.
const NOFILE: usize = 64;

#[test]
fn connections_queued_after_emfile_are_accepted_once_sockets_close() {
    let mut command = Command::new("bash");
    command
        .args(["-c", &format!("ulimit -n {NOFILE} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_roomd"))
        // A second, idle listener: retrying the first must not depend on it.
        .args(["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS");
    let server = crate::live::binary::spawn(command);
    let child = KillOnDrop(server.child);
    let (addr, lines) = (server.addr, server.log);
    let next_line = |what: &str| crate::live::binary::next_line(&lines, what);

    // Twice as many idle connections as the server has descriptors: the
    // first ones are accepted (and wait for a request), the rest stay
    // queued in the kernel.
    let mut idle: Vec<Raw> = (0..2 * NOFILE).map(|_| Raw::connect(addr)).collect();
    next_line("accept failed");
    let mut last = idle.pop().unwrap();
    last.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let start = Instant::now();
    drop(idle);
    let (status, text) = last.answer();
    assert_eq!(status, 200, "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "answered after {:?}",
        start.elapsed()
    );
    next_line("accepting connections again");

    // Once the server is gone its log ends, so this reads every line left.
    drop(child);
    let warnings = lines.iter().filter(|l| l.contains("accept failed"));
    assert_eq!(warnings.count(), 0, "warned once, not once per retry");
}
