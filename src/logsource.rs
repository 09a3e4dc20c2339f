//! Log sources: following files across rotation, positions, polling and inotify.
//!
//! [`LogFile`] follows one path the way fail2ban's `FileContainer` does: it yields
//! complete lines only, remembers a [`Position`] (first-line hash + byte offset) that
//! can be persisted and resumed, and notices rename-and-recreate rotation,
//! copytruncate, deletion/recreation and a rewritten first line. [`Watcher`] blocks
//! until any of many followed paths may have changed (inotify or polling), so a daemon
//! loop is `watcher.wait(timeout); for f in files { f.read_new_lines(&mut lines) }`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest line kept, in bytes; the rest of a longer line is dropped (and counted)
/// so a writer that never emits `\n` cannot make us buffer without bound.
pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;

/// How much is read per `read` call.
const CHUNK_LEN: usize = 64 * 1024;

/// Where to start reading a file that has no usable saved position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// From the beginning (fail2ban's `head`, the default).
    Head,
    /// From the current end: only lines written from now on (`tail`).
    Tail,
}

impl StartAt {
    /// Parses the mode word of `addlogpath F [head|tail]`.
    pub fn parse(word: &str) -> Option<StartAt> {
        match word {
            "head" => Some(StartAt::Head),
            "tail" => Some(StartAt::Tail),
            _ => None,
        }
    }
}

/// A resumable reading position, as stored in the database's `logs` table.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Position {
    /// Hex digest of the file's first line including its newline, or `""` while the
    /// first line is incomplete. fail2ban's column is called `firstlinemd5` but holds
    /// SHA-1 (its MD5 probe always fails on Python 3), so we store SHA-1 too and
    /// positions imported from a fail2ban database stay valid.
    pub first_line_hash: String,
    /// Byte offset of the first line not yet returned.
    pub offset: u64,
}

/// Text encodings understood for `logencoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
    /// 7-bit ASCII: bytes above 0x7f become U+FFFD.
    Ascii,
}

impl Encoding {
    /// Resolves a `logencoding` name; `auto` means the locale's encoding, which on
    /// every system we target is UTF-8.
    pub fn from_name(name: &str) -> Option<Encoding> {
        let normalised = name.trim().to_ascii_lowercase().replace('_', "-");
        match normalised.as_str() {
            "" | "auto" | "utf-8" | "utf8" | "u8" => Some(Encoding::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "8859" | "l1" => {
                Some(Encoding::Latin1)
            }
            "ascii" | "us-ascii" | "646" => Some(Encoding::Ascii),
            _ => None,
        }
    }

    /// Decodes one line, replacing undecodable bytes with U+FFFD.
    pub fn decode(self, bytes: &[u8]) -> String {
        let mut text = String::new();
        self.decode_into(bytes, &mut text);
        text
    }

    /// Appends the decoded `bytes` to `out`.
    fn decode_into(self, bytes: &[u8], out: &mut String) {
        match self {
            Encoding::Utf8 => out.push_str(&utf8_lossy(bytes)),
            Encoding::Latin1 => out.extend(bytes.iter().map(|&b| char::from(b))),
            Encoding::Ascii => out.extend(bytes.iter().map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })),
        }
    }
}

/// Lines read from a log, stored end to end in one buffer: a read costs a few
/// allocations that are reused from read to read, not one per line.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    text: String,
    ends: Vec<usize>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    fn push_decoded(&mut self, bytes: &[u8], encoding: Encoding) {
        encoding.decode_into(bytes, &mut self.text);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes the text buffer can hold without growing.
    pub fn capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Forgets the lines but keeps the buffers for the next read.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let line = &self.text[start..end];
            start = end;
            line
        })
    }

    /// The lines as owned strings (for tests and callers that keep them).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(String::from).collect()
    }
}

/// `String::from_utf8_lossy`, with the fast validation of `str::from_utf8` for the usual
/// all-valid line (the lossy decoder walks byte by byte).
pub fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Identity of an open file: a new (device, inode) under the same path means the
/// file was replaced (rotated or deleted and recreated).
type FileId = (u64, u64);

fn file_id(meta: &fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// One followed log file.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    encoding: Encoding,
    max_line_len: usize,
    /// The open file, `None` while the path does not exist.
    file: Option<File>,
    id: Option<FileId>,
    first_line_hash: String,
    /// Offset of the first byte of the line being assembled (= persisted position).
    offset: u64,
    /// Offset of the next byte to read (`offset` + bytes already buffered/dropped).
    read_pos: u64,
    /// Bytes of the incomplete current line (at most `max_line_len`).
    pending: Vec<u8>,
    /// The current line was longer than `max_line_len`; its excess was dropped.
    pending_overflowed: bool,
    /// The current line started before we began reading (tail mode): drop it.
    skip_current_line: bool,
    truncated_lines: u64,
    rotations: u64,
}

impl LogFile {
    /// Opens `path` for following. With a `saved` position whose hash matches the
    /// current first line, reading resumes there (unless `start` is `Tail`, which
    /// always starts at the end, as fail2ban ignores saved positions for `tail`).
    pub fn open(path: &Path, start: StartAt, saved: Option<&Position>) -> io::Result<LogFile> {
        let mut log = LogFile {
            path: path.to_path_buf(),
            encoding: Encoding::Utf8,
            max_line_len: DEFAULT_MAX_LINE_LEN,
            file: None,
            id: None,
            first_line_hash: String::new(),
            offset: 0,
            read_pos: 0,
            pending: Vec::new(),
            pending_overflowed: false,
            skip_current_line: false,
            truncated_lines: 0,
            rotations: 0,
        };
        let file = File::open(path)?;
        let meta = file.metadata()?;
        log.id = Some(file_id(&meta));
        log.first_line_hash = first_line_hash(&file, log.max_line_len)?;
        let size = meta.len();
        let start_offset = match (start, saved) {
            (StartAt::Tail, _) => size,
            (StartAt::Head, Some(pos))
                if pos.first_line_hash == log.first_line_hash && pos.offset <= size =>
            {
                pos.offset
            }
            (StartAt::Head, _) => 0,
        };
        if start == StartAt::Tail && size > 0 {
            // A line still being written when we start belongs to the past.
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, size - 1)?;
            log.skip_current_line = last[0] != b'\n';
        }
        log.attach(file, start_offset)?;
        Ok(log)
    }

    /// Sets the `logencoding` used for lines read from now on.
    pub fn set_encoding(&mut self, encoding: Encoding) {
        self.encoding = encoding;
    }

    /// Sets the longest line kept (at least 1 byte).
    pub fn set_max_line_len(&mut self, max_line_len: usize) {
        self.max_line_len = max_line_len.max(1);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The position to persist: resuming there returns no line twice and skips none.
    pub fn position(&self) -> Position {
        Position {
            first_line_hash: self.first_line_hash.clone(),
            offset: self.offset,
        }
    }

    /// Lines cut to `max_line_len` so far.
    pub fn truncated_lines(&self) -> u64 {
        self.truncated_lines
    }

    /// Rotations, truncations, replacements and rewrites noticed so far.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Whether the path currently exists and is open.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Appends every complete line written since the last call to `out` (without the
    /// line end) and returns how many were appended. A line whose `\n` has not been
    /// written yet is held back until it is complete.
    pub fn read_new_lines(&mut self, out: &mut Lines) -> io::Result<usize> {
        let before = out.len();
        while self.read_some_lines(out, usize::MAX)? {}
        Ok(out.len() - before)
    }

    /// Like [`read_new_lines`](Self::read_new_lines) but reads at most about
    /// `max_bytes` of new data, so a huge backlog can be processed in slices. Returns
    /// whether more data may be waiting.
    pub fn read_some_lines(&mut self, out: &mut Lines, max_bytes: usize) -> io::Result<bool> {
        self.check_replaced(out)?;
        let Some(mut file) = self.file.take() else {
            return Ok(false);
        };
        let result = self.read_budget(&mut file, out, max_bytes);
        self.file = Some(file);
        result
    }

    fn read_budget(
        &mut self,
        file: &mut File,
        out: &mut Lines,
        max_bytes: usize,
    ) -> io::Result<bool> {
        let mut chunk = vec![0u8; CHUNK_LEN];
        let mut budget = max_bytes;
        while budget > 0 {
            let want = budget.min(CHUNK_LEN);
            let got = match file.read(&mut chunk[..want]) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            budget -= got;
            self.consume(&chunk[..got], out);
        }
        Ok(true)
    }

    /// Points the reader at `offset`, which must be the start of a line (used by the
    /// filter's seek-to-findtime on first read).
    pub fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        if let Some(file) = self.file.take() {
            self.skip_current_line = false;
            self.attach(file, offset)?;
        }
        Ok(())
    }

    /// Skips forward to the first line whose time (as told by `line_time`, `None`
    /// for lines without a recognisable time) is at least `since`, and returns the
    /// new offset. Bisects over the unread part of the file, so starting on a huge
    /// log costs a few dozen reads rather than parsing it all; this is what fail2ban
    /// does on a jail's first read (`now - findtime`). Assumes times grow along the
    /// file; lines without a time are never a stopping point.
    pub fn seek_to_time(
        &mut self,
        since: f64,
        mut line_time: impl FnMut(&str) -> Option<f64>,
    ) -> io::Result<u64> {
        let Some(file) = self.file.as_ref() else {
            return Ok(self.offset);
        };
        let size = file.metadata()?.len();
        let mut reader = LineProbe {
            file,
            encoding: self.encoding,
            max_len: self.max_line_len,
        };
        // Invariant: the answer is a line start in [low, high]; `low` is a line start.
        let mut low = self.offset;
        let mut high = size;
        const LINEAR_SCAN_BYTES: u64 = 64 * 1024;
        while high - low > LINEAR_SCAN_BYTES {
            let middle = low + (high - low) / 2;
            match reader.first_timed_line(middle, high, 16, &mut line_time)? {
                Some((_, next, time)) if time < since => low = next,
                Some((start, _, _)) => high = start,
                // No time near `middle`: narrowing is only a speed-up, the linear
                // scan below is not bounded by `high`, so guessing low is safe.
                None => high = middle,
            }
        }
        let mut position = low;
        let target = loop {
            if position >= size {
                break position;
            }
            match reader.line_at(position)? {
                Some((text, next)) => {
                    if line_time(&text).is_some_and(|time| time >= since) {
                        break position;
                    }
                    position = next;
                }
                // Incomplete last line: start there, it is newer than anything read.
                None => break position,
            }
        };
        if target > self.offset {
            self.seek_to(target)?;
        }
        Ok(self.offset)
    }

    /// Takes `file` as the current file, reading from `offset`.
    fn attach(&mut self, mut file: File, offset: u64) -> io::Result<()> {
        file.seek(SeekFrom::Start(offset))?;
        self.file = Some(file);
        self.offset = offset;
        self.read_pos = offset;
        self.pending.clear();
        self.pending_overflowed = false;
        Ok(())
    }

    /// Notices rotation, truncation, deletion and rewrites before reading.
    fn check_replaced(&mut self, out: &mut Lines) -> io::Result<()> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if let Some(file) = self.file.as_ref() {
                    // Renamed away with no successor yet: the writer may still append
                    // to it until it reopens, so keep following the old inode. Deleted
                    // for good: read what is left and let go of it, so its disk space
                    // can be freed.
                    if file.metadata()?.nlink() == 0 {
                        self.finish_current(out)?;
                        self.rotations += 1;
                    }
                }
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        if self.id != Some(file_id(&meta)) {
            if self.file.is_some() {
                self.finish_current(out)?;
                self.rotations += 1;
            }
            let file = match File::open(&self.path) {
                Ok(file) => file,
                // Vanished again between stat and open: try next time.
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(err) => return Err(err),
            };
            let opened = file.metadata()?;
            self.id = Some(file_id(&opened));
            self.first_line_hash = first_line_hash(&file, self.max_line_len)?;
            self.skip_current_line = false;
            return self.attach(file, 0);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let size = meta.len();
        if size < self.read_pos {
            // copytruncate (or `> file`): the content we were following is gone.
            self.restart_at_zero()?;
        } else if size > self.read_pos || self.first_line_hash.is_empty() {
            // Growth is the only moment a rewrite in place can be seen cheaply.
            let hash = first_line_hash(file, self.max_line_len)?;
            if !self.first_line_hash.is_empty() && hash != self.first_line_hash {
                self.restart_at_zero()?;
            } else {
                self.first_line_hash = hash;
            }
        }
        Ok(())
    }

    fn restart_at_zero(&mut self) -> io::Result<()> {
        self.rotations += 1;
        self.skip_current_line = false;
        if let Some(file) = self.file.take() {
            self.first_line_hash = first_line_hash(&file, self.max_line_len)?;
            self.attach(file, 0)?;
        }
        Ok(())
    }

    /// Reads what is left of the current (replaced or deleted) file, including a last
    /// line without `\n`, since nobody will complete it any more; then closes it.
    fn finish_current(&mut self, out: &mut Lines) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let mut chunk = vec![0u8; CHUNK_LEN];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.consume(&chunk[..n], out),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        if !self.pending.is_empty() && !self.skip_current_line {
            self.emit_pending(out);
        }
        self.pending.clear();
        self.pending_overflowed = false;
        self.skip_current_line = false;
        self.id = None;
        self.offset = 0;
        self.read_pos = 0;
        self.first_line_hash.clear();
        Ok(())
    }

    /// Splits freshly read bytes into lines.
    fn consume(&mut self, mut bytes: &[u8], out: &mut Lines) {
        while !bytes.is_empty() {
            match memchr::memchr(b'\n', bytes) {
                Some(newline) => {
                    self.read_pos += newline as u64 + 1;
                    if self.skip_current_line {
                        self.skip_current_line = false;
                    } else if self.pending.is_empty() && newline <= self.max_line_len {
                        // The whole line is in this chunk: decode it from there.
                        emit(&bytes[..newline], self.encoding, out);
                    } else {
                        self.buffer(&bytes[..newline]);
                        self.emit_pending(out);
                    }
                    self.pending.clear();
                    self.pending_overflowed = false;
                    self.offset = self.read_pos;
                    bytes = &bytes[newline + 1..];
                }
                None => {
                    self.buffer(bytes);
                    self.read_pos += bytes.len() as u64;
                    bytes = &[];
                }
            }
        }
    }

    /// Adds part of the current line to `pending`, dropping what exceeds the cap.
    fn buffer(&mut self, part: &[u8]) {
        if self.skip_current_line {
            return;
        }
        let room = self.max_line_len.saturating_sub(self.pending.len());
        if part.len() > room {
            self.pending_overflowed = true;
        }
        self.pending
            .extend_from_slice(&part[..part.len().min(room)]);
    }

    fn emit_pending(&mut self, out: &mut Lines) {
        if self.pending_overflowed {
            self.truncated_lines += 1;
        }
        emit(&self.pending, self.encoding, out);
    }
}

/// Appends one complete line (without its `\n`) to `out`.
fn emit(mut line: &[u8], encoding: Encoding, out: &mut Lines) {
    // fail2ban strips every trailing CR/LF (`rstrip('\r\n')`).
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    out.push_decoded(line, encoding);
}

/// Positioned line reads for [`LogFile::seek_to_time`], independent of the
/// sequential read position.
struct LineProbe<'a> {
    file: &'a File,
    encoding: Encoding,
    max_len: usize,
}

impl LineProbe<'_> {
    /// The complete line starting at `start` (decoded, without line end; cut to
    /// `max_len`) and the offset after it; `None` if no `\n` follows.
    fn line_at(&mut self, start: u64) -> io::Result<Option<(String, u64)>> {
        let mut line = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut position = start;
        loop {
            let got = match self.file.read_at(&mut chunk, position) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if got == 0 {
                return Ok(None);
            }
            let newline = chunk[..got].iter().position(|&b| b == b'\n');
            let part = &chunk[..newline.unwrap_or(got)];
            let room = self.max_len.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            if let Some(newline) = newline {
                let next = position + newline as u64 + 1;
                while line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some((self.encoding.decode(&line), next)));
            }
            position += got as u64;
        }
    }

    /// From the first line start at or after `from` (and before `limit`), the first
    /// of up to `tries` lines that carries a time: (line start, next line start, time).
    fn first_timed_line(
        &mut self,
        from: u64,
        limit: u64,
        tries: usize,
        line_time: &mut impl FnMut(&str) -> Option<f64>,
    ) -> io::Result<Option<(u64, u64, f64)>> {
        let mut start = from;
        if from > 0 {
            // Move to the start of the next line unless `from` already is one.
            let mut previous = [0u8; 1];
            self.file.read_exact_at(&mut previous, from - 1)?;
            if previous[0] != b'\n' {
                match self.line_at(from)? {
                    Some((_, next)) => start = next,
                    None => return Ok(None),
                }
            }
        }
        for _ in 0..tries {
            if start >= limit {
                return Ok(None);
            }
            let Some((text, next)) = self.line_at(start)? else {
                return Ok(None);
            };
            if let Some(time) = line_time(&text) {
                return Ok(Some((start, next, time)));
            }
            start = next;
        }
        Ok(None)
    }
}

/// SHA-1 hex digest of the first line of `file` including its `\n`, or `""` if the
/// first line is not complete yet (or longer than `max_len`, which we then treat as
/// "not known yet" rather than reading it whole).
fn first_line_hash(file: &File, max_len: usize) -> io::Result<String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let got = match file.read_at(&mut chunk, line.len() as u64) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if got == 0 {
            return Ok(String::new());
        }
        if let Some(newline) = chunk[..got].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&chunk[..=newline]);
            return Ok(sha1_hex(&line));
        }
        line.extend_from_slice(&chunk[..got]);
        if line.len() > max_len {
            return Ok(String::new());
        }
    }
}

/// SHA-1 (FIPS 180-4) as lowercase hex. Written out here because the only use is
/// fingerprinting a log's first line, which does not justify a new dependency.
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(add);
        }
    }
    h.iter().map(|word| format!("{word:08x}")).collect()
}

/// How file changes are noticed (fail2ban's `backend`, minus `systemd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// inotify where available, else polling.
    Auto,
    /// `stat` every poll interval.
    Polling,
    /// Linux inotify on the files' directories.
    Inotify,
}

impl Backend {
    /// Parses a `backend` value (its name only; arguments in `[...]` are ignored).
    /// `pyinotify` is accepted as fail2ban's name for inotify.
    pub fn parse(spec: &str) -> Option<Backend> {
        let name = spec.split('[').next().unwrap_or("").trim();
        match name.to_ascii_lowercase().as_str() {
            "auto" => Some(Backend::Auto),
            "polling" => Some(Backend::Polling),
            "inotify" | "pyinotify" => Some(Backend::Inotify),
            _ => None,
        }
    }
}

/// What polling compares to decide that a file may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatSnapshot {
    id: FileId,
    size: u64,
    mtime: (i64, i64),
}

fn snapshot(path: &Path) -> Option<StatSnapshot> {
    let meta = fs::metadata(path).ok()?;
    Some(StatSnapshot {
        id: file_id(&meta),
        size: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
    })
}

/// inotify state: one watch per directory holding a followed file, and the names
/// in each directory we care about (other files in `/var/log` must not wake us).
struct InotifyWatch {
    inotify: inotify::Inotify,
    dirs: HashMap<inotify::WatchDescriptor, (PathBuf, HashSet<OsString>)>,
    buffer: Vec<u8>,
}

/// Waits until any of many followed files may have changed.
pub struct Watcher {
    backend: Backend,
    poll_interval: Duration,
    paths: Vec<PathBuf>,
    snapshots: HashMap<PathBuf, Option<StatSnapshot>>,
    inotify: Option<InotifyWatch>,
    /// Files whose directory could not be watched (missing directory, watch limit):
    /// they are polled even in inotify mode.
    unwatched: HashSet<PathBuf>,
}

impl Watcher {
    /// Creates a watcher. `Auto` uses inotify and falls back to polling if inotify
    /// cannot be initialised; an explicit `Inotify` fails instead.
    pub fn new(backend: Backend, poll_interval: Duration) -> io::Result<Watcher> {
        let inotify = match backend {
            Backend::Polling => None,
            Backend::Inotify => Some(inotify::Inotify::init()?),
            Backend::Auto => inotify::Inotify::init().ok(),
        };
        Ok(Watcher {
            backend: if inotify.is_some() {
                Backend::Inotify
            } else {
                Backend::Polling
            },
            poll_interval: poll_interval.max(Duration::from_millis(1)),
            paths: Vec::new(),
            snapshots: HashMap::new(),
            inotify: inotify.map(|inotify| InotifyWatch {
                inotify,
                dirs: HashMap::new(),
                buffer: vec![0u8; 64 * 1024],
            }),
            unwatched: HashSet::new(),
        })
    }

    /// The backend in effect (`Inotify` or `Polling`, never `Auto`).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts watching `path` (a file that may not exist yet).
    pub fn add(&mut self, path: &Path) {
        if self.paths.iter().any(|p| p == path) {
            return;
        }
        self.paths.push(path.to_path_buf());
        self.snapshots.insert(path.to_path_buf(), snapshot(path));
        if self.inotify.is_some() {
            let mut watched = self.watch_parent(path);
            // A symlinked log changes where its target lives: watch that too.
            if let Ok(target) = fs::canonicalize(path) {
                if target != path {
                    watched &= self.watch_parent(&target);
                }
            }
            if !watched {
                self.unwatched.insert(path.to_path_buf());
            }
        }
    }

    /// Stops watching `path`. (Directory watches stay until the watcher is dropped;
    /// events for names no longer followed are ignored.)
    pub fn remove(&mut self, path: &Path) {
        self.paths.retain(|p| p != path);
        self.snapshots.remove(path);
        self.unwatched.remove(path);
        if let Some(watch) = self.inotify.as_mut() {
            let name = path.file_name().map(|n| n.to_os_string());
            if let (Some(dir), Some(name)) = (parent_dir(path), name) {
                for (watched_dir, names) in watch.dirs.values_mut() {
                    if *watched_dir == dir {
                        names.remove(&name);
                    }
                }
            }
        }
    }

    fn watch_parent(&mut self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (parent_dir(path), path.file_name()) else {
            return false;
        };
        let Some(watch) = self.inotify.as_mut() else {
            return false;
        };
        use inotify::WatchMask;
        let mask = WatchMask::MODIFY
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::ATTRIB
            | WatchMask::CLOSE_WRITE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        match watch.inotify.watches().add(&dir, mask) {
            Ok(wd) => {
                let entry = watch
                    .dirs
                    .entry(wd)
                    .or_insert_with(|| (dir.clone(), HashSet::new()));
                entry.1.insert(name.to_os_string());
                true
            }
            Err(_) => false,
        }
    }

    /// Blocks until some followed file may have changed (returns `true`) or
    /// `timeout` passes (returns `false`). Spurious `true` is possible; callers
    /// simply read all files, which is cheap when nothing is new.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let polled_changed = self.poll_changed();
            if polled_changed {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let remaining = deadline - now;
            match self.inotify.as_mut() {
                Some(watch) => {
                    // Files we cannot watch are polled, so bound the sleep then.
                    let slice = if self.unwatched.is_empty() {
                        remaining
                    } else {
                        remaining.min(self.poll_interval)
                    };
                    if wait_inotify(watch, slice) {
                        // Keep polling snapshots in step so they do not fire later.
                        self.poll_changed();
                        return true;
                    }
                }
                None => std::thread::sleep(remaining.min(self.poll_interval)),
            }
        }
    }

    /// Re-stats the polled files; true if any changed since the last look.
    fn poll_changed(&mut self) -> bool {
        let polled: Vec<PathBuf> = if self.inotify.is_some() {
            self.unwatched.iter().cloned().collect()
        } else {
            self.paths.clone()
        };
        let mut changed = false;
        for path in polled {
            let now = snapshot(&path);
            let previous = self.snapshots.insert(path, now);
            if previous != Some(now) {
                changed = true;
            }
        }
        if self.inotify.is_some() {
            // A directory created since `add` can be watched now. The file may have
            // changed between the stat above and the new watch, so report a
            // (possibly spurious) change if it exists.
            let retry: Vec<PathBuf> = self.unwatched.iter().cloned().collect();
            for path in retry {
                if self.watch_parent(&path) {
                    self.unwatched.remove(&path);
                    changed |= path.exists();
                }
            }
        }
        changed
    }
}

fn parent_dir(path: &Path) -> Option<PathBuf> {
    match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Some(PathBuf::from(".")),
        Some(dir) => Some(dir.to_path_buf()),
        None => None,
    }
}

/// Waits up to `timeout` for an inotify event about a followed name.
fn wait_inotify(watch: &mut InotifyWatch, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let millis = remaining.as_millis().min(i32::MAX as u128) as i32;
        let mut pollfd = libc::pollfd {
            fd: watch.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pollfd` is a valid, initialised array of one element that lives
        // for the duration of the call.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // poll failing is unexpected; report "maybe changed" so files get read.
            return true;
        }
        if ready == 0 {
            return false;
        }
        let mut relevant = false;
        match watch.inotify.read_events(&mut watch.buffer) {
            Ok(events) => {
                for event in events {
                    relevant |= match (&event.name, watch.dirs.get(&event.wd)) {
                        (Some(name), Some((_, names))) => names.contains(*name),
                        // Overflow, directory itself moved/deleted, or unknown watch.
                        _ => true,
                    };
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
        if relevant {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(
            sha1_hex(&million_a),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn encodings_replace_invalid_bytes() {
        assert_eq!(Encoding::Utf8.decode(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(Encoding::Latin1.decode(b"caf\xe9"), "café");
        assert_eq!(Encoding::Ascii.decode(b"caf\xe9"), "caf\u{fffd}");
        assert_eq!(Encoding::from_name("UTF-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_name("auto"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_name("ISO-8859-1"), Some(Encoding::Latin1));
        assert_eq!(Encoding::from_name("klingon"), None);
    }

    #[test]
    fn backend_names() {
        assert_eq!(Backend::parse("auto"), Some(Backend::Auto));
        assert_eq!(Backend::parse("pyinotify"), Some(Backend::Inotify));
        assert_eq!(Backend::parse("Polling"), Some(Backend::Polling));
        assert_eq!(Backend::parse("polling[x=1]"), Some(Backend::Polling));
        assert_eq!(Backend::parse("systemd"), None);
        assert_eq!(StartAt::parse("tail"), Some(StartAt::Tail));
        assert_eq!(StartAt::parse("middle"), None);
    }
}
