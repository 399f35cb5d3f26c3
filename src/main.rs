//! The `roomd` binary: parses its configuration and starts the server.
#![forbid(unsafe_code)]

use roomd::server::config::{Command, Config, help};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("replay") {
        std::process::exit(roomd::replay::main(&args[1..]));
    }
    let command = match Config::parse(&args, &|k| std::env::var(k).ok()) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("roomd: {e}");
            std::process::exit(2);
        }
    };
    let config = match command {
        Command::Help => {
            print!("{}", help());
            return;
        }
        Command::Serve(config) => config,
    };
    if let Err(e) = roomd::server::logger::init(config.log_level) {
        eprintln!("roomd: logger: {e}");
    }
    if let Err(e) = roomd::server::run(config) {
        log::error!("{e}");
        std::process::exit(1);
    }
}
