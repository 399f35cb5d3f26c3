//! Maps keyed by [`ConnId`], hashed cheaply.

use super::ConnId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by connection id, with [`IdHasher`] (lookup only: nothing
/// iterates it on the way to output).
pub type ConnMap<V> = HashMap<ConnId, V, BuildHasherDefault<IdHasher>>;

/// Hashes the sequential [`ConnId`]s the reactor assigns without SipHash
/// (the ids are not chosen by peers): the low bits are the id itself, so
/// consecutive ids sit in consecutive buckets (a broadcast to a room joined
/// in order walks the table in order), and the top 7 bits, which the table
/// compares first, come from a multiplication that mixes every bit.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        const TOP7: u64 = 0x7f << 57;
        let n = self.0.rotate_left(5) ^ n;
        self.0 = (n & !TOP7) | (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & TOP7);
    }
}
