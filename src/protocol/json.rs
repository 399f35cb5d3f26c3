//! Hand-written JSON output for the messages on every connection's path
//! (e.g. `room-joined`): the same bytes as `serde_json`, without its
//! per-byte escaping loop and per-field serializer calls for the common
//! case of strings that need no escaping.

/// Appends `s` as a JSON string literal (quotes included), exactly as
/// `serde_json` writes it.
pub fn push_str(out: &mut String, s: &str) {
    // Ids and names are short: a plain loop beats a vectorised one here.
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if !plain {
        match serde_json::to_string(s) {
            Ok(quoted) => out.push_str(&quoted),
            // Serialising a `str` cannot fail; keep the output valid JSON.
            Err(_) => out.push_str("\"\""),
        }
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Appends `"key":` followed by the string `value`; `key` is a constant
/// that needs no escaping.
pub fn push_field(out: &mut String, key: &str, value: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
    push_str(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_and_escaped_strings_match_serde_json() {
        for s in [
            "",
            "abc",
            "a\"b",
            "a\\b",
            "\n\t\u{1}\u{1f}",
            "\u{7f}é€😀",
            "</script>",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap_or_default(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_matches_serde_json(s in any::<String>()) {
            let mut out = String::from("x");
            push_str(&mut out, &s);
            prop_assert_eq!(&out[1..], serde_json::to_string(&s).unwrap_or_default());
        }
    }
}
