//! Signed identities over real sockets: the upgrade answers (401 with
//! `WWW-Authenticate: Bearer`, 403), the token in each of its three
//! places and their precedence, `--auth optional`, presence's `userId`
//! against `sub`, the refusal metrics, and the token kept out of the log
//! (at `trace`) and the journal.

use crate::live::binary::{self, KillOnDrop};
use crate::live::raw::Raw;
use crate::live::{TestServer, metric, upgrade_request};
use jsonwebtoken::{EncodingKey, Header};
use roomd::server::Config;
use roomd::server::auth::{AuthConfig, AuthMode};
use serde_json::json;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/auth")
        .join(name)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token for `sub` with the test secret, expiring in an hour
/// (or as `exp_in` says, in seconds from now, negative for the past).
fn token(sub: &str, exp_in: i64) -> String {
    let secret = std::fs::read(data("hs256.secret")).unwrap();
    let secret = secret.strip_suffix(b"\n").unwrap_or(&secret);
    let exp = now_secs() as i64 + exp_in;
    let claims = json!({"sub": sub, "exp": exp});
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

fn server(mode: Option<AuthMode>) -> TestServer {
    TestServer::start(Config {
        auth: AuthConfig {
            jwt_secret_file: Some(data("hs256.secret")),
            mode,
            ..AuthConfig::default()
        },
        ..Config::default()
    })
}

/// The status and head of an upgrade to `path` with `extra` headers.
fn upgrade(server: &TestServer, path: &str, extra: &str) -> (u16, String) {
    let mut raw = Raw::connect(server.addr);
    raw.send(upgrade_request(path, extra).as_bytes());
    status_and_head(&mut raw)
}

fn status_and_head(raw: &mut Raw) -> (u16, String) {
    let head = raw.head();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    (
        status.unwrap_or_else(|| panic!("no status in {head:?}")),
        head,
    )
}

#[test]
fn no_or_bad_tokens_get_401_with_bearer_and_are_counted_by_reason() {
    let server = server(None);
    let (status, head) = upgrade(&server, "/chat", "");
    assert_eq!(status, 401, "no token");
    assert!(head.contains("WWW-Authenticate: Bearer\r\n"), "{head}");
    let expired = token("alice", -3600);
    // A signature character changed where all its bits count (the last
    // one may carry only padding bits).
    let mut forged = token("alice", 3600);
    let i = forged.len() - 10;
    let swap = if &forged[i..=i] == "A" { "B" } else { "A" };
    forged.replace_range(i..=i, swap);
    for (query, reason) in [
        (format!("token={expired}"), "expired"),
        (format!("token={forged}"), "signature"),
        ("token=not.a.jwt".to_string(), "malformed"),
    ] {
        let (status, _) = upgrade(&server, &format!("/chat?{query}"), "");
        assert_eq!(status, 401, "{reason}");
        let name = format!("roomd_refused_tokens_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&server, &name), 1, "{reason}");
    }
    let name = "roomd_refused_tokens_total{reason=\"missing\"}";
    assert_eq!(metric(&server, name), 1);
    assert_eq!(
        metric(&server, "roomd_rejected_upgrades_total{status=\"401\"}"),
        4
    );
}

#[test]
fn a_token_in_each_of_its_places_opens_and_the_first_place_wins() {
    let server = server(None);
    let good = token("alice", 3600);
    let (status, head) = upgrade(
        &server,
        "/chat",
        &format!("Sec-WebSocket-Protocol: roomd, roomd.token.{good}\r\n"),
    );
    assert_eq!(status, 101, "subprotocol");
    assert!(
        head.contains("Sec-WebSocket-Protocol: roomd\r\n"),
        "the server selects roomd: {head}"
    );
    assert!(!head.contains(&good), "the token is never echoed");
    let bearer = format!("Authorization: Bearer {good}\r\n");
    assert_eq!(upgrade(&server, "/chat", &bearer).0, 101, "bearer");
    assert_eq!(
        upgrade(&server, &format!("/chat?token={good}"), "").0,
        101,
        "query"
    );
    // A bad token first is not rescued by a good one later.
    let bad_first = "Authorization: Bearer not.a.jwt\r\n";
    let path = format!("/chat?token={good}");
    assert_eq!(upgrade(&server, &path, bad_first).0, 401);
}

#[test]
fn optional_auth_admits_anonymous_clients_but_not_bad_tokens() {
    let server = server(Some(AuthMode::Optional));
    assert_eq!(upgrade(&server, "/chat", "").0, 101, "anonymous");
    assert_eq!(upgrade(&server, "/chat?token=x.y.z", "").0, 401);
    let good = token("alice", 3600);
    assert_eq!(upgrade(&server, &format!("/chat?token={good}"), "").0, 101);
}

#[test]
fn presence_user_is_the_tokens_subject() {
    let server = server(None);
    let good = token("7", 3600);
    let bearer = format!("Authorization: Bearer {good}\r\n");
    assert_eq!(
        upgrade(&server, "/presence", &bearer).0,
        101,
        "no userId needed"
    );
    assert_eq!(upgrade(&server, "/presence?userId=7", &bearer).0, 101);
    assert_eq!(
        upgrade(&server, "/presence?userId=8", &bearer).0,
        403,
        "another user"
    );
}

#[test]
fn without_a_key_tokens_are_not_read() {
    let server = TestServer::default();
    assert_eq!(upgrade(&server, "/chat?token=x.y.z", "").0, 101);
}

#[test]
fn the_token_never_reaches_the_log_or_the_journal() {
    let dir = binary::scratch_dir("auth-secrecy");
    let journal = dir.join("journal.jsonl");
    let mut command = binary::roomd();
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "trace"])
        .arg("--jwt-secret-file")
        .arg(data("hs256.secret"))
        .arg("--journal")
        .arg(&journal);
    let server = binary::spawn(command);
    let good = token("alice", 3600);
    for (path, extra) in [
        (format!("/chat?token={good}"), String::new()),
        (
            "/chat".to_string(),
            format!("Authorization: Bearer {good}\r\n"),
        ),
        (
            "/chat".to_string(),
            format!("Sec-WebSocket-Protocol: roomd, roomd.token.{good}\r\n"),
        ),
    ] {
        let mut raw = Raw::connect(server.addr);
        raw.send(upgrade_request(&path, &extra).as_bytes());
        assert_eq!(status_and_head(&mut raw).0, 101);
        raw.send(&crate::live::raw::frame(
            true,
            0x1,
            json!({"type": "chat", "payload": "hi"})
                .to_string()
                .as_bytes(),
        ));
        assert!(raw.frame().is_some());
        // In band too.
        let auth = json!({"type": "auth", "token": good}).to_string();
        raw.send(&crate::live::raw::frame(true, 0x1, auth.as_bytes()));
        assert!(raw.frame().is_some());
    }
    // SIGTERM: a graceful stop writes the journal out.
    let mut child = KillOnDrop(server.child);
    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    let _ = child.0.wait();
    let log: Vec<String> = server.log.try_iter().collect();
    let log = log.join("\n");
    assert!(log.contains("opened"), "trace logging ran: {log}");
    assert!(!log.contains(&good), "the token is in the log");
    let signature = good.rsplit('.').next().unwrap();
    assert!(
        !log.contains(signature),
        "the token's signature is in the log"
    );
    let recorded = std::fs::read_to_string(&journal).unwrap();
    assert!(recorded.contains("\"open\""), "{recorded}");
    assert!(!recorded.contains(signature), "the token is in the journal");
}

#[test]
fn a_short_secret_stops_roomd_with_status_2() {
    let dir = binary::scratch_dir("auth-short");
    let secret = dir.join("short.secret");
    std::fs::write(&secret, "too short").unwrap();
    let out = binary::roomd()
        .args(["--listen", "127.0.0.1:0", "--jwt-secret-file"])
        .arg(&secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("too short"),
        "the secret is shown: {stdout}"
    );
}

fn server_with_grace(grace_secs: u64) -> TestServer {
    TestServer::start(Config {
        auth: AuthConfig {
            jwt_secret_file: Some(data("hs256.secret")),
            grace_secs,
            ..AuthConfig::default()
        },
        ..Config::default()
    })
}

#[test]
fn chat_auth_messages_are_verified_in_band() {
    let server = server(None);
    let bearer = format!("Authorization: Bearer {}", token("alice", 3600));
    let mut client = server
        .try_ws("/chat", &[("Authorization", &bearer[15..])])
        .unwrap();
    client.recv_type("system");
    client.send_json(json!({"type": "auth", "token": token("alice", 3600)}));
    let reply = client.recv_type("auth");
    assert_eq!(reply["payload"]["success"], true, "{reply}");
    client.send_json(json!({"type": "auth", "payload": {"token": "not.a.jwt"}}));
    let reply = client.recv_type("auth");
    assert_eq!(reply["payload"]["success"], false, "{reply}");
    assert_eq!(reply["payload"]["message"], "token refused: malformed");
    let name = "roomd_refused_tokens_total{reason=\"malformed\"}";
    assert_eq!(metric(&server, name), 1);
}

#[test]
fn an_expired_token_closes_4401_after_the_grace_unless_refreshed() {
    let server = server_with_grace(1);
    // Expires in a second; the grace is a second more.
    let short = token("alice", 1);
    let header = format!("Bearer {short}");
    let mut lapsing = server
        .try_ws("/chat", &[("Authorization", &header)])
        .unwrap();
    let mut refreshed = server
        .try_ws("/chat", &[("Authorization", &header)])
        .unwrap();
    lapsing.recv_type("system");
    refreshed.recv_type("system");
    refreshed.send_json(json!({"type": "auth", "token": token("alice", 3600)}));
    assert_eq!(refreshed.recv_type("auth")["payload"]["success"], true);
    let started = std::time::Instant::now();
    assert_eq!(lapsing.expect_close(), 4401);
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(metric(&server, "roomd_token_expiry_closes_total"), 1);
    // The refreshed one is still served.
    refreshed.send_json(json!({"type": "chat", "payload": "still here"}));
    assert_eq!(refreshed.recv_type("chat")["payload"], "still here");
}

#[test]
fn a_refresh_for_another_subject_closes_4403() {
    let server = server(None);
    let header = format!("Bearer {}", token("alice", 3600));
    let mut client = server
        .try_ws("/stream", &[("Authorization", &header)])
        .unwrap();
    client.send_json(json!({"type": "auth", "token": token("mallory", 3600)}));
    assert_eq!(client.expect_close(), 4403);
}
