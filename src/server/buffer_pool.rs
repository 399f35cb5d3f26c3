//! Spare outbound buffers. A connection holds a buffer only while it has
//! bytes queued; once they are written the buffer comes back here for the
//! next connection, so 10,000 connections that each got one message hold
//! no buffers between messages, and a connection that gets a message every
//! loop turn does not allocate one every turn.

/// A bounded stack of empty buffers.
#[derive(Debug)]
pub struct BufferPool {
    spare: Vec<Vec<u8>>,
    /// Capacity held in `spare`, in bytes.
    bytes: usize,
    /// At most this much capacity is kept.
    max_bytes: usize,
}

impl BufferPool {
    /// A pool keeping at most `max_bytes` of spare capacity.
    pub fn new(max_bytes: usize) -> Self {
        BufferPool {
            spare: Vec::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// An empty buffer: a spare one if there is one, else a new one (which
    /// allocates on first use).
    pub fn take(&mut self) -> Vec<u8> {
        match self.spare.pop() {
            Some(buf) => {
                self.bytes -= buf.capacity();
                buf
            }
            None => Vec::new(),
        }
    }

    /// Like [`BufferPool::take`], but never a buffer with more than
    /// `max_capacity` bytes (the spare on top is left for `take` if larger).
    pub fn take_small(&mut self, max_capacity: usize) -> Vec<u8> {
        match self.spare.last() {
            Some(buf) if buf.capacity() <= max_capacity => self.take(),
            _ => Vec::new(),
        }
    }

    /// Takes `buf` back (emptied) if the pool has room for it; otherwise
    /// frees it.
    pub fn give(&mut self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity == 0 || self.bytes + capacity > self.max_bytes {
            return;
        }
        buf.clear();
        self.bytes += capacity;
        self.spare.push(buf);
    }

    /// Frees every spare buffer (a second after the last use: a quiet
    /// server holds none).
    pub fn clear(&mut self) {
        self.spare = Vec::new();
        self.bytes = 0;
    }

    /// Spare capacity held, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_within_its_bounds() {
        let mut pool = BufferPool::new(4096);
        let mut a = pool.take();
        assert_eq!(
            a.capacity(),
            0,
            "an empty pool hands out unallocated buffers"
        );
        a.extend_from_slice(&[1; 1000]);
        let cap = a.capacity();
        let ptr = a.as_ptr();
        pool.give(a);
        assert_eq!(pool.bytes(), cap);
        let b = pool.take();
        assert!(b.is_empty(), "handed back emptied");
        assert_eq!(
            (b.as_ptr(), b.capacity()),
            (ptr, cap),
            "the same allocation"
        );
        assert_eq!(pool.bytes(), 0);

        pool.give(Vec::with_capacity(3000));
        pool.give(Vec::with_capacity(3000)); // over max_bytes: freed
        assert_eq!(pool.bytes(), 3000);
        assert_eq!(pool.take_small(2999).capacity(), 0, "too large: not taken");
        assert_eq!(pool.bytes(), 3000);
        assert_eq!(pool.take_small(3000).capacity(), 3000);
        pool.give(Vec::with_capacity(3000));
        pool.clear();
        assert_eq!(pool.bytes(), 0);
        assert_eq!(pool.take().capacity(), 0);
    }
}
