//! `ironban run-once` (cron mode): failures accumulate across runs, each log line is read once,
//! a ban happens once, a later run lifts an expired ban, and `--dry-run` changes nothing.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
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

/// The upstream tree in `d/conf` with a database in `d` and an `app` filter for
/// `login failed from <HOST>` lines.
fn app_tree(d: &Path) -> PathBuf {
    let tree = d.join("conf");
    common::copy_dir(&shared_dir().join("fail2ban-upstream/config"), &tree);
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
    tree
}

/// A temporary directory with the `app` tree and jail: (dir, tree, log, record).
fn app_setup(tag: &str, bantime: &str) -> (TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = TempDir::new(tag);
    let d = dir.path();
    let tree = app_tree(d);
    let (log, record) = (d.join("app.log"), d.join("record"));
    app_jail(&tree, &log, &record, bantime);
    (dir, tree, log, record)
}

/// An `app` jail on `log` (maxretry 3) whose action records `+ip` / `-ip` lines in `record`.
fn app_jail(tree: &Path, log: &Path, record: &Path, bantime: &str) {
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
             findtime = 10m\nbantime = {bantime}\nignoreself = false\naction = record\n",
            log.display()
        ),
    )
    .unwrap();
}

#[test]
fn state_carries_across_runs() {
    let (_dir, tree, log, record) = app_setup("run-once", "2");

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

#[test]
fn jails_are_built_in_order_and_the_first_broken_one_is_named() {
    let dir = TempDir::new("run-once-order");
    let d = dir.path();
    let tree = app_tree(d);
    let mut jails = String::new();
    for i in 0..8 {
        let findtime = if i == 3 || i == 6 { "soon" } else { "10m" };
        jails.push_str(&format!(
            "[j{i}]\nenabled = true\nfilter = app\nlogpath = {}/j{i}.log\nfindtime = {findtime}\n\n",
            d.display()
        ));
        std::fs::write(d.join(format!("j{i}.log")), "").unwrap();
    }
    std::fs::write(tree.join("jail.local"), jails).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(&tree)
        .arg("run-once")
        .output()
        .expect("run ironban run-once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken jail must stop the run");
    assert!(stderr.contains("j3"), "first broken jail named: {stderr}");
    assert!(!stderr.contains("j6"), "only the first error: {stderr}");
}

/// The report of the one-shot modes is not kept by the daemon, which would hold a line per
/// ban and unban for its whole life.
#[test]
fn the_daemon_keeps_no_report() {
    let (_dir, tree, log, record) = app_setup("daemon-report", "1h");
    fail(&log, "192.0.2.7", 3);
    let loaded = ironban::config::load(&tree).expect("configuration loads");
    let start =
        |mode| ironban::engine::Engine::start(&tree, &loaded.stream, mode).expect("engine starts");
    let mut daemon = start(ironban::engine::Mode::Daemon);
    daemon.process_logs();
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "+192.0.2.7\n");
    assert_eq!(daemon.report_lines(), Vec::<String>::new());
    daemon.stop();
    // A dry run (it opens no database) sees the same ban and reports it.
    let mut dry = start(ironban::engine::Mode::DryRun);
    dry.process_logs();
    let report = dry.report_lines();
    assert!(
        report
            .first()
            .is_some_and(|l| l.starts_with("would ban 192.0.2.7 in app")),
        "{report:?}"
    );
}

/// Bans drop their matched lines unless an action reads them (`<matches>`); a reload that
/// makes an action read them gets them back from the database for the bans already made.
#[test]
fn bans_keep_matches_for_the_actions_that_read_them() {
    let (dir, tree, log, record) = app_setup("ban-matches", "1h");
    let lines = |text: &str, ip: &str| text.matches(&format!("login failed from {ip}")).count();
    let start = |tree: &Path| {
        let loaded = ironban::config::load(tree).expect("configuration loads");
        ironban::engine::Engine::start(tree, &loaded.stream, ironban::engine::Mode::Daemon)
            .expect("engine starts")
    };
    let unban = |engine: &mut ironban::engine::Engine, ip: &str| {
        let words = ["set", "app", "unbanip", ip].map(String::from);
        engine.command(&words).expect("unban");
    };
    let reading = |name: &str, file: &Path| {
        std::fs::write(
            tree.join(format!("action.d/{name}.conf")),
            format!(
                "[Definition]\nactionunban = printf -- '-%%s %%s\\n' \"<ip>\" \"<matches>\" >> '{}'\n",
                file.display()
            ),
        )
        .unwrap();
    };

    // Read from the start: kept.
    let kept = dir.path().join("kept");
    reading("withlines", &kept);
    let jail = std::fs::read_to_string(tree.join("jail.local")).unwrap();
    std::fs::write(
        tree.join("jail.local"),
        jail.replace("action = record", "action = withlines"),
    )
    .unwrap();
    fail(&log, "192.0.2.8", 3);
    fail(&log, "192.0.2.9", 3);
    let mut engine = start(&tree);
    engine.process_logs();
    unban(&mut engine, "192.0.2.8");
    assert_eq!(
        lines(&std::fs::read_to_string(&kept).unwrap(), "192.0.2.8"),
        3
    );
    // A reload that removes the action: it unbans with the matches it read.
    std::fs::write(tree.join("jail.local"), &jail).unwrap();
    let loaded = ironban::config::load(&tree).expect("configuration loads");
    engine.reload(&loaded.stream, &[]).expect("reload");
    assert_eq!(
        lines(&std::fs::read_to_string(&kept).unwrap(), "192.0.2.9"),
        3
    );
    unban(&mut engine, "192.0.2.9");
    engine.stop();

    // Not read: dropped; a reload adding an action that reads them brings them back.
    fail(&log, "192.0.2.8", 3);
    let mut engine = start(&tree);
    engine.process_logs();
    assert!(std::fs::read_to_string(&record)
        .unwrap()
        .contains("+192.0.2.8"));
    // The same action, now reading them: back from the database.
    reading("record", &record);
    let loaded = ironban::config::load(&tree).expect("configuration loads");
    engine.reload(&loaded.stream, &[]).expect("reload");
    unban(&mut engine, "192.0.2.8");
    let written = std::fs::read_to_string(&record).unwrap();
    assert!(written.contains("+192.0.2.8\n-192.0.2.8 "), "{written}");
    assert_eq!(lines(&written, "192.0.2.8"), 3);
    engine.stop();
}
