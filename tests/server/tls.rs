//! TLS listeners end to end with real TLS clients (rustls, and curl where
//! it is installed): every protocol over `wss://`, `/health` over
//! `https://`, SIGHUP reloading the certificate, a stalled handshake
//! dropped at the request deadline, garbage harming no one.

use crate::live::{TIMEOUT, eventually, metric_at};
use roomd::server::{Config, Server, ShutdownHandle};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

pub(crate) fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// A server with a plaintext and a TLS listener.
struct TlsServer {
    plain: SocketAddr,
    tls: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl TlsServer {
    fn start(cert: &Path, key: &Path, config: Config) -> TlsServer {
        let config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_cert: Some(cert.to_path_buf()),
            tls_key: Some(key.to_path_buf()),
            ..config
        };
        let mut server = Server::bind(config).expect("bind");
        server.handle_signals().expect("signals");
        let (plain, tls) = (server.local_addrs()[0], server.tls_addrs()[0]);
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run().expect("server run"));
        TlsServer {
            plain,
            tls,
            handle,
            thread: Some(thread),
        }
    }

    fn default() -> TlsServer {
        TlsServer::start(&data("server.pem"), &data("server.key"), Config::default())
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take()
            && !std::thread::panicking()
        {
            t.join().expect("server thread panicked");
        }
    }
}

/// A TLS client trusting only the test CA.
fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(data("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A finished TLS handshake with `addr` as `localhost`.
fn tls_connect(addr: SocketAddr) -> TlsStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(client_config(), name).unwrap();
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// The server certificate's DER, as the client saw it.
fn peer_certificate(stream: &TlsStream) -> Vec<u8> {
    let certs = stream.conn.peer_certificates().expect("a certificate");
    certs[0].as_ref().to_vec()
}

pub(crate) fn wss(addr: SocketAddr, path: &str) -> WebSocket<TlsStream> {
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, response) = tungstenite::client(url, tls_connect(addr)).expect("wss handshake");
    assert_eq!(response.status(), 101);
    ws
}

fn send(ws: &mut WebSocket<TlsStream>, value: Value) {
    ws.send(Message::text(value.to_string())).expect("send");
}

/// The next text message of type `ty` (others skipped).
fn recv_type(ws: &mut WebSocket<TlsStream>, ty: &str) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Message::Text(text) = ws.read().expect("read") {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == ty {
                return value;
            }
        }
    }
    panic!("no {ty} message");
}

/// An HTTP/1.1 GET over TLS; returns the whole answer.
fn https_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = tls_connect(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // The server ends with close_notify, so the read ends cleanly.
    stream.read_to_end(&mut answer).expect("read answer");
    String::from_utf8(answer).unwrap()
}

#[test]
fn every_protocol_over_wss() {
    let server = TlsServer::default();
    let mut a = wss(server.tls, "/chat");
    recv_type(&mut a, "system");
    send(&mut a, json!({"type": "chat", "payload": "over tls"}));
    assert_eq!(recv_type(&mut a, "chat")["payload"], "over tls");

    let mut p = wss(server.tls, "/presence?userId=7");
    assert_eq!(recv_type(&mut p, "ONLINE_USERS")["userIds"], json!([7]));

    let mut s1 = wss(server.tls, "/scratch");
    let mut s2 = wss(server.tls, "/scratch");
    send(&mut s1, json!({"type": "join", "sessionId": "s"}));
    recv_type(&mut s1, "joined");
    send(&mut s2, json!({"type": "join", "sessionId": "s"}));
    recv_type(&mut s1, "user-joined");

    let mut g = wss(server.tls, "/signal");
    send(&mut g, json!({"type": "create-room"}));
    let room = recv_type(&mut g, "room-created")["roomId"].clone();
    assert_eq!(room.as_str().map(str::len), Some(6));

    let mut st = wss(server.tls, "/stream");
    let join = json!({"type": "join-room", "roomId": "r", "userId": "u", "userName": "U"});
    send(&mut st, join);
    recv_type(&mut st, "room-joined");

    // Plaintext and TLS clients are in one server: the same chat room.
    let mut plain = tungstenite::connect(format!("ws://{}/chat", server.plain))
        .expect("plaintext")
        .0;
    loop {
        if let Message::Text(t) = plain.read().unwrap()
            && t.contains("system")
        {
            break;
        }
    }
    plain
        .send(Message::text(
            json!({"type": "chat", "payload": "from plaintext"}).to_string(),
        ))
        .unwrap();
    assert_eq!(recv_type(&mut a, "chat")["payload"], "from plaintext");
}

#[test]
fn health_over_https_and_alpn_is_http_1_1() {
    let server = TlsServer::default();
    let answer = https_get(server.tls, "/health");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
    let stream = tls_connect(server.tls);
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let metrics = https_get(server.tls, "/metrics");
    assert!(
        metrics.contains("roomd_tls_certificate_expiry_seconds 4"),
        "{metrics}"
    );
}

/// curl, a client built on another TLS library, when installed.
#[test]
fn curl_gets_health_over_https() {
    let Ok(version) = std::process::Command::new("curl").arg("--version").output() else {
        eprintln!("curl not installed: skipped");
        return;
    };
    assert!(version.status.success());
    let server = TlsServer::default();
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5", "--cacert"])
        .arg(data("ca.pem"))
        .arg(format!("https://localhost:{}/health", server.tls.port()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "ok");
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let dir = std::env::temp_dir().join(format!("roomd-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(data("server.pem"), &cert).unwrap();
    std::fs::copy(data("server.key"), &key).unwrap();
    let server = TlsServer::start(&cert, &key, Config::default());
    let first = std::fs::read(data("server.pem")).unwrap();
    let second = std::fs::read(data("server2.pem")).unwrap();
    let der = |pem: &[u8]| {
        CertificateDer::from_pem_slice(pem)
            .unwrap()
            .as_ref()
            .to_vec()
    };

    let mut open = wss(server.tls, "/chat");
    recv_type(&mut open, "system");
    assert_eq!(peer_certificate(open.get_ref()), der(&first));

    std::fs::copy(data("server2.pem"), &cert).unwrap();
    std::fs::copy(data("server2.key"), &key).unwrap();
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    eventually("the new certificate", || {
        peer_certificate(&tls_connect(server.tls)) == der(&second)
    });
    send(&mut open, json!({"type": "chat", "payload": "still here"}));
    assert_eq!(recv_type(&mut open, "chat")["payload"], "still here");

    // A broken key file is refused and the current pair kept.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbroken\n").unwrap();
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(peer_certificate(&tls_connect(server.tls)), der(&second));
    assert!(https_get(server.tls, "/health").starts_with("HTTP/1.1 200"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stalled_handshake_is_dropped_at_the_request_deadline() {
    let config = Config {
        request_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TlsServer::start(&data("server.pem"), &data("server.key"), config);
    for opening in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]] {
        let mut tcp = TcpStream::connect(server.tls).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.write_all(opening).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let n = tcp.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "the server sent something to a stalled handshake");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    eventually("two request timeouts", || {
        metric_at(server.plain, "roomd_request_timeouts_total") >= 2
    });
}

#[test]
fn garbage_on_the_tls_port_harms_no_one() {
    let server = TlsServer::default();
    let mut member = wss(server.tls, "/chat");
    recv_type(&mut member, "system");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for start in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05][..],
    ] {
        let mut tcp = TcpStream::connect(server.tls).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = tcp.write_all(&[start, &garbage[..]].concat());
        let mut rest = Vec::new();
        // An alert at most, then the end.
        let _ = tcp.read_to_end(&mut rest);
        assert!(rest.len() < 64, "{} bytes answered to garbage", rest.len());
    }
    send(&mut member, json!({"type": "chat", "payload": "unharmed"}));
    assert_eq!(recv_type(&mut member, "chat")["payload"], "unharmed");
    assert!(metric_at(server.plain, "roomd_tls_handshake_failures_total") >= 2);
}
