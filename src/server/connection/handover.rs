//! A connection in a live upgrade: the record the old process hands over
//! (its descriptor apart) and the connection the new one rebuilds from it.

use super::{Connection, Life, State};
use crate::engine::ConnId;
use crate::protocol::websocket::Codec;
use crate::server::budget::Held;
use crate::server::upgrade::handover::{ConnRecord, Phase};
use mio::Interest;
use mio::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};

impl Connection {
    /// Whether it speaks TLS (rustls cannot hand its session over).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Its socket, to hand over.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// What a live upgrade hands over of it (at slab key `key`; its
    /// descriptor `sent_ahead` or not), its socket apart: its phase, with
    /// the bytes it holds in each direction.
    pub fn record(&self, key: usize, sent_ahead: bool) -> ConnRecord {
        let phase = match &self.state {
            State::Request { buf, deadline_ms } => Phase::Request {
                buf: buf.clone(),
                deadline_ms: *deadline_ms,
            },
            State::Answered {
                out,
                sent,
                deadline_ms,
            } => Phase::Answered {
                out: out[*sent..].to_vec(),
                deadline_ms: *deadline_ms,
            },
            State::WebSocket { id, codec, life } => Phase::WebSocket {
                id: id.0,
                life: *life,
                codec: codec.state(),
                partial: codec.partial_input().to_vec(),
                unsent: codec.unsent().to_vec(),
            },
        };
        ConnRecord {
            key,
            serial: self.serial,
            sent_ahead,
            peer: self.peer,
            phase,
        }
    }

    /// A plaintext connection handed over: `record` on `stream`, which
    /// the caller registers readable under the record's key. Returns it
    /// with its engine id and life if it is a WebSocket.
    pub fn resume(
        stream: TcpStream,
        record: ConnRecord,
        max_message_size: usize,
    ) -> (Connection, Option<(ConnId, Life)>) {
        let mut websocket = None;
        let state = match record.phase {
            Phase::Request { buf, deadline_ms } => State::Request { buf, deadline_ms },
            Phase::Answered { out, deadline_ms } => State::Answered {
                out,
                sent: 0,
                deadline_ms,
            },
            Phase::WebSocket {
                id,
                life,
                codec,
                partial,
                unsent,
            } => {
                websocket = Some((ConnId(id), life));
                State::WebSocket {
                    id: ConnId(id),
                    codec: Box::new(Codec::resume(&partial, max_message_size, unsent, codec)),
                    life,
                }
            }
        };
        let conn = Connection {
            stream,
            tls: None,
            peer: record.peer,
            serial: record.serial,
            state,
            registered: Interest::READABLE,
            dirty: false,
            held: Held::default(),
        };
        (conn, websocket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::close::CloseReason;
    use mio::{Poll, Token};

    /// A connection accepted on loopback (the client end kept open), and
    /// a second descriptor of its socket, as the new process gets one.
    fn accepted(poll: &Poll) -> (Connection, std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let dup = server.try_clone().unwrap();
        let stream = TcpStream::from_std(server);
        let buf = b"GET / HTTP/1.1\r\n".to_vec();
        let conn =
            Connection::accept(stream, peer, 1, None, buf, 50, poll.registry(), Token(0)).unwrap();
        (conn, dup, client)
    }

    fn round_trip(conn: &Connection, dup: std::net::TcpStream, poll: &Poll) -> Connection {
        let record = conn.record(3, true);
        let mut stream = TcpStream::from_std(dup);
        poll.registry()
            .register(&mut stream, Token(3), Interest::READABLE)
            .unwrap();
        let (resumed, ws) = Connection::resume(stream, record.clone(), 1024);
        assert_eq!(resumed.record(3, true), record, "the same record again");
        assert_eq!(resumed.deadline(), conn.deadline());
        assert_eq!(ws.map(|(id, _)| id), conn.ws_id());
        assert_eq!(resumed.peer(), conn.peer());
        resumed
    }

    #[test]
    fn every_phase_is_rebuilt_as_it_was() {
        let poll = Poll::new().unwrap();
        // Reading its request head.
        let (conn, dup, _client) = accepted(&poll);
        let resumed = round_trip(&conn, dup, &poll);
        assert!(resumed.is_request());
        // An HTTP answer partly written.
        let (mut conn, dup, _client) = accepted(&poll);
        conn.answer(b"HTTP/1.1 404 Not Found\r\n\r\n".to_vec(), 70);
        if let State::Answered { sent, .. } = &mut conn.state {
            *sent = 9;
        }
        let resumed = round_trip(&conn, dup, &poll);
        assert_eq!(resumed.queued(), conn.queued());
        // A WebSocket holding bytes both ways, then closing, then failed.
        let (mut conn, dup, _client) = accepted(&poll);
        conn.upgrade(
            ConnId(7),
            Codec::new(&[0x81, 0x85, 1], 1024, b"queued".to_vec()),
        );
        let resumed = round_trip(&conn, dup.try_clone().unwrap(), &poll);
        assert_eq!(resumed.open_id(), Some(ConnId(7)));
        assert_eq!(resumed.queued(), 6);
        conn.close(CloseReason::ShuttingDown, 90);
        let mut resumed = round_trip(&conn, dup.try_clone().unwrap(), &poll);
        assert_eq!(resumed.open_id(), None, "closing: not open to the engine");
        assert_eq!(
            resumed.websocket().map(|(_, c, _)| c.is_open()),
            Some(false)
        );
        if let Some((_, codec, _)) = conn.websocket() {
            codec.fail(CloseReason::ProtocolError);
        }
        conn.leave_open(Life::Failed { deadline_ms: 95 });
        let mut resumed = round_trip(&conn, dup, &poll);
        assert_eq!(resumed.websocket().map(|(_, c, _)| c.failed()), Some(true));
    }
}
