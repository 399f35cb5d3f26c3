//! The `roomd` binary.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("roomd: the server is not wired up yet");
    std::process::exit(2);
}
