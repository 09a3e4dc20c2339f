//! `ironban regex-check` against fail2ban-regex's own outputs: the oracle reports (byte for
//! byte but the timing line) and the annotated upstream samples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream")
}

fn regex_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ironban"))
        .env("TZ", "UTC")
        .arg("-c")
        .arg(shared().join("config"))
        .arg("regex-check")
        .args(args)
        .output()
        .expect("run ironban regex-check")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs one oracle case: `fail2ban-regex -c CONFIG SAMPLES/<log> <filter>`.
fn assert_same_as_oracle(log: &str, filter: &str, report: &str) {
    let samples = shared().join("samples/logs");
    let log_path = samples.join(log);
    let out = regex_check(&[log_path.to_str().expect("utf-8 path"), filter]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out).replace(samples.to_str().expect("utf-8 path"), "{SAMPLES}");
    let without_timing: String = text
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("[processed in "))
        .collect();
    let expected =
        std::fs::read_to_string(shared().join("oracle/regex").join(report)).expect("oracle report");
    assert_eq!(without_timing, expected);
    assert!(text.contains("\n[processed in "), "timing line missing");
}

#[test]
fn sshd_report_matches_oracle() {
    assert_same_as_oracle("sshd", "sshd", "sshd.report.txt");
}

#[test]
fn postfix_report_matches_oracle() {
    assert_same_as_oracle("postfix", "postfix", "postfix.report.txt");
}

#[test]
fn kerio_report_matches_oracle() {
    assert_same_as_oracle("kerio", "kerio", "kerio.report.txt");
}

#[test]
fn dovecot_report_matches_oracle() {
    assert_same_as_oracle("dovecot", "dovecot", "dovecot.report.txt");
}

#[test]
fn sendmail_reject_mode_extra_report_matches_oracle() {
    assert_same_as_oracle(
        "sendmail-reject",
        "sendmail-reject[mode=extra]",
        "sendmail-reject_mode_extra_.report.txt",
    );
}

/// Every `# failJSON:` line of the kerio sample annotates the next line: `--json` must give
/// exactly those lines, with the annotated host and time.
#[test]
fn json_on_kerio_sample_gives_every_annotated_failure() {
    let path = shared().join("samples/logs/kerio");
    let text = std::fs::read_to_string(&path).expect("kerio sample");
    let mut expected = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(payload) = line.strip_prefix("# failJSON:") {
            let note: serde_json::Value = serde_json::from_str(payload).expect("annotation");
            if note["match"] == true {
                let time = chrono::NaiveDateTime::parse_from_str(
                    note["time"].as_str().expect("time"),
                    "%Y-%m-%dT%H:%M:%S",
                )
                .expect("annotated time")
                .and_utc()
                .timestamp() as f64;
                let host = note["host"].as_str().expect("host").to_string();
                expected.push((i as u64 + 2, host, time));
            }
        }
    }
    assert_eq!(expected.len(), 15);

    let out = regex_check(&["--json", path.to_str().expect("utf-8 path"), "kerio"]);
    assert_eq!(out.status.code(), Some(0));
    let got: Vec<(u64, String, f64)> = stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
            assert_eq!(v["fid"], v["ip"], "{l}");
            (
                v["line"].as_u64().expect("line"),
                v["ip"].as_str().expect("ip").to_string(),
                v["time"].as_f64().expect("time"),
            )
        })
        .collect();
    assert_eq!(got, expected);
}
