//! The old process's side of a live upgrade (SIGUSR2): ask the new binary
//! which hand-over versions it reads (in a thread, serving meanwhile),
//! start it and send it every connection's socket ahead (a little each
//! turn, serving meanwhile), and once it says it has them: stop, close TLS
//! connections with 1012, hand it the document and the descriptors not
//! sent ahead, and exit once it serves. Anything failing before that
//! refuses the upgrade with one log line: the process serves on, every
//! descriptor still its own.

use super::Reactor;
use super::timers::Timer;
use crate::protocol::close::CloseReason;
use crate::server::clock::Clock;
use crate::server::systemd;
use crate::server::upgrade::handover::Handover;
use crate::server::upgrade::presend::{Sender, SocketId};
use crate::server::upgrade::transport::READY;
use crate::server::upgrade::{HANDOVER_VERSION, child, transport};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::mpsc::{Receiver, TryRecvError};

/// The hand-over socket's token while sockets are sent ahead.
pub(super) const LINK: Token = Token(usize::MAX - 4);

/// A live upgrade under way.
pub(super) enum Upgrade {
    /// The new binary is asked which hand-over versions it reads (in a
    /// thread).
    Query(Receiver<Result<Vec<u32>, String>>),
    /// The new process runs and is sent the connections' sockets ahead
    /// while this one serves; it says [`READY`] once it has them all.
    Starting(Box<Starting>),
}

/// A new process taking the sockets sent ahead.
pub(super) struct Starting {
    child: Child,
    /// The hand-over socket (non-blocking until the hand-over).
    link: UnixStream,
    sender: Sender,
}

impl Reactor {
    /// Starts an upgrade asked for this turn, and moves one under way on;
    /// `true` if the new process serves now (this one must stop at once,
    /// touching no socket).
    pub(super) fn upgrade_if_requested(&mut self, now: u64) -> bool {
        if std::mem::take(&mut self.upgrade_requested) {
            self.start_upgrade();
        }
        match self.upgrade.take() {
            None => false,
            Some(Upgrade::Query(query)) => {
                let answer = match query.try_recv() {
                    Ok(answer) => answer,
                    Err(TryRecvError::Empty) => {
                        self.upgrade = Some(Upgrade::Query(query));
                        return false;
                    }
                    Err(TryRecvError::Disconnected) => Err("the version query stopped".into()),
                };
                if self.shutting_down {
                    log::info!("upgrade dropped: shutting down");
                    return false;
                }
                match answer.and_then(|versions| self.start_child(now, &versions)) {
                    Ok(starting) => self.advance_upgrade(now, starting),
                    Err(e) => {
                        self.refuse(&e);
                        false
                    }
                }
            }
            Some(Upgrade::Starting(starting)) => self.advance_upgrade(now, starting),
        }
    }

    /// Starts the new binary, which said it reads `versions`, with the
    /// hand-over socket as its standard input; every plaintext
    /// connection's socket is to be sent ahead.
    fn start_child(&mut self, now: u64, versions: &[u32]) -> Result<Box<Starting>, String> {
        let binary = self
            .upgrade_binary
            .clone()
            .ok_or("no binary to upgrade to (set --upgrade-binary)")?;
        if !versions.contains(&HANDOVER_VERSION) {
            return Err(format!(
                "{} reads hand-over versions {versions:?}, not {HANDOVER_VERSION}",
                binary.display()
            ));
        }
        let (link, theirs) = UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
        let child = child::spawn(&binary, theirs)?;
        let registered = link.set_nonblocking(true).and_then(|()| {
            let interest = Interest::READABLE | Interest::WRITABLE;
            let fd = link.as_raw_fd();
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), LINK, interest)
        });
        if let Err(e) = registered {
            child::abandon(child);
            return Err(format!("hand-over socket: {e}"));
        }
        let ids: Vec<SocketId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.is_tls())
            .map(|(key, c)| SocketId {
                key,
                serial: c.serial(),
            })
            .collect();
        log::info!(
            "upgrade: pid {} started; sending it {} socket(s) ahead",
            child.id(),
            ids.len()
        );
        let patience = child::TAKEOVER_TIMEOUT.as_millis() as u64;
        self.timers.set(Timer::Upgrade, now + patience);
        Ok(Box::new(Starting {
            child,
            link,
            sender: Sender::new(ids),
        }))
    }

    /// Sends what the socket takes of the sockets ahead; once all are
    /// sent and the new process is ready, hands over. `true` if the new
    /// process serves now.
    fn advance_upgrade(&mut self, now: u64, mut starting: Box<Starting>) -> bool {
        if self.shutting_down {
            self.end_sending_ahead(&starting);
            child::abandon(starting.child);
            log::info!("upgrade dropped: shutting down");
            return false;
        }
        let ready = if self.timers.fire(Timer::Upgrade, now) {
            Err(format!(
                "the new process did not take the sockets within {:?}",
                child::TAKEOVER_TIMEOUT
            ))
        } else {
            self.send_ahead(&mut starting)
        };
        match ready {
            Ok(false) => {
                self.upgrade = Some(Upgrade::Starting(starting));
                return false;
            }
            Ok(true) => {}
            Err(e) => {
                self.end_sending_ahead(&starting);
                child::abandon(starting.child);
                self.refuse(&e);
                return false;
            }
        }
        self.end_sending_ahead(&starting);
        let pid = starting.child.id();
        match self.hand_over(now, &starting) {
            Ok(()) => {
                log::info!("upgrade: pid {pid} serves now; exiting");
                systemd::notify_main_pid(pid);
                // The new process appends to the journal from here on.
                self.journal = None;
                true
            }
            Err(e) => {
                child::abandon(starting.child);
                self.refuse(&e);
                false
            }
        }
    }

    /// Sends what the socket takes; `Ok(true)` once everything is sent
    /// and the new process said it is ready.
    fn send_ahead(&mut self, starting: &mut Starting) -> Result<bool, String> {
        let conns = &self.conns;
        let socket_of = |id: SocketId| {
            let conn = conns.get(id.key)?;
            (conn.serial() == id.serial && !conn.is_tls()).then(|| conn.socket())
        };
        let exited = |e: &io::Error| match child::exited(e) {
            true => child::EXITED.to_string(),
            false => format!("sending the sockets ahead: {e}"),
        };
        if !starting
            .sender
            .advance(&starting.link, socket_of)
            .map_err(|e| exited(&e))?
        {
            return Ok(false);
        }
        let mut word = [0u8; 1];
        match (&starting.link).read(&mut word) {
            Ok(1) if word[0] == READY => Ok(true),
            Ok(0) => Err(child::EXITED.into()),
            Ok(_) => Err("the new process said something else".into()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(exited(&e)),
        }
    }

    /// The hand-over socket leaves the poll (and blocks again).
    fn end_sending_ahead(&mut self, starting: &Starting) {
        self.timers.clear(Timer::Upgrade);
        let fd = starting.link.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        let _ = starting.link.set_nonblocking(false);
    }

    /// Asks the new binary which hand-over versions it reads, in a thread
    /// (a binary that hangs must not stop the loop); the answer wakes the
    /// loop.
    fn start_upgrade(&mut self) {
        if self.shutting_down {
            return log::info!("upgrade not started: shutting down");
        }
        if self.upgrade.is_some() {
            return log::info!("upgrade already under way");
        }
        systemd::notify_reloading();
        let Some(binary) = self.upgrade_binary.clone() else {
            return self.refuse("no binary to upgrade to (set --upgrade-binary)");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("version-query".into())
            .spawn(move || {
                let _ = tx.send(child::query_versions(&binary, child::QUERY_TIMEOUT));
                if let Err(e) = waker.wake() {
                    log::warn!("could not wake the reactor: {e}");
                }
            });
        match spawned {
            Ok(_) => self.upgrade = Some(Upgrade::Query(rx)),
            Err(e) => self.refuse(&format!("no thread for the version query: {e}")),
        }
    }

    /// One log line, counted; systemd hears the reload is over.
    fn refuse(&mut self, why: &str) {
        log::warn!("upgrade refused: {why}; serving on");
        self.counters.upgrades_refused += 1;
        systemd::notify_ready();
    }

    /// The hand-over itself, once the new process has the sockets sent
    /// ahead: stop, send the document and the other descriptors, wait
    /// until it serves.
    fn hand_over(&mut self, now: u64, starting: &Starting) -> Result<(), String> {
        let pid = starting.child.id();
        let stopped_wall_ms = Clock::wall_ms();
        let (bytes, keys) = self.stop_for_handover(now, stopped_wall_ms, &starting.sender)?;
        let listeners = self.listeners.iter().map(|l| l.socket.as_fd());
        let conns = keys.iter().map(|&k| self.conns[k].socket());
        let fds: Vec<BorrowedFd<'_>> = listeners.chain(conns).collect();
        transport::send(&starting.link, &bytes, &fds).map_err(|e| match child::exited(&e) {
            true => child::EXITED.to_string(),
            false => format!("hand-over to pid {pid}: {e}"),
        })?;
        child::await_serving(&starting.link, child::TAKEOVER_TIMEOUT)
    }

    /// Stops serving for the hand-over: TLS connections closed, the
    /// journal flushed; returns the document's bytes (the engine's state
    /// with them) and the slab keys of the connections whose sockets go
    /// beside it (not `sent` ahead), in its order.
    fn stop_for_handover(
        &mut self,
        now: u64,
        stopped_wall_ms: u64,
        sent: &Sender,
    ) -> Result<(Vec<u8>, Vec<usize>), String> {
        // Time went on while Redis was waited for: the engine is never
        // given an earlier time than it had.
        self.drain_bus();
        self.close_tls(self.clock.now_ms().max(now));
        self.drain_bus();
        let now = self.clock.now_ms().max(now);
        let journal_len = match &mut self.journal {
            Some(journal) => Some(
                journal
                    .flushed_len()
                    .ok_or("the journal cannot be written (see above)")?,
            ),
            None => None,
        };
        let (document, beside) = self.handover_document(now, stopped_wall_ms, journal_len, sent);
        Ok((document.encode(&self.engine.save()), beside))
    }

    /// Closes every TLS WebSocket with 1012 (rustls cannot hand its
    /// session over) and drops every other TLS socket; the close frames
    /// are flushed now. They stay here (closing) and are not handed over.
    fn close_tls(&mut self, now: u64) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_tls())
            .map(|(k, _)| k)
            .collect();
        for k in keys {
            let conn = &mut self.conns[k];
            if conn.ws_id().is_none() {
                self.drop_conn(k);
            } else if let Some(id) =
                conn.close(CloseReason::ServiceRestart, now + super::CLOSE_GRACE_MS)
            {
                self.closed.push(id);
                self.timers.watch(k, &self.conns[k]);
                self.mark_dirty(k);
            }
        }
        self.report_closed(now);
        self.flush_dirty(now);
    }

    /// The document (naming every plaintext connection), and the slab
    /// keys of those whose sockets go beside it, in its order.
    fn handover_document(
        &self,
        now: u64,
        stopped_wall_ms: u64,
        journal_len: Option<u64>,
        sent: &Sender,
    ) -> (Handover, Vec<usize>) {
        let mut beside = Vec::new();
        let conns = self
            .conns
            .iter()
            .filter(|(_, c)| !c.is_tls())
            .map(|(key, c)| {
                let ahead = sent.was_sent(SocketId {
                    key,
                    serial: c.serial(),
                });
                if !ahead {
                    beside.push(key);
                }
                c.record(key, ahead)
            })
            .collect();
        let document = Handover {
            version: HANDOVER_VERSION,
            now_ms: now,
            stopped_wall_ms,
            listeners: self.listeners.iter().map(|l| l.tls).collect(),
            conns,
            next_id: self.next_id,
            next_serial: self.next_serial,
            journal_len,
            counters: self.counters,
            bus_in_flight: self.redis.as_ref().map_or(Vec::new(), |b| b.in_flight()),
        };
        (document, beside)
    }
}
