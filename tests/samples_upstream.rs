//! Acceptance: `ironban test-samples` over the whole upstream sample corpus must pass 100 %,
//! and a broken filter must be reported.

use std::path::{Path, PathBuf};
use std::process::Command;

fn upstream() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ironban-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The zzz-* test filters include `../../../../config/filter.d/common.conf`, i.e. they
/// expect upstream's layout (`fail2ban/tests/config/filter.d` next to `config/`). Rebuild
/// that layout with symlinks; the files themselves are read unmodified.
fn upstream_layout() -> (PathBuf, PathBuf) {
    let root = temp_dir("layout");
    let up = upstream();
    std::os::unix::fs::symlink(up.join("config"), root.join("config")).expect("symlink config");
    let test_conf = root.join("fail2ban/tests/config");
    std::fs::create_dir_all(test_conf.join("filter.d")).expect("create test filter.d");
    for entry in std::fs::read_dir(up.join("samples/config/filter.d")).expect("read filter.d") {
        let entry = entry.expect("dir entry");
        std::os::unix::fs::symlink(
            entry.path(),
            test_conf.join("filter.d").join(entry.file_name()),
        )
        .expect("symlink filter");
    }
    (root, test_conf)
}

#[test]
fn whole_upstream_corpus_passes() {
    let up = upstream();
    let (root, test_conf) = upstream_layout();
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(up.join("config"))
        .arg("test-samples")
        .arg("--samples")
        .arg(up.join("samples/logs"))
        .arg("--extra-conf")
        .arg(&test_conf)
        .output()
        .expect("run ironban test-samples");
    let _ = std::fs::remove_dir_all(&root);
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let failing: Vec<&str> = text.lines().filter(|l| !l.ends_with(" 0 failed")).collect();
    assert!(out.status.success(), "failures:\n{}", failing.join("\n"));
    assert!(last.ends_with(" passed, 0 failed"), "last line: {last}");
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // 1 193 failJSON lines, most of them in several filter variants.
    assert!(passed > 2_000, "only {passed} assertions");
    // Every upstream filter (except *common.conf) and both zzz filters were tested.
    let mut expected: Vec<String> = std::fs::read_dir(up.join("config/filter.d"))
        .expect("read filter.d")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".conf").map(str::to_string))
        .filter(|n| !n.ends_with("common"))
        .collect();
    expected.extend([
        "zzz-generic-example".into(),
        "zzz-sshd-obsolete-multiline".into(),
    ]);
    for name in expected {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{name}: ")) && l.ends_with(" 0 failed")),
            "no summary for {name}"
        );
    }
}

#[test]
fn broken_filter_is_reported() {
    let dir = temp_dir("broken");
    std::fs::create_dir_all(dir.join("conf/filter.d")).expect("filter.d");
    std::fs::create_dir_all(dir.join("logs")).expect("logs");
    std::fs::write(
        dir.join("conf/filter.d/demo.conf"),
        "[Definition]\nfailregex = ^bad login from <HOST>$\n            ^never used <HOST>$\n",
    )
    .expect("write filter");
    std::fs::write(
        dir.join("logs/demo"),
        "# failJSON: { \"match\": true, \"host\": \"192.0.2.1\" }\nbad login from 192.0.2.1\n\
         # failJSON: { \"match\": true, \"host\": \"192.0.2.2\" }\nworse login from 192.0.2.2\n\
         # failJSON: { \"match\": true, \"host\": \"192.0.2.9\" }\nbad login from 192.0.2.3\n\
         good login from 192.0.2.4\n",
    )
    .expect("write log");
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(dir.join("conf"))
        .arg("test-samples")
        .arg("--samples")
        .arg(dir.join("logs"))
        .output()
        .expect("run ironban test-samples");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("demo:4: demo: Line not matched"), "{text}");
    assert!(
        text.contains("demo:6: demo: host: expected \"192.0.2.9\""),
        "{text}"
    );
    assert!(text.contains("Regex has no samples: 1"), "{text}");
    assert_eq!(text.lines().last(), Some("4 passed, 3 failed"), "{text}");
}
