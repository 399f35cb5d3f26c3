//! Signed identities: where a JWT comes from in the opening request, and
//! its verification as a pure function of (token, keys, `now`).
//!
//! 1. [`token_of`] finds the token in a parsed request (subprotocol offer,
//!    then `Authorization: Bearer`, then `?token=`; the first present wins,
//!    valid or not).
//! 2. [`Verifier::verify`] checks it against the configured keys at
//!    `now_secs` and gives an [`Identity`] or a [`Refusal`].
//! 3. [`without_token`] is the query the rest of the server may see (log,
//!    engine, journal); [`selected_protocol`] is what the `101` answer
//!    echoes in `Sec-WebSocket-Protocol`.
//!
//! The cryptography is the `jsonwebtoken` crate's (aws-lc-rs backend);
//! nothing here reads a clock or a file.

mod claims;
mod compact;
mod identity;
mod in_band;
mod keys;
mod refusal;
mod source;
mod verifier;

pub use identity::Identity;
pub use in_band::auth_message_token;
pub use keys::{Key, KeyError};
pub use refusal::Refusal;
pub use source::{
    SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX, TokenSource, selected_protocol, token_of, without_token,
};
pub use verifier::{TokenConfig, Verifier};

/// Largest token verified, in bytes: a longer one is refused as
/// [`Refusal::TooLarge`] before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest `sub` claim accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 128;

/// Shortest HS256 secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Clock skew tolerated on `exp` and `nbf` at verification, in seconds
/// (`--jwt-leeway`).
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
