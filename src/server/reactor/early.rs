//! What a process started by a live upgrade does before the hand-over,
//! while the old process still serves: it takes the connections' sockets
//! sent ahead and registers them with its poll under their old keys; in
//! cluster mode it opens its own Redis connections and subscribes to the
//! events. Then it says so (`READY` on the hand-over socket); only then
//! does the old process stop reading. The two subscriptions overlap, so no
//! event published meanwhile is missed: the new process keeps what it
//! receives until its engine is restored, which skips those it had.

use super::accept::socket_capacity;
use super::bus::{self, Bus};
use crate::engine::{BusInput, Input};
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::redis::Event;
use crate::server::redis::scripts::events_channel;
use crate::server::upgrade::presend::{self, SocketId};
use crate::server::upgrade::transport::READY;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long the new process tries to subscribe before it goes on without
/// (it then resynchronises as after a lost connection).
const SUBSCRIBE_MS: u64 = 2_000;

/// The poll and Redis client a new process starts before the hand-over.
pub(crate) struct Early {
    /// The poll the reactor goes on with.
    pub(super) poll: Poll,
    /// The Redis client, with `--redis`.
    pub(super) redis: Option<Bus>,
    /// What Redis said before the engine was there.
    events: Vec<Event>,
    /// The subscription was confirmed before the old process stopped.
    subscribed: bool,
    /// The sockets sent ahead, registered under their keys, in key order.
    pub(super) ahead: Vec<(SocketId, Option<TcpStream>)>,
    /// Keys of sockets sent ahead whose readiness the wait for Redis
    /// took (edge-triggered: it does not come again); read at once.
    pub(super) readable: Vec<usize>,
}

impl Early {
    /// Starts what `config` needs before the hand-over: takes the sockets
    /// sent ahead on `link`, subscribes in cluster mode, and tells the old
    /// process.
    pub(crate) fn start(config: &Config, link: &UnixStream) -> io::Result<Early> {
        let poll = Poll::new()?;
        let mut ahead = Vec::new();
        let capacity = socket_capacity(config);
        presend::receive(link, |id, fd| {
            match register_handed_over(poll.registry(), capacity, id.key, fd) {
                Ok(socket) => ahead.push((id, Some(socket))),
                // Its connection is dropped when the document names it.
                Err(e) => log::warn!("upgrade: a socket sent ahead not taken: {e}"),
            }
        })?;
        // In key order as sent; sorted in case they were not.
        ahead.sort_by_key(|(id, _)| id.key);
        let clock = Clock::start();
        let mut redis = bus::start(config, poll.registry(), clock.now_ms())?;
        let mut early = Early {
            poll,
            redis: None,
            events: Vec::new(),
            subscribed: false,
            ahead,
            readable: Vec::new(),
        };
        if let Some(bus) = &mut redis {
            let channel = events_channel(&config.cluster.redis_prefix);
            bus.client.subscribe(channel, false, clock.now_ms());
            early.subscribe(bus, &clock)?;
        }
        early.redis = redis;
        (&*link).write_all(&[READY])?;
        Ok(early)
    }

    /// Drives `bus` until its subscription is confirmed, or for
    /// [`SUBSCRIBE_MS`] at most.
    fn subscribe(&mut self, bus: &mut Bus, clock: &Clock) -> io::Result<()> {
        let deadline = clock.now_ms() + SUBSCRIBE_MS;
        let mut ready = Events::with_capacity(16);
        while !self.subscribed {
            let now = clock.now_ms();
            if now >= deadline {
                log::warn!("upgrade: not subscribed to Redis in time; resynchronising later");
                return Ok(());
            }
            let until = bus
                .client
                .next_deadline()
                .map_or(deadline, |d| d.min(deadline));
            let wait = Duration::from_millis(until.saturating_sub(now));
            match self.poll.poll(&mut ready, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = clock.now_ms();
            for event in ready.iter() {
                match event.token() {
                    t if bus.client.owns(t) => {
                        bus.client.handle_event(self.poll.registry(), event, now);
                    }
                    Token(k) => self.readable.push(k),
                }
            }
            if bus.client.next_deadline().is_some_and(|d| d <= now) {
                bus.client.handle_timeout(self.poll.registry(), now);
            }
            while let Some(event) = bus.client.poll_event() {
                self.subscribed |= matches!(event, Event::Subscribed { .. });
                bus.was_up |= event == Event::Up;
                self.events.push(event);
            }
        }
        Ok(())
    }

    /// The engine's inputs for what Redis said before it was restored:
    /// with the subscription confirmed and the engine synchronised, the
    /// events alone (it skips those it had; `Up` and `Subscribed` would
    /// start a needless resynchronisation); otherwise, as after a lost
    /// connection, `Down` first and everything after it.
    pub(super) fn inputs(&mut self, engine_ready: bool) -> Vec<Input> {
        let seamless = self.subscribed && engine_ready;
        let mut inputs = Vec::new();
        if !seamless {
            inputs.push(BusInput::Down);
        }
        for event in std::mem::take(&mut self.events) {
            let input = match event {
                Event::Up | Event::Subscribed { .. } if seamless => continue,
                Event::Up => BusInput::Up,
                Event::Subscribed { .. } => BusInput::Subscribed,
                Event::Down => BusInput::Down,
                Event::Message { payload, .. } => match String::from_utf8(payload) {
                    Ok(payload) => BusInput::Message { payload },
                    Err(_) => continue,
                },
                Event::Reply { .. } => continue,
            };
            inputs.push(input);
        }
        inputs.into_iter().map(Input::Bus).collect()
    }
}

/// A handed-over socket, registered readable under `key` (which must be
/// below `capacity`, as every key of the old process was).
pub(super) fn register_handed_over(
    registry: &Registry,
    capacity: usize,
    key: usize,
    fd: OwnedFd,
) -> Result<TcpStream, String> {
    let mut socket = TcpStream::from_std(std::net::TcpStream::from(fd));
    if key >= capacity {
        return Err(format!("key {key} out of range"));
    }
    registry
        .register(&mut socket, Token(key), Interest::READABLE)
        .map_err(|e| e.to_string())?;
    Ok(socket)
}
