//! The daemon driven through `ironban client`: bans from log lines, the client's verbs and
//! layouts, manual ban/unban, ignore lists, a reload that is refused when the tree is broken
//! (the running configuration keeps banning) and one that takes effect, and hostile log
//! values reaching a shell action only as data.

mod common;

use std::time::Duration;

use common::daemon::{jail_local, stdout, wait_until, Daemon};
use common::TempDir;

#[test]
fn client_verbs_bans_and_reload() {
    let dir = TempDir::new("daemon-ctl");
    let d = Daemon::start(dir.path(), "polling");

    d.fail("alice", "192.0.2.10", 3);
    wait_until("192.0.2.10 is banned", || {
        d.record().contains("+192.0.2.10|")
    });
    let status = stdout(&d.client(&["status", "app"]));
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
        stdout(&d.client(&["status"])),
        "Status\n|- Number of jail:\t1\n`- Jail list:\tapp\n"
    );
    assert_eq!(
        stdout(&d.client(&["banned"])),
        "[{'app': ['192.0.2.10']}]\n"
    );
    assert_eq!(stdout(&d.client(&["get", "app", "maxretry"])), "3\n");
    assert_eq!(stdout(&d.client(&["get", "app", "bantime"])), "3600\n");
    assert_eq!(stdout(&d.client(&["get", "app", "findtime"])), "600\n");
    let json = stdout(&d.client(&["--json", "status", "app"]));
    assert!(json.contains("\"192.0.2.10\""), "{json}");

    // Ignored addresses are never counted; manual bans bypass the ignore list.
    d.fail("bob", "198.51.100.7", 4);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!d.record().contains("198.51.100.7"));
    assert_eq!(
        stdout(&d.client(&["set", "app", "banip", "198.51.100.8"])),
        "1\n"
    );
    assert_eq!(
        stdout(&d.client(&["set", "app", "unbanip", "198.51.100.8"])),
        "1\n"
    );
    assert!(d.record().contains("-198.51.100.8"));
    let ignore = stdout(&d.client(&["set", "app", "addignoreip", "203.0.113.0/24"]));
    assert!(ignore.contains("203.0.113.0/24"), "{ignore}");

    // Unknown jail: fail2ban's wording, non-zero exit.
    let out = d.client(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(255));
    let text = stdout(&out) + &String::from_utf8_lossy(&out.stderr);
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
        jail_local(&d.log, "polling", 3) + "maxretry = 2\n",
    )
    .unwrap();
    let out = d.client(&["reload"]);
    assert_ne!(out.status.code(), Some(0), "a broken tree must be refused");
    let text = stdout(&out) + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("jail.local") && text.contains("maxretry"),
        "the error names file and option: {text}"
    );
    d.fail("carol", "192.0.2.20", 3);
    wait_until("the old configuration still bans", || {
        d.record().contains("+192.0.2.20|")
    });

    // A good change takes effect, bans survive the reload.
    std::fs::write(d.tree.join("jail.local"), jail_local(&d.log, "polling", 2)).unwrap();
    assert_eq!(stdout(&d.client(&["reload"])), "OK\n");
    assert_eq!(stdout(&d.client(&["get", "app", "maxretry"])), "2\n");
    let banned = stdout(&d.client(&["get", "app", "banned"]));
    assert!(
        banned.contains("192.0.2.10") && banned.contains("192.0.2.20"),
        "{banned}"
    );
    d.fail("dave", "192.0.2.30", 2);
    wait_until("maxretry 2 applies", || d.record().contains("+192.0.2.30|"));

    assert_eq!(stdout(&d.client(&["stop"])), "Shutdown successful\n");
    let out = d.client(&["ping"]);
    wait_until("the socket is gone", || !dir.path().join("s.sock").exists());
    assert_eq!(out.status.code(), Some(255));
}
