//! ironban's success exclusion (`successfilter`, `successlogpath`, `successtime`): an address
//! that logged in successfully according to another log is not banned, and a success lifts a
//! ban. Driven through `run-once` with the shipped kerio filters and a recording action.

mod common;

use std::path::Path;
use std::process::Command;

use common::{append_lines, TempDir};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kerio_time() -> String {
    chrono::Local::now().format("%d/%b/%Y %H:%M:%S").to_string()
}

fn failures(ip: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "[{}] Attempt to deliver to unknown recipient <u{i}@example.com>, from <x@example.net>, IP address {ip}",
                kerio_time()
            )
        })
        .collect()
}

fn success(ip: &str) -> String {
    format!(
        "[{}] IMAP: User john@example.com authenticated from IP address {ip}",
        kerio_time()
    )
}

fn run_once(tree: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(tree)
        .arg("run-once")
        .output()
        .expect("run ironban run-once");
    assert!(
        out.status.success(),
        "run-once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn successful_logins_prevent_and_lift_bans() {
    let dir = TempDir::new("success");
    let d = dir.path();
    let tree = d.join("conf");
    for sub in ["filter.d", "action.d"] {
        common::copy_dir(&repo().join(sub), &tree.join(sub));
    }
    for file in ["fail2ban.conf", "jail.conf", "paths-common.conf"] {
        std::fs::copy(repo().join(file), tree.join(file)).unwrap();
    }
    std::fs::write(
        tree.join("fail2ban.local"),
        format!(
            "[Definition]\ndbfile = {0}/state.sqlite3\nsocket = {0}/s.sock\npidfile = {0}/p.pid\n",
            d.display()
        ),
    )
    .unwrap();
    let (security, audit, bans) = (d.join("security.log"), d.join("audit.log"), d.join("bans"));
    std::fs::write(
        tree.join("jail.local"),
        format!(
            "[kerio-test]\nenabled = true\nfilter = kerio\nlogpath = {}\n\
             successfilter = kerio-audit\nsuccesslogpath = {}\nsuccesstime = 30d\n\
             maxretry = 3\nfindtime = 1h\nbantime = 1d\nignoreself = false\n\
             action = dummy[file={}]\n",
            security.display(),
            audit.display(),
            bans.display()
        ),
    )
    .unwrap();
    let dump = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(&tree)
        .args(["config", "dump"])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("['set', 'kerio-test', 'successfilter', 'kerio-audit']"),
        "the extension options reach the stream:\n{dump}"
    );

    // .10 logged in successfully: its failures must not ban it; .20 did not.
    append_lines(&audit, &[success("192.0.2.10")]);
    append_lines(&security, &failures("192.0.2.10", 4));
    append_lines(&security, &failures("192.0.2.20", 3));
    let report = run_once(&tree);
    assert!(report.contains("ban 192.0.2.20 in kerio-test"), "{report}");
    assert!(!report.contains("192.0.2.10"), "{report}");
    let recorded = std::fs::read_to_string(&bans).unwrap();
    assert!(recorded.contains("+192.0.2.20 3"), "{recorded}");
    assert!(!recorded.contains("192.0.2.10"), "{recorded}");

    // A later success of .20 lifts its ban in the next run.
    append_lines(&audit, &[success("192.0.2.20")]);
    let report = run_once(&tree);
    assert!(
        report.contains("unban 192.0.2.20 in kerio-test (successful login)"),
        "{report}"
    );
    let recorded = std::fs::read_to_string(&bans).unwrap();
    assert!(recorded.contains("-192.0.2.20"), "{recorded}");
    // Nothing is banned twice across runs.
    assert_eq!(recorded.matches("+192.0.2.20").count(), 1, "{recorded}");
}
