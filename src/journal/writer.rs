//! Appends records to a journal through a large buffer.

use super::format::RecordRef;
use super::{Digest, Header};
use crate::engine::{EngineConfig, Input, Output};
use std::io::{BufWriter, Write};

/// Buffer size: a burst of records costs one write syscall per 1 MiB.
const BUFFER_BYTES: usize = 1 << 20;

/// How long a record may wait in the buffer: the reactor flushes this long
/// after [`JournalWriter::has_buffered`] first says so.
pub const FLUSH_INTERVAL_MS: u64 = 500;

/// Writes a journal: the header at construction, then one line per input.
///
/// Writes go to a 1 MiB buffer, never a syscall per record. Call
/// [`Self::flush`] [`FLUSH_INTERVAL_MS`] after [`Self::has_buffered`]
/// first says so, and at shutdown. On the first
/// write error the writer logs it once and disables itself: later calls do
/// nothing, so the server goes on without a journal.
#[derive(Debug)]
pub struct JournalWriter<W: Write> {
    out: Option<BufWriter<W>>,
    line: Vec<u8>,
}

impl JournalWriter<std::fs::File> {
    /// Starts a journal in a new (or truncated) file at `path`.
    pub fn create(
        path: &std::path::Path,
        seed: u64,
        config: &EngineConfig,
    ) -> std::io::Result<Self> {
        let file = std::fs::File::create(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create journal {}: {e}", path.display()),
            )
        })?;
        log::info!("journaling engine inputs to {}", path.display());
        Ok(JournalWriter::new(file, seed, config))
    }
}

impl JournalWriter<std::fs::File> {
    /// Goes on with the journal at `path` that a live upgrade's old
    /// process wrote `len` bytes of (no new header): bytes past `len` (none
    /// unless the old process wrote after handing over) are cut.
    pub fn append(path: &std::path::Path, len: u64) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut file| {
                file.set_len(len)?;
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len))?;
                Ok(file)
            })
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot append to journal {}: {e}", path.display()),
                )
            })?;
        log::info!("journaling engine inputs on to {}", path.display());
        Ok(JournalWriter {
            out: Some(BufWriter::with_capacity(BUFFER_BYTES, file)),
            line: Vec::new(),
        })
    }

    /// Flushes, and returns the file's length: `None` once journaling is
    /// off (a write error).
    pub fn flushed_len(&mut self) -> Option<u64> {
        self.flush();
        let file = self.out.as_ref()?.get_ref();
        file.metadata().ok().map(|m| m.len())
    }
}

impl<W: Write> JournalWriter<W> {
    /// Starts a journal on `out` with the engine's `seed` and `config`.
    pub fn new(out: W, seed: u64, config: &EngineConfig) -> Self {
        let mut writer = JournalWriter {
            out: Some(BufWriter::with_capacity(BUFFER_BYTES, out)),
            line: Vec::new(),
        };
        let header = Header::new(seed, config.clone());
        writer.write_line(&header);
        writer
    }

    /// Whether journaling is still on (no write error so far).
    pub fn is_enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Whether records are buffered and not yet written out.
    pub fn has_buffered(&self) -> bool {
        self.out
            .as_ref()
            .is_some_and(|out| !out.buffer().is_empty())
    }

    /// Records that the engine was given `input` at `now_ms` and queued
    /// `outputs` for it.
    pub fn record(&mut self, now_ms: u64, input: &Input, outputs: &[Output]) {
        if self.out.is_none() {
            return;
        }
        let record = RecordRef {
            time: now_ms,
            input,
            digest: Digest::of(outputs),
        };
        self.write_line(&record);
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            let result = out.flush();
            self.check(result);
        }
    }

    /// Flushes and returns the underlying writer (`None` if journaling
    /// stopped after an error or the final flush fails).
    pub fn into_inner(mut self) -> Option<W> {
        self.flush();
        self.out.take()?.into_inner().ok()
    }

    fn write_line<T: serde::Serialize>(&mut self, value: &T) {
        // Encode into a reused buffer first, so that an encoding error can
        // never leave half a line in the journal.
        self.line.clear();
        if let Err(e) = serde_json::to_writer(&mut self.line, value) {
            log::error!("journal: cannot encode a record ({e}); journaling stops");
            self.out = None;
            return;
        }
        self.line.push(b'\n');
        if let Some(out) = &mut self.out {
            let result = out.write_all(&self.line);
            self.check(result);
        }
    }

    fn check(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result {
            log::error!("journal: write failed ({e}); journaling stops, the server goes on");
            // Dropping a BufWriter retries the flush; skip that by taking the
            // inner writer out without flushing.
            if let Some(out) = self.out.take() {
                drop(out.into_parts());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ConnId;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A sink that counts `write` calls and fails from call `fail_after` on.
    #[derive(Clone, Default)]
    struct Sink {
        data: Rc<RefCell<Vec<u8>>>,
        writes: Rc<RefCell<usize>>,
        fail_after: Option<usize>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut writes = self.writes.borrow_mut();
            *writes += 1;
            if self.fail_after.is_some_and(|n| *writes > n) {
                return Err(std::io::Error::other("disk full"));
            }
            self.data.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn tick_records(w: &mut JournalWriter<Sink>, n: u64) {
        for i in 0..n {
            w.record(1_000 + i, &Input::Timeout, &[]);
        }
    }

    #[test]
    fn buffers_until_flushed() {
        let sink = Sink::default();
        let mut w = JournalWriter::new(sink.clone(), 7, &EngineConfig::default());
        tick_records(&mut w, 500);
        assert_eq!(*sink.writes.borrow(), 0, "no syscall per record");
        assert!(w.has_buffered());
        w.flush();
        assert_eq!(*sink.writes.borrow(), 1);
        assert!(!w.has_buffered());
        w.record(1_500, &Input::Pong { conn: ConnId(1) }, &[]);
        assert!(w.has_buffered());
        w.flush();
        assert_eq!(*sink.writes.borrow(), 2);
        let text = String::from_utf8(sink.data.borrow().clone()).unwrap();
        assert_eq!(text.lines().count(), 502);
        assert!(text.starts_with("{\"roomd_journal\":1,\"seed\":7,"));
        assert!(text.ends_with(
            "{\"time\":1500,\"input\":{\"kind\":\"pong\",\"conn\":1},\"digest\":\"af63bd4c8601b7df\"}\n"
        ));
    }

    #[test]
    fn first_write_error_disables_journaling() {
        let sink = Sink {
            fail_after: Some(1),
            ..Sink::default()
        };
        let mut w = JournalWriter::new(sink.clone(), 7, &EngineConfig::default());
        w.flush();
        assert!(w.is_enabled());
        tick_records(&mut w, 10);
        w.flush();
        assert!(!w.is_enabled());
        tick_records(&mut w, 10_000);
        w.flush();
        assert!(!w.is_enabled());
        assert_eq!(*sink.writes.borrow(), 2, "no write attempted once disabled");
    }
}
