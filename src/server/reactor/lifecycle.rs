//! The reactor's lifecycle: construction, signals (SIGHUP reloads the TLS
//! certificate and key; SIGUSR2 upgrades live; SIGTERM and SIGINT shut
//! down), the shutdown
//! handle, and the graceful shutdown (1001 to every WebSocket, a grace for
//! their close handshakes).

use super::timers::{Timer, Timers};
use super::{
    LISTENER_BASE, Listener, POOL_BYTES, Reactor, SHUTDOWN_GRACE_MS, SIGNALS, WAKER, bus, transfer,
};
use crate::engine::{ConnMap, Engine};
use crate::journal::JournalWriter;
use crate::protocol::close::CloseReason;
use crate::protocol::token::Verifier;
use crate::server::budget::Budget;
use crate::server::buffer_pool::BufferPool;
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::metrics::ServerCounters;
use crate::server::tls::TlsIdentity;
use mio::net::TcpListener;
use mio::{Interest, Poll, Token, Waker};
use slab::Slab;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a reactor starts from besides its settings and sockets: a new
/// engine, clock and journal, or those a live upgrade handed over.
pub(super) struct Parts {
    /// The engine.
    pub engine: Engine,
    /// The clock its times are read from.
    pub clock: Clock,
    /// The journal, if any.
    pub journal: Option<JournalWriter<std::fs::File>>,
    /// The poll and Redis client started before a live upgrade's
    /// hand-over, if any.
    pub early: Option<super::early::Early>,
}

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
    /// A reactor on already-bound listeners (`true` for TLS ones, served
    /// with `tls`), with an engine seeded `seed`.
    pub fn new(
        config: Config,
        listeners: Vec<(std::net::TcpListener, bool)>,
        tls: Option<TlsIdentity>,
        verifier: Option<Verifier>,
        seed: u64,
    ) -> io::Result<Self> {
        let engine_config = config.engine_config();
        log::info!("engine seed {seed}");
        let journal = match &config.journal {
            None => None,
            Some(path) => Some(JournalWriter::create(path, seed, &engine_config)?),
        };
        let engine = Engine::new(engine_config, seed);
        let parts = Parts {
            engine,
            clock: Clock::start(),
            journal,
            early: None,
        };
        Self::assemble(config, listeners, tls, verifier, parts)
    }

    /// A reactor on `listeners` with `parts` (new, or handed over), no
    /// connection yet.
    pub(super) fn assemble(
        config: Config,
        listeners: Vec<(std::net::TcpListener, bool)>,
        tls: Option<TlsIdentity>,
        verifier: Option<Verifier>,
        parts: Parts,
    ) -> io::Result<Self> {
        let Parts {
            engine,
            clock,
            journal,
            early,
        } = parts;
        let (poll, early_redis) = match early {
            Some(early) => (early.poll, Some(early.redis)),
            None => (Poll::new()?, None),
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut mio_listeners = Vec::new();
        for (i, (l, tls)) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            let mut socket = TcpListener::from_std(l);
            poll.registry()
                .register(&mut socket, Token(LISTENER_BASE + i), Interest::READABLE)?;
            mio_listeners.push(Listener { socket, tls });
        }
        let redis = match early_redis {
            Some(redis) => redis,
            None => bus::start(&config, poll.registry(), clock.now_ms())?,
        };
        let upgrade_binary = config
            .upgrade_binary
            .clone()
            .or_else(crate::server::upgrade::child::started_from);
        Ok(Reactor {
            journal,
            poll,
            accept_paused: vec![false; mio_listeners.len()],
            listeners: mio_listeners,
            tls,
            verifier,
            conns: Slab::new(),
            tokens: ConnMap::default(),
            engine,
            clock,
            outbound: Budget::new(config.max_total_outbound_bytes),
            inbound: Budget::new(config.max_total_inbound_bytes),
            config,
            counters: ServerCounters::default(),
            timers: Timers::default(),
            next_id: 1,
            next_serial: 0,
            scratch: vec![0; transfer::READ_CHUNK],
            outputs: Vec::new(),
            last_text: None,
            last_frame: Vec::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            closed: Vec::new(),
            pool: BufferPool::new(POOL_BYTES),
            turn_output: 0,
            socket_freed: false,
            flag: Arc::new(AtomicBool::new(false)),
            waker,
            signals: None,
            shutting_down: false,
            redis,
            upgrade_binary,
            upgrade_requested: false,
            upgrade: None,
            handover_link: None,
        })
    }

    /// The listeners' local addresses, and whether each is TLS.
    pub fn local_addrs(&self) -> Vec<(std::net::SocketAddr, bool)> {
        self.listeners
            .iter()
            .filter_map(|l| Some((l.socket.local_addr().ok()?, l.tls)))
            .collect()
    }

    /// A handle that starts the shutdown from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.flag.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Shuts down on SIGTERM and SIGINT; reloads TLS on SIGHUP; upgrades
    /// live on SIGUSR2.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGUSR2,
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
            } else if signal == signal_hook::consts::SIGUSR2 {
                log::info!("SIGUSR2: live upgrade");
                self.upgrade_requested = true;
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
