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
mod systemd;

pub use config::Config;
pub use reactor::{CLOSE_GRACE_MS, ShutdownHandle};

use std::io;
use std::net::SocketAddr;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    reactor: reactor::Reactor,
}

impl Server {
    /// Binds the listeners: those passed by systemd socket activation if
    /// any, else `config.listen`.
    pub fn bind(config: Config) -> io::Result<Server> {
        let mut listeners = systemd::inherited_listeners()?;
        if listeners.is_empty() {
            for addr in &config.listen {
                let l = listen::bind(*addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                listeners.push(l);
            }
        } else {
            log::info!(
                "using {} listener(s) from socket activation",
                listeners.len()
            );
        }
        if config.allow_origins.is_empty() {
            log::warn!("no --allow-origin configured: every origin is allowed");
        }
        let reactor = reactor::Reactor::new(config, listeners, clock::Clock::seed())?;
        Ok(Server { reactor })
    }

    /// The addresses actually listened on (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.reactor.local_addrs()
    }

    /// A handle that starts the graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.reactor.shutdown_handle()
    }

    /// Shuts down gracefully on SIGTERM and SIGINT.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        self.reactor.handle_signals()
    }

    /// Runs until shut down.
    pub fn run(mut self) -> io::Result<()> {
        for addr in self.local_addrs() {
            log::info!("listening on {addr}");
        }
        systemd::notify_ready();
        self.reactor.run()
    }
}

/// Runs the server as the binary does: bind, handle signals, serve.
pub fn run(config: Config) -> io::Result<()> {
    let mut server = Server::bind(config)?;
    server.handle_signals()?;
    server.run()
}
