//! `roomd-bench SCENARIO [--key value ...]`: the load generator.
#![forbid(unsafe_code)]

use roomd_bench::args::Args;
use roomd_bench::report;
use roomd_bench::scenario::{Target, crowd, fanout, handshakes, relay};

const USAGE: &str = "usage: roomd-bench fanout|relay|idle|storm|handshakes [options]
common:  --addr HOST:PORT (127.0.0.1:8080; ws://HOST:PORT, or wss://HOST:PORT for TLS)
         --addr2 HOST:PORT (a second node of a cluster: fanout's every other
         subscriber, relay's guests; the publishers and hosts stay on --addr)
         --tls-ca PEM (with wss://: the CA to trust)  --tls-name NAME (the IP)
         --tls-kx X25519[,...] (key exchange groups offered; rustls' defaults)
         --label NAME  --server-pid PID[,PID...] (several: CPU summed, each shown)
         --src 127.0.0.2-9 (spread connections over source addresses)
fanout:  --subs 1000 --pubs 1 --size 64 --duration 10 --window 256
         --rate MSGS_PER_S (fixed offered rate; default full speed) --path /stream
         --setup-timeout 120 (seconds for everyone to join)
relay:   --pairs 100 --duration 10 --path /signal
idle:    --conns 1000 --room-size 10 --in-flight 256 --hold 2 --timeout 30
         --shard i/n --sync-dir DIR (split over processes) --path /stream
storm:   --conns 1000 --room-size 10 --timeout 30 --path /stream
handshakes: --in-flight 64 --duration 5 --path /stream (connect, upgrade, reset)
report:  --dir DIR (prints the table from DIR/{roomd,node,limit}.jsonl)
         --tls (the TLS table from DIR/{roomd-tls,roomd-plain,node-tls}.jsonl)
         --cluster (the cluster table from DIR/{roomd-single,roomd-cluster}.jsonl)";

fn main() {
    let mut argv = std::env::args().skip(1);
    let scenario = argv.next().unwrap_or_default();
    if matches!(scenario.as_str(), "help" | "--help" | "-h") {
        println!("{USAGE}");
        return;
    }
    let result = Args::parse(argv).and_then(|args| {
        let target = Target::from_args(&args)?;
        match scenario.as_str() {
            "fanout" => fanout::run(&target, &fanout::Config::from_args(&args)?),
            "relay" => relay::run(&target, &relay::Config::from_args(&args)?),
            "idle" => crowd::run_idle(&target, &crowd::Config::from_args(&args)?),
            "storm" => crowd::run_storm(&target, &crowd::Config::from_args(&args)?),
            "handshakes" => handshakes::run(&target, &handshakes::Config::from_args(&args)?),
            "report" => {
                let dir = args.str("dir").unwrap_or(".").as_ref();
                if args.str("cluster").is_some() {
                    print!("{}", report::cluster_table(dir));
                } else if args.str("tls").is_some() {
                    print!("{}", report::tls_table(dir));
                } else {
                    print!("{}", report::table(dir));
                }
                return Ok(());
            }
            _ => Err(USAGE.to_string()),
        }
        .map(|summary| println!("{}", serde_json::Value::Object(summary)))
    });
    if let Err(e) = result {
        eprintln!("roomd-bench {scenario}: {e}");
        std::process::exit(1);
    }
}
