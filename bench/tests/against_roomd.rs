//! The generator's TLS client against roomd itself: an in-process roomd
//! with a TLS listener on a free loopback port and the test certificates
//! of `tests/data/tls` (ECDSA P-256, signed by the test CA), reached over
//! `wss://` by the same scenarios `bench/run.sh` runs.

use roomd::server::{Config, Server, ShutdownHandle};
use roomd_bench::args::Args;
use roomd_bench::scenario::{Summary, Target, crowd, fanout, handshakes};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;

fn args(list: &[&str]) -> Args {
    Args::parse(list.iter().map(|s| s.to_string())).unwrap()
}

fn tls_data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tls")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn num(s: &Summary, key: &str) -> f64 {
    s.get(key).and_then(|v| v.as_f64()).unwrap_or(-1.0)
}

/// roomd on 127.0.0.1:0 with a TLS listener, running on its own thread.
struct Roomd {
    tls: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Roomd {
    fn start() -> Roomd {
        let config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_cert: Some(tls_data("server.pem").into()),
            tls_key: Some(tls_data("server.key").into()),
            rate_limit: 0,
            ..Config::default()
        };
        let server = Server::bind(config).expect("bind");
        let tls = server.tls_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run().expect("server run"));
        Roomd {
            tls,
            handle,
            thread: Some(thread),
        }
    }

    /// The target over `wss://`, trusting the test CA, with `more` options
    /// (e.g. `--tls-name`).
    fn target(&self, more: &[&str]) -> Result<Target, String> {
        let (pid, addr, ca) = (
            std::process::id().to_string(),
            format!("wss://{}", self.tls),
            tls_data("ca.pem"),
        );
        let mut list = vec!["--addr", &addr, "--tls-ca", &ca, "--server-pid", &pid];
        list.extend_from_slice(more);
        Target::from_args(&args(&list))
    }
}

impl Drop for Roomd {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take()
            && !std::thread::panicking()
        {
            t.join().expect("server thread panicked");
        }
    }
}

#[test]
fn wss_upgrades_handshakes_and_fanout_over_tls() {
    let roomd = Roomd::start();
    let target = roomd.target(&["--tls-name", "localhost"]).unwrap();

    // Full handshakes + upgrades, one after another on 4 slots.
    let cfg =
        handshakes::Config::from_args(&args(&["--in-flight", "4", "--duration", "0.5"])).unwrap();
    let s = handshakes::run(&target, &cfg).unwrap();
    assert!(num(&s, "completed") >= 4.0, "{s:?}");
    assert_eq!(num(&s, "failed"), 0.0, "{s:?}");
    assert_eq!(s["scheme"], "wss", "{s:?}");
    let tls = s["tls"].as_str().unwrap_or_default();
    assert!(tls.starts_with("TLSv1_3 TLS13_"), "{s:?}");
    assert!(num(&s, "handshakes_per_s") > 0.0, "{s:?}");

    // Messages through the record layer both ways, none lost.
    let cfg = fanout::Config::from_args(&args(&["--subs", "30", "--duration", "0.3"])).unwrap();
    let s = fanout::run(&target, &cfg).unwrap();
    assert!(num(&s, "published") > 5.0, "{s:?}");
    assert_eq!(num(&s, "lost"), 0.0, "{s:?}");
    assert_eq!(num(&s, "received"), num(&s, "published") * 31.0, "{s:?}");

    // Everyone joins and is held.
    let cfg = crowd::Config::from_args(&args(&["--conns", "50", "--hold", "0.1"])).unwrap();
    let s = crowd::run_idle(&target, &cfg).unwrap();
    assert_eq!(num(&s, "joined"), 50.0, "{s:?}");

    // Only X25519 offered: that is what is negotiated.
    let x25519 = roomd.target(&["--tls-kx", "x25519"]).unwrap();
    let cfg =
        handshakes::Config::from_args(&args(&["--in-flight", "2", "--duration", "0.2"])).unwrap();
    let s = handshakes::run(&x25519, &cfg).unwrap();
    assert!(
        s["tls"].as_str().unwrap_or_default().ends_with(" X25519"),
        "{s:?}"
    );
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let roomd = Roomd::start();
    // The certificate is for localhost and 127.0.0.1, not this name: no
    // connection may complete.
    let target = roomd.target(&["--tls-name", "elsewhere.example"]).unwrap();
    let cfg =
        handshakes::Config::from_args(&args(&["--in-flight", "2", "--duration", "0.3"])).unwrap();
    let s = handshakes::run(&target, &cfg).unwrap();
    assert_eq!(num(&s, "completed"), 0.0, "{s:?}");
    assert!(num(&s, "failed") > 0.0, "{s:?}");
    // And a wss:// address without a CA to trust is an error up front.
    let e = Target::from_args(&args(&["--addr", &format!("wss://{}", roomd.tls)]));
    assert!(e.is_err());
}
