//! The Redis client without sockets: two [`Link`]s (commands, pub/sub),
//! the queue of commands, the subscriptions, and the events for the
//! reactor. It takes bytes and time and gives bytes to write and
//! [`Event`]s; [`super::RedisClient`] is its thin mio driver.
//!
//! Commands: replies are matched in order to a FIFO of what was sent.
//! While the command link is not ready, commands wait in a queue; waiting
//! and unanswered commands together are capped ([`RedisConfig::max_pending`]):
//! past it a command fails at once with [`Failure::QueueFull`]. A command
//! sent on a connection that is lost fails with [`Failure::Lost`] (it may
//! or may not have run). The scripts of [`RedisConfig::scripts`] are
//! loaded as the command connection opens, before any command, so their
//! `EVALSHA`s run in the order sent. An `EVALSHA` answered `NOSCRIPT` (a
//! script not loaded so, or a cache flushed while connected) is sent
//! again, once, as `EVAL` with the script's body; the retry goes to the
//! end of the pipeline, so commands sent after it may run before it (with
//! several pipelined, one retried `EVAL` caches the script and the later
//! `EVALSHA`s succeed ahead of the other retries).
//!
//! Pub/sub: subscriptions are kept and sent again on every new
//! connection; a `PING` probes the subscriber every [`PROBE_INTERVAL_MS`]
//! when nothing else is waiting. Either link waiting longer than the node
//! timeout for an answer is judged dead and reconnected with backoff.

use super::link::{Link, State};
use super::{Event, Failure, RedisConfig, Script};
use crate::protocol::resp::Reply;
use std::collections::VecDeque;

/// How often the subscriber is probed with `PING`.
pub const PROBE_INTERVAL_MS: u64 = 1_000;

/// Which connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Commands and their replies.
    Commands,
    /// `SUBSCRIBE`, `PSUBSCRIBE` and the messages.
    Subscriber,
}

impl Which {
    /// Both, commands first.
    pub const BOTH: [Which; 2] = [Which::Commands, Which::Subscriber];
}

/// A command of the caller's.
#[derive(Debug)]
struct Command {
    id: u64,
    args: Vec<Vec<u8>>,
    /// The `EVAL` to send instead if the reply is `NOSCRIPT`.
    fallback: Option<Vec<Vec<u8>>>,
}

/// What a request on the command link was.
#[derive(Debug)]
enum Sent {
    /// `AUTH`, `SELECT` or `PING` of the handshake; the last one makes
    /// the link ready.
    Handshake {
        last: bool,
    },
    User(Command),
}

/// What a request on the subscriber was.
#[derive(Debug, PartialEq, Eq)]
enum SubSent {
    Handshake { last: bool },
    Subscribe,
    Unsubscribe,
    Probe,
}

/// The sans-IO client.
#[derive(Debug)]
pub struct Machine {
    config: RedisConfig,
    cmd: Link<Sent>,
    sub: Link<SubSent>,
    /// Commands not yet sent (the command link is not ready).
    queue: VecDeque<Command>,
    /// Channels (`false`) and patterns (`true`) subscribed, in order.
    subscriptions: Vec<(Vec<u8>, bool)>,
    events: VecDeque<Event>,
    /// Up or down as last told; `None` until the first connection works
    /// or fails.
    up: Option<bool>,
    next_probe: u64,
}

impl Machine {
    /// A client that connects at `now`.
    pub fn new(config: RedisConfig, now: u64) -> Machine {
        let timeout = u64::try_from(config.node_timeout.as_millis()).unwrap_or(u64::MAX);
        Machine {
            cmd: Link::new(timeout, 0x5EED_0001, now),
            sub: Link::new(timeout, 0x5EED_0002, now),
            config,
            queue: VecDeque::new(),
            subscriptions: Vec::new(),
            events: VecDeque::new(),
            up: None,
            next_probe: now,
        }
    }

    /// Whether both connections are ready.
    pub fn is_up(&self) -> bool {
        self.up == Some(true)
    }

    /// Commands waiting to be sent or answered.
    pub fn pending(&self) -> usize {
        // Before the link is ready, only the handshake waits for answers.
        let sent = if self.cmd.is_ready() {
            self.cmd.waiting()
        } else {
            0
        };
        self.queue.len() + sent
    }

    /// Sends `args` (command name first); its reply comes back as
    /// [`Event::Reply`] with `id`.
    pub fn submit(&mut self, id: u64, args: Vec<Vec<u8>>, now: u64) {
        self.enqueue(
            Command {
                id,
                args,
                fallback: None,
            },
            now,
        );
    }

    /// Runs `script` by its SHA1 (`EVALSHA`), and by its body (`EVAL`) if
    /// Redis does not have it yet.
    pub fn submit_script(
        &mut self,
        id: u64,
        script: &Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        now: u64,
    ) {
        let tail = |name: &str, first: &[u8]| {
            let mut v = vec![name.as_bytes().to_vec(), first.to_vec()];
            v.push(keys.len().to_string().into_bytes());
            v.extend(keys.iter().cloned());
            v.extend(args.iter().cloned());
            v
        };
        let command = Command {
            id,
            args: tail("EVALSHA", script.sha1().as_bytes()),
            fallback: Some(tail("EVAL", script.body().as_bytes())),
        };
        self.enqueue(command, now);
    }

    fn enqueue(&mut self, command: Command, now: u64) {
        if self.pending() >= self.config.max_pending {
            let reply = Err(Failure::QueueFull);
            self.events.push_back(Event::Reply {
                id: command.id,
                reply,
            });
        } else if self.cmd.is_ready() {
            self.cmd
                .send(&command.args.clone(), Sent::User(command), now);
        } else {
            self.queue.push_back(command);
        }
    }

    /// Subscribes to `channel` (or, with `pattern`, to the glob
    /// `channel`); confirmed by [`Event::Subscribed`], after every
    /// reconnection too.
    pub fn subscribe(&mut self, channel: Vec<u8>, pattern: bool, now: u64) {
        if self
            .subscriptions
            .iter()
            .any(|(c, p)| *c == channel && *p == pattern)
        {
            return;
        }
        if self.sub.is_ready() {
            self.sub.send(
                &[subscribe_name(pattern).as_bytes(), &channel],
                SubSent::Subscribe,
                now,
            );
        }
        self.subscriptions.push((channel, pattern));
    }

    /// Stops a subscription made with [`Machine::subscribe`].
    pub fn unsubscribe(&mut self, channel: &[u8], pattern: bool, now: u64) {
        let before = self.subscriptions.len();
        self.subscriptions
            .retain(|(c, p)| !(c.as_slice() == channel && *p == pattern));
        if self.subscriptions.len() < before && self.sub.is_ready() {
            let name = if pattern {
                "PUNSUBSCRIBE"
            } else {
                "UNSUBSCRIBE"
            };
            self.sub
                .send(&[name.as_bytes(), channel], SubSent::Unsubscribe, now);
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether `which` should get a new socket at `now`.
    pub fn wants_socket(&self, which: Which, now: u64) -> bool {
        match which {
            Which::Commands => self.cmd.wants_socket(now),
            Which::Subscriber => self.sub.wants_socket(now),
        }
    }

    /// Whether `which` has (or should keep) a socket.
    pub fn has_socket(&self, which: Which) -> bool {
        let state = match which {
            Which::Commands => self.cmd.state(),
            Which::Subscriber => self.sub.state(),
        };
        !matches!(state, State::Down { .. })
    }

    /// A socket for `which` was opened: the handshake is queued.
    pub fn opened(&mut self, which: Which, now: u64) {
        let mut steps: Vec<Vec<Vec<u8>>> = Vec::new();
        if let Some(password) = &self.config.url.password {
            steps.push(vec![b"AUTH".to_vec(), password.as_bytes().to_vec()]);
        }
        if which == Which::Commands && self.config.url.db != 0 {
            steps.push(vec![
                b"SELECT".to_vec(),
                self.config.url.db.to_string().into_bytes(),
            ]);
        }
        if which == Which::Commands {
            for script in &self.config.scripts {
                let body = script.body().as_bytes().to_vec();
                steps.push(vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), body]);
            }
        }
        steps.push(vec![b"PING".to_vec()]);
        let n = steps.len();
        match which {
            Which::Commands => {
                self.cmd.opened();
                for (i, s) in steps.iter().enumerate() {
                    self.cmd.send(s, Sent::Handshake { last: i + 1 == n }, now);
                }
            }
            Which::Subscriber => {
                self.sub.opened();
                for (i, s) in steps.iter().enumerate() {
                    self.sub
                        .send(s, SubSent::Handshake { last: i + 1 == n }, now);
                }
            }
        }
    }

    /// The bytes to write on `which`'s socket (drain what was written).
    pub fn out(&mut self, which: Which) -> &mut Vec<u8> {
        match which {
            Which::Commands => self.cmd.out(),
            Which::Subscriber => self.sub.out(),
        }
    }

    /// Bytes read from `which`'s socket.
    pub fn received(&mut self, which: Which, bytes: &[u8], now: u64) {
        match which {
            Which::Commands => self.cmd.feed(bytes),
            Which::Subscriber => self.sub.feed(bytes),
        }
        loop {
            let next = match which {
                Which::Commands => self.cmd.next_reply(),
                Which::Subscriber => self.sub.next_reply(),
            };
            match next {
                Ok(Some(reply)) => {
                    let handled = match which {
                        Which::Commands => self.on_command_reply(reply, now),
                        Which::Subscriber => self.on_subscriber_reply(reply, now),
                    };
                    if let Err(why) = handled {
                        return self.lost(which, &why, now);
                    }
                }
                Ok(None) => break,
                Err(e) => return self.lost(which, &e.to_string(), now),
            }
        }
        self.update_up(None);
    }

    /// `which`'s socket is closed or failed (`why`, for the log). The
    /// other link is dropped with it: Redis is lost as a whole, so each
    /// [`Event::Down`] is followed, once both are back, by
    /// [`Event::Up`] and a fresh [`Event::Subscribed`] (a subscriber that
    /// outlived the command link would never confirm again, and its owner
    /// would wait for that to resynchronise).
    pub fn lost(&mut self, which: Which, why: &str, now: u64) {
        log::debug!("redis {which:?} connection lost: {why}");
        for sent in self.cmd.lost(now) {
            if let Sent::User(c) = sent {
                let reply = Err(Failure::Lost);
                self.events.push_back(Event::Reply { id: c.id, reply });
            }
        }
        drop(self.sub.lost(now));
        self.update_up(Some(why));
    }

    /// Fires what is due at `now`: a link that waited too long for an
    /// answer is lost; the subscriber is probed.
    pub fn handle_timeout(&mut self, now: u64) {
        let timeout = self.config.node_timeout;
        if self.cmd.overdue(now) {
            self.lost(
                Which::Commands,
                &format!("no answer within {timeout:?}"),
                now,
            );
        }
        if self.sub.overdue(now) {
            self.lost(
                Which::Subscriber,
                &format!("no answer within {timeout:?}"),
                now,
            );
        }
        if self.sub.is_ready()
            && now >= self.next_probe
            && !self.sub.any_waiting(|s| *s == SubSent::Probe)
        {
            self.sub.send(&["PING"], SubSent::Probe, now);
            self.next_probe = now + PROBE_INTERVAL_MS;
        }
    }

    /// The earliest instant [`Machine::handle_timeout`] (or a
    /// reconnection) has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        // While a probe waits, its answer deadline is the subscriber's.
        let probing = self.sub.any_waiting(|s| *s == SubSent::Probe);
        let probe = (self.sub.is_ready() && !probing).then_some(self.next_probe);
        [self.cmd.deadline(), self.sub.deadline(), probe]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_command_reply(&mut self, reply: Reply, now: u64) -> Result<(), String> {
        match self.cmd.answered() {
            None => Err("a reply to nothing".into()),
            Some(Sent::Handshake { last }) => {
                if let Reply::Error(e) = reply {
                    return Err(format!("setup refused: {e}"));
                }
                if last {
                    self.cmd.ready();
                    while let Some(c) = self.queue.pop_front() {
                        self.cmd.send(&c.args.clone(), Sent::User(c), now);
                    }
                }
                Ok(())
            }
            Some(Sent::User(c)) => {
                match c.fallback {
                    Some(eval) if reply.is_error("NOSCRIPT") => {
                        log::debug!("redis: script not cached, sending its body");
                        let retry = Command {
                            id: c.id,
                            args: eval,
                            fallback: None,
                        };
                        self.cmd.send(&retry.args.clone(), Sent::User(retry), now);
                    }
                    _ => self.events.push_back(Event::Reply {
                        id: c.id,
                        reply: Ok(reply),
                    }),
                }
                Ok(())
            }
        }
    }

    fn on_subscriber_reply(&mut self, reply: Reply, now: u64) -> Result<(), String> {
        if let Reply::Array(parts) = &reply {
            let kind = parts.first().and_then(Reply::as_bytes);
            match (kind, parts.as_slice()) {
                (Some(b"message"), [_, channel, payload]) => {
                    let (Some(channel), Some(payload)) = (channel.as_bytes(), payload.as_bytes())
                    else {
                        return Err("a malformed message".into());
                    };
                    self.events.push_back(Event::Message {
                        pattern: None,
                        channel: channel.to_vec(),
                        payload: payload.to_vec(),
                    });
                    return Ok(());
                }
                (Some(b"pmessage"), [_, pattern, channel, payload]) => {
                    let (Some(pattern), Some(channel), Some(payload)) =
                        (pattern.as_bytes(), channel.as_bytes(), payload.as_bytes())
                    else {
                        return Err("a malformed pmessage".into());
                    };
                    self.events.push_back(Event::Message {
                        pattern: Some(pattern.to_vec()),
                        channel: channel.to_vec(),
                        payload: payload.to_vec(),
                    });
                    return Ok(());
                }
                _ => {}
            }
        }
        match self.sub.answered() {
            None => Err("a reply to nothing".into()),
            Some(SubSent::Handshake { last }) => {
                if let Reply::Error(e) = reply {
                    return Err(format!("setup refused: {e}"));
                }
                if last {
                    self.sub.ready();
                    for (channel, pattern) in &self.subscriptions {
                        let name = subscribe_name(*pattern);
                        self.sub
                            .send(&[name.as_bytes(), channel], SubSent::Subscribe, now);
                    }
                    self.next_probe = now + PROBE_INTERVAL_MS;
                }
                Ok(())
            }
            Some(SubSent::Subscribe) => match reply {
                Reply::Array(parts) if parts.len() == 3 => {
                    let pattern = parts[0].as_bytes() == Some(b"psubscribe");
                    let channel = parts[1].as_bytes().unwrap_or_default().to_vec();
                    self.events
                        .push_back(Event::Subscribed { channel, pattern });
                    Ok(())
                }
                other => Err(format!("unexpected answer to SUBSCRIBE: {other:?}")),
            },
            Some(SubSent::Unsubscribe | SubSent::Probe) => Ok(()),
        }
    }

    /// Emits [`Event::Up`] or [`Event::Down`] (and logs it, once) when
    /// both links' readiness changed it; `lost` is why a link was just
    /// lost (a failed first connection is a change to down too).
    fn update_up(&mut self, lost: Option<&str>) {
        let up = self.cmd.is_ready() && self.sub.is_ready();
        if up == self.is_up() && (up || lost.is_none() || self.up == Some(false)) {
            return;
        }
        self.up = Some(up);
        let why = lost.unwrap_or("");
        if up {
            log::info!("redis up at {}", self.config.url);
            self.events.push_back(Event::Up);
        } else {
            log::warn!("redis down ({}): {why}", self.config.url);
            self.events.push_back(Event::Down);
        }
    }
}

fn subscribe_name(pattern: bool) -> &'static str {
    if pattern { "PSUBSCRIBE" } else { "SUBSCRIBE" }
}
