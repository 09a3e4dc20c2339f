//! Plain data of the filter engine: tuple lines, failure data (groups + session values)
//! and helpers on ordered group lists.

use std::collections::BTreeSet;
use std::sync::Arc;

/// A regex group's name, shared by every match of the regex instead of copied into each.
pub type GroupName = Arc<str>;

/// A group's value. Most (addresses, user names, ports, ids) fit in its 24 bytes without an
/// allocation, and a failure's groups are copied several times on their way to a ticket.
pub type GroupValue = compact_str::CompactString;

/// Named groups in order, None for a group that did not participate.
pub type Groups = Vec<(GroupName, Option<GroupValue>)>;

/// A line cut around its date: the regexes see `pre + post`, matches report all three. The
/// line is one shared string with the date's offsets: the filter copies a line into its
/// buffer, its matches and its MLFID sessions, and each copy is then a reference count.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleLine {
    full: Arc<str>,
    date_start: usize,
    date_end: usize,
}

impl TupleLine {
    /// `line` cut at `date_start..date_end` (char boundaries within it).
    pub fn cut(line: &str, date_start: usize, date_end: usize) -> TupleLine {
        debug_assert!(line.get(date_start..date_end).is_some());
        TupleLine {
            full: Arc::from(line),
            date_start,
            date_end,
        }
    }

    /// A line whose date (not part of the logged text) is `date`, put before it.
    pub fn dated(date: &str, line: &str) -> TupleLine {
        TupleLine::cut(&[date, line].concat(), 0, date.len())
    }

    /// A line without date cut.
    pub fn plain(line: &str) -> TupleLine {
        TupleLine::cut(line, 0, 0)
    }

    pub fn pre(&self) -> &str {
        &self.full[..self.date_start]
    }

    pub fn date(&self) -> &str {
        &self.full[self.date_start..self.date_end]
    }

    pub fn post(&self) -> &str {
        &self.full[self.date_end..]
    }

    /// The text the regexes search (date removed).
    pub fn text(&self) -> String {
        [self.pre(), self.post()].concat()
    }

    /// The full line as logged.
    pub fn full(&self) -> String {
        self.full.to_string()
    }
}

/// A slice of a shared string: the lines of a batch read ahead, or their buffers, kept in
/// one allocation each instead of one per line.
#[derive(Clone, Default)]
pub struct SharedStr {
    all: Arc<str>,
    start: usize,
    end: usize,
}

impl SharedStr {
    /// `all[start..end]` (char boundaries within `all`).
    pub fn slice(all: &Arc<str>, start: usize, end: usize) -> SharedStr {
        assert!(
            all.get(start..end).is_some(),
            "slice {start}..{end} of a shared string"
        );
        SharedStr {
            all: Arc::clone(all),
            start,
            end,
        }
    }
}

impl SharedStr {
    /// `self[start..end]`, sharing the same string (char boundaries within the slice).
    pub fn sub(&self, start: usize, end: usize) -> SharedStr {
        SharedStr::slice(&self.all, self.start + start, self.start + end)
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> SharedStr {
        SharedStr {
            all: Arc::from(text),
            start: 0,
            end: text.len(),
        }
    }
}

/// The slice, not the whole shared string.
impl std::fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        &self.all[self.start..self.end]
    }
}

/// The text a filter's regexes search: built for the line, or the one the results computed
/// ahead were for, shared instead of built again.
pub enum SearchText {
    Built(String),
    Shared(SharedStr),
}

impl std::ops::Deref for SearchText {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            SearchText::Built(text) => text,
            SearchText::Shared(text) => text,
        }
    }
}

/// Buffer string: searchable texts joined by `\n`, plus a trailing `\n`.
pub fn join_buffer(lines: &[TupleLine]) -> String {
    let size: usize = lines
        .iter()
        .map(|l| l.pre().len() + l.post().len() + 1)
        .sum();
    let mut out = String::with_capacity(size.max(1));
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(l.pre());
        out.push_str(l.post());
    }
    out.push('\n');
    out
}

/// Whether `buffer` is the buffer of the single line cut into `pre` and `post`:
/// `pre + post + "\n"`.
pub fn is_buffer_of(buffer: &str, pre: &str, post: &str) -> bool {
    buffer.len() == pre.len() + post.len() + 1
        && buffer.starts_with(pre)
        && buffer[pre.len()..].starts_with(post)
        && buffer.ends_with('\n')
}

/// The buffer of a single line: its text and the trailing `\n`.
pub fn buffer_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(text);
    out.push('\n');
    out
}

/// Failure data: named groups (insertion ordered, None = did not participate) plus the
/// values fail2ban keeps beside them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailData {
    pub groups: Groups,
    /// User names seen in an MLFID session.
    pub users: Option<BTreeSet<GroupValue>>,
    /// Matched lines of this failure.
    pub matches: Option<Vec<TupleLine>>,
    /// Lines of a session collected while it was in "nofail" state.
    pub nofail_matches: Option<Vec<TupleLine>>,
    /// A session match without host: the next merge turns it into a failure.
    pub mlfpending: bool,
}

impl FailData {
    /// Value of a group, None when absent or None.
    pub fn get(&self, name: &str) -> Option<&str> {
        get_group(&self.groups, name)
    }

    /// Whether a group is present at all (even as None).
    pub fn has(&self, name: &str) -> bool {
        self.groups.iter().any(|(n, _)| **n == *name)
    }

    /// Participated and non-empty.
    pub fn truthy(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }

    pub fn set(&mut self, name: &str, value: Option<GroupValue>) {
        set_group(&mut self.groups, name, value);
    }

    /// Remove a group and return its value.
    pub fn pop(&mut self, name: &str) -> Option<GroupValue> {
        remove_group(&mut self.groups, name)
    }
}

pub fn get_group<'a>(groups: &'a [(GroupName, Option<GroupValue>)], name: &str) -> Option<&'a str> {
    groups
        .iter()
        .find(|(n, _)| **n == *name)
        .and_then(|(_, v)| v.as_deref())
}

pub fn set_group(groups: &mut Groups, name: &str, value: Option<GroupValue>) {
    match groups.iter_mut().find(|(n, _)| **n == *name) {
        Some(slot) => slot.1 = value,
        None => groups.push((name.into(), value)),
    }
}

pub fn remove_group(groups: &mut Groups, name: &str) -> Option<GroupValue> {
    let pos = groups.iter().position(|(n, _)| **n == *name)?;
    groups.remove(pos).1
}

/// Target of an `alt_`/`tuple_` group (`alt_user_2` → `user`, `alt_user1` → `user1`), and
/// whether it is an `alt_` group.
pub fn combine_target(name: &str) -> Option<(bool, String)> {
    if name.len() <= 4 {
        return None;
    }
    let (is_alt, rest) = if let Some(r) = name.strip_prefix("alt_") {
        (true, r)
    } else if let Some(r) = name.strip_prefix("tuple_") {
        (false, r)
    } else {
        return None;
    };
    let base = match rest.rsplit_once('_') {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => rest,
    };
    Some((is_alt, super::regex::tag_to_group(base)))
}

fn py_repr(v: &Option<GroupValue>) -> String {
    match v {
        None => "None".to_string(),
        Some(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
    }
}

/// Whether `combine_alt_tuple` has anything to do with groups of these names.
pub fn has_alt_tuple<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|name| combine_target(name).is_some())
}

/// Apply `alt_` and `tuple_` groups (spec 2.5). Tuples are stored as their Python repr.
pub fn combine_alt_tuple(mut groups: Groups) -> Groups {
    let mut alts: Vec<(String, String)> = Vec::new();
    let mut tuples: Vec<(String, String)> = Vec::new();
    for (name, _) in &groups {
        match combine_target(name) {
            Some((true, target)) => alts.push((name.to_string(), target)),
            Some((false, target)) => tuples.push((name.to_string(), target)),
            None => {}
        }
    }
    if alts.is_empty() && tuples.is_empty() {
        return groups;
    }
    alts.sort();
    tuples.sort();
    for (name, target) in alts {
        let value = get_group(&groups, &name).map(GroupValue::from);
        let target_truthy = get_group(&groups, &target).is_some_and(|t| !t.is_empty());
        if value.as_deref().is_some_and(|v| !v.is_empty()) && !target_truthy {
            set_group(&mut groups, &target, value);
        }
    }
    let mut built: Vec<(String, Vec<String>)> = Vec::new();
    for (name, target) in tuples {
        let value = groups
            .iter()
            .find(|(n, _)| **n == *name)
            .and_then(|(_, v)| v.clone());
        match built.iter_mut().find(|(t, _)| *t == target) {
            Some((_, items)) => items.push(py_repr(&value)),
            None => {
                let current = groups
                    .iter()
                    .find(|(n, _)| **n == *target)
                    .and_then(|(_, v)| v.clone());
                built.push((target, vec![py_repr(&current), py_repr(&value)]));
            }
        }
    }
    for (target, items) in built {
        set_group(
            &mut groups,
            &target,
            Some(compact_str::format_compact!("({})", items.join(", "))),
        );
    }
    groups
}

/// Python `str.splitlines()` (without keepends).
pub fn python_splitlines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut current));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => lines.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}
