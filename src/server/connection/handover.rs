//! A connection in a live upgrade: the record the old process hands over
//! (its descriptor apart) and the connection the new one rebuilds from it.

use super::{Connection, Life, State};
use crate::engine::ConnId;
use crate::protocol::websocket::Codec;
use crate::server::budget::Held;
use crate::server::upgrade::handover::{ConnRecord, Phase};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io;
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

    /// What a live upgrade hands over of it, its socket apart: its phase,
    /// with the bytes it holds in each direction.
    pub fn record(&self) -> ConnRecord {
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
            peer: self.peer,
            phase,
        }
    }

    /// A plaintext connection handed over: `record` on `stream`,
    /// registered readable under `token`. Returns it with its engine id
    /// and life if it is a WebSocket.
    pub fn resume(
        mut stream: TcpStream,
        record: ConnRecord,
        serial: u64,
        max_message_size: usize,
        registry: &Registry,
        token: Token,
    ) -> io::Result<(Connection, Option<(ConnId, Life)>)> {
        registry.register(&mut stream, token, Interest::READABLE)?;
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
            serial,
            state,
            registered: Interest::READABLE,
            dirty: false,
            held: Held::default(),
        };
        Ok((conn, websocket))
    }
}
