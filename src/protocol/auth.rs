//! The texts every protocol shares about signed identities (SECURITY.md
//! "What the identity means per protocol").

use super::token::Refusal;

/// A `stream` `join-room` whose `userId` is not the token's `sub` (the
/// error text), and a `presence` open whose `?userId=` is not (the close
/// reason).
pub const USER_ID_NOT_SUBJECT: &str = "userId does not match token";

/// The room named in the error refusing a `signal` `create-room` to a
/// token whose `rooms` claim does not allow every room id (the new id is
/// random, so only a claim holding `*` can allow it).
pub const ANY_NEW_ROOM: &str = "*";

/// The error refusing a room, session or signal room outside the token's
/// `rooms` claim: `Not allowed in room R` on `stream`, `scratch` and
/// `signal` alike.
pub fn not_allowed_in_room(room: &str) -> String {
    format!("Not allowed in room {room}")
}

/// Why an in-band `auth` was refused: the chat reply's `payload.message`,
/// and the error message of the other protocols, e.g.
/// `token refused: expired` (the refusal's stable name, never the token).
pub fn token_refused(refusal: Refusal) -> String {
    format!("token refused: {}", refusal.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(not_allowed_in_room("lobby"), "Not allowed in room lobby");
        assert_eq!(token_refused(Refusal::Expired), "token refused: expired");
        assert_eq!(token_refused(Refusal::Missing), "token refused: missing");
    }
}
