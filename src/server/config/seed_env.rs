//! The environment of the Node servers roomd replaces, as their users have
//! it: `PORT` and `WS_PORT` (each a listener on `0.0.0.0:N` when no
//! `--listen` is given), `FRONTEND_URL` (comma-separated allowed origins),
//! and a `.env` file in the working directory.

use super::{Config, value};
use std::net::SocketAddr;

/// The port variables, in the order their listeners are opened.
pub const PORT_VARIABLES: [&str; 2] = ["PORT", "WS_PORT"];

/// The allowed-origins variable of the signaling server.
pub const ORIGINS_VARIABLE: &str = "FRONTEND_URL";

/// Reads `.env` in the working directory into the environment the way
/// Node's `dotenv` does: a variable already set keeps its value, and a
/// missing file is no error. Call it before any thread starts. On a
/// malformed line the lines before it are kept and the error is returned,
/// for a warning.
pub fn load_dotenv() -> Result<(), String> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(format!(".env: {e}")),
    }
}

/// Applies `FRONTEND_URL`, and `PORT` and `WS_PORT` unless `listen_given`,
/// read through `env` (such as `|k| std::env::var(k).ok()`).
pub fn apply(
    config: &mut Config,
    listen_given: bool,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    if let Some(urls) = env(ORIGINS_VARIABLE) {
        let origins = urls.split(',').filter_map(|u| value::origin(u).ok());
        config.allow_origins.extend(origins);
    }
    if listen_given {
        return Ok(());
    }
    let mut listen: Vec<SocketAddr> = Vec::new();
    for name in PORT_VARIABLES {
        let Some(port) = env(name) else { continue };
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| format!("invalid {name}: {port:?} is not a port number"))?;
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        if !listen.contains(&addr) {
            listen.push(addr);
        }
    }
    if !listen.is_empty() {
        config.listen = listen;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(listen_given: bool, vars: &[(&str, &str)]) -> Result<Config, String> {
        let mut config = Config::default();
        apply(&mut config, listen_given, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })?;
        Ok(config)
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn each_port_variable_is_a_listener_on_every_address() {
        let c = applied(false, &[("WS_PORT", "4000")]).unwrap();
        assert_eq!(c.listen, addrs(&["0.0.0.0:4000"]));
        let c = applied(false, &[("WS_PORT", "8080"), ("PORT", " 3000")]).unwrap();
        assert_eq!(c.listen, addrs(&["0.0.0.0:3000", "0.0.0.0:8080"]));
        let c = applied(false, &[("WS_PORT", "3000"), ("PORT", "3000")]).unwrap();
        assert_eq!(c.listen, addrs(&["0.0.0.0:3000"]), "one listener per port");
        assert_eq!(
            applied(false, &[]).unwrap().listen,
            Config::default().listen
        );
    }

    #[test]
    fn listen_wins_over_the_ports_and_origins_are_added() {
        let c = applied(
            true,
            &[("PORT", "3000"), ("FRONTEND_URL", "http://a, http://b/,")],
        )
        .unwrap();
        assert_eq!(c.listen, Config::default().listen);
        assert_eq!(c.allow_origins, vec!["http://a", "http://b"]);
    }

    #[test]
    fn a_bad_port_names_its_variable() {
        let e = applied(false, &[("WS_PORT", "http")]).unwrap_err();
        assert_eq!(e, r#"invalid WS_PORT: "http" is not a port number"#);
        assert!(applied(false, &[("PORT", "70000")]).is_err());
        assert!(
            applied(true, &[("PORT", "x")]).is_ok(),
            "ignored with --listen"
        );
    }
}
