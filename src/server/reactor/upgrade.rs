//! The old process's side of a live upgrade (SIGUSR2): ask the new binary
//! which hand-over versions it reads (in a thread, serving meanwhile), close TLS connections with 1012,
//! write the document, start the new binary, hand it the document and
//! every descriptor, and exit once it serves. Anything failing before that
//! refuses the upgrade with one log line: the process serves on, every
//! descriptor still its own.

use super::Reactor;
use crate::protocol::close::CloseReason;
use crate::server::clock::Clock;
use crate::server::systemd;
use crate::server::upgrade::handover::Handover;
use crate::server::upgrade::{HANDOVER_VERSION, child, transport};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, TryRecvError};

/// The answer of a version query run off the loop.
pub(super) type VersionQuery = Receiver<Result<Vec<u32>, String>>;

impl Reactor {
    /// Starts an upgrade asked for this turn, and carries one out once its
    /// version query has answered; `true` if the new process serves now
    /// (this one must stop at once, touching no socket).
    pub(super) fn upgrade_if_requested(&mut self, now: u64) -> bool {
        if std::mem::take(&mut self.upgrade_requested) {
            self.start_upgrade();
        }
        let Some(query) = &self.upgrade_query else {
            return false;
        };
        let answer = match query.try_recv() {
            Ok(answer) => answer,
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => Err("the version query stopped".into()),
        };
        self.upgrade_query = None;
        if self.shutting_down {
            log::info!("upgrade dropped: shutting down");
            return false;
        }
        match answer.and_then(|versions| self.hand_over(now, &versions)) {
            Ok(pid) => {
                log::info!("upgrade: pid {pid} serves now; exiting");
                systemd::notify_main_pid(pid);
                // The new process appends to the journal from here on.
                self.journal = None;
                true
            }
            Err(e) => {
                self.refuse(&e);
                false
            }
        }
    }

    /// Asks the new binary which hand-over versions it reads, in a thread
    /// (a binary that hangs must not stop the loop); the answer wakes the
    /// loop.
    fn start_upgrade(&mut self) {
        if self.shutting_down {
            return log::info!("upgrade not started: shutting down");
        }
        if self.upgrade_query.is_some() {
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
            Ok(_) => self.upgrade_query = Some(rx),
            Err(e) => self.refuse(&format!("no thread for the version query: {e}")),
        }
    }

    /// One log line, counted; systemd hears the reload is over.
    fn refuse(&mut self, why: &str) {
        log::warn!("upgrade refused: {why}; serving on");
        self.counters.upgrades_refused += 1;
        systemd::notify_ready();
    }

    /// The upgrade itself, once the new binary said it reads `versions`;
    /// the new process's pid once it serves.
    fn hand_over(&mut self, now: u64, versions: &[u32]) -> Result<u32, String> {
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
        // Started while this process still serves: it starts up, then
        // waits for the hand-over on its standard input.
        let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
        let started = child::spawn(&binary, theirs)?;
        let pid = started.id();
        let stopped_wall_ms = Clock::wall_ms();
        // In cluster mode the new process subscribes to Redis's events
        // before this one stops reading them (the loop waits: part of the
        // pause).
        let ready = match self.redis {
            Some(_) => child::await_ready(&ours, child::TAKEOVER_TIMEOUT),
            None => Ok(()),
        };
        let result = ready
            .and_then(|()| self.stop_for_handover(now, stopped_wall_ms))
            .and_then(|(document, keys)| {
                let listeners = self.listeners.iter().map(|l| l.socket.as_fd());
                let conns = keys.iter().map(|&k| self.conns[k].socket());
                let fds: Vec<BorrowedFd<'_>> = listeners.chain(conns).collect();
                transport::send(&ours, &document.encode(), &fds).map_err(|e| {
                    match child::exited(&e) {
                        true => child::EXITED.to_string(),
                        false => format!("hand-over to pid {pid}: {e}"),
                    }
                })
            })
            .and_then(|()| child::await_serving(&ours, child::TAKEOVER_TIMEOUT));
        if let Err(e) = result {
            child::abandon(started);
            return Err(e);
        }
        Ok(pid)
    }

    /// Stops serving for the hand-over: TLS connections closed, the
    /// journal flushed; returns the document and the slab keys of the
    /// connections it names, in its order.
    fn stop_for_handover(
        &mut self,
        now: u64,
        stopped_wall_ms: u64,
    ) -> Result<(Handover, Vec<usize>), String> {
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
        Ok(self.handover_document(now, stopped_wall_ms, journal_len))
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

    /// The document, and the slab keys of the connections it names, in
    /// its order (every plaintext one).
    fn handover_document(
        &self,
        now: u64,
        stopped_wall_ms: u64,
        journal_len: Option<u64>,
    ) -> (Handover, Vec<usize>) {
        let (keys, conns) = self
            .conns
            .iter()
            .filter(|(_, c)| !c.is_tls())
            .map(|(k, c)| (k, c.record()))
            .unzip();
        let document = Handover {
            version: HANDOVER_VERSION,
            engine: self.engine.save(),
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
        (document, keys)
    }
}
