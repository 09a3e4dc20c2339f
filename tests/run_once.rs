//! `ironban run-once` (cron mode): failures accumulate across runs, each log line is read once,
//! a ban happens once, a later run lifts an expired ban, and `--dry-run` changes nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{shared_dir, TempDir};

fn run(tree: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(tree)
        .arg("run-once")
        .args(extra)
        .output()
        .expect("run ironban run-once");
    assert!(
        out.status.success(),
        "run-once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fail(log: &Path, ip: &str, times: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for _ in 0..times {
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        writeln!(f, "{now} login failed from {ip}").unwrap();
    }
}

#[test]
fn state_carries_across_runs() {
    let dir = TempDir::new("run-once");
    let d = dir.path();
    let tree = d.join("conf");
    common::copy_dir(&shared_dir().join("fail2ban-upstream/config"), &tree);
    let (log, record) = (d.join("app.log"), d.join("record"));
    std::fs::write(
        tree.join("fail2ban.local"),
        format!("[DEFAULT]\ndbfile = {}/state.sqlite3\n", d.display()),
    )
    .unwrap();
    std::fs::write(
        tree.join("filter.d/app.conf"),
        "[Definition]\nfailregex = ^\\s*login failed from <HOST>$\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("action.d/record.conf"),
        format!(
            "[Definition]\nactionban = printf '+%%s\\n' \"<ip>\" >> '{0}'\n\
             actionunban = printf -- '-%%s\\n' \"<ip>\" >> '{0}'\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::write(
        tree.join("jail.local"),
        format!(
            "[app]\nenabled = true\nfilter = app\nlogpath = {}\nmaxretry = 3\n\
             findtime = 10m\nbantime = 2\nignoreself = false\naction = record\n",
            log.display()
        ),
    )
    .unwrap();

    fail(&log, "192.0.2.5", 2);
    assert_eq!(run(&tree, &[]), "", "two failures are below maxretry");
    fail(&log, "192.0.2.5", 1);
    assert_eq!(
        run(&tree, &["--dry-run"])
            .lines()
            .next()
            .map(|l| l.starts_with("would ban 192.0.2.5 in app")),
        Some(true),
        "the dry run sees the third failure on top of the stored two"
    );
    assert!(!record.exists(), "a dry run runs no action");
    let report = run(&tree, &[]);
    assert!(
        report.starts_with("ban 192.0.2.5 in app (3 failures"),
        "{report}"
    );
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "+192.0.2.5\n");
    assert_eq!(
        run(&tree, &[]),
        "",
        "lines already read are not counted again"
    );

    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(run(&tree, &[]), "unban 192.0.2.5 in app\n");
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "+192.0.2.5\n-192.0.2.5\n"
    );
}
