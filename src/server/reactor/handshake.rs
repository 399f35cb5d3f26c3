//! The reactor's first steps with a connection: accepting it, reading and
//! answering its HTTP request, and upgrading it to a WebSocket.

use super::{CLOSE_GRACE_MS, EXTRA_SOCKETS, Reactor};
use crate::engine::{ConnId, Input};
use crate::protocol::http::{MAX_REQUEST_BYTES, ParseError, Parsed, Request, parse_request};
use crate::server::connection::{Connection, Phase, WsState};
use crate::server::http::{self, Decision};
use crate::server::metrics;
use mio::net::TcpListener;
use mio::{Interest, Token};
use std::io;

impl Reactor {
    /// Accepts every connection queued on listener `i`. After a resource
    /// error (`EMFILE`, `ENFILE`, `ENOBUFS`...) the edge-triggered listener
    /// will not fire for the connections still queued, so accepting is
    /// marked paused and retried by the loop until the queue is empty.
    pub(super) fn accept(&mut self, i: usize, now: u64) {
        loop {
            let (mut stream, peer) = match self.listeners.get(i).map(TcpListener::accept) {
                Some(Ok(pair)) => pair,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::mem::take(&mut self.accept_paused[i])
                        && !self.accept_paused.contains(&true)
                    {
                        log::info!("accepting connections again");
                    }
                    return;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                // That one connection is gone; the next may be fine.
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    log::debug!("accept: {e}");
                    continue;
                }
                Some(Err(e)) => {
                    if self.accept_paused.contains(&true) {
                        log::debug!("accept failed again: {e}");
                    } else {
                        log::warn!(
                            "accept failed: {e}; retrying as sockets close and every tick \
                             (raise the open-files limit, e.g. LimitNOFILE=)"
                        );
                    }
                    self.accept_paused[i] = true;
                    return;
                }
                None => return,
            };
            self.counters.accepted += 1;
            if self.conns.len() >= self.config.max_connections + EXTRA_SOCKETS {
                log::debug!("{peer}: too many sockets, dropped");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let request_deadline = now + self.request_timeout_ms();
            let entry = self.conns.vacant_entry();
            let k = entry.key();
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, Token(k), Interest::READABLE)
            {
                log::warn!("register failed: {e}");
                continue;
            }
            entry.insert(Connection {
                stream,
                peer,
                out: Vec::new(),
                sent: 0,
                phase: Phase::Request {
                    // A small spare only: a slow-loris client holds it
                    // for seconds. It becomes the `101` answer's buffer
                    // and goes back to the pool once that is written.
                    buf: self.pool.take_small(MAX_REQUEST_BYTES),
                    deadline_ms: request_deadline,
                },
                write_interest: false,
                dirty: false,
                watched: true,
                accounted: 0,
                inbound: 0,
            });
            self.watched.push(k);
        }
    }

    pub(super) fn on_request_bytes(&mut self, k: usize, now: u64) {
        let conn = &mut self.conns[k];
        let Phase::Request { buf, .. } = &mut conn.phase else {
            return;
        };
        match parse_request(buf) {
            Ok(Parsed::Partial) => {}
            Ok(Parsed::Complete { request, len }) => {
                let head = std::mem::take(buf);
                self.on_request(k, request, head, len, now);
            }
            Err(e) => {
                log::debug!("{}: bad request: {e:?}", conn.peer);
                let status = if e == ParseError::TooLarge { 431 } else { 400 };
                self.answer(
                    k,
                    http::response(status, "text/plain", "Bad Request", None),
                    now,
                );
            }
        }
    }

    /// Answers or upgrades the request whose head is the first `len` bytes
    /// of `head` (the rest is already WebSocket data).
    fn on_request(&mut self, k: usize, req: Request, head: Vec<u8>, len: usize, now: u64) {
        let allow = &self.config.allow_origins;
        let decision = http::route(&req, &self.config.routes, allow);
        if let Decision::Upgrade { protocol, accept } = &decision
            && self.tokens.len() < self.config.max_connections
        {
            return self.upgrade(k, req, *protocol, accept, head, len, now);
        }
        let cors = http::cors_origin(&req, allow).map(str::to_string);
        let cors = cors.as_deref();
        let json = "application/json";
        let uptime = self.clock.uptime_ms() / 1000;
        let answer = match decision {
            Decision::Health => http::response(
                200,
                json,
                &metrics::health_json(&self.engine.stats(), uptime),
                cors,
            ),
            Decision::ApiPing => http::response(
                200,
                json,
                &metrics::api_ping_json(&self.engine.stats()),
                cors,
            ),
            Decision::Metrics => http::response(
                200,
                "text/plain; version=0.0.4",
                &metrics::metrics_text(&self.engine.stats(), &self.counters(), uptime),
                cors,
            ),
            Decision::RouteInfo => {
                http::response(200, "text/plain", "WebSocket server is running", cors)
            }
            Decision::Preflight => http::response(204, "", "", cors),
            Decision::Refuse {
                status,
                body,
                upgrade,
            } => {
                if upgrade {
                    self.counters.reject(status);
                }
                log::debug!("{} {}: {status}", req.method, req.path);
                http::response(status, "text/plain", body, cors)
            }
            // Upgrades were handled above: this one is over the limit.
            Decision::Upgrade { .. } => {
                self.counters.reject(503);
                http::response(503, "text/plain", "Too many connections", cors)
            }
        };
        self.counters.http_requests += 1;
        self.answer(k, answer, now);
    }

    /// Queues an HTTP answer; the socket closes once it is written.
    fn answer(&mut self, k: usize, response: Vec<u8>, now: u64) {
        let conn = &mut self.conns[k];
        conn.out = response;
        conn.sent = 0;
        conn.phase = Phase::Answered {
            deadline_ms: now + CLOSE_GRACE_MS,
        };
        self.mark_dirty(k);
    }

    /// Upgrades connection `k`; `head` is the request (its first `len`
    /// bytes), its buffer is reused for the `101` answer.
    #[allow(clippy::too_many_arguments)]
    fn upgrade(
        &mut self,
        k: usize,
        req: Request,
        protocol: crate::protocol::Protocol,
        accept: &str,
        mut head: Vec<u8>,
        len: usize,
        now: u64,
    ) {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let conn = &mut self.conns[k];
        let early = head.get(len..).unwrap_or_default();
        let has_early = !early.is_empty();
        conn.phase = Phase::WebSocket(Box::new(WsState::new(
            id,
            early,
            self.config.max_message_size,
        )));
        head.clear();
        http::write_switching_protocols(&mut head, accept);
        conn.out = head;
        conn.sent = 0;
        let peer = conn.peer;
        self.tokens.insert(id, k);
        self.mark_dirty(k);
        log::debug!("{peer}: {id:?} opened {} ({protocol})", req.path);
        self.feed(
            now,
            Input::Open {
                conn: id,
                protocol,
                path: req.path,
                query: req.query,
                peer: Some(peer),
            },
        );
        if has_early {
            self.on_ws_bytes(k, 0, now);
        }
    }
}
