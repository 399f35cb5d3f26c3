//! The generator's two-address mode against a real cluster: a
//! `redis-server` of the test's own on a free loopback port and two
//! in-process roomd nodes on it; `fanout` spreads its subscribers over the
//! nodes (the publisher on the first) and `relay` puts every guest on the
//! second node, as `bench/run.sh`'s cluster rows do. Nothing may be lost.

use roomd::server::redis::RedisUrl;
use roomd::server::{Config, Server, ShutdownHandle};
use roomd_bench::args::Args;
use roomd_bench::scenario::{Summary, Target, fanout, relay};
use roomd_bench::stats::now_us;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Microseconds any wait may take.
const TIMEOUT_US: u64 = 20_000_000;

fn args(list: &[&str]) -> Args {
    Args::parse(list.iter().map(|s| s.to_string())).unwrap()
}

fn num(s: &Summary, key: &str) -> f64 {
    s.get(key).and_then(|v| v.as_f64()).unwrap_or(-1.0)
}

/// A `redis-server` on a free loopback port, without persistence; killed
/// (its own PID) when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let redis = Redis { child, port };
        let deadline = now_us() + TIMEOUT_US;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(now_us() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A roomd node on `redis`, on 127.0.0.1:0, running on its own thread.
struct Node {
    addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Node {
    fn start(redis: &Redis) -> Node {
        let mut config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            rate_limit: 0,
            ..Config::default()
        };
        let url = format!("redis://127.0.0.1:{}", redis.port);
        config.cluster.redis = Some(RedisUrl::parse(&url).unwrap());
        let server = Server::bind(config).expect("bind");
        let addr = server.local_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run().expect("server run"));
        Node {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// The status line and body of `GET /health`.
    fn health(&self) -> String {
        let Ok(mut s) = TcpStream::connect(self.addr) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take()
            && !std::thread::panicking()
        {
            t.join().expect("server thread panicked");
        }
    }
}

/// Two nodes on one Redis, once both answer /health 200 with two nodes.
fn cluster(redis: &Redis) -> (Node, Node) {
    let (a, b) = (Node::start(redis), Node::start(redis));
    let deadline = now_us() + TIMEOUT_US;
    let ready = |n: &Node| {
        let h = n.health();
        h.starts_with("HTTP/1.1 200") && h.contains(r#""nodes":2"#)
    };
    while !(ready(&a) && ready(&b)) {
        assert!(now_us() < deadline, "{} / {}", a.health(), b.health());
        std::thread::sleep(Duration::from_millis(50));
    }
    (a, b)
}

#[test]
fn fanout_and_relay_over_two_nodes_lose_nothing() {
    let redis = Redis::start();
    let (a, b) = cluster(&redis);
    // The server's CPU: this process (both nodes) and Redis, summed.
    let pids = format!("{},{}", std::process::id(), redis.child.id());
    let (addr_a, addr_b) = (a.addr.to_string(), b.addr.to_string());
    let target = Target::from_args(&args(&[
        "--addr",
        &addr_a,
        "--addr2",
        &addr_b,
        "--server-pid",
        &pids,
        "--label",
        "cluster",
    ]))
    .unwrap();
    assert_eq!(target.node(false), a.addr);
    assert_eq!(target.node(true), b.addr);

    // Full speed, then a fixed rate: every message reaches every member,
    // on both nodes.
    for more in [&[][..], &["--rate", "200"][..]] {
        let mut list = vec!["--subs", "40", "--duration", "0.5"];
        list.extend_from_slice(more);
        let s = fanout::run(&target, &fanout::Config::from_args(&args(&list)).unwrap()).unwrap();
        assert!(num(&s, "published") > 5.0, "{s:?}");
        assert_eq!(num(&s, "lost"), 0.0, "{s:?}");
        assert_eq!(num(&s, "errors"), 0.0, "{s:?}");
        assert_eq!(num(&s, "received"), num(&s, "published") * 41.0, "{s:?}");
        let each = s["server_cpu_each"].as_array().expect("CPU per process");
        assert_eq!(each.len(), 2, "{s:?}");
        let sum: f64 = each.iter().filter_map(|v| v.as_f64()).sum();
        assert!((sum - num(&s, "server_cpu")).abs() < 0.03, "{s:?}");
    }

    // Hosts on a, guests on b: every signal crosses the nodes both ways.
    let cfg = relay::Config::from_args(&args(&["--pairs", "10", "--duration", "0.5"])).unwrap();
    let s = relay::run(&target, &cfg).unwrap();
    assert!(num(&s, "round_trips") > 10.0, "{s:?}");
    assert_eq!(num(&s, "lost"), 0.0, "{s:?}");
    assert_eq!(num(&s, "errors"), 0.0, "{s:?}");
    assert!(num(&s, "sent") >= num(&s, "round_trips"), "{s:?}");
}

#[test]
fn addr2_takes_the_scheme_of_addr() {
    let e = Target::from_args(&args(&[
        "--addr",
        "127.0.0.1:1",
        "--addr2",
        "wss://127.0.0.1:2",
    ]));
    assert!(e.is_err());
    let t = Target::from_args(&args(&["--addr", "127.0.0.1:1"])).unwrap();
    assert_eq!(
        t.node(true),
        t.addr,
        "without --addr2 everyone is on --addr"
    );
}
