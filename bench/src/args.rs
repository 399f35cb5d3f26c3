//! Minimal `--key value` command-line parsing.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed `--key value` options (a bare `--flag` has the value "true").
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses options; `Err` names the first argument that is not `--key`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut it = args.into_iter().peekable();
        while let Some(arg) = it.next() {
            let Some(key) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
                _ => "true".to_string(),
            };
            values.insert(key.to_string(), value);
        }
        Ok(Args { values })
    }

    /// The raw value of `key`, if given.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `key` parsed as `T`, or `default` when absent; `Err` when malformed.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_flags() {
        let a = Args::parse(
            ["--subs", "10", "--quick", "--addr", "127.0.0.1:1"]
                .iter()
                .map(|s| s.to_string()),
        )
        .unwrap();
        assert_eq!(a.get("subs", 0usize), Ok(10));
        assert_eq!(a.str("quick"), Some("true"));
        assert_eq!(a.get("missing", 7u32), Ok(7));
        assert!(a.get::<u32>("addr", 0).is_err());
        assert!(Args::parse(["oops".to_string()]).is_err());
    }
}
