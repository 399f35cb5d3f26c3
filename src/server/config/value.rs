//! How flag values are read: durations, counts and sizes, addresses,
//! origins, log levels. Each parser trims the value (environment lists are
//! written `a, b`) and says what it expected.

use std::net::SocketAddr;
use std::time::Duration;

/// The shortest timer accepted.
const MIN_DURATION: Duration = Duration::from_millis(10);

/// Seconds as a number (`30`, `0.5`) or a humantime duration (`250ms`),
/// at least 10 ms.
pub(super) fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let d = match value.parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => Duration::from_secs_f64(secs),
        Ok(_) => return Err("expected seconds between 0 and 1e9".into()),
        Err(_) => humantime::parse_duration(value)
            .map_err(|_| "expected a duration such as 30, 0.5 or 250ms".to_string())?,
    };
    if d < MIN_DURATION {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(MIN_DURATION)
        ));
    }
    Ok(d)
}

/// Milliseconds written as seconds, the way [`duration`] reads them back
/// (`30000` is `30`, `500` is `0.5`).
pub(super) fn seconds(ms: u64) -> String {
    (ms as f64 / 1000.0).to_string()
}

/// A positive whole number: a count, or a size in bytes.
pub(super) fn positive(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be positive".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A socket address such as `127.0.0.1:8080` or `[::1]:8080`.
pub(super) fn address(value: &str) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected an address such as 127.0.0.1:8080".into())
}

/// An origin as browsers send it: no surrounding blanks, no trailing slash.
pub(super) fn origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/');
    if origin.is_empty() {
        return Err("expected a URL such as https://app.example.com".into());
    }
    Ok(origin.to_string())
}

/// A name for keys and channels: 1 to 64 letters, digits, `-`, `_`, `.`
/// or `:`.
pub(super) fn prefix(value: &str) -> Result<String, String> {
    let name = value.trim();
    let valid = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
        return Err("expected 1 to 64 letters, digits, '-', '_', '.' or ':'".into());
    }
    Ok(name.to_string())
}

/// A log level: `off`, `error`, `warn`, `info`, `debug` or `trace`.
pub(super) fn log_level(value: &str) -> Result<log::LevelFilter, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected off, error, warn, info, debug or trace".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_form_used_today() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration(" 0.5 "), Ok(Duration::from_millis(500)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(duration("-1").is_err());
        assert!(duration("5ms").unwrap_err().contains("10ms"));
        assert!(duration("soon").is_err());
        for ms in [30_000, 500, 10_000, 1_250] {
            assert_eq!(
                duration(&seconds(ms)),
                Ok(Duration::from_millis(ms)),
                "{ms}"
            );
        }
    }

    #[test]
    fn counts_addresses_origins_levels() {
        assert_eq!(positive("1048576"), Ok(1 << 20));
        assert!(positive("0").is_err());
        assert!(positive("x").is_err());
        assert_eq!(address(" [::1]:2"), Ok("[::1]:2".parse().unwrap()));
        assert!(address("nowhere").is_err());
        assert_eq!(origin(" http://b/ "), Ok("http://b".into()));
        assert!(origin(" ").is_err());
        assert_eq!(log_level("DEBUG"), Ok(log::LevelFilter::Debug));
        assert!(log_level("loud").is_err());
        assert_eq!(prefix(" roomd-eu "), Ok("roomd-eu".into()));
        assert!(prefix("a b").is_err());
        assert!(prefix("").is_err());
    }
}
