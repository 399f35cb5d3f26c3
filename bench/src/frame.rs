//! Hand-written WebSocket framing (RFC 6455), just what the benchmark needs:
//! append one frame to an output buffer, and parse frames in place from a
//! read buffer without allocating.

/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const BINARY: u8 = 0x2;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// Appends a final frame with `opcode` and `payload` to `out`, masked with
/// `mask` when it is `Some` (client to server), unmasked otherwise.
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key);
        }
    }
}

/// XORs `data` with the repeating 4-byte `key` (masking and unmasking).
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i];
    }
}

/// One parsed frame header: where its payload lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The opcode (continuation frames are reported as 0).
    pub opcode: u8,
    /// Whether the FIN bit is set.
    pub fin: bool,
    /// Masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Offset of the payload in the buffer.
    pub start: usize,
    /// Offset one past the payload (also where the next frame starts).
    pub end: usize,
}

/// Parses the frame at the start of `buf`. `Ok(None)` means more bytes are
/// needed; `Err(())` means the header is unusable (payload over `max_len`).
#[allow(clippy::result_unit_err)]
pub fn parse(buf: &[u8], max_len: usize) -> Result<Option<Frame>, ()> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut pos) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (n as u64, 2),
    };
    if len > max_len as u64 {
        return Err(());
    }
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let key = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(key)
    } else {
        None
    };
    let end = pos + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(Frame {
        opcode,
        fin,
        mask,
        start: pos,
        end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_length_forms_masked_and_not() {
        for len in [0usize, 5, 125, 126, 300, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = vec![];
                encode(&mut out, TEXT, &payload, mask);
                let f = parse(&out, 1 << 20).unwrap().unwrap();
                assert_eq!(f.end, out.len());
                assert_eq!(f.opcode, TEXT);
                assert!(f.fin);
                assert_eq!(f.mask, mask);
                let mut got = out[f.start..f.end].to_vec();
                if let Some(k) = f.mask {
                    apply_mask(&mut got, k);
                }
                assert_eq!(got, payload);
                // Every strict prefix is incomplete.
                for cut in [0, 1, out.len() / 2, out.len() - 1] {
                    if cut < out.len() {
                        assert_eq!(parse(&out[..cut], 1 << 20), Ok(None));
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_oversized_payload() {
        let mut out = vec![];
        encode(&mut out, BINARY, &[0u8; 200], None);
        assert_eq!(parse(&out, 100), Err(()));
    }
}
