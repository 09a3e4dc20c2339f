//! Date templates: `%`-pattern expansion, boundary/anchor handling and compilation, as
//! fail2ban's `DateTemplate.setRegex`, `DatePatternRegex`, `DateEpoch` and `DateTai64n` do.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};

use std::sync::Arc;

use fancy_regex::Regex;
use regex_automata::meta;

use crate::filter::ascii::{ascii_safe, AsciiFirst};
use crate::filter::prefilter::{build_relaxed, relaxed_pattern};
use crate::loadtime::LoadTime;

/// A template's regex, ASCII build first (see `filter::ascii`).
pub(crate) type TemplateRegex = AsciiFirst<str, Regex>;

use super::fast::FastTemplate;
use super::DateError;

pub(crate) const LINE_BEGIN: u8 = 8;
pub(crate) const LINE_END: u8 = 4;
pub(crate) const WORD_BEGIN: u8 = 2;
pub(crate) const WORD_END: u8 = 1;

/// One strptime field a named group of a `%`-pattern feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Year,
    Year2,
    Month,
    MonthAbbr,
    MonthName,
    Day,
    Hour,
    Hour12,
    AmPm,
    Minute,
    Second,
    Fraction,
    WeekdayAbbr,
    WeekdayName,
    WeekdaySun0,
    YearDay,
    WeekSun,
    WeekMon,
    ZoneOffset,
    ZoneName,
}

impl Field {
    fn from_group_name(name: &str) -> Option<Field> {
        Some(match name {
            "Y" => Field::Year,
            "y" => Field::Year2,
            "m" => Field::Month,
            "b" => Field::MonthAbbr,
            "B" => Field::MonthName,
            "d" => Field::Day,
            "H" => Field::Hour,
            "I" => Field::Hour12,
            "p" => Field::AmPm,
            "M" => Field::Minute,
            "S" => Field::Second,
            "f" => Field::Fraction,
            "a" => Field::WeekdayAbbr,
            "A" => Field::WeekdayName,
            "w" => Field::WeekdaySun0,
            "j" => Field::YearDay,
            "U" => Field::WeekSun,
            "W" => Field::WeekMon,
            "z" => Field::ZoneOffset,
            "Z" => Field::ZoneName,
            _ => return None,
        })
    }
}

/// How a template's match becomes a time.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// strptime-like fields from named groups, in pattern order.
    Pattern(Vec<(Field, usize)>),
    /// Unix epoch number in capture group `group`; `long` = LEPOCH scaling.
    Epoch {
        long: bool,
        group: usize,
    },
    Tai64n,
}

#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub name: String,
    pub regex: Arc<TemplateRegex>,
    /// Number of groups of `regex`, the whole match included.
    groups: usize,
    pub flags: u8,
    pub weight: f64,
    pub kind: Kind,
    /// The regex can only match at offset 0 (leading `^`, no top-level alternative), so it
    /// is tried there only instead of at every position of a long line.
    pub start_anchored: bool,
    /// Linear-time over-approximation (lookarounds dropped, backreferences widened): every
    /// position where the template can match is a position where this matches, so only
    /// those are tried with the backtracking regex. Built on first use (shared by the
    /// clones of a cached template): most of a detector's templates never search a line.
    prefilter: Arc<OnceLock<Option<AsciiFirst<str, meta::Regex>>>>,
    /// The DFA-backed form for ASCII lines (see `date::fast`), built on first use (shared
    /// by the clones of a cached template), None when the regex has none.
    fast: Arc<OnceLock<Option<FastTemplate>>>,
}

impl Template {
    pub(crate) fn fast(&self) -> Option<&FastTemplate> {
        self.fast
            .get_or_init(|| FastTemplate::new(self.regex.pattern(), self.groups))
            .as_ref()
    }

    pub(crate) fn prefilter(&self) -> Option<&AsciiFirst<str, meta::Regex>> {
        self.prefilter
            .get_or_init(|| build_prefilter(&self.regex))
            .as_ref()
    }

    pub fn anchored(&self) -> bool {
        self.flags & (LINE_BEGIN | LINE_END) != 0
    }
}

/// Word-begin handling requested by the template kind (`wordBegin` in fail2ban).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Begin {
    None,
    Word,
    Line,
}

fn re(pattern: &str) -> Regex {
    // Only used on the constant helper patterns below, which are known to compile.
    Regex::new(pattern).unwrap_or_else(|e| panic!("helper regex {pattern:?}: {e}"))
}

/// The regexes fail2ban's `DateTemplate` rewrites patterns with: needed while templates
/// are built, dropped once a configuration's jails are (see [`release_regexes`]).
struct Syntax {
    grouped: Regex,
    group: Regex,
    global_flags: Regex,
    exline_no_bounds: Regex,
    exline_bound_beg: Regex,
    exsanc_bound_beg: Regex,
    exeanc_bound_beg: Regex,
    no_wrd_bound_beg: Regex,
    no_wrd_bound_end: Regex,
    del_wrd_bounds: Regex,
    line_bound_beg: Regex,
    line_bound_end: Regex,
}

static SYNTAX: LoadTime<Syntax> = LoadTime::new(|| Syntax {
    grouped: re(r"(?<!(?:\(\?))(?<!\\)\((?!\?)"),
    group: re(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$"),
    global_flags: re(r"((?:^|(?!<\\))\(\?[a-z]+\))"),
    exline_no_bounds: re(r"^\{UNB\}"),
    exline_bound_beg: re(r"^\{\^LN-BEG\}"),
    exsanc_bound_beg: re(r"^\((?:\?:)?\^\|\\b\|\\W\)"),
    exeanc_bound_beg: re(r"\(\?=\\b\|\\W\|\$\)$"),
    no_wrd_bound_beg: re(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)"),
    no_wrd_bound_end: re(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$"),
    del_wrd_bounds: re(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$"),
    line_bound_beg: re(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))"),
    line_bound_end: re(r"(?<![\\\|])(?:\$\)?)$"),
});

fn syntax() -> Arc<Syntax> {
    SYNTAX.get()
}

/// Drops the pattern-rewriting regexes until templates are built again.
pub fn release_regexes() {
    SYNTAX.release();
}

static RE_EPOCH_PATTERN: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)(?<!\\)\{L?EPOCH\}"));
pub(crate) static RE_DATE_PREMATCH: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)(?<!\\)\{DATE\}"));

fn found(regex: &Regex, text: &str) -> bool {
    matches!(regex.is_match(text), Ok(true))
}

/// Replace every match of `regex` in `text` by `f(matched text)`.
fn replace_all(regex: &Regex, text: &str, limit: usize, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in regex.find_iter(text).take(limit).flatten() {
        out.push_str(&text[last..m.start()]);
        out.push_str(&f(m.as_str()));
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// Remove fail2ban's boundary markers from a pattern (`DateTemplate.unboundPattern`).
pub(crate) fn unbound_pattern(pattern: &str) -> String {
    let syntax = syntax();
    let p = replace_all(&syntax.exline_no_bounds, pattern, usize::MAX, |_| {
        String::new()
    });
    let p = replace_all(&syntax.exline_bound_beg, &p, usize::MAX, |_| String::new());
    let p = replace_all(&syntax.exsanc_bound_beg, &p, usize::MAX, |_| String::new());
    replace_all(&syntax.exeanc_bound_beg, &p, usize::MAX, |_| String::new())
}

/// Result of `DateTemplate.setRegex`: final regex text, flags and (possibly prefixed) name.
struct Built {
    regex: String,
    flags: u8,
    name: String,
}

fn set_regex(regex: &str, begin: Begin, word_end: bool, name: &str) -> Built {
    let mut regex = regex.trim().to_string();
    let mut name = name.to_string();
    let syntax = syntax();
    let global_flags = match syntax.global_flags.find(&regex) {
        Ok(Some(m)) => Some(m.as_str().to_string()),
        _ => None,
    };
    if global_flags.is_some() {
        regex = replace_all(&syntax.global_flags, &regex, 1, |_| String::new());
    }
    let bound_begin = begin != Begin::None && !found(&syntax.no_wrd_bound_beg, &regex);
    let bound_end = word_end && !found(&syntax.no_wrd_bound_end, &regex);
    if !found(&syntax.grouped, &regex) {
        if let Ok(Some(c)) = syntax.group.captures(&regex) {
            let part = |i| c.get(i).map_or("", |m| m.as_str());
            regex = format!("{}({}){}", part(1), part(2), part(3));
        }
    }
    let mut flags = 0;
    if bound_begin {
        if begin == Begin::Line {
            flags |= LINE_BEGIN;
            regex = format!(r"^(?:\W{{0,2}})?{regex}");
            if !name.starts_with("{^LN-BEG}") {
                name = format!("{{^LN-BEG}}{name}");
            }
        } else {
            flags |= WORD_BEGIN;
            regex = format!(r"(?=^|\b|\W){regex}");
        }
    }
    if bound_end {
        flags |= WORD_END;
        regex.push_str(r"(?=\b|\W|$)");
    }
    if flags & LINE_BEGIN == 0 && found(&syntax.line_bound_beg, &regex) {
        flags |= LINE_BEGIN;
    }
    if found(&syntax.line_bound_end, &regex) {
        flags |= LINE_END;
    }
    regex = replace_all(&syntax.del_wrd_bounds, &regex, usize::MAX, |m| {
        m.replace("**", "")
    });
    if let Some(gf) = global_flags {
        regex = gf + &regex;
    }
    Built { regex, flags, name }
}

/// `%` directives: (key, regex, display name). Order = Python's alternation order.
const DIRECTIVES: &[(&str, &str, &str)] = &[
    ("%", "%", "%"),
    ("ExZ", r"(?P<Z>[A-Z](?:[A-Z]{2,4})?)", "ExZone name"),
    (
        "Exz",
        r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)",
        "ExZone offset",
    ),
    ("Exd", r"(?P<d>[1-2]\d|0[1-9]|3[0-1])", "ExDay"),
    ("Exm", r"(?P<m>0[1-9]|1[0-2])", "ExMonth"),
    ("ExH", r"(?P<H>[0-1]\d|2[0-3])", "Ex24hour"),
    ("Exk", r" ?(?P<H>[0-1]?\d|2[0-3])", "Ex%k"),
    ("Exl", r" ?(?P<I>1[0-2]|\d)", "Ex%l"),
    ("ExM", r"(?P<M>[0-5]\d)", "ExMinute"),
    ("ExS", r"(?P<S>[0-5]\d|6[0-1])", "ExSecond"),
    ("ExY", "", "ExYear"),
    ("Exy", r"(?P<y>\d{2})", "ExYear2"),
    ("d", r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])", "Day"),
    ("f", r"(?P<f>[0-9]{1,6})", "Microseconds"),
    ("H", r"(?P<H>[0-1]?\d|2[0-3])", "24hour"),
    ("I", r"(?P<I>1[0-2]|0[1-9]|[1-9])", "12hour"),
    ("G", r"(?P<G>\d\d\d\d)", "%G"),
    (
        "j",
        r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
        "Yearday",
    ),
    ("m", r"(?P<m>0?[1-9]|1[0-2])", "Month"),
    ("M", r"(?P<M>[0-5]?\d)", "Minute"),
    ("S", r"(?P<S>[0-5]?\d|6[0-1])", "Second"),
    ("U", r"(?P<U>5[0-3]|[0-4]\d|\d)", "Yearweek"),
    ("w", r"(?P<w>[0-6])", "Weekday"),
    ("u", r"(?P<u>[1-7])", "%u"),
    ("V", r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)", "%V"),
    ("y", r"(?P<y>\d\d)", "Year2"),
    ("Y", r"(?P<Y>\d{4})", "Year"),
    ("z", r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)", "Zone offset"),
    (
        "A",
        "(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)",
        "DAYNAME",
    ),
    ("a", "(?P<a>mon|tue|wed|thu|fri|sat|sun)", "DAY"),
    (
        "B",
        "(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)",
        "MONTH",
    ),
    ("b", "(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", "MON"),
    ("p", "(?P<p>am|pm)", "AMPM"),
    ("Z", r"(?P<Z>Z|[A-Z]{3,5})", "Zone name"),
    ("W", r"(?P<W>5[0-3]|[0-4]\d|\d)", "Yearweek"),
    (
        "c",
        r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)",
        "%c",
    ),
    (
        "x",
        r"(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)",
        "%x",
    ),
    (
        "X",
        r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)",
        "%X",
    ),
    ("k", r" ?(?P<H>[0-2]?\d)", "%k"),
    ("l", r" ?(?P<I>1?\d)", "%l"),
];

/// `%ExY`: `20` + a class of the decades from 2000 to (current year + 3), as fail2ban
/// builds it once at start-up from the wall clock.
fn ex_year_regex(current_year: i32) -> String {
    let last_decade = ((current_year + 3).clamp(2000, 2099) - 2000) / 10;
    let digits: String = (0..=last_decade)
        .map(|d| char::from(b'0' + d as u8))
        .collect();
    if digits.len() == 1 {
        format!(r"(?P<Y>20{digits}\d)")
    } else {
        format!(r"(?P<Y>20[{digits}]\d)")
    }
}

/// Expand `%` directives: (display name, regex). Unknown `%q` stays literal.
fn expand_directives(pattern: &str, current_year: i32) -> (String, String) {
    let mut name = String::with_capacity(pattern.len());
    let mut regex = String::with_capacity(pattern.len() * 4);
    let mut rest = pattern;
    while let Some(pos) = rest.find('%') {
        name.push_str(&rest[..pos]);
        regex.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let hit = DIRECTIVES.iter().find(|(key, _, _)| after.starts_with(key));
        match hit {
            Some((key, expansion, display)) => {
                name.push_str(display);
                if *key == "ExY" {
                    regex.push_str(&ex_year_regex(current_year));
                } else {
                    regex.push_str(expansion);
                }
                rest = &after[key.len()..];
            }
            None => {
                name.push('%');
                regex.push('%');
                rest = after;
            }
        }
    }
    name.push_str(rest);
    regex.push_str(rest);
    (name, regex)
}

/// Whether the pattern uses an alphabetic directive (`%a %A %b %B %p %c`), which makes
/// fail2ban compile the whole date regex case-insensitively.
fn has_alpha_directive(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    (1..b.len())
        .any(|i| b[i - 1] == b'%' && b"aAbBpc".contains(&b[i]) && (i < 2 || b[i - 2] != b'%'))
}

/// Translate Python `re` syntax that fancy-regex reads differently (spec 11.2 a–d):
/// `(?(name)` → `(?(<name>)`, `[` inside classes escaped, `\<`/`\>` → literal, `\Z` → `\z`.
pub(crate) fn translate_python_regex(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 8);
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('<') | Some('>') if !in_class => out.push(chars[i + 1]),
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => in_class = false,
                '[' => {
                    out.push_str("\\[");
                    i += 1;
                    continue;
                }
                '&' | '~' | '-' if chars.get(i + 1) == Some(&c) => {
                    out.push('\\');
                    out.push(c);
                    out.push('\\');
                    out.push(c);
                    i += 2;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push('[');
            i += 1;
            // A leading `]` (after an optional `^`) is a literal in Python.
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                out.push_str("\\]");
                i += 1;
            }
            continue;
        }
        if c == '(' && chars.get(i + 1) == Some(&'?') {
            // Flag groups: Python 3's `u` is the default already; in Rust it would force
            // Unicode classes into the ASCII build (see `filter::ascii`).
            let mut j = i + 2;
            while chars.get(j).is_some_and(char::is_ascii_alphabetic) {
                j += 1;
            }
            if j > i + 2 && matches!(chars.get(j), Some(')') | Some(':')) {
                let flags: String = chars[i + 2..j].iter().filter(|f| **f != 'u').collect();
                match (flags.is_empty(), chars[j]) {
                    (true, ')') => {}
                    _ => {
                        out.push_str("(?");
                        out.push_str(&flags);
                        out.push(chars[j]);
                    }
                }
                i = j + 1;
                continue;
            }
        }
        if c == '(' && chars.get(i + 1) == Some(&'?') && chars.get(i + 2) == Some(&'(') {
            let name_start = i + 3;
            let mut j = name_start;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let is_name = j > name_start
                && chars.get(j) == Some(&')')
                && !chars[name_start..j].iter().all(|c| c.is_ascii_digit());
            if is_name {
                out.push_str("(?(<");
                out.extend(&chars[name_start..j]);
                out.push_str(">)");
                i = j + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Whether `regex` starts with `^` (after a global flag group without `m`) and has no
/// top-level `|`, i.e. can only match at the very start of the text.
fn is_start_anchored(regex: &str) -> bool {
    let mut body = regex;
    if body.starts_with("(?") {
        if let Some(end) = body.find(')') {
            let flags = &body[2..end];
            if flags.chars().all(|c| c.is_ascii_alphabetic()) {
                if flags.contains('m') {
                    return false;
                }
                body = &body[end + 1..];
            }
        }
    }
    if !body.starts_with('^') {
        return false;
    }
    let mut depth = 0usize;
    let mut in_class = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => {
                in_class = true;
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
            }
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth = depth.saturating_sub(1),
            '|' if !in_class && depth == 0 => return false,
            _ => {}
        }
    }
    true
}

/// The prefilter of a (translated) template regex (see `filter::prefilter::relaxed_pattern`).
/// None if there is no relaxed form (the template is then searched with fancy-regex alone).
fn build_prefilter(regex: &TemplateRegex) -> Option<AsciiFirst<str, meta::Regex>> {
    let relaxed = relaxed_pattern(regex.pattern())?;
    AsciiFirst::new(relaxed.into(), build_relaxed).ok()
}

/// A template's regex, built on first use (most of a detector's templates never search a
/// line), with what the template needs of it at load.
struct Compiled {
    regex: Arc<TemplateRegex>,
    fields: Vec<(Field, usize)>,
    groups: usize,
}

/// When a template's pattern is first compiled. A pattern from the configuration is
/// compiled at load too, so that a broken one is refused there; fail2ban's own default
/// patterns (which the tests compile) are only parsed until a line needs them: compiling
/// the 31 defaults was a tenth of the start-up work.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    AtLoad,
    OnFirstUse,
}

fn compile(regex: &str, name: &str, check: Check) -> Result<Compiled, DateError> {
    let translated = translate_python_regex(regex);
    let error = |e: String| DateError::Pattern(format!("{name}: cannot compile {regex:?}: {e}"));
    if check == Check::OnFirstUse {
        let (groups, fields) = parsed_groups(&translated).map_err(error)?;
        let has_ascii = ascii_safe(&translated);
        return Ok(Compiled {
            regex: Arc::new(AsciiFirst::unbuilt(
                translated.into(),
                crate::filter::regex::compile,
                has_ascii,
            )),
            fields,
            groups,
        });
    }
    let (mut fields, mut groups) = (Vec::new(), 0);
    AsciiFirst::checked(translated.into(), crate::filter::regex::compile, |built| {
        groups = built.captures_len();
        fields = built
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| Some((Field::from_group_name(n?)?, i)))
            .collect();
    })
    .map(|regex| Compiled {
        regex: Arc::new(regex),
        fields,
        groups,
    })
    .map_err(error)
}

/// The group count (the whole match included) and date fields of a pattern, read off its
/// parse tree, where fancy-regex numbers the groups. Only for the default patterns: their
/// compiled regexes have the same groups (a test checks every one), while fancy-regex's
/// optimizer copies a group in some other shapes (`(a)+b?(a)+` compiles with one more).
fn parsed_groups(translated: &str) -> Result<(usize, Vec<(Field, usize)>), String> {
    fn count(expr: &fancy_regex::Expr) -> usize {
        let own = usize::from(matches!(expr, fancy_regex::Expr::Group(_)));
        own + expr.children_iter().map(count).sum::<usize>()
    }
    let tree = fancy_regex::Expr::parse_tree(translated).map_err(|e| e.to_string())?;
    let mut fields: Vec<(Field, usize)> = tree
        .named_groups
        .iter()
        .flat_map(|(name, numbers)| {
            let field = Field::from_group_name(name);
            numbers.iter().filter_map(move |&i| Some((field?, i)))
        })
        .collect();
    fields.sort_by_key(|&(_, i)| i);
    Ok((1 + count(&tree.expr), fields))
}

/// `DatePatternRegex(pattern)`.
fn pattern_template(pattern: &str, current_year: i32, check: Check) -> Result<Template, DateError> {
    let mut body = pattern;
    let mut begin = Begin::Word;
    let mut word_end = true;
    if let Some(rest) = body.strip_prefix("{UNB}") {
        body = rest;
        begin = Begin::None;
        word_end = false;
    }
    if begin == Begin::Word {
        if let Some(rest) = body.strip_prefix("{^LN-BEG}") {
            body = rest;
            begin = Begin::Line;
        }
    }
    let (name, mut regex) = expand_directives(body, current_year);
    if has_alpha_directive(body) {
        regex = format!("(?iu){regex}");
    }
    let built = set_regex(&regex, begin, word_end, &name);
    let compiled = compile(&built.regex, pattern, check)?;
    Ok(Template {
        name: built.name,
        kind: Kind::Pattern(compiled.fields),
        start_anchored: is_start_anchored(&built.regex),
        prefilter: Arc::default(),
        fast: Arc::default(),
        regex: compiled.regex,
        groups: compiled.groups,
        flags: built.flags,
        weight: 1.0,
    })
}

const EPOCH_RE: &str = r"\d{10,11}\b(?:\.\d{3,6})?";
const LONG_EPOCH_RE: &str = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?";

/// `DateEpoch`: `custom` = a pattern with `{EPOCH}`/`{LEPOCH}`, else the plain forms.
fn epoch_template(
    line_begin_only: bool,
    custom: Option<&str>,
    long: bool,
    check: Check,
) -> Result<Template, DateError> {
    let value_re = if long { LONG_EPOCH_RE } else { EPOCH_RE };
    let base_name = custom.unwrap_or(if long { "LongEpoch" } else { "Epoch" });
    let (built, group) = if let Some(pattern) = custom {
        let inner = replace_all(&RE_EPOCH_PATTERN, pattern, usize::MAX, |_| {
            format!("({value_re})")
        });
        // Cut = the pattern's own first group, or the whole pattern; value = group 2.
        let regex = if found(&syntax().grouped, pattern) {
            inner
        } else {
            format!("({inner})")
        };
        (set_regex(&regex, Begin::Word, true, base_name), 2)
    } else if !line_begin_only {
        let regex = r"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))%s)(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))"
        .replace("%s", value_re);
        (set_regex(&regex, Begin::None, true, base_name), 1)
    } else {
        let regex = r"((?P<square>(?<=^\[))?%s)(?(square)(?=\]))".replace("%s", value_re);
        (set_regex(&regex, Begin::Line, true, base_name), 1)
    };
    let compiled = compile(&built.regex, &built.name, check)?;
    Ok(Template {
        start_anchored: is_start_anchored(&built.regex),
        prefilter: Arc::default(),
        fast: Arc::default(),
        regex: compiled.regex,
        groups: compiled.groups,
        name: built.name,
        flags: built.flags,
        weight: 1.0,
        kind: Kind::Epoch { long, group },
    })
}

fn tai64n_template(line_begin: bool, check: Check) -> Result<Template, DateError> {
    let begin = if line_begin { Begin::Line } else { Begin::None };
    let built = set_regex("@[0-9a-f]{24}", begin, true, "TAI64N");
    let compiled = compile(&built.regex, &built.name, check)?;
    Ok(Template {
        start_anchored: is_start_anchored(&built.regex),
        prefilter: Arc::default(),
        fast: Arc::default(),
        regex: compiled.regex,
        groups: compiled.groups,
        name: built.name,
        flags: built.flags,
        weight: 1.0,
        kind: Kind::Tai64n,
    })
}

/// Built templates by (pattern, year), like fail2ban's `DD_patternCache`: the defaults are
/// rebuilt for every detector otherwise, and compiling them dominates start-up.
static TEMPLATE_CACHE: LazyLock<Mutex<HashMap<(String, i32), Template>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const TEMPLATE_CACHE_MAX: usize = 1000;

/// `_getPatternTemplate`: the template for one `datepattern` entry (keywords resolved),
/// compiled at load to refuse a broken pattern there.
pub(crate) fn template_for(pattern: &str, current_year: i32) -> Result<Template, DateError> {
    cached_template(pattern, current_year, Check::AtLoad)
}

/// The template of one of fail2ban's own patterns: compiled when a line first needs it.
fn default_template(pattern: &str, current_year: i32) -> Result<Template, DateError> {
    cached_template(pattern, current_year, Check::OnFirstUse)
}

/// A cached template is shared whichever way it was made: the defaults are known to compile.
fn cached_template(pattern: &str, current_year: i32, check: Check) -> Result<Template, DateError> {
    let key = (pattern.to_string(), current_year);
    if let Ok(cache) = TEMPLATE_CACHE.lock() {
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
    }
    let template = build_template(pattern, current_year, check)?;
    if let Ok(mut cache) = TEMPLATE_CACHE.lock() {
        if cache.len() < TEMPLATE_CACHE_MAX {
            cache.insert(key, template.clone());
        }
    }
    Ok(template)
}

fn build_template(pattern: &str, current_year: i32, check: Check) -> Result<Template, DateError> {
    let key = if pattern.contains('%') {
        pattern.to_string()
    } else {
        pattern.to_uppercase()
    };
    if key.contains("EPOCH") {
        if found(&RE_EPOCH_PATTERN, pattern) {
            return epoch_template(false, Some(pattern), key.contains("LEPOCH"), check);
        }
        match key.as_str() {
            "EPOCH" | "{^LN-BEG}EPOCH" | "^EPOCH" => {
                return epoch_template(key != "EPOCH", None, false, check)
            }
            "LEPOCH" | "{^LN-BEG}LEPOCH" | "^LEPOCH" => {
                return epoch_template(key != "LEPOCH", None, true, check)
            }
            _ => {}
        }
    }
    match key.as_str() {
        "TAI64N" => tai64n_template(false, check),
        "{^LN-BEG}TAI64N" | "^TAI64N" => tai64n_template(true, check),
        _ => pattern_template(pattern, current_year, check),
    }
}

/// fail2ban's 17 original default date patterns, in list order.
pub(crate) const DEFAULT_PATTERNS: [&str; 17] = [
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:-|T|  ?)%ExH:?%ExM:?%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
];

/// The source text a default template is re-derived from when wrapping it (`{^LN-BEG}`
/// copies, `{DATE}`): the `%`-pattern, or the name for epoch/TAI64N templates.
pub(crate) fn default_source(pattern: &str, template: &Template) -> String {
    match template.kind {
        Kind::Pattern(_) => pattern.to_string(),
        _ => template.name.clone(),
    }
}

/// The 31 default templates (`DateDetectorCache._addDefaultTemplate`): anchored copies
/// (weight 100) of the originals not anchored by name, then the 17 originals.
pub(crate) fn default_templates(current_year: i32) -> Result<Vec<Template>, DateError> {
    let mut anchored = Vec::new();
    let mut originals = Vec::new();
    for pattern in DEFAULT_PATTERNS {
        let template = default_template(pattern, current_year)?;
        if !template.name.starts_with("{^LN-BEG}") && !template.name.starts_with('^') {
            let source = format!("{{^LN-BEG}}{}", default_source(pattern, &template));
            let mut copy = default_template(&source, current_year)?;
            if copy.name != template.name {
                copy.weight = 100.0;
                anchored.push(copy);
            }
        }
        originals.push(template);
    }
    anchored.extend(originals);
    Ok(anchored)
}

/// Templates for a `{DATE}` entry: one per original default, `{DATE}` replaced by the
/// default's pattern without its boundary markers.
pub(crate) fn date_placeholder_templates(
    entry: &str,
    current_year: i32,
) -> Result<Vec<Template>, DateError> {
    let mut out = Vec::new();
    for pattern in DEFAULT_PATTERNS {
        let template = default_template(pattern, current_year)?;
        let source = unbound_pattern(&default_source(pattern, &template));
        let wrapped = replace_all(&RE_DATE_PREMATCH, entry, usize::MAX, |_| source.clone());
        out.push(template_for(&wrapped, current_year)?);
    }
    Ok(out)
}

/// Whether a `datepattern` entry contains `{DATE}` (any case, not escaped).
pub(crate) fn has_date_placeholder(entry: &str) -> bool {
    found(&RE_DATE_PREMATCH, entry)
}

/// `{NONE}`: empty match at line start.
pub(crate) fn none_template(current_year: i32) -> Result<Template, DateError> {
    default_template("{UNB}^", current_year)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ex_year_covers_decades_to_year_plus_three() {
        assert_eq!(ex_year_regex(2026), r"(?P<Y>20[012]\d)");
        assert_eq!(ex_year_regex(2007), r"(?P<Y>20[01]\d)");
        assert_eq!(ex_year_regex(2001), r"(?P<Y>200\d)");
    }

    /// Default templates are only parsed at load: the groups their parse gives must be the
    /// compiled regex's, for every template the defaults make and for custom patterns with
    /// back-references, lookarounds, conditionals and `{DATE}`.
    #[test]
    fn parsed_groups_are_the_compiled_regexes_groups() {
        let custom = [
            "{UNB}^",
            "^%Y-%m-%d %H:%M:%S",
            r#""timestamp":"(%ExY-%m-%dT%H:%M:%S(?:\.%f)?Z?)""#,
            r"%d/%b[^/]*/%Y:%H:%M:%S %z",
            r"{^LN-BEG}(?:%a )?%b %d %H:%M:%S(?:\.%f)?(?: %ExY)?",
            "x{EPOCH}y",
            "{^LN-BEG}LEPOCH",
            "^TAI64N",
            r"(?P<x>a)?(?(x)%H|%I):%M(?<=\d)",
        ];
        for year in [2001, 2026, 2099] {
            let mut templates = Vec::new();
            let defaults = DEFAULT_PATTERNS.iter().map(|p| p.to_string());
            let anchored = DEFAULT_PATTERNS.iter().map(|p| format!("{{^LN-BEG}}{p}"));
            for pattern in defaults.chain(anchored).chain(custom.map(String::from)) {
                let eager = build_template(&pattern, year, Check::AtLoad).unwrap();
                let lazy = build_template(&pattern, year, Check::OnFirstUse).unwrap();
                assert_eq!(lazy.regex.pattern(), eager.regex.pattern(), "{pattern}");
                assert_eq!(lazy.groups, eager.groups, "{pattern}");
                assert_eq!(
                    format!("{:?}", lazy.kind),
                    format!("{:?}", eager.kind),
                    "{pattern}"
                );
                templates.push(eager);
            }
            for entry in [r"^[^\[]*\[({DATE})", "^{DATE}"] {
                templates.extend(date_placeholder_templates(entry, year).unwrap());
            }
            for t in templates {
                let (groups, fields) = parsed_groups(t.regex.pattern()).unwrap();
                assert_eq!(groups, t.groups, "{}", t.name);
                if let Kind::Pattern(compiled) = &t.kind {
                    assert_eq!(&fields, compiled, "{}", t.name);
                }
            }
        }
    }

    #[test]
    fn built_regexes_match_fail2ban() {
        let t = template_for(r"^\[%d/%b/%Y %H:%M:%S\]", 2026).unwrap();
        assert_eq!(t.name, r"^\[Day/MON/Year 24hour:Minute:Second\]");
        assert_eq!(
            t.regex.pattern(),
            r"(?i)^(\[(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])/(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)/(?P<Y>\d{4}) (?P<H>[0-1]?\d|2[0-3]):(?P<M>[0-5]?\d):(?P<S>[0-5]?\d|6[0-1])\])(?=\b|\W|$)"
        );
        assert_eq!(t.flags, 9);
        let t = template_for("{UNB}^", 2026).unwrap();
        assert_eq!(
            (t.name.as_str(), t.regex.pattern(), t.flags),
            ("^", "^()", 8)
        );
        let t = template_for("{^LN-BEG}%ExY%Exm%Exd", 2026).unwrap();
        assert_eq!(t.name, "{^LN-BEG}ExYearExMonthExDay");
        assert_eq!(
            t.regex.pattern(),
            r"^(?:\W{0,2})?((?P<Y>20[012]\d)(?P<m>0[1-9]|1[0-2])(?P<d>[1-2]\d|0[1-9]|3[0-1]))(?=\b|\W|$)"
        );
        let t = template_for("TAI64N", 2026).unwrap();
        assert_eq!(
            (t.regex.pattern(), t.flags),
            (r"(@[0-9a-f]{24})(?=\b|\W|$)", 1)
        );
        let t = template_for("{^ln-beg}tai64n", 2026).unwrap();
        assert_eq!(t.name, "{^LN-BEG}TAI64N");
        assert_eq!(t.flags, 9);
        let t = template_for("x{EPOCH}y", 2026).unwrap();
        assert_eq!(
            t.regex.pattern(),
            r"(?=^|\b|\W)(x(\d{10,11}\b(?:\.\d{3,6})?)y)(?=\b|\W|$)"
        );
        let t = template_for("EPOCH", 2026).unwrap();
        assert_eq!(t.flags, 1);
        assert_eq!(t.name, "Epoch");
    }

    #[test]
    fn default_list_has_31_entries_with_anchored_copies_first() {
        let list = default_templates(2026).unwrap();
        assert_eq!(list.len(), 31);
        assert!(list[..14]
            .iter()
            .all(|t| t.weight == 100.0 && t.flags & LINE_BEGIN != 0));
        assert_eq!(list[0].name, "{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?");
        assert_eq!(list[7].name, "{^LN-BEG}Epoch");
        assert_eq!(list[13].name, "{^LN-BEG}TAI64N");
        assert_eq!(
            list[15].name,
            "(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?"
        );
        assert_eq!(list[30].name, "TAI64N");
        assert_eq!(
            list.iter().filter(|t| t.flags & LINE_BEGIN != 0).count(),
            17
        );
    }

    #[test]
    fn python_syntax_is_translated() {
        assert_eq!(translate_python_regex(r"(?(sq)x|y)"), r"(?(<sq>)x|y)");
        assert_eq!(translate_python_regex(r"[^[]*\[a\<b\Z"), r"[^\[]*\[a<b\z");
        assert_eq!(translate_python_regex(r"[]a]"), r"[\]a]");
        assert_eq!(translate_python_regex(r"(?(1)a)"), r"(?(1)a)");
        assert_eq!(translate_python_regex(r"(?iu)a(?u)b(?u:c)"), r"(?i)ab(?:c)");
    }

    #[test]
    fn prefilters_drop_fancy_parts() {
        let p = |r: &str| relaxed_pattern(r);
        // Lookarounds dropped, backreference widened: still matches where the exact one does.
        let relaxed = p(r"(?=^|\b|\W)(a(?P<s>[-/])b(?P=s)c)(?=\b|\W|$)").expect("relaxed");
        let re = build_relaxed(&relaxed, true).expect("builds");
        assert!(re.is_match("x a-b-c y") && re.is_match("a/b-c") && !re.is_match("abc"));
        let relaxed = p(r"((?:^|(?P<q>(?<=^\[)))\d+)(?(<q>)(?=\])|x)").expect("relaxed");
        let re = build_relaxed(&relaxed, true).expect("builds");
        assert!(re.is_match("[12]") && re.is_match("12x"));
        assert!(p(r"(?>a)").is_some());
    }

    #[test]
    fn start_anchoring_is_detected() {
        assert!(is_start_anchored(r"(?iu)^(?:\W{0,2})?(a|b)(?=\b|\W|$)"));
        assert!(is_start_anchored(r"^([|(]x)"));
        assert!(!is_start_anchored(r"^(a)|b"));
        assert!(!is_start_anchored(r"(?m)^(a)"));
        assert!(!is_start_anchored(r"(?=^|\b|\W)(a)"));
    }
}
