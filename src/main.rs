//! The `roomd` binary: parses its command line and starts the server (or
//! `roomd replay`).
#![forbid(unsafe_code)]

use roomd::cli::Invocation;
use roomd::server::config::seed_env;

fn main() {
    // Before anything else (and before any thread): `.env` fills in the
    // environment the command line is read from.
    let dotenv = seed_env::load_dotenv();
    let invocation = match roomd::cli::parse(std::env::args_os(), |k| std::env::var(k).ok()) {
        Ok(invocation) => invocation,
        Err(e) => {
            e.print();
            std::process::exit(e.exit_code());
        }
    };
    let config = match invocation {
        Invocation::Replay(args) => std::process::exit(roomd::replay::run(&args)),
        Invocation::HandoverVersions => {
            for version in roomd::server::HANDOVER_VERSIONS {
                println!("{version}");
            }
            return;
        }
        Invocation::Serve(config) => *config,
    };
    if let Err(e) = roomd::server::logger::init(config.log_level) {
        eprintln!("roomd: logger: {e}");
    }
    if let Err(e) = dotenv {
        log::warn!("{e} (the lines before it were read)");
    }
    if let Err(e) = roomd::server::run(config) {
        log::error!("{e}");
        // A configuration found bad at start (keys, certificates) is a
        // usage error, as a bad flag is.
        let bad_config = e.kind() == std::io::ErrorKind::InvalidInput;
        std::process::exit(if bad_config { 2 } else { 1 });
    }
}
