//! `roomd replay [--check] FILE`: feeds a journal to a fresh engine.
//!
//! Without `--check` it prints every output as a JSON line
//! `{"line":L,"time":T,"conn":C,"kind":K,"payload":P}` (see
//! [`crate::journal::Action`]). With `--check` it compares each input's
//! output digest with the recorded one and reports the first divergence.
//!
//! Exit codes: 0 identical (or printed), 1 divergence, 2 usage (a bad
//! command line, see [`crate::cli`]), IO or malformed journal.

use crate::engine::{Engine, Input, Output};
use crate::journal::{Action, Digest, Entry, JournalError, JournalReader};
use serde::Serialize;
use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// How a replay ended, when the journal could be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Inputs fed to the engine.
    pub inputs: usize,
    /// The line of a truncated final line that was skipped, if any.
    pub truncated_line: Option<usize>,
}

/// The first input whose outputs differ from the journal's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The input's journal line.
    pub line: usize,
    /// Its time.
    pub time: u64,
    /// The input.
    pub input: Input,
    /// The digest in the journal.
    pub expected: Digest,
    /// The digest of what the engine produced now.
    pub actual: Digest,
    /// What the engine produced now.
    pub actual_actions: Vec<Action>,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every digest matched.
    Identical(Replayed),
    /// The first mismatch.
    Diverged(Box<Divergence>),
}

/// Replays `journal` on a fresh engine, calling `step` with each entry and
/// the outputs it produced; `step` may stop the replay early.
pub fn replay<R: BufRead>(
    journal: R,
    mut step: impl FnMut(&Entry, &[Output]) -> ControlFlow<()>,
) -> Result<Replayed, JournalError> {
    let mut reader = JournalReader::new(journal)?;
    let header = reader.header().clone();
    let mut engine = Engine::new(header.config, header.seed);
    let mut outputs = Vec::new();
    let mut inputs = 0;
    for entry in reader.by_ref() {
        let entry = entry?;
        engine.handle(entry.record.time, entry.record.input.clone());
        outputs.clear();
        outputs.extend(engine.drain_outputs());
        inputs += 1;
        if step(&entry, &outputs).is_break() {
            break;
        }
    }
    Ok(Replayed {
        inputs,
        truncated_line: reader.truncated_line(),
    })
}

/// Replays `journal` and compares every input's digest with the recorded one.
pub fn check<R: BufRead>(journal: R) -> Result<CheckOutcome, JournalError> {
    let mut divergence = None;
    let replayed = replay(journal, |entry, outputs| {
        let actual = Digest::of(outputs);
        if actual == entry.record.digest {
            return ControlFlow::Continue(());
        }
        divergence = Some(Box::new(Divergence {
            line: entry.line,
            time: entry.record.time,
            input: entry.record.input.clone(),
            expected: entry.record.digest,
            actual,
            actual_actions: outputs.iter().map(Action::from).collect(),
        }));
        ControlFlow::Break(())
    })?;
    Ok(match divergence {
        Some(d) => CheckOutcome::Diverged(d),
        None => CheckOutcome::Identical(replayed),
    })
}

/// One printed line of `roomd replay`.
#[derive(Serialize)]
struct PrintedAction {
    line: usize,
    time: u64,
    #[serde(flatten)]
    action: Action,
}

/// Replays `journal`, writing every output to `out` as a JSON line.
pub fn print<R: BufRead, W: Write>(journal: R, out: &mut W) -> Result<Replayed, String> {
    let mut write_error = None;
    let replayed = replay(journal, |entry, outputs| {
        for output in outputs {
            let printed = PrintedAction {
                line: entry.line,
                time: entry.record.time,
                action: Action::from(output),
            };
            let result = serde_json::to_writer(&mut *out, &printed)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = result {
                write_error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| e.to_string())?;
    match write_error {
        Some(e) => Err(format!("cannot write output: {e}")),
        None => out
            .flush()
            .map(|()| replayed)
            .map_err(|e| format!("cannot write output: {e}")),
    }
}

/// The arguments of `roomd replay`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct ReplayArgs {
    /// Compare every input's output digest with the recorded one instead
    /// of printing the actions; exit 1 at the first divergence
    #[arg(long)]
    pub check: bool,
    /// The journal, as written by `roomd --journal FILE`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// The `roomd replay` subcommand. Returns the process exit code.
pub fn run(args: &ReplayArgs) -> i32 {
    let path = args.file.display();
    let file = match std::fs::File::open(&args.file) {
        Ok(f) => std::io::BufReader::with_capacity(1 << 20, f),
        Err(e) => {
            eprintln!("roomd replay: cannot open {path}: {e}");
            return 2;
        }
    };
    let warn_truncated = |r: &Replayed| {
        if let Some(line) = r.truncated_line {
            eprintln!("roomd replay: warning: line {line} is truncated (ignored)");
        }
    };
    if !args.check {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        return match print(file, &mut out) {
            Ok(r) => {
                warn_truncated(&r);
                0
            }
            Err(e) => {
                eprintln!("roomd replay: {e}");
                2
            }
        };
    }
    match check(file) {
        Ok(CheckOutcome::Identical(r)) => {
            warn_truncated(&r);
            println!("identical: {} inputs replayed", r.inputs);
            0
        }
        Ok(CheckOutcome::Diverged(d)) => {
            println!("{}", describe(&d));
            1
        }
        Err(e) => {
            eprintln!("roomd replay: {e}");
            2
        }
    }
}

/// A human-readable report of a divergence.
pub fn describe(d: &Divergence) -> String {
    let input = serde_json::to_string(&d.input).unwrap_or_else(|e| e.to_string());
    let mut text = format!(
        "divergence at line {} (time {}): input {input}\n  expected: digest {}\n  actual:   digest {}, {} action(s)",
        d.line,
        d.time,
        d.expected,
        d.actual,
        d.actual_actions.len()
    );
    for action in &d.actual_actions {
        let json = serde_json::to_string(action).unwrap_or_else(|e| e.to_string());
        text.push_str("\n    ");
        text.push_str(&json);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ConnId, EngineConfig};
    use crate::journal::JournalWriter;
    use crate::protocol::Protocol;

    /// Runs `inputs` on an engine as the reactor does, journaling each.
    fn record(inputs: &[Input]) -> Vec<u8> {
        let config = EngineConfig::default();
        let mut engine = Engine::new(config.clone(), 1234);
        let mut out = Vec::new();
        let mut journal = JournalWriter::new(&mut out, 1234, &config);
        for (i, input) in inputs.iter().enumerate() {
            let now = 1_700_000_000_000 + 10 * i as u64;
            engine.handle(now, input.clone());
            let outputs: Vec<Output> = engine.drain_outputs().collect();
            journal.record(now, input, &outputs);
        }
        journal.flush();
        drop(journal);
        out
    }

    fn session() -> Vec<Input> {
        let open = |conn, path: &str| Input::Open {
            conn: ConnId(conn),
            protocol: Protocol::Chat,
            path: path.into(),
            query: String::new(),
            peer: None,
            identity: None,
        };
        let text = |conn, text: &str| Input::Text {
            conn: ConnId(conn),
            text: text.into(),
        };
        vec![
            open(1, "/chat"),
            open(2, "/chat"),
            text(1, r#"{"type":"chat","payload":"hi"}"#),
            text(2, "not json"),
            Input::Timeout,
            Input::Closed { conn: ConnId(1) },
        ]
    }

    #[test]
    fn a_recorded_session_replays_identically() {
        let journal = record(&session());
        let outcome = check(&journal[..]).unwrap();
        assert_eq!(
            outcome,
            CheckOutcome::Identical(Replayed {
                inputs: 6,
                truncated_line: None
            })
        );
    }

    #[test]
    fn reports_the_first_changed_digest_with_its_line() {
        let journal = String::from_utf8(record(&session())).unwrap();
        let mut lines: Vec<String> = journal.lines().map(String::from).collect();
        let recorded: crate::journal::Record = serde_json::from_str(&lines[3]).unwrap();
        let wrong = Digest(recorded.digest.0 ^ 1);
        lines[3] = lines[3].replace(&recorded.digest.to_string(), &wrong.to_string());
        // A later wrong digest too: only the first is reported.
        let later: crate::journal::Record = serde_json::from_str(&lines[5]).unwrap();
        let later_wrong = Digest(later.digest.0 ^ 2);
        lines[5] = lines[5].replace(&later.digest.to_string(), &later_wrong.to_string());
        let edited = lines.join("\n") + "\n";
        let CheckOutcome::Diverged(d) = check(edited.as_bytes()).unwrap() else {
            panic!("no divergence found");
        };
        assert_eq!((d.line, d.expected), (4, wrong));
        assert_eq!(d.actual, recorded.digest);
        assert_eq!(d.input, session()[2]);
        let report = describe(&d);
        assert!(report.starts_with("divergence at line 4 "), "{report}");
        assert!(report.contains(&wrong.to_string()));
    }

    #[test]
    fn prints_one_line_per_output_and_keeps_the_truncation_warning() {
        let mut journal = record(&session());
        journal.extend_from_slice(b"{\"time\":1700000000100,\"inpu");
        let mut out = Vec::new();
        let r = print(&journal[..], &mut out).unwrap();
        assert_eq!(r.truncated_line, Some(8));
        assert_eq!(r.inputs, 6);
        for line in String::from_utf8(out).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["line"].as_u64().is_some_and(|l| (2..=7).contains(&l)));
            assert!(v["conn"].is_u64() && v["kind"].is_string());
        }
    }

    #[test]
    fn a_malformed_middle_line_is_an_error() {
        let mut journal = record(&session());
        journal.extend_from_slice(b"garbage\n{}\n");
        let err = print(&journal[..], &mut Vec::new()).unwrap_err();
        assert!(err.contains("line 8"), "{err}");
        assert!(check(&journal[..]).unwrap_err().line == 8);
    }
}
