//! The proptest driver of the engine's reference model
//! (`roomd::fuzzing::model`, which the `engine` fuzz target drives with
//! fuzz bytes): proptest-state-machine generates transitions from the
//! model's current state (opens on two routes per protocol, templated,
//! malformed and garbage messages, binary frames, pongs, closes, waits and
//! ticks), applies each to the model and to two engines with the same
//! seed, and checks every step (`roomd::fuzzing::driver`); at the end every
//! connection closes and nothing may remain.
//!
//! A quarter of the cases run with a tight rate limit, which the model
//! predicts too. `PROPTEST_CASES=N` runs more than the 256 cases.

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use roomd::engine::{ConnId, EngineConfig};
use roomd::fuzzing::driver::Driver;
use roomd::fuzzing::model::{Model, ROUTE_COUNT, Transition};
use roomd::fuzzing::ops::Op;
use roomd::fuzzing::templates::{Msg, NAMES, RoomRef};
use roomd::fuzzing::{config, step};

/// The reference state machine: [`Model`].
struct Reference;

/// A pool index, mostly among the first three so that joins collide.
fn small() -> impl Strategy<Value = u8> {
    prop_oneof![3 => 0..3u8, 1 => any::<u8>()]
}

/// The choices proptest draws; [`Model::choose`] makes them transitions.
fn op() -> impl Strategy<Value = Op> {
    let conn = any::<u8>();
    let user = prop_oneof![3 => 0..3u8, 1 => 0..=NAMES.len() as u8];
    // Slot 0 of 0x80 or more: one of the sender's own rooms.
    let own = prop_oneof![3 => small(), 2 => 0x80..=0xFFu8];
    let slots = [own.boxed(), small().boxed(), small().boxed()];
    // Mostly the routes with rooms (/scratch, /signal, /stream), so that
    // rooms get several members.
    let route = prop_oneof![2 => prop::sample::select(vec![0u8, 1, 5]), 1 => 0..ROUTE_COUNT as u8];
    prop_oneof![
        4 => (route, user).prop_map(|(route, user)| Op::Open { route, user }),
        10 => (conn, any::<u8>(), slots)
            .prop_map(|(conn, template, slots)| Op::Template { conn, template, slots }),
        1 => (conn, any::<u8>()).prop_map(|(conn, n)| Op::Raw { conn, text: vec![0xFF, n] }),
        1 => (conn, "[\\[\\]{}\":,a-z0-9 ]{0,16}")
            .prop_map(|(conn, text)| Op::Raw { conn, text: text.into_bytes() }),
        1 => (conn, 0..64u16).prop_map(|(conn, len)| Op::Binary { conn, len }),
        1 => conn.prop_map(|conn| Op::Pong { conn }),
        1 => conn.prop_map(|conn| Op::Close { conn }),
        2 => prop_oneof![0..160u16, 0..3u16].prop_map(|quarter_secs| Op::Tick { quarter_secs }),
        1 => any::<u8>().prop_map(|ms| Op::Wait { ms }),
    ]
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        let config = |rate_limit_per_sec| EngineConfig {
            max_rooms_per_conn: 2,
            rate_limit_per_sec,
            rate_limit_burst: 1,
            rate_limit_close_after_ms: 300,
            ..EngineConfig::default()
        };
        (prop_oneof![3 => Just(0), 1 => Just(1)], any::<u64>())
            .prop_map(move |(rate, seed)| Model::new(config(rate), seed))
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        let state = state.clone();
        op().prop_filter_map("no live connection", move |op| state.choose(&op))
            .boxed()
    }

    fn preconditions(state: &Model, t: &Transition) -> bool {
        state.allows(t)
    }

    fn apply(mut state: Model, t: &Transition) -> Model {
        state.apply(t);
        state
    }
}

/// The system under test: the engine and its twin, in [`Driver`].
struct EngineTest;

impl StateMachineTest for EngineTest {
    type SystemUnderTest = Driver;
    type Reference = Reference;

    fn init_test(model: &Model) -> Driver {
        Driver::new(model)
    }

    fn apply(mut driver: Driver, model: &Model, t: Transition) -> Driver {
        driver.apply(model, &t);
        driver
    }

    fn teardown(mut driver: Driver, mut model: Model) {
        driver.finish(&mut model);
    }
}

/// 256 cases keep `cargo test` fast; `PROPTEST_CASES=N` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_model(sequential 1..160 => EngineTest);
}

/// `signal` room IDs are unique among live rooms only: once an ID comes
/// again, it names the new room, for the model and the checks too.
#[test]
fn a_signal_room_id_given_again_names_the_new_room() {
    // With seed 11 the 85th room gets an ID given before.
    let mut model = Model::new(config(), 11);
    let mut driver = Driver::new(&model);
    let open = |model: &mut Model, driver: &mut Driver| {
        let conn = ConnId(model.next_conn);
        let t = Transition::Open {
            conn,
            route: 1,
            user: None,
        };
        assert!(step(model, driver, &t));
        conn
    };
    let send = |model: &mut Model, driver: &mut Driver, conn, msg| {
        assert!(step(model, driver, &Transition::Send { conn, msg }));
    };
    let again = loop {
        let host = open(&mut model, &mut driver);
        send(&mut model, &mut driver, host, Msg::Create);
        let ids = driver.signal_ids(1);
        let (latest, older) = ids.split_last().unwrap();
        if older.contains(latest) {
            break (host, ids.len() - 1);
        }
        assert!(ids.len() < 2_000, "no ID came twice");
        step(&mut model, &mut driver, &Transition::Close { conn: host });
    };
    let (host, room) = again;
    let guest = open(&mut model, &mut driver);
    send(
        &mut model,
        &mut driver,
        guest,
        Msg::JoinRoom(RoomRef::Created(room)),
    );
    send(
        &mut model,
        &mut driver,
        host,
        Msg::Relay(RoomRef::Created(room), 0),
    );
    assert_eq!(model.expect.one_send_to, Some(guest));
    driver.finish(&mut model);
}
