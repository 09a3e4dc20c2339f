//! Acceptance of ironban's own filters: `ironban -c <repo> test-samples --samples
//! tests/samples` must pass 100 % for every shipped filter, and a wrong annotation in our
//! samples must make it fail (so the first test cannot pass vacuously).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn test_samples(samples: &Path, filters: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(repo())
        .arg("test-samples")
        .arg("--samples")
        .arg(samples)
        .args(filters)
        .output()
        .expect("run ironban test-samples")
}

/// The shipped filters: `filter.d/*.conf` except the include-only `*common.conf`.
fn shipped_filters() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("filter.d"))
        .expect("list filter.d")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".conf")?;
            (!stem.ends_with("common")).then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_own_filter_passes_its_samples() {
    let out = test_samples(&repo().join("tests/samples"), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for filter in shipped_filters() {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{filter}: ")))
            .unwrap_or_else(|| panic!("{filter} was not tested:\n{text}"));
        assert!(line.ends_with(" 0 failed"), "{line}");
        assert!(!line.starts_with(&format!("{filter}: 0 passed")), "{line}");
    }
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "last line: {last}");
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 100, "only {passed} sample checks ran");
}

#[test]
fn a_wrong_expectation_in_our_samples_is_reported() {
    let dir = std::env::temp_dir().join(format!("ironban-suite-samples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let original =
        std::fs::read_to_string(repo().join("tests/samples/kerio")).expect("read kerio samples");
    // The sample says 192.0.2.178; claim another host for that line.
    let broken = original.replacen("\"192.0.2.178\"", "\"192.0.2.179\"", 1);
    assert_ne!(broken, original, "kerio sample changed; update this test");
    std::fs::write(dir.join("kerio"), broken).expect("write broken sample");

    let out = test_samples(&dir, &["kerio"]);
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "broken sample passed:\n{text}");
    assert!(text.contains(r#"expected "192.0.2.179""#), "{text}");
    let summary = text
        .lines()
        .find(|l| l.starts_with("kerio: ") && l.ends_with(" failed"))
        .unwrap_or_default();
    assert!(
        !summary.is_empty() && !summary.ends_with(" 0 failed"),
        "{text}"
    );
}
