//! Journaling overhead in the engine, no sockets: `cargo bench --bench journal`.
//!
//! One recorded workload (chat broadcasts to 50 members, stream room chat,
//! signal relays, presence pings, malformed messages, ticks) is fed to a
//! fresh engine twice: once as is, once with every input and its outputs'
//! digest written to a journal file, as the reactor does with `--journal`.
//! Without sockets this is the worst case: in the server each input also
//! costs reads, frames and writes, which journaling does not add to.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use roomd::engine::{ConnId, Engine, EngineConfig, Input, Output};
use roomd::journal::JournalWriter;
use roomd::journal::writer::FLUSH_INTERVAL_MS;
use roomd::protocol::Protocol;
use std::time::{Duration, Instant};

const T0: u64 = 1_704_110_400_000;

fn open(conn: u64, protocol: Protocol, path: &str, query: &str) -> Input {
    Input::Open {
        conn: ConnId(conn),
        protocol,
        path: path.to_string(),
        query: query.to_string(),
        peer: Some(([127, 0, 0, 1], (40_000 + conn % 20_000) as u16).into()),
        identity: None,
    }
}

fn text(conn: u64, text: &str) -> Input {
    Input::Text {
        conn: ConnId(conn),
        text: text.to_string(),
    }
}

/// The workload: a setup, then rounds of traffic, one input per ms.
fn workload(rounds: u64) -> Vec<(u64, Input)> {
    let mut inputs = Vec::new();
    for c in 1..=50 {
        inputs.push(open(c, Protocol::Chat, "/chat", ""));
    }
    for c in 51..=70 {
        inputs.push(open(c, Protocol::Stream, "/stream", ""));
        let join = format!(
            r#"{{"type":"join-room","roomId":"r{}","userId":"u{c}","userName":"N"}}"#,
            c % 2
        );
        inputs.push(text(c, &join));
    }
    inputs.push(open(71, Protocol::Signal, "/signal", ""));
    inputs.push(open(72, Protocol::Signal, "/signal", ""));
    for c in 73..=80 {
        inputs.push(open(
            c,
            Protocol::Presence,
            "/presence",
            &format!("userId={c}"),
        ));
    }
    let mut out: Vec<(u64, Input)> = inputs.into_iter().map(|i| (T0, i)).collect();
    let chat =
        r#"{"type":"chat","payload":{"text":"hello everyone, how is it going?","user":"alice"}}"#;
    for round in 0..rounds {
        let c = 51 + round % 20;
        let stream_chat = format!(
            r#"{{"type":"chat-message","roomId":"r{}","userId":"u{c}","content":"hi there"}}"#,
            c % 2
        );
        let step = [
            text(1 + round % 50, chat),
            text(c, &stream_chat),
            text(
                71,
                r#"{"type":"signal","roomId":"000000","signal":{"type":"offer","sdp":"v=0"}}"#,
            ),
            text(73 + round % 8, r#"{"type":"PING"}"#),
            text(1 + round % 50, r#"{"type":"typing","payload":{"on":true}}"#),
            text(2 + round % 40, "not json"),
            Input::Pong {
                conn: ConnId(1 + round % 80),
            },
        ];
        for (k, input) in step.into_iter().enumerate() {
            out.push((T0 + round * 8 + k as u64, input));
        }
        if round % 100 == 0 {
            out.push((T0 + round * 8 + 7, Input::Timeout));
        }
    }
    out
}

/// Feeds `inputs` to a fresh engine; journals them if `journal` is given.
/// Returns (outputs, elapsed).
fn run(inputs: &[(u64, Input)], journal: Option<&std::path::Path>) -> (usize, Duration) {
    let config = EngineConfig {
        rate_limit_per_sec: 0,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config.clone(), 7);
    let mut writer = journal.map(|path| {
        let file = std::fs::File::create(path).expect("create journal");
        JournalWriter::new(file, 7, &config)
    });
    let mut outputs: Vec<Output> = Vec::new();
    let mut total = 0;
    // Flushed as the reactor does: FLUSH_INTERVAL_MS after a record waits.
    let mut flush_at: Option<u64> = None;
    let start = Instant::now();
    for (now, input) in inputs {
        let input = input.clone();
        let journaled = writer.as_ref().map(|_| input.clone());
        engine.handle(*now, input);
        outputs.clear();
        outputs.extend(engine.drain_outputs());
        total += outputs.len();
        if let (Some(w), Some(input)) = (&mut writer, journaled) {
            w.record(*now, &input, &outputs);
            let at = *flush_at.get_or_insert(*now + FLUSH_INTERVAL_MS);
            if *now >= at {
                w.flush();
                flush_at = None;
            }
        }
    }
    if let Some(w) = &mut writer {
        w.flush();
    }
    (total, start.elapsed())
}

fn main() {
    let inputs = workload(40_000);
    let path =
        std::env::temp_dir().join(format!("roomd-bench-journal-{}.jsonl", std::process::id()));
    // Warm up, then alternate to even out noise; keep the best of each.
    run(&inputs, None);
    let (mut plain, mut journaled) = (Duration::MAX, Duration::MAX);
    let mut outputs = 0;
    for _ in 0..3 {
        let (n, t) = run(&inputs, None);
        plain = plain.min(t);
        outputs = n;
        let (m, t) = run(&inputs, Some(&path));
        assert_eq!(m, n, "journaling changed the outputs");
        journaled = journaled.min(t);
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&path);
    let rate = |t: Duration| inputs.len() as f64 / t.as_secs_f64();
    println!(
        "{} inputs, {outputs} outputs; without journal {:.0} inputs/s, with journal {:.0} inputs/s ({:.1} MB journal): throughput -{:.1}%",
        inputs.len(),
        rate(plain),
        rate(journaled),
        bytes as f64 / 1e6,
        (1.0 - rate(journaled) / rate(plain)) * 100.0
    );
}
