//! Reads a journal back, line by line.

use super::{FORMAT_VERSION, Header, Record};
use std::fmt;
use std::io::BufRead;

/// A journal line that cannot be used, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalError {
    /// The line the problem is on (1 is the header).
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "journal line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for JournalError {}

/// One record and the line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's 1-based line number.
    pub line: usize,
    /// The record.
    pub record: Record,
}

/// Reads a journal: the header at construction, then records as an
/// iterator of `Result<Entry, JournalError>` that stops after the first
/// error.
///
/// A final line that has no newline and does not parse (the process died in
/// the middle of writing it) ends the journal without an error; see
/// [`Self::truncated_line`]. Any other malformed line is an error naming its
/// line number, and so is a record whose time is earlier than the one before.
#[derive(Debug)]
pub struct JournalReader<R> {
    input: R,
    header: Header,
    line: usize,
    last_time: u64,
    truncated_line: Option<usize>,
    done: bool,
    buf: Vec<u8>,
}

/// What reading one raw line gave.
enum Line<'a> {
    /// End of input.
    Eof,
    /// A line, and whether it ended with a newline.
    Text(&'a str, bool),
}

impl<R: BufRead> JournalReader<R> {
    /// Reads and checks the header line.
    pub fn new(input: R) -> Result<Self, JournalError> {
        let mut reader = JournalReader {
            input,
            header: Header::new(0, Default::default()),
            line: 0,
            last_time: 0,
            truncated_line: None,
            done: false,
            buf: Vec::new(),
        };
        let header: Header = match reader.next_line()? {
            Line::Eof => return Err(reader.error("empty journal: no header line".into())),
            Line::Text(text, _) => serde_json::from_str(text)
                .map_err(|e| format!("not a journal header: {e}"))
                .map_err(|m| reader.error(m))?,
        };
        if header.roomd_journal != FORMAT_VERSION {
            return Err(reader.error(format!(
                "journal format version {} (this roomd reads {FORMAT_VERSION})",
                header.roomd_journal
            )));
        }
        reader.header = header;
        Ok(reader)
    }

    /// The journal's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The line number of a truncated final line that was skipped, if any
    /// (known once the iterator has ended).
    pub fn truncated_line(&self) -> Option<usize> {
        self.truncated_line
    }

    fn error(&self, message: String) -> JournalError {
        JournalError {
            line: self.line,
            message,
        }
    }

    fn next_line(&mut self) -> Result<Line<'_>, JournalError> {
        self.buf.clear();
        self.line += 1;
        let n = self
            .input
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| JournalError {
                line: self.line,
                message: format!("read error: {e}"),
            })?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        let complete = self.buf.last() == Some(&b'\n');
        if complete {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        match std::str::from_utf8(&self.buf) {
            Ok(text) => Ok(Line::Text(text, complete)),
            // A cut can split a multi-byte character: treat it as garbage
            // JSON so that the truncation rule applies.
            Err(_) if !complete => Ok(Line::Text("\u{0}", false)),
            Err(e) => Err(JournalError {
                line: self.line,
                message: format!("not UTF-8: {e}"),
            }),
        }
    }

    fn next_entry(&mut self) -> Result<Option<Entry>, JournalError> {
        let (parsed, complete) = match self.next_line()? {
            Line::Eof => return Ok(None),
            Line::Text(text, complete) => (serde_json::from_str::<Record>(text), complete),
        };
        let record = match parsed {
            Ok(record) => record,
            Err(_) if !complete => {
                self.truncated_line = Some(self.line);
                return Ok(None);
            }
            Err(e) => return Err(self.error(format!("malformed record: {e}"))),
        };
        if record.time < self.last_time {
            return Err(self.error(format!(
                "time goes backwards ({} after {})",
                record.time, self.last_time
            )));
        }
        self.last_time = record.time;
        Ok(Some(Entry {
            line: self.line,
            record,
        }))
    }
}

impl<R: BufRead> Iterator for JournalReader<R> {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_entry().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ConnId, EngineConfig, Input};
    use crate::journal::JournalWriter;

    fn journal(inputs: &[(u64, Input)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = JournalWriter::new(&mut out, 99, &EngineConfig::default());
        for (t, input) in inputs {
            w.record(*t, input, &[]);
        }
        w.flush();
        drop(w);
        out
    }

    fn sample() -> Vec<u8> {
        journal(&[
            (10, Input::Timeout),
            (
                11,
                Input::Text {
                    conn: ConnId(1),
                    text: "{\"type\":\"ping\"}\n\u{e9}".into(),
                },
            ),
            (11, Input::Closed { conn: ConnId(1) }),
        ])
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<Entry>, Option<usize>), JournalError> {
        let mut r = JournalReader::new(bytes)?;
        let entries = r.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok((entries, r.truncated_line()))
    }

    #[test]
    fn reads_back_what_was_written() {
        let bytes = sample();
        let r = JournalReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header().seed, 99);
        assert_eq!(r.header().config, EngineConfig::default());
        let (entries, truncated) = read_all(&bytes).unwrap();
        assert_eq!(truncated, None);
        assert_eq!(
            entries.iter().map(|e| e.line).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(entries[2].record.input, Input::Closed { conn: ConnId(1) });
        assert_eq!(entries[1].record.time, 11);
    }

    #[test]
    fn tolerates_a_truncated_final_line_at_every_cut() {
        let bytes = sample();
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for cut in last_start + 1..bytes.len() - 1 {
            let (entries, truncated) = read_all(&bytes[..cut]).unwrap();
            assert_eq!(entries.len(), 2, "cut at {cut}");
            assert_eq!(truncated, Some(4), "cut at {cut}");
        }
        // Cut right before the final newline: the line is whole.
        let (entries, truncated) = read_all(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!((entries.len(), truncated), (3, None));
    }

    #[test]
    fn names_the_line_of_a_malformed_record() {
        let text = String::from_utf8(sample()).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{\"time\":11,\"input\":{\"kind\":\"nope\"},\"digest\":\"af63bd4c8601b7df\"}";
        let bad = lines.join("\n") + "\n";
        let err = read_all(bad.as_bytes()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.to_string()
                .starts_with("journal line 3: malformed record")
        );

        // A cut line followed by more lines is malformed, not truncated.
        lines[2] = "{\"time\":11,\"inp";
        let bad = lines.join("\n") + "\n";
        assert_eq!(read_all(bad.as_bytes()).unwrap_err().line, 3);

        lines[2] = "";
        let bad = lines.join("\n") + "\n";
        assert_eq!(read_all(bad.as_bytes()).unwrap_err().line, 3);
    }

    #[test]
    fn rejects_bad_headers_and_time_going_backwards() {
        assert_eq!(read_all(b"").unwrap_err().line, 1);
        assert_eq!(read_all(b"{}\n").unwrap_err().line, 1);
        let v2 = b"{\"roomd_journal\":2,\"seed\":1,\"config\":{}}\n";
        assert!(read_all(v2).unwrap_err().message.contains("version 2"));
        let back = journal(&[(10, Input::Timeout), (9, Input::Timeout)]);
        let err = read_all(&back).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("backwards"));
    }

    #[test]
    fn invalid_utf8_is_an_error_unless_it_is_the_cut() {
        let mut bytes = sample();
        let n = bytes.len();
        // Cut inside the two-byte \u{e9}, written raw by serde_json.
        let e9 = bytes.windows(2).rposition(|w| w == [0xc3, 0xa9]).unwrap();
        let (entries, truncated) = read_all(&bytes[..e9 + 1]).unwrap();
        assert_eq!((entries.len(), truncated), (1, Some(3)));
        bytes[e9 + 1] = 0xff;
        assert_eq!(read_all(&bytes[..n]).unwrap_err().line, 3);
    }
}
