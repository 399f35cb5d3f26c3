//! The `token` fuzz target: the token path on untrusted bytes.
//!
//! The input is used twice: as a token given to [`Verifier::verify`] with a
//! fixed set of keys (one per algorithm, the test keys of
//! `tests/data/auth/`) at [`TOKEN_NOW`], and as the value of each token
//! place of an opening request (a `roomd.token.` offer, `Authorization:
//! Bearer`, `?token=`) read by the request parser and [`token_of`].
//!
//! Checked: no panic; the same token gives the same answer twice; a token
//! over the size limit is refused as too large; an accepted identity has a
//! non-empty `sub` of at most 128 characters and an `exp` not past; the
//! token found is the first place's; the scrubbed query has no token and
//! scrubbing twice changes nothing; the selected protocol is `roomd` or
//! none.

use crate::protocol::http::{Parsed, Request, parse_request};
use crate::protocol::token::{
    DEFAULT_LEEWAY_SECS, Key, MAX_SUBJECT_CHARS, MAX_TOKEN_BYTES, Refusal, SUBPROTOCOL,
    TOKEN_PROTOCOL_PREFIX, TokenConfig, TokenSource, Verifier, selected_protocol, token_of,
    without_token,
};
use std::sync::OnceLock;

/// The `now` of every check in the target (2027-01-15T08:00:00Z); the
/// seeds' tokens are minted for it.
pub const TOKEN_NOW: u64 = 1_800_000_000;

/// The target's keys: the test keys, each named by its file's stem.
fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let pems: [(&str, &[u8]); 3] = [
            (
                "es256",
                include_bytes!("../../tests/data/auth/es256.pub.pem"),
            ),
            (
                "ed25519",
                include_bytes!("../../tests/data/auth/ed25519.pub.pem"),
            ),
            (
                "rs256",
                include_bytes!("../../tests/data/auth/rs256.pub.pem"),
            ),
        ];
        let secret = include_bytes!("../../tests/data/auth/hs256.secret");
        let mut keys: Vec<Key> = Key::secret(Some("hs256".into()), secret)
            .into_iter()
            .collect();
        keys.extend(
            pems.iter()
                .filter_map(|(kid, pem)| Key::public_pem(Some(kid.to_string()), pem).ok()),
        );
        assert_eq!(keys.len(), 4, "a test key does not load");
        let config = TokenConfig {
            audience: Some("roomd".into()),
            issuer: Some("https://id.example".into()),
            ..TokenConfig::default()
        };
        Verifier::new(keys, config)
    })
}

/// `token`: see the module documentation.
pub fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_verify(&text);
    for place in [
        TokenSource::Subprotocol,
        TokenSource::Bearer,
        TokenSource::Query,
    ] {
        check_request(place, data);
    }
}

/// One token into the verifier.
fn check_verify(token: &str) {
    let verifier = verifier();
    let got = verifier.verify(token, TOKEN_NOW);
    assert_eq!(got, verifier.verify(token, TOKEN_NOW), "not deterministic");
    if token.len() > MAX_TOKEN_BYTES {
        assert_eq!(got, Err(Refusal::TooLarge));
    }
    if let Ok(id) = got {
        let chars = id.sub.chars().count();
        assert!(
            (1..=MAX_SUBJECT_CHARS).contains(&chars),
            "sub of {chars} characters"
        );
        assert!(
            id.exp + DEFAULT_LEEWAY_SECS > TOKEN_NOW,
            "expired at {}",
            id.exp
        );
    }
}

/// `data` as the value of one token place, with a decoy (a token that
/// does not verify) in each later place.
fn check_request(place: TokenSource, data: &[u8]) {
    let mut head = b"GET /stream?userId=1".to_vec();
    let query = place == TokenSource::Query;
    head.extend_from_slice(if query { b"&token=" } else { b"&token=decoy" });
    if query {
        head.extend_from_slice(data);
    }
    head.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n");
    if place == TokenSource::Subprotocol {
        head.extend_from_slice(b"Sec-WebSocket-Protocol: roomd, ");
        head.extend_from_slice(TOKEN_PROTOCOL_PREFIX.as_bytes());
        head.extend_from_slice(data);
        head.extend_from_slice(b"\r\n");
    }
    if place != TokenSource::Query {
        head.extend_from_slice(b"Authorization: Bearer ");
        head.extend_from_slice(if place == TokenSource::Bearer {
            data
        } else {
            b"decoy"
        });
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let Ok(Parsed::Complete { request, .. }) = parse_request(&head) else {
        return;
    };
    let found = token_of(&request);
    if let Some((_, token)) = found {
        check_verify(token);
    }
    // Unless the data broke out of its place (a line break), the token is
    // the filled place's: the decoys come later.
    if !data.contains(&b'\r') && !data.contains(&b'\n') {
        let source = found.map(|(source, _)| source);
        assert_eq!(source, Some(place), "the token came from elsewhere");
    }
    check_scrubbing(&request);
    let selected = selected_protocol(&request);
    assert!(
        selected.is_none() || selected == Some(SUBPROTOCOL),
        "{selected:?}"
    );
}

/// The scrubbed query holds no token and is a fixed point.
fn check_scrubbing(request: &Request) {
    let scrubbed = without_token(&request.query);
    assert_eq!(
        without_token(&scrubbed),
        scrubbed,
        "scrubbing twice changes it"
    );
    let bare = Request {
        query: scrubbed.into_owned(),
        ..Request::default()
    };
    assert_eq!(token_of(&bare), None, "a token left in {:?}", bare.query);
}
