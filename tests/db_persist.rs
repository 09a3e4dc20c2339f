//! The SQLite database on real files: persistence across reopen, expiry, increment
//! history, positions, purge, restore, and import of a fail2ban-built database.

mod common;

use std::fs;
use std::process::Command;

use ironban::bans::Ticket;
use ironban::db::{first_line_hash, import_fail2ban_db, BanHistory, BanRecord, Db, RestorePolicy};
use rusqlite::Connection;

/// A fresh directory for one test, removed when the test ends.
fn temp_dir(name: &str) -> common::TempDir {
    common::TempDir::new(&format!("db-{name}"))
}

fn ban(jail: &str, id: &str, time: i64, ban_time: i64, count: u32) -> BanRecord {
    let mut ticket = Ticket::new(id, time as f64);
    ticket.ban_count = count;
    ticket.matches.push(&format!("fail from {id}"));
    BanRecord::from_ticket(jail, &ticket, ban_time, 10)
}

#[test]
fn a_ban_that_cannot_be_written_whole_leaves_no_row() {
    let dir = temp_dir("halfrow");
    let path = dir.join("ironban.sqlite3");
    let mut db = Db::open(&path).expect("open");
    db.add_ban(&ban("sshd", "192.0.2.1", 1000, 600, 1))
        .expect("first ban");
    // The second of its two rows cannot be written: the first is rolled back.
    let other = Connection::open(&path).expect("second connection");
    other.execute_batch("DROP TABLE bips").expect("drop bips");
    assert!(db.add_ban(&ban("sshd", "192.0.2.2", 1000, 600, 1)).is_err());
    let count = |table: &str| -> i64 {
        other
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(count("bans"), 1);
    // The connection is usable again once the table is back.
    other
        .execute_batch(
            "CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, \
             bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, \
             PRIMARY KEY(ip, jail))",
        )
        .expect("recreate bips");
    db.add_ban(&ban("sshd", "192.0.2.3", 1000, 600, 1))
        .expect("third ban");
    assert_eq!((count("bans"), count("bips")), (2, 1));
}

#[test]
fn bans_survive_reopen_and_expired_are_not_returned() {
    let dir = temp_dir("reopen");
    let path = dir.join("ironban.sqlite3");
    {
        let mut db = Db::open(&path).expect("open");
        db.add_jail("sshd").expect("jail");
        db.add_ban(&ban("sshd", "1.2.3.4", 1000, 600, 1))
            .expect("ban");
        db.add_ban(&ban("sshd", "5.6.7.8", 100, 600, 1))
            .expect("ban");
        db.add_ban(&ban("sshd", "9.9.9.9", 100, -1, 1))
            .expect("ban");
        db.add_ban(&ban("other", "1.2.3.4", 1000, 600, 1))
            .expect("ban");
    }
    let db = Db::open(&path).expect("reopen");
    let active: Vec<String> = db
        .active_bans("sshd", 1200)
        .expect("active")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, vec!["1.2.3.4", "9.9.9.9"]);
    let records = db.active_bans("sshd", 1200).expect("active");
    assert_eq!(records[0].matches(), vec!["fail from 1.2.3.4"]);
    assert_eq!(records[0].time_of_ban, 1000);
    // End is exclusive: timeofban + bantime must be > now.
    assert!(db
        .active_bans("sshd", 1600)
        .expect("active")
        .iter()
        .all(|r| r.id != "1.2.3.4"));
    let mode: String = Connection::open(&path)
        .expect("raw open")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_pass_commits_its_bans_and_position_together() {
    let dir = temp_dir("pass");
    let path = dir.join("ironban.sqlite3");
    let mut db = Db::open(&path).expect("open");
    db.add_jail("sshd").expect("jail");
    let outside = || -> (i64, i64) {
        let raw = Connection::open(&path).expect("raw open");
        let bans = raw
            .query_row("SELECT count(*) FROM bips", [], |r| r.get(0))
            .expect("count bips");
        let logs = raw
            .query_row("SELECT count(*) FROM logs", [], |r| r.get(0))
            .expect("count logs");
        (bans, logs)
    };
    db.begin_pass().expect("begin");
    db.add_ban(&ban("sshd", "1.2.3.4", 1000, 600, 1))
        .expect("ban");
    db.add_ban(&ban("sshd", "5.6.7.8", 1000, 600, 1))
        .expect("ban");
    db.set_position("sshd", "/var/log/auth.log", "hash", 4096)
        .expect("position");
    assert_eq!(outside(), (0, 0), "nothing visible before the pass ends");
    db.end_pass().expect("commit");
    assert_eq!(outside(), (2, 1));
    // Outside a pass each write commits at once.
    db.add_ban(&ban("sshd", "9.9.9.9", 1000, 600, 1))
        .expect("ban");
    assert_eq!(outside(), (3, 1));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn ban_history_for_increment() {
    let dir = temp_dir("history");
    let mut db = Db::open(&dir.join("db")).expect("open");
    assert_eq!(db.ban_count("1.2.3.4", Some("sshd")).expect("count"), None);
    for (n, t) in [(1, 100), (2, 200), (3, 300)] {
        db.add_ban(&ban("sshd", "1.2.3.4", t, 2 << n, n))
            .expect("ban");
    }
    db.add_ban(&ban("web", "1.2.3.4", 400, 10, 2)).expect("ban");
    assert_eq!(
        db.ban_count("1.2.3.4", Some("sshd")).expect("count"),
        Some(BanHistory {
            ban_count: 3,
            last_time_of_ban: 300,
            ban_time: 16
        })
    );
    // overalljails: sums over jails, latest time.
    assert_eq!(
        db.ban_count("1.2.3.4", None).expect("count"),
        Some(BanHistory {
            ban_count: 5,
            last_time_of_ban: 400,
            ban_time: 26
        })
    );
    // One history row per ban, one bips row per (id, jail).
    assert_eq!(db.ban_history_len("1.2.3.4", "sshd").expect("len"), 3);
    assert_eq!(db.active_bans("sshd", 0).expect("active").len(), 1);
}

#[test]
fn remove_ban_deletes_history_and_latest() {
    let dir = temp_dir("remove");
    let mut db = Db::open(&dir.join("db")).expect("open");
    db.add_ban(&ban("sshd", "1.2.3.4", 100, 600, 1))
        .expect("ban");
    db.add_ban(&ban("web", "1.2.3.4", 100, 600, 1))
        .expect("ban");
    db.add_ban(&ban("web", "5.5.5.5", 100, 600, 1))
        .expect("ban");
    assert_eq!(db.remove_ban(Some("sshd"), "1.2.3.4").expect("remove"), 1);
    assert_eq!(db.ban_history_len("1.2.3.4", "sshd").expect("len"), 0);
    assert_eq!(db.active_bans("web", 0).expect("active").len(), 2);
    assert_eq!(db.remove_ban(None, "1.2.3.4").expect("remove"), 1);
    db.remove_jail_bans(Some("web")).expect("remove all");
    assert!(db.active_bans("web", 0).expect("active").is_empty());
}

#[test]
fn log_positions_resume_only_with_same_first_line() {
    let dir = temp_dir("positions");
    let path = dir.join("db");
    let hash = first_line_hash(b"Jan  1 00:00:00 host sshd[1]: first\n");
    assert_eq!(hash.len(), 40);
    {
        let db = Db::open(&path).expect("open");
        db.set_position("sshd", "/var/log/auth.log", &hash, 4096)
            .expect("set");
        db.set_position("sshd", "/var/log/auth.log", &hash, 8192)
            .expect("update");
    }
    let db = Db::open(&path).expect("reopen");
    assert_eq!(
        db.position("sshd", "/var/log/auth.log").expect("pos"),
        Some((hash.clone(), 8192))
    );
    assert_eq!(
        db.resume_position("sshd", "/var/log/auth.log", &hash)
            .expect("resume"),
        8192
    );
    let rotated = first_line_hash(b"other first line\n");
    assert_eq!(
        db.resume_position("sshd", "/var/log/auth.log", &rotated)
            .expect("resume"),
        0
    );
    assert_eq!(db.position("web", "/var/log/auth.log").expect("pos"), None);
}

#[test]
fn purge_drops_old_history_and_outdated_bans() {
    let dir = temp_dir("purge");
    let mut db = Db::open(&dir.join("db")).expect("open");
    let day = 86_400;
    let now = 10 * day;
    db.add_ban(&ban("sshd", "old", now - 3 * day, 600, 1))
        .expect("ban");
    db.add_ban(&ban("sshd", "perm", now - 3 * day, -1, 1))
        .expect("ban");
    db.add_ban(&ban("sshd", "long", now - 3 * day, day, 1))
        .expect("ban");
    db.add_ban(&ban("sshd", "new", now - 60, 600, 1))
        .expect("ban");
    db.add_jail("gone").expect("jail");
    db.disable_jail("gone").expect("disable");
    db.purge(now, day).expect("purge");
    let mut kept: Vec<String> = db
        .active_bans("sshd", 0)
        .expect("active")
        .into_iter()
        .map(|r| r.id)
        .collect();
    kept.sort();
    // bips: old (3 d + 3*600 s < now - 1 d) goes; permanent and 3*bantime reaching
    // past the purge limit stay.
    assert_eq!(kept, vec!["long", "new", "perm"]);
    assert_eq!(db.ban_history_len("old", "sshd").expect("len"), 0);
    assert_eq!(db.ban_history_len("new", "sshd").expect("len"), 1);
    assert!(!db.jails().expect("jails").contains(&"gone".to_string()));
}

#[test]
fn restore_clamps_to_current_jail_bantime() {
    let dir = temp_dir("restore");
    let mut db = Db::open(&dir.join("db")).expect("open");
    let now = 100_000;
    db.add_ban(&ban("sshd", "perm", now - 100, -1, 2))
        .expect("ban");
    db.add_ban(&ban("sshd", "long", now - 100, 7200, 1))
        .expect("ban");
    db.add_ban(&ban("sshd", "ancient", now - 5000, 7200, 1))
        .expect("ban");
    let permanent_jail = RestorePolicy {
        jail_ban_time: -1,
        increment: false,
        max_time: None,
    };
    let all = db
        .bans_to_restore("sshd", now, &permanent_jail)
        .expect("restore");
    let perm = all.iter().find(|r| r.id == "perm").expect("perm restored");
    assert_eq!(perm.ban_time, -1);
    assert_eq!(all.len(), 3);
    let short_jail = RestorePolicy {
        jail_ban_time: 600,
        increment: false,
        max_time: None,
    };
    let short = db
        .bans_to_restore("sshd", now, &short_jail)
        .expect("restore");
    let ids: Vec<(&str, i64)> = short.iter().map(|r| (r.id.as_str(), r.ban_time)).collect();
    assert_eq!(ids, vec![("long", 600), ("perm", 600)]);
    let ticket = short[1].to_ticket();
    assert!(ticket.restored);
    assert_eq!(
        ticket.ban_count, 3,
        "<bancount> of a restored ban is DB count + 1"
    );
    assert_eq!(ticket.time, (now - 100) as f64);
    let increment = RestorePolicy {
        jail_ban_time: 600,
        increment: true,
        max_time: Some(3600),
    };
    let inc = db
        .bans_to_restore("sshd", now, &increment)
        .expect("restore");
    let ids: Vec<(&str, i64)> = inc.iter().map(|r| (r.id.as_str(), r.ban_time)).collect();
    assert_eq!(ids, vec![("long", 3600), ("perm", 3600)]);
}

/// A database created with fail2ban 1.1's own SQL (spec 4.6), as a real fail2ban leaves it.
fn build_fail2ban_db(path: &std::path::Path) {
    let conn = Connection::open(path).expect("create fail2ban db");
    conn.execute_batch(
        "PRAGMA foreign_keys=ON;
         CREATE TABLE fail2banDb(version INTEGER);
         INSERT INTO fail2banDb(version) VALUES(4);
         CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);
         CREATE INDEX jails_name ON jails(name);
         CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0, FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, UNIQUE(jail, path),UNIQUE(jail, path, firstlinemd5));
         CREATE INDEX logs_path ON logs(path);
         CREATE INDEX logs_jail_path ON logs(jail, path);
         CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, FOREIGN KEY(jail) REFERENCES jails(name) );
         CREATE INDEX bans_jail_timeofban_ip ON bans(jail, timeofban);
         CREATE INDEX bans_jail_ip ON bans(jail, ip);
         CREATE INDEX bans_ip ON bans(ip);
         CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail), FOREIGN KEY(jail) REFERENCES jails(name) );
         CREATE INDEX bips_timeofban ON bips(timeofban);
         CREATE INDEX bips_ip ON bips(ip);
         INSERT INTO jails VALUES('sshd', 1);
         INSERT INTO jails VALUES('old', 0);
         INSERT INTO logs VALUES('sshd', '/var/log/auth.log', 'f572d396fae9206628714fb2ce00f72e94f2258f', 1234);",
    )
    .expect("fail2ban schema");
    let data = "{\"matches\": [[\"\", \"\", \"fail user=ALICE1 from 5.5.5.5\"], \"fail user=ALICE2 from 5.5.5.5\"], \"failures\": 3, \"user\": \"ALICE1\", \"ip4\": \"5.5.5.5\"}";
    for (table, count, time) in [("bans", 1, 1000), ("bans", 2, 2000), ("bips", 2, 2000)] {
        conn.execute(
            &format!(
                "INSERT INTO {table}(jail, ip, timeofban, bantime, bancount, data) VALUES('sshd', '5.5.5.5', ?, 600, ?, ?)"
            ),
            rusqlite::params![time, count, data.as_bytes()],
        )
        .expect("insert ban");
    }
    // A ban time with `rndtime` is a float in fail2ban; data may also be plain text.
    conn.execute(
        "INSERT INTO bips VALUES('6.6.6.6', 'sshd', 2000, 900.75, 1, '{\"failures\": 1}')",
        [],
    )
    .expect("insert real bantime");
    conn.execute(
        "INSERT INTO bips VALUES('9.9.9.9', 'old', 50, -1, 1, ?)",
        [b"{\"matches\": [], \"failures\": 0}".as_slice()],
    )
    .expect("insert bip");
}

#[test]
fn import_of_a_fail2ban_database() {
    let dir = temp_dir("import");
    let src = dir.join("fail2ban.sqlite3");
    let dst = dir.join("ironban.sqlite3");
    build_fail2ban_db(&src);
    let counts = import_fail2ban_db(&src, &dst).expect("import");
    assert_eq!(counts.bans, 2);
    assert_eq!(counts.bips, 3);
    assert_eq!(counts.logs, 1);
    assert_eq!(counts.jails, 2);
    let db = Db::open(&dst).expect("open imported");
    let active = db.active_bans("sshd", 2100).expect("active");
    assert_eq!(active.len(), 2);
    assert_eq!(active[1].id, "6.6.6.6");
    assert_eq!(active[1].ban_time, 900);
    assert_eq!(active[1].to_ticket().failures, 1);
    assert_eq!(active[0].ban_count, 2);
    assert_eq!(
        active[0].matches(),
        vec![
            "fail user=ALICE1 from 5.5.5.5",
            "fail user=ALICE2 from 5.5.5.5"
        ]
    );
    let ticket = active[0].to_ticket();
    assert_eq!(ticket.failures, 3);
    assert_eq!(ticket.data.get("user"), Some("ALICE1"));
    assert_eq!(db.ban_history_len("5.5.5.5", "sshd").expect("len"), 2);
    assert_eq!(
        db.active_bans("old", 1_000_000).expect("perm")[0].ban_time,
        -1
    );
    assert_eq!(
        db.position("sshd", "/var/log/auth.log").expect("pos"),
        Some(("f572d396fae9206628714fb2ce00f72e94f2258f".to_string(), 1234))
    );
    // Same schema: a fail2ban database also opens directly as ours.
    let direct = Db::open(&src).expect("fail2ban db opens as ours");
    assert_eq!(direct.active_bans("sshd", 2100).expect("active").len(), 2);
}

#[test]
fn import_rejects_non_fail2ban_files() {
    let dir = temp_dir("reject");
    let src = dir.join("random.sqlite3");
    Connection::open(&src)
        .expect("create")
        .execute_batch("CREATE TABLE t(x);")
        .expect("table");
    assert!(import_fail2ban_db(&src, &dir.join("dst")).is_err());
}

#[test]
fn import_db_command_uses_configured_dbfile_or_db_flag() {
    let dir = temp_dir("cli");
    let src = dir.join("fail2ban.sqlite3");
    build_fail2ban_db(&src);
    let conf = dir.join("conf");
    fs::create_dir_all(&conf).expect("conf dir");
    let configured = dir.join("configured.sqlite3");
    fs::write(
        conf.join("fail2ban.conf"),
        "[Definition]\nloglevel = INFO\ndbfile = /nonexistent/x.sqlite3\n",
    )
    .expect("write conf");
    fs::write(
        conf.join("fail2ban.local"),
        format!("[Definition]\ndbfile = {}\n", configured.display()),
    )
    .expect("write local");
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(&conf)
        .arg("import-db")
        .arg(&src)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 current bans"));
    assert_eq!(
        Db::open(&configured)
            .expect("open")
            .active_bans("sshd", 0)
            .expect("active")
            .len(),
        2
    );
    let flagged = dir.join("flag.sqlite3");
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(&conf)
        .arg("import-db")
        .arg(&src)
        .arg("--db")
        .arg(&flagged)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(flagged.exists());
}
