//! The Redis client against a real `redis-server` of the test's own:
//! pipelined commands, pub/sub order, NOSCRIPT, AUTH, Redis killed and
//! restarted, Redis stopped (the bounded queue), and `/health` of a roomd
//! with `--redis`; roomd without it has no Redis at all.

use crate::live::redis::{RedisServer, TestClient};
use crate::live::{TestServer, metric};
use roomd::protocol::resp::Reply;
use roomd::server::Config;
use roomd::server::redis::{BACKOFF_MAX_MS, Event, Failure, RedisUrl, Script};
use std::time::{Duration, Instant};

const NODE_TIMEOUT: Duration = Duration::from_secs(1);

#[test]
fn pipelined_commands_are_answered_in_order_and_messages_come_in_publish_order() {
    let redis = RedisServer::start(None);
    let mut c = TestClient::new(&redis.url(0), NODE_TIMEOUT, 10_000);
    c.wait_up(crate::live::TIMEOUT);
    let now = c.now();
    c.client.subscribe(b"room:1".to_vec(), false, now);
    let subscribed = |e: &[Event]| e.iter().any(|e| matches!(e, Event::Subscribed { .. }));
    assert!(c.run_until(crate::live::TIMEOUT, subscribed));
    let now = c.now();
    for id in 1..=1_000u64 {
        let args = vec![b"INCR".to_vec(), b"n".to_vec()];
        c.client.submit(id, args, now);
        let publish = [
            b"PUBLISH".to_vec(),
            b"room:1".to_vec(),
            id.to_string().into_bytes(),
        ];
        c.client.submit(100_000 + id, publish.to_vec(), now);
    }
    let replies = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::Reply { .. }))
            .count()
    };
    assert!(c.run_until(crate::live::TIMEOUT, |e| replies(e) == 2_000));
    let messages = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count()
    };
    assert!(c.run_until(crate::live::TIMEOUT, |e| messages(e) == 1_000));
    let mut incr = 0;
    let mut published = 0;
    for event in &c.events {
        match event {
            Event::Reply { id, reply } if *id <= 1_000 => {
                incr += 1;
                assert_eq!(*id, incr, "replies in submission order");
                assert_eq!(*reply, Ok(Reply::Integer(incr as i64)));
            }
            Event::Reply { reply, .. } => assert_eq!(*reply, Ok(Reply::Integer(1))),
            Event::Message {
                channel,
                payload,
                pattern,
            } => {
                published += 1;
                assert_eq!((channel.as_slice(), pattern), (&b"room:1"[..], &None));
                assert_eq!(
                    *payload,
                    published.to_string().into_bytes(),
                    "publish order"
                );
            }
            _ => {}
        }
    }
    assert_eq!((incr, published), (1_000, 1_000));
}

#[test]
fn an_uncached_script_falls_back_to_eval() {
    let redis = RedisServer::start(None);
    let mut c = TestClient::new(&redis.url(0), NODE_TIMEOUT, 100);
    c.wait_up(crate::live::TIMEOUT);
    let script = Script::new("return redis.call('INCR', 'runs')");
    assert_eq!(c.call(1, &["SCRIPT", "FLUSH"]), Reply::Status("OK".into()));
    let exists = |c: &mut TestClient, id| c.call(id, &["SCRIPT", "EXISTS", script.sha1()]);
    assert_eq!(exists(&mut c, 2), Reply::Array(vec![Reply::Integer(0)]));
    assert_eq!(
        c.script(3, &script),
        Reply::Integer(1),
        "NOSCRIPT, then EVAL"
    );
    assert_eq!(exists(&mut c, 4), Reply::Array(vec![Reply::Integer(1)]));
    assert_eq!(c.script(5, &script), Reply::Integer(2), "EVALSHA");
    assert_eq!(
        c.call(6, &["GET", "runs"]),
        Reply::Bulk(b"2".to_vec()),
        "ran once each"
    );
}

#[test]
fn a_password_and_a_database_from_the_url() {
    let redis = RedisServer::start(Some("s3cret"));
    let mut c = TestClient::new(&redis.url(2), NODE_TIMEOUT, 100);
    c.wait_up(crate::live::TIMEOUT);
    assert_eq!(c.call(1, &["SET", "k", "v"]), Reply::Status("OK".into()));
    let mut db0 = TestClient::new(&redis.url(0), NODE_TIMEOUT, 100);
    db0.wait_up(crate::live::TIMEOUT);
    assert_eq!(db0.call(1, &["GET", "k"]), Reply::Nil, "SELECT 2 took");
    let wrong = format!("redis://:wrong@127.0.0.1:{}", redis.port);
    let mut refused = TestClient::new(&wrong, NODE_TIMEOUT, 100);
    let up = |e: &[Event]| e.contains(&Event::Up);
    assert!(
        !refused.run_until(Duration::from_millis(1_500), up),
        "a wrong password is never up"
    );
}

#[test]
fn killed_and_restarted_redis_is_noticed_reconnected_and_resubscribed() {
    let redis = RedisServer::start(None);
    let mut c = TestClient::new(&redis.url(0), NODE_TIMEOUT, 100);
    c.wait_up(crate::live::TIMEOUT);
    let now = c.now();
    c.client.subscribe(b"nodes".to_vec(), false, now);
    let subscribed = |e: &[Event]| e.iter().any(|e| matches!(e, Event::Subscribed { .. }));
    assert!(c.run_until(crate::live::TIMEOUT, subscribed));
    c.events.clear();

    let (port, password) = redis.kill9();
    let killed = Instant::now();
    let down = |e: &[Event]| e.contains(&Event::Down);
    assert!(
        c.run_until(NODE_TIMEOUT + Duration::from_secs(1), down),
        "down in time"
    );
    assert!(!c.client.is_up());
    // Down for a while: the attempts back off to their cap.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(killed.elapsed()));
    assert!(!c.run_until(Duration::from_millis(100), |e| e.contains(&Event::Up)));

    let redis = RedisServer::start_on(port, password);
    let back = Instant::now();
    c.events.clear();
    let resubscribed = |e: &[Event]| {
        e.contains(&Event::Up) && e.iter().any(|e| matches!(e, Event::Subscribed { .. }))
    };
    let within = Duration::from_millis(BACKOFF_MAX_MS + 1_000);
    assert!(c.run_until(within, resubscribed), "{:?}", c.events);
    assert!(back.elapsed() <= within);
    assert_eq!(c.call(1, &["PUBLISH", "nodes", "hello"]), Reply::Integer(1));
    let message = |e: &[Event]| e.iter().any(|e| matches!(e, Event::Message { .. }));
    assert!(c.run_until(crate::live::TIMEOUT, message));
    drop(redis);
}

#[test]
fn a_stopped_redis_fills_the_queue_and_commands_past_the_cap_fail_at_once() {
    let redis = RedisServer::start(None);
    let mut c = TestClient::new(&redis.url(0), NODE_TIMEOUT, 50);
    c.wait_up(crate::live::TIMEOUT);
    redis.signal("STOP");
    let now = c.now();
    for id in 0..60 {
        c.client.submit(id, vec![b"PING".to_vec()], now);
    }
    assert_eq!(c.client.pending(), 50);
    let refused: Vec<u64> = std::iter::from_fn(|| c.client.poll_event())
        .filter_map(|e| match e {
            Event::Reply {
                id,
                reply: Err(Failure::QueueFull),
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(refused, (50..60).collect::<Vec<_>>(), "refused at once");
    let down = |e: &[Event]| e.contains(&Event::Down);
    assert!(
        c.run_until(NODE_TIMEOUT + Duration::from_secs(1), down),
        "down in time"
    );
    let lost = c.events.iter().filter(|e| {
        matches!(
            e,
            Event::Reply {
                reply: Err(Failure::Lost),
                ..
            }
        )
    });
    assert_eq!(lost.count(), 50, "what was sent to a dead Redis fails");
    redis.signal("CONT");
    c.events.clear();
    c.wait_up(Duration::from_millis(BACKOFF_MAX_MS) + NODE_TIMEOUT + Duration::from_secs(1));
    assert_eq!(c.call(99, &["PING"]), Reply::Status("PONG".into()));
}

fn health(server: &TestServer) -> (u16, serde_json::Value) {
    let (status, _, body) = server.get("/health");
    (status, serde_json::from_str(&body).expect("JSON health"))
}

/// `/health` until its status is `status`, within `within`.
fn health_becomes(server: &TestServer, status: u16, within: Duration) -> serde_json::Value {
    let until = Instant::now() + within;
    loop {
        let (s, body) = health(server);
        if s == status {
            return body;
        }
        assert!(Instant::now() < until, "/health still {s}: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_follows_redis_down_and_up() {
    let redis = RedisServer::start(None);
    let mut config = Config::default();
    config.cluster.redis = Some(RedisUrl::parse(&redis.url(0)).unwrap());
    config.cluster.node_timeout = NODE_TIMEOUT;
    let server = TestServer::start(config);
    let body = health_becomes(&server, 200, crate::live::TIMEOUT);
    assert_eq!(body["redis"], "up");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["nodes"], 1);
    assert_eq!(metric(&server, "roomd_redis_up"), 1);
    assert_eq!(metric(&server, "roomd_cluster_nodes"), 1);
    assert!(
        metric(&server, "roomd_redis_commands_total") >= 3,
        "register, heartbeat, sync"
    );
    assert!(metric(&server, "roomd_redis_round_trip_seconds_count") >= 3);
    assert_eq!(metric(&server, "roomd_redis_reconnects_total"), 0);

    let (port, password) = redis.kill9();
    let body = health_becomes(&server, 503, NODE_TIMEOUT + Duration::from_secs(2));
    assert_eq!(body["redis"], "down");
    assert!(
        body["connections"].is_number(),
        "the usual fields stay: {body}"
    );

    let _redis = RedisServer::start_on(port, password);
    let within = Duration::from_millis(BACKOFF_MAX_MS) + Duration::from_secs(2);
    let body = health_becomes(&server, 200, within);
    assert_eq!(body["redis"], "up");
    assert_eq!(metric(&server, "roomd_redis_reconnects_total"), 1);
}

#[test]
fn without_redis_there_is_no_redis() {
    let redis = RedisServer::start(None);
    let server = TestServer::default();
    let (status, body) = health(&server);
    assert_eq!(status, 200);
    assert!(body.get("redis").is_none(), "{body}");
    // The only client of the Redis running meanwhile is this probe.
    let mut c = TestClient::new(&redis.url(0), NODE_TIMEOUT, 10);
    c.wait_up(crate::live::TIMEOUT);
    let Reply::Bulk(list) = c.call(1, &["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST is a bulk reply")
    };
    let clients = String::from_utf8_lossy(&list).lines().count();
    assert_eq!(clients, 2, "our two connections only");
}
