//! Spec syntax and config-time tag handling: `name[k=v,...]` parsing,
//! splitting of multi-action values, word splitting, shell-like splitting of
//! journal matches, and the recursive `<tag>` resolver (`substituteRecursiveTags`).

use super::ini::OMap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::loadtime::LoadTime;

/// The regexes of the option syntax, compiled when a configuration is read and dropped
/// ([`release_regexes`]) once the daemon has built its jails: their Unicode `\w` classes and
/// search caches came to 0.7-0.9 MB a daemon kept for its lifetime without using them again.
struct OptionRegexes {
    option: regex::Regex,
    extract: regex::Regex,
    split: fancy_regex::Regex,
}

static OPTION_REGEXES: LoadTime<OptionRegexes> = LoadTime::new(OptionRegexes::new);

fn option_regexes() -> Arc<OptionRegexes> {
    OPTION_REGEXES.get()
}

/// Drops the option-syntax regexes until the next configuration read needs them.
pub fn release_regexes() {
    OPTION_REGEXES.release();
}

impl OptionRegexes {
    fn new() -> OptionRegexes {
        // Constant patterns, known to compile.
        let option = regex::Regex::new(r"(?s)^([^\[]+)(?:\[(.*)\])?\s*$");
        let extract = regex::Regex::new(
            r#"(?s)\s*([\w\-_\.]+(?:\?[\w\-_\.]+=[\w\-_\.]+)?)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|$|(?P<wrngA>.+))|,?\s*$|(?P<wrngB>.+)"#,
        );
        let split = fancy_regex::Regex::new(
            r#"(?s)(?:[^\[\s]+(?:\s*\[\s*(?:[\w\-_\.]+(?:\?[\w\-_\.]+=[\w\-_\.]+)?=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?\s*|\S+)(?=\n\s*|\s+|$)"#,
        );
        OptionRegexes {
            option: option.unwrap_or_else(|e| panic!("option-syntax regex: {e}")),
            extract: extract.unwrap_or_else(|e| panic!("option-syntax regex: {e}")),
            split: split.unwrap_or_else(|e| panic!("option-syntax regex: {e}")),
        }
    }
}

/// `extractOptions`: `name[k=v, ...][k2=v2]` → (name, ordered args).
pub fn extract_options(spec: &str) -> Result<(String, OMap), String> {
    let regexes = option_regexes();
    let caps = regexes
        .option
        .captures(spec)
        .ok_or_else(|| "unexpected option syntax".to_string())?;
    let name = caps.get(1).map(|m| m.as_str()).unwrap_or("").to_string();
    let mut opts = OMap::new();
    if let Some(optstr) = caps.get(2).map(|m| m.as_str()).filter(|s| !s.is_empty()) {
        for m in regexes.extract.captures_iter(optstr) {
            if let Some(w) = m.name("wrngA") {
                let key = m.get(1).map(|k| k.as_str()).unwrap_or("");
                return Err(format!(
                    "unexpected syntax at {} after option {}: {}",
                    w.start(),
                    super::value::python_str_repr(key),
                    w.as_str().chars().take(25).collect::<String>()
                ));
            }
            if let Some(w) = m.name("wrngB") {
                return Err(format!(
                    "expected option, wrong syntax at {}: {}",
                    w.start(),
                    w.as_str().chars().take(25).collect::<String>()
                ));
            }
            let Some(key) = m.get(1) else { continue };
            let value = m
                .get(2)
                .or(m.get(3))
                .or(m.get(4))
                .map(|v| v.as_str())
                .unwrap_or("");
            super::ini::omap_set(&mut opts, key.as_str().trim(), value.trim().to_string());
        }
    }
    Ok((name, opts))
}

/// `splitWithOptions`: split an `action` value into specs at whitespace
/// outside of `[...]`.
pub fn split_with_options(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let regexes = option_regexes();
    let re = &regexes.split;
    let mut pos = 0;
    while pos <= value.len() {
        match re.find_from_pos(value, pos) {
            Ok(Some(m)) => {
                out.push(m.as_str().to_string());
                pos = if m.end() > m.start() {
                    m.end()
                } else {
                    m.end() + next_char_len(value, m.end())
                };
            }
            _ => break,
        }
    }
    out
}

fn next_char_len(s: &str, at: usize) -> usize {
    s[at..].chars().next().map(char::len_utf8).unwrap_or(1)
}

/// `splitwords`: split on runs of spaces, commas and newlines; drop empties.
pub fn splitwords(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// POSIX `shlex.split` (no comments).
pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '\\' => {
                in_token = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("No escaped character".into()),
                }
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n @ ('\\' | '"' | '$' | '`' | '\n')) => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Find the next `<name>` tag (`name` = `[^ <>]+`) at or after `from`.
fn find_tag(value: &str, from: usize) -> Option<(usize, usize, &str)> {
    let bytes = value.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let mut j = i + 1;
            while j < bytes.len() && !matches!(bytes[j], b' ' | b'<' | b'>') {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'>' && j > i + 1 {
                return Some((i, j + 1, &value[i + 1..j]));
            }
        }
        i += 1;
    }
    None
}

/// A tag value during substitution; `None` marks an option without value.
pub type TagMap = Vec<(String, Option<String>)>;

/// `substituteRecursiveTags`: resolve `<tag>` references between the map's
/// values; `addrepl` supplies values for tags that are not in the map.
pub fn substitute_recursive_tags(
    input: &TagMap,
    ignore: &HashSet<String>,
    addrepl: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
) -> Result<TagMap, String> {
    let mut tags = input.clone();
    let mut done: HashSet<String> = HashSet::new();
    let mut rep_counts: HashMap<String, HashMap<String, usize>> = HashMap::new();
    loop {
        let mut rep_flag = false;
        for idx in 0..tags.len() {
            let tag = tags[idx].0.clone();
            if ignore.contains(&tag) || done.contains(&tag) {
                continue;
            }
            let orgval = tags[idx].1.clone().unwrap_or_else(|| "None".to_string());
            let mut value = orgval.clone();
            let mut rplc = rep_counts.get(&tag).cloned().unwrap_or_default();
            let mut m = find_tag(&value, 0);
            while let Some((start, end, rtag)) = m {
                let rtag = rtag.to_string();
                if ignore.contains(&rtag) {
                    m = find_tag(&value, end);
                    continue;
                }
                if rtag == tag || *rplc.get(&rtag).unwrap_or(&1) > MAX_TAG_REPLACE_COUNT {
                    return Err(format!(
                        "properties contain self referencing definitions and cannot be resolved, fail tag: {tag}, found: {rtag}, value: {value}"
                    ));
                }
                let mut repl = tags
                    .iter()
                    .find(|(k, _)| *k == rtag)
                    .and_then(|(_, v)| v.clone());
                if repl.is_none() {
                    repl = addrepl(&rtag)?;
                }
                let Some(repl) = repl else {
                    m = find_tag(&value, end);
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                *rplc.entry(rtag).or_insert(0) += 1;
                m = find_tag(&value, start);
            }
            if orgval != value {
                if find_tag(&value, 0).is_some() {
                    rep_counts.insert(tag.clone(), rplc);
                    rep_flag = true;
                }
                tags[idx].1 = Some(value.clone());
            }
            if !value.contains('<') {
                done.insert(tag);
            }
        }
        if !rep_flag {
            break;
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn released_regexes_come_back_for_the_next_read() {
        let spec = "iptables[name=ssh, port=\"22,2222\"] mail[dest=root]";
        let before: Vec<_> = split_with_options(spec)
            .iter()
            .map(|s| extract_options(s))
            .collect();
        release_regexes();
        let after: Vec<_> = split_with_options(spec)
            .iter()
            .map(|s| extract_options(s))
            .collect();
        assert_eq!(before, after);
        assert_eq!(after.len(), 2);
        assert!(after.iter().all(Result::is_ok));
    }

    #[test]
    fn extract_options_forms() {
        let (n, o) = extract_options("f[a=b c]").unwrap_or_default();
        assert_eq!(n, "f");
        assert_eq!(o, vec![(s("a"), s("b c"))]);
        assert_eq!(
            extract_options("a[k=1"),
            Err("unexpected option syntax".to_string())
        );
        let (n, _) = extract_options("a [k=1]").unwrap_or_default();
        assert_eq!(n, "a ");
        let (n, o) =
            extract_options("iptables[name=x, port=\"a,b]\", j=x\"y][z='q r']").unwrap_or_default();
        assert_eq!(n, "iptables");
        assert_eq!(
            o,
            vec![
                (s("name"), s("x")),
                (s("port"), s("a,b]")),
                (s("j"), s("x\"y")),
                (s("z"), s("q r"))
            ]
        );
        let (_, o) = extract_options("iptables[blocktype?family=inet6=DROP]").unwrap_or_default();
        assert_eq!(o, vec![(s("blocktype?family=inet6"), s("DROP"))]);
    }

    #[test]
    fn split_actions() {
        let parts: Vec<String> = split_with_options("a b[k=1]   a[actname=a3][name=zz]")
            .into_iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(parts, vec!["a", "b[k=1]", "a[actname=a3][name=zz]"]);
        let parts: Vec<String> =
            split_with_options("nft[port=\"a, b\", x=1]\n  mail-whois[dest=x]")
                .into_iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
        assert_eq!(parts, vec!["nft[port=\"a, b\", x=1]", "mail-whois[dest=x]"]);
    }

    #[test]
    fn shlex_and_words() {
        assert_eq!(
            shlex_split("_SYSTEMD_UNIT=sshd.service + _COMM=\"a b\"").unwrap_or_default(),
            vec!["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=a b"]
        );
        assert!(shlex_split("'open").is_err());
        assert_eq!(splitwords("1.2.3.4, ::1\n a"), vec!["1.2.3.4", "::1", "a"]);
    }

    #[test]
    fn recursive_tags() {
        let map: TagMap = vec![
            (s("a"), Some(s("3"))),
            (s("b"), Some(s("<a>_3"))),
            (s("c"), Some(s("<x_<a>>/<ip>"))),
            (s("x_3"), Some(s("ok"))),
        ];
        let out =
            substitute_recursive_tags(&map, &HashSet::new(), &mut |_| Ok(None)).unwrap_or_default();
        assert_eq!(out[1].1.as_deref(), Some("3_3"));
        assert_eq!(out[2].1.as_deref(), Some("ok/<ip>"));
        let selfref: TagMap = vec![(s("a"), Some(s("<a>")))];
        assert!(substitute_recursive_tags(&selfref, &HashSet::new(), &mut |_| Ok(None)).is_err());
    }
}
