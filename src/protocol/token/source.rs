//! Where a token comes from in the opening request, the query without it,
//! and the subprotocol the `101` answer selects.

use crate::protocol::http::Request;
use std::borrow::Cow;

/// The subprotocol a client offers beside its token, and the one the
/// server selects (`Sec-WebSocket-Protocol: roomd`).
pub const SUBPROTOCOL: &str = "roomd";

/// A subprotocol offer `roomd.token.<JWT>` carries a token.
pub const TOKEN_PROTOCOL_PREFIX: &str = "roomd.token.";

/// The query parameter that carries a token.
const QUERY_KEY: &str = "token";

/// Where a token was found, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// A `Sec-WebSocket-Protocol` offer `roomd.token.<JWT>` (browsers).
    Subprotocol,
    /// `Authorization: Bearer <JWT>` (other clients).
    Bearer,
    /// `?token=<JWT>` (an existing client whose URL alone changes).
    Query,
}

impl TokenSource {
    /// A short stable name (logs, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            TokenSource::Subprotocol => "subprotocol",
            TokenSource::Bearer => "bearer",
            TokenSource::Query => "query",
        }
    }
}

/// The request's token and where it was: the first place that has one
/// wins, valid or not (a bad token there is not rescued by a good one
/// elsewhere). A place that is present but empty (`?token=`,
/// `Authorization: Bearer`) gives an empty token, which
/// [`super::Verifier::verify`] refuses as missing. A non-`Bearer`
/// `Authorization` header is no token.
pub fn token_of(req: &Request) -> Option<(TokenSource, &str)> {
    let offered = req.websocket_protocols.iter();
    if let Some(token) = offered
        .filter_map(|p| p.strip_prefix(TOKEN_PROTOCOL_PREFIX))
        .next()
    {
        return Some((TokenSource::Subprotocol, token));
    }
    if let Some(token) = req.authorization.as_deref().and_then(bearer) {
        return Some((TokenSource::Bearer, token));
    }
    params(&req.query)
        .find(|(key, _)| *key == QUERY_KEY)
        .map(|(_, value)| (TokenSource::Query, value))
}

/// The token of an `Authorization` value with the `Bearer` scheme (its
/// name in any case, RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The query's `&`-separated parameters as (key, value); a parameter
/// without `=` has an empty value.
fn params(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// `query` without its `token` parameters (every one), the others kept in
/// order: what the engine, the log and the journal may see. Borrowed when
/// there was none.
pub fn without_token(query: &str) -> Cow<'_, str> {
    if !params(query).any(|(key, _)| key == QUERY_KEY) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| p.split_once('=').map_or(*p, |(key, _)| key) != QUERY_KEY)
        .collect();
    Cow::Owned(kept.join("&"))
}

/// The subprotocol the `101` answer selects: [`SUBPROTOCOL`] when the
/// client offered it, else none (a token offered alone then gets no
/// protocol, and browsers refuse the connection). Never the token.
pub fn selected_protocol(req: &Request) -> Option<&'static str> {
    req.websocket_protocols
        .iter()
        .any(|p| p == SUBPROTOCOL)
        .then_some(SUBPROTOCOL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(protocols: &[&str], authorization: Option<&str>, query: &str) -> Request {
        Request {
            websocket_protocols: protocols.iter().map(|p| p.to_string()).collect(),
            authorization: authorization.map(str::to_string),
            query: query.to_string(),
            ..Request::default()
        }
    }

    #[test]
    fn each_place_alone() {
        let r = request(&["roomd", "roomd.token.abc"], None, "");
        assert_eq!(token_of(&r), Some((TokenSource::Subprotocol, "abc")));
        let r = request(&[], Some("Bearer  abc "), "");
        assert_eq!(token_of(&r), Some((TokenSource::Bearer, "abc")));
        let r = request(&[], Some("bEaReR abc"), "");
        assert_eq!(token_of(&r), Some((TokenSource::Bearer, "abc")));
        let r = request(&[], None, "userId=1&token=abc&x");
        assert_eq!(token_of(&r), Some((TokenSource::Query, "abc")));
        assert_eq!(
            token_of(&request(&["roomd"], None, "tokens=1&xtoken=2")),
            None
        );
    }

    #[test]
    fn the_first_place_present_wins_even_if_bad() {
        let r = request(&["roomd.token.bad"], Some("Bearer good"), "token=good");
        assert_eq!(token_of(&r), Some((TokenSource::Subprotocol, "bad")));
        let r = request(&["roomd"], Some("Bearer bad"), "token=good");
        assert_eq!(token_of(&r), Some((TokenSource::Bearer, "bad")));
        // Present but empty still counts.
        let r = request(&[], Some("Bearer"), "token=good");
        assert_eq!(token_of(&r), Some((TokenSource::Bearer, "")));
        let r = request(&[], None, "token=&token=good");
        assert_eq!(token_of(&r), Some((TokenSource::Query, "")));
        // Another scheme is no token.
        let r = request(&[], Some("Basic dXNlcjpwYXNz"), "token=good");
        assert_eq!(token_of(&r), Some((TokenSource::Query, "good")));
    }

    #[test]
    fn scrubbing_removes_every_token_parameter() {
        assert_eq!(without_token("userId=7&token=abc&x=1"), "userId=7&x=1");
        assert_eq!(without_token("token=abc"), "");
        assert_eq!(without_token("token&a=1&token=b"), "a=1");
        assert_eq!(
            without_token("a=token%3Dx&tokens=1"),
            "a=token%3Dx&tokens=1"
        );
        assert!(matches!(
            without_token("userId=7"),
            Cow::Borrowed("userId=7")
        ));
        let scrubbed = without_token("a=1&token=x");
        assert_eq!(token_of(&request(&[], None, &scrubbed)), None);
    }

    #[test]
    fn selects_roomd_only_when_offered_and_never_the_token() {
        assert_eq!(
            selected_protocol(&request(&["roomd", "roomd.token.abc"], None, "")),
            Some("roomd")
        );
        assert_eq!(
            selected_protocol(&request(&["roomd.token.abc"], None, "")),
            None
        );
        assert_eq!(
            selected_protocol(&request(&["chat", "ROOMD"], None, "")),
            None
        );
        assert_eq!(selected_protocol(&request(&[], None, "")), None);
    }
}
