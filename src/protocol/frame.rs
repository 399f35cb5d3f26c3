//! Encoding of the WebSocket frames the server writes itself.
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
}
