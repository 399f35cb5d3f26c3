//! The files of `dist/`: the systemd units and the example environment
//! file, as the Debian package installs them.

/// The text of `dist/NAME`.
pub fn read(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/");
    std::fs::read_to_string(format!("{path}{name}")).expect("a file of dist/")
}

/// Every value of `key` in a unit file (`Key=value` lines, any section).
pub fn unit_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.trim().to_string())
        .collect()
}

/// The one value of `key` in `dist/NAME`.
pub fn unit_value(name: &str, key: &str) -> String {
    let values = unit_values(&read(name), key);
    assert_eq!(values.len(), 1, "{key}= in dist/{name}: {values:?}");
    values.into_iter().next().unwrap_or_default()
}
