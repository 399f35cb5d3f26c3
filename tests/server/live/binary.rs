//! The `roomd` binary as a child process: its address is read from its
//! `listening on ADDR` log line, and every log line stays readable.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// The `roomd` binary, without the systemd, seed and `ROOMD_` variables
/// of the test's own environment (a test that wants them sets them
/// again), in an empty working directory (so no stray `.env`).
pub fn roomd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roomd"));
    for var in [
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "PORT",
        "WS_PORT",
        "FRONTEND_URL",
    ] {
        command.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("ROOMD_") {
            command.env_remove(var);
        }
    }
    command.current_dir(scratch_dir("cwd"));
    command
}

/// A directory of this test process under cargo's directory for test
/// files, created if missing.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a test directory");
    dir
}

/// Kills the process when the test ends, passed or not (a leftover
/// server would keep the test's output pipe open).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running server: the child, its first listening address, its log.
pub struct Spawned {
    /// The process (`command`'s, which may be a wrapper around roomd).
    pub child: Child,
    /// The address of its first `listening on` line.
    pub addr: SocketAddr,
    /// Every later line it writes to stdout.
    pub log: Receiver<String>,
}

/// Starts `command` with stdout piped and waits for its listening line.
pub fn spawn(mut command: Command) -> Spawned {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn roomd");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = next_line(&log, "listening on ");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|a| a.trim().parse().ok())
        .expect("an address after `listening on`");
    Spawned { child, addr, log }
}

/// The next log line containing `what`, waiting at most [`super::TIMEOUT`].
pub fn next_line(log: &Receiver<String>, what: &str) -> String {
    let deadline = Instant::now() + super::TIMEOUT;
    loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line with {what:?}"));
        if line.contains(what) {
            return line;
        }
    }
}
