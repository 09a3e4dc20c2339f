//! `ironban regex-check` argument forms, errors, machine output and hostile input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/config")
}

fn regex_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ironban"))
        .env("TZ", "UTC")
        .arg("-c")
        .arg(shared_config())
        .arg("regex-check")
        .args(args)
        .output()
        .expect("run ironban regex-check")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A log file in a temporary directory of its own, removed with it.
struct TempLog {
    _dir: common::TempDir,
    path: PathBuf,
}

impl TempLog {
    fn to_str(&self) -> Option<&str> {
        self.path.to_str()
    }
}

fn temp_log(name: &str, body: &[u8]) -> TempLog {
    let dir = common::TempDir::new("regexcheck");
    let path = dir.file(name);
    let mut file = std::fs::File::create(&path).expect("temp log");
    file.write_all(body).expect("write temp log");
    TempLog { _dir: dir, path }
}

const FAILED: &str =
    "Jan 12 10:00:01 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2";

#[test]
fn missing_regex_argument_exits_255_with_fail2ban_message() {
    let out = regex_check(&["only-a-log"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR: provide both <LOG> and <REGEX>."));
}

#[test]
fn print_no_and_all_are_mutually_exclusive() {
    let out = regex_check(&["--print-no-missed", "--print-all-missed", FAILED, "sshd"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--print-no-missed and --print-all-missed are mutually exclusive"));
}

#[test]
fn literal_regex_without_failure_id_is_an_error() {
    let out = regex_check(&[FAILED, "Failed password"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stdout(&out).contains("ERROR: No failure-id group in 'Failed password'"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn literal_line_and_regex_report() {
    let out = regex_check(&[FAILED, r"Failed \S+ for <F-USER>\S+</F-USER> from <HOST>"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("Use   failregex line : Failed \\S+ for <F-USER>\\S+</F-USER> from <HOST>\n")
    );
    assert!(text.contains(
        "Use      single line : Jan 12 10:00:01 host sshd[1]: Failed password for ...\n"
    ));
    assert!(
        text.contains("\nLines: 1 lines, 0 ignored, 1 matched, 0 missed\n"),
        "{text}"
    );
}

#[test]
fn third_argument_replaces_ignoreregex() {
    let out = regex_check(&[FAILED, "sshd", "for root from"]);
    let text = stdout(&out);
    assert!(
        text.contains("Use ignoreregex line : for root from\n"),
        "{text}"
    );
    assert!(text.contains("\nIgnoreregex: 1 total\n"), "{text}");
    assert!(
        text.contains("1 lines, 1 ignored, 0 matched, 0 missed"),
        "{text}"
    );
}

#[test]
fn unterminated_last_line_is_not_counted_and_comments_are_skipped() {
    let body = format!("# a comment\n\n{FAILED}\n{FAILED}");
    let log = temp_log("unterminated.log", body.as_bytes());
    let out = regex_check(&[log.to_str().expect("utf-8 path"), "sshd"]);
    assert!(
        stdout(&out).contains("\nLines: 1 lines, 0 ignored, 1 matched, 0 missed\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn out_id_invert_prints_an_empty_line_per_line_without_failure() {
    let body = format!("{FAILED}\nJan 12 10:00:02 host sshd[1]: Server listening\nJan 12 10:00:03 host cron[2]: x\n");
    let log = temp_log("invert.log", body.as_bytes());
    let path = log.to_str().expect("utf-8 path");
    let inverted = regex_check(&["-o", "id", "-i", path, "sshd"]);
    assert_eq!(stdout(&inverted), "\n\n");
    let ids = regex_check(&["-o", "id", path, "sshd"]);
    assert_eq!(stdout(&ids), "192.0.2.7\n");
    let row = regex_check(&["-o", "row", path, "sshd"]);
    assert!(
        stdout(&row).starts_with("['192.0.2.7',\t"),
        "{}",
        stdout(&row)
    );
    assert!(
        stdout(&row).contains(".0,\t{"),
        "float time: {}",
        stdout(&row)
    );
}

#[test]
fn json_is_the_only_stdout_and_inherits_the_session_address() {
    // OpenSMTPD: only the "connected" line names the address; the failure two lines later
    // gets it through the session id (MLFID).
    let filter = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/filter.d/opensmtpd.conf");
    let body = "Mar  1 00:00:02 mail smtpd[40005]: 1a2e91e0b209cdcb smtp connected address=2001:db8::7 host=unknown\n\
                Mar  1 00:00:03 mail smtpd[40006]: 0000000000000001 smtp connected address=192.0.2.9 host=unknown\n\
                Mar  1 00:00:04 mail smtpd[40005]: 1a2e91e0b209cdcb smtp authentication user=admin result=permfail\n\
                Mar  1 00:00:05 mail smtpd[40005]: 1a2e91e0b209cdcb smtp disconnected reason=quit\n";
    let log = temp_log("opensmtpd.log", body.as_bytes());
    let out = regex_check(&[
        "--json",
        log.to_str().expect("utf-8 path"),
        filter.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON line");
    assert_eq!(v["line"], 3);
    assert_eq!(v["ip"], "2001:db8::7");
    assert_eq!(v["user"], "admin");
    assert_eq!(v["captures"]["mlfid"], "1a2e91e0b209cdcb");
}

#[test]
fn hostile_lines_are_counted_not_fatal() {
    let mut body = Vec::new();
    body.extend_from_slice(b"Jan 12 10:00:01 host sshd[1]: Failed password for ");
    body.extend(std::iter::repeat_n(b'a', 200_000));
    body.extend_from_slice(b" from 192.0.2.7 port 22 ssh2\n");
    body.extend_from_slice(b"Jan 12 10:00:02 host sshd[1]: \xff\xfe invalid utf-8\n");
    let log = temp_log("hostile.log", &body);
    let out = regex_check(&[log.to_str().expect("utf-8 path"), "sshd"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("\nLines: 2 lines, "), "{text}");
    assert!(text.contains("\nHostile lines: 1 "), "{text}");
}

#[test]
fn encodings_other_than_utf8_are_refused_not_misread() {
    let log = temp_log("latin1.log", format!("{FAILED}\n").as_bytes());
    let path = log.to_str().expect("utf-8 path");
    let refused = regex_check(&["-e", "latin-1", path, "sshd"]);
    assert_eq!(refused.status.code(), Some(255));
    assert!(stdout(&refused).contains("ERROR: unsupported encoding \"latin-1\""));
    let accepted = regex_check(&["-e", "utf-8", path, "sshd"]);
    assert_eq!(accepted.status.code(), Some(0));
    assert!(stdout(&accepted).contains("Use         encoding : utf-8\n"));
}

#[test]
fn out_row_time_is_an_int_for_zoned_dates_and_a_float_otherwise() {
    let zoned = regex_check(&[
        "-o",
        "row",
        "2024-01-10T12:00:00+0200 fail from 192.0.2.1",
        "^ fail from <HOST>$",
    ]);
    assert_eq!(
        stdout(&zoned),
        "['192.0.2.1',\t1704880800,\t{'ip4': '192.0.2.1', 'ip6': None, 'dns': None}],\n"
    );
    let local = regex_check(&[
        "-o",
        "row",
        "2024-01-10T12:00:00 fail from 192.0.2.1",
        "^ fail from <HOST>$",
    ]);
    assert!(
        stdout(&local).starts_with("['192.0.2.1',\t1704888000.0,\t"),
        "{}",
        stdout(&local)
    );
}

#[test]
fn out_template_substitutes_tags_and_blanks_missing_f_tags() {
    let out = regex_check(&["-o", "<ip> <F-USER>|<F-NOPE>|", FAILED, "sshd"]);
    assert_eq!(stdout(&out), "192.0.2.7 root||\n");
}

#[test]
fn multi_line_match_moves_buffered_lines_from_missed_to_matched() {
    // Same output as fail2ban-regex 1.0.2 for this input.
    let body = "Jan 12 10:00:01 host app[1]: login user=bob\n\
                Jan 12 10:00:02 host app[1]: other\n\
                Jan 12 10:00:03 host app[1]: failed from 192.0.2.5\n";
    let log = temp_log("multiline.log", body.as_bytes());
    let out = regex_check(&[
        "-L",
        "3",
        "--print-all-matched",
        log.to_str().expect("utf-8 path"),
        r"login user=\S+\n.*\n.* failed from <HOST>$",
    ]);
    let text: String = stdout(&out)
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("[processed in "))
        .collect();
    assert!(
        text.ends_with(
            "Lines: 3 lines, 0 ignored, 3 matched, 0 missed\n\n\
             |- Matched line(s):\n\
             |  Jan 12 10:00:01 host app[1]: login user=bob\n\
             |  Jan 12 10:00:02 host app[1]: other\n\
             |  Jan 12 10:00:03 host app[1]: failed from 192.0.2.5\n`-\n"
        ),
        "{text}"
    );
    assert!(text.contains("Use         maxlines : 3\n"), "{text}");
}

#[test]
fn use_lines_are_printed_before_a_regex_error() {
    let out = regex_check(&[FAILED, "^(a <HOST>"]);
    assert_eq!(out.status.code(), Some(255));
    let text = stdout(&out);
    assert!(
        text.contains(
            "Use   failregex line : ^(a <HOST>\nERROR: Unable to compile regular expression '^(a "
        ),
        "{text}"
    );
}
