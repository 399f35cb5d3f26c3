//! Answering the HTTP request that opens every connection: routing, the
//! origin allow-list, handshake checks, and every response's bytes.
//!
//! [`route`] is pure: the reactor gives it the parsed request and either
//! upgrades (for [`Decision::Upgrade`]) or writes what [`respond`] returns.

use crate::engine::Stats;
use crate::protocol::http::{ParseError, Request};
use crate::protocol::token::Refusal;
use crate::protocol::{Protocol, QueryError};
use crate::server::config::Route;
use crate::server::metrics::{self, ServerCounters};

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `GET /health`.
    Health,
    /// `GET /api/ping`.
    ApiPing,
    /// `GET /metrics`.
    Metrics,
    /// `GET` on a WebSocket route without an upgrade.
    RouteInfo,
    /// `OPTIONS` preflight from an allowed origin: 204.
    Preflight,
    /// Accept the WebSocket upgrade (if under the connection limit).
    Upgrade {
        /// The route's protocol.
        protocol: Protocol,
        /// The `Sec-WebSocket-Accept` value.
        accept: String,
    },
    /// Refuse with this status and short text body.
    Refuse {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: &'static str,
        /// Whether it was an upgrade request (counted in `/metrics`).
        upgrade: bool,
    },
}

/// The HTTP-only endpoints.
const ENDPOINTS: [&str; 3] = ["/health", "/api/ping", "/metrics"];

/// Whether `origin` may connect: no list, no `Origin` header, or listed.
pub fn origin_allowed(allow: &[String], origin: Option<&str>) -> bool {
    match origin {
        None => true,
        Some(o) => allow.is_empty() || allow.iter().any(|a| a == o.trim_end_matches('/')),
    }
}

/// Routes a request.
pub fn route(req: &Request, routes: &[Route], allow: &[String]) -> Decision {
    let refuse = |status, body| Decision::Refuse {
        status,
        body,
        upgrade: req.upgrade_websocket,
    };
    let ws_route = routes.iter().find(|r| r.path == req.path);
    if ws_route.is_none() && !ENDPOINTS.contains(&req.path.as_str()) {
        return refuse(404, "Not Found");
    }
    let origin_ok = origin_allowed(allow, req.origin.as_deref());
    if req.method == "OPTIONS" {
        return if origin_ok {
            Decision::Preflight
        } else {
            refuse(403, "Forbidden")
        };
    }
    if req.method != "GET" {
        return refuse(405, "Method Not Allowed");
    }
    let Some(ws_route) = ws_route else {
        return match req.path.as_str() {
            "/health" => Decision::Health,
            "/api/ping" => Decision::ApiPing,
            _ => Decision::Metrics,
        };
    };
    if !req.upgrade_websocket {
        return Decision::RouteInfo;
    }
    if req.websocket_version.as_deref() != Some("13") {
        return refuse(426, "Upgrade Required");
    }
    let Some(key) = req
        .websocket_key
        .as_deref()
        .filter(|key| req.connection_upgrade && !req.http_1_0 && valid_websocket_key(key))
    else {
        return refuse(400, "Bad Request");
    };
    if !origin_ok {
        return refuse(403, "Forbidden");
    }
    Decision::Upgrade {
        protocol: ws_route.protocol,
        accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
    }
}

/// Whether `key` is what RFC 6455 §4.1 asks for: 16 bytes in base64, so 22
/// base64 characters and `==` (the check the Node `ws` server makes).
fn valid_websocket_key(key: &str) -> bool {
    let key = key.as_bytes();
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// What the HTTP endpoints report of the server.
#[derive(Debug)]
pub(crate) struct ServerView<'a> {
    /// The engine's counters.
    pub stats: &'a Stats,
    /// The reactor's counters.
    pub counters: &'a ServerCounters,
    /// Seconds since start.
    pub uptime_secs: u64,
}

/// Whether an upgrade routed to `protocol` may open, once its identity
/// (`sub`, with signed identities) is known: presence needs a `userId`
/// unless the token names the user, and one given must be the token's.
pub fn check_open(req: &Request, protocol: Protocol, sub: Option<&str>) -> Result<(), Decision> {
    let refuse = |status, body| Decision::Refuse {
        status,
        body,
        upgrade: true,
    };
    match protocol.check_query(&req.query, sub) {
        Ok(()) => Ok(()),
        Err(QueryError::UserId(why)) => Err(refuse(400, why.as_str())),
        Err(QueryError::NotSubject) => Err(refuse(403, "Forbidden")),
    }
}

/// The refusal of an upgrade whose token was refused.
pub fn refuse_token(refusal: Refusal) -> Decision {
    let status = refusal.status();
    Decision::Refuse {
        status,
        body: reason(status),
        upgrade: true,
    }
}

/// The refusal of an upgrade while this cluster node cannot serve it
/// (Redis away, or the node still synchronising).
pub fn cluster_unavailable() -> Decision {
    Decision::Refuse {
        status: 503,
        body: "Service Unavailable",
        upgrade: true,
    }
}

/// The refusal of an upgrade over `--max-connections`.
pub fn over_capacity() -> Decision {
    Decision::Refuse {
        status: 503,
        body: "Too many connections",
        upgrade: true,
    }
}

/// The answer to bytes that are not a request head we take.
pub fn malformed(error: ParseError) -> Vec<u8> {
    let status = if error == ParseError::TooLarge {
        431
    } else {
        400
    };
    response(status, "text/plain", "Bad Request", None)
}

/// The complete answer to `req` for every decision but an upgrade taken.
pub(crate) fn respond(
    req: &Request,
    decision: &Decision,
    allow: &[String],
    view: &ServerView<'_>,
) -> Vec<u8> {
    let cors = cors_origin(req, allow);
    let json = "application/json";
    match decision {
        Decision::Health => {
            let body = metrics::health_json(view.stats, view.uptime_secs);
            let status = if view.stats.cluster.is_some_and(|c| !c.ready) {
                503
            } else {
                200
            };
            response(status, json, &body, cors)
        }
        Decision::ApiPing => response(200, json, &metrics::api_ping_json(view.stats), cors),
        Decision::Metrics => {
            let body = metrics::metrics_text(view.stats, view.counters, view.uptime_secs);
            response(200, "text/plain; version=0.0.4", &body, cors)
        }
        Decision::RouteInfo => response(200, "text/plain", "WebSocket server is running", cors),
        Decision::Preflight => response(204, "", "", cors),
        Decision::Refuse { status, body, .. } => response(*status, "text/plain", body, cors),
        // An upgrade not taken is one over the limit.
        Decision::Upgrade { .. } => respond(req, &over_capacity(), allow, view),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete `Connection: close` response. `cors` is the allowed origin to
/// echo in `Access-Control-Allow-Origin`, if any.
pub fn response(status: u16, content_type: &str, body: &str, cors: Option<&str>) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if !body.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    ));
    if let Some(origin) = cors {
        head.push_str(&format!(
            "Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n"
        ));
    }
    match status {
        204 => head.push_str(
            "Access-Control-Allow-Methods: GET, OPTIONS\r\n\
             Access-Control-Allow-Headers: Content-Type, Authorization\r\n\
             Access-Control-Max-Age: 86400\r\n",
        ),
        401 => head.push_str("WWW-Authenticate: Bearer\r\n"),
        405 => head.push_str("Allow: GET, OPTIONS\r\n"),
        426 => head.push_str("Sec-WebSocket-Version: 13\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    head.push_str(body);
    head.into_bytes()
}

/// Appends the `101 Switching Protocols` answer to `out` (written in
/// place, with no formatting machinery: it is on every handshake's path).
pub fn write_switching_protocols(out: &mut Vec<u8>, accept: &str, protocol: Option<&str>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    if let Some(protocol) = protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// The origin to echo in CORS headers: present and allowed.
pub fn cors_origin<'a>(req: &'a Request, allow: &[String]) -> Option<&'a str> {
    req.origin
        .as_deref()
        .filter(|o| origin_allowed(allow, Some(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::default_routes;

    fn upgrade(path: &str, query: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            origin: Some("http://ok".into()),
            upgrade_websocket: true,
            connection_upgrade: true,
            websocket_key: Some("dGhlIHNhbXBsZSBub25jZQ==".into()),
            websocket_version: Some("13".into()),
            http_1_0: false,
            ..Request::default()
        }
    }

    fn status(d: Decision) -> u16 {
        match d {
            Decision::Refuse { status, .. } => status,
            Decision::Upgrade { .. } => 101,
            Decision::Preflight => 204,
            _ => 200,
        }
    }

    #[test]
    fn routing_table() {
        let routes = default_routes();
        let allow = vec!["http://ok".to_string()];
        let r = |req: &Request| status(route(req, &routes, &allow));
        assert_eq!(
            route(&upgrade("/chat", ""), &routes, &allow),
            Decision::Upgrade {
                protocol: Protocol::Chat,
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
        assert_eq!(r(&upgrade("/Chat", "")), 404);
        // Presence's userId is checked once the identity is known.
        assert_eq!(r(&upgrade("/presence", "")), 101);
        let open = |query: &str, sub: Option<&str>| {
            let req = upgrade("/presence", query);
            check_open(&req, Protocol::Presence, sub).map_err(status)
        };
        assert_eq!(open("", None), Err(400));
        assert_eq!(open("userId=", None), Err(400));
        assert_eq!(open("userId=7", None), Ok(()));
        assert_eq!(open("", Some("7")), Ok(()));
        assert_eq!(open("userId=7", Some("7")), Ok(()));
        assert_eq!(open("userId=8", Some("7")), Err(403));
        let chat = upgrade("/chat", "");
        assert_eq!(check_open(&chat, Protocol::Chat, None), Ok(()));
        assert_eq!(
            r(&Request {
                origin: Some("http://evil".into()),
                ..upgrade("/chat", "")
            }),
            403
        );
        assert_eq!(
            r(&Request {
                origin: None,
                ..upgrade("/chat", "")
            }),
            101
        );
        assert_eq!(
            r(&Request {
                websocket_version: Some("8".into()),
                ..upgrade("/chat", "")
            }),
            426
        );
        assert_eq!(
            r(&Request {
                websocket_key: None,
                ..upgrade("/chat", "")
            }),
            400
        );
        for key in ["dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ-=", "a b"] {
            let req = Request {
                websocket_key: Some(key.into()),
                ..upgrade("/chat", "")
            };
            assert_eq!(r(&req), 400, "key {key:?}");
        }
        assert_eq!(
            r(&Request {
                http_1_0: true,
                ..upgrade("/chat", "")
            }),
            400
        );
        assert_eq!(
            r(&Request {
                method: "POST".into(),
                ..upgrade("/chat", "")
            }),
            405
        );
        assert_eq!(
            r(&Request {
                method: "OPTIONS".into(),
                ..upgrade("/health", "")
            }),
            204
        );
        let plain = |path: &str| Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        };
        assert_eq!(route(&plain("/health"), &routes, &allow), Decision::Health);
        assert_eq!(
            route(&plain("/api/ping"), &routes, &allow),
            Decision::ApiPing
        );
        assert_eq!(
            route(&plain("/metrics"), &routes, &allow),
            Decision::Metrics
        );
        assert_eq!(
            route(&plain("/stream"), &routes, &allow),
            Decision::RouteInfo
        );
        assert_eq!(r(&plain("/nope")), 404);
    }

    #[test]
    fn responses() {
        let text = String::from_utf8(response(426, "text/plain", "x", Some("http://ok"))).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("Access-Control-Allow-Origin: http://ok\r\nVary: Origin\r\n"));
        assert!(text.ends_with("\r\n\r\nx"));
    }
}
