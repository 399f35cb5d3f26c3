//! `limit-server [--listen ADDR]`: the trivial server that is the ceiling
//! for the benchmark scenarios (see `roomd_bench::limit`).
#![forbid(unsafe_code)]

use roomd_bench::args::Args;
use roomd_bench::limit::LimitServer;

fn main() {
    let result = Args::parse(std::env::args().skip(1)).and_then(|args| {
        let addr = args
            .str("listen")
            .unwrap_or("127.0.0.1:8090")
            .parse()
            .map_err(|e| format!("--listen: {e}"))?;
        let mut server = LimitServer::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        let local = server.local_addr().map_err(|e| e.to_string())?;
        println!("limit-server listening on {local}");
        server.run().map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        eprintln!("limit-server: {e}");
        std::process::exit(1);
    }
}
