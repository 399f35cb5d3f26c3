//! Benchmark tools for roomd: a single-threaded mio load generator with
//! hand-written client framing (`roomd-bench`), and a trivial "limit"
//! server that fans out pre-encoded frames and parses almost nothing
//! (`limit-server`), the ceiling the same scenarios can reach on this
//! machine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
pub mod frame;
pub mod limit;
pub mod net;
pub mod report;
pub mod scenario;
pub mod stats;
