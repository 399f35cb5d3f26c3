//! The engine's whole state as one document, for a live upgrade: a new
//! process restores it and goes on exactly where the old one stopped
//! (rooms, presence, timers, rate limiters, identities, the RNGs, the
//! counters; in cluster mode the node's number and replica).

use super::Engine;

/// The version of [`Engine::save`]'s format; a process restores only the
/// versions it names in [`STATE_VERSIONS`].
pub const STATE_VERSION: u32 = 1;

/// The versions of saved state this build restores.
pub const STATE_VERSIONS: [u32; 1] = [STATE_VERSION];

impl Engine {
    /// The whole state, as JSON. Call between inputs (with the outputs
    /// drained): outputs not yet taken are not saved.
    pub fn save(&self) -> String {
        // Plain data; serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The engine [`Self::save`] wrote, checked; an error for a document
    /// that is not one, or whose indexes disagree.
    pub fn restore(text: &str) -> Result<Engine, String> {
        let engine: Engine = serde_json::from_str(text).map_err(|e| e.to_string())?;
        engine.check_invariants()?;
        Ok(engine)
    }
}
