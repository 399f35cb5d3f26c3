//! Replays every committed fuzz seed (`fuzz/seeds/<target>/`) and every
//! crash regression (`tests/data/fuzz/<target>/`) through the target
//! bodies, and keeps the generated seeds in sync with their sources.
//!
//! `ROOMD_WRITE_SEEDS=1 cargo test --test engine fuzz_seeds` rewrites the
//! generated seeds.

use roomd::fuzzing;
use std::path::{Path, PathBuf};

type Body = fn(&[u8]);

const TARGETS: [(&str, Body); 8] = [
    ("engine", fuzzing::engine),
    ("protocol_messages", fuzzing::protocol_messages),
    ("journal", fuzzing::journal),
    ("http_request", fuzzing::http_request),
    ("websocket", fuzzing::websocket),
    ("token", fuzzing::token),
    ("resp", fuzzing::resp),
    ("bus", fuzzing::bus),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_runs_clean() {
    for (target, body) in TARGETS {
        let seeds = files(&root().join("fuzz/seeds").join(target));
        assert!(seeds.len() >= 3, "{target}: too few seeds");
        let regressions = files(&root().join("tests/data/fuzz").join(target));
        for file in seeds.iter().chain(&regressions) {
            let data = std::fs::read(file).unwrap();
            println!("{target}: {}", file.display());
            body(&data);
        }
    }
}

fn sync(target: &str, seeds: Vec<(String, Vec<u8>)>, compare: bool) {
    let dir = root().join("fuzz/seeds").join(target);
    if std::env::var_os("ROOMD_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    } else if compare {
        for (name, bytes) in &seeds {
            let on_disk = std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("{target}/{name}: {e} (ROOMD_WRITE_SEEDS=1 writes it)"));
            assert!(
                &on_disk == bytes,
                "{target}/{name} is stale (ROOMD_WRITE_SEEDS=1)"
            );
        }
    }
}

#[test]
fn generated_seeds_are_up_to_date() {
    let engine = fuzzing::seeds::engine_seeds()
        .into_iter()
        .map(|(n, b)| (n.to_string(), b))
        .collect();
    sync("engine", engine, true);
    sync("protocol_messages", fuzzing::seeds::message_seeds(), true);
    sync("websocket", fuzzing::websocket_seeds(), true);
    // Journal digests depend on the engine: written on request, not compared.
    sync("journal", fuzzing::seeds::journal_seeds(), false);
    // ECDSA signatures are random: written on request, not compared.
    sync("token", crate::token::fuzz_seeds(), false);
}
