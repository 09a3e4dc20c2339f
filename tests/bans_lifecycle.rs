//! Ban lifecycle across modules: failures → ban → actions → database → increment → unban,
//! the way the server drives them (spec 4, tests "lifecycle").

mod common;

use std::fs;

use ironban::actions::{ActionRunner, CommandAction};
use ironban::bans::{
    apply_increment, BanManager, BanOutcome, BanTimeIncrement, FailManager, TicketData,
};
use ironban::db::{BanRecord, Db};

/// A fresh directory for one test, removed when the test ends.
fn temp_dir(name: &str) -> common::TempDir {
    common::TempDir::new(&format!("bans-{name}"))
}

#[test]
fn increment_sequence_doubles_and_is_recorded() {
    // Spec 4.5.4 / tests 4: base 2 s, factor 1 → 2, 4, 8, 16, 32; `bans` has one row per
    // ban with bancount 1..n, `bips` one row.
    let dir = temp_dir("increment");
    let mut db = Db::open(&dir.join("db")).expect("open");
    let inc = BanTimeIncrement::default();
    let mut bm = BanManager::new(2);
    let mut fm = FailManager::new(1, 600, 5);
    let mut now = 1000.0;
    let mut ban_times = Vec::new();
    for _ in 0..5 {
        let ticket = fm
            .add_failure("7.7.7.7", now, &["x".into()], TicketData::default(), 1)
            .expect("maxretry 1 bans at once");
        let BanOutcome::Banned(mut ticket) = bm.add_ban(ticket, now) else {
            panic!("not banned");
        };
        let previous = db
            .ban_count("7.7.7.7", Some("j"))
            .expect("history")
            .map(|h| h.ban_count);
        let (ban_time, count) =
            apply_increment(&inc, previous, bm.jail_ban_time(), 0.0).expect("increment");
        assert!(bm.set_ban_time(&ticket.id, ban_time, count));
        ticket.ban_time = Some(ban_time);
        ticket.ban_count = count;
        db.add_ban(&BanRecord::from_ticket("j", &ticket, ban_time, 10))
            .expect("store");
        ban_times.push(ban_time);
        // Expire it: unban strictly after the end.
        now += ban_time as f64 + 1.0;
        let gone = bm.unban_due(now, 20);
        assert_eq!(gone.len(), 1);
    }
    assert_eq!(ban_times, vec![2, 4, 8, 16, 32]);
    assert_eq!(db.ban_history_len("7.7.7.7", "j").expect("rows"), 5);
    let latest = db.active_bans("j", 0).expect("bips");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].ban_count, 5);
    assert_eq!(latest[0].ban_time, 32);
}

#[test]
fn failures_to_firewall_and_back() {
    let dir = temp_dir("e2e");
    let state = dir.join("dummy");
    let s = state.display().to_string();
    let action = CommandAction::new(
        "dummy",
        vec![
            ("actionstart".to_string(), format!("touch {s}")),
            (
                "actionban".to_string(),
                format!("echo '+<ip> <failures> <bantime>' >> {s}"),
            ),
            ("actionunban".to_string(), format!("echo '-<ip>' >> {s}")),
            ("actionstop".to_string(), format!("echo stop >> {s}")),
        ],
    );
    let mut runner = ActionRunner::new("sshd", 600, vec![action]);
    runner.start().expect("start");
    let mut fm = FailManager::new(3, 600, 5);
    let mut bm = BanManager::new(600);
    let mut banned = None;
    for t in [100.0, 110.0, 120.0] {
        if let Some(ticket) = fm.add_failure(
            "10.1.2.3",
            t,
            &[format!("fail {t}")],
            TicketData::default(),
            1,
        ) {
            banned = Some(ticket);
        }
    }
    let ticket = banned.expect("third failure bans");
    let BanOutcome::Banned(ticket) = bm.add_ban(ticket, 121.0) else {
        panic!("not banned");
    };
    runner.ban(&ticket).expect("ban runs");
    // End of ban = last failure (120) + 600.
    assert!(bm.unban_due(720.0, 20).is_empty());
    let due = bm.unban_due(720.5, 20);
    for t in &due {
        runner.unban(t).expect("unban runs");
    }
    runner
        .stop(&bm.tickets().cloned().collect::<Vec<_>>())
        .expect("stop");
    assert_eq!(
        fs::read_to_string(&state).expect("state"),
        "+10.1.2.3 3 600\n-10.1.2.3\nstop\n"
    );
}
