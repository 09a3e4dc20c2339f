//! Differential test against fail2ban 1.1's own `-d` output: the `alljails`
//! and `mailjails` trees of the upstream oracle, built as its README says,
//! must give the same stream, jail block by jail block.

use ironban::config::{load, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create tree dir");
    for entry in std::fs::read_dir(from)
        .expect("read upstream config")
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy config file");
        }
    }
}

/// Build the oracle tree `name` in a temp dir; returns (tree, expected lines).
fn build_tree(name: &str) -> (PathBuf, Vec<serde_json::Value>) {
    let up = shared();
    let tree = std::env::temp_dir().join(format!("ironban-oracle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tree);
    copy_dir(&up.join("config"), &tree);
    let tree_s = tree.display().to_string();
    let oracle = up.join("oracle").join(name);
    let jail_local = std::fs::read_to_string(oracle.join("jail.local.in"))
        .expect("jail.local.in")
        .replace("{TREE}", &tree_s);
    std::fs::write(tree.join("jail.local"), &jail_local).expect("write jail.local");
    std::fs::create_dir_all(tree.join("logs")).expect("logs dir");
    let prefix = format!("{tree_s}/logs/");
    for word in jail_local.split_whitespace() {
        if word.starts_with(&prefix) {
            std::fs::write(word, "").expect("create log file");
        }
    }
    if let Ok(ignore) = std::fs::read_to_string(oracle.join("ignore.txt")) {
        std::fs::write(tree.join("ignore.txt"), ignore.replace("{TREE}", &tree_s))
            .expect("write ignore.txt");
    }
    let expected = std::fs::read_to_string(oracle.join("expected-dump.jsonl"))
        .expect("expected dump")
        .replace("{TREE}", &tree_s)
        .lines()
        .map(|l| serde_json::from_str(l).expect("oracle line is JSON"))
        .collect();
    (tree, expected)
}

/// Group a stream into blocks: "global", one per jail, and "start".
/// Unstable parts are normalised: addignoreip entries and addlogpath lines sorted.
fn blocks(stream: &[serde_json::Value]) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut seen_add = false;
    for cmd in stream {
        let first = cmd.get(0).and_then(|v| v.as_str()).unwrap_or("");
        let key = match first {
            "start" => "start".to_string(),
            "config-error" => "config-error".to_string(),
            "add" => {
                seen_add = true;
                cmd.get(1)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            }
            _ if !seen_add => "global".to_string(),
            _ => cmd
                .get(1)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        };
        let mut cmd = cmd.clone();
        if cmd.get(2).and_then(|v| v.as_str()) == Some("addignoreip") {
            if let Some(arr) = cmd.as_array_mut() {
                let mut entries: Vec<serde_json::Value> = arr.split_off(3);
                entries.sort_by_key(|v| v.to_string());
                arr.extend(entries);
            }
        }
        out.entry(key).or_default().push(cmd);
    }
    for block in out.values_mut() {
        let idx: Vec<usize> = (0..block.len())
            .filter(|&i| block[i].get(2).and_then(|v| v.as_str()) == Some("addlogpath"))
            .collect();
        let mut paths: Vec<serde_json::Value> = idx.iter().map(|&i| block[i].clone()).collect();
        paths.sort_by_key(|v| v.to_string());
        for (slot, p) in idx.into_iter().zip(paths) {
            block[slot] = p;
        }
    }
    out
}

fn compare(name: &str) {
    let (tree, expected) = build_tree(name);
    let loaded = load(&tree).unwrap_or_else(|e| panic!("{name}: load failed: {e}"));
    let got: Vec<serde_json::Value> = loaded
        .stream
        .iter()
        .map(|c| Value::List(c.clone()).to_json())
        .collect();
    let want = blocks(&expected);
    let have = blocks(&got);
    let mut identical = 0;
    let mut different = Vec::new();
    for (key, block) in &want {
        if have.get(key) == Some(block) {
            identical += 1;
        } else {
            different.push(key.clone());
        }
    }
    let extra: Vec<&String> = have.keys().filter(|k| !want.contains_key(*k)).collect();
    println!(
        "{name}: {identical} of {} blocks identical; different: {different:?}; unexpected: {extra:?}",
        want.len()
    );
    for key in different.iter().take(3) {
        let w = &want[key];
        let h = have.get(key).cloned().unwrap_or_default();
        for (i, line) in w.iter().enumerate() {
            if h.get(i) != Some(line) {
                println!(
                    "  [{key}] line {i}\n    want {line}\n    got  {:?}",
                    h.get(i)
                );
                break;
            }
        }
    }
    assert!(loaded.ok, "{name}: fail2ban's success rule");
    let _ = std::fs::remove_dir_all(&tree);
    assert!(
        different.is_empty() && extra.is_empty(),
        "{name}: blocks differ"
    );
}

#[test]
fn alljails_matches_fail2ban() {
    compare("alljails");
}

#[test]
fn mailjails_matches_fail2ban() {
    compare("mailjails");
}
