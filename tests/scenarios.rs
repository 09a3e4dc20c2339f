//! The five migration scenarios of the README, each driven only by the shipped `jail.d` file
//! (enabled by a `.local` that points it at a test log) and sample lines in the server's own
//! format. Every scenario runs the one-shot mode and the daemon. Real firewalls (iptables,
//! `ip route`) run inside network namespaces; pf does not exist on Linux, so its scenarios
//! use a recording stand-in `pfctl` first on PATH and assert the exact commands.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::daemon::{stdout, wait_until};
use common::netns::{Netns, CLIENT_IP};
use common::{append_lines, TempDir};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// ironban's own tree with only `jail_file` from `jail.d`, enabled through `local`.
fn own_tree(dir: &Path, jail_file: &str, local: &str) -> PathBuf {
    let tree = dir.join("conf");
    for sub in ["filter.d", "action.d"] {
        common::copy_dir(&repo().join(sub), &tree.join(sub));
    }
    for file in ["fail2ban.conf", "jail.conf", "paths-common.conf"] {
        std::fs::copy(repo().join(file), tree.join(file)).unwrap();
    }
    std::fs::create_dir_all(tree.join("jail.d")).unwrap();
    std::fs::copy(
        repo().join("jail.d").join(jail_file),
        tree.join("jail.d").join(jail_file),
    )
    .unwrap();
    let local_name = jail_file.replace(".conf", ".local");
    std::fs::write(tree.join("jail.d").join(local_name), local).unwrap();
    std::fs::write(
        tree.join("fail2ban.local"),
        format!(
            "[Definition]\nsocket = {d}/s.sock\npidfile = {d}/p.pid\ndbfile = {d}/db.sqlite3\n",
            d = dir.display()
        ),
    )
    .unwrap();
    tree
}

/// A directory with a `pfctl` that records its arguments, one call per line.
fn pfctl_stand_in(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("pfctl.calls");
    let script = bin.join("pfctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, record)
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn ironban(tree: &Path, path: Option<&Path>, ns: Option<&Netns>, args: &[&str]) -> Command {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.server])
                .arg(env!("CARGO_BIN_EXE_ironban"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_ironban")),
    };
    cmd.arg("-c").arg(tree).args(args);
    if let Some(bin) = path {
        cmd.env("PATH", path_with(bin));
    }
    cmd
}

fn run_once(tree: &Path, path: Option<&Path>, ns: Option<&Netns>) -> String {
    let out: Output = ironban(tree, path, ns, &["run-once"])
        .output()
        .expect("run-once");
    assert!(
        out.status.success(),
        "run-once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// The daemon for the rest of a test, killed on drop.
struct Server {
    tree: PathBuf,
    child: Option<std::process::Child>,
}

impl Server {
    fn start(tree: &Path, path: Option<&Path>, ns: Option<&Netns>) -> Server {
        let child = ironban(tree, path, ns, &["server", "-f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server");
        let server = Server {
            tree: tree.to_path_buf(),
            child: Some(child),
        };
        wait_until("the server answers", || {
            server.client(&["ping"]).contains("pong")
        });
        server
    }

    fn client(&self, words: &[&str]) -> String {
        stdout(
            &ironban(&self.tree, None, None, &["client"])
                .args(words)
                .output()
                .expect("client"),
        )
    }

    fn stop(mut self) {
        let _ = self.client(&["stop"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn syslog_now() -> String {
    chrono::Local::now().format("%b %e %H:%M:%S").to_string()
}

fn kerio_now() -> String {
    chrono::Local::now().format("%d/%b/%Y %H:%M:%S").to_string()
}

fn kerio_failures(ip: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "[{}] Failed SMTP login from {ip} with SASL method LOGIN, user u{i}@example.com",
                kerio_now()
            )
        })
        .collect()
}

fn calls(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn scenario_1_kerio_pf_with_success_exclusion_and_whitelist() {
    let dir = TempDir::new("scen1");
    let d = dir.path();
    let (bin, record) = pfctl_stand_in(d);
    let (security, audit) = (d.join("security.log"), d.join("audit.log"));
    let tree = own_tree(
        d,
        "kerio-pf.conf",
        &format!(
            "[kerio-pf]\nenabled = true\nlogpath = {}\nsuccesslogpath = {}\nignoreself = false\n",
            security.display(),
            audit.display()
        ),
    );
    // Failed SMTP logins: an attacker, a whitelisted office address (192.0.2.0/24 in the
    // shipped jail) and a user who also logged in successfully.
    append_lines(&security, &kerio_failures("203.0.113.5", 5));
    append_lines(&security, &kerio_failures("192.0.2.9", 6));
    append_lines(&security, &kerio_failures("203.0.113.6", 5));
    append_lines(
        &audit,
        &[format!(
            "[{}] IMAP: User john@example.com authenticated from IP address 203.0.113.6",
            kerio_now()
        )],
    );
    let report = run_once(&tree, Some(&bin), None);
    assert!(report.contains("ban 203.0.113.5 in kerio-pf"), "{report}");
    assert_eq!(report.lines().count(), 1, "only the attacker: {report}");
    assert_eq!(
        calls(&record),
        vec![
            "-s info",
            "-q -t kerio -T add 203.0.113.5",
            "-q -k 203.0.113.5"
        ]
    );

    // The daemon restores the ban into the table, then bans a new attacker.
    std::fs::remove_file(&record).unwrap();
    let server = Server::start(&tree, Some(&bin), None);
    append_lines(&security, &kerio_failures("203.0.113.7", 5));
    wait_until("203.0.113.7 is added to the table", || {
        calls(&record).contains(&"-q -t kerio -T add 203.0.113.7".to_string())
    });
    let status = server.client(&["status", "kerio-pf"]);
    assert!(
        status.contains("203.0.113.5") && status.contains("203.0.113.7"),
        "{status}"
    );
    server.stop();
    let calls = calls(&record);
    for ip in ["203.0.113.5", "203.0.113.7"] {
        assert!(
            calls.contains(&format!("-q -t kerio -T delete {ip}")),
            "{calls:?}"
        );
    }
    assert!(!calls
        .iter()
        .any(|c| c.contains("192.0.2.9") || c.contains("203.0.113.6")));
}

fn smtpd_session(session: &str, ip: &str, failures: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "{} mx smtpd[30123]: {session} smtp connected address={ip} host=<unknown>",
        syslog_now()
    )];
    for i in 0..failures {
        lines.push(format!(
            "{} mx smtpd[30123]: {session} smtp authentication user=u{i} result=permfail",
            syslog_now()
        ));
    }
    lines.push(format!(
        "{} mx smtpd[30123]: {session} smtp disconnected reason=quit",
        syslog_now()
    ));
    lines
}

#[test]
fn scenario_2_opensmtpd_cron_into_pf_table_bot() {
    let dir = TempDir::new("scen2");
    let d = dir.path();
    let (bin, record) = pfctl_stand_in(d);
    let (maillog, ignore) = (d.join("maillog"), d.join("ignore"));
    std::fs::write(
        &ignore,
        "# never ban these\n192.0.2.0/24\n198.51.100.7 # backup MX\n",
    )
    .unwrap();
    let tree = own_tree(
        d,
        "opensmtpd-openbsd.conf",
        &format!(
            "[opensmtpd-bot]\nenabled = true\nlogpath = {}\n\
             ignoreip = 127.0.0.0/8 ::1 file:{}\nignoreself = false\n",
            maillog.display(),
            ignore.display()
        ),
    );
    // First cron run: 6 failures of the bot in one session, 12 of an ignored address.
    append_lines(
        &maillog,
        &smtpd_session("2d4a6b9c7e1f0a3b", "203.0.113.20", 6),
    );
    append_lines(
        &maillog,
        &smtpd_session("3e5b7c0d8f2a1b4c", "198.51.100.7", 12),
    );
    assert_eq!(run_once(&tree, Some(&bin), None), "");
    // Second run: 5 more in a new session make more than 10.
    append_lines(
        &maillog,
        &smtpd_session("4f6c8d1e9a3b2c5d", "203.0.113.20", 5),
    );
    let report = run_once(&tree, Some(&bin), None);
    assert!(
        report.starts_with("ban 203.0.113.20 in opensmtpd-bot"),
        "{report}"
    );
    // Third run: nothing new, nothing done twice.
    assert_eq!(run_once(&tree, Some(&bin), None), "");
    assert_eq!(
        calls(&record),
        vec![
            "-s info",
            "-s info",
            "-q -t bot -T add 203.0.113.20",
            "-q -k 203.0.113.20",
            "-s info"
        ]
    );

    // The same jail as a daemon.
    std::fs::remove_file(&record).unwrap();
    let server = Server::start(&tree, Some(&bin), None);
    append_lines(
        &maillog,
        &smtpd_session("5a7d9e2f0b4c3d6e", "203.0.113.21", 11),
    );
    wait_until("203.0.113.21 is added to bot", || {
        calls(&record).contains(&"-q -t bot -T add 203.0.113.21".to_string())
    });
    server.stop();
}

#[test]
fn scenario_3_kerio_jail_migrated_from_fail2ban_with_iptables_multiport() {
    common::require_root();
    let ns = Netns::create("s3", 25);
    let dir = TempDir::new("scen3");
    let d = dir.path();
    let security = d.join("security.log");
    let tree = own_tree(
        d,
        "kerio-fail2ban.conf",
        &format!(
            "[kerio]\nenabled = true\nlogpath = {}\nignoreself = false\n",
            security.display()
        ),
    );
    append_lines(&security, &kerio_failures(CLIENT_IP, 3));
    let report = run_once(&tree, None, Some(&ns));
    assert!(
        report.contains(&format!("ban {CLIENT_IP} in kerio")),
        "{report}"
    );
    let rules = ns.exec("iptables", &["-S"]);
    assert!(
        rules.contains("-A INPUT -p tcp -m multiport --dports 143,25,993,465 -j ib-kerio"),
        "{rules}"
    );
    assert!(
        rules.contains(&format!("-A ib-kerio -s {CLIENT_IP}/32 -j REJECT")),
        "{rules}"
    );
    assert!(!ns.client_connects(), "smtp is blocked for the client");

    // The daemon takes over the stored ban; unbanning opens the port again.
    let server = Server::start(&tree, None, Some(&ns));
    assert!(server.client(&["status", "kerio"]).contains(CLIENT_IP));
    assert_eq!(
        server.client(&["set", "kerio", "unbanip", CLIENT_IP]),
        "1\n"
    );
    wait_until("the client connects again", || ns.client_connects());
    server.stop();
}

fn postfix_failures(ip: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{} mx postfix/smtpd[{}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
                syslog_now(),
                3900 + i
            )
        })
        .collect()
}

#[test]
fn scenario_4_postfix_blackhole_routes() {
    common::require_root();
    let ns = Netns::create("s4", 8025);
    let dir = TempDir::new("scen4");
    let d = dir.path();
    let maillog = d.join("mail.log");
    let tree = own_tree(
        d,
        "postfix-blackhole.conf",
        &format!(
            "[postfix-blackhole]\nenabled = true\nlogpath = {}\nignoreself = false\n",
            maillog.display()
        ),
    );
    append_lines(&maillog, &postfix_failures(CLIENT_IP, 5));
    append_lines(&maillog, &postfix_failures("203.0.113.9", 2));
    let report = run_once(&tree, None, Some(&ns));
    assert!(
        report.contains(&format!("ban {CLIENT_IP} in postfix-blackhole")),
        "{report}"
    );
    let routes = ns.exec("ip", &["route", "show", "type", "blackhole"]);
    assert!(
        routes.contains(&format!("blackhole {CLIENT_IP}")),
        "{routes}"
    );
    assert!(
        !ns.client_connects(),
        "the blackhole route swallows the replies"
    );

    // Bans persist across the daemon's restart; the report lists offenders as JSON.
    let server = Server::start(&tree, None, Some(&ns));
    let json = server.client(&["--json", "status", "postfix-blackhole"]);
    assert!(json.contains(CLIENT_IP), "{json}");
    server.stop();
    let server = Server::start(&tree, None, Some(&ns));
    assert!(server
        .client(&["status", "postfix-blackhole"])
        .contains(CLIENT_IP));
    assert_eq!(server.client(&["unban", "--all"]), "1\n");
    wait_until("the route is gone", || {
        !ns.exec("ip", &["route", "show", "type", "blackhole"])
            .contains(CLIENT_IP)
    });
    assert!(ns.client_connects());
    server.stop();
}

fn sendmail_unknown_user(host: &str, ip: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{} {host} sm-mta[88377]: s1REn1un08837{i}: ruleset=check_rcpt, arg1=<u{i}@example.com>, \
                 relay=bad.example.net [{ip}], reject=550 5.1.1 <u{i}@example.com>... User unknown",
                syslog_now()
            )
        })
        .collect()
}

#[test]
fn scenario_5_sendmail_guessers_into_a_dedicated_chain() {
    common::require_root();
    let ns = Netns::create("s5", 25);
    let dir = TempDir::new("scen5");
    let d = dir.path();
    let (maillog, whitelist) = (d.join("mail.log"), d.join("whitelist"));
    std::fs::write(
        &whitelist,
        "# partners\n198.51.100.0/24\n# monitoring\n203.0.113.50\n",
    )
    .unwrap();
    let tree = own_tree(
        d,
        "sendmail-guessers.conf",
        &format!(
            "[sendmail-guessers]\nenabled = true\nlogpath = {}\n\
             ignoreip = 127.0.0.0/8 ::1 file:{}\nignoreself = false\n",
            maillog.display(),
            whitelist.display()
        ),
    );
    append_lines(&maillog, &sendmail_unknown_user("mail1", CLIENT_IP, 3));
    append_lines(&maillog, &sendmail_unknown_user("mail1", "198.51.100.9", 4));
    append_lines(&maillog, &sendmail_unknown_user("mail2", "203.0.113.77", 4));
    let report = run_once(&tree, None, Some(&ns));
    assert_eq!(
        report.lines().count(),
        1,
        "whitelisted and other hosts are not banned: {report}"
    );
    let rules = ns.exec("iptables", &["-S", "SPAM_UNAME_GUESSERS"]);
    assert!(
        rules.contains(&format!(
            "-A SPAM_UNAME_GUESSERS -s {CLIENT_IP}/32 -p tcp -m multiport --dports 25 -j DROP"
        )),
        "{rules}"
    );
    assert!(!ns.client_connects(), "port 25 is dropped for the guesser");

    // The daemon keeps the chain; stopping it releases the guesser.
    let server = Server::start(&tree, None, Some(&ns));
    assert!(server
        .client(&["status", "sendmail-guessers"])
        .contains(CLIENT_IP));
    server.stop();
    wait_until("the chain is gone after stop", || ns.client_connects());
}
