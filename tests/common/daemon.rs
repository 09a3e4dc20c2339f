//! A test daemon: a copy of upstream's tree with a test filter `app` (`login failed for USER
//! from HOST`) and a recording action `record` (`+ip|user|matches` / `-ip` lines in a file),
//! `ironban server` started on it, and helpers to write failures and ask the client.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::shared_dir;

pub struct Daemon {
    pub dir: PathBuf,
    pub tree: PathBuf,
    pub log: PathBuf,
    pub record: PathBuf,
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `[app]` jail on `log` with the given backend and maxretry.
pub fn jail_local(log: &Path, backend: &str, maxretry: u32) -> String {
    format!(
        "[app]\nenabled = true\nfilter = app\nlogpath = {}\nbackend = {backend}\n\
         maxretry = {maxretry}\nfindtime = 10m\nbantime = 1h\nignoreself = false\n\
         ignoreip = 198.51.100.0/24\naction = record\n",
        log.display()
    )
}

impl Daemon {
    /// Write the tree under `dir` and start the server with `backend`.
    pub fn start(dir: &Path, backend: &str) -> Daemon {
        let tree = dir.join("conf");
        super::copy_dir(&shared_dir().join("fail2ban-upstream/config"), &tree);
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
        std::fs::write(tree.join("jail.local"), jail_local(&log, backend, 3)).unwrap();
        let mut daemon = Daemon {
            dir: dir.to_path_buf(),
            tree,
            log,
            record,
            child: None,
        };
        daemon.launch();
        daemon
    }

    /// Start the server process on the existing tree and wait for it to answer.
    pub fn launch(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_ironban"))
            .arg("-c")
            .arg(&self.tree)
            .args(["server", "-f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server");
        self.child = Some(child);
        wait_until("the server answers", || {
            stdout(&self.client(&["ping"])).contains("pong")
        });
    }

    /// SIGKILL the server (no clean stop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `client stop` and wait for the process to end.
    pub fn stop(&mut self) {
        let _ = self.client(&["stop"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    pub fn client(&self, words: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ironban"))
            .arg("-c")
            .arg(&self.tree)
            .arg("client")
            .args(words)
            .output()
            .expect("run client")
    }

    /// Append `times` failure lines for `user` from `ip`, dated now.
    pub fn fail(&self, user: &str, ip: &str, times: usize) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        for _ in 0..times {
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
            writeln!(f, "{now} login failed for {user} from {ip}").unwrap();
        }
    }

    /// What the recording action wrote so far.
    pub fn record(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }

    /// A `Status for the jail` line's value, e.g. `Total failed`.
    pub fn status_value(&self, key: &str) -> String {
        let text = stdout(&self.client(&["status", "app"]));
        text.lines()
            .find_map(|l| {
                l.split_once(&format!("{key}:\t"))
                    .map(|(_, v)| v.to_string())
            })
            .unwrap_or_default()
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
