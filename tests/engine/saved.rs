//! `Engine::save` and `Engine::restore`, what a live upgrade hands over:
//! an engine restored at any point between inputs goes on exactly as the
//! one it was saved from (same outputs for the same inputs, timers, rate
//! limits and identity expiries included).

use crate::common::ROUTES;
use proptest::prelude::*;
use roomd::engine::{AuthPolicy, ConnId, Engine, EngineConfig, Input, Output};
use roomd::fuzzing::templates::{Context, NAMES, template};
use roomd::protocol::Protocol;
use roomd::protocol::token::Identity;

fn config() -> EngineConfig {
    EngineConfig {
        heartbeat_interval_ms: 2_000,
        presence_stats_interval_ms: 3_000,
        rate_limit_per_sec: 5,
        rate_limit_burst: 10,
        rate_limit_close_after_ms: 1_500,
        auth: Some(AuthPolicy { grace_ms: 1_000 }),
        ..EngineConfig::default()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Open {
        route: u8,
        user: u8,
        identified: bool,
    },
    Send {
        conn: u8,
        index: u8,
        slots: [u8; 3],
    },
    Pong {
        conn: u8,
    },
    Close {
        conn: u8,
    },
    Wait {
        ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let small = || prop_oneof![3 => 0..3u8, 1 => any::<u8>()];
    prop_oneof![
        3 => (0..5u8, 0..4u8, any::<bool>())
            .prop_map(|(route, user, identified)| Op::Open { route, user, identified }),
        8 => (any::<u8>(), any::<u8>(), [small(), small(), small()])
            .prop_map(|(conn, index, slots)| Op::Send { conn, index, slots }),
        2 => any::<u8>().prop_map(|conn| Op::Pong { conn }),
        1 => any::<u8>().prop_map(|conn| Op::Close { conn }),
        2 => (0..1_500u16).prop_map(|ms| Op::Wait { ms }),
    ]
}

/// Turns ops into timed inputs (opened connections get ids 1, 2, ...).
fn inputs(ops: &[Op]) -> Vec<(u64, Input)> {
    let (mut now, mut opened) = (1_000_000u64, Vec::<Protocol>::new());
    let mut out = Vec::new();
    for op in ops {
        let pick = |n: u8, opened: &Vec<Protocol>| {
            (!opened.is_empty()).then(|| usize::from(n) % opened.len())
        };
        match *op {
            Op::Open {
                route,
                user,
                identified,
            } => {
                let (path, protocol) = ROUTES[usize::from(route)];
                let name = NAMES[usize::from(user) % NAMES.len()];
                opened.push(protocol);
                let identity = identified.then(|| Identity {
                    sub: name.to_string(),
                    exp: now / 1000 + 2,
                    rooms: None,
                });
                let query = match protocol {
                    Protocol::Presence => format!("userId={name}"),
                    _ => String::new(),
                };
                out.push((
                    now,
                    Input::Open {
                        conn: ConnId(opened.len() as u64),
                        protocol,
                        path: path.into(),
                        query,
                        peer: None,
                        identity,
                    },
                ));
            }
            Op::Send { conn, index, slots } => {
                if let Some(i) = pick(conn, &opened) {
                    let text = template(opened[i], index, slots, &Context::default()).render(&[]);
                    out.push((
                        now,
                        Input::Text {
                            conn: ConnId(i as u64 + 1),
                            text,
                        },
                    ));
                }
            }
            Op::Pong { conn } => {
                if let Some(i) = pick(conn, &opened) {
                    out.push((
                        now,
                        Input::Pong {
                            conn: ConnId(i as u64 + 1),
                        },
                    ));
                }
            }
            Op::Close { conn } => {
                if let Some(i) = pick(conn, &opened) {
                    out.push((
                        now,
                        Input::Closed {
                            conn: ConnId(i as u64 + 1),
                        },
                    ));
                }
            }
            Op::Wait { ms } => {
                now += u64::from(ms);
                out.push((now, Input::Timeout));
            }
        }
    }
    out
}

fn run(engine: &mut Engine, inputs: &[(u64, Input)]) -> Vec<Output> {
    let mut outputs = Vec::new();
    for (now, input) in inputs {
        engine.handle(*now, input.clone());
        outputs.extend(engine.drain_outputs());
        outputs.push(Output::Ping {
            conn: ConnId(u64::MAX),
        }); // a separator
    }
    outputs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_restored_engine_goes_on_as_the_saved_one(
        ops in prop::collection::vec(op(), 1..80),
        split in any::<prop::sample::Index>(),
    ) {
        let inputs = inputs(&ops);
        let at = split.index(inputs.len() + 1);
        let (before, after) = inputs.split_at(at);
        let mut original = Engine::new(config(), 5);
        run(&mut original, before);
        let saved = original.save();
        let mut restored = Engine::restore(&saved).expect("restores");
        prop_assert_eq!(restored.poll_timeout(), original.poll_timeout());
        prop_assert_eq!(run(&mut restored, after), run(&mut original, after));
        prop_assert_eq!(restored.stats(), original.stats());
    }
}

#[test]
fn garbage_and_broken_state_are_refused() {
    assert!(Engine::restore("").is_err());
    assert!(Engine::restore("{}").is_err());
    let mut engine = Engine::new(config(), 1);
    engine.handle(
        1_000,
        Input::Open {
            conn: ConnId(1),
            protocol: Protocol::Chat,
            path: "/chat".into(),
            query: String::new(),
            peer: None,
            identity: None,
        },
    );
    let saved = engine.save();
    assert!(Engine::restore(&saved).is_ok());
    // The connection's route index pointing nowhere.
    let broken = saved.replacen("\"route\":0", "\"route\":7", 1);
    assert_ne!(broken, saved);
    assert!(Engine::restore(&broken).is_err());
}
