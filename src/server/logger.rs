//! The process's logger: one line per record on standard output.
//!
//! Not `simple_logger`: it writes with `println!`, which panics once stdout
//! is gone (a closed pipe, a restarted journald). Peers cause log lines, so
//! that would let traffic crash the server; this logger drops a line it
//! cannot write instead.

use crate::server::clock::Clock;
use std::io::Write;

struct StdoutLogger;

/// tungstenite logs frame payloads at `trace`, and a payload may be an
/// in-band token: its records are kept to `debug` and above whatever the
/// level.
const PAYLOAD_LOGGING_TARGET: &str = "tungstenite";

impl log::Log for StdoutLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
            && !(metadata.level() == log::Level::Trace
                && metadata.target().starts_with(PAYLOAD_LOGGING_TARGET))
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ts = crate::protocol::timestamp::format_ts(Clock::wall_ms());
        let _ = writeln!(
            std::io::stdout().lock(),
            "{ts} {:<5} [{}] {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {
        let _ = std::io::stdout().lock().flush();
    }
}

/// Installs the logger at `level`; fails only if a logger is already set.
pub fn init(level: log::LevelFilter) -> Result<(), log::SetLoggerError> {
    log::set_logger(&StdoutLogger)?;
    log::set_max_level(level);
    Ok(())
}
