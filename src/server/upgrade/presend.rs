//! The connections' sockets, sent ahead of the hand-over while the old
//! process still serves: the new process registers them with its poll
//! meanwhile, so the pause holds only what changed since (registering
//! ten thousand sockets took most of it).
//!
//! Chunks on the hand-over socket: a count `n` (4 bytes, at most
//! [`FD_CHUNK`]), then `n` pairs of slab key and serial (8 bytes each),
//! with the `n` descriptors riding on the first byte; a count of 0 ends.
//! The old process sends without blocking, a little each loop turn; a
//! connection closed before its turn is left out. One it closes after
//! stays open in the new process until the document, which does not
//! name it, arrives; the new process then drops it.

use super::transport::{FD_CHUNK, receive_chunk, send_chunk};
use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Which socket a descriptor is: its slab key and serial in the old
/// process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketId {
    /// The connection's slab key (its token in both processes).
    pub key: usize,
    /// The connection's serial in the old process.
    pub serial: u64,
}

/// The old process's side: what is left to send.
#[derive(Debug)]
pub struct Sender {
    ids: Vec<SocketId>,
    next: usize,
    /// Those sent, in key order.
    sent: Vec<SocketId>,
    /// Bytes of the last chunk the socket did not take yet.
    unsent: Vec<u8>,
    ended: bool,
}

impl Sender {
    /// A sender of the sockets `ids`, in key order.
    pub fn new(mut ids: Vec<SocketId>) -> Sender {
        ids.sort_unstable_by_key(|id| id.key);
        Sender {
            sent: Vec::with_capacity(ids.len()),
            ids,
            next: 0,
            unsent: Vec::new(),
            ended: false,
        }
    }

    /// Whether the socket `id` was sent.
    pub fn was_sent(&self, id: SocketId) -> bool {
        let at = self.sent.binary_search_by_key(&id.key, |s| s.key);
        at.is_ok_and(|i| self.sent[i] == id)
    }

    /// Sends on `link` (non-blocking) as much as it takes; `socket_of`
    /// gives a connection's descriptor if it is still open. `Ok(true)` once
    /// everything, the end included, is sent.
    pub fn advance<'a>(
        &mut self,
        link: &UnixStream,
        socket_of: impl Fn(SocketId) -> Option<BorrowedFd<'a>>,
    ) -> io::Result<bool> {
        loop {
            if !self.unsent.is_empty() {
                match (&*link).write(&self.unsent) {
                    Ok(n) => drop(self.unsent.drain(..n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            if self.ended {
                return Ok(true);
            }
            let mut data = vec![0u8; 4];
            let mut fds = Vec::new();
            let mut ids = Vec::new();
            let mut cursor = self.next;
            while fds.len() < FD_CHUNK
                && let Some(&id) = self.ids.get(cursor)
            {
                cursor += 1;
                if let Some(fd) = socket_of(id) {
                    data.extend_from_slice(&(id.key as u64).to_le_bytes());
                    data.extend_from_slice(&id.serial.to_le_bytes());
                    fds.push(fd);
                    ids.push(id);
                }
            }
            data[..4].copy_from_slice(&(fds.len() as u32).to_le_bytes());
            let sent = match fds.is_empty() {
                true => (&*link).write(&data),
                false => send_chunk(link, &data, &fds),
            };
            match sent {
                Ok(n) => {
                    self.next = cursor;
                    self.sent.extend(ids);
                    self.ended = fds.is_empty();
                    self.unsent = data.split_off(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The new process's side: receives every chunk until the end, handing
/// each socket to `each`.
pub fn receive(link: &UnixStream, mut each: impl FnMut(SocketId, OwnedFd)) -> io::Result<()> {
    loop {
        let (count, fds) = receive_chunk(link)?;
        if fds.len() != count as usize || fds.len() > FD_CHUNK {
            return Err(io::Error::other(format!(
                "{} descriptors came where {count} were announced",
                fds.len()
            )));
        }
        if count == 0 {
            return Ok(());
        }
        let mut ids = vec![0u8; 16 * fds.len()];
        (&*link).read_exact(&mut ids)?;
        for (pair, fd) in ids.chunks_exact(16).zip(fds) {
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
            let key = usize::try_from(word(&pair[..8])).map_err(io::Error::other)?;
            let serial = word(&pair[8..]);
            each(SocketId { key, serial }, fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn sockets_arrive_with_their_ids_and_closed_ones_are_left_out() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let pairs: Vec<(UnixStream, UnixStream)> = (0..FD_CHUNK * 2 + 3)
            .map(|_| UnixStream::pair().unwrap())
            .collect();
        let ids: Vec<SocketId> = (0..pairs.len())
            .map(|i| SocketId {
                key: i * 2,
                serial: i as u64 + 100,
            })
            .collect();
        // Every third socket is "closed" by the time its turn comes.
        let open = |id: SocketId| (id.key / 2) % 3 != 1;
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            receive(&b, |id, fd| got.push((id, fd))).map(|()| got)
        });
        let mut sender = Sender::new(ids.clone());
        let mut turns = 0;
        while !sender
            .advance(&a, |id| open(id).then(|| pairs[id.key / 2].0.as_fd()))
            .unwrap()
        {
            turns += 1;
            assert!(turns < 100_000, "the receiver stopped taking");
            std::thread::yield_now();
        }
        let got = receiver.join().unwrap().unwrap();
        let want: Vec<SocketId> = ids.iter().copied().filter(|id| open(*id)).collect();
        assert!(ids.iter().all(|id| sender.was_sent(*id) == open(*id)));
        assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), want);
        for (id, fd) in got {
            let mut ours = UnixStream::from(fd);
            ours.write_all(&id.serial.to_le_bytes()).unwrap();
            let mut word = [0u8; 8];
            (&pairs[id.key / 2].1).read_exact(&mut word).unwrap();
            assert_eq!(u64::from_le_bytes(word), id.serial, "the socket of {id:?}");
        }
    }

    #[test]
    fn a_receiver_told_more_descriptors_than_came_fails() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&3u32.to_le_bytes()).unwrap();
        assert!(receive(&b, |_, _| {}).is_err());
        drop(a);
        assert!(receive(&b, |_, _| {}).is_err());
    }
}
