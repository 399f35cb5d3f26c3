//! The `TS` format of PROTOCOLS.md: UTC ISO 8601 with milliseconds.

use std::time::{Duration, UNIX_EPOCH};

/// The last millisecond of year 9999, the latest time the format can show.
pub const MAX_TS_MS: u64 = 253_402_300_799_999;

/// Formats epoch milliseconds as `2024-01-01T12:00:00.000Z`. Times past
/// [`MAX_TS_MS`] are shown as that (formatting them would fail).
pub fn format_ts(epoch_ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(epoch_ms.min(MAX_TS_MS));
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_javascript_to_iso_string() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ts(1_704_110_400_000), "2024-01-01T12:00:00.000Z");
        assert_eq!(format_ts(1_704_110_400_007), "2024-01-01T12:00:00.007Z");
        assert_eq!(format_ts(MAX_TS_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_ts(u64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
