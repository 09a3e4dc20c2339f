//! The daemon driven through `ironban client`: bans from log lines, the client's verbs and
//! layouts, manual ban/unban, ignore lists, a reload that is refused when the tree is broken
//! (the running configuration keeps banning) and one that takes effect, and hostile log
//! values reaching a shell action only as data.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{shared_dir, TempDir};

struct Daemon {
    tree: PathBuf,
    log: PathBuf,
    record: PathBuf,
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn jail_local(log: &Path, maxretry: u32) -> String {
    format!(
        "[app]\nenabled = true\nfilter = app\nlogpath = {}\nbackend = polling\n\
         maxretry = {maxretry}\nfindtime = 10m\nbantime = 1h\nignoreself = false\n\
         ignoreip = 198.51.100.0/24\naction = record\n",
        log.display()
    )
}

fn start(dir: &Path) -> Daemon {
    let tree = dir.join("conf");
    common::copy_dir(&shared_dir().join("fail2ban-upstream/config"), &tree);
    let log = dir.join("app.log");
    let record = dir.join("record");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        tree.join("fail2ban.local"),
        format!(
            "[DEFAULT]\nsocket = {d}/s.sock\npidfile = {d}/p.pid\ndbfile = {d}/db.sqlite3\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        tree.join("filter.d/app.conf"),
        "[Definition]\nfailregex = ^\\s*login failed for <F-USER>.*</F-USER> from <HOST>$\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("action.d/record.conf"),
        format!(
            "[Definition]\nactionban = printf '+%%s|%%s|%%s\\n' \"<ip>\" \"<F-USER>\" \"<matches>\" >> '{0}'\n\
             actionunban = printf -- '-%%s\\n' \"<ip>\" >> '{0}'\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::write(tree.join("jail.local"), jail_local(&log, 3)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(&tree)
        .args(["server", "-f"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let daemon = Daemon {
        tree,
        log,
        record,
        child: Some(child),
    };
    wait_until("the server answers", || {
        daemon.client(&["ping"]).stdout_text().contains("pong")
    });
    daemon
}

trait Text {
    fn stdout_text(&self) -> String;
}

impl Text for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Daemon {
    fn client(&self, words: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ironban"))
            .arg("-c")
            .arg(&self.tree)
            .arg("client")
            .args(words)
            .output()
            .expect("run client")
    }

    fn fail(&self, user: &str, ip: &str, times: usize) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        for _ in 0..times {
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
            writeln!(f, "{now} login failed for {user} from {ip}").unwrap();
        }
    }

    fn record(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn client_verbs_bans_and_reload() {
    let dir = TempDir::new("daemon-ctl");
    let d = start(dir.path());

    d.fail("alice", "192.0.2.10", 3);
    wait_until("192.0.2.10 is banned", || {
        d.record().contains("+192.0.2.10|")
    });
    let status = d.client(&["status", "app"]).stdout_text();
    assert_eq!(
        status,
        format!(
            "Status for the jail: app\n|- Filter\n|  |- Currently failed:\t0\n|  |- Total failed:\t3\n\
             |  `- File list:\t{}\n`- Actions\n   |- Currently banned:\t1\n   |- Total banned:\t1\n\
             \x20  `- Banned IP list:\t192.0.2.10\n",
            d.log.display()
        )
    );
    assert_eq!(
        d.client(&["status"]).stdout_text(),
        "Status\n|- Number of jail:\t1\n`- Jail list:\tapp\n"
    );
    assert_eq!(
        d.client(&["banned"]).stdout_text(),
        "[{'app': ['192.0.2.10']}]\n"
    );
    assert_eq!(d.client(&["get", "app", "maxretry"]).stdout_text(), "3\n");
    assert_eq!(d.client(&["get", "app", "bantime"]).stdout_text(), "3600\n");
    let json = d.client(&["--json", "status", "app"]).stdout_text();
    assert!(json.contains("\"192.0.2.10\""), "{json}");

    // Ignored addresses are never counted; manual bans bypass the ignore list.
    d.fail("bob", "198.51.100.7", 4);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!d.record().contains("198.51.100.7"));
    assert_eq!(
        d.client(&["set", "app", "banip", "198.51.100.8"])
            .stdout_text(),
        "1\n"
    );
    assert_eq!(
        d.client(&["set", "app", "unbanip", "198.51.100.8"])
            .stdout_text(),
        "1\n"
    );
    assert!(d.record().contains("-198.51.100.8"));
    let ignore = d
        .client(&["set", "app", "addignoreip", "203.0.113.0/24"])
        .stdout_text();
    assert!(ignore.contains("203.0.113.0/24"), "{ignore}");

    // Unknown jail: fail2ban's wording, non-zero exit.
    let out = d.client(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(255));
    let text = out.stdout_text() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Sorry but the jail 'nope' does not exist"),
        "{text}"
    );

    // Hostile values: command substitution, backticks, quotes, separators arrive as data.
    let marker = dir.path().join("pwned");
    let hostile = format!(
        "$(touch {m})`touch {m}`;touch {m};'\"|&",
        m = marker.display()
    );
    d.fail(&hostile, "192.0.2.66", 3);
    wait_until("192.0.2.66 is banned", || {
        d.record().contains("+192.0.2.66|")
    });
    assert!(!marker.exists(), "a log value was executed by the shell");
    assert!(
        d.record().contains(&format!("+192.0.2.66|{hostile}|")),
        "the user name arrives byte-exact:\n{}",
        d.record()
    );

    // A broken tree is refused; the running configuration keeps banning.
    std::fs::write(
        d.tree.join("jail.local"),
        jail_local(&d.log, 3) + "maxretry = 2\n",
    )
    .unwrap();
    let out = d.client(&["reload"]);
    assert_ne!(out.status.code(), Some(0), "a broken tree must be refused");
    let text = out.stdout_text() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("jail.local") && text.contains("maxretry"),
        "the error names file and option: {text}"
    );
    d.fail("carol", "192.0.2.20", 3);
    wait_until("the old configuration still bans", || {
        d.record().contains("+192.0.2.20|")
    });

    // A good change takes effect, bans survive the reload.
    std::fs::write(d.tree.join("jail.local"), jail_local(&d.log, 2)).unwrap();
    assert_eq!(d.client(&["reload"]).stdout_text(), "OK\n");
    assert_eq!(d.client(&["get", "app", "maxretry"]).stdout_text(), "2\n");
    let banned = d.client(&["get", "app", "banned"]).stdout_text();
    assert!(
        banned.contains("192.0.2.10") && banned.contains("192.0.2.20"),
        "{banned}"
    );
    d.fail("dave", "192.0.2.30", 2);
    wait_until("maxretry 2 applies", || d.record().contains("+192.0.2.30|"));

    assert_eq!(d.client(&["stop"]).stdout_text(), "Shutdown successful\n");
    let out = d.client(&["ping"]);
    wait_until("the socket is gone", || !dir.path().join("s.sock").exists());
    assert_eq!(out.status.code(), Some(255));
}
