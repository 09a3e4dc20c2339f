//! Parity of our `filter.d/kerio.conf` with upstream fail2ban's: on upstream's annotated Kerio
//! sample log both filters must find the same failures (line, address, time), and exactly the
//! lines upstream annotates as failures. This is what makes migration scenario 3 ("the
//! fail2ban [kerio] jail works unchanged") true.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn upstream() -> PathBuf {
    repo().join("../shared/fail2ban-upstream")
}

/// (line number, address, time) of every failure `regex-check --json` reports.
fn failures(conf: &Path, log: &Path) -> Vec<(u64, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(conf)
        .arg("regex-check")
        .arg("--json")
        .arg(log)
        .arg("kerio")
        .output()
        .expect("run ironban regex-check");
    assert!(
        out.status.success(),
        "regex-check with {} failed: {}",
        conf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let json: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line}: {e}"));
            (
                json["line"].as_u64().unwrap_or_default(),
                json["ip"].as_str().unwrap_or_default().to_owned(),
                json["time"].to_string(),
            )
        })
        .collect()
}

/// Line numbers (1-based) that upstream annotates with `"match": true`: the line after each
/// such failJSON comment.
fn annotated_failure_lines(log: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(log).expect("read upstream kerio sample");
    let mut lines = Vec::new();
    let mut expect_next = false;
    for (index, line) in text.lines().enumerate() {
        if expect_next {
            lines.push(index as u64 + 1);
            expect_next = false;
        }
        if line.starts_with("# failJSON:") && line.contains("\"match\": true") {
            expect_next = true;
        }
    }
    lines
}

#[test]
fn our_kerio_filter_finds_what_upstreams_finds() {
    let log = upstream().join("samples/logs/kerio");
    let ours = failures(&repo(), &log);
    let theirs = failures(&upstream().join("config"), &log);
    assert!(!ours.is_empty(), "our kerio filter found nothing");
    assert_eq!(ours, theirs, "ours (left) differ from upstream's (right)");

    let annotated = annotated_failure_lines(&log);
    let found: Vec<u64> = ours.iter().map(|(line, _, _)| *line).collect();
    assert_eq!(
        found, annotated,
        "failures on other lines than upstream annotates"
    );
    assert!(ours
        .iter()
        .all(|(_, ip, time)| !ip.is_empty() && time != "null"));
}
