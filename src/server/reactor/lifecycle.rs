//! The reactor's lifecycle: signals (SIGHUP reloads the TLS certificate
//! and key; SIGTERM and SIGINT shut down), the shutdown handle, and the
//! graceful shutdown (1001 to every WebSocket, a grace for their close
//! handshakes).

use super::timers::Timer;
use super::{Reactor, SHUTDOWN_GRACE_MS, SIGNALS};
use crate::protocol::close::CloseReason;
use mio::{Interest, Waker};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks a running reactor to shut down (from any thread).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::warn!("could not wake the reactor: {e}");
        }
    }
}

impl Reactor {
    /// A handle that starts the shutdown from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.flag.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Shuts down on SIGTERM and SIGINT; reloads TLS on SIGHUP.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    pub(super) fn on_signals(&mut self) {
        let Some(signals) = &mut self.signals else {
            return;
        };
        let pending: Vec<i32> = signals.pending().collect();
        for signal in pending {
            if signal == signal_hook::consts::SIGHUP {
                self.reload_tls();
            } else {
                log::info!("signal {signal}: shutting down");
                self.flag.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Re-reads the TLS certificate and key: new connections get them,
    /// open ones keep theirs; a pair that does not load is logged and the
    /// old one kept.
    fn reload_tls(&mut self) {
        let (Some(cert), Some(key)) = (&self.config.tls_cert, &self.config.tls_key) else {
            log::info!("SIGHUP: no TLS certificate configured, nothing to reload");
            return;
        };
        match crate::server::tls::load(cert, key) {
            Ok(identity) => {
                log::info!("SIGHUP: TLS certificate and key reloaded");
                self.tls = Some(identity);
            }
            Err(e) => log::warn!("SIGHUP: {e}; keeping the current certificate"),
        }
    }

    /// Stops accepting, closes every WebSocket with 1001 and drops every
    /// other socket; the loop ends once all are gone or at the grace.
    pub(super) fn begin_shutdown(&mut self, now: u64) {
        crate::server::systemd::notify_stopping();
        self.shutting_down = true;
        self.timers.set(Timer::Shutdown, now + SHUTDOWN_GRACE_MS);
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l.socket);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            let conn = &mut self.conns[k];
            if conn.ws_id().is_none() {
                self.drop_conn(k);
            } else if let Some(id) = conn.close(CloseReason::ShuttingDown, now + SHUTDOWN_GRACE_MS)
            {
                self.closed.push(id);
                self.mark_dirty(k);
            }
        }
        self.report_closed(now);
    }
}
