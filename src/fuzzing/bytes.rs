//! A byte-driven source of choices: fuzz input read front to back, zeros
//! once it runs out, so every input decodes to something.

/// Reads fuzz input as a stream of small numbers.
#[derive(Debug)]
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A source reading `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    /// Whether all input has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` next bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_then_zeros() {
        let mut b = Bytes::new(&[1, 2, 3, 4, 5]);
        assert_eq!(b.u8(), 1);
        assert_eq!(b.u16(), 0x0302);
        assert_eq!(b.take(5), &[4, 5]);
        assert!(b.is_empty());
        assert_eq!((b.u8(), b.u16()), (0, 0));
    }
}
