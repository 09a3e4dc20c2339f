//! Hostile log lines against real upstream filters: no panic, no hang, bounded time.

use std::path::Path;
use std::time::{Duration, Instant};

use ironban::filter::{Filter, FilterOptions, Mode, MAX_LINE_BYTES};

const NOW: f64 = 1_124_013_600.0;

fn upstream_filter(spec: &str) -> Filter {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/config");
    let stream = ironban::config::filter_stream(&conf, spec, "jail", &[]).expect("filter stream");
    let opts = FilterOptions::from_stream(&stream);
    Filter::new(&opts, Mode::server()).expect("filter compiles")
}

/// Run `line` through the filter and return how long it took.
fn timed(filter: &mut Filter, line: &str) -> (Duration, usize) {
    let start = Instant::now();
    let result = filter.process_line(line, NOW);
    (start.elapsed(), result.failures.len())
}

#[test]
fn invalid_utf8_and_nul_bytes() {
    let mut sshd = upstream_filter("sshd");
    let bytes = b"Jun 21 16:47:48 host sshd[1]: Failed password for r\xffo\xfe\0t from 192.0.2.7 port 22 ssh2";
    let line = String::from_utf8_lossy(bytes);
    let (_, n) = timed(&mut sshd, &line);
    assert_eq!(n, 1, "lossily decoded line still matches");
    let (_, n) = timed(
        &mut sshd,
        "Jun 21 16:47:48 host sshd[1]: \0\0\0 from \u{0}192.0.2.7\0",
    );
    assert_eq!(n, 0);
    let (_, n) = timed(&mut sshd, "\0\u{fffd}\u{202e}\u{1c}");
    assert_eq!(n, 0);
}

#[test]
fn one_megabyte_line_is_truncated_quickly() {
    let mut sshd = upstream_filter("sshd");
    let line = format!(
        "Jun 21 16:47:48 host sshd[1]: Failed password for {} from 192.0.2.7",
        "x".repeat(1 << 20)
    );
    let start = Instant::now();
    let result = sshd.process_line(&line, NOW);
    assert!(result.truncated);
    assert!(result.failures.is_empty(), "the host was cut off");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // A line just under the limit is processed whole.
    let ok = format!(
        "Jun 21 16:47:48 host sshd[1]: Failed password for {} from 192.0.2.7",
        "x".repeat(MAX_LINE_BYTES - 200)
    );
    let result = sshd.process_line(&ok, NOW);
    assert!(!result.truncated);
    assert_eq!(result.failures.len(), 1);
}

#[test]
fn crafted_backtracking_lines_finish() {
    // Long runs of tokens that the prefix and user parts of the regexes can split in many ways.
    let cases = [
        (
            "sshd",
            format!(
                "Jun 21 16:47:48 host sshd[1]: Failed password for {}",
                "a ".repeat(20_000)
            ),
        ),
        (
            "sshd",
            format!(
                "Jun 21 16:47:48 host sshd[1]: {}",
                "Invalid user x from ".repeat(3_000)
            ),
        ),
        (
            "sshd[mode=aggressive]",
            format!("Jun 21 16:47:48 {}", "sshd[1]: ".repeat(7_000)),
        ),
        (
            "postfix",
            format!(
                "Jun 21 16:47:48 host postfix/smtpd[1]: NOQUEUE: reject: RCPT from {}",
                "unknown[".repeat(7_000)
            ),
        ),
        (
            "apache-auth",
            format!(
                "[Sun Jun 21 16:47:48 2005] [error] [client 192.0.2.1] {}",
                "user ".repeat(12_000)
            ),
        ),
    ];
    for (spec, line) in cases {
        let mut f = upstream_filter(spec);
        let (took, _) = timed(&mut f, &line);
        eprintln!("{spec}: {} bytes in {took:?}", line.len());
        assert!(took < Duration::from_secs(20), "{spec}: {took:?}");
    }
}
