//! The system under test for the model (proptest-state-machine's
//! `StateMachineTest`): two engines with the same seed, fed each
//! transition as the reactor would, their outputs checked against the
//! model's [`Expect`](super::model::Expect) (see [`super::checks`]).
//! Every check panics: the fuzzer's crash, proptest's failure.

use super::model::{Model, ROUTE_COUNT, Transition, routes};
use super::templates::{Msg, RoomRef};
use crate::engine::{ConnId, Engine, Input, Output};
use crate::journal::JournalWriter;
use crate::protocol::{Protocol, signal};

/// The engine's input for a connection opening (the one place that
/// builds it).
fn open_input(conn: ConnId, protocol: Protocol, path: &str, query: String) -> Input {
    Input::Open {
        conn,
        protocol,
        path: path.to_string(),
        query,
        peer: None,
        identity: None,
    }
}

/// The engine's input that runs its timers (the one place that builds it).
fn tick_input() -> Input {
    Input::Timeout
}

/// Two engines built alike, and what the driver learnt from them.
#[derive(Debug)]
pub struct Driver {
    pub(super) engine: Engine,
    twin: Engine,
    /// The IDs of every route's created `signal` rooms, in creation order.
    pub(super) ids: Vec<Vec<String>>,
    journal: Option<JournalWriter<Vec<u8>>>,
}

impl Driver {
    /// Two engines with the model's configuration and seed.
    pub fn new(model: &Model) -> Self {
        let engine = || Engine::new(model.config.clone(), model.seed);
        Driver {
            engine: engine(),
            twin: engine(),
            ids: vec![Vec::new(); ROUTE_COUNT],
            journal: None,
        }
    }

    /// The IDs the engine gave the `signal` rooms created on route
    /// `route`, in creation order.
    pub fn signal_ids(&self, route: usize) -> &[String] {
        self.ids.get(route).map_or(&[], Vec::as_slice)
    }

    /// Journals every input from now on (see [`Self::take_journal`]).
    pub fn record_journal(&mut self, model: &Model) {
        let config = self.engine.config();
        let writer = JournalWriter::new(Vec::new(), model.seed, config);
        self.journal = Some(writer);
    }

    /// The journal recorded so far (empty if not recording).
    pub fn take_journal(&mut self) -> Vec<u8> {
        let Some(mut journal) = self.journal.take() else {
            return Vec::new();
        };
        journal.flush();
        journal.into_inner().unwrap_or_default()
    }

    /// Whether `t` is a `join-room` to a live `signal` room by its literal
    /// ID, which the model cannot know: the drivers do not send it.
    pub fn vetoes(&self, model: &Model, t: &Transition) -> bool {
        let Transition::Send { conn, msg } = t else {
            return false;
        };
        let Some(route) = model.conns.get(conn).map(|c| c.route) else {
            return false;
        };
        let id = match msg {
            Msg::JoinRoom(RoomRef::Id(id)) => id.clone(),
            Msg::Text(text) => match signal::decode(text) {
                Ok(signal::Command::JoinRoom { room_id }) => room_id.into_owned(),
                _ => return false,
            },
            _ => return false,
        };
        let live = |(n, known): (usize, &String)| {
            *known == id
                && model.routes[route]
                    .signal
                    .get(n)
                    .is_some_and(Option::is_some)
        };
        model.routes[route].protocol == Protocol::Signal
            && self.ids[route].iter().enumerate().any(live)
    }

    /// Feeds `t` (already applied to `model`) to both engines and checks
    /// the step against the model's expectation.
    pub fn apply(&mut self, model: &Model, t: &Transition) {
        assert!(!self.vetoes(model, t), "a join by literal ID: {t:?}");
        let route = model.expect.route;
        let input = match t {
            Transition::Open { conn, route, user } => {
                let r = &model.routes[*route];
                let (path, protocol) = (r.path, r.protocol);
                let query = match user {
                    Some(user) => format!("userId={user}"),
                    None => "token=abc&x=%20".to_string(),
                };
                open_input(*conn, protocol, path, query)
            }
            Transition::Send { conn, msg } => {
                let ids = route.map_or(&[][..], |r| &self.ids[r]);
                let text = msg.render(ids);
                Input::Text { conn: *conn, text }
            }
            Transition::Binary { conn, len } => Input::Binary {
                conn: *conn,
                len: *len,
            },
            Transition::Pong { conn } => Input::Pong { conn: *conn },
            Transition::Close { conn } => Input::Closed { conn: *conn },
            Transition::Wait { .. } => return self.check_state(model),
            Transition::Tick { .. } => tick_input(),
        };
        let outputs = self.feed(model.now, input);
        let closed = self.check_outputs(model, &outputs);
        // The reactor reports the end of every socket the engine closed;
        // the engine has forgotten it already.
        for conn in closed {
            let late = self.feed(model.now, Input::Closed { conn });
            assert!(late.is_empty(), "Closed after the engine's close: {late:?}");
        }
        self.check_state(model);
    }

    /// One input to both engines: the same outputs, which are returned.
    fn feed(&mut self, now: u64, input: Input) -> Vec<Output> {
        self.engine.handle(now, input.clone());
        self.twin.handle(now, input.clone());
        let outputs: Vec<Output> = self.engine.drain_outputs().collect();
        let twin: Vec<Output> = self.twin.drain_outputs().collect();
        assert_eq!(outputs, twin, "same seed and inputs, other outputs");
        if let Some(journal) = &mut self.journal {
            journal.record(now, &input, &outputs);
        }
        outputs
    }

    /// Every open connection closes: then nothing remains, in the model
    /// or in the engine.
    pub fn finish(&mut self, model: &mut Model) {
        for conn in model.conns.keys().copied().collect::<Vec<_>>() {
            let t = Transition::Close { conn };
            model.apply(&t);
            self.apply(model, &t);
        }
        assert_eq!(self.engine.connection_count(), 0);
        assert_eq!(self.engine.room_count(), 0);
        let stats = self.engine.stats();
        for p in Protocol::ALL {
            let s = stats.of(p);
            assert_eq!((s.connections, s.rooms, s.users), (0, 0, 0), "{p}");
        }
        for (path, _) in routes() {
            assert!(self.engine.online_users(path).is_empty(), "{path}");
        }
    }
}
