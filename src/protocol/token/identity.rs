//! A verified identity and its room rights.

use serde::{Deserialize, Serialize};

/// Who a verified token says the client is, until when, and (optionally)
/// which rooms it may create or join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The `sub` claim: non-empty, at most [`super::MAX_SUBJECT_CHARS`]
    /// characters.
    pub sub: String,
    /// The `exp` claim, in seconds since the Unix epoch.
    pub exp: u64,
    /// The `rooms` claim: room ids, a trailing `*` matching any suffix.
    /// `None` when the token has no such claim (any room).
    pub rooms: Option<Vec<String>>,
}

impl Identity {
    /// Whether the `rooms` claim lets this identity create or join `room`:
    /// no claim allows any room; `lobby` allows exactly `lobby`; `team-*`
    /// allows every id starting with `team-` (and `*` every id).
    pub fn may_enter(&self, room: &str) -> bool {
        let Some(rooms) = &self.rooms else {
            return true;
        };
        rooms.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => room.starts_with(prefix),
            None => pattern == room,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rooms(rooms: Option<&[&str]>) -> Identity {
        Identity {
            sub: "u".into(),
            exp: 0,
            rooms: rooms.map(|r| r.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn no_claim_allows_any_room() {
        assert!(with_rooms(None).may_enter("anything"));
        assert!(with_rooms(None).may_enter(""));
    }

    #[test]
    fn exact_ids_and_prefixes() {
        let id = with_rooms(Some(&["lobby", "team-*"]));
        assert!(id.may_enter("lobby"));
        assert!(!id.may_enter("lobby2"));
        assert!(!id.may_enter("Lobby"));
        assert!(id.may_enter("team-"));
        assert!(id.may_enter("team-red"));
        assert!(!id.may_enter("team"));
        assert!(!id.may_enter("x-team-red"));
    }

    #[test]
    fn empty_list_allows_nothing_and_star_everything() {
        assert!(!with_rooms(Some(&[])).may_enter("lobby"));
        assert!(with_rooms(Some(&["*"])).may_enter("lobby"));
        assert!(with_rooms(Some(&["*"])).may_enter(""));
        // Only a trailing star is special.
        let id = with_rooms(Some(&["a*b"]));
        assert!(!id.may_enter("axb"));
        assert!(id.may_enter("a*b"));
    }
}
