//! The seeds' environment, as their users have it: `PORT`, `WS_PORT`,
//! `FRONTEND_URL` and a `.env` file, against the `roomd` binary. A port
//! variable means `0.0.0.0:N`; the tests connect to `127.0.0.1:N`.

use crate::live::binary::{KillOnDrop, Spawned, next_line, roomd, scratch_dir, spawn};
use std::net::{SocketAddr, TcpListener, TcpStream};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

/// Ports free on every address: bound together (so they differ), then
/// released for roomd to bind.
fn free_ports<const N: usize>() -> [u16; N] {
    let probes = [(); N].map(|()| TcpListener::bind("0.0.0.0:0").expect("bind a probe"));
    probes.map(|p| p.local_addr().expect("probe address").port())
}

/// Waits for roomd to listen on `0.0.0.0:port` for each of `ports`, in
/// order; returns it with the loopback address of each.
fn serving(server: Spawned, ports: &[u16]) -> (KillOnDrop, Vec<SocketAddr>) {
    let Spawned { child, addr, log } = server;
    let child = KillOnDrop(child);
    let mut listening = vec![addr];
    while listening.len() < ports.len() {
        let line = next_line(&log, "listening on ");
        let addr = line.rsplit(' ').next().and_then(|a| a.parse().ok());
        listening.push(addr.expect("an address after `listening on`"));
    }
    let wanted: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([0, 0, 0, 0], *p)))
        .collect();
    assert_eq!(listening, wanted);
    let loopback = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    (child, loopback)
}

/// A WebSocket handshake on `/chat` with `origin`: its HTTP status (101
/// when accepted), and the greeting read when accepted.
fn chat(addr: SocketAddr, origin: Option<&str>) -> u16 {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let mut request = format!("ws://{addr}/chat").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tungstenite::client(request, stream) {
        Ok((mut ws, response)) => {
            let greeting = ws.read().expect("a greeting");
            assert!(
                matches!(&greeting, Message::Text(t) if t.as_str().contains("\"system\"")),
                "{greeting:?}"
            );
            response.status().as_u16()
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            response.status().as_u16()
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// The status of `GET /health`.
fn health(addr: SocketAddr) -> u16 {
    crate::live::http(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").0
}

#[test]
fn ws_port_alone_serves_websocket_and_http_on_every_address() {
    let [port] = free_ports();
    let mut command = roomd();
    command.env("WS_PORT", port.to_string());
    let (_server, addrs) = serving(spawn(command), &[port]);
    assert_eq!(chat(addrs[0], None), 101);
    assert_eq!(health(addrs[0]), 200);
}

#[test]
fn port_and_ws_port_each_serve_websocket_and_http() {
    let [http_port, ws_port] = free_ports();
    let mut command = roomd();
    command
        .env("PORT", http_port.to_string())
        .env("WS_PORT", ws_port.to_string());
    let (_server, addrs) = serving(spawn(command), &[http_port, ws_port]);
    for addr in addrs {
        assert_eq!(chat(addr, None), 101, "{addr}");
        assert_eq!(health(addr), 200, "{addr}");
    }
}

/// A `.env` as the signaling server's README has it; the real
/// environment's `FRONTEND_URL` wins over the file's.
#[test]
fn a_dotenv_file_in_the_working_directory_is_read_and_the_environment_wins() {
    let [port] = free_ports();
    let dir = scratch_dir("dotenv");
    let dotenv = format!(
        "# the signaling server's settings\n\
         WS_PORT={port}\n\
         FRONTEND_URL=http://from-dotenv.example,http://also-dotenv.example\n"
    );
    std::fs::write(dir.join(".env"), dotenv).unwrap();
    let mut command = roomd();
    command
        .current_dir(&dir)
        .env("FRONTEND_URL", "http://from-env.example/");
    let (_server, addrs) = serving(spawn(command), &[port]);
    assert_eq!(chat(addrs[0], Some("http://from-env.example")), 101);
    assert_eq!(chat(addrs[0], Some("http://from-dotenv.example")), 403);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_port_variable_exits_2_naming_it() {
    let out = roomd().env("WS_PORT", "http").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "roomd: invalid WS_PORT: \"http\" is not a port number\n"
    );
}
