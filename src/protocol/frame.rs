//! WebSocket framing the server does itself: encoding its own frames, and
//! following where the client's frames end.
//!
//! Server frames are never masked (RFC 6455 §5.1), so a frame is a 2, 4 or
//! 10 byte header followed by the payload as is.

/// Opcode of a text frame.
pub const OPCODE_TEXT: u8 = 0x1;
/// Opcode of a ping frame.
pub const OPCODE_PING: u8 = 0x9;

/// Appends a final, unmasked frame with `opcode` and `payload` to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let len = payload.len();
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Follows frame boundaries in a client's byte stream (headers only; the
/// payload is skipped), so the caller knows when every byte it has seen
/// belongs to complete messages.
#[derive(Clone, Debug, Default)]
pub struct FrameBoundaries {
    header: [u8; 14],
    header_len: usize,
    payload_left: u64,
    in_payload: bool,
    fragmented: bool,
    largest_payload: u64,
    pending: u64,
    /// The frame in progress ends a message (a control frame, or a data
    /// frame with FIN).
    ends_message: bool,
    /// Messages and control frames followed to their end.
    messages: u64,
}

impl FrameBoundaries {
    /// Follows `data`, the next bytes of the stream (all in one piece or
    /// split anywhere, the same state). A header that `data` holds whole is
    /// read where it is; only one split across calls is gathered in
    /// `self.header` (this runs on every byte a client sends). Returns the
    /// offset in `data` of the last message boundary it holds (0 if the
    /// stream was at one before `data`, `data.len()` if it is at one
    /// after), or `None` if every byte of `data` belongs to one message
    /// still incomplete.
    pub fn advance(&mut self, data: &[u8]) -> Option<usize> {
        let whole = data.len();
        let mut data = data;
        let mut last = self.at_message_boundary().then_some(0);
        while !data.is_empty() {
            if self.in_payload {
                let n = self.payload_left.min(data.len() as u64);
                self.payload_left -= n;
                data = &data[n as usize..];
                if self.payload_left == 0 {
                    self.in_payload = false;
                    self.messages += u64::from(self.ends_message);
                }
                self.count_pending(n);
                if self.at_message_boundary() {
                    last = Some(whole - data.len());
                }
                continue;
            }
            if self.header_len == 0
                && let Ok((n, len)) = parse_header(data)
            {
                self.begin_payload(data[0], len);
                data = &data[n..];
                self.count_pending(n as u64);
                if self.at_message_boundary() {
                    last = Some(whole - data.len());
                }
                continue;
            }
            let have = self.header_len;
            let need = parse_header(&self.header[..have]).err().unwrap_or(have);
            let n = need.saturating_sub(have).min(data.len());
            self.header[have..have + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if let Ok((_, len)) = parse_header(&self.header[..self.header_len]) {
                self.header_len = 0;
                self.begin_payload(self.header[0], len);
            }
            self.count_pending(n as u64);
            if self.at_message_boundary() {
                last = Some(whole - data.len());
            }
        }
        last
    }

    /// A header whose first byte is `first` announced `len` payload bytes.
    fn begin_payload(&mut self, first: u8, len: u64) {
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0f);
        if opcode < 0x8 {
            self.fragmented = !fin;
        }
        self.ends_message = fin || opcode >= 0x8;
        self.largest_payload = self.largest_payload.max(len);
        self.payload_left = len;
        self.in_payload = len > 0;
        if len == 0 {
            self.messages += u64::from(self.ends_message);
        }
    }

    /// Counts `n` bytes just followed toward [`FrameBoundaries::pending`].
    fn count_pending(&mut self, n: u64) {
        self.pending = if self.at_message_boundary() {
            0
        } else {
            self.pending + n
        };
    }

    /// Bytes received since the last complete message: what the WebSocket
    /// layer holds of the message in progress (with any control frames
    /// received in between).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// How many messages (a fragmented one counted once) and control
    /// frames have been followed to their end.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Every byte seen so far belongs to complete frames, and no fragmented
    /// message is in progress.
    pub fn at_message_boundary(&self) -> bool {
        !self.in_payload && self.header_len == 0 && !self.fragmented
    }

    /// The largest payload seen since [`Self::take_largest_payload`] was
    /// last called.
    pub fn largest_payload(&self) -> u64 {
        self.largest_payload
    }

    /// The largest payload seen since the last call; resets it.
    pub fn take_largest_payload(&mut self) -> u64 {
        std::mem::take(&mut self.largest_payload)
    }
}

/// Equal when they follow the same stream position: the bytes of a
/// header in progress count, what is left in `header` from earlier ones
/// does not.
impl PartialEq for FrameBoundaries {
    fn eq(&self, other: &Self) -> bool {
        self.header[..self.header_len] == other.header[..other.header_len]
            && self.payload_left == other.payload_left
            && self.in_payload == other.in_payload
            && self.fragmented == other.fragmented
            && self.largest_payload == other.largest_payload
            && self.pending == other.pending
            && self.ends_message == other.ends_message
            && self.messages == other.messages
    }
}

impl Eq for FrameBoundaries {}

/// The frame header at the start of `h`: `Ok((header length, payload
/// length))` once `h` holds all of it, else `Err` with how many bytes it
/// needs at least (2, or once those are in, the whole header's length).
fn parse_header(h: &[u8]) -> Result<(usize, u64), usize> {
    if h.len() < 2 {
        return Err(2);
    }
    let mask = if h[1] & 0x80 != 0 { 4 } else { 0 };
    let (ext, len7) = match h[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let header = 2 + ext + mask;
    if h.len() < header {
        return Err(header);
    }
    let len = len7.unwrap_or_else(|| {
        h[2..2 + ext]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Ok((header, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        for (len, header) in [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65_535, 4),
            (65_536, 10),
        ] {
            let mut out = Vec::new();
            write_frame(&mut out, OPCODE_TEXT, &vec![b'x'; len]);
            assert_eq!(out.len(), header + len, "payload {len}");
            assert_eq!(out[0], 0x81);
        }
        let mut out = Vec::new();
        write_frame(&mut out, OPCODE_TEXT, &[b'a'; 300]);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
        let mut ping = Vec::new();
        write_frame(&mut ping, OPCODE_PING, &[]);
        assert_eq!(ping, [0x89, 0]);
    }

    #[test]
    fn pending_counts_the_message_in_progress() {
        let mut frames = Vec::new();
        write_frame(&mut frames, OPCODE_TEXT, &[b'a'; 300]); // 304 bytes
        frames.extend_from_slice(&[0x01, 0x80 | 5, 0, 0, 0, 0]); // fragment header
        frames.extend_from_slice(b"bbbbb");
        frames.extend_from_slice(&[0x80, 0x80 | 2, 0, 0, 0, 0, b'c']); // one payload byte short
        let mut b = FrameBoundaries::default();
        b.advance(&frames[..100]);
        assert_eq!(b.pending(), 100);
        b.advance(&frames[100..304]);
        assert_eq!(b.pending(), 0, "a complete message holds nothing");
        b.advance(&frames[304..]);
        assert_eq!(b.pending(), (frames.len() - 304) as u64, "fragments held");
        b.advance(b"d");
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn advance_reports_the_last_boundary() {
        let mut frames = Vec::new();
        write_frame(&mut frames, OPCODE_TEXT, b"abc"); // 5 bytes
        write_frame(&mut frames, OPCODE_TEXT, b"defg"); // 6 bytes
        let mut b = FrameBoundaries::default();
        assert_eq!(b.advance(&[]), Some(0));
        assert_eq!(b.advance(&frames[..3]), Some(0), "at one before the data");
        assert_eq!(
            b.advance(&frames[3..8]),
            Some(2),
            "the first frame ends at 5"
        );
        assert_eq!(b.advance(&frames[8..10]), None, "inside the second message");
        assert_eq!(b.advance(&frames[10..]), Some(1), "at one after the data");
        assert_eq!(
            b.advance(&[0x01, 0x80, 0, 0, 0, 0]),
            Some(0),
            "a fragment starts"
        );
        assert_eq!(b.advance(&[0x89, 0x80, 0, 0, 0, 0]), None, "a ping inside");
    }

    #[test]
    fn boundaries_follow_split_frames() {
        let mut frames = Vec::new();
        write_frame(&mut frames, OPCODE_TEXT, &[b'a'; 300]); // 4-byte header
        frames.push(0x01); // text, not final: a fragmented message starts
        frames.push(0x80 | 1);
        frames.extend_from_slice(&[0, 0, 0, 0, b'b']);
        frames.extend_from_slice(&[0x89, 0x80, 0, 0, 0, 0]); // ping between fragments
        frames.extend_from_slice(&[0x80, 0x80 | 2, 0, 0, 0, 0, b'c', b'd']); // final continuation
        let ends = [304, 304 + 7, 304 + 13, frames.len()];
        for split in 1..frames.len() {
            let mut b = FrameBoundaries::default();
            b.advance(&frames[..split]);
            let expect = split == 304 || split == frames.len();
            assert_eq!(
                b.at_message_boundary(),
                expect,
                "split at {split} (frame ends {ends:?})"
            );
            b.advance(&frames[split..]);
            assert!(b.at_message_boundary());
            assert_eq!(b.take_largest_payload(), 300);
            assert_eq!(b.take_largest_payload(), 0);
        }
        let mut b = FrameBoundaries::default();
        b.advance(&[0x81, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]);
        assert_eq!(b.take_largest_payload(), 65_536);
        assert!(!b.at_message_boundary());
    }

    proptest::proptest! {
        /// Any bytes, split anywhere or fed a byte at a time: the same
        /// boundary and pending count as fed in one piece (never a panic),
        /// and pending never more than what was fed.
        #[test]
        fn any_split_gives_the_same_state(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let mut whole = FrameBoundaries::default();
            let last = whole.advance(&bytes);
            if let Some(last) = last {
                proptest::prop_assert_eq!(whole.pending(), (bytes.len() - last) as u64);
            } else {
                proptest::prop_assert_eq!(whole.pending(), bytes.len() as u64);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut split = FrameBoundaries::default();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                split.advance(&bytes[from..cut]);
                from = cut;
            }
            proptest::prop_assert_eq!(&split, &whole);
            let mut bytewise = FrameBoundaries::default();
            for b in &bytes {
                bytewise.advance(std::slice::from_ref(b));
            }
            proptest::prop_assert_eq!(&bytewise, &whole);
            proptest::prop_assert!(whole.pending() <= bytes.len() as u64);
            proptest::prop_assert_eq!(whole.pending() == 0, whole.at_message_boundary() || bytes.is_empty());
        }
    }
}
