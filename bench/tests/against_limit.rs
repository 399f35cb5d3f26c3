//! End to end: every scenario runs against the limit server on a loopback
//! port and its figures add up (nothing lost, everyone joined).

use roomd_bench::args::Args;
use roomd_bench::limit::LimitServer;
use roomd_bench::scenario::{Summary, Target, crowd, fanout, relay};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

fn args(list: &[&str]) -> Args {
    Args::parse(list.iter().map(|s| s.to_string())).unwrap()
}

fn with_limit_server(test: impl FnOnce(Target)) {
    let mut server = LimitServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = thread::spawn(move || server.run_until(&stop2));
    let pid = std::process::id().to_string();
    let target = Target::from_args(&args(&[
        "--addr",
        &addr.to_string(),
        "--label",
        "limit",
        "--server-pid",
        &pid,
    ]))
    .unwrap();
    test(target);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
}

fn num(s: &Summary, key: &str) -> f64 {
    s.get(key).and_then(|v| v.as_f64()).unwrap_or(-1.0)
}

#[test]
fn fanout_full_speed_and_fixed_rate_lose_nothing() {
    with_limit_server(|target| {
        let cfg =
            fanout::Config::from_args(&args(&["--subs", "50", "--pubs", "2", "--duration", "0.5"]))
                .unwrap();
        let s = fanout::run(&target, &cfg).unwrap();
        assert_eq!(num(&s, "lost"), 0.0, "{s:?}");
        assert!(num(&s, "published") > 10.0, "{s:?}");
        assert_eq!(num(&s, "received"), num(&s, "published") * 52.0, "{s:?}");
        assert!(num(&s, "deliveries_per_s") > 0.0);
        assert!(num(&s, "client_cpu") >= 0.0);
        // The server is this process: busy at full speed, so each delivery
        // has a cost, and the two figures agree.
        let us = num(&s, "server_cpu_us_per_delivery");
        assert!(us > 0.0, "{s:?}");
        let per_s = num(&s, "deliveries_per_server_cpu_s");
        assert!((us - 1e6 / per_s).abs() <= 0.005 + 1e-9, "{s:?}");

        let cfg = fanout::Config::from_args(&args(&[
            "--subs",
            "20",
            "--duration",
            "0.5",
            "--rate",
            "100",
        ]))
        .unwrap();
        let s = fanout::run(&target, &cfg).unwrap();
        assert_eq!(s["mode"], "rate");
        let published = num(&s, "published");
        assert!((40.0..=60.0).contains(&published), "{s:?}");
        assert_eq!(num(&s, "lost"), 0.0, "{s:?}");
        assert!(num(&s, "p99_ms") >= num(&s, "p50_ms"));
    });
}

#[test]
fn relay_round_trips_flow() {
    with_limit_server(|target| {
        let cfg = relay::Config::from_args(&args(&["--pairs", "5", "--duration", "0.3"])).unwrap();
        let s = relay::run(&target, &cfg).unwrap();
        assert!(num(&s, "round_trips") > 50.0, "{s:?}");
        assert_eq!(num(&s, "errors"), 0.0);
        assert!(num(&s, "rtt_p99_ms") >= num(&s, "rtt_p50_ms"));
    });
}

#[test]
fn idle_in_two_shards_and_storm_rejoin_everyone() {
    with_limit_server(|target| {
        let dir = std::env::temp_dir().join(format!("roomd-bench-idle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let shard = |i: &str| {
            crowd::Config::from_args(&args(&[
                "--conns",
                "200",
                "--shard",
                i,
                "--sync-dir",
                &d,
                "--hold",
                "0.1",
            ]))
            .unwrap()
        };
        let (c0, c1) = (shard("0/2"), shard("1/2"));
        let (s0, s1) = thread::scope(|scope| {
            let other = scope.spawn(|| crowd::run_idle(&target, &c1));
            let s0 = crowd::run_idle(&target, &c0).unwrap();
            assert_eq!(num(&s0, "opened"), 200.0, "{s0:?}");
            assert_eq!(num(&s0, "joined"), 200.0, "{s0:?}");
            assert!(num(&s0, "handshakes_per_s") > 0.0);
            assert!(s0.contains_key("rss_per_conn_kib"));
            (s0, other.join().unwrap().unwrap())
        });
        assert_eq!(s1["scenario"], "idle-shard");
        assert_eq!(num(&s1, "opened"), 100.0);
        // Shard 0's generator figure is the sum over both shards.
        assert!(num(&s1, "client_cpu") >= 0.0, "{s1:?}");
        assert!(
            num(&s0, "client_cpu") >= num(&s1, "client_cpu"),
            "{s0:?} {s1:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let cfg = crowd::Config::from_args(&args(&["--conns", "300", "--hold", "0.1"])).unwrap();
        let s = crowd::run_storm(&target, &cfg).unwrap();
        assert_eq!(s["all_rejoined"], true, "{s:?}");
        assert_eq!(num(&s, "rejoined"), 300.0);
    });
}
