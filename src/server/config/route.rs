//! A WebSocket route, `PATH=PROTOCOL`, as `--route` takes it.

use crate::protocol::Protocol;
use std::fmt;
use std::str::FromStr;

/// A WebSocket route: a path and the protocol spoken there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The exact, case-sensitive path, e.g. `/chat`.
    pub path: String,
    /// The protocol.
    pub protocol: Protocol,
}

/// The default routes of PROTOCOLS.md.
pub fn default_routes() -> Vec<Route> {
    crate::protocol::DEFAULT_ROUTES
        .into_iter()
        .map(|(path, protocol)| Route {
            path: path.to_string(),
            protocol,
        })
        .collect()
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path, self.protocol)
    }
}

impl FromStr for Route {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (path, protocol) = value
            .trim()
            .split_once('=')
            .ok_or("expected PATH=PROTOCOL")?;
        if !path.starts_with('/') {
            return Err("the path must start with /".into());
        }
        Ok(Route {
            path: path.to_string(),
            protocol: protocol.parse().map_err(|e| format!("{e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_displays_and_refuses_the_rest() {
        for route in default_routes() {
            assert_eq!(route.to_string().parse::<Route>(), Ok(route));
        }
        assert!("/x".parse::<Route>().is_err());
        assert!("x=chat".parse::<Route>().is_err());
        assert!("/x=nope".parse::<Route>().unwrap_err().contains("nope"));
    }
}
