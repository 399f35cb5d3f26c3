//! All IO: the mio reactor, connections, HTTP answers, the clock, systemd.
//!
//! [`run`] is what the `roomd` binary does; [`Server`] is the same thing
//! with its addresses and a shutdown handle exposed, for tests and
//! embedding.

pub mod auth;
mod budget;
mod buffer_pool;
mod clock;
pub mod config;
mod connection;
mod http;
mod listen;
pub mod logger;
mod metrics;
mod reactor;
pub mod redis;
mod systemd;
mod tls;
mod upgrade;

pub use config::Config;
pub use reactor::{CLOSE_GRACE_MS, ShutdownHandle};
pub use upgrade::HANDOVER_VERSIONS;

use std::io;
use std::net::SocketAddr;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    reactor: reactor::Reactor,
}

impl Server {
    /// Binds the listeners: those passed by systemd socket activation if
    /// any (those named `tls` are TLS), else `config.listen` and
    /// `config.tls_listen`; loads the TLS certificate and key if a TLS
    /// listener needs them, and the token keys. A configuration that does
    /// not load is an [`io::ErrorKind::InvalidInput`] error.
    pub fn bind(config: Config) -> io::Result<Server> {
        let mut listeners = systemd::inherited_listeners()?;
        if listeners.is_empty() {
            let plain = config.listen.iter().map(|a| (a, false));
            for (addr, tls) in plain.chain(config.tls_listen.iter().map(|a| (a, true))) {
                let l = listen::bind(*addr, config.cluster.reuse_port).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                listeners.push((l, tls));
            }
        } else {
            log::info!(
                "using {} listener(s) from socket activation",
                listeners.len()
            );
        }
        let (tls, verifier) = Self::load_keys(&config, &listeners)?;
        let seed = clock::Clock::seed();
        let reactor = reactor::Reactor::new(config, listeners, tls, verifier, seed)?;
        Ok(Server { reactor })
    }

    /// The TLS identity (if `tls_needed`) and the token verifier.
    fn load_keys_for(
        config: &Config,
        tls_needed: bool,
    ) -> io::Result<(
        Option<tls::TlsIdentity>,
        Option<crate::protocol::token::Verifier>,
    )> {
        let tls = if tls_needed {
            let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
                let e = "a TLS listener needs --tls-cert and --tls-key";
                return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
            };
            let identity =
                tls::load(cert, key).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Some(identity)
        } else {
            None
        };
        let verifier =
            auth::load(&config.auth).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if config.allow_origins.is_empty() {
            log::warn!("no --allow-origin configured: every origin is allowed");
        }
        Ok((tls, verifier))
    }

    /// In a process started by a live upgrade: takes the hand-over from
    /// `link` (the document, then the descriptors) and rebuilds the
    /// server from it. It serves (and tells the old process so) once run.
    pub fn take_over(config: Config, link: std::os::unix::net::UnixStream) -> io::Result<Server> {
        let early = reactor::Early::start(&config, &link)?;
        let (document, fds) = upgrade::transport::receive(&link)?;
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let (rest, engine) = upgrade::Handover::split(&document).map_err(invalid)?;
        let handover = upgrade::Handover::decode(rest).map_err(invalid)?;
        let engine = crate::engine::Engine::restore(engine)
            .map_err(|e| invalid(format!("hand-over: {e}")))?;
        let tls_needed = handover.listeners.contains(&true);
        let keys = Self::load_keys_for(&config, tls_needed)?;
        let reactor = reactor::Reactor::resume(config, handover, engine, fds, keys, link, early)?;
        Ok(Server { reactor })
    }

    /// The TLS identity (if a listener is TLS) and the token verifier.
    fn load_keys(
        config: &Config,
        listeners: &[(std::net::TcpListener, bool)],
    ) -> io::Result<(
        Option<tls::TlsIdentity>,
        Option<crate::protocol::token::Verifier>,
    )> {
        Self::load_keys_for(config, listeners.iter().any(|(_, tls)| *tls))
    }

    /// The plaintext addresses actually listened on (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(false)
    }

    /// The TLS addresses actually listened on.
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(true)
    }

    fn addrs(&self, tls: bool) -> Vec<SocketAddr> {
        let all = self.reactor.local_addrs().into_iter();
        all.filter(|(_, t)| *t == tls).map(|(a, _)| a).collect()
    }

    /// A handle that starts the graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.reactor.shutdown_handle()
    }

    /// Shuts down gracefully on SIGTERM and SIGINT; reloads the TLS
    /// certificate and key on SIGHUP; upgrades live on SIGUSR2.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        self.reactor.handle_signals()
    }

    /// Runs until shut down.
    pub fn run(mut self) -> io::Result<()> {
        for (addr, tls) in self.reactor.local_addrs() {
            let with = if tls { " with TLS" } else { "" };
            log::info!("listening on {addr}{with}");
        }
        // After a live upgrade the old process tells systemd (MAINPID=,
        // READY=1) once this one said it serves.
        if !self.reactor.confirm_serving()? {
            systemd::notify_ready();
        }
        self.reactor.run()
    }
}

/// Runs the server as the binary does: bind (or take over from a live
/// upgrade's old process), handle signals, serve.
pub fn run(config: Config) -> io::Result<()> {
    let mut server = match upgrade::child::handover_socket() {
        Some(link) => Server::take_over(config, link?)?,
        None => Server::bind(config)?,
    };
    server.handle_signals()?;
    server.run()
}
