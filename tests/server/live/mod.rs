//! Shared helpers for the end-to-end tests (a live server): an in-process server on
//! 127.0.0.1:0, raw HTTP requests, and a tungstenite client whose every
//! read has a timeout.
#![allow(dead_code)]

pub mod binary;
pub mod dist;
pub mod raw;
pub mod redis;

use roomd::server::{Config, Server, ShutdownHandle};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Every wait in the tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A server running in a thread; shut down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(config: Config) -> TestServer {
        let config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..config
        };
        let server = Server::bind(config).expect("bind");
        let addr = server.local_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run().expect("server run"));
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    pub fn default() -> TestServer {
        TestServer::start(Config::default())
    }

    /// Shuts down and waits for the reactor thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(t.is_finished(), "server did not stop");
            t.join().expect("server thread panicked");
        }
    }

    /// A raw HTTP request; returns (status, head, body).
    pub fn http(&self, request: &str) -> (u16, String, String) {
        http(self.addr, request)
    }

    pub fn get(&self, path: &str) -> (u16, String, String) {
        self.http(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    /// A WebSocket client on `path` (with query), with read timeouts.
    pub fn ws(&self, path: &str) -> Client {
        self.try_ws(path, &[]).expect("websocket handshake")
    }

    pub fn try_ws(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        try_ws_at(self.addr, path, headers)
    }
}

/// A WebSocket client of the server at `addr`, on `path` (with query).
pub fn ws_at(addr: SocketAddr, path: &str) -> Client {
    try_ws_at(addr, path, &[]).expect("websocket handshake")
}

/// [`ws_at`] with extra request headers; the handshake's error if refused.
pub fn try_ws_at(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tungstenite::Error> {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    for (k, v) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("handshake interrupted"),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.stop_inner();
        } else if self.thread.is_some() {
            self.handle.shutdown();
        }
    }
}

/// A raw HTTP exchange (the server closes after answering).
pub fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    // Half-close, as `nc` does: the answer must still come.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read answer");
    let text = String::from_utf8(buf).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_string(), body.to_string())
}

/// A WebSocket test client.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
}

impl Client {
    pub fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    pub fn send_json(&mut self, value: serde_json::Value) {
        self.send(&value.to_string());
    }

    /// The next text message as JSON (pings are answered on the way).
    pub fn recv(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no message in time");
            match self.ws.read().expect("read") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// The next message whose `type` is `ty`, skipping others.
    pub fn recv_type(&mut self, ty: &str) -> serde_json::Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no {ty} in time");
            let m = self.recv();
            if m["type"] == ty {
                return m;
            }
        }
    }

    /// Reads until the server's close frame; returns its code.
    pub fn expect_close(&mut self) -> u16 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no close in time");
            match self.ws.read() {
                Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
                Ok(Message::Close(None)) => return u16::from(CloseCode::Status),
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }

    /// True once the server has closed the TCP connection.
    pub fn is_gone(&mut self) -> bool {
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

/// Polls `f` until it returns true or [`TIMEOUT`] passes.
pub fn eventually(what: &str, f: impl FnMut() -> bool) {
    eventually_within(TIMEOUT, what, f);
}

/// Polls `f` until it returns true or `limit` passes.
pub fn eventually_within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting {limit:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of a metric line `name value` in `/metrics`.
pub fn metric(server: &TestServer, name: &str) -> u64 {
    metric_at(server.addr, name)
}

/// [`metric`] of the server listening on `addr`.
pub fn metric_at(addr: SocketAddr, name: &str) -> u64 {
    let (_, _, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// A WebSocket upgrade request for `path`, with `extra` header lines.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client frame (payload under 126 bytes), made by hand to send
/// what tungstenite's client would refuse to.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [9u8, 8, 7, 6];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The scratch `join` of session `s`, as a client sends it.
pub const JOIN_SESSION_S: &str = r#"{"type":"join","sessionId":"s"}"#;

/// Two WebSockets that joined scratch session `s`: the receiver, the
/// sender, and the sender's `userId`.
pub fn scratch_pair(server: &TestServer) -> (Client, Client, serde_json::Value) {
    let mut receiver = server.ws("/scratch");
    receiver.send(JOIN_SESSION_S);
    receiver.recv_type("joined");
    let mut sender = server.ws("/scratch");
    sender.send(JOIN_SESSION_S);
    sender.recv_type("joined");
    let sender_id = receiver.recv_type("user-joined")["userId"].clone();
    (receiver, sender, sender_id)
}
