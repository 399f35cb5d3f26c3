//! Pure parsing of the HTTP request that opens every connection.
//!
//! [`parse_request`] takes the bytes received so far and says whether a
//! complete request head is there; it never panics, whatever the bytes, so a
//! fuzz target can call it directly.

use crate::protocol::token;
use std::fmt;

/// Largest request head accepted, in bytes (request line and headers).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Most headers accepted in one request.
pub const MAX_HEADERS: usize = 32;

/// The parts of a request head that roomd looks at. `Debug` shows no token
/// (see [`crate::protocol::token`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string without `?`, possibly empty.
    pub query: String,
    /// The `Origin` header.
    pub origin: Option<String>,
    /// The `Upgrade` header names `websocket` (case-insensitive).
    pub upgrade_websocket: bool,
    /// The `Connection` header lists `upgrade` (case-insensitive).
    pub connection_upgrade: bool,
    /// The `Sec-WebSocket-Key` header.
    pub websocket_key: Option<String>,
    /// The `Sec-WebSocket-Version` header.
    pub websocket_version: Option<String>,
    /// The request line says `HTTP/1.0` (a WebSocket handshake needs 1.1).
    pub http_1_0: bool,
    /// The `Sec-WebSocket-Protocol` offers, in order: every such header,
    /// split at commas, trimmed, empty entries dropped.
    pub websocket_protocols: Vec<String>,
    /// The first `Authorization` header.
    pub authorization: Option<String>,
}

impl fmt::Debug for Request {
    /// Like a derived `Debug`, but a token in the query, the
    /// `Authorization` header or a subprotocol offer is replaced by
    /// `[redacted]`, so that logging a request never leaks one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocols: Vec<&str> = self
            .websocket_protocols
            .iter()
            .map(|p| match p.starts_with(token::TOKEN_PROTOCOL_PREFIX) {
                true => "[redacted]",
                false => p.as_str(),
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &token::without_token(&self.query))
            .field("origin", &self.origin)
            .field("upgrade_websocket", &self.upgrade_websocket)
            .field("connection_upgrade", &self.connection_upgrade)
            .field("websocket_key", &self.websocket_key)
            .field("websocket_version", &self.websocket_version)
            .field("http_1_0", &self.http_1_0)
            .field("websocket_protocols", &protocols)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The outcome of looking at the bytes received so far.
#[derive(Clone, Debug, PartialEq, Eq)]
// A `Parsed` lives on the stack for one call per read of a request head and
// is moved once: boxing the request would cost an allocation per connection
// to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole request head; `len` bytes of the input belong to it, the rest
    /// (if any) is already WebSocket data.
    Complete {
        /// The request.
        request: Request,
        /// Length of the request head in bytes.
        len: usize,
    },
}

/// Why a request was refused before routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The head is longer than [`MAX_REQUEST_BYTES`] or has more than
    /// [`MAX_HEADERS`] headers.
    TooLarge,
    /// Not HTTP/1.x.
    Invalid,
}

/// Parses the request head at the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Parsed, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_BYTES => {
            return Err(ParseError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooLarge),
        Err(_) => return Err(ParseError::Invalid),
    };
    if len > MAX_REQUEST_BYTES {
        return Err(ParseError::TooLarge);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        http_1_0: req.version == Some(0),
        ..Request::default()
    };
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("origin") {
            // Kept even if not UTF-8, so that it matches no allowed origin.
            let value = String::from_utf8_lossy(header.value);
            request.origin = Some(value.trim().to_string());
            continue;
        }
        // Kept even if not UTF-8 (then a malformed token, not a missing
        // one: a bad token is never rescued by a later one).
        if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            let value = String::from_utf8_lossy(header.value);
            let offers = value.split(',').map(str::trim).filter(|p| !p.is_empty());
            request
                .websocket_protocols
                .extend(offers.map(str::to_string));
            continue;
        }
        if name.eq_ignore_ascii_case("authorization") {
            if request.authorization.is_none() {
                let value = String::from_utf8_lossy(header.value);
                request.authorization = Some(value.trim().to_string());
            }
            continue;
        }
        let Ok(value) = std::str::from_utf8(header.value) else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            request.upgrade_websocket |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            request.connection_upgrade |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            request.websocket_key = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            request.websocket_version = Some(value.to_string());
        }
    }
    Ok(Parsed::Complete { request, len })
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /presence?userId=a%20b HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://a.example\r\n\r\nrest";

    #[test]
    fn parses_an_upgrade_and_keeps_the_rest() {
        let Ok(Parsed::Complete { request, len }) = parse_request(UPGRADE) else {
            panic!("not complete");
        };
        assert_eq!(&UPGRADE[len..], b"rest");
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/presence");
        assert_eq!(request.query, "userId=a%20b");
        assert!(request.upgrade_websocket && request.connection_upgrade);
        assert_eq!(
            request.websocket_key.as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(request.websocket_version.as_deref(), Some("13"));
        assert_eq!(request.origin.as_deref(), Some("http://a.example"));
    }

    #[test]
    fn http_1_0_and_an_origin_that_is_not_utf8() {
        let Ok(Parsed::Complete { request, .. }) =
            parse_request(b"GET / HTTP/1.0\r\nOrigin: http://a\xff\r\nX: \xfe\r\n\r\n")
        else {
            panic!("not complete");
        };
        assert!(request.http_1_0);
        assert_eq!(request.origin.as_deref(), Some("http://a\u{fffd}"));
        let Ok(Parsed::Complete { request, .. }) = parse_request(UPGRADE) else {
            panic!("not complete");
        };
        assert!(!request.http_1_0);
    }

    #[test]
    fn partial_then_too_large_or_invalid() {
        assert_eq!(parse_request(&UPGRADE[..40]), Ok(Parsed::Partial));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_REQUEST_BYTES, b'a');
        assert_eq!(parse_request(&big), Err(ParseError::TooLarge));
        assert_eq!(
            parse_request(b"\x16\x03\x01 hello\r\n\r\n"),
            Err(ParseError::Invalid)
        );
    }

    #[test]
    fn subprotocol_offers_and_authorization() {
        let head = b"GET /chat?token=q1&a=1 HTTP/1.1\r\nSec-WebSocket-Protocol: roomd, roomd.token.t1\r\nAuthorization: Bearer b1\r\nsec-websocket-protocol: ,x ,\r\nAuthorization: Bearer b2\r\n\r\n";
        let Ok(Parsed::Complete { request, .. }) = parse_request(head) else {
            panic!("not complete");
        };
        assert_eq!(
            request.websocket_protocols,
            ["roomd", "roomd.token.t1", "x"]
        );
        assert_eq!(request.authorization.as_deref(), Some("Bearer b1"));
        let shown = format!("{request:?}");
        for secret in ["t1", "b1", "q1"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("\"a=1\"") && shown.contains("\"roomd\""),
            "{shown}"
        );
    }

    #[test]
    fn a_token_header_that_is_not_utf8_is_kept() {
        let head =
            b"GET / HTTP/1.1\r\nAuthorization: Bearer \xff\r\nAuthorization: Bearer ok\r\n\r\n";
        let Ok(Parsed::Complete { request, .. }) = parse_request(head) else {
            panic!("not complete");
        };
        assert_eq!(request.authorization.as_deref(), Some("Bearer \u{fffd}"));
    }
}
