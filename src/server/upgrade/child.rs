//! The new binary as a child process: asking which hand-over versions it
//! reads, starting it with the hand-over socket as its standard input,
//! waiting for its word that it serves, and (in the new process) taking
//! that socket back.

use super::transport::SERVING;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The variable that tells a process started by a live upgrade to take
/// the hand-over from its standard input.
pub const HANDOVER_ENV: &str = "ROOMD_HANDOVER";

/// The subcommand that prints the hand-over versions a binary reads.
pub const VERSIONS_SUBCOMMAND: &str = "handover-versions";

/// How long the version query may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the new process may take to serve once started.
pub const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary this process was started from, made absolute (a bare name
/// is looked up in `PATH`), for `--upgrade-binary`'s default: not
/// `/proc/self/exe`, which names the replaced file.
pub fn started_from() -> Option<PathBuf> {
    let arg0 = PathBuf::from(std::env::args_os().next()?);
    if arg0.components().count() > 1 {
        return std::path::absolute(arg0).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(&arg0))
        .find(|candidate| candidate.is_file())
        .and_then(|found| std::path::absolute(found).ok())
}

/// Runs `binary handover-versions` and returns the versions it prints
/// (one a line); an error for a binary that does not start, fails, prints
/// none, or takes longer than `timeout`.
pub fn query_versions(binary: &Path, timeout: Duration) -> Result<Vec<u32>, String> {
    let mut child = Command::new(binary)
        .arg(VERSIONS_SUBCOMMAND)
        .env_remove(HANDOVER_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let Some(mut stdout) = child.stdout.take() else {
        abandon(child);
        return Err("no pipe to the version query".into());
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let read = stdout.read_to_string(&mut text).map(|_| text);
        let _ = tx.send(read);
    });
    let text = match rx.recv_timeout(timeout) {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => {
            abandon(child);
            return Err(format!("version query: {e}"));
        }
        Err(_) => {
            abandon(child);
            return Err(format!("version query took over {timeout:?}"));
        }
    };
    let status = child.wait().map_err(|e| format!("version query: {e}"))?;
    if !status.success() {
        return Err(format!("version query failed ({status})"));
    }
    let versions: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    if versions.is_empty() {
        return Err(format!(
            "{} printed no hand-over versions (not roomd?)",
            binary.display()
        ));
    }
    Ok(versions)
}

/// Starts `binary` with this process's arguments, `socket` as its
/// standard input and [`HANDOVER_ENV`] set.
pub fn spawn(binary: &Path, socket: UnixStream) -> Result<Child, String> {
    Command::new(binary)
        .args(std::env::args_os().skip(1))
        .env(HANDOVER_ENV, "1")
        .stdin(Stdio::from(OwnedFd::from(socket)))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))
}

/// Waits at most `timeout` for the new process's word that it serves.
pub fn await_serving(stream: &UnixStream, timeout: Duration) -> Result<(), String> {
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    match (&*stream).read(&mut byte) {
        Ok(1) if byte[0] == SERVING => Ok(()),
        Ok(0) => Err(EXITED.into()),
        Err(e) if exited(&e) => Err(EXITED.into()),
        Ok(_) => Err("the new process said something else".into()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            Err(format!("the new process did not serve within {timeout:?}"))
        }
        Err(e) => Err(format!("waiting for the new process: {e}")),
    }
}

/// Why an upgrade failed when the new process went away.
pub const EXITED: &str = "the new process exited while taking over";

/// Whether `e` says that the new process's end of the socket is gone.
pub fn exited(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
    )
}

/// Kills a child given up on and reaps it.
pub fn abandon(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// In a process started by a live upgrade: the hand-over socket (its
/// standard input). `None` in any other process.
pub fn handover_socket() -> Option<io::Result<UnixStream>> {
    std::env::var_os(HANDOVER_ENV)?;
    let fd = io::stdin().as_fd().try_clone_to_owned();
    Some(fd.map(UnixStream::from))
}

/// Tells the old process that this one serves.
pub fn confirm_serving(stream: &UnixStream) -> io::Result<()> {
    use std::io::Write;
    (&*stream).write_all(&[SERVING])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_that_is_not_roomd_is_refused() {
        let e = query_versions(Path::new("/nonexistent/roomd"), QUERY_TIMEOUT).unwrap_err();
        assert!(e.contains("cannot run"), "{e}");
        let e = query_versions(Path::new("/bin/true"), QUERY_TIMEOUT).unwrap_err();
        assert!(e.contains("no hand-over versions"), "{e}");
        let e = query_versions(Path::new("/bin/false"), QUERY_TIMEOUT).unwrap_err();
        assert!(e.contains("failed"), "{e}");
    }

    #[test]
    fn a_silent_new_process_times_out_and_a_dead_one_is_seen() {
        let (a, b) = UnixStream::pair().unwrap();
        let e = await_serving(&a, Duration::from_millis(50)).unwrap_err();
        assert!(e.contains("did not serve"), "{e}");
        drop(b);
        let e = await_serving(&a, Duration::from_millis(50)).unwrap_err();
        assert!(e.contains("exited"), "{e}");
        let (a, b) = UnixStream::pair().unwrap();
        confirm_serving(&b).unwrap();
        assert_eq!(await_serving(&a, Duration::from_secs(5)), Ok(()));
    }
}
