//! Timers as data: `poll_timeout` names the next deadline (rounded up to
//! the timer granule), `Input::Timeout` fires what is due by its time.

use crate::common::{Harness, T0};
use roomd::engine::{ConnId, Engine, EngineConfig, Input, Output};
use roomd::protocol::Protocol;

/// Default config: 30 s heartbeats, 1 s granule.
const INTERVAL: u64 = 30_000;
const GRANULE: u64 = 1_000;

#[test]
fn nothing_is_scheduled_without_connections() {
    let mut h = Harness::new();
    assert_eq!(h.engine.poll_timeout(), None);
    let a = h.connect(Protocol::Chat);
    let b = h.connect(Protocol::Signal);
    assert!(h.engine.poll_timeout().is_some());
    h.close(a);
    assert!(h.engine.poll_timeout().is_some(), "b is still open");
    h.close(b);
    assert_eq!(h.engine.poll_timeout(), None);
    // A connection the engine itself closes leaves nothing behind either.
    let c = h.connect(Protocol::Chat);
    h.input(Input::Binary { conn: c, len: 1 });
    assert_eq!(h.engine.poll_timeout(), None);
}

#[test]
fn the_first_heartbeat_is_one_interval_after_the_open_rounded_up() {
    let mut h = Harness::new();
    h.now = T0 + 123;
    h.connect(Protocol::Chat);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + INTERVAL + GRANULE));
    // On a granule boundary there is nothing to round.
    let mut h = Harness::new();
    h.connect(Protocol::Chat);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + INTERVAL));
}

#[test]
fn many_opens_within_one_granule_share_one_deadline() {
    let mut engine = Engine::new(EngineConfig::default(), 1);
    let mut opened = Vec::new();
    for i in 0..10_000u64 {
        // T0+1 ..= T0+1000: one granule.
        let now = T0 + 1 + i / 10;
        engine.handle(
            now,
            Input::Open {
                conn: ConnId(i),
                protocol: Protocol::Signal,
                path: "/signal".into(),
                query: String::new(),
                peer: None,
                identity: None,
            },
        );
        assert_eq!(engine.drain_outputs().count(), 0);
        opened.push(now);
    }
    let due = engine.poll_timeout().expect("a deadline");
    assert_eq!(due, T0 + GRANULE + INTERVAL);
    for now in opened {
        let late = due - (now + INTERVAL);
        assert!(late < GRANULE, "a ping {late} ms late");
    }
    engine.handle(due - 1, Input::Timeout);
    assert_eq!(engine.drain_outputs().count(), 0);
    assert_eq!(
        engine.poll_timeout(),
        Some(due),
        "an early timeout changes nothing"
    );
    engine.handle(due, Input::Timeout);
    let pings = engine
        .drain_outputs()
        .filter(|o| matches!(o, Output::Ping { .. }))
        .count();
    assert_eq!(pings, 10_000, "every ping in one wake-up");
    assert_eq!(engine.poll_timeout(), Some(due + INTERVAL));
}

#[test]
fn opens_across_granules_wake_once_per_granule() {
    let config = EngineConfig {
        heartbeat_interval_ms: 1_000,
        ..EngineConfig::default()
    };
    let granule = config.timer_granularity_ms();
    assert_eq!(granule, 250);
    let mut h = Harness::with_config(config);
    let mut conns = Vec::new();
    for i in 0..40 {
        h.now = T0 + 1 + i * 20; // over 800 ms: 4 granules
        conns.push(h.connect(Protocol::Signal));
    }
    let woken = h.run_until(T0 + 1_800);
    assert_eq!(
        woken,
        vec![T0 + 1_250, T0 + 1_500, T0 + 1_750],
        "one wake-up per granule that holds a deadline"
    );
    let pinged = conns
        .iter()
        .filter(|&&c| h.take(c) == vec![Output::Ping { conn: c }])
        .count();
    assert_eq!(pinged, 38, "all but the 2 opened after T0 + 750");
}

#[test]
fn a_timeout_before_the_deadline_does_nothing_and_one_at_it_pings() {
    let mut h = Harness::new();
    let a = h.connect(Protocol::Chat);
    h.received(a);
    h.now = T0 + INTERVAL - 1;
    h.input(Input::Timeout);
    h.expect_nothing(a);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + INTERVAL));
    h.now = T0 + INTERVAL;
    h.input(Input::Timeout);
    assert_eq!(h.take(a), vec![Output::Ping { conn: a }]);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 2 * INTERVAL));
}

#[test]
fn a_connection_silent_for_an_interval_after_its_ping_is_terminated() {
    let mut h = Harness::new();
    let (quiet, ponger) = (h.connect(Protocol::Chat), h.connect(Protocol::Chat));
    h.received(quiet);
    h.received(ponger);
    assert_eq!(h.run_until(T0 + INTERVAL), vec![T0 + INTERVAL]);
    assert_eq!(h.take(quiet), vec![Output::Ping { conn: quiet }]);
    assert_eq!(h.take(ponger), vec![Output::Ping { conn: ponger }]);
    h.now += 10;
    h.input(Input::Pong { conn: ponger });
    assert_eq!(h.run_until(T0 + 2 * INTERVAL), vec![T0 + 2 * INTERVAL]);
    assert_eq!(h.take(quiet), vec![Output::Terminate { conn: quiet }]);
    assert_eq!(h.take(ponger), vec![Output::Ping { conn: ponger }]);
    assert_eq!(h.engine.connection_count(), 1);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 3 * INTERVAL));
    h.run_until(T0 + 3 * INTERVAL);
    assert_eq!(h.take(ponger), vec![Output::Terminate { conn: ponger }]);
    assert_eq!(h.engine.poll_timeout(), None);
}

#[test]
fn presence_stats_are_scheduled_only_while_the_route_has_connections() {
    let config = EngineConfig {
        heartbeat_interval_ms: 0,
        presence_stats_interval_ms: 10_000,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    let chat = h.connect(Protocol::Chat);
    assert_eq!(h.engine.poll_timeout(), None, "no heartbeats, no presence");
    h.close(chat);
    let a = h.connect_with(Protocol::Presence, "/presence", "userId=1");
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 10_000));
    assert_eq!(h.run_until(T0 + 20_000), vec![T0 + 10_000, T0 + 20_000]);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 30_000));
    h.close(a);
    assert_eq!(h.engine.poll_timeout(), None);
    // Reopened later: the first line is one interval after, rounded up.
    h.now = T0 + 45_005;
    h.connect_with(Protocol::Presence, "/presence", "userId=2");
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 55_010));
}

#[test]
fn heartbeats_off_and_stats_off_schedule_nothing() {
    let config = EngineConfig {
        heartbeat_interval_ms: 0,
        presence_stats_interval_ms: 0,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    h.connect_with(Protocol::Presence, "/presence", "userId=1");
    assert_eq!(h.engine.poll_timeout(), None);
}
