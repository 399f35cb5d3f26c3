//! Moving the hand-over over a Unix stream socket: the document as
//! length-prefixed bytes, then the descriptors with `SCM_RIGHTS` in chunks
//! of at most [`FD_CHUNK`] (each chunk's count as 4 bytes of data it rides
//! on), received as `OwnedFd` (close-on-exec). Then one byte back,
//! [`SERVING`], when the new process serves ([`READY`] comes back
//! first, once it has the sockets sent ahead, before the document is
//! sent).
//!
//! Through rustix: `sendmsg`/`recvmsg` with ancillary data would otherwise
//! take `unsafe`.

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Descriptors per `sendmsg` (the kernel takes at most 253).
pub const FD_CHUNK: usize = 250;

/// The largest document accepted (a bound on what is allocated).
const MAX_DOCUMENT: u64 = 4 << 30;

/// The byte the new process sends once it serves.
pub const SERVING: u8 = b'S';

/// The byte a new process sends once it has the sockets sent ahead (and,
/// in cluster mode, has subscribed to Redis's events): the old process
/// stops then.
pub const READY: u8 = b'R';

/// Sends `document`, then `fds`.
pub fn send(stream: &UnixStream, document: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut writer = stream;
    writer.write_all(&(document.len() as u64).to_le_bytes())?;
    writer.write_all(&(fds.len() as u64).to_le_bytes())?;
    writer.write_all(document)?;
    for chunk in fds.chunks(FD_CHUNK) {
        let count = (chunk.len() as u32).to_le_bytes();
        let n = send_chunk(stream, &count, chunk)?;
        writer.write_all(&count[n..])?;
    }
    Ok(())
}

/// Receives a document and its descriptors.
pub fn receive(stream: &UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut reader = stream;
    let mut word = [0u8; 8];
    reader.read_exact(&mut word)?;
    let len = u64::from_le_bytes(word);
    reader.read_exact(&mut word)?;
    let count = u64::from_le_bytes(word);
    if len > MAX_DOCUMENT {
        return Err(io::Error::other(format!("a document of {len} bytes")));
    }
    let mut document = vec![0u8; len as usize];
    reader.read_exact(&mut document)?;
    let mut fds = Vec::new();
    while (fds.len() as u64) < count {
        let (expected, received) = receive_chunk(stream)?;
        if received.len() != expected as usize {
            return Err(io::Error::other(format!(
                "{} descriptors came where {expected} were sent",
                received.len()
            )));
        }
        fds.extend(received);
    }
    Ok((document, fds))
}

/// Sends one chunk: `data` (its first 4 bytes a count) with `fds`
/// riding on its first byte. The number of bytes the socket took (at
/// least one, the descriptors with it); the caller writes the rest.
pub fn send_chunk(stream: &UnixStream, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FD_CHUNK))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("descriptor chunk too large"));
    }
    Ok(sendmsg(
        stream,
        &[IoSlice::new(data)],
        &mut control,
        SendFlags::empty(),
    )?)
}

/// Receives one chunk's 4-byte count and the descriptors that rode on it.
pub fn receive_chunk(stream: &UnixStream) -> io::Result<(u32, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FD_CHUNK))];
    let mut head = [0u8; 4];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = {
        let mut iov = [IoSliceMut::new(&mut head)];
        recvmsg(stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?
    };
    if got.bytes == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if got.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(io::Error::other("descriptors truncated"));
    }
    (&*stream).read_exact(&mut head[got.bytes..])?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    Ok((u32::from_le_bytes(head), fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_document_and_more_descriptors_than_a_chunk_arrive_working() {
        let (a, b) = UnixStream::pair().unwrap();
        // Socket pairs to hand over: each received end must still talk to
        // the end kept here.
        let pairs: Vec<(UnixStream, UnixStream)> = (0..FD_CHUNK + 7)
            .map(|_| UnixStream::pair().unwrap())
            .collect();
        let document = vec![b'd'; 100_000];
        let sender = {
            let fds: Vec<OwnedFd> = pairs
                .iter()
                .map(|(x, _)| x.as_fd().try_clone_to_owned().unwrap())
                .collect();
            let document = document.clone();
            std::thread::spawn(move || {
                let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
                send(&a, &document, &borrowed)
            })
        };
        let (got, fds) = receive(&b).unwrap();
        sender.join().unwrap().unwrap();
        assert_eq!(got, document);
        assert_eq!(fds.len(), pairs.len());
        for (i, (fd, (_, kept))) in fds.into_iter().zip(&pairs).enumerate() {
            let mut ours = UnixStream::from(fd);
            ours.write_all(&(i as u32).to_le_bytes()).unwrap();
            let mut word = [0u8; 4];
            (&*kept).read_exact(&mut word).unwrap();
            assert_eq!(
                u32::from_le_bytes(word),
                i as u32,
                "descriptor {i} in order"
            );
        }
    }

    #[test]
    fn a_closed_sender_is_an_error_not_a_hang() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&10u64.to_le_bytes()).unwrap();
        drop(a);
        assert!(receive(&b).is_err());
    }
}
