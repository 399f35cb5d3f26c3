//! The `TS` format of PROTOCOLS.md: UTC ISO 8601 with milliseconds.

use std::time::{Duration, UNIX_EPOCH};

/// Formats epoch milliseconds as `2024-01-01T12:00:00.000Z`.
pub fn format_ts(epoch_ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(epoch_ms);
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
    }
}
