//! `ironban config test|dump` as a binary: the upstream tree passes, a tree
//! with a deliberate error fails naming file and option.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ironban(conf: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .expect("run ironban");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_tree(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ironban-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

#[test]
fn upstream_tree_config_test_succeeds() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/config");
    let (code, stdout, _) = ironban(&conf, &["config", "test"]);
    assert_eq!(stdout.trim(), "OK: configuration test is successful");
    assert_eq!(code, 0);
}

#[test]
fn upstream_tree_dump_prints_globals_in_python_repr_and_json() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/config");
    let (code, stdout, _) = ironban(&conf, &["config", "dump"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "['set', 'syslogsocket', 'auto']");
    assert_eq!(lines[5], "['set', 'dbmaxmatches', 10]");
    let (code, stdout, _) = ironban(&conf, &["config", "dump", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.lines().next(),
        Some(r#"["set","syslogsocket","auto"]"#)
    );
}

#[test]
fn broken_tree_fails_naming_file_and_option() {
    let dir = temp_tree(
        "broken",
        &[
            ("fail2ban.conf", "[Definition]\n"),
            (
                "jail.conf",
                "[sshd]\nenabled = true\nbantime = %(undefined_thing)s\n",
            ),
        ],
    );
    let (code, stdout, stderr) = ironban(&dir, &["config", "test"]);
    assert_ne!(code, 0);
    assert!(!stdout.contains("OK:"));
    assert!(stderr.contains("jail.conf"), "{stderr}");
    assert!(stderr.contains("'bantime'"), "{stderr}");
    assert!(stderr.contains("'undefined_thing'"), "{stderr}");
    let (code, stdout, _) = ironban(&dir, &["config", "dump"]);
    assert_eq!(code, 255);
    assert_eq!(
        stdout.trim(),
        "ERROR: The configuration stream failed because of the invalid syntax."
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_jail_fails_test_but_dump_succeeds_with_other_jail() {
    let dir = temp_tree(
        "jailerr",
        &[
            ("fail2ban.conf", "[Definition]\n"),
            ("filter.d/f.conf", "[Definition]\nfailregex = ^x <HOST>\n"),
            (
                "jail.conf",
                "[good]\nenabled = true\nfilter = f\n[bad]\nenabled = true\nfilter = missing\n",
            ),
        ],
    );
    let (code, stdout, stderr) = ironban(&dir, &["config", "test"]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("Unable to read the filter 'missing'"),
        "{stderr}"
    );
    let (code, stdout, _) = ironban(&dir, &["config", "dump"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("['start', 'good']"));
    let _ = std::fs::remove_dir_all(&dir);
}
