//! Action commands executed through a real shell: injection safety, timeouts,
//! start-on-demand, check/repair sequences, flush, ignorecommand.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use ironban::actions::{
    execute, run_ignorecommand, ActionRunner, CommandAction, ShellCommand, TagValues,
};
use ironban::bans::Ticket;

/// A fresh directory for one test, removed when the test ends.
fn temp_dir(name: &str) -> common::TempDir {
    common::TempDir::new(&format!("actions-{name}"))
}

fn props(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn log_lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_string).collect()
}

#[test]
fn hostile_log_values_arrive_byte_exact_and_nothing_runs() {
    let dir = temp_dir("inject");
    let marker = dir.join("pwned");
    let m = marker.display();
    let hostile_match = format!(
        "fail $(touch {m}) `touch {m}` ; touch {m} | touch {m} && 'q' \"dq\" \\ * ~ <x>\nsecond line\r"
    );
    let hostile_user = format!("root$(touch {m});`touch {m}`'\"\n");
    let hostile_id = format!("1.2.3.4;touch {m}");
    let out = dir.display();
    let ban = format!(
        "printf '%s' \"<matches>\" > {out}/matches; printf '%s' \"<F-USER>\" > {out}/user; \
         printf '%s' \"<ip>\" > {out}/ip; printf '%s' \"<fid>\" > {out}/fid"
    );
    let action = CommandAction::new("probe", props(&[("actionban", ban)]));
    let mut runner = ActionRunner::new("sshd", 600, vec![action]);
    let mut ticket = Ticket::new(hostile_id.clone(), 1000.5);
    ticket.matches = [hostile_match.as_str(), "tail"].into_iter().collect();
    ticket.data.insert("user", &hostile_user);
    runner.ban(&ticket).expect("ban succeeds");

    assert!(!marker.exists(), "a log-derived value was executed");
    assert_eq!(read(&dir.join("matches")), format!("{hostile_match}\ntail"));
    assert_eq!(read(&dir.join("user")), hostile_user);
    assert_eq!(read(&dir.join("ip")), hostile_id);
    assert_eq!(read(&dir.join("fid")), hostile_id);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn matches_property_is_backslash_escaped_in_static_pass() {
    let dir = temp_dir("escprop");
    let out = dir.join("out");
    let action = CommandAction::new(
        "p",
        props(&[
            ("matches", "a;b".to_string()),
            ("actionban", format!("echo <matches> > {}", out.display())),
        ]),
    );
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.ban(&Ticket::new("1.2.3.4", 1.0)).expect("ban");
    assert_eq!(read(&out), "a;b\n");
}

#[test]
fn timeout_kills_the_whole_group_including_grandchildren() {
    let dir = temp_dir("timeout");
    let pidfile = dir.join("pid");
    let script = format!(
        "sh -c 'sleep 30 & echo $! > {}; wait' ; sleep 30",
        pidfile.display()
    );
    let started = Instant::now();
    let output = execute(&ShellCommand::plain(script), Duration::from_millis(500));
    let elapsed = started.elapsed();
    assert!(output.timed_out);
    assert!(!output.success);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let pid = read(&pidfile).trim().to_string();
    assert!(!pid.is_empty(), "grandchild pid recorded");
    // Give init a moment to reap the orphan.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let gone = stat.is_empty() || stat.contains(") Z ");
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grandchild {pid} still alive: {stat}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn output_and_exit_code_are_captured() {
    let output = execute(
        &ShellCommand {
            script: "echo out; echo err >&2; echo \"$0-$1\"; exit 3".to_string(),
            args: vec!["a b".to_string(), "c".to_string()],
        },
        Duration::from_secs(10),
    );
    assert_eq!(output.exit_code, Some(3));
    assert!(!output.success);
    assert_eq!(output.stdout, "out\na b-c\n");
    assert_eq!(output.stderr, "err\n");
}

fn recording_action(log: &Path, extra: &[(&str, &str)]) -> CommandAction {
    let l = log.display();
    let mut pairs = vec![
        ("actionstart", format!("echo start <family> '<ip>' >> {l}")),
        ("actionstop", format!("echo stop <family> >> {l}")),
        ("actionflush", format!("echo flush <family> >> {l}")),
        ("actionban", format!("echo ban <family> <ip> >> {l}")),
        ("actionunban", format!("echo unban <ip> >> {l}")),
    ];
    for (k, v) in extra {
        pairs.push((k, v.replace("LOG", &l.to_string())));
    }
    CommandAction::new("rec", props(&pairs))
}

#[test]
fn conditional_action_starts_each_family_on_demand() {
    let dir = temp_dir("ondemand");
    let log = dir.join("log");
    let action = recording_action(&log, &[("actionban?family=inet6", "echo ban6 <ip> >> LOG")]);
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.start().expect("start");
    assert!(log_lines(&log).is_empty(), "no command at jail start");
    let v4 = Ticket::new("1.2.3.4", 1.0);
    let v4b = Ticket::new("1.2.3.5", 1.0);
    let v6 = Ticket::new("2001:db8::1", 1.0);
    runner.ban(&v4).expect("ban v4");
    runner.ban(&v4b).expect("ban v4b");
    runner.ban(&v6).expect("ban v6");
    runner.stop(&[v4, v4b, v6]).expect("stop");
    assert_eq!(
        log_lines(&log),
        vec![
            "start inet4 ",
            "ban inet4 1.2.3.4",
            "ban inet4 1.2.3.5",
            "start inet6 ",
            "ban6 2001:db8::1",
            "flush inet4",
            "flush inet6",
            "stop inet4",
            "stop inet6",
        ]
    );
}

#[test]
fn plain_action_starts_at_jail_start_and_unbans_only_with_items() {
    let dir = temp_dir("plain");
    let log = dir.join("log");
    let mut action = recording_action(&log, &[("actionstop", "echo stop >> LOG")]);
    action.set_property("actionflush", "");
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    let never_banned = Ticket::new("9.9.9.9", 1.0);
    runner.unban(&never_banned).expect("unban without items");
    runner.start().expect("start");
    let t = Ticket::new("1.2.3.4", 1.0);
    runner.ban(&t).expect("ban");
    runner.unban(&t).expect("unban");
    // Without actionflush, stop unbans each ticket. The ban marked family inet4 started
    // too; its stop command is identical to the one of family '' and runs once.
    runner.stop(&[t]).expect("stop");
    assert_eq!(
        log_lines(&log),
        vec![
            "start ",
            "ban inet4 1.2.3.4",
            "unban 1.2.3.4",
            "unban 1.2.3.4",
            "stop",
        ]
    );
}

#[test]
fn failing_ban_without_check_runs_twice() {
    let dir = temp_dir("twice");
    let log = dir.join("log");
    let action = recording_action(&log, &[("actionban", "echo ban >> LOG; false")]);
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.start().expect("start");
    let errors = runner
        .ban(&Ticket::new("1.2.3.4", 1.0))
        .expect_err("ban fails");
    assert_eq!(errors.len(), 1);
    assert_eq!(log_lines(&log), vec!["start ", "ban", "ban"]);
}

#[test]
fn check_and_repair_sequence() {
    let dir = temp_dir("repair");
    let log = dir.join("log");
    let flag = dir.join("repaired");
    let f = flag.display().to_string();
    let ban = format!("echo ban >> LOG; test -e {f}");
    let check = format!("echo check >> LOG; test -e {f}");
    let repair = format!("echo repair >> LOG; touch {f}");
    let action = recording_action(
        &log,
        &[
            ("actionban", &ban),
            ("actioncheck", &check),
            ("actionrepair", &repair),
        ],
    );
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.start().expect("start");
    runner
        .ban(&Ticket::new("1.2.3.4", 1.0))
        .expect("ban after repair");
    assert_eq!(
        log_lines(&log),
        vec!["start ", "ban", "check", "repair", "check", "ban"]
    );
    assert_eq!(runner.actions[0].ban_epoch, 1);
}

#[test]
fn check_without_repair_restarts_and_gives_up() {
    let dir = temp_dir("norepair");
    let log = dir.join("log");
    let action = recording_action(
        &log,
        &[
            ("actionban", "echo ban >> LOG; false"),
            ("actioncheck", "echo check >> LOG; false"),
            ("actionstart", "echo start >> LOG"),
        ],
    );
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    assert!(runner.ban(&Ticket::new("1.2.3.4", 1.0)).is_err());
    assert_eq!(log_lines(&log), vec!["ban", "check", "start", "check"]);
    let messages = runner.take_messages();
    assert!(messages
        .iter()
        .any(|(_, m)| m.contains("Unable to restore environment")));
}

#[test]
fn failed_unban_with_failing_check_does_not_repair() {
    let dir = temp_dir("unbanfail");
    let log = dir.join("log");
    let action = recording_action(
        &log,
        &[
            ("actionunban", "echo unban >> LOG; false"),
            ("actioncheck", "echo check >> LOG; false"),
            ("actionrepair", "echo repair >> LOG"),
        ],
    );
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.start().expect("start");
    let t = Ticket::new("1.2.3.4", 1.0);
    runner.ban(&t).expect("ban");
    assert!(runner.unban(&t).is_err());
    assert_eq!(
        log_lines(&log),
        vec!["start ", "ban inet4 1.2.3.4", "unban", "check"]
    );
}

#[test]
fn flush_replaces_per_ip_unbans() {
    let dir = temp_dir("flush");
    let log = dir.join("log");
    let action = recording_action(&log, &[]);
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.start().expect("start");
    let tickets = vec![Ticket::new("1.2.3.4", 1.0), Ticket::new("1.2.3.5", 1.0)];
    for t in &tickets {
        runner.ban(t).expect("ban");
    }
    runner.flush(&tickets).expect("flush");
    assert_eq!(
        log_lines(&log),
        vec![
            "start ",
            "ban inet4 1.2.3.4",
            "ban inet4 1.2.3.5",
            "flush inet4"
        ]
    );
    // After a flush the family has no items: unbans are skipped.
    runner.unban(&tickets[0]).expect("unban");
    assert_eq!(log_lines(&log).len(), 4);
}

#[test]
fn norestored_actions_skip_restored_tickets() {
    let dir = temp_dir("norestored");
    let log = dir.join("log");
    let mail = CommandAction::new(
        "mail",
        props(&[
            ("norestored", "1".to_string()),
            ("actionban", format!("echo mail <ip> >> {}", log.display())),
        ]),
    );
    let fw = CommandAction::new(
        "fw",
        props(&[(
            "actionban",
            format!(
                "echo fw <ip> <restored> <bancount> <time> >> {}",
                log.display()
            ),
        )]),
    );
    let mut runner = ActionRunner::new("j", 600, vec![mail, fw]);
    let mut restored = Ticket::new("1.2.3.4", 1700000000.0);
    restored.restored = true;
    restored.ban_count = 3;
    runner.ban(&restored).expect("ban");
    runner.ban(&Ticket::new("5.6.7.8", 12.5)).expect("ban");
    assert_eq!(
        log_lines(&log),
        vec![
            "fw 1.2.3.4 1 3 1700000000",
            "mail 5.6.7.8",
            "fw 5.6.7.8 0 0 12.5"
        ]
    );
}

#[test]
fn ignorecommand_exit_codes_and_safe_values() {
    let dir = temp_dir("ignore");
    let marker = dir.join("pwned");
    let mut ticket = Ticket::new("1.2.3.4", 1.0);
    ticket
        .data
        .insert("user", &format!("$(touch {})", marker.display()));
    let values = TagValues::from_ticket(&ticket, 600);
    assert_eq!(
        run_ignorecommand("test \"<F-USER>\" = '$(touch '*; exit 0", &values),
        Ok(true)
    );
    assert_eq!(run_ignorecommand("test <ip> = 9.9.9.9", &values), Ok(false));
    assert!(run_ignorecommand("exit 2", &values).is_err());
    assert!(!marker.exists());
}

#[test]
fn consistency_check_repairs_and_is_rate_limited() {
    let dir = temp_dir("consistency");
    let log = dir.join("log");
    let flag = dir.join("ok");
    let f = flag.display().to_string();
    let check = format!("echo check >> LOG; test -e {f}");
    let repair = format!("echo repair >> LOG; touch {f}");
    let action = recording_action(&log, &[("actioncheck", &check), ("actionrepair", &repair)]);
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    runner.start().expect("start");
    let mut last = None;
    assert!(
        runner.consistency_check(100.0, &mut last),
        "repair raises the epoch"
    );
    assert!(!runner.consistency_check(101.0, &mut last), "rate limited");
    assert!(!runner.consistency_check(104.0, &mut last), "sane now");
    assert_eq!(runner.ban_epoch(), 1);
    assert_eq!(
        log_lines(&log),
        vec!["start ", "check", "repair", "check", "check"]
    );
}

#[test]
fn failed_on_demand_start_aborts_the_ban_and_is_retried() {
    let dir = temp_dir("startfail");
    let log = dir.join("log");
    let flag = dir.join("ready");
    let f = flag.display().to_string();
    let start = format!("echo start >> LOG; test -e {f}");
    let action = recording_action(
        &log,
        &[
            ("actionstart", &start),
            ("actionban?family=inet6", "echo ban6 >> LOG"),
        ],
    );
    let mut runner = ActionRunner::new("j", 600, vec![action]);
    assert!(runner.ban(&Ticket::new("1.2.3.4", 1.0)).is_err());
    fs::write(&flag, "").expect("flag");
    runner
        .ban(&Ticket::new("1.2.3.5", 1.0))
        .expect("second ban");
    assert_eq!(log_lines(&log), vec!["start", "start", "ban inet4 1.2.3.5"]);
}

#[test]
fn background_process_holding_the_output_does_not_delay_the_result() {
    let started = Instant::now();
    let output = execute(
        &ShellCommand::plain("sleep 5 & echo started".to_string()),
        Duration::from_secs(10),
    );
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(output.stdout, "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited for the background process: {:?}",
        started.elapsed()
    );
}

#[test]
fn output_written_through_dev_stderr_is_kept_in_order() {
    let output = execute(
        &ShellCommand::plain("echo one >&2; echo two >/dev/stderr; echo three >&2".to_string()),
        Duration::from_secs(10),
    );
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(output.stderr, "one\ntwo\nthree\n");
}
