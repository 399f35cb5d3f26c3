//! Every WebSocket close roomd starts: its code and reason text, written
//! once (README "WebSocket close codes").

use super::RATE_LIMIT_EXCEEDED;
use super::auth::USER_ID_NOT_SUBJECT;
use super::presence::UserIdError;

/// Why roomd closes a WebSocket. Each variant has a fixed close code
/// ([`Self::code`]) and reason text ([`Self::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// 1001 `server shutting down` (reactor).
    ShuttingDown,
    /// 1002 `protocol error`: a frame breaking RFC 6455 (codec).
    ProtocolError,
    /// 1003 `binary messages are not supported` (engine).
    Binary,
    /// 1007 `invalid UTF-8` in a text message or close reason (codec).
    InvalidUtf8,
    /// 1008 `rate limit exceeded`: over the limit for too long (engine).
    RateLimited,
    /// 1008: a presence connection without a valid `userId`, which the
    /// reactor should have refused with `400` (engine).
    InvalidUserId(UserIdError),
    /// 1009 `message too big`: over the message size limit (codec).
    MessageTooBig,
    /// 1009: holding the most bytes of incomplete messages when all of
    /// them together are over the server's budget (reactor).
    InboundBudget,
    /// 1011 `route protocol mismatch`: an open on a path that already
    /// serves another protocol (engine).
    RouteMismatch,
    /// 1008 `userId does not match token`: a presence connection whose
    /// `?userId=` is not its token's `sub`, which the reactor should have
    /// refused with `403` (engine).
    UserIdNotSubject,
    /// 4401 `token expired`: the token's `exp` and the grace period after
    /// it passed without a fresh token (engine).
    TokenExpired,
    /// 4403 `token subject changed`: an in-band token for another `sub`
    /// than the connection's (engine).
    SubjectChanged,
    /// 1012 `service restart`: cluster mode, this node found itself
    /// removed from the cluster (it was silent past `--node-timeout`) and
    /// rejoins; the client reconnects (engine).
    ServiceRestart,
    /// 1013 `try again later`: cluster mode, what the open needed from
    /// Redis could not be done (engine).
    TryAgainLater,
}

impl CloseReason {
    /// The close code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::ShuttingDown => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::Binary => 1003,
            CloseReason::InvalidUtf8 => 1007,
            CloseReason::RateLimited
            | CloseReason::InvalidUserId(_)
            | CloseReason::UserIdNotSubject => 1008,
            CloseReason::MessageTooBig | CloseReason::InboundBudget => 1009,
            CloseReason::RouteMismatch => 1011,
            CloseReason::TokenExpired => 4401,
            CloseReason::SubjectChanged => 4403,
            CloseReason::ServiceRestart => 1012,
            CloseReason::TryAgainLater => 1013,
        }
    }

    /// The reason text sent in the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            CloseReason::ShuttingDown => "server shutting down",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::Binary => "binary messages are not supported",
            CloseReason::InvalidUtf8 => "invalid UTF-8",
            CloseReason::RateLimited => RATE_LIMIT_EXCEEDED,
            CloseReason::InvalidUserId(e) => e.as_str(),
            CloseReason::MessageTooBig => "message too big",
            CloseReason::InboundBudget => "message too big for the server's input budget",
            CloseReason::RouteMismatch => "route protocol mismatch",
            CloseReason::UserIdNotSubject => USER_ID_NOT_SUBJECT,
            CloseReason::TokenExpired => "token expired",
            CloseReason::SubjectChanged => "token subject changed",
            CloseReason::ServiceRestart => "service restart",
            CloseReason::TryAgainLater => "try again later",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_are_the_wire_bytes() {
        let all = [
            (CloseReason::ShuttingDown, 1001, "server shutting down"),
            (CloseReason::ProtocolError, 1002, "protocol error"),
            (
                CloseReason::Binary,
                1003,
                "binary messages are not supported",
            ),
            (CloseReason::InvalidUtf8, 1007, "invalid UTF-8"),
            (CloseReason::RateLimited, 1008, "rate limit exceeded"),
            (
                CloseReason::InvalidUserId(UserIdError::Empty),
                1008,
                "empty userId",
            ),
            (CloseReason::MessageTooBig, 1009, "message too big"),
            (
                CloseReason::InboundBudget,
                1009,
                "message too big for the server's input budget",
            ),
            (CloseReason::RouteMismatch, 1011, "route protocol mismatch"),
            (
                CloseReason::UserIdNotSubject,
                1008,
                "userId does not match token",
            ),
            (CloseReason::TokenExpired, 4401, "token expired"),
            (CloseReason::SubjectChanged, 4403, "token subject changed"),
            (CloseReason::ServiceRestart, 1012, "service restart"),
            (CloseReason::TryAgainLater, 1013, "try again later"),
        ];
        for (why, code, reason) in all {
            assert_eq!((why.code(), why.reason()), (code, reason), "{why:?}");
            // A close frame's reason must fit in a control frame.
            assert!(2 + reason.len() <= 125, "{why:?}");
        }
    }
}
