//! A raw TCP client for hostile-input tests: sends any bytes (hand-made
//! frames of any length and flags, split as the test likes) and reads the
//! server's answer head and frames. Every read has a timeout.

use super::TIMEOUT;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// A masked client frame with any payload length and the FIN bit as given.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode(fin, opcode, Some([0x37, 0xfa, 0x21, 0x3d]), payload)
}

/// The same frame without a mask, as no client may send it.
pub fn unmasked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode(fin, opcode, None, payload)
}

fn encode(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        f.push(mask_bit | 126);
        f.extend_from_slice(&short.to_be_bytes());
    } else {
        f.push(mask_bit | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = mask.unwrap_or([0; 4]);
    if mask_bit != 0 {
        f.extend_from_slice(&mask);
    }
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A client close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(true, 0x8, &payload)
}

/// A raw connection and the bytes read but not yet consumed.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects (no delay, read timeout [`TIMEOUT`]).
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects, sends an upgrade request for `path` followed by `after` in
    /// the same write, and checks the answer is `101`.
    pub fn upgrade(addr: SocketAddr, path: &str, after: &[u8]) -> Raw {
        let mut raw = Raw::connect(addr);
        let mut bytes = super::upgrade_request(path, "").into_bytes();
        bytes.extend_from_slice(after);
        raw.send(&bytes);
        let head = raw.head();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        raw
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes `bytes` one byte per write.
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send(std::slice::from_ref(b));
        }
    }

    /// Reads more bytes; false on end of stream or error (reset, timeout).
    fn fill(&mut self) -> bool {
        matches!(self.read_more(), Ok(n) if n > 0)
    }

    /// Reads more bytes into the buffer: how many, 0 at end of stream.
    fn read_more(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The HTTP answer head (status line and headers).
    pub fn head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            assert!(
                self.fill(),
                "no complete answer head: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// The whole HTTP answer (until the server closes): status and text.
    pub fn answer(&mut self) -> (u16, String) {
        while self.fill() {}
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        (status, text)
    }

    /// The next server frame `(opcode, payload)`, or `None` once the
    /// connection ends.
    pub fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(frame) = self.buffered_frame() {
                return Some(frame);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Every frame the server sends until it ends the connection, and how
    /// it ended: `Err` if not within [`TIMEOUT`] or by a reset rather than
    /// an orderly end of stream.
    pub fn frames_until_eof(&mut self) -> (Vec<(u8, Vec<u8>)>, std::io::Result<()>) {
        let mut frames = Vec::new();
        loop {
            while let Some(frame) = self.buffered_frame() {
                frames.push(frame);
            }
            match self.read_more() {
                Ok(0) => return (frames, Ok(())),
                Ok(_) => {}
                Err(e) => return (frames, Err(e)),
            }
        }
    }

    /// A whole frame from the bytes already read, if there is one.
    fn buffered_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 2 {
            return None;
        }
        assert_eq!(self.buf[1] & 0x80, 0, "server frames are unmasked");
        let (header, len) = match self.buf[1] & 0x7f {
            126 if self.buf.len() >= 4 => {
                (4, u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize)
            }
            127 if self.buf.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&self.buf[2..10]);
                (10, u64::from_be_bytes(n) as usize)
            }
            126 | 127 => return None,
            n => (2, n as usize),
        };
        if self.buf.len() < header + len {
            return None;
        }
        let opcode = self.buf[0] & 0x0f;
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Some((opcode, payload))
    }

    /// The next text message as JSON, skipping pings.
    pub fn json(&mut self) -> serde_json::Value {
        loop {
            match self.frame() {
                Some((0x1, text)) => return serde_json::from_slice(&text).expect("JSON"),
                Some((0x9, _)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The code of the server's close frame (other frames are skipped).
    pub fn close_code(&mut self) -> u16 {
        loop {
            match self.frame() {
                Some((0x8, payload)) if payload.len() >= 2 => {
                    return u16::from_be_bytes([payload[0], payload[1]]);
                }
                Some((0x8, _)) => return 1005,
                Some(_) => {}
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Waits (at most [`TIMEOUT`]) for the server to end the TCP
    /// connection, discarding what it sends; true if it did.
    pub fn ends(&mut self) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }
}
