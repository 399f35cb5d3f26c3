//! The "limit" server: the least a server can do for the benchmark
//! scenarios to run, which makes it the ceiling for this machine and
//! kernel. It upgrades on any path, recognises messages only by their
//! first bytes (`{"type":"join-room"` ...), answers joins with fixed
//! replies, and fans out or relays each message as one pre-encoded frame
//! copied to every recipient's output buffer. One write per connection per
//! loop turn, a deep listen backlog, no JSON parsing.
//!
//! Paths starting with `/signal` behave like the `signal` protocol
//! (create-room, join-room, signal relayed to the peer); any other path
//! behaves like `stream` (join-room, chat-message to all in the room).

use crate::frame;
use crate::net::{Fill, fill, write_out};
use crate::scenario::str_field;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const LISTENER: Token = Token(usize::MAX);
const MAX_FRAME: usize = 1 << 20;
/// What roomd adds to a relayed chat message, so the frames are as long.
const CHAT_SUFFIX: &[u8] = br#","userName":"n0000","timestamp":"2024-01-01T00:00:00.000Z"}"#;

struct Conn {
    sock: TcpStream,
    upgraded: bool,
    signal: bool,
    partial: Vec<u8>,
    out: Vec<u8>,
    dirty: bool,
    room: Option<Vec<u8>>,
    peer: Option<usize>,
}

/// The limit server's whole state.
pub struct LimitServer {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    rooms: HashMap<Vec<u8>, Vec<usize>>,
    hosts: HashMap<u32, usize>,
    next_room: u32,
    dirty: Vec<usize>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
}

impl LimitServer {
    /// Binds `addr` with a listen backlog of 4096.
    pub fn bind(addr: SocketAddr) -> io::Result<LimitServer> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        sock.listen(4096)?;
        sock.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(sock.into());
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(LimitServer {
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            rooms: HashMap::new(),
            hosts: HashMap::new(),
            next_room: 100_000,
            dirty: Vec::new(),
            scratch: vec![0; 256 << 10],
            frame: Vec::new(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process is killed.
    pub fn run(&mut self) -> io::Result<()> {
        self.run_until(&AtomicBool::new(false))
    }

    /// Serves until `stop` is set (checked at least every 50 ms).
    pub fn run_until(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !stop.load(Ordering::Relaxed) {
            match self.poll.poll(&mut events, Some(Duration::from_millis(50))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    Token(id) => {
                        if ev.is_writable() {
                            self.mark_dirty(id);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(id);
                        }
                    }
                }
            }
            self.flush();
        }
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    let id = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, Token(id), interest)
                        .is_err()
                    {
                        self.free.push(id);
                        continue;
                    }
                    self.conns[id] = Some(Conn {
                        sock,
                        upgraded: false,
                        signal: false,
                        partial: Vec::new(),
                        out: Vec::new(),
                        dirty: false,
                        room: None,
                        peer: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return, // WouldBlock, or out of descriptors: try on the next event
            }
        }
    }

    fn mark_dirty(&mut self, id: usize) {
        if let Some(Some(conn)) = self.conns.get_mut(id)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    fn queue(&mut self, id: usize, bytes: &[u8]) {
        if let Some(Some(conn)) = self.conns.get_mut(id) {
            conn.out.extend_from_slice(bytes);
        }
        self.mark_dirty(id);
    }

    fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let Some(Some(conn)) = self.conns.get_mut(id) else {
                continue;
            };
            conn.dirty = false;
            write_out(&mut conn.sock, &mut conn.out);
        }
        dirty.clear();
        self.dirty = dirty;
    }

    fn close(&mut self, id: usize) {
        let Some(Some(mut conn)) = self.conns.get_mut(id).map(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.sock);
        if let Some(room) = conn.room
            && let Some(members) = self.rooms.get_mut(&room)
        {
            if let Some(i) = members.iter().position(|&m| m == id) {
                members.swap_remove(i);
            }
            if members.is_empty() {
                self.rooms.remove(&room);
            }
        }
        if let Some(peer) = conn.peer
            && let Some(Some(p)) = self.conns.get_mut(peer)
        {
            p.peer = None;
        }
        self.hosts.retain(|_, host| *host != id);
        self.free.push(id);
    }

    fn read(&mut self, id: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let keep = self.read_into(id, &mut scratch);
        self.scratch = scratch;
        if !keep {
            self.close(id);
        }
    }

    /// Reads and handles everything available; false when the connection
    /// must go.
    fn read_into(&mut self, id: usize, scratch: &mut Vec<u8>) -> bool {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return true;
        };
        let mut filled = conn.partial.len();
        if filled > scratch.len() {
            scratch.resize(filled, 0);
        }
        scratch[..filled].copy_from_slice(&conn.partial);
        conn.partial.clear();
        loop {
            let Some(Some(conn)) = self.conns.get_mut(id) else {
                return true;
            };
            if filled == scratch.len() {
                if filled >= 2 * MAX_FRAME {
                    return false;
                }
                scratch.resize(filled * 2, 0);
            }
            let (eof, would_block) = match fill(&mut conn.sock, scratch, &mut filled) {
                Ok(Fill::Eof) => (true, false),
                Ok(Fill::Empty) => (false, true),
                Ok(Fill::Data { drained }) => (false, drained),
                Err(_) => return false,
            };
            let mut pos = 0;
            if !conn.upgraded {
                match upgrade(&scratch[..filled]) {
                    Err(()) => return false,
                    Ok(None) => {}
                    Ok(Some((used, answer, signal))) => {
                        conn.upgraded = true;
                        conn.signal = signal;
                        pos = used;
                        self.queue(id, answer.as_bytes());
                    }
                }
            }
            if self.conns[id].as_ref().is_some_and(|c| c.upgraded) {
                loop {
                    let f = match frame::parse(&scratch[pos..filled], MAX_FRAME) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(()) => return false,
                    };
                    let (start, end) = (pos + f.start, pos + f.end);
                    pos = end;
                    if let Some(key) = f.mask {
                        frame::apply_mask(&mut scratch[start..end], key);
                    }
                    match f.opcode {
                        frame::TEXT => self.message(id, &scratch[start..end]),
                        frame::PING => {
                            self.frame.clear();
                            frame::encode(&mut self.frame, frame::PONG, &scratch[start..end], None);
                            let pong = std::mem::take(&mut self.frame);
                            self.queue(id, &pong);
                            self.frame = pong;
                        }
                        frame::CLOSE => return false,
                        _ => {}
                    }
                }
            }
            scratch.copy_within(pos..filled, 0);
            filled -= pos;
            if eof {
                return false;
            }
            if would_block {
                break;
            }
        }
        if let Some(Some(conn)) = self.conns.get_mut(id) {
            conn.partial.extend_from_slice(&scratch[..filled]);
        }
        true
    }

    /// Handles one client message, by its first bytes only.
    fn message(&mut self, id: usize, text: &[u8]) {
        let Some(Some(conn)) = self.conns.get(id) else {
            return;
        };
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        if conn.signal {
            self.signal_message(id, text, &mut frame);
        } else if text.starts_with(br#"{"type":"chat-message""#) {
            if let Some(room) = &conn.room
                && let Some(members) = self.rooms.get(room)
                && text.ends_with(b"}")
            {
                // Encode once, copy the same bytes to every member.
                let len = text.len() - 1 + CHAT_SUFFIX.len();
                header(&mut frame, len);
                frame.extend_from_slice(&text[..text.len() - 1]);
                frame.extend_from_slice(CHAT_SUFFIX);
                for &m in members {
                    if let Some(Some(c)) = self.conns.get_mut(m) {
                        c.out.extend_from_slice(&frame);
                        if !c.dirty {
                            c.dirty = true;
                            self.dirty.push(m);
                        }
                    }
                }
            }
        } else if text.starts_with(br#"{"type":"join-room""#) {
            let room = str_field(text, "roomId").unwrap_or_default().to_vec();
            let mut reply = br#"{"type":"room-joined","roomId":""#.to_vec();
            reply.extend_from_slice(&room);
            reply.extend_from_slice(br#"","participants":[]}"#);
            frame::encode(&mut frame, frame::TEXT, &reply, None);
            self.queue(id, &frame);
            if let Some(Some(c)) = self.conns.get_mut(id) {
                c.room = Some(room.clone());
            }
            self.rooms.entry(room).or_default().push(id);
        }
        self.frame = frame;
    }

    fn signal_message(&mut self, id: usize, text: &[u8], frame: &mut Vec<u8>) {
        if text.starts_with(br#"{"type":"signal""#)
            || text.starts_with(br#"{"type":"chat-message""#)
        {
            if let Some(Some(conn)) = self.conns.get(id)
                && let Some(peer) = conn.peer
            {
                frame::encode(frame, frame::TEXT, text, None);
                self.queue(peer, frame);
            }
        } else if text.starts_with(br#"{"type":"create-room""#) {
            let room = self.next_room;
            self.next_room = if room >= 999_999 { 100_000 } else { room + 1 };
            self.hosts.insert(room, id);
            let reply = format!(r#"{{"type":"room-created","roomId":"{room}"}}"#);
            frame::encode(frame, frame::TEXT, reply.as_bytes(), None);
            self.queue(id, frame);
        } else if text.starts_with(br#"{"type":"join-room""#) {
            let room = str_field(text, "roomId").unwrap_or_default();
            let room: u32 = std::str::from_utf8(room)
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let Some(host) = self.hosts.remove(&room) else {
                return;
            };
            for (a, b) in [(id, host), (host, id)] {
                if let Some(Some(c)) = self.conns.get_mut(a) {
                    c.peer = Some(b);
                }
            }
            let reply = format!(r#"{{"type":"peer-joined","roomId":"{room}"}}"#);
            frame::encode(frame, frame::TEXT, reply.as_bytes(), None);
            self.queue(id, frame);
            self.queue(host, frame);
        }
    }
}

/// Writes an unmasked text frame header for a payload of `len` bytes.
fn header(out: &mut Vec<u8>, len: usize) {
    out.push(0x80 | frame::TEXT);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Parses an upgrade request at the start of `buf`: `Ok(None)` when
/// incomplete, else (bytes used, the 101 answer, whether the path is
/// `/signal`).
fn upgrade(buf: &[u8]) -> Result<Option<(usize, String, bool)>, ()> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > 16 << 10 {
            Err(())
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ())?;
    let mut lines = head.split("\r\n");
    let path = lines.next().and_then(|l| l.split(' ').nth(1)).ok_or(())?;
    let key = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.trim())
        .ok_or(())?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    Ok(Some((end + 4, answer, path.starts_with("/signal"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_answers_with_the_rfc_accept_key() {
        let req = b"GET /signal?x=1 HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nrest";
        let (used, answer, signal) = upgrade(req).unwrap().unwrap();
        assert_eq!(&req[used..], b"rest");
        assert!(answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(signal);
        assert_eq!(upgrade(b"GET / HTTP/1.1\r\n"), Ok(None));
        assert_eq!(upgrade(b"GET / HTTP/1.1\r\n\r\n"), Err(()));
    }

    #[test]
    fn header_matches_the_encoder() {
        for len in [3usize, 200, 70_000] {
            let payload = vec![b'a'; len];
            let mut a = vec![];
            frame::encode(&mut a, frame::TEXT, &payload, None);
            let mut b = vec![];
            header(&mut b, len);
            b.extend_from_slice(&payload);
            assert_eq!(a, b);
        }
    }
}
