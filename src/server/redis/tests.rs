//! The client without sockets: bytes and time in, bytes and events out.

use super::*;
use crate::protocol::resp::encode_command;
use std::time::Duration;

fn config(url: &str, max_pending: usize) -> RedisConfig {
    RedisConfig {
        max_pending,
        ..RedisConfig::new(RedisUrl::parse(url).unwrap(), Duration::from_secs(5))
    }
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(&mut out, args);
    out
}

fn args(a: &[&str]) -> Vec<Vec<u8>> {
    a.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn take(m: &mut Machine, w: Which) -> Vec<u8> {
    std::mem::take(m.out(w))
}

fn events(m: &mut Machine) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

/// Both links opened and their handshakes answered (no password, db 0).
fn up(m: &mut Machine, now: u64) {
    for w in Which::BOTH {
        assert!(m.wants_socket(w, now));
        m.opened(w, now);
        assert_eq!(take(m, w), cmd(&["PING"]));
        m.received(w, b"+PONG\r\n", now);
    }
    assert!(m.is_up());
}

#[test]
fn scripts_are_loaded_before_any_command_runs() {
    let script = Script::new("return 1");
    let mut m = Machine::new(
        RedisConfig {
            scripts: vec![script.clone()],
            ..config("redis://h:1", 10)
        },
        0,
    );
    let no_args = || Vec::new();
    m.submit_script(1, &script, no_args(), no_args(), 0);
    m.opened(Which::Commands, 0);
    let mut hello = cmd(&["SCRIPT", "LOAD", "return 1"]);
    hello.extend(cmd(&["PING"]));
    assert_eq!(take(&mut m, Which::Commands), hello);
    let sha = format!("${}\r\n{}\r\n", script.sha1().len(), script.sha1());
    m.received(Which::Commands, sha.as_bytes(), 1);
    m.received(Which::Commands, b"+PONG\r\n", 1);
    assert_eq!(
        take(&mut m, Which::Commands),
        cmd(&["EVALSHA", script.sha1(), "0"]),
        "then the command, by its SHA1"
    );
}

#[test]
fn the_handshake_logs_in_selects_and_then_sends_what_waited() {
    let mut m = Machine::new(config("redis://:pw@h:1/3", 10), 0);
    m.submit(1, args(&["GET", "a"]), 0);
    m.submit(2, args(&["GET", "b"]), 0);
    assert_eq!(m.pending(), 2);
    m.opened(Which::Commands, 0);
    let mut hello = cmd(&["AUTH", "pw"]);
    hello.extend(cmd(&["SELECT", "3"]));
    hello.extend(cmd(&["PING"]));
    assert_eq!(
        take(&mut m, Which::Commands),
        hello,
        "nothing before the handshake"
    );
    m.received(Which::Commands, b"+OK\r\n+OK\r\n+PO", 1);
    assert!(take(&mut m, Which::Commands).is_empty());
    m.received(Which::Commands, b"NG\r\n", 1);
    let mut queued = cmd(&["GET", "a"]);
    queued.extend(cmd(&["GET", "b"]));
    assert_eq!(take(&mut m, Which::Commands), queued);
    assert!(!m.is_up(), "the subscriber is not ready yet");
    m.opened(Which::Subscriber, 1);
    let mut sub_hello = cmd(&["AUTH", "pw"]);
    sub_hello.extend(cmd(&["PING"]));
    assert_eq!(
        take(&mut m, Which::Subscriber),
        sub_hello,
        "no SELECT for pub/sub"
    );
    m.received(Which::Subscriber, b"+OK\r\n+PONG\r\n", 2);
    assert!(m.is_up());
    m.received(Which::Commands, b"$1\r\nA\r\n$-1\r\n", 3);
    let reply = |id, r| Event::Reply { id, reply: Ok(r) };
    assert_eq!(
        events(&mut m),
        vec![
            Event::Up,
            reply(1, Reply::Bulk(b"A".to_vec())),
            reply(2, Reply::Nil)
        ]
    );
    assert_eq!(m.pending(), 0);
}

#[test]
fn a_refused_password_is_a_lost_connection() {
    let mut m = Machine::new(config("redis://:bad@h:1", 10), 0);
    m.opened(Which::Commands, 0);
    m.received(Which::Commands, b"-WRONGPASS invalid\r\n", 0);
    assert!(!m.has_socket(Which::Commands));
    assert!(!m.wants_socket(Which::Commands, 0), "it backs off");
    assert!(m.next_deadline().is_some_and(|at| at <= BACKOFF_FIRST_MS));
    assert_eq!(events(&mut m), vec![Event::Down], "a failed start is told");
    m.opened(Which::Commands, BACKOFF_FIRST_MS);
    m.received(Which::Commands, b"-WRONGPASS invalid\r\n", BACKOFF_FIRST_MS);
    assert!(events(&mut m).is_empty(), "once");
}

#[test]
fn noscript_is_retried_once_with_the_body() {
    let mut m = Machine::new(config("redis://h", 10), 0);
    up(&mut m, 0);
    let script = Script::new("return 1");
    assert_eq!(script.sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    m.submit_script(7, &script, args(&["k"]), args(&["v"]), 1);
    let sha = script.sha1();
    assert_eq!(
        take(&mut m, Which::Commands),
        cmd(&["EVALSHA", sha, "1", "k", "v"])
    );
    m.received(Which::Commands, b"-NOSCRIPT No matching script.\r\n", 2);
    assert_eq!(
        take(&mut m, Which::Commands),
        cmd(&["EVAL", "return 1", "1", "k", "v"])
    );
    assert!(events(&mut m).iter().all(|e| *e == Event::Up));
    // Only once: a second NOSCRIPT (impossible for EVAL) is the reply.
    m.received(Which::Commands, b"-NOSCRIPT again\r\n", 3);
    assert_eq!(
        events(&mut m),
        vec![Event::Reply {
            id: 7,
            reply: Ok(Reply::Error("NOSCRIPT again".into()))
        }]
    );
}

#[test]
fn past_the_cap_commands_fail_at_once() {
    let mut m = Machine::new(config("redis://h", 3), 0);
    for id in 0..5 {
        m.submit(id, args(&["PING"]), 0);
    }
    assert_eq!(m.pending(), 3);
    let refused = |id| Event::Reply {
        id,
        reply: Err(Failure::QueueFull),
    };
    assert_eq!(events(&mut m), vec![refused(3), refused(4)]);
    up(&mut m, 1);
    assert_eq!(m.pending(), 3, "sent, not answered");
    m.submit(5, args(&["PING"]), 1);
    assert_eq!(events(&mut m), vec![Event::Up, refused(5)]);
}

#[test]
fn a_lost_link_fails_what_was_sent_reconnects_and_resubscribes() {
    let mut m = Machine::new(config("redis://h", 10), 0);
    up(&mut m, 0);
    m.subscribe(b"room:1".to_vec(), false, 0);
    m.subscribe(b"node:*".to_vec(), true, 0);
    m.subscribe(b"room:1".to_vec(), false, 0);
    let mut subs = cmd(&["SUBSCRIBE", "room:1"]);
    subs.extend(cmd(&["PSUBSCRIBE", "node:*"]));
    assert_eq!(take(&mut m, Which::Subscriber), subs, "each once");
    m.received(
        Which::Subscriber,
        b"*3\r\n$9\r\nsubscribe\r\n$6\r\nroom:1\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$6\r\nroom:1\r\n$2\r\nhi\r\n",
        1,
    );
    m.submit(1, args(&["INCR", "n"]), 1);
    m.lost(Which::Commands, "reset", 2);
    assert!(
        !m.has_socket(Which::Subscriber),
        "the subscriber is dropped with the commands"
    );
    assert_eq!(
        events(&mut m),
        vec![
            Event::Up,
            Event::Subscribed {
                channel: b"room:1".to_vec(),
                pattern: false
            },
            Event::Message {
                pattern: None,
                channel: b"room:1".to_vec(),
                payload: b"hi".to_vec()
            },
            Event::Reply {
                id: 1,
                reply: Err(Failure::Lost)
            },
            Event::Down,
        ]
    );
    m.lost(Which::Subscriber, "reset", 2);
    assert!(events(&mut m).is_empty(), "down is told once");
    let at = m.next_deadline().unwrap();
    assert!((2 + BACKOFF_FIRST_MS / 2..=2 + BACKOFF_FIRST_MS).contains(&at));
    up(&mut m, 2 + BACKOFF_FIRST_MS);
    assert_eq!(take(&mut m, Which::Subscriber), subs, "resubscribed");
    assert_eq!(events(&mut m), vec![Event::Up]);
}

#[test]
fn a_silent_subscriber_is_probed_and_judged_dead_after_the_timeout() {
    let mut m = Machine::new(config("redis://h", 10), 0);
    up(&mut m, 0);
    assert_eq!(m.next_deadline(), Some(PROBE_INTERVAL_MS));
    m.handle_timeout(PROBE_INTERVAL_MS);
    assert_eq!(take(&mut m, Which::Subscriber), cmd(&["PING"]));
    m.received(Which::Subscriber, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", 1_010);
    m.handle_timeout(2 * PROBE_INTERVAL_MS);
    assert_eq!(take(&mut m, Which::Subscriber), cmd(&["PING"]));
    let dead_at = 2 * PROBE_INTERVAL_MS + 5_000;
    assert_eq!(m.next_deadline(), Some(dead_at), "no wake-up per second");
    m.handle_timeout(3 * PROBE_INTERVAL_MS);
    assert!(
        take(&mut m, Which::Subscriber).is_empty(),
        "one probe at a time"
    );
    m.handle_timeout(dead_at - 1);
    assert!(m.is_up());
    m.handle_timeout(dead_at);
    assert!(!m.is_up());
    assert_eq!(events(&mut m), vec![Event::Up, Event::Down]);
}

#[test]
fn garbage_from_redis_drops_the_link_without_panicking() {
    let mut m = Machine::new(config("redis://h", 10), 0);
    up(&mut m, 0);
    m.received(Which::Commands, b"+unasked\r\n", 1);
    assert!(!m.has_socket(Which::Commands), "a reply to nothing");
    m.received(Which::Subscriber, b"!nonsense\r\n", 1);
    assert!(!m.has_socket(Which::Subscriber));
}
