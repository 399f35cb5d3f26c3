//! RESP2, the Redis protocol: commands encoded as arrays of bulk strings,
//! replies decoded incrementally from the bytes a socket gave.
//!
//! Decoding is `redis-protocol`'s (sans-IO: a byte slice in, a frame and
//! the bytes it used out). Before handing it a frame, [`Decoder`] walks the
//! frame's headers without recursion, so that a reply nested deeper than
//! [`MAX_DEPTH`] (which would recurse in the decoder) or one larger than
//! the decoder's limit is an error rather than a crash or unbounded
//! memory.

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

/// The deepest nesting of arrays accepted in a reply.
pub const MAX_DEPTH: usize = 32;
/// The largest reply accepted by default (Redis's own bulk limit is 512 MB;
/// roomd's replies are small).
pub const DEFAULT_MAX_REPLY: usize = 64 << 20;

/// A reply, as the rest of roomd sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`.
    Status(String),
    /// `-ERR ...`, `-NOSCRIPT ...`: the command failed in Redis.
    Error(String),
    /// `:N`.
    Integer(i64),
    /// `$N`: bytes.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*N`.
    Array(Vec<Reply>),
}

impl Reply {
    /// The bytes of a bulk or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// Whether this is an error reply whose code (first word) is `code`.
    pub fn is_error(&self, code: &str) -> bool {
        matches!(self, Reply::Error(e) if e.split(' ').next() == Some(code))
    }

    fn from_frame(frame: OwnedFrame) -> Reply {
        match frame {
            OwnedFrame::SimpleString(s) => Reply::Status(String::from_utf8_lossy(&s).into_owned()),
            OwnedFrame::Error(e) => Reply::Error(e),
            OwnedFrame::Integer(i) => Reply::Integer(i),
            OwnedFrame::BulkString(b) => Reply::Bulk(b),
            OwnedFrame::Null => Reply::Nil,
            OwnedFrame::Array(a) => Reply::Array(a.into_iter().map(Reply::from_frame).collect()),
        }
    }
}

/// Appends the command `args` (name first) as an array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Why the byte stream is not RESP (the connection is unusable after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespError {
    /// Not RESP2: a bad type byte, length or integer.
    Malformed(String),
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A reply larger than the decoder's limit.
    TooLarge,
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::Malformed(e) => write!(f, "malformed RESP: {e}"),
            RespError::TooDeep => write!(f, "RESP nested deeper than {MAX_DEPTH}"),
            RespError::TooLarge => write!(f, "RESP reply over the size limit"),
        }
    }
}

/// Replies decoded from bytes as they arrive.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded.
    start: usize,
    max_reply: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_REPLY)
    }
}

impl Decoder {
    /// A decoder that refuses replies over `max_reply` bytes.
    pub fn new(max_reply: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_reply,
        }
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Forgets everything buffered (after the connection is lost).
    pub fn reset(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }

    /// The next complete reply, `Ok(None)` until more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, RespError> {
        let pending = &self.buf[self.start..];
        let Some(len) = frame_len(pending, self.max_reply)? else {
            if pending.len() > self.max_reply {
                return Err(RespError::TooLarge);
            }
            if self.start > 0 && self.start * 2 >= self.buf.len() {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            return Ok(None);
        };
        match decode(&pending[..len]) {
            Ok(Some((frame, used))) if used == len => {
                self.start += len;
                Ok(Some(Reply::from_frame(frame)))
            }
            Ok(_) => Err(RespError::Malformed("frame length disagrees".into())),
            Err(e) => Err(RespError::Malformed(e.to_string())),
        }
    }
}

/// The length of the first frame of `buf` if it is complete, found by
/// walking its headers (no recursion, no allocation beyond the depth).
fn frame_len(buf: &[u8], max_reply: usize) -> Result<Option<usize>, RespError> {
    let mut pos = 0;
    // Elements still to read in each open array.
    let mut open: Vec<usize> = Vec::new();
    loop {
        let Some(end) = find_crlf(buf, pos) else {
            return Ok(None);
        };
        if end == pos {
            return Err(RespError::Malformed("an empty line".into()));
        }
        let kind = buf[pos];
        let line = &buf[pos + 1..end];
        pos = end + 2;
        match kind {
            b'+' | b'-' | b':' => {}
            b'$' => {
                let n = length(line)?;
                if n >= 0 {
                    let n = n as usize;
                    if n > max_reply {
                        return Err(RespError::TooLarge);
                    }
                    if buf.len() < pos + n + 2 {
                        return Ok(None);
                    }
                    pos += n + 2;
                }
            }
            b'*' => {
                let n = length(line)?;
                if n > 0 {
                    if open.len() == MAX_DEPTH {
                        return Err(RespError::TooDeep);
                    }
                    open.push(n as usize);
                    continue;
                }
            }
            other => return Err(RespError::Malformed(format!("type byte {other:#04x}"))),
        }
        // One element done: close every array it completes.
        loop {
            match open.last_mut() {
                None => return Ok(Some(pos)),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rel = buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
    Some(from + rel)
}

/// A `$` or `*` length: -1 (nil) or more.
fn length(line: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n >= -1 && *n <= i64::from(u32::MAX))
        .ok_or_else(|| RespError::Malformed("bad length".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Result<Vec<Reply>, RespError> {
        let mut d = Decoder::default();
        d.feed(bytes);
        let mut out = Vec::new();
        while let Some(r) = d.next_reply()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn a_command_is_an_array_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &["SET", "k", "v\r\n"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
        let decoded = all(&out).unwrap();
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        assert_eq!(
            decoded,
            vec![Reply::Array(vec![bulk("SET"), bulk("k"), bulk("v\r\n")])]
        );
    }

    #[test]
    fn every_reply_type() {
        let bytes = b"+OK\r\n-NOSCRIPT No matching script\r\n:-7\r\n$4\r\na\r\nb\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n";
        let replies = all(bytes).unwrap();
        assert_eq!(replies[0], Reply::Status("OK".into()));
        assert!(replies[1].is_error("NOSCRIPT"));
        assert!(!replies[1].is_error("NOSCRIPTX"));
        assert_eq!(replies[2], Reply::Integer(-7));
        assert_eq!(replies[3].as_bytes(), Some(&b"a\r\nb"[..]));
        assert_eq!(replies[4..6], [Reply::Nil, Reply::Nil]);
        assert_eq!(replies[6], Reply::Array(vec![]));
        let inner = Reply::Array(vec![Reply::Integer(1)]);
        assert_eq!(replies[7], Reply::Array(vec![inner, Reply::Bulk(vec![])]));
        assert_eq!(replies.len(), 8);
    }

    #[test]
    fn replies_split_anywhere_come_out_whole_and_in_order() {
        let bytes = b"+OK\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n:42\r\n";
        let whole = all(bytes).unwrap();
        for cut in 0..bytes.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            d.feed(&bytes[..cut]);
            while let Some(r) = d.next_reply().unwrap() {
                got.push(r);
            }
            d.feed(&bytes[cut..]);
            while let Some(r) = d.next_reply().unwrap() {
                got.push(r);
            }
            assert_eq!(got, whole, "cut at {cut}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn hostile_bytes_are_errors_not_crashes() {
        assert!(matches!(all(b"?x\r\n"), Err(RespError::Malformed(_))));
        assert!(matches!(all(b"$-2\r\n"), Err(RespError::Malformed(_))));
        assert!(matches!(all(b":x\r\n"), Err(RespError::Malformed(_))));
        assert!(matches!(all(b"*1\r\n\r\n"), Err(RespError::Malformed(_))));
        let deep = b"*1\r\n".repeat(100_000);
        assert_eq!(all(&deep), Err(RespError::TooDeep));
        let mut d = Decoder::new(16);
        d.feed(b"$100\r\n");
        assert_eq!(d.next_reply(), Err(RespError::TooLarge));
        let mut d = Decoder::new(16);
        d.feed(&[b'+'; 20]);
        assert_eq!(d.next_reply(), Err(RespError::TooLarge));
        // Incomplete is not an error.
        assert_eq!(all(b"*2\r\n:1\r\n"), Ok(vec![]));
    }
}
