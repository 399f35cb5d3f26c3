//! `roomd replay` as a command: exit codes and output.

use roomd::engine::{ConnId, Engine, EngineConfig, Input, Output};
use roomd::journal::JournalWriter;
use roomd::protocol::Protocol;
use std::path::PathBuf;
use std::process::{Command, Output as ProcessOutput};

fn write_journal(name: &str, inputs: &[Input]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("roomd-{}-{name}.jsonl", std::process::id()));
    let config = EngineConfig::default();
    let mut engine = Engine::new(config.clone(), 5);
    let file = std::fs::File::create(&path).unwrap();
    let mut journal = JournalWriter::new(file, 5, &config);
    for (i, input) in inputs.iter().enumerate() {
        let now = 1_700_000_000_000 + i as u64;
        engine.handle(now, input.clone());
        let outputs: Vec<Output> = engine.drain_outputs().collect();
        journal.record(now, input, &outputs);
    }
    journal.flush();
    path
}

fn roomd(args: &[&str]) -> ProcessOutput {
    Command::new(env!("CARGO_BIN_EXE_roomd"))
        .args(args)
        .output()
        .unwrap()
}

fn inputs() -> Vec<Input> {
    vec![
        Input::Open {
            conn: ConnId(1),
            protocol: Protocol::Presence,
            path: "/presence".into(),
            query: "userId=7".into(),
            peer: Some(([127, 0, 0, 1], 5000).into()),
            identity: None,
        },
        Input::Text {
            conn: ConnId(1),
            text: r#"{"type":"PING"}"#.into(),
        },
        Input::Timeout,
    ]
}

#[test]
fn check_exits_0_on_an_intact_journal_and_1_on_a_changed_digest() {
    let path = write_journal("intact", &inputs());
    let out = roomd(&["replay", "--check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("identical: 3 inputs"));

    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let at = lines[3].find("\"digest\":\"").unwrap() + 10;
    let flipped = if &lines[3][at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    lines[3].replace_range(at..at + 1, flipped);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = roomd(&["replay", "--check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("divergence at line 4 "));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn usage_errors_and_malformed_journals_exit_2() {
    assert_eq!(roomd(&["replay"]).status.code(), Some(2));
    assert_eq!(roomd(&["replay", "--bogus", "x"]).status.code(), Some(2));
    assert_eq!(
        roomd(&["replay", "/nonexistent/roomd.jsonl"]).status.code(),
        Some(2)
    );
    let path = write_journal("malformed", &inputs());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("oops\n");
    std::fs::write(&path, &text).unwrap();
    let out = roomd(&["replay", "--check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 5"));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn plain_replay_prints_json_lines_and_warns_about_a_truncated_tail() {
    let path = write_journal("print", &inputs());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"time\":17");
    std::fs::write(&path, &text).unwrap();
    let out = roomd(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["conn"].is_u64() && v["kind"].is_string(), "{line}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 5 is truncated"));
    std::fs::remove_file(&path).unwrap();
}

/// The server's variables are not the replay's: a bad one does not stop it.
#[test]
fn a_bad_server_variable_does_not_stop_a_replay() {
    let path = write_journal("env", &inputs());
    let out = Command::new(env!("CARGO_BIN_EXE_roomd"))
        .args(["replay", "--check", path.to_str().unwrap()])
        .env("ROOMD_RATE_LIMIT", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::remove_file(&path).unwrap();
}
