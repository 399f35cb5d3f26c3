//! The `roomd` command line: the server's flags ([`Config`]), each also
//! read from `ROOMD_<NAME>` (a flag on the command line wins; repeatable
//! flags are comma-separated), the seeds' variables
//! ([`crate::server::config::seed_env`]), and the `replay` subcommand.
//!
//! A bad command line is one line on stderr, `roomd: ...` naming the flag,
//! and exit status 2.

use crate::replay::ReplayArgs;
use crate::server::config::{Config, seed_env};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt;

/// The prefix of every flag's environment variable.
pub const ENV_PREFIX: &str = "ROOMD_";

/// roomd: real-time WebSocket server (rooms, presence, signaling, chat)
#[derive(Debug, Parser)]
#[command(
    name = "roomd",
    version,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    allow_negative_numbers = true,
    after_help = "Each flag is also read from ROOMD_<NAME> (e.g. ROOMD_MAX_CONNECTIONS; \
                  repeatable flags comma-separated); a flag on the command line wins.\n\
                  As the Node servers do, roomd reads PORT and WS_PORT (each a listener on \
                  0.0.0.0:N when no --listen is given), FRONTEND_URL (allowed origins, \
                  comma-separated) and a .env file in the working directory (variables \
                  already set win).\nSee README.md for routes, HTTP endpoints and the \
                  systemd units."
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Feed a journal (--journal) to a fresh engine and print its actions
    /// as JSON lines, or check them
    Replay(ReplayArgs),
    /// Print the live-upgrade hand-over versions this binary reads, one a
    /// line
    HandoverVersions,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Invocation {
    /// Run the server.
    Serve(Box<Config>),
    /// Run `roomd replay`.
    Replay(ReplayArgs),
    /// Print the hand-over versions read (`roomd handover-versions`).
    HandoverVersions,
}

/// Why the command line is not run.
#[derive(Debug)]
pub enum CliError {
    /// From clap: a bad flag or value, or `--help` or `--version`.
    Clap(clap::Error),
    /// What clap cannot judge alone: a seed variable, a route given twice.
    Invalid(String),
}

impl CliError {
    /// The exit status: 0 after `--help` or `--version`, else 2.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Clap(e) => e.exit_code(),
            CliError::Invalid(_) => 2,
        }
    }

    /// Prints `--help` and `--version` in full on stdout, and an error as
    /// one line `roomd: ...` on stderr.
    pub fn print(&self) {
        match self {
            CliError::Clap(e) if !e.use_stderr() => {
                if let Err(e) = e.print() {
                    eprintln!("roomd: {e}");
                }
            }
            _ => eprintln!("roomd: {self}"),
        }
    }
}

impl fmt::Display for CliError {
    /// One line: clap's message without its `error: ` prefix, usage and tips.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Clap(e) => {
                let text = e.to_string();
                let head = text.split("\n\n").next().unwrap_or_default();
                let head = head.strip_prefix("error: ").unwrap_or(head);
                let lines: Vec<&str> = head.lines().map(str::trim).collect();
                f.write_str(&lines.join(" "))
            }
            CliError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

/// The variable of the flag `--long`: `ROOMD_` and its name in capitals.
pub fn env_var(long: &str) -> String {
    format!("{ENV_PREFIX}{}", long.to_uppercase().replace('-', "_"))
}

/// The clap command: every server flag with its `ROOMD_<NAME>` variable.
pub fn command() -> clap::Command {
    Cli::command().mut_args(|arg| match arg.get_long().map(env_var) {
        Some(var) => arg.env(var),
        None => arg,
    })
}

/// Parses `args` (the program name first), the `ROOMD_` variables, and
/// the seeds' variables read through `env` (such as
/// `|k| std::env::var(k).ok()`).
pub fn parse<I, T>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Invocation, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // `roomd replay` first, without the variables: a bad ROOMD_ value is
    // the server's business, not the replay's.
    match Cli::try_parse_from(&args) {
        Ok(Cli {
            command: Some(Sub::Replay(args)),
            ..
        }) => return Ok(Invocation::Replay(args)),
        Ok(Cli {
            command: Some(Sub::HandoverVersions),
            ..
        }) => return Ok(Invocation::HandoverVersions),
        _ => {}
    }
    let matches = command()
        .try_get_matches_from(args)
        .map_err(CliError::Clap)?;
    let cli = Cli::from_arg_matches(&matches).map_err(CliError::Clap)?;
    match cli.command {
        Some(Sub::Replay(args)) => return Ok(Invocation::Replay(args)),
        Some(Sub::HandoverVersions) => return Ok(Invocation::HandoverVersions),
        None => {}
    }
    let mut config = cli.config;
    let listen_given = matches.value_source("listen") != Some(ValueSource::DefaultValue);
    seed_env::apply(&mut config, listen_given, env).map_err(CliError::Invalid)?;
    config.validate().map_err(CliError::Invalid)?;
    Ok(Invocation::Serve(Box::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;
    use crate::server::config::Route;
    use std::time::Duration;

    fn parse_args(args: &[&str]) -> Result<Invocation, CliError> {
        parse(std::iter::once("roomd").chain(args.iter().copied()), |_| {
            None
        })
    }

    fn serve(args: &[&str]) -> Config {
        match parse_args(args) {
            Ok(Invocation::Serve(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_flags_is_the_default() {
        assert_eq!(serve(&[]), Config::default());
    }

    #[test]
    fn flags_in_the_forms_used_today() {
        let c = serve(&[
            "--route",
            "/=stream",
            "--heartbeat-interval=0.25",
            "--max-connections",
            "5",
            "--listen",
            "127.0.0.1:1",
            "--listen",
            "[::1]:2",
            "--allow-origin",
            "http://a/",
            "--rate-limit-close-after",
            "250ms",
            "--presence-stats-interval",
            "2",
            "--request-timeout",
            "0.3",
            "--log-level",
            "debug",
            "--journal",
            "j.jsonl",
        ]);
        let route = Route {
            path: "/".into(),
            protocol: Protocol::Stream,
        };
        assert_eq!(c.routes, vec![route]);
        assert_eq!(c.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(c.max_connections, 5);
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.allow_origins, vec!["http://a"]);
        assert_eq!(c.rate_limit_close_after, Duration::from_millis(250));
        assert_eq!(c.presence_stats_interval, Duration::from_secs(2));
        assert_eq!(c.request_timeout, Duration::from_millis(300));
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert_eq!(c.journal, Some("j.jsonl".into()));
    }

    #[test]
    fn the_seeds_ports_apply_only_without_listen() {
        let env = |k: &str| (k == "WS_PORT").then(|| "4000".to_string());
        let Ok(Invocation::Serve(c)) = parse(["roomd"], env) else {
            panic!("not served")
        };
        assert_eq!(c.listen, vec!["0.0.0.0:4000".parse().unwrap()]);
        let Ok(Invocation::Serve(c)) = parse(["roomd", "--listen", "127.0.0.1:9"], env) else {
            panic!("not served")
        };
        assert_eq!(c.listen, vec!["127.0.0.1:9".parse().unwrap()]);
    }

    #[test]
    fn errors_are_one_line_naming_the_flag_with_status_2() {
        for (args, flag) in [
            (vec!["--max-connections", "0"], "--max-connections"),
            (vec!["--max-message-size", "x"], "--max-message-size"),
            (vec!["--listen", "nowhere"], "--listen"),
            (vec!["--route", "/x=nope"], "--route"),
            (vec!["--heartbeat-interval", "-1"], "--heartbeat-interval"),
            (vec!["--rate-limit"], "--rate-limit"),
            (vec!["--bogus", "1"], "--bogus"),
            (vec!["--route", "/a=chat", "--route", "/a=chat"], "--route"),
        ] {
            let e = parse_args(&args).unwrap_err();
            let line = e.to_string();
            assert_eq!(e.exit_code(), 2, "{line}");
            assert!(line.contains(flag), "{args:?}: {line}");
            assert!(!line.contains('\n') && !line.starts_with("error"), "{line}");
        }
    }

    #[test]
    fn help_version_and_replay() {
        let help = parse_args(&["--help"]).unwrap_err();
        assert_eq!(help.exit_code(), 0);
        let help = command().render_help().to_string();
        assert!(help.contains("replay"), "{help}");
        assert!(
            help.contains("[env: ROOMD_RATE_LIMIT_CLOSE_AFTER="),
            "{help}"
        );
        assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
        assert_eq!(parse_args(&["--version"]).unwrap_err().exit_code(), 0);
        assert_eq!(
            parse_args(&["replay", "--check", "j"]).unwrap(),
            Invocation::Replay(ReplayArgs {
                check: true,
                file: "j".into()
            })
        );
        assert_eq!(parse_args(&["replay"]).unwrap_err().exit_code(), 2);
        assert_eq!(
            parse_args(&["handover-versions"]).unwrap(),
            Invocation::HandoverVersions
        );
        assert_eq!(
            env_var("max-total-inbound-bytes"),
            "ROOMD_MAX_TOTAL_INBOUND_BYTES"
        );
    }
}
