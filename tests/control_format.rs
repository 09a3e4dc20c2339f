//! fail2ban-client's output layouts (spec 5.4), byte for byte.

use ironban::control::{beautify, beautify_error, beautify_with, CommandError};
use serde_json::{json, Value};

fn words(text: &str) -> Vec<String> {
    text.split(' ').map(str::to_string).collect()
}

fn show(cmd: &str, value: Value) -> String {
    beautify(&words(cmd), &value)
}

fn jail_status(files: Value, banned: Value) -> Value {
    json!([
        [
            "Filter",
            [
                ["Currently failed", 0],
                ["Total failed", 3],
                ["File list", files]
            ]
        ],
        [
            "Actions",
            [
                ["Currently banned", 1],
                ["Total banned", 1],
                ["Banned IP list", banned]
            ]
        ]
    ])
}

#[test]
fn server_status() {
    let value = json!([["Number of jail", 2], ["Jail list", "test, test2"]]);
    assert_eq!(
        show("status", value),
        "Status\n|- Number of jail:\t2\n`- Jail list:\ttest, test2"
    );
}

#[test]
fn jail_status_tree() {
    let value = jail_status(json!(["/var/log/test.log"]), json!(["1.2.3.4"]));
    assert_eq!(
        show("status test", value),
        "Status for the jail: test\n\
         |- Filter\n\
         |  |- Currently failed:\t0\n\
         |  |- Total failed:\t3\n\
         |  `- File list:\t/var/log/test.log\n\
         `- Actions\n   \
            |- Currently banned:\t1\n   \
            |- Total banned:\t1\n   \
            `- Banned IP list:\t1.2.3.4"
    );
}

#[test]
fn jail_status_lists_join_with_spaces_and_empty_list_is_empty() {
    let value = jail_status(json!(["/a.log", "/b.log"]), json!([]));
    let text = show("status test", value);
    assert!(text.contains("|  `- File list:\t/a.log /b.log\n"), "{text}");
    assert!(text.ends_with("`- Banned IP list:\t"), "{text}");
}

#[test]
fn status_all() {
    let one = json!([
        [
            "Filter",
            [["Currently failed", 0], ["File list", ["/a.log"]]]
        ],
        ["Actions", [["Currently banned", 0], ["Banned IP list", []]]]
    ]);
    let value = json!([
        ["Number of jail", 2],
        ["Jail list", "a, b"],
        {"a": one.clone(), "b": one}
    ]);
    let expected = "Status\n\
|- Number of jail:\t2\n\
|- Jail list:\ta, b\n\
`- Status for the jails:\n   \
   |- Jail: a\n   \
   |  |- Filter\n   \
   |  |  |- Currently failed:\t0\n   \
   |  |  `- File list:\t/a.log\n   \
   |  `- Actions\n   \
   |     |- Currently banned:\t0\n   \
   |     `- Banned IP list:\t\n   \
   `- Jail: b\n      \
      |- Filter\n      \
      |  |- Currently failed:\t0\n      \
      |  `- File list:\t/a.log\n      \
      `- Actions\n         \
         |- Currently banned:\t0\n         \
         `- Banned IP list:\t";
    assert_eq!(show("status --all", value), expected);
}

#[test]
fn stats_table_utf8_and_ascii() {
    let value = json!({"test": ["polling", [0, 3], [1, 1]]});
    let expected = "          ║          ║ Filter    ║ Actions  \n \
Jail     ║ Backend  ╟───────────╫───────────\n          \
║          ║ cur │ tot ║ cur │ tot\n\
══════════╬══════════╬═══════════╬═══════════\n \
test     ║ polling  ║   0 │   3 ║   1 │   1\n\
══════════╩══════════╩═══════════╩═══════════";
    let got = show("stats", value.clone());
    assert_eq!(got, expected);
    let ascii = beautify_with(&words("stats"), &value, false);
    assert!(ascii.contains(" test     | polling  |   0 |   3 |   1 |   1"));
    assert!(ascii.contains("\n----------x----------x-----------x-----------\n"));
    assert!(ascii.ends_with(&format!("\n{}", "-".repeat(45))));
    assert!(ascii.contains(" Jail     | Backend  |-----------x-----------"));
    assert_eq!(show("stats", json!({})), "No jails found.");
}

#[test]
fn stats_columns_grow_with_content() {
    let value = json!({"a-very-long-jail": ["pyinotify", [12345, 3], [1, 1]]});
    let text = show("statistics", value);
    let row = text.lines().nth(4).expect("row line");
    assert_eq!(
        row,
        " a-very-long-jail ║ pyinotify ║ 12345 │   3 ║   1 │   1"
    );
}

#[test]
fn simple_replies() {
    assert_eq!(show("ping", json!("pong")), "Server replied: pong");
    assert_eq!(show("add test", json!("test")), "Added jail test");
    assert_eq!(show("start test", json!(null)), "Jail started");
    assert_eq!(show("stop test", json!(null)), "Jail stopped");
    assert_eq!(show("stop", json!(null)), "Shutdown successful");
    assert_eq!(show("flushlogs", json!("rolled over")), "logs: rolled over");
    assert_eq!(show("echo a b", json!(["a", "b"])), "a b");
    assert_eq!(show("reload", json!("OK")), "OK");
    assert_eq!(show("version", json!("1.1.0")), "1.1.0");
    assert_eq!(show("unban --all", json!(3)), "3");
    assert_eq!(show("server-status", json!("Server ready")), "Server ready");
}

#[test]
fn python_str_fallbacks() {
    assert_eq!(show("get test bantime", json!(600)), "600");
    assert_eq!(show("get test findtime", json!(5400.0)), "5400.0");
    assert_eq!(show("get test ignorecommand", json!(false)), "False");
    assert_eq!(show("get test bantime.increment", json!(null)), "None");
    assert_eq!(
        show("banned", json!([{"test": ["1.2.3.4"]}])),
        "[{'test': ['1.2.3.4']}]"
    );
    assert_eq!(show("banned 1.2.3.4 5.6.7.8", json!([1, 0])), "[1, 0]");
    assert_eq!(show("set test banip 1.2.3.4", json!(1)), "1");
}

#[test]
fn server_settings() {
    assert_eq!(
        show("get loglevel", json!("INFO")),
        "Current logging level is 'INFO'"
    );
    assert_eq!(
        show("set loglevel 20", json!(20)),
        "Current logging level is 'INFO'"
    );
    assert_eq!(
        show("get logtarget", json!("/var/log/fail2ban.log")),
        "Current logging target is:\n`- /var/log/fail2ban.log"
    );
    assert_eq!(
        show("get syslogsocket", json!("auto")),
        "Current syslog socket is:\n`- auto"
    );
    assert_eq!(
        show("get dbfile", json!("/var/lib/fail2ban/fail2ban.sqlite3")),
        "Current database file is:\n`- /var/lib/fail2ban/fail2ban.sqlite3"
    );
    assert_eq!(
        show("get dbfile", json!(null)),
        "Database currently disabled"
    );
    assert_eq!(
        show("get dbpurgeage", json!(86400)),
        "Current database purge age is:\n`- 86400seconds"
    );
    assert_eq!(
        show("get dbpurgeage", json!(null)),
        "Database currently disabled"
    );
}

#[test]
fn jail_lists() {
    assert_eq!(
        show("get test logpath", json!(["/a", "/b"])),
        "Current monitored log file(s):\n|- /a\n`- /b"
    );
    assert_eq!(
        show("get test logpath", json!([])),
        "No file is currently monitored"
    );
    assert_eq!(
        show(
            "set test addignoreip 10.0.0.0/8",
            json!(["10.0.0.0/8", "1.2.3.4"])
        ),
        "These IP addresses/networks are ignored:\n|- 10.0.0.0/8\n`- 1.2.3.4"
    );
    assert_eq!(
        show("get test ignoreip", json!([])),
        "No IP address/network is ignored"
    );
    assert_eq!(
        show("get test failregex", json!(["^a <HOST>$", "^b <HOST>$"])),
        "The following regular expression are defined:\n|- [0]: ^a <HOST>$\n`- [1]: ^b <HOST>$"
    );
    assert_eq!(
        show("get test ignoreregex", json!([])),
        "No regular expression is defined"
    );
    assert_eq!(
        show(
            "get test journalmatch",
            json!([["_SYSTEMD_UNIT=sshd.service", "_COMM=sshd"], ["_COMM=x"]])
        ),
        "Current match filter:\n_SYSTEMD_UNIT=sshd.service _COMM=sshd + _COMM=x"
    );
    assert_eq!(
        show("get test journalmatch", json!([])),
        "No journal match filter set"
    );
    assert_eq!(
        show("get test actions", json!(["nftables", "mail"])),
        "The jail test has the following actions:\nnftables, mail"
    );
    assert_eq!(
        show("get test logencoding", json!("UTF-8")),
        "Current log encoding is set to:\nUTF-8"
    );
}

#[test]
fn datepattern_forms() {
    assert_eq!(
        show("get test datepattern", json!(null)),
        "Current date pattern set to: Not set/required"
    );
    assert_eq!(
        show("get test datepattern", json!([null, "Epoch"])),
        "Current date pattern set to: Epoch"
    );
    assert_eq!(
        show("get test datepattern", json!(["%Y", "{^LN-BEG}Year"])),
        "Current date pattern set to: %Y ({^LN-BEG}Year)"
    );
}

#[test]
fn banip_separators() {
    let ips = json!(["1.2.3.4", "5.6.7.8"]);
    assert_eq!(show("get test banip", ips.clone()), "1.2.3.4 5.6.7.8");
    assert_eq!(show("get test banip ,", ips.clone()), "1.2.3.4,5.6.7.8");
    assert_eq!(show("get test banip --with-time", ips), "1.2.3.4\n5.6.7.8");
}

#[test]
fn errors() {
    let cmd = words("status nojail");
    assert_eq!(
        beautify_error(&cmd, &CommandError::unknown_jail("nojail")),
        "Sorry but the jail 'nojail' does not exist"
    );
    assert_eq!(
        beautify_error(&cmd, &CommandError::duplicate_jail("test")),
        "The jail 'test' already exists"
    );
    assert_eq!(
        beautify_error(&cmd, &CommandError::invalid_command()),
        "Sorry but the command is invalid"
    );
    assert_eq!(
        beautify_error(&cmd, &CommandError::other("Invalid command")),
        "Invalid command"
    );
}

#[test]
fn unexpected_shapes_do_not_panic() {
    for cmd in [
        "status",
        "status x",
        "status --all",
        "stats",
        "get x logpath",
        "get x datepattern",
        "get x failregex",
        "echo",
        "get dbpurgeage",
    ] {
        for value in [
            json!(null),
            json!(1),
            json!("s"),
            json!([1, [2]]),
            json!({"a": 1}),
            json!([["a"]]),
        ] {
            let _ = show(cmd, value);
        }
    }
    assert_eq!(show("status", json!(7)), "7");
}

#[test]
fn stats_table_with_several_rows_matches_fail2ban() {
    // Expected text produced by fail2ban 1.1's table algorithm for the same input.
    let value = json!({
        "a-very-long-jail": ["pyinotify", [12345, 3], [1, 1]],
        "b": ["auto", [0, 0], [0, 123456]]
    });
    let expected = concat!(
        "                  ║           ║ Filter      ║ Actions     \n",
        " Jail             ║ Backend   ╟─────────────╫──────────────\n",
        "                  ║           ║   cur │ tot ║ cur │    tot\n",
        "══════════════════╬═══════════╬═════════════╬══════════════\n",
        " a-very-long-jail ║ pyinotify ║ 12345 │   3 ║   1 │      1\n",
        " b                ║ auto      ║     0 │   0 ║   0 │ 123456\n",
        "══════════════════╩═══════════╩═════════════╩══════════════"
    );
    assert_eq!(show("stats", value), expected);
}
