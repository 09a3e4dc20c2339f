//! Log input of regex-check: a file read in big blocks with lossy UTF-8 decoding, or log text
//! given on the command line (fail2ban spec 9.3).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

/// Strip what Python's `rstrip('\r\n')` strips.
pub fn strip_eol(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// fail2ban-regex skips empty lines and `#` comments without counting them.
pub fn is_skipped(line: &str) -> bool {
    line.is_empty() || line.starts_with('#')
}

/// Splits command-line log text the way fail2ban-regex does: one line when `maxlines <= 1` and
/// there is no newline, else every `\n`-separated piece.
pub fn text_lines(text: &str, maxlines: usize) -> Vec<&str> {
    if maxlines <= 1 && !text.contains('\n') {
        vec![text]
    } else {
        text.split('\n').collect()
    }
}

/// Bytes of one line kept in memory; the rest of a longer line is skipped unread (the filter
/// cuts lines at 64 KiB anyway), so a file without newlines cannot exhaust memory.
pub const LINE_CAP: u64 = 1 << 20;

/// Reads a log file line by line into one reused buffer. Only `\n`-terminated lines are
/// returned: fail2ban does not process a final line without its newline.
pub struct LineReader<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    /// 1-based number of the last line returned (counting every physical line).
    pub line_no: u64,
    /// Bytes consumed so far (for the progress bar).
    pub bytes: u64,
    /// Lines longer than `LINE_CAP` seen so far.
    pub oversized: u64,
}

impl LineReader<File> {
    pub fn open(path: &std::path::Path) -> io::Result<LineReader<File>> {
        Ok(LineReader::new(File::open(path)?))
    }
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            reader: BufReader::with_capacity(1 << 20, inner),
            buf: Vec::with_capacity(4096),
            line_no: 0,
            bytes: 0,
            oversized: 0,
        }
    }

    /// The next complete line with its 1-based number, decoded lossily (borrowed when it is
    /// valid UTF-8), line ending included. `Ok(None)` at the end of the input or at an
    /// unterminated last line.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Cow<'_, str>)>> {
        self.buf.clear();
        let mut n = (&mut self.reader)
            .take(LINE_CAP)
            .read_until(b'\n', &mut self.buf)?;
        if n as u64 == LINE_CAP && self.buf.last() != Some(&b'\n') {
            // Over-long line: drop the rest up to and including its newline.
            let (skipped, terminated) = skip_line(&mut self.reader)?;
            if !terminated {
                return Ok(None);
            }
            n += skipped;
            self.buf.push(b'\n');
            self.oversized += 1;
        }
        if n == 0 || self.buf.last() != Some(&b'\n') {
            return Ok(None);
        }
        self.bytes += n as u64;
        self.line_no += 1;
        Ok(Some((
            self.line_no,
            crate::logsource::utf8_lossy(&self.buf),
        )))
    }
}

/// Consumes input up to and including the next newline; returns the bytes consumed and
/// whether a newline ended them (false at end of input).
fn skip_line(reader: &mut impl BufRead) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((consumed, false));
        }
        match memchr::memchr(b'\n', chunk) {
            Some(pos) => {
                reader.consume(pos + 1);
                return Ok((consumed + pos + 1, true));
            }
            None => {
                let len = chunk.len();
                reader.consume(len);
                consumed += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unterminated_last_line_is_not_returned() {
        let mut r = LineReader::new(&b"one\r\n\ntwo\nthree"[..]);
        let mut seen = Vec::new();
        while let Some((no, line)) = r.next_line().unwrap() {
            seen.push(format!("{no}:{}", strip_eol(&line)));
        }
        assert_eq!(seen, ["1:one", "2:", "3:two"]);
        assert_eq!(r.line_no, 3);
    }

    #[test]
    fn over_long_lines_are_cut_and_skipped_without_buffering_them() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', LINE_CAP as usize * 3));
        input.extend_from_slice(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', LINE_CAP as usize + 1));
        let mut r = LineReader::new(&input[..]);
        let (_, first) = r.next_line().unwrap().unwrap();
        assert_eq!(strip_eol(&first), "short");
        let (no, long) = r.next_line().unwrap().unwrap();
        assert_eq!((no, strip_eol(&long).len()), (2, LINE_CAP as usize));
        let (no, after) = r.next_line().unwrap().unwrap();
        assert_eq!((no, strip_eol(&after)), (3, "after"));
        // An unterminated over-long tail is not a line.
        assert!(r.next_line().unwrap().is_none());
        assert_eq!(r.oversized, 1);
        assert_eq!(r.bytes, input.len() as u64 - LINE_CAP - 1);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut r = LineReader::new(&b"ab\xffcd\n"[..]);
        let (_, line) = r.next_line().unwrap().unwrap();
        assert_eq!(strip_eol(&line), "ab\u{fffd}cd");
    }

    #[test]
    fn text_argument_splitting() {
        assert_eq!(text_lines("a line", 1), ["a line"]);
        assert_eq!(text_lines("a\nb", 1), ["a", "b"]);
        assert_eq!(text_lines("a", 2), ["a"]);
        assert!(is_skipped("") && is_skipped("# c") && !is_skipped("  "));
    }
}
