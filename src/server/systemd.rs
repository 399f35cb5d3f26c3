//! systemd integration: readiness notifications and socket activation.
//!
//! Both need file-descriptor handling that would otherwise take `unsafe`
//! (`FromRawFd`), which this crate forbids, so they go through the
//! `sd-notify` and `listenfd` crates.

use std::io;
use std::net::TcpListener;

/// Tells systemd we are ready (`READY=1`), if `NOTIFY_SOCKET` is set.
pub fn notify_ready() {
    notify(sd_notify::NotifyState::Ready);
}

/// Tells systemd we are stopping (`STOPPING=1`), if `NOTIFY_SOCKET` is set.
pub fn notify_stopping() {
    notify(sd_notify::NotifyState::Stopping);
}

/// Tells systemd a reload (a live upgrade) started (`RELOADING=1`).
pub fn notify_reloading() {
    let mut states = vec![sd_notify::NotifyState::Reloading];
    // systemd 253 and later want the time the reload started.
    states.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
    notify_all(&states);
}

/// Tells systemd a live upgrade is done: `pid` is the main process now,
/// and it is ready (`MAINPID=`, `READY=1`; the unit needs
/// `NotifyAccess=all`, as the message comes from the old process).
pub fn notify_main_pid(pid: u32) {
    notify_all(&[
        sd_notify::NotifyState::MainPid(pid),
        sd_notify::NotifyState::Ready,
    ]);
}

fn notify(state: sd_notify::NotifyState<'_>) {
    notify_all(&[state]);
}

fn notify_all(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("sd_notify failed: {e}");
    }
}

/// The name that marks a passed socket as TLS (`FileDescriptorName=tls`).
const TLS_NAME: &str = "tls";

/// TCP listeners passed by socket activation (`LISTEN_FDS`), in order,
/// each with whether it is TLS (named `tls` in `LISTEN_FDNAMES`); empty
/// when not socket-activated.
pub fn inherited_listeners() -> io::Result<Vec<(TcpListener, bool)>> {
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let names: Vec<&str> = names.split(':').collect();
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i)? {
            Some(l) => listeners.push((l, names.get(i) == Some(&TLS_NAME))),
            None => log::warn!("inherited descriptor {i} is not a TCP listener; ignored"),
        }
    }
    Ok(listeners)
}
