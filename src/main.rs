//! The `roomd` binary.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("replay") {
        std::process::exit(roomd::replay::main(&args[1..]));
    }
    eprintln!("roomd: the server is not wired up yet");
    std::process::exit(2);
}
