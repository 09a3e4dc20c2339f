//! regex-check reads files in batches and searches ahead on a second thread; the results must
//! be those of the plain one-line-at-a-time path (used for log text given on the command
//! line), across batch boundaries, in report and `--json` form.

use std::path::Path;
use std::process::Command;

mod common;

fn regex_check(args: &[&str]) -> String {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/config");
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(conf)
        .arg("regex-check")
        // No DNS look-ups of the sample's host names: only matching is compared.
        .arg("--usedns=no")
        .args(args)
        .output()
        .expect("run regex-check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn file_searched_ahead_equals_line_by_line() {
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/samples/logs/sshd"),
    )
    .expect("read sshd sample");
    let lines: Vec<&str> = sample
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // Over one batch (1024 lines), under the 128 KiB limit of one command-line argument.
    let mut text = String::new();
    let mut count = 0;
    while text.len() < 120_000 {
        text.push_str(lines[count % lines.len()]);
        text.push('\n');
        count += 1;
    }
    assert!(count > 1024, "only {count} lines");
    let dir = common::TempDir::new("ahead");
    let log = dir.file("sshd.log");
    std::fs::write(&log, &text).expect("write log");
    let log = log.to_str().expect("utf-8 path");
    let body = text.trim_end_matches('\n');

    let from_file = regex_check(&["--json", log, "sshd"]);
    let from_text = regex_check(&["--json", body, "sshd"]);
    assert!(
        from_file.lines().count() > 100,
        "few failures:\n{from_file}"
    );
    assert_eq!(from_file, from_text);

    let lines_of = |report: &str| {
        report
            .lines()
            .filter(|l| l.starts_with("Lines:") || l.contains(") ") && l.contains('|'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let report_file = regex_check(&[log, "sshd"]);
    let report_text = regex_check(&[body, "sshd"]);
    assert!(report_file.contains("Lines: "), "{report_file}");
    assert_eq!(lines_of(&report_file), lines_of(&report_text));
}
