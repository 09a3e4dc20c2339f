//! Structural checks of ironban's own configuration tree (fail2ban.conf, jail.conf, jail.d/,
//! filter.d/, action.d/, tests/samples/): the rules the suite promises that no engine test
//! would notice — headers, sample coverage, nothing enabled, runtime tags quoted.

use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `*.conf` files of a directory, sorted.
fn conf_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "conf"))
        .collect();
    files.sort();
    files
}

/// Filters that fail2ban's sample tests (and `ironban test-samples`) cover: every
/// `filter.d/*.conf` whose name does not end in `common.conf`.
fn shipped_filters() -> Vec<String> {
    conf_files("filter.d")
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .filter(|name| !name.ends_with("common"))
        .collect()
}

/// One option of an INI file: section, name, and the value with continuation lines.
struct IniOption {
    section: String,
    name: String,
    value: String,
}

/// Just enough of the fail2ban INI rules for these checks: sections, `name = value`
/// (first `=` or `:`), deeper-indented continuation lines, full-line comments skipped.
fn ini_options(text: &str) -> Vec<IniOption> {
    let mut options: Vec<IniOption> = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented {
            if let Some(last) = options.last_mut() {
                last.value.push('\n');
                last.value.push_str(trimmed);
            }
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].to_owned();
            continue;
        }
        let split = trimmed
            .find(['=', ':'])
            .unwrap_or_else(|| panic!("line without delimiter: {line}"));
        options.push(IniOption {
            section: section.clone(),
            name: trimmed[..split].trim().to_lowercase(),
            value: trimmed[split + 1..].trim().to_owned(),
        });
    }
    options
}

#[test]
fn every_config_file_starts_with_a_header_comment() {
    let mut files = vec![
        repo().join("fail2ban.conf"),
        repo().join("jail.conf"),
        repo().join("paths-common.conf"),
    ];
    for dir in ["filter.d", "action.d", "jail.d"] {
        files.extend(conf_files(dir));
    }
    assert!(files.len() >= 20, "tree looks incomplete: {files:?}");
    for file in files {
        let text = read(&file);
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            header.len() >= 3,
            "{} needs a header comment (what it does, parameters, example)",
            file.display()
        );
    }
}

#[test]
fn every_shipped_filter_has_annotated_samples() {
    let filters = shipped_filters();
    for expected in [
        "kerio",
        "kerio-audit",
        "opensmtpd",
        "postfix",
        "sendmail-guess",
    ] {
        assert!(
            filters.iter().any(|f| f == expected),
            "missing filter {expected}"
        );
    }
    for filter in filters {
        let text = read(&repo().join("tests/samples").join(&filter));
        let mut lines = text.lines();
        let mut failures = 0;
        let mut plain = 0;
        while let Some(line) = lines.next() {
            if let Some(payload) = line.strip_prefix("# failJSON:") {
                let json: serde_json::Value = serde_json::from_str(payload)
                    .unwrap_or_else(|e| panic!("{filter}: bad failJSON {payload}: {e}"));
                let tested = lines.next().unwrap_or_default();
                assert!(!tested.is_empty(), "{filter}: failJSON without a line");
                if json["match"] == serde_json::Value::Bool(true) {
                    failures += 1;
                    assert!(json["host"].is_string(), "{filter}: no host in {payload}");
                    assert!(json["time"].is_string(), "{filter}: no time in {payload}");
                }
            } else if !line.is_empty() && !line.starts_with('#') {
                plain += 1;
            }
        }
        // Every failregex needs at least one sample, so there are at least as many matching
        // lines as regexes (the engine's sample test checks the per-regex coverage itself).
        let filter_text = read(&repo().join("filter.d").join(format!("{filter}.conf")));
        let regexes = ini_options(&filter_text)
            .into_iter()
            .find(|o| o.section == "Definition" && o.name == "failregex")
            .map(|o| o.value.lines().filter(|l| !l.is_empty()).count())
            .unwrap_or(0);
        assert!(regexes > 0, "{filter}: no failregex");
        assert!(
            failures >= regexes,
            "{filter}: {failures} matching samples for {regexes} failregexes"
        );
        assert!(plain > 0, "{filter}: needs lines that must not match");
    }
}

#[test]
fn no_jail_is_enabled_by_default() {
    let mut files = vec![repo().join("jail.conf")];
    files.extend(conf_files("jail.d"));
    let mut jails = 0;
    for file in files {
        for option in ini_options(&read(&file)) {
            if option.name == "enabled" {
                assert_eq!(
                    option.value,
                    "false",
                    "[{}] in {} is enabled",
                    option.section,
                    file.display()
                );
            }
            if option.name == "logpath" {
                jails += 1;
            }
        }
    }
    assert!(
        jails >= 12,
        "expected the generic and migration jails, got {jails}"
    );
}

/// Runtime tags carry text from the log or derived from it; in a command they must sit inside
/// double quotes (ironban, like fail2ban, turns unsafe values into "$variables", which single
/// quotes would not expand).
#[test]
fn runtime_tags_in_action_commands_are_double_quoted() {
    let runtime_tags = ["<ip>", "<matches>", "<failures>", "<F-USER>", "<fid>"];
    let mut checked = 0;
    for file in conf_files("action.d") {
        for option in ini_options(&read(&file)) {
            let is_command = option.name.starts_with("action") || option.name.starts_with('_');
            if option.section != "Definition" || !is_command {
                continue;
            }
            for line in option.value.lines() {
                for tag in runtime_tags {
                    for (at, _) in line.match_indices(tag) {
                        let quotes_before = line[..at].matches('"').count();
                        assert!(
                            quotes_before % 2 == 1,
                            "{}: {tag} not inside double quotes in: {line}",
                            file.display()
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} runtime tags found");
}

#[test]
fn server_defaults_use_ironban_paths() {
    let options = ini_options(&read(&repo().join("fail2ban.conf")));
    let value = |name: &str| {
        options
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.value.as_str())
            .unwrap_or_default()
    };
    assert_eq!(value("socket"), "/run/ironban/ironban.sock");
    assert_eq!(value("pidfile"), "/run/ironban/ironban.pid");
    assert_eq!(value("dbfile"), "/var/lib/ironban/ironban.sqlite3");
}

#[test]
fn jail_defaults_are_the_documented_ones() {
    let options = ini_options(&read(&repo().join("jail.conf")));
    let default = |name: &str| {
        options
            .iter()
            .find(|o| o.section == "DEFAULT" && o.name == name)
            .map(|o| o.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(default("bantime"), "10m");
    assert_eq!(default("findtime"), "10m");
    assert_eq!(default("maxretry"), "5");
    assert_eq!(default("banaction"), "nftables");
    assert_eq!(default("action"), "%(action_ban)s");
}
