//! Following real files: appends, partial lines, rotation, truncation, restarts.

mod common;

use common::TempDir;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ironban::logsource::{sha1_hex, Backend, Encoding, Lines, LogFile, Position, StartAt, Watcher};

fn append(path: &Path, text: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text).expect("append");
}

fn read(log: &mut LogFile) -> Vec<String> {
    let mut out = Lines::new();
    log.read_new_lines(&mut out).expect("read lines");
    out.to_vec()
}

#[test]
fn appended_lines_are_returned_once() {
    let dir = TempDir::new("append");
    let path = dir.file("a.log");
    append(&path, b"one\ntwo\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log), ["one", "two"]);
    assert!(read(&mut log).is_empty());
    append(&path, b"three\r\n\nfour\n");
    assert_eq!(read(&mut log), ["three", "", "four"]);
    assert_eq!(log.position().offset, fs::metadata(&path).unwrap().len());
}

#[test]
fn partial_line_is_held_until_its_newline() {
    let dir = TempDir::new("partial");
    let path = dir.file("a.log");
    append(&path, b"complete\nhalf of ");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log), ["complete"]);
    // The persisted position must not include the incomplete line.
    assert_eq!(log.position().offset, 9);
    append(&path, b"a line");
    assert!(read(&mut log).is_empty());
    append(&path, b"\nnext\n");
    assert_eq!(read(&mut log), ["half of a line", "next"]);
}

#[test]
fn tail_starts_at_end_and_skips_line_in_progress() {
    let dir = TempDir::new("tail");
    let path = dir.file("a.log");
    append(&path, b"old\nstill being writ");
    let mut log = LogFile::open(&path, StartAt::Tail, None).expect("open");
    assert!(read(&mut log).is_empty());
    append(&path, b"ten\nnew\n");
    assert_eq!(read(&mut log), ["new"]);
}

#[test]
fn rename_and_create_finishes_old_file_then_reads_new_one() {
    let dir = TempDir::new("rotate");
    let path = dir.file("a.log");
    append(&path, b"a1\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log), ["a1"]);
    // The writer appends a last line to the old file after the rename.
    fs::rename(&path, dir.file("a.log.1")).expect("rename");
    append(&dir.file("a.log.1"), b"a2\n");
    // Renamed away without successor: keep following the old inode.
    assert_eq!(read(&mut log), ["a2"]);
    append(&dir.file("a.log.1"), b"a3\n");
    append(&path, b"b1\nb2\n");
    assert_eq!(read(&mut log), ["a3", "b1", "b2"]);
    assert_eq!(log.rotations(), 1);
    append(&path, b"b3\n");
    assert_eq!(read(&mut log), ["b3"]);
}

#[test]
fn copytruncate_restarts_at_zero() {
    let dir = TempDir::new("copytruncate");
    let path = dir.file("a.log");
    append(&path, b"first line that is long\nsecond\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log).len(), 2);
    fs::copy(&path, dir.file("a.log.1")).expect("copy");
    File::create(&path).expect("truncate");
    assert!(read(&mut log).is_empty());
    append(&path, b"after\n");
    assert_eq!(read(&mut log), ["after"]);
    assert!(log.rotations() >= 1);
}

#[test]
fn truncate_then_regrow_past_offset_is_seen_by_first_line_hash() {
    let dir = TempDir::new("regrow");
    let path = dir.file("a.log");
    append(&path, b"old first\nold second\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log).len(), 2);
    // Truncated and refilled between two reads, ending up longer than before.
    fs::write(&path, b"new first line\nnew second line\nnew third\n").expect("rewrite");
    assert_eq!(
        read(&mut log),
        ["new first line", "new second line", "new third"]
    );
}

#[test]
fn delete_and_recreate() {
    let dir = TempDir::new("delete");
    let path = dir.file("a.log");
    append(&path, b"x1\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log), ["x1"]);
    fs::remove_file(&path).expect("delete");
    assert!(read(&mut log).is_empty());
    assert!(!log.is_open());
    assert!(read(&mut log).is_empty());
    append(&path, b"y1\n");
    assert_eq!(read(&mut log), ["y1"]);
    assert!(log.is_open());
}

#[test]
fn restart_from_saved_position_loses_and_repeats_nothing() {
    let dir = TempDir::new("resume");
    let path = dir.file("a.log");
    append(&path, b"l1\nl2\nl3 part");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log), ["l1", "l2"]);
    let saved = log.position();
    assert_eq!(saved.first_line_hash, sha1_hex(b"l1\n"));
    drop(log);
    append(&path, b"ial\nl4\n");
    let mut log = LogFile::open(&path, StartAt::Head, Some(&saved)).expect("reopen");
    assert_eq!(read(&mut log), ["l3 partial", "l4"]);
}

#[test]
fn saved_position_of_another_file_is_ignored() {
    let dir = TempDir::new("resume-other");
    let path = dir.file("a.log");
    append(&path, b"l1\nl2\n");
    let saved = Position {
        first_line_hash: sha1_hex(b"something else\n"),
        offset: 3,
    };
    let mut log = LogFile::open(&path, StartAt::Head, Some(&saved)).expect("open");
    assert_eq!(read(&mut log), ["l1", "l2"]);
    // Tail ignores a matching saved position too.
    let saved = Position {
        first_line_hash: sha1_hex(b"l1\n"),
        offset: 0,
    };
    let mut log = LogFile::open(&path, StartAt::Tail, Some(&saved)).expect("open");
    assert!(read(&mut log).is_empty());
}

#[test]
fn first_line_hash_is_empty_until_first_line_completes() {
    let dir = TempDir::new("hash");
    let path = dir.file("a.log");
    append(&path, b"no newline yet");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(log.position().first_line_hash, "");
    append(&path, b"\n");
    assert_eq!(read(&mut log), ["no newline yet"]);
    assert_eq!(
        log.position().first_line_hash,
        sha1_hex(b"no newline yet\n")
    );
}

#[test]
fn huge_line_is_truncated_and_counted() {
    let dir = TempDir::new("huge");
    let path = dir.file("a.log");
    let mut log = {
        append(&path, b"");
        LogFile::open(&path, StartAt::Head, None).expect("open")
    };
    log.set_max_line_len(1000);
    // 5 MB without a newline, in pieces: memory must stay bounded meanwhile.
    let piece = vec![b'z'; 1 << 20];
    for _ in 0..5 {
        append(&path, &piece);
        assert!(read(&mut log).is_empty());
    }
    append(&path, b"\nshort\n");
    let lines = read(&mut log);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), 1000);
    assert_eq!(lines[1], "short");
    assert_eq!(log.truncated_lines(), 1);
}

#[test]
fn lines_across_read_chunks_and_at_the_length_cap() {
    let dir = TempDir::new("chunks");
    let path = dir.file("a.log");
    // Lengths around the cap (100) and lines that straddle the 64 KiB read chunks.
    let mut text = Vec::new();
    let mut expected = Vec::new();
    let mut over_cap = 0u64;
    for i in 0..6_000usize {
        let len = [0, 1, 99, 100, 101, 250, 37][i % 7];
        let line: String = (0..len)
            .map(|k| char::from(b'a' + ((i + k) % 26) as u8))
            .collect();
        text.extend_from_slice(line.as_bytes());
        let end: &[u8] = if i % 5 == 0 { b"\r\n" } else { b"\n" };
        text.extend_from_slice(end);
        // The cap applies to the bytes before `\n`, a CR included.
        over_cap += u64::from(len + end.len() - 1 > 100);
        expected.push(line.chars().take(100).collect::<String>());
    }
    append(&path, &text);
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    log.set_max_line_len(100);
    let mut out = Lines::new();
    while log.read_some_lines(&mut out, 10_000).expect("read") {}
    assert_eq!(out.to_vec(), expected);
    assert_eq!(log.truncated_lines(), over_cap);
}

#[test]
fn invalid_bytes_are_replaced_and_encoding_applies() {
    let dir = TempDir::new("enc");
    let path = dir.file("a.log");
    append(&path, b"bad \xff byte\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    assert_eq!(read(&mut log), ["bad \u{fffd} byte"]);
    log.set_encoding(Encoding::Latin1);
    append(&path, b"caf\xe9\n");
    assert_eq!(read(&mut log), ["café"]);
}

#[test]
fn read_some_lines_respects_budget() {
    let dir = TempDir::new("budget");
    let path = dir.file("a.log");
    let mut text = Vec::new();
    for i in 0..10_000 {
        text.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    append(&path, &text);
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    let mut out = Lines::new();
    let more = log.read_some_lines(&mut out, 1000).expect("read");
    assert!(more);
    assert!(out.len() < 200, "read {} lines", out.len());
    log.read_new_lines(&mut out).expect("read rest");
    assert_eq!(out.len(), 10_000);
    assert_eq!(out.get(9_999), Some("line 9999"));
    assert_eq!(out.get(10_000), None);
    let all = out.to_vec();
    assert_eq!(all[0], "line 0");
    assert_eq!(all.len(), out.iter().count());
}

#[test]
fn missing_file_cannot_be_opened() {
    let dir = TempDir::new("missing");
    assert!(LogFile::open(&dir.file("nope.log"), StartAt::Head, None).is_err());
}

fn wake_latency(backend: Backend) -> (bool, Duration) {
    let dir = TempDir::new("wake");
    let path = dir.file("w.log");
    append(&path, b"start\n");
    let mut watcher = Watcher::new(backend, Duration::from_millis(50)).expect("watcher");
    watcher.add(&path);
    // Nothing happened yet: waits out the timeout.
    assert!(!watcher.wait(Duration::from_millis(30)));
    let writer_path = path.clone();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        append(&writer_path, b"more\n");
    });
    let start = Instant::now();
    let woke = watcher.wait(Duration::from_secs(5));
    let latency = start.elapsed();
    handle.join().expect("writer");
    (woke, latency)
}

#[test]
fn inotify_wakes_within_100ms() {
    let (woke, latency) = wake_latency(Backend::Inotify);
    assert!(woke);
    // The write happens 100 ms after waiting starts; the wake-up must follow promptly.
    assert!(
        latency < Duration::from_millis(200),
        "woke after {latency:?}"
    );
}

#[test]
fn polling_wakes_after_change() {
    let (woke, latency) = wake_latency(Backend::Polling);
    assert!(woke);
    assert!(
        latency < Duration::from_millis(400),
        "woke after {latency:?}"
    );
}

#[test]
fn inotify_ignores_other_files_and_sees_rotation() {
    let dir = TempDir::new("inotify-names");
    let path = dir.file("watched.log");
    append(&path, b"x\n");
    let mut watcher = Watcher::new(Backend::Auto, Duration::from_millis(50)).expect("watcher");
    assert_eq!(watcher.backend(), Backend::Inotify);
    watcher.add(&path);
    append(&dir.file("other.log"), b"noise\n");
    assert!(!watcher.wait(Duration::from_millis(150)));
    fs::rename(&path, dir.file("watched.log.1")).expect("rename");
    assert!(watcher.wait(Duration::from_millis(500)));
    // Drain the rename's remaining events, then a creation must wake us.
    while watcher.wait(Duration::from_millis(20)) {}
    append(&path, b"new\n");
    assert!(watcher.wait(Duration::from_millis(500)));
}

#[test]
fn watcher_polls_file_whose_directory_is_missing() {
    let dir = TempDir::new("nodir");
    let sub = dir.file("later");
    let path = sub.join("x.log");
    let mut watcher = Watcher::new(Backend::Inotify, Duration::from_millis(20)).expect("watcher");
    watcher.add(&path);
    assert!(!watcher.wait(Duration::from_millis(60)));
    fs::create_dir(&sub).expect("mkdir");
    append(&path, b"hello\n");
    assert!(watcher.wait(Duration::from_millis(500)));
}

/// `t=<seconds> ...` lines; anything else has no time.
fn time_of(line: &str) -> Option<f64> {
    line.strip_prefix("t=")?.split(' ').next()?.parse().ok()
}

#[test]
fn seek_to_time_bisects_to_first_recent_line() {
    let dir = TempDir::new("seek");
    let path = dir.file("a.log");
    let mut text = String::new();
    for t in 0..200_000 {
        text.push_str(&format!("t={t} failure from 10.0.0.{}\n", t % 250));
        if t % 7 == 0 {
            text.push_str("  continuation without a time\n");
        }
    }
    text.push_str("t=200000 partial");
    append(&path, text.as_bytes());
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    let mut probes = 0;
    let offset = log
        .seek_to_time(150_000.0, |line| {
            probes += 1;
            time_of(line)
        })
        .expect("seek");
    assert!(offset > 0);
    // Bisection: a few hundred parsed lines, not 230 000.
    assert!(probes < 5_000, "{probes} lines parsed");
    let mut out = Lines::new();
    log.read_some_lines(&mut out, 200).expect("read");
    assert_eq!(out.get(0), Some("t=150000 failure from 10.0.0.0"));
    // Already past: seeking to an older time does not move back.
    let before = log.position().offset;
    assert_eq!(log.seek_to_time(10.0, time_of).expect("seek"), before);
    // Nothing recent enough: positioned at the incomplete last line.
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    log.seek_to_time(1e12, time_of).expect("seek");
    assert!(read(&mut log).is_empty());
    append(&path, b"\n");
    assert_eq!(read(&mut log), ["t=200000 partial"]);
}

#[test]
fn seek_to_time_on_small_and_untimed_files() {
    let dir = TempDir::new("seek-small");
    let path = dir.file("a.log");
    append(&path, b"t=1 a\nno time\nt=5 b\nt=9 c\n");
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    log.seek_to_time(4.0, time_of).expect("seek");
    assert_eq!(read(&mut log), ["t=5 b", "t=9 c"]);
    let untimed = dir.file("b.log");
    append(&untimed, b"x\ny\n");
    let mut log = LogFile::open(&untimed, StartAt::Head, None).expect("open");
    log.seek_to_time(4.0, time_of).expect("seek");
    assert!(read(&mut log).is_empty());
}

#[test]
fn reading_throughput() {
    let dir = TempDir::new("speed");
    let path = dir.file("a.log");
    let line =
        "Nov 24 16:00:00 host sshd[1234]: Failed password for root from 10.1.2.3 port 22 ssh2\n";
    let text = line.repeat(200_000);
    append(&path, text.as_bytes());
    let mut log = LogFile::open(&path, StartAt::Head, None).expect("open");
    let started = Instant::now();
    let mut out = Lines::new();
    log.read_new_lines(&mut out).expect("read");
    let elapsed = started.elapsed();
    assert_eq!(out.len(), 200_000);
    println!(
        "read {} MB, {} lines in {:?} ({:.0} MB/s)",
        text.len() / 1_000_000,
        out.len(),
        elapsed,
        text.len() as f64 / 1e6 / elapsed.as_secs_f64()
    );
}
