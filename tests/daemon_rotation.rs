//! Log rotation while the daemon runs, done by Debian's real `logrotate`: rename and create,
//! then copytruncate, with the inotify and the polling backend. Every failure line is counted
//! exactly once: three per address ban it, the totals add up, nothing is banned twice.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::{wait_until, Daemon};
use common::TempDir;

fn logrotate(dir: &Path, log: &Path, mode: &str) {
    let conf = dir.join(format!("logrotate-{mode}.conf"));
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 5\n  {mode}\n  missingok\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("logrotate must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rotate_and_count(backend: &str) {
    let dir = TempDir::new(&format!("rotate-{backend}"));
    let d = Daemon::start(dir.path(), backend);

    // Rename and create: two failures before, one after.
    d.fail("a", "192.0.2.1", 2);
    wait_until("two failures are counted", || {
        d.status_value("Total failed") == "2"
    });
    logrotate(dir.path(), &d.log, "create");
    assert!(
        dir.path().join("app.log.1").exists(),
        "logrotate renamed the log"
    );
    d.fail("a", "192.0.2.1", 1);
    wait_until("192.0.2.1 is banned", || d.record().contains("+192.0.2.1|"));

    // Copytruncate: the same file shrinks to zero and grows again.
    d.fail("b", "192.0.2.2", 2);
    wait_until("five failures are counted", || {
        d.status_value("Total failed") == "5"
    });
    logrotate(dir.path(), &d.log, "copytruncate");
    d.fail("b", "192.0.2.2", 1);
    wait_until("192.0.2.2 is banned", || d.record().contains("+192.0.2.2|"));

    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        d.status_value("Total failed"),
        "6",
        "every line counted once"
    );
    assert_eq!(d.status_value("Total banned"), "2");
    let record = d.record();
    assert_eq!(record.matches("+192.0.2.1|").count(), 1, "{record}");
    assert_eq!(record.matches("+192.0.2.2|").count(), 1, "{record}");
}

#[test]
fn rotation_with_inotify() {
    rotate_and_count("auto");
}

#[test]
fn rotation_with_polling() {
    rotate_and_count("polling");
}

#[test]
fn restart_resumes_where_it_stopped() {
    let dir = TempDir::new("restart");
    let mut d = Daemon::start(dir.path(), "auto");
    d.fail("a", "192.0.2.7", 2);
    wait_until("two failures are counted", || {
        d.status_value("Total failed") == "2"
    });
    d.stop();
    d.fail("a", "192.0.2.8", 1);
    d.launch();
    wait_until("the line written while stopped is counted", || {
        d.status_value("Total failed") == "1"
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        d.status_value("Total failed"),
        "1",
        "lines read before the stop are not counted again"
    );
}
