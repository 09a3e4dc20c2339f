//! End to end with real firewalls: a server network namespace runs a TCP listener and
//! `ironban server` with upstream's `iptables-multiport` (or `nftables`) action; a client
//! namespace connects over a veth pair. Failure lines for the client's address must ban it
//! (connect fails), `bantime` later it is unbanned (connect works), and a server killed with
//! SIGKILL restores its ban exactly once.
//!
//! Needs root, iptables, nftables and iproute2 (installed by `.ci/run`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Netns, CLIENT_IP};
use common::{shared_dir, TempDir};

const PORT: u16 = 8025;

/// A copy of upstream's configuration tree with one test jail.
fn write_tree(dir: &Path, action: &str, bantime: u32) -> PathBuf {
    let tree = dir.join("conf");
    common::copy_dir(&shared_dir().join("fail2ban-upstream/config"), &tree);
    let log = dir.join("app.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        tree.join("fail2ban.local"),
        format!(
            "[DEFAULT]\nsocket = {d}/ironban.sock\npidfile = {d}/ironban.pid\n\
             dbfile = {d}/ironban.sqlite3\nlogtarget = STDERR\nloglevel = INFO\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        tree.join("filter.d/e2e.conf"),
        "[Definition]\nfailregex = ^\\s*auth failure from <HOST>$\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("jail.local"),
        format!(
            "[e2e]\nenabled = true\nfilter = e2e\nlogpath = {}\nbackend = auto\n\
             maxretry = 3\nfindtime = 10m\nbantime = {bantime}\nignoreself = false\n\
             action = {action}[name=e2e, port={PORT}, protocol=tcp]\n",
            log.display()
        ),
    )
    .unwrap();
    tree
}

/// The server process, killed if a test fails before stopping it.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_server(ns: &Netns, tree: &Path) -> Server {
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.server])
        .arg(env!("CARGO_BIN_EXE_ironban"))
        .args(["-c"])
        .arg(tree)
        .args(["server", "-f"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ironban server");
    // From here on the guard kills the server if the test fails.
    let server = Server(Some(child));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ping = client(tree, &["ping"]);
        if ping.contains("pong") {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "server did not answer ping: {ping}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client(tree: &Path, words: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(tree)
        .arg("client")
        .args(words)
        .output()
        .expect("run ironban client");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn append_failures(log: &Path, ip: &str, count: usize) {
    let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    for _ in 0..count {
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        writeln!(f, "{now} auth failure from {ip}").unwrap();
    }
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut server: Server, tree: &Path) {
    let _ = client(tree, &["stop"]);
    let Some(mut child) = server.0.take() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not stop within 10 s");
}

fn ban_and_expire(action: &str, tag: &str, count_rules: impl Fn(&Netns) -> usize) {
    common::require_root();
    let ns = Netns::create(tag, PORT);
    let dir = TempDir::new(&format!("e2e-{tag}"));
    let tree = write_tree(dir.path(), action, 6);
    let log = dir.path().join("app.log");
    let server = start_server(&ns, &tree);

    assert!(ns.client_connects(), "client must connect before any ban");
    append_failures(&log, CLIENT_IP, 2);
    std::thread::sleep(Duration::from_millis(500));
    assert!(ns.client_connects(), "two failures are below maxretry");
    append_failures(&log, CLIENT_IP, 1);
    wait_until("the client is banned", Duration::from_secs(5), || {
        !ns.client_connects()
    });
    assert_eq!(
        count_rules(&ns),
        1,
        "exactly one firewall entry for the client"
    );
    let status = client(&tree, &["status", "e2e"]);
    assert!(
        status.contains(&format!("Banned IP list:\t{CLIENT_IP}")),
        "status shows the ban:\n{status}"
    );
    wait_until("the ban expires", Duration::from_secs(15), || {
        ns.client_connects()
    });
    let status = client(&tree, &["status", "e2e"]);
    assert!(
        status.contains("Currently banned:\t0") && !status.contains(CLIENT_IP),
        "status shows the ban ended:\n{status}"
    );
    assert_eq!(count_rules(&ns), 0);
    stop(server, &tree);
}

fn iptables_rules(ns: &Netns) -> usize {
    ns.exec("iptables", &["-S", "f2b-e2e"])
        .lines()
        .filter(|l| l.contains(CLIENT_IP))
        .count()
}

fn nft_elements(ns: &Netns) -> usize {
    ns.exec("nft", &["list", "ruleset"])
        .matches(CLIENT_IP)
        .count()
}

#[test]
fn iptables_multiport_bans_and_unbans() {
    ban_and_expire("iptables-multiport", "i", iptables_rules);
}

#[test]
fn nftables_bans_and_unbans() {
    ban_and_expire("nftables", "n", nft_elements);
}

#[test]
fn ban_survives_kill_9_exactly_once() {
    common::require_root();
    let ns = Netns::create("k", PORT);
    let dir = TempDir::new("e2e-kill");
    let tree = write_tree(dir.path(), "iptables-multiport", 600);
    let log = dir.path().join("app.log");
    let mut server = start_server(&ns, &tree);
    append_failures(&log, CLIENT_IP, 3);
    wait_until("the client is banned", Duration::from_secs(5), || {
        !ns.client_connects()
    });
    let mut child = server.0.take().expect("server running");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!ns.client_connects(), "the rule outlives the killed server");

    let server = start_server(&ns, &tree);
    wait_until("the ban is restored", Duration::from_secs(5), || {
        client(&tree, &["status", "e2e"]).contains(CLIENT_IP)
    });
    assert!(!ns.client_connects());
    assert_eq!(iptables_rules(&ns), 1, "restored exactly once");
    let jumps = ns
        .exec("iptables", &["-S", "INPUT"])
        .lines()
        .filter(|l| l.contains("f2b-e2e"))
        .count();
    assert_eq!(jumps, 1, "one jump into the jail's chain");
    let status = client(&tree, &["status", "e2e"]);
    assert!(
        status.contains("Total failed:\t0"),
        "no line was counted twice after the restart:\n{status}"
    );
    append_failures(&log, "192.0.2.77", 2);
    std::thread::sleep(Duration::from_millis(500));
    let status = client(&tree, &["status", "e2e"]);
    assert!(status.contains("Currently failed:\t1"), "{status}");
    stop(server, &tree);
    assert!(ns.client_connects(), "a clean stop removes the rules");
}
