//! The journal's two line types: the header and one record per input.

use super::Digest;
use crate::engine::{EngineConfig, Input};
use serde::{Deserialize, Serialize};

/// The format version written in every header; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;

/// Line 1: what a fresh engine needs to replay the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The format version ([`FORMAT_VERSION`]).
    pub roomd_journal: u32,
    /// The engine's seed.
    pub seed: u64,
    /// The engine's configuration.
    pub config: EngineConfig,
}

impl Header {
    /// A header of the current format version.
    pub fn new(seed: u64, config: EngineConfig) -> Self {
        Header {
            roomd_journal: FORMAT_VERSION,
            seed,
            config,
        }
    }
}

/// One engine input and the digest of the outputs it produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The `now_ms` the engine was given.
    pub time: u64,
    /// The input.
    pub input: Input,
    /// The digest of the outputs the engine queued for it.
    pub digest: Digest,
}

/// A [`Record`] that borrows its input, for writing without a clone.
#[derive(Serialize)]
pub(crate) struct RecordRef<'a> {
    pub(crate) time: u64,
    pub(crate) input: &'a Input,
    pub(crate) digest: Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_timeout_was_named_still_read() {
        let old = r#"{"time":5,"input":{"kind":"tick"},"digest":"af63bd4c8601b7df"}"#;
        let record: Record = serde_json::from_str(old).unwrap();
        assert_eq!(record.input, Input::Timeout);
        let new = serde_json::to_string(&record).unwrap();
        assert!(new.contains(r#""input":{"kind":"timeout"}"#), "{new}");
    }

    #[test]
    fn opens_keep_their_peer_text_and_old_ones_with_an_origin_still_read() {
        let old = r#"{"time":5,"input":{"kind":"open","conn":1,"protocol":"chat","path":"/chat","query":"","origin":"http://a","peer":"[::1]:40000"},"digest":"af63bd4c8601b7df"}"#;
        let record: Record = serde_json::from_str(old).unwrap();
        let Input::Open { peer, .. } = &record.input else {
            panic!("{record:?}");
        };
        assert_eq!(*peer, Some("[::1]:40000".parse().unwrap()));
        let new = serde_json::to_string(&record).unwrap();
        assert_eq!(new, old.replace(r#""origin":"http://a","#, ""));
    }
}
