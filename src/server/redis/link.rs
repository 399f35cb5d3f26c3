//! One connection to Redis, without its socket: whether it is open and
//! ready, the bytes to write, the replies to decode, and what was sent
//! and not yet answered (each with its send time, so a Redis that stops
//! answering is noticed). A link that is lost waits out a [`Backoff`]
//! before it wants a socket again.

use super::backoff::Backoff;
use crate::protocol::resp::{Decoder, Reply, RespError, encode_command};
use std::collections::VecDeque;

/// Whether the link has a socket, and whether its handshake is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// No socket; connect again at `retry_at`.
    Down {
        /// When to connect again.
        retry_at: u64,
    },
    /// A socket whose handshake (`AUTH`, `SELECT`, `PING`) is under way.
    Opening,
    /// Handshake done: usable.
    Ready,
}

/// One connection's state; `T` tags what each request sent was.
#[derive(Debug)]
pub(super) struct Link<T> {
    state: State,
    backoff: Backoff,
    decoder: Decoder,
    out: Vec<u8>,
    waiting: VecDeque<(T, u64)>,
    timeout_ms: u64,
}

impl<T> Link<T> {
    /// A link that wants a socket at once; one that waited `timeout_ms`
    /// for an answer is lost.
    pub fn new(timeout_ms: u64, seed: u64, now: u64) -> Link<T> {
        Link {
            state: State::Down { retry_at: now },
            backoff: Backoff::new(seed),
            decoder: Decoder::default(),
            out: Vec::new(),
            waiting: VecDeque::new(),
            timeout_ms,
        }
    }

    /// The link's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the handshake is done.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether it should be given a new socket at `now`.
    pub fn wants_socket(&self, now: u64) -> bool {
        matches!(self.state, State::Down { retry_at } if retry_at <= now)
    }

    /// A socket was opened: everything of the last one is forgotten.
    pub fn opened(&mut self) {
        self.state = State::Opening;
        self.decoder.reset();
        self.out.clear();
        self.waiting.clear();
    }

    /// The handshake is done.
    pub fn ready(&mut self) {
        self.state = State::Ready;
        self.backoff.reset();
    }

    /// The socket is gone (or judged dead): what was waiting for an
    /// answer, oldest first, to be failed by the caller. Nothing if the
    /// link was down already.
    pub fn lost(&mut self, now: u64) -> Vec<T> {
        if let State::Down { .. } = self.state {
            return Vec::new();
        }
        self.state = State::Down {
            retry_at: now + self.backoff.next_delay(),
        };
        self.decoder.reset();
        self.out = Vec::new();
        self.waiting.drain(..).map(|(t, _)| t).collect()
    }

    /// Queues a request for writing; `tag` comes back with its answer.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A], tag: T, now: u64) {
        encode_command(&mut self.out, args);
        self.waiting.push_back((tag, now));
    }

    /// The tag of the oldest request waiting for an answer.
    pub fn answered(&mut self) -> Option<T> {
        self.waiting.pop_front().map(|(t, _)| t)
    }

    /// How many requests wait for an answer.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `tag`-matching requests are waiting.
    pub fn any_waiting(&self, pred: impl Fn(&T) -> bool) -> bool {
        self.waiting.iter().any(|(t, _)| pred(t))
    }

    /// Bytes to write on the socket; the caller drains what it wrote.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.decoder.feed(bytes);
    }

    /// The next reply read.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, RespError> {
        self.decoder.next_reply()
    }

    /// When something is due: the next attempt while down, else the
    /// oldest request's answer deadline.
    pub fn deadline(&self) -> Option<u64> {
        match self.state {
            State::Down { retry_at } => Some(retry_at),
            _ => self.waiting.front().map(|(_, at)| at + self.timeout_ms),
        }
    }

    /// Whether the oldest request waited too long at `now`.
    pub fn overdue(&self, now: u64) -> bool {
        !matches!(self.state, State::Down { .. }) && self.deadline().is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_connects_answers_in_order_and_backs_off_when_lost() {
        let mut l: Link<u32> = Link::new(1_000, 1, 0);
        assert!(l.wants_socket(0));
        l.opened();
        assert!(!l.wants_socket(0));
        l.send(&["PING"], 1, 10);
        l.send(&["PING"], 2, 20);
        assert_eq!(
            l.out().as_slice(),
            b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"
        );
        assert_eq!(l.deadline(), Some(1_010));
        assert!(!l.overdue(1_009) && l.overdue(1_010));
        assert_eq!(l.answered(), Some(1));
        l.ready();
        assert_eq!(l.lost(1_500), vec![2]);
        assert!(l.lost(1_500).is_empty(), "lost once");
        let State::Down { retry_at } = l.state() else {
            panic!("down")
        };
        assert!((1_550..=1_600).contains(&retry_at), "{retry_at}");
        assert!(!l.wants_socket(retry_at - 1) && l.wants_socket(retry_at));
        assert!(l.out().is_empty());
    }
}
