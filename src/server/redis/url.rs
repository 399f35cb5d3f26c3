//! `--redis URL`: `redis://[:PASSWORD@]HOST[:PORT][/DB]`, read and checked
//! once at start. The password is never printed (`Debug` hides it).

use std::fmt;

/// Redis's own port, when the URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Where Redis is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Sent with `AUTH` on every connection, if any.
    pub password: Option<String>,
    /// Database selected with `SELECT` on the command connection.
    pub db: u32,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("db", &self.db)
            .finish()
    }
}

impl fmt::Display for RedisUrl {
    /// The URL without its password, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "redis://{host}:{}/{}", self.port, self.db)
    }
}

impl RedisUrl {
    /// Parses `redis://[:PASSWORD@]HOST[:PORT][/DB]` (the password may be
    /// percent-encoded); the error says what was expected.
    pub fn parse(value: &str) -> Result<RedisUrl, String> {
        const SHAPE: &str = "expected redis://[:PASSWORD@]HOST:PORT[/DB]";
        let rest = value
            .trim()
            .strip_prefix("redis://")
            .ok_or_else(|| SHAPE.to_string())?;
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let password = match userinfo {
            None => None,
            Some(u) => match u.strip_prefix(':') {
                Some(p) if !p.is_empty() => Some(percent_decode(p)?),
                _ => return Err(format!("{SHAPE} (a password only, after ':')")),
            },
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let db = match path {
            "" => 0,
            p => p
                .parse::<u32>()
                .map_err(|_| format!("{SHAPE} (DB is a number)"))?,
        };
        let (host, port) = host_port(authority).ok_or_else(|| SHAPE.to_string())?;
        Ok(RedisUrl {
            host,
            port,
            password,
            db,
        })
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            a => (host, Some(a.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
    if host.is_empty() || !host.chars().all(valid) {
        return None;
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
    };
    Some((host.to_string(), port))
}

/// `%XX` escapes decoded; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or("a bad %-escape in the password")?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| "a bad %-escape in the password")?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the password is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_url() {
        let u = RedisUrl::parse("redis://:s%40cret@cache.local:6380/2").unwrap();
        assert_eq!(u.host, "cache.local");
        assert_eq!((u.port, u.db), (6380, 2));
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        assert!(!format!("{u:?}{u}").contains("cret"));
        let u = RedisUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!((u.port, u.db, u.password), (DEFAULT_PORT, 0, None));
        let u = RedisUrl::parse("redis://[::1]:7000/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 7000));
        assert_eq!(u.to_string(), "redis://[::1]:7000/0");
    }

    #[test]
    fn bad_urls_say_what_was_expected() {
        for bad in [
            "http://h:1",
            "redis://",
            "redis://h:0",
            "redis://h:99999",
            "redis://h:1/x",
            "redis://user:pw@h:1",
            "redis://:@h:1",
            "redis://:%zz@h:1",
            "redis://h h:1",
            "redis://[::1:1",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(
                e.starts_with("expected") || e.contains("password"),
                "{bad}: {e}"
            );
        }
    }
}
