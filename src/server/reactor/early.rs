//! What a process started by a live upgrade does before the hand-over, in
//! cluster mode: it opens its own Redis connections and subscribes to the
//! events, then says so (`READY` on the hand-over socket); only then does
//! the old process stop reading. The two subscriptions overlap, so no
//! event published meanwhile is missed: the new process keeps what it
//! receives until its engine is restored, which skips those it had.

use super::bus::{self, Bus};
use crate::engine::{BusInput, Input};
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::redis::Event;
use crate::server::redis::scripts::events_channel;
use crate::server::upgrade::transport::READY;
use mio::{Events, Poll};
use std::io::{self, Write};
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
}

impl Early {
    /// Starts what `config` needs before the hand-over; in cluster mode,
    /// subscribes and tells the old process on `link`.
    pub(crate) fn start(config: &Config, link: &UnixStream) -> io::Result<Early> {
        let poll = Poll::new()?;
        let clock = Clock::start();
        let mut redis = bus::start(config, poll.registry(), clock.now_ms())?;
        let mut early = Early {
            poll,
            redis: None,
            events: Vec::new(),
            subscribed: false,
        };
        if let Some(bus) = &mut redis {
            let channel = events_channel(&config.cluster.redis_prefix);
            bus.client.subscribe(channel, false, clock.now_ms());
            early.subscribe(bus, &clock)?;
            (&*link).write_all(&[READY])?;
        }
        early.redis = redis;
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
                bus.client.handle_event(self.poll.registry(), event, now);
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
