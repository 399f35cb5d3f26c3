//! `--reuse-port`: two servers listen on one port with it, and not
//! without it.

use roomd::server::{Config, Server};
use std::net::{SocketAddr, TcpListener};

fn config(port: u16, reuse_port: bool) -> Config {
    let mut config = Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        ..Config::default()
    };
    config.cluster.reuse_port = reuse_port;
    config
}

#[test]
fn two_servers_share_a_port_only_with_reuse_port() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let first = Server::bind(config(port, true)).expect("the first binds");
    let second = Server::bind(config(port, true)).expect("the second shares the port");
    assert_eq!(first.local_addrs(), second.local_addrs());
    let refused = Server::bind(config(port, false)).expect_err("not shared without the flag");
    assert!(refused.to_string().contains("cannot listen"), "{refused}");
}
