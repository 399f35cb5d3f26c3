//! `dist/`: the example environment file lists every flag's variable with
//! its default, the service's `ExecStart=` and that file start the binary,
//! and the paths agree with the Debian package's (`Cargo.toml`); README's
//! flags table agrees with the flags. `socket_activation` serves on
//! `dist/roomd.socket`'s `ListenStream=`.

use crate::live::binary::{KillOnDrop, roomd, spawn};
use crate::live::dist::{read, unit_value, unit_values};
use std::net::TcpStream;

/// Where the package installs the environment file, and the service reads it.
const ENV_FILE: &str = "/etc/default/roomd";

const ENV_FILE_HEADER: &str = "\
# roomd's settings, read by roomd.service (EnvironmentFile=/etc/default/roomd).
# Every flag of `roomd --help` is a variable ROOMD_<NAME>, listed here
# commented out with its default; uncomment a line to change it. Repeatable
# settings take a comma-separated list. FRONTEND_URL (allowed origins,
# comma-separated) is read too. Under socket activation (roomd.socket) the
# socket's ListenStream= decides the addresses: ROOMD_LISTEN, PORT and
# WS_PORT are ignored.
";

/// `# ` and `text`, wrapped at 76 columns.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 76 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out + &line + "\n"
}

/// A flag's defaults as its variable takes them: comma-separated.
fn defaults(arg: &clap::Arg) -> String {
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    values.join(",")
}

/// `dist/roomd.env` as the flags make it: each one's help, then its
/// variable commented out with its default (empty when it has none).
fn expected_env_file() -> String {
    let mut out = String::from(ENV_FILE_HEADER);
    for arg in roomd::cli::command().get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let none = if defaults.is_empty() {
            " (no default)"
        } else {
            ""
        };
        out.push('\n');
        out.push_str(&comment(&format!("{help}{none}")));
        out.push_str(&format!(
            "#{}={}\n",
            var.to_string_lossy(),
            defaults.join(",")
        ));
    }
    out
}

#[test]
fn the_env_file_lists_every_flag_with_its_default() {
    let expected = expected_env_file();
    assert!(expected.contains("\n#ROOMD_RATE_LIMIT_CLOSE_AFTER=10\n"));
    assert_eq!(
        read("roomd.env"),
        expected,
        "dist/roomd.env is not what the flags make; it should be:\n{expected}"
    );
}

#[test]
fn the_package_installs_what_the_units_name() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    assert_eq!(
        unit_value("roomd.service", "EnvironmentFile"),
        format!("-{ENV_FILE}")
    );
    for needed in [
        format!(r#"["dist/roomd.env", "{}", "644"]"#, &ENV_FILE[1..]),
        format!(r#"conf-files = ["{ENV_FILE}"]"#),
        r#"["target/release/roomd", "usr/bin/", "755"]"#.to_string(),
        r#"["dist/roomd.service", "lib/systemd/system/", "644"]"#.to_string(),
        r#"["dist/roomd.socket", "lib/systemd/system/", "644"]"#.to_string(),
        r#"["dist/roomd@.service", "lib/systemd/system/", "644"]"#.to_string(),
    ] {
        assert!(manifest.contains(&needed), "Cargo.toml lacks {needed}");
    }
    let exec = unit_value("roomd.service", "ExecStart");
    assert!(exec.starts_with("/usr/bin/roomd"), "{exec}");
    assert_eq!(unit_value("roomd.service", "Requires"), "roomd.socket");
    // The cluster template: its own listeners, shared through SO_REUSEPORT,
    // and otherwise the service's settings.
    assert_eq!(
        unit_value("roomd@.service", "ExecStart"),
        "/usr/bin/roomd --reuse-port"
    );
    assert!(unit_values(&read("roomd@.service"), "Requires").is_empty());
    for key in [
        "Type",
        "EnvironmentFile",
        "DynamicUser",
        "LimitNOFILE",
        "Restart",
    ] {
        assert_eq!(
            unit_value("roomd@.service", key),
            unit_value("roomd.service", key),
            "{key}"
        );
    }
}

/// The service's command line with every default of the environment file
/// uncommented (so each is a valid value), on a free loopback port rather
/// than the socket's (a flag wins over `ROOMD_LISTEN`).
#[test]
fn exec_start_and_the_env_file_start_roomd() {
    let exec = unit_value("roomd.service", "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/roomd"));
    let mut command = roomd();
    command.args(words).args(["--listen", "127.0.0.1:0"]);
    let env_file = read("roomd.env");
    let mut set = 0;
    for line in env_file.lines() {
        let Some((var, value)) = line.strip_prefix('#').and_then(|l| l.split_once('=')) else {
            continue;
        };
        if var.starts_with("ROOMD_") && !value.is_empty() {
            command.env(var, value);
            set += 1;
        }
    }
    assert!(set >= 10, "only {set} variables with a default");
    let server = spawn(command);
    let _server = KillOnDrop(server.child);
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{}/chat", server.addr), stream)
        .expect("a handshake on a default route");
    assert!(ws.read().expect("a greeting").is_text());
}

/// A row per flag, each starting with the flag, its value's name and the
/// default that `--help` shows.
#[test]
fn the_readme_flags_table_matches_the_flags() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `--")).collect();
    let mut flags = 0;
    for arg in roomd::cli::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        // A switch (`--reuse-port`) takes no value and is off by default.
        let start = if arg.get_action().takes_values() {
            let value = arg.get_value_names().unwrap_or_default().join(" ");
            let default = match defaults(arg) {
                d if d.is_empty() => "none".to_string(),
                d => format!("`{d}`"),
            };
            format!("| `--{long} {value}` | {default} | ")
        } else {
            format!("| `--{long}` | off | ")
        };
        assert!(
            rows.iter().any(|r| r.starts_with(&start)),
            "README.md has no row starting {start}"
        );
        flags += 1;
    }
    assert_eq!(
        rows.len(),
        flags,
        "README.md has rows for flags roomd lacks"
    );
}
