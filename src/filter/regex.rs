//! Filter regexes: fail2ban tag resolution (`<HOST>`, `<F-ID>`, …) and the translation of
//! Python `re` syntax/semantics to `fancy-regex`, compiled once with a backtrack limit.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use fancy_regex::{Assertion, Expr};
use regex_automata::util::captures::Captures;
use regex_automata::{meta, Anchored, Input};

use super::ascii::{self, AsciiFirst};
use super::data::{GroupName, GroupValue, Groups};
use super::expand::Expanded;
use super::host::{self, HostPart};

/// Backtracking steps allowed per search; crafted lines hit this instead of hanging.
const BACKTRACK_LIMIT: usize = 200_000;

const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
/// The `(?<=:):` tail of IP6 is always true where it stands (every repetition before it ends
/// with `:`), so dropping the lookbehind keeps `<HOST>` regexes on the fast engine.
const IP6_TAIL_PY: &str = r"(?:[0-9a-fA-F]{1,4}|(?<=:):))";
const IP6_TAIL_RS: &str = r"(?:[0-9a-fA-F]{1,4}|:))";

/// Errors raised while building a regex, with fail2ban's message texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexError {
    Empty,
    Compile { resolved: String, message: String },
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegexError::Empty => f.write_str("Cannot add empty regex"),
            RegexError::Compile { resolved, message } => write!(
                f,
                "Unable to compile regular expression '{resolved}':\n{message}"
            ),
        }
    }
}

impl std::error::Error for RegexError {}

fn addr_form() -> String {
    format!(r"\[?(?:{IP4}|{IP6})\]?")
}

fn dns_form() -> &'static str {
    r"(?P<dns>[\w\-.^_]*\w)"
}

/// Maps an F-tag name to its group name (`ID` → `fid`, `PORT` → `fport`).
pub fn tag_to_group(name: &str) -> String {
    let lower = name.to_lowercase();
    match lower.as_str() {
        "id" => "fid".to_string(),
        "port" => "fport".to_string(),
        _ => lower,
    }
}

fn static_tag(inner: &str, usedns_no: bool) -> Option<String> {
    Some(match inner {
        "IP4" | "F-IP4/" => IP4.to_string(),
        "IP6" | "F-IP6/" => IP6.to_string(),
        "ADDR" | "F-ADDR/" => addr_form(),
        "DNS" | "F-DNS/" => dns_form().to_string(),
        "HOST" if usedns_no => format!("(?:{})", addr_form()),
        "HOST" => format!("(?:{}|{})", addr_form(), dns_form()),
        "CIDR" | "F-CIDR/" => r"(?P<cidr>\d+)".to_string(),
        "SUBNET" | "F-SUBNET/" => format!(r"\[?(?:{IP4}|{IP6})(?:/(?P<cidr>\d+))?\]?"),
        "F-ID/" => r"(?P<fid>\S+)".to_string(),
        "F-PORT/" => r"(?P<fport>\w+)".to_string(),
        _ => return None,
    })
}

fn tag_candidate_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"</?[\w\-]+/?>").unwrap_or_else(|_| unreachable!()))
}

fn custom_tag_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(/?)F-([A-Z0-9_\-]+)$").unwrap_or_else(|_| unreachable!())
    })
}

fn inline_flag_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(^|[^\\])\((?:\?:)?(\(\?[a-z]+)\)").unwrap_or_else(|_| unreachable!())
    })
}

/// Resolve fail2ban tags in one regex (spec 2.1–2.3, 2.6). `usedns` is the filter's value;
/// only `no` restricts `<HOST>` to addresses.
pub fn resolve_tags(regex: &str, usedns: &str) -> String {
    let usedns_no = usedns == "no";
    let mut opened: HashSet<String> = HashSet::new();
    let mut skiplines = 0usize;
    let mut out = String::with_capacity(regex.len() * 2);
    let mut last = 0;
    for m in tag_candidate_re().find_iter(regex) {
        out.push_str(&regex[last..m.start()]);
        last = m.end();
        let tag = m.as_str();
        let inner = &tag[1..tag.len() - 1];
        if inner == "SKIPLINES" {
            out.push_str(&format!(r"\n(?P<skiplines{skiplines}>(?:(?:.*\n)*?))"));
            skiplines += 1;
            continue;
        }
        if let Some(text) = static_tag(inner, usedns_no) {
            out.push_str(&text);
            continue;
        }
        if let Some(caps) = custom_tag_re().captures(inner) {
            let closing = !caps[1].is_empty();
            let name = caps[2].to_string();
            if closing {
                out.push_str(if opened.contains(&name) { ")" } else { tag });
            } else {
                out.push_str(&format!("(?P<{}>", tag_to_group(&name)));
                opened.insert(name);
            }
            continue;
        }
        out.push_str(tag);
    }
    out.push_str(&regex[last..]);
    // Python >= 3.11 rejects mid-pattern global flags; fail2ban scopes `((?i)X)`/`(?:(?i)X)`.
    inline_flag_re().replace_all(&out, "$1$2:").into_owned()
}

/// How `^`/`$` must behave, i.e. how Python would compile and use the regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchors {
    /// Python MULTILINE (failregexes with maxlines > 1).
    Multiline,
    /// No MULTILINE, searched in a buffer that holds exactly one `\n`, at its end.
    SingleLineBuffer,
    /// No MULTILINE, buffer may hold several lines.
    AnyBuffer,
    /// Date templates: searched in a bare line without newline; `$` is the line end.
    BareLine,
}

fn err(resolved: &str, message: impl Into<String>) -> RegexError {
    RegexError::Compile {
        resolved: resolved.to_string(),
        message: message.into(),
    }
}

/// Translate a resolved Python pattern into fancy-regex syntax with identical semantics
/// (spec 11.3). Rejects constructs Python rejects.
pub fn translate(py: &str, anchors: Anchors) -> Result<String, RegexError> {
    let src = py.replace(IP6_TAIL_PY, IP6_TAIL_RS);
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 16);
    let mut names: HashSet<String> = HashSet::new();
    let mut group_count = 0usize;
    let mut i = 0;
    // A leading global flag group must stay first in the output, before our own `(?m)`.
    if chars.first() == Some(&'(') && chars.get(1) == Some(&'?') {
        let mut j = 2;
        while j < chars.len() && chars[j].is_ascii_lowercase() {
            j += 1;
        }
        if j > 2 && chars.get(j) == Some(&')') {
            let flags: String = chars[2..j].iter().collect();
            if flags.chars().any(|c| !"imsxu".contains(c)) {
                return Err(err(py, format!("unknown flag in (?{flags})")));
            }
            // Rust has no `u` flag: Unicode is always on.
            let kept: String = flags.chars().filter(|c| *c != 'u').collect();
            if !kept.is_empty() {
                out.push_str(&format!("(?{kept})"));
            }
            i = j + 1;
        }
    }
    if matches!(anchors, Anchors::Multiline | Anchors::SingleLineBuffer) {
        out.push_str("(?m)");
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err(err(py, "bad escape (end of pattern)"));
                };
                i += 2;
                match n {
                    '<' => out.push('<'),
                    '>' => out.push('>'),
                    'Z' => out.push_str(r"\z"),
                    '0' => {
                        // Python octal escape: up to two more octal digits.
                        let mut value = 0u32;
                        let mut k = 0;
                        while k < 2 && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                            value = value * 8 + chars[i].to_digit(8).unwrap_or(0);
                            i += 1;
                            k += 1;
                        }
                        out.push_str(&format!(r"\x{{{value:x}}}"));
                    }
                    '1'..='9' => {
                        let mut num = n.to_digit(10).unwrap_or(0) as usize;
                        if let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            num = num * 10 + d as usize;
                            i += 1;
                        }
                        if num > group_count {
                            return Err(err(py, format!("invalid group reference {num}")));
                        }
                        out.push_str(&format!(r"\{num}"));
                    }
                    'e' | 'h' | 'G' | 'K' | 'R' | 'O' | 'p' | 'P' | 'X' | 'C' | 'H' | 'V' | 'y'
                    | 'Y' | 'o' | 'k' | 'g' => {
                        return Err(err(py, format!("bad escape \\{n}")));
                    }
                    'N' => return Err(err(py, r"\N{...} escapes are not supported")),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' => {
                i = translate_class(&chars, i, &mut out);
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i + 2..chars.len().min(i + 2 + 64)].iter().collect();
                    if let Some(tail) = rest.strip_prefix("P<") {
                        let name: String = tail.chars().take_while(|c| *c != '>').collect();
                        check_group_name(py, &name, &mut names)?;
                        group_count += 1;
                        out.push_str("(?P<");
                        out.push_str(&name);
                        out.push('>');
                        i += 4 + name.chars().count() + 1;
                        continue;
                    }
                    if rest.starts_with('<') && !rest.starts_with("<=") && !rest.starts_with("<!") {
                        return Err(err(py, "unknown extension ?<"));
                    }
                    if rest.starts_with("<=") || rest.starts_with("<!") {
                        check_fixed_lookbehind(py, &chars, i + 4)?;
                    }
                    if let Some(tail) = rest.strip_prefix('(') {
                        let name: String = tail.chars().take_while(|c| *c != ')').collect();
                        if !name.is_empty() && !name.chars().all(|c| c.is_ascii_digit()) {
                            out.push_str(&format!("(?(<{name}>)"));
                            i += 3 + name.chars().count() + 1;
                            continue;
                        }
                    }
                    let flags: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .collect();
                    if !flags.is_empty() && rest[flags.len()..].starts_with(')') {
                        return Err(err(py, "global flags not at the start of the expression"));
                    }
                    out.push_str("(?");
                    i += 2;
                } else {
                    group_count += 1;
                    out.push('(');
                    i += 1;
                }
            }
            '$' => {
                match anchors {
                    Anchors::AnyBuffer => out.push_str(r"(?=\n?\z)"),
                    _ => out.push('$'),
                }
                i += 1;
            }
            '^' => {
                match anchors {
                    Anchors::SingleLineBuffer => out.push_str(r"\A"),
                    _ => out.push('^'),
                }
                i += 1;
            }
            '{' => {
                // `{,n}` means `{0,n}` in Python; reject reversed bounds like Python does.
                let rest: String = chars[i + 1..chars.len().min(i + 24)].iter().collect();
                if let Some(end) = rest.find('}') {
                    let body = &rest[..end];
                    if let Some((lo, hi)) = body.split_once(',') {
                        let lo_ok = lo.chars().all(|c| c.is_ascii_digit());
                        let hi_ok = hi.chars().all(|c| c.is_ascii_digit());
                        if lo_ok && hi_ok {
                            if let (Ok(a), Ok(b)) = (lo.parse::<u64>(), hi.parse::<u64>()) {
                                if a > b {
                                    return Err(err(py, "min repeat greater than max repeat"));
                                }
                            }
                            let lo = if lo.is_empty() { "0" } else { lo };
                            out.push_str(&format!("{{{lo},{hi}}}"));
                            i += 1 + end + 1;
                            continue;
                        }
                    }
                }
                out.push('{');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn check_group_name(py: &str, name: &str, names: &mut HashSet<String>) -> Result<(), RegexError> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !valid {
        return Err(err(py, format!("bad character in group name '{name}'")));
    }
    if !names.insert(name.to_string()) {
        return Err(err(py, format!("redefinition of group name '{name}'")));
    }
    Ok(())
}

/// Python only allows fixed-width lookbehind; approximate by rejecting quantifiers and
/// alternatives of different lengths is beyond scope, so reject any quantifier inside.
fn check_fixed_lookbehind(py: &str, chars: &[char], start: usize) -> Result<(), RegexError> {
    let mut depth = 1;
    let mut i = start;
    while i < chars.len() && depth > 0 {
        match chars[i] {
            '\\' => i += 1,
            '(' => depth += 1,
            ')' => depth -= 1,
            '*' | '+' | '?' if depth > 0 && i > start && chars[i - 1] != '(' => {
                return Err(err(py, "look-behind requires fixed-width pattern"));
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Copy one Python character class starting at `chars[start] == '['`; returns the index
/// after it. `[` inside is literal in Python, set operators do not exist there.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> usize {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        out.push_str(r"\]");
        i += 1;
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                out.push(']');
                return i + 1;
            }
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    match n {
                        '0' => out.push_str(r"\x00"),
                        _ => {
                            out.push('\\');
                            out.push(n);
                        }
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            '[' => {
                out.push_str(r"\[");
                i += 1;
            }
            '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str(r"\-");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Unterminated class: let the compiler report it.
    i
}

/// One compiled filter regex with its original, resolved and translated texts.
#[derive(Debug, Clone)]
pub struct FilterRegex {
    pub original: String,
    pub resolved: String,
    pub translated: String,
    /// Built on first use (see `AsciiFirst::checked`): most lines are settled by the
    /// prefilter or by the plain forms below.
    regex: AsciiFirst<str, fancy_regex::Regex>,
    /// Named groups in definition order.
    names: Vec<(usize, GroupName)>,
    /// Number of groups, the whole match included.
    captures_len: usize,
    /// Whether some `alt_`/`tuple_` group merges into another (`data::combine_alt_tuple`).
    has_alt_tuple: bool,
    /// For a prefregex `P(?P<content>.+)$` searched in single-line buffers (see
    /// `split_content_tail`).
    split: Option<Split>,
    /// Built on first use (see `LiteralHead`).
    literal_head: OnceLock<Option<LiteralHead>>,
    /// Built on first use (see `expand`).
    expanded: OnceLock<Option<Expanded>>,
    /// Built on first use, for plain regexes (see `Parts`).
    parts: OnceLock<Option<Parts>>,
}

/// A regex `\A` + literal + plain rest, searched on ASCII text as "starts with the literal,
/// then the rest anchored after it": the capture engine only walks the rest. The groups are
/// all in the rest, so their numbers and spans are the whole regex's.
#[derive(Debug, Clone)]
struct LiteralHead {
    literal: String,
    rest: meta::Regex,
    /// When the rest is `<HOST>` (then maybe a literal): its groups without the backtracker.
    host: Option<HostPart>,
}

/// A prefregex searched by its head: `P` of `P(?P<content>.+)$` or `P(?P<content>.+?)T$`.
#[derive(Debug, Clone)]
struct Split {
    head: AsciiFirst<str, fancy_regex::Regex>,
    /// Built on first use (see `Parts`).
    parts: OnceLock<Option<Parts>>,
    /// Group number of `content`.
    content: usize,
    tail: Option<ContentTail>,
}

/// A plain pattern cut into at most three parts: the items of its top-level concatenation
/// before the first one with a named group, the items from there to the last one with a
/// named group, and the rest. Each part is searched on its own, the first one unanchored and
/// each next one anchored where the previous one ended; only the middle part needs the
/// capture engine, and only over its own span, and not at all when it is a single named
/// group (its span is then the part's). A backtracking search tries the parses of `A` in
/// order and, for each, those of the rest; so when the rest matches after `A`'s first
/// parse, the whole match is that parse followed by the rest's first parse, part by part.
/// When the last part does not match after the middle's first parse (`<HOST>`'s `\]?` took
/// the `]` the rest wants), the middle and last parts are searched again as one; when a part
/// still does not match where the previous one ended, the whole regex decides. This spares
/// the backtracker the syslog prefix of a prefregex and the text around a failregex's
/// `<HOST>` (most of a line), which the DFAs read several times faster.
#[derive(Debug, Clone)]
struct Parts {
    parts: Vec<Part>,
    /// The middle and last parts as one, when there is a last part.
    joined: Option<Joined>,
}

/// The middle and last parts of `Parts` as one pattern, built on first use: the rest
/// follows the middle's first parse on most lines.
#[derive(Debug, Clone)]
struct Joined {
    pattern: String,
    /// Groups before the middle.
    offset: usize,
    /// The first part (if any) and the joined one.
    parts: OnceLock<Option<Vec<Part>>>,
}

#[derive(Debug, Clone)]
struct Part {
    regex: meta::Regex,
    groups: PartGroups,
    /// For a `<HOST>` part with captures: its groups without the backtracker.
    host: Option<HostPart>,
}

impl Part {
    /// The ASCII build of a plain `pattern`, made of `items` when they are known.
    fn new(pattern: &str, groups: PartGroups, items: Option<&[Expr]>) -> Option<Part> {
        let host = match groups {
            PartGroups::Captures { .. } => items.and_then(HostPart::new),
            _ => None,
        };
        Some(Part {
            regex: ascii::build_plain(pattern)?,
            groups,
            host,
        })
    }

    /// The part's match in `input` with its captures.
    fn search_captures(&self, text: &str, input: &Input<'_>) -> Captures {
        let mut caps = self.regex.create_captures();
        let found = host::search_slots(
            &self.regex,
            self.host.as_ref(),
            text,
            input,
            caps.slots_mut(),
        );
        caps.set_pattern(found);
        caps
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PartGroups {
    /// No named group inside: the DFAs find the part's span.
    None,
    /// The part is this named group (zero-width items before it aside).
    Whole(usize),
    /// Named groups inside: the part's group `i` is the whole pattern's `offset + i`.
    Captures { offset: usize },
}

/// Where each part matched, and the captures of the part that needed them.
struct PartsMatch<'p> {
    parts: &'p [Part],
    spans: [(usize, usize); 3],
    captures: Option<Captures>,
}

impl PartsMatch<'_> {
    /// Span of group `group` (0: the whole match), for named groups.
    fn span(&self, group: usize) -> Option<(usize, usize)> {
        if group == 0 {
            return Some((self.spans[0].0, self.spans[self.parts.len() - 1].1));
        }
        self.parts
            .iter()
            .zip(self.spans)
            .find_map(|(part, span)| match part.groups {
                PartGroups::Whole(g) if g == group => Some(Some(span)),
                PartGroups::Captures { offset } if group > offset => {
                    let found = self.captures.as_ref()?.get_group(group - offset);
                    Some(found.map(|s| (s.start, s.end)))
                }
                _ => None,
            })
            .flatten()
    }
}

/// Why a search by parts gave no match: none at all, or the whole regex must decide.
enum PartsStop {
    NoMatch,
    /// Part `at` did not match where the previous one ended.
    Undecided {
        at: usize,
    },
}

impl Parts {
    /// The parts of `pattern` whose named groups are `named` (by number); None when a part
    /// is not plain, or cutting would leave the whole pattern as one part for the capture
    /// engine anyway.
    fn new(pattern: &str, named: &[usize]) -> Option<Parts> {
        let items = match ascii::unoptimized_tree(pattern)? {
            Expr::Concat(items) => items,
            other => vec![other],
        };
        // For each item: the groups before it, and whether a named group is inside it.
        let mut counter = 0;
        let marks: Vec<(usize, bool)> = items
            .iter()
            .map(|item| {
                let before = counter;
                super::prefilter::count_groups(item, &mut counter);
                (
                    before,
                    named.iter().any(|g| (before + 1..=counter).contains(g)),
                )
            })
            .collect();
        if named.iter().any(|g| *g > counter) {
            return None;
        }
        let build = |ranges: &[(std::ops::Range<usize>, PartGroups)]| {
            ranges
                .iter()
                .map(|(range, groups)| {
                    let part = Expr::Concat(items[range.clone()].to_vec());
                    ascii::is_plain(&part)
                        .then(|| {
                            Part::new(&ascii::render(&part), *groups, Some(&items[range.clone()]))
                        })
                        .flatten()
                })
                .collect::<Option<Vec<_>>>()
        };
        let (Some(first), Some(last)) = (
            marks.iter().position(|m| m.1),
            marks.iter().rposition(|m| m.1),
        ) else {
            // No named group: the DFAs find the whole match.
            let whole = [(0..items.len(), PartGroups::None)];
            return Some(Parts {
                parts: build(&whole)?,
                joined: None,
            });
        };
        let zero_width = |e: &Expr| matches!(e, Expr::Assertion(_));
        let mut ranges = Vec::new();
        let first = if items[..first].iter().all(zero_width) {
            0
        } else {
            ranges.push((0..first, PartGroups::None));
            first
        };
        // A literal right after the last named group stays in the middle: `<HOST>`'s
        // optional `\]?` then gives back the `]` of `\[<HOST>\]` within the middle's own
        // search.
        let end = match items.get(last + 1) {
            Some(Expr::Literal { .. }) => last + 2,
            _ => last + 1,
        };
        let group = marks[last].0 + 1;
        let inside_last = marks.get(last + 1).map_or(counter, |m| m.0);
        let single = end == last + 1
            && items[first..last].iter().all(zero_width)
            && matches!(items[last], Expr::Group(_))
            && named.contains(&group)
            && named
                .iter()
                .filter(|g| (group..=inside_last).contains(g))
                .count()
                == 1;
        let captures = PartGroups::Captures {
            offset: marks[first].0,
        };
        ranges.push((
            first..end,
            if single {
                PartGroups::Whole(group)
            } else {
                captures
            },
        ));
        if end < items.len() {
            ranges.push((end..items.len(), PartGroups::None));
        }
        if ranges.len() == 1 && ranges[0].1 != PartGroups::None {
            return None;
        }
        // Built, the parts are plain, so their items can be rendered together.
        let parts = build(&ranges)?;
        let joined = (end < items.len()).then(|| Joined {
            pattern: ascii::render(&Expr::Concat(items[first..].to_vec())),
            offset: marks[first].0,
            parts: OnceLock::new(),
        });
        Some(Parts { parts, joined })
    }

    /// The match on ASCII `text`: Some(the parts' match), or Some(None) when there is none;
    /// None when the whole regex must decide.
    fn search(&self, text: &str) -> Option<Option<PartsMatch<'_>>> {
        let found = match Self::search_parts(&self.parts, text) {
            Err(PartsStop::Undecided { at }) if at + 1 == self.parts.len() => {
                Self::search_parts(self.joined_parts()?, text)
            }
            found => found,
        };
        match found {
            Ok(found) => Some(Some(found)),
            Err(PartsStop::NoMatch) => Some(None),
            Err(PartsStop::Undecided { .. }) => None,
        }
    }

    /// The first part (if any) followed by the middle and last parts as one.
    fn joined_parts(&self) -> Option<&[Part]> {
        let joined = self.joined.as_ref()?;
        let parts = joined.parts.get_or_init(|| {
            let mut parts = self.parts[..self.parts.len() - 2].to_vec();
            parts.push(Part::new(
                &joined.pattern,
                PartGroups::Captures {
                    offset: joined.offset,
                },
                None,
            )?);
            Some(parts)
        });
        parts.as_deref()
    }

    fn search_parts<'p>(parts: &'p [Part], text: &str) -> Result<PartsMatch<'p>, PartsStop> {
        let mut spans = [(0, 0); 3];
        let mut captures = None;
        let mut input = Input::new(text);
        for (i, part) in parts.iter().enumerate() {
            let found = if let PartGroups::Captures { .. } = part.groups {
                let caps = part.search_captures(text, &input);
                let found = caps.get_match();
                captures = Some(caps);
                found
            } else {
                part.regex.search(&input)
            };
            let Some(found) = found else {
                // Every match of the whole starts with a match of its first part.
                return Err(if i == 0 {
                    PartsStop::NoMatch
                } else {
                    PartsStop::Undecided { at: i }
                });
            };
            spans[i] = (found.start(), found.end());
            input = Input::new(text)
                .range(found.end()..)
                .anchored(Anchored::Yes);
        }
        Ok(PartsMatch {
            parts,
            spans,
            captures,
        })
    }
}

/// A split head's match: from its parts, or the head regex's captures.
enum HeadMatch<'s, 't> {
    Parts(PartsMatch<'s>),
    Captures(fancy_regex::Captures<'t, str>),
}

impl HeadMatch<'_, '_> {
    /// Span of group `group` (0: the whole head).
    fn span(&self, group: usize) -> Option<(usize, usize)> {
        match self {
            HeadMatch::Parts(found) => found.span(group),
            HeadMatch::Captures(caps) => caps.get(group).map(|m| (m.start(), m.end())),
        }
    }
}

/// The `T$` after a lazy content group `(?P<content>.+?)` (or `.*?`): the content ends where
/// `T$` first matches, so on ASCII text the leftmost match of `T$` from the content's
/// shortest end is the whole regex's, groups and all, without walking the content with
/// the backtracker.
#[derive(Debug, Clone)]
struct ContentTail {
    /// `T$`, ASCII build; its groups are the whole regex's from `first_group` on.
    regex: meta::Regex,
    /// Shortest content: 1 for `.+?`, 0 for `.*?`.
    min_content: usize,
    /// Whole-regex number of the tail's group 1.
    first_group: usize,
}

impl ContentTail {
    /// The tail of a prefregex whose top level is `P (?P<content>.+?) T $` (content numbered
    /// `content`), when `T` is plain and defines no `content` group itself.
    fn new(translated: &str, content: usize, groups: usize) -> Option<ContentTail> {
        let Expr::Concat(items) = ascii::unoptimized_tree(translated)? else {
            return None;
        };
        let mut counter = 0;
        let at = items.iter().position(|item| {
            let before = counter;
            super::prefilter::count_groups(item, &mut counter);
            before + 1 == content && matches!(item, Expr::Group(_))
        })?;
        let Expr::Group(group) = &items[at] else {
            return None;
        };
        let min_content = match &**group {
            Expr::Repeat {
                child,
                lo,
                hi: usize::MAX,
                greedy: false,
            } if *lo <= 1 && matches!(**child, Expr::Any { newline: false, .. }) => *lo,
            _ => return None,
        };
        let tail = Expr::Concat(items[at + 1..].to_vec());
        if !matches!(
            items.last(),
            Some(Expr::Assertion(Assertion::EndLine { crlf: false }))
        ) || at + 2 >= items.len()
            || !ascii::is_plain(&tail)
        {
            return None;
        }
        let regex = ascii::build_plain(&ascii::render(&tail))?;
        (content + regex.captures_len() == groups).then_some(ContentTail {
            regex,
            min_content,
            first_group: content + 1,
        })
    }
}

/// Shortest literal worth splitting off.
const MIN_LITERAL_HEAD: usize = 4;

/// A translated pattern as `\A` + case-sensitive literal + the rest, when it starts so with
/// a literal of at least `MIN_LITERAL_HEAD` bytes.
pub fn split_literal_head(translated: &str) -> Option<(String, Expr)> {
    let Expr::Concat(items) = ascii::unoptimized_tree(translated)? else {
        return None;
    };
    if !matches!(items.first(), Some(Expr::Assertion(Assertion::StartText))) {
        return None;
    }
    let mut literal = String::new();
    let mut next = 1;
    while let Some(Expr::Literal { val, casei: false }) = items.get(next) {
        literal.push_str(val);
        next += 1;
    }
    (literal.len() >= MIN_LITERAL_HEAD).then(|| (literal, Expr::Concat(items[next..].to_vec())))
}

impl LiteralHead {
    fn new(translated: &str, groups: usize) -> Option<LiteralHead> {
        let (literal, rest) = split_literal_head(translated)?;
        if !literal.is_ascii() || !ascii::is_plain(&rest) {
            return None;
        }
        let host = match &rest {
            Expr::Concat(items) => HostPart::new(items),
            _ => None,
        };
        let rest = ascii::build_plain(&ascii::render(&rest))?;
        (rest.captures_len() == groups).then_some(LiteralHead {
            literal,
            rest,
            host,
        })
    }

    /// The whole regex's match on ASCII `text` (it can only start at 0).
    fn search(&self, text: &str, names: &[(usize, GroupName)]) -> Option<MatchSpans> {
        if !text.starts_with(&self.literal) {
            return None;
        }
        let input = Input::new(text)
            .range(self.literal.len()..)
            .anchored(Anchored::Yes);
        let mut slots = vec![None; self.rest.group_info().slot_len()];
        host::search_slots(&self.rest, self.host.as_ref(), text, &input, &mut slots)?;
        // The rest's match starts after the literal; the whole regex's at 0.
        let span = |group: usize| match (slots.get(2 * group)?, slots.get(2 * group + 1)?) {
            (Some(_), Some(e)) if group == 0 => Some((0, e.get())),
            (Some(s), Some(e)) => Some((s.get(), e.get())),
            _ => None,
        };
        MatchSpans::new(span, names)
    }
}

/// Compile a translated pattern, limited to ASCII or with full Unicode classes.
pub fn compile(translated: &str, ascii: bool) -> Result<fancy_regex::Regex, String> {
    if ascii && !ascii::ascii_safe(translated) {
        return Err("no exact ASCII form".into());
    }
    let mut builder = fancy_regex::RegexBuilder::new(translated);
    builder.backtrack_limit(BACKTRACK_LIMIT);
    if ascii {
        builder.bytes_mode(fancy_regex::BytesMode::Ascii);
    } else {
        builder.delegate_size_limit(ascii::UNICODE_SIZE_LIMIT);
    }
    builder.build().map_err(|e| e.to_string())
}

/// A successful search: span and every named group (None when it did not participate).
#[derive(Debug, Clone, PartialEq)]
pub struct RegexMatch {
    pub start: usize,
    pub end: usize,
    pub groups: Groups,
}

/// Where a successful search matched: the whole match and each named group's span, in the
/// regex's name order. Cheap to keep and copy; `FilterRegex::to_match` makes the strings.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchSpans {
    pub start: usize,
    pub end: usize,
    groups: Vec<Option<(usize, usize)>>,
}

impl MatchSpans {
    /// The spans `span` gives by group number (0: the whole match).
    fn new(
        span: impl Fn(usize) -> Option<(usize, usize)>,
        names: &[(usize, GroupName)],
    ) -> Option<MatchSpans> {
        let (start, end) = span(0)?;
        let groups = names.iter().map(|(i, _)| span(*i)).collect();
        Some(MatchSpans { start, end, groups })
    }
}

impl RegexMatch {
    /// Value of a named group, None when absent or not participating.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|(n, _)| **n == *name)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl FilterRegex {
    /// Resolve tags, translate and compile.
    pub fn new(original: &str, usedns: &str, anchors: Anchors) -> Result<FilterRegex, RegexError> {
        let resolved = resolve_tags(original, usedns);
        Self::from_resolved(original, resolved, anchors)
    }

    /// Translate and compile an already resolved Python pattern.
    fn from_resolved(
        original: &str,
        resolved: String,
        anchors: Anchors,
    ) -> Result<FilterRegex, RegexError> {
        if resolved.trim().is_empty() {
            return Err(RegexError::Empty);
        }
        let translated = translate(&resolved, anchors)?;
        let mut names = Vec::new();
        let mut captures_len = 0;
        let regex = AsciiFirst::checked(translated.as_str().into(), compile, |built| {
            captures_len = built.captures_len();
            names = built
                .capture_names()
                .enumerate()
                .filter_map(|(i, n)| n.map(|n| (i, GroupName::from(n))))
                .collect();
        })
        .map_err(|e| err(&resolved, e))?;
        let has_alt_tuple = super::data::has_alt_tuple(names.iter().map(|(_, n)| &**n));
        Ok(FilterRegex {
            original: original.to_string(),
            resolved,
            translated,
            regex,
            names,
            captures_len,
            has_alt_tuple,
            split: None,
            literal_head: OnceLock::new(),
            expanded: OnceLock::new(),
            parts: OnceLock::new(),
        })
    }

    /// Prefregexes of single-line filters: when the pattern is `P(?P<content>.+)$` with the
    /// content group last and at the top level, search with `P` alone and take the rest of
    /// the line as the content, which spares the backtracker the whole line. Same results,
    /// except where the whole regex would give up at the backtrack limit and `P` does not
    /// (Python, without a limit, finds that match too).
    ///
    /// A lazy content followed by more, `P(?P<content>.+?)T$` with a plain `T`, is searched
    /// as `P`, then `T$` from the content's shortest end (see `ContentTail`).
    pub fn split_content_tail(&mut self) {
        let Some(content) = self.group_index("content") else {
            return;
        };
        let head = [r"(?P<content>.+)$", r"(?P<content>.+?)$"]
            .iter()
            .find_map(|tail| self.translated.strip_suffix(tail));
        let head = head.filter(|_| {
            super::prefilter::content_runs_to_line_end_text(&self.translated, content)
                && self.names.last().is_some_and(|(i, _)| *i == content)
        });
        if let Some(head) = head {
            self.split = AsciiFirst::new(head.into(), compile)
                .ok()
                .map(|head| Split {
                    head,
                    parts: OnceLock::new(),
                    content,
                    tail: None,
                });
            return;
        }
        let Some(tail) = ContentTail::new(&self.translated, content, self.captures_len) else {
            return;
        };
        // The content group is at the top level, so the text before it is the head.
        let Some(at) = self.translated.find("(?P<content>") else {
            return;
        };
        let head = AsciiFirst::new(self.translated[..at].into(), compile).ok();
        self.split = head
            .filter(|h| h.any().is_some_and(|h| h.captures_len() == content))
            .map(|head| Split {
                head,
                parts: OnceLock::new(),
                content,
                tail: Some(tail),
            });
    }

    /// Whether `split_content_tail` found a head to search by.
    pub fn has_head(&self) -> bool {
        self.split.is_some()
    }

    /// `search` by the head regex (see `split_content_tail`). None when the head's answer
    /// does not settle it: its first parse leaves no content, the buffer is not one line, or
    /// the head failed (backtrack limit); the whole regex then decides.
    fn search_split(&self, split: &Split, text: &str) -> Option<Option<MatchSpans>> {
        let head = match self.search_head(split, text)? {
            Some(head) => head,
            // The whole regex matches only where its head does.
            None => return Some(None),
        };
        let whole = head.span(0)?;
        let line = text.get(whole.1..)?.strip_suffix('\n')?;
        if line.contains('\n') {
            return None;
        }
        let (content_end, end, tail_caps) = match &split.tail {
            None if line.is_empty() => return None,
            None => (text.len() - 1, text.len() - 1, None),
            Some(_) if !text.is_ascii() => return None,
            Some(tail) => {
                let input = Input::new(text).range(whole.1 + tail.min_content..);
                let mut found = tail.regex.create_captures();
                tail.regex.search_captures(&input, &mut found);
                // No tail after this head parse: the whole regex decides.
                let m = found.get_match().filter(|m| m.start() < text.len())?;
                (m.start(), m.end(), Some((tail, found)))
            }
        };
        let groups = self
            .names
            .iter()
            .map(|(i, _)| match &tail_caps {
                _ if *i == split.content => Some((whole.1, content_end)),
                Some((tail, found)) if *i >= tail.first_group => found
                    .get_group(*i - tail.first_group + 1)
                    .map(|s| (s.start, s.end)),
                _ => head.span(*i),
            })
            .collect();
        Some(Some(MatchSpans {
            start: whole.0,
            end,
            groups,
        }))
    }

    /// The head's match (Some(None): no match), part by part on ASCII text when the head
    /// allows it (see `Parts`), else by the head regex; None when the search failed.
    fn search_head<'s, 't>(
        &'s self,
        split: &'s Split,
        text: &'t str,
    ) -> Option<Option<HeadMatch<'s, 't>>> {
        if text.is_ascii() {
            let parts = split.parts.get_or_init(|| {
                let named: Vec<usize> = self
                    .names
                    .iter()
                    .map(|(i, _)| *i)
                    .filter(|i| *i < split.content)
                    .collect();
                Parts::new(split.head.pattern(), &named)
            });
            if let Some(found) = parts.as_ref().and_then(|p| p.search(text)) {
                return Some(found.map(HeadMatch::Parts));
            }
        }
        let caps = split.head.for_text(text)?.captures(text).ok()?;
        Some(caps.map(HeadMatch::Captures))
    }

    /// Whether `data::combine_alt_tuple` has anything to do with this regex's groups.
    pub fn has_alt_tuple(&self) -> bool {
        self.has_alt_tuple
    }

    /// True if the regex defines the named group.
    pub fn has_group(&self, name: &str) -> bool {
        self.names.iter().any(|(_, n)| **n == *name)
    }

    /// Capture group number of a named group.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .find(|(_, n)| **n == *name)
            .map(|(i, _)| *i)
    }

    /// Whether the regex matches anywhere in `text` (no captures).
    pub fn is_match(&self, text: &str) -> bool {
        self.regex
            .for_text(text)
            .is_some_and(|re| re.is_match(text).unwrap_or(false))
    }

    /// Names of all named groups, in definition order.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|(_, n)| &**n)
    }

    /// Unanchored leftmost search (Python `re.search`). A search that exceeds the backtrack
    /// limit counts as no match.
    pub fn search(&self, text: &str) -> Option<RegexMatch> {
        let spans = self.search_spans(text)?;
        Some(self.to_match(text, &spans))
    }

    /// The match `spans` (from `search_spans` on `text`) stands for, with its group strings.
    pub fn to_match(&self, text: &str, spans: &MatchSpans) -> RegexMatch {
        RegexMatch {
            start: spans.start,
            end: spans.end,
            groups: self.groups_except(text, spans, None),
        }
    }

    /// The group strings of the match `spans` of `text`, in name order, without the group
    /// named `skip` (a prefregex's content, which is used as text, not kept as a value).
    pub fn groups_except(&self, text: &str, spans: &MatchSpans, skip: Option<&str>) -> Groups {
        let mut groups = Vec::with_capacity(self.names.len());
        for ((_, name), span) in self.names.iter().zip(&spans.groups) {
            if skip != Some(&**name) {
                let value = span.map(|(s, e)| GroupValue::from(&text[s..e]));
                groups.push((name.clone(), value));
            }
        }
        groups
    }

    /// The text of group `name` in the match `spans` of `text`, None when it did not take part.
    pub fn group<'t>(&self, text: &'t str, spans: &MatchSpans, name: &str) -> Option<&'t str> {
        let (start, end) = self.group_span(spans, name)?;
        Some(&text[start..end])
    }

    /// Where group `name` is in the match `spans`, None when it did not take part.
    pub fn group_span(&self, spans: &MatchSpans, name: &str) -> Option<(usize, usize)> {
        let at = self.names.iter().position(|(_, n)| **n == *name)?;
        spans.groups.get(at).copied().flatten()
    }

    /// `search`, without making the group strings.
    pub fn search_spans(&self, text: &str) -> Option<MatchSpans> {
        if let Some(found) = self.split.as_ref().and_then(|h| self.search_split(h, text)) {
            return found;
        }
        let ascii = text.is_ascii();
        if ascii {
            let literal_head = self
                .literal_head
                .get_or_init(|| LiteralHead::new(&self.translated, self.captures_len));
            if let Some(literal_head) = literal_head {
                return literal_head.search(text, &self.names);
            }
            let expanded = self
                .expanded
                .get_or_init(|| Expanded::new(&self.translated, self.captures_len));
            match expanded {
                Some(expanded) => {
                    if let Some(found) = expanded.search(text) {
                        let spans = found?;
                        let span = |group: usize| spans.get(group).copied().flatten();
                        return MatchSpans::new(span, &self.names);
                    }
                }
                None => {
                    let parts = self.parts.get_or_init(|| {
                        let named: Vec<usize> = self.names.iter().map(|(i, _)| *i).collect();
                        Parts::new(&self.translated, &named)
                    });
                    if let Some(found) = parts.as_ref().and_then(|p| p.search(text)) {
                        return MatchSpans::new(|group| found.as_ref()?.span(group), &self.names);
                    }
                }
            }
        }
        let caps = self.regex.for_ascii(ascii)?.captures(text).ok()??;
        let span = |group: usize| caps.get(group).map(|m| (m.start(), m.end()));
        MatchSpans::new(span, &self.names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(p: &str) -> FilterRegex {
        FilterRegex::new(p, "warn", Anchors::SingleLineBuffer).expect("test regex compiles")
    }

    #[test]
    fn literal_head_search_keeps_whole_regex_results() {
        let patterns = [
            "^ SMTP Spam attack detected from <HOST>,",
            r"^ Attempt to deliver to unknown recipient \S+, from \S+, IP address <HOST>$",
            r"^ Client with IP address <HOST> has no reverse DNS entry, connection rejected before SMTP greeting$",
            r"^Failed (?:password|publickey) for (?P<user>\S+) from <HOST>(?: port \d+)?",
            r"^User (?P<user>\S*)x? unknown\b",
            r"^abcd(?P<rest>.*)$",
            r"^abcd(?=x)",
            // fancy-regex's optimizer rewrites these (and changes their groups).
            r"^user \w*(?P<sep>.)?\w+ from <HOST>",
            r"^abcd(?P<x>a*b??a*)",
        ];
        let texts = [
            " SMTP Spam attack detected from 192.0.2.1, client closed\n",
            " SMTP Spam attack detected from 2001:db8::1, x\n",
            " SMTP Spam attack detected from host.example.org,\n",
            " SMTP Spam attack detected from [2001:db8::1],\n",
            " SMTP Spam attack detected from ,\n",
            " SMTP Spam attack detected from 192.0.2.1\n",
            " SMTP Spam attack detected",
            " Attempt to deliver to unknown recipient a@b, from c@d, IP address 192.0.2.7\n",
            " Attempt to deliver to unknown recipient a@b, from c@d, IP address 192.0.2.7 x\n",
            " Client with IP address 10.0.0.1 has no reverse DNS entry, connection rejected before SMTP greeting\n",
            "Failed password for root from 192.0.2.9 port 22 ssh2\n",
            "Failed publickey for  from ::1\n",
            "Failed password for root from é\n",
            "User bobx unknown\n",
            "User  unknown!\n",
            "abcd\n",
            "abcdx\n",
            "abc\n",
            "xabcd\n",
            "\n",
            "",
        ];
        for pattern in patterns {
            let regex = single(pattern);
            let fancy = regex.regex.any().expect("ascii build");
            let groups = fancy.captures_len();
            let literal_head = LiteralHead::new(&regex.translated, groups);
            if pattern.ends_with("(?=x)") {
                assert!(literal_head.is_none(), "lookahead rest is not plain");
                continue;
            }
            if pattern.contains("(?P<sep>") || pattern.contains("b??") {
                assert!(literal_head.is_none(), "fancy-regex rewrites {pattern}");
                continue;
            }
            let literal_head = literal_head.unwrap_or_else(|| panic!("{pattern} splits"));
            for text in texts {
                let exact = fancy.captures(text).ok().flatten().map(|c| {
                    let whole = c.get(0).map(|m| (m.start(), m.end()));
                    let groups: Vec<_> = regex
                        .names
                        .iter()
                        .map(|(i, n)| (n.clone(), c.get(*i).map(|m| GroupValue::from(m.as_str()))))
                        .collect();
                    (whole, groups)
                });
                let fast = literal_head
                    .search(text, &regex.names)
                    .map(|m| regex.to_match(text, &m))
                    .map(|m| (Some((m.start, m.end)), m.groups));
                assert_eq!(fast, exact, "{pattern} on {text:?}");
                assert_eq!(regex.search(text), regex_search_exact(&regex, text));
            }
        }
    }

    #[test]
    fn expanded_search_keeps_whole_regex_results() {
        let expandable = [
            // The shape of sshd's `Failed …` failregex: conditionals on an optional group and
            // on a group set by one alternative, tempered dots lazy and greedy.
            r"^Failed (?:(?P<pk>publickey)|\S+) for (?P<inv>invalid user )?(?P<user>(?P<plain>\S+)|(?(inv)(?:(?! from ).)*?|[^:]+)) from <HOST>(?: port \d+)?(?: ssh\d*)?(?(plain): |(?:(?! from ).)*$)",
            r"^(?:(?P<a>a)|b)(?(a)c|d)(?P<rest>(?:(?!ab).)*)$",
            r"^(?P<a>a)??(?(a)a|ab)$",
            r"^(?P<a>q)(?(a)r|s)",
            r"x(?P<m>(?:(?!--).)*)--",
            r"^(?P<m>(?:(?!--).)*?)-",
            r"^(?P<a>x)?(?:(?(a)y|z))+$",
            // A conditional on a group around an alternation.
            r"^(?P<g>x|y)(?(g)a|b)",
            // Expansions inside a group: one piece holds several copies of a group.
            r"^(?P<o>(?P<g>x|y)(?(g)a|b))z",
            r"^(?P<o>(?P<a>a)?(?(a)b|c)(?P<x>x))y",
            r"^(?P<o>(?P<g>x|y)(?(g)a|b))(?P<h>h)?(?(h)1|2)",
            // Unanchored head whose first match does not go on; a match on a later line.
            r"x(?P<a>a)?(?(a)b|c)",
            r"(?m)^(?P<a>a)?(?(a)b|c)",
            // Look-behind at a branch start; empty heads of nested branches.
            r"^a(?P<c>-)?(?(c)b|\Bb)",
            r"^x(?P<a>a)?(?P<b>b)?(?(a)y|z)(?(b)1|2)",
            // Both branches match: the first one wins.
            r"^(?:(?P<a>a)|ab)(?(a)bc|c)",
            // Negative lookaheads of a literal: sshd's `Connection closed …` shape, and
            // lookaheads whose relaxed path fails its check (the VM then decides).
            r"^(?P<nofail>(?P<mlfforget>(?:Connection (?:closed|reset)|Disconnect(?:ed|ing))))(?: (?:by|from))?(?: (?:invalid|authenticating) user (?P<user>\S+|.*?))?(?: from)? <ADDR>(?: (?:port \d+|on \S+)){0,2}(?:: (?!Too many authentication failures)[^\[]+)?(?: \[preauth\])?\s*$",
            r"^a(?!bc)(?P<w>\w+)$",
            r"^(?P<x>x(?!y))?(?P<w>\w*)",
            r"^(?:(?P<a>a)(?!b)|ab)c",
            r"(?!x)(?P<c>.)(?P<d>\w)",
        ];
        let texts = [
            "Failed password for root from 192.0.2.1 port 22 ssh2\n",
            "Failed password for invalid user bob from 2001:db8::1 port 22 ssh2\n",
            "Failed password for invalid user a from b from 192.0.2.1 port 22 ssh2\n",
            "Failed password for root from 192.0.2.1 port 22 ssh2: RSA x\n",
            "Failed publickey for root from 192.0.2.1 port 22 ssh2 from 192.0.2.9\n",
            "Failed password for user from host.example.org\n",
            "Failed password for  from 192.0.2.1\n",
            "acx\n",
            "acxab\n",
            "bdyyy\n",
            "bcy\n",
            "aa\n",
            "aab\n",
            "ab\n",
            "qr\n",
            "qs\n",
            "x a-b -- c\n",
            "x a--\n",
            "xx---\n",
            "a-b--c\n",
            "--\n",
            "xyy\n",
            "zz\n",
            "xz\n",
            "xa\n",
            "xb\n",
            "ya\n",
            "xaz\n",
            "xah1\n",
            "ya2\n",
            "yaz\n",
            "abxy\n",
            "cxy\n",
            "xdxab\n",
            "d\nab\n",
            "a-b\n",
            "a-\n",
            "xz2\n",
            "xbz1\n",
            "xay2\n",
            "xaby1\n",
            "xab2\n",
            "abc\n",
            "Connection closed by 192.0.2.1 port 22 [preauth]\n",
            "Connection closed by 192.0.2.1 port 22: Too many authentication failures [preauth]\n",
            "Disconnected from 192.0.2.1 port 22: Bye Bye [preauth]\n",
            "Connection reset by authenticating user root 192.0.2.1 port 22 [preauth]\n",
            "Disconnecting invalid user a b 2001:db8::1 port 22: Too many authentication\n",
            "abd\n",
            "abcd\n",
            "xy\n",
            "xyz\n",
            "ac\n",
            "xxab\n",
            "\n",
            "",
        ];
        for pattern in expandable {
            let regex = single(pattern);
            let groups = regex.regex.any().expect("ascii build").captures_len();
            assert!(
                Expanded::new(&regex.translated, groups).is_some(),
                "{pattern} expands"
            );
            for text in texts {
                assert_eq!(
                    regex.search(text),
                    regex_search_exact(&regex, text),
                    "{pattern} on {text:?}"
                );
            }
        }
        for pattern in [
            r"^(?P<a>a)\1",
            r"^(?:x(?:(?!a).)*)+$",
            // A lookahead in a repeat: its group would show the last iteration only.
            r"^(?:a(?!b)){2}",
            r"^a(?![bc])",
            r"^(?<=a)b(?(1)c|d)",
            r"^(?P<a>a)*(?(a)b|c)",
            // Groups in repeats: captures carry over between iterations, and the engines
            // differ on an empty last iteration.
            r"^(?:(?P<a>x)?(?(a)y|z))+$",
            r"^(?P<r>a?)*(?P<c>c)?(?(c)x|y)",
            // Conditionals evaluated before their group closes.
            r"^(?:(?(1)a|b)(c)|d)(?(1)e|f)",
            r"(?P<a>x(?(a)y|z))?(?(a)p|q)",
            // Plain already: regex-automata runs it as it is.
            r"^(?P<a>a)?b",
        ] {
            let regex = single(pattern);
            let groups = regex.regex.any().map_or(0, |r| r.captures_len());
            assert!(
                Expanded::new(&regex.translated, groups).is_none(),
                "{pattern} is not expanded"
            );
        }
    }

    /// `search` through the whole fancy regex only.
    fn regex_search_exact(regex: &FilterRegex, text: &str) -> Option<RegexMatch> {
        let caps = regex.regex.for_text(text)?.captures(text).ok()??;
        let whole = caps.get(0)?;
        Some(RegexMatch {
            start: whole.start(),
            end: whole.end(),
            groups: regex
                .names
                .iter()
                .map(|(i, n)| {
                    (
                        n.clone(),
                        caps.get(*i).map(|m| GroupValue::from(m.as_str())),
                    )
                })
                .collect(),
        })
    }

    #[test]
    fn head_search_keeps_whole_regex_results() {
        let cases = [
            r"^(?P<pid>\[\d+\])?:? ?(?P<content>.+)$",
            // The head's first parse can take the whole line: then the whole regex decides.
            r"^(?P<all>.*)(?P<content>.+)$",
            r"^(?:x|xy)(?P<content>.+?)$",
            // Unanchored: the leftmost head match decides too.
            r"(?P<tag>[a-z]+):(?P<content>.+)$",
            // A lazy content with a tail: the tail's leftmost match ends the content.
            r"^(?P<x>a)?(?P<content>.+?)(?:, u=(?P<user>\S+))?\s*$",
            r"^(?P<content>.*?)(?P<t>x*)$",
            r"^a(?P<content>.+?) (?:end|ending)$",
            r"(?P<tag>[a-z]+):(?P<content>.+?)(?P<n>\d+)?$",
            r"^(?P<content>.+?)\bx$",
            r"^(?P<content>.+?)\s+$",
            r"^(?:x|xy)(?P<content>.+?)(?P<e>[^:]*)$",
        ];
        let texts = [
            "[12]: hello\n",
            "hello\n",
            "x\n",
            "xy\n",
            "xyz\n",
            "a:b\n",
            "::a:\n",
            "a:\n",
            "a:b",
            "\n",
            "",
            "a:b\nc\n",
            "[1]\n",
            "ab:cd:ef\n",
            "é:ü\n",
            "x, u=bob \n",
            "a, u=bob\n",
            "ab, u=\n",
            "a, u=b, u=c\n",
            "abc end\n",
            "abc ending\n",
            "a end\n",
            "ab \n",
            "ab  \n",
            "hello x\n",
            "hellox\n",
            "x x\n",
            "ab:12\n",
            "ab:1\n",
            "xy:z\n",
            "xx\n",
            "aé end\n",
        ];
        for pattern in cases {
            let whole = FilterRegex::new(pattern, "warn", Anchors::SingleLineBuffer).unwrap();
            let mut split = whole.clone();
            split.split_content_tail();
            assert!(split.has_head(), "{pattern} should be split");
            for text in texts {
                assert_eq!(
                    split.search(text),
                    whole.search(text),
                    "{pattern} on {text:?}"
                );
            }
        }
        // Not split: content not last, not at the top level, or not to the line end.
        for pattern in [
            r"^(?P<content>.+)(?P<x>)$",
            r"^(?:a|(?P<content>.+))$",
            r"^(?P<content>.+) end$",
            r"^(?P<content>.+?)(?=x)$",
            r"^(?P<content>.+?)(?P<content2>(?:a(?P<g>b))+)$",
        ] {
            let mut re = FilterRegex::new(pattern, "warn", Anchors::SingleLineBuffer).unwrap();
            re.split_content_tail();
            assert!(!re.has_head(), "{pattern} must not be split");
        }
    }

    #[test]
    fn parts_keep_head_regex_results() {
        // (pattern, whether its head is searched part by part)
        let cases = [
            (r"^(?P<host>\S+) (?P<d>\w+)\[\d+\]: (?P<content>.+)$", true),
            (
                r"^(?P<mlfid>\s*(?:\S+\s+)?(?:sshd(?:\[\d+\])?:\s+)?)(?:(?:error|fatal): (?:PAM: )?)?(?P<content>.+)$",
                true,
            ),
            (
                r"^\s*(?:\S+\s+)?postfix(/\w+)?\[\d+\]: (?:reject: )?(?P<content>.+?)(?:, u=(?P<user>\S+))?\s*$",
                true,
            ),
            // The rest cannot follow the group's first parse: the middle and the rest are
            // searched again as one.
            (r"^(?P<a>x+)(?:x|y)z(?P<content>.+)$", true),
            // Unanchored: the first part's leftmost match starts the head's, or the head is
            // searched again from there.
            (r"(?P<tag>[a-z]+)(?::|=)(?P<content>.+)$", true),
            (r"[a-z]+:(?P<content>.+)$", true),
            // Look-behind context at a part boundary: `\b` and `\A` see the bytes before.
            (r"^(?P<a>\w+?)\b\w*(?P<content>.+)$", true),
            (r"^(?P<a>\w+?)^\w+(?P<content>.+)$", true),
            // Priority order, not the longest match.
            (r"^(?P<a>a|ab)(?:c|bcd)(?P<content>.+)$", true),
            (r"(?i)^(?P<h>[a-z]+)(?: SSHD| X)(?P<content>.+)$", true),
            // A named group inside another item: the middle part takes the capture engine.
            (r"^(?P<pid>\[\d+\])?:? ?(?P<content>.+)$", true),
            (r"^x(?:(?P<a>x)|y)(?P<content>.+)$", true),
            // One part for the capture engine anyway, or a lookaround: not cut.
            (
                r"^(?P<a>\w+) (?P<b>\w+) (?P<c>\w+) (?P<d>\w+) (?P<content>.+)$",
                false,
            ),
            (r"^(?:(?P<a>x)|y)(?P<content>.+)$", false),
            (r"^(?P<a>x(?=y))(?P<content>.+)$", false),
        ];
        let texts = [
            "gw sshd[12]: Failed password\n",
            "gw sshd[12]: error: PAM: x\n",
            "  sshd: fatal: y\n",
            "gw kernel[1]: z\n",
            "mx postfix/smtpd[3]: reject: RCPT, u=bob \n",
            "mx postfix[3]: hello\n",
            "xxxy\n",
            "xy\n",
            "x\n",
            "abc123 rest\n",
            "abc rest\n",
            "1a:b\n",
            "ab:cd:ef\n",
            ":x\n",
            "[12]: hello\n",
            "yx\n",
            "é: ü\n",
            "a:b\nc\n",
            "abcde\n",
            "ab cd=x\n",
            "GW sshd: x\n",
            "a b c d e f\n",
            "xxxz\n",
            "xxyz\n",
            "xz rest\n",
            "\n",
            "",
        ];
        let mut decided = 0;
        for (pattern, cut) in cases {
            let whole = FilterRegex::new(pattern, "warn", Anchors::SingleLineBuffer).unwrap();
            let mut split = whole.clone();
            split.split_content_tail();
            for text in texts {
                assert_eq!(
                    split.search(text),
                    regex_search_exact(&whole, text),
                    "{pattern} on {text:?}"
                );
            }
            let head = split.split.as_ref().expect("split");
            let parts = head.parts.get().and_then(Option::as_ref);
            assert_eq!(parts.is_some(), cut, "{pattern}");
            let Some(parts) = parts else {
                continue;
            };
            // Where the parts decide, their spans are the head regex's captures.
            for text in texts.iter().filter(|t| t.is_ascii()) {
                let Some(found) = parts.search(text) else {
                    continue;
                };
                decided += 1;
                let caps = head.head.any().unwrap().captures(text).unwrap();
                let Some(matched) = found else {
                    assert!(caps.is_none(), "{pattern} on {text:?}");
                    continue;
                };
                let caps = caps.expect("the head regex matches too");
                let group = |i: usize| caps.get(i).map(|m| (m.start(), m.end()));
                assert_eq!(matched.span(0), group(0), "{pattern} on {text:?}");
                for (i, _) in whole.names.iter().filter(|(i, _)| *i < head.content) {
                    assert_eq!(matched.span(*i), group(*i), "{pattern} on {text:?}");
                }
            }
        }
        assert!(decided > 150, "the parts decided only {decided} searches");
    }

    #[test]
    fn host_parts_skip_the_backtracker() {
        // Kerio's shape: a literal head, then `<HOST>`, text and `$`.
        let head = single(r"^ Login from <HOST> failed: IP address not allowed$");
        let line = " Login from 192.0.2.1 failed: IP address not allowed\n";
        let found = head.search(line);
        assert_eq!(found.as_ref().and_then(|m| m.get("ip4")), Some("192.0.2.1"));
        let literal_head = head.literal_head.get().and_then(Option::as_ref);
        assert!(literal_head.is_some_and(|l| l.host.is_some()));
        // Postfix's shape: `<HOST>` and `]` as the middle part.
        let parts = single(r"^[A-Z]{4,} from [^[]*\[<HOST>\]: 554");
        let line = "RCPT from unknown[2001:db8::7]: 554\n";
        let found = parts.search(line);
        assert_eq!(
            found.as_ref().and_then(|m| m.get("ip6")),
            Some("2001:db8::7")
        );
        let middle = parts.parts.get().and_then(Option::as_ref);
        assert!(middle.is_some_and(|p| p.parts.iter().any(|part| part.host.is_some())));
    }

    #[test]
    fn parts_keep_failregex_results() {
        let cases = [
            r"^[A-Z]{4,} from [^[]*\[<HOST>\](?::\d+)?: [45][50][04] [45]\.\d\.\d+ (?:(?:<[^>]*>)?: )?(?:Relay access denied|[Uu](?:ser unknown|ndeliverable address))\b",
            r"^[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> (?:from )?<HOST>(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$",
            r"^(?:from|by) [^[]*\[<HOST>\](?::\d+)?:?",
            // The middle fails after the first part's first parse; the rest and the joined
            // middle fail; a three-part match found by the joined search.
            r"^(?:a|ab)(?P<x>c)",
            r"^(?:a|ab)(?P<x>c*)[d]",
            r"^u=(?P<a>[a-z]+)[a-z]:",
            // Unanchored: the real match starts later than the first part's leftmost one.
            r"host=(?P<h>\d+)(?:;|$)",
            // Named groups that do not take part; unnamed groups before and in the middle.
            r"^q(?:(?P<a>x)|y)(?P<b>z)?w",
            r"^(\d+) (?:(\w)-)?(?P<u>\w+) (\d)? ?(?P<v>\d+)",
            // No named group: the DFA finds the match.
            r"^\w+ accepted",
        ];
        let texts = [
            "RCPT from unknown[192.0.2.7]: 554 5.7.1 <a@b>: Relay access denied; from=<x>\n",
            "RCPT from mx.example.org[2001:db8::7]:25: 550 5.1.1 <a@b>: User unknown\n",
            "RCPT from h[192.0.2.7]]: 554 5.7.1 Relay access denied\n",
            "RCPT from [192.0.2.7]: 554 5.7.1 : Undeliverable address\n",
            "RCPT from unknown[192.0.2.7.8]: 554 5.7.1 Relay access denied\n",
            "Invalid user bob from 192.0.2.9 port 22\n",
            "Invalid user bob from 2001:db8::9 port 22 [preauth]\n",
            "illegal user  from host.example.org\n",
            "Invalid user a from b from 192.0.2.9\n",
            "Invalid user bob from 192.0.2.9.1 port 22\n",
            " SMTP Spam attack detected from 192.0.2.1, client closed\n",
            " SMTP Spam attack detected from 2001:db8::1,\n",
            "from x[192.0.2.1]:\n",
            "from [192.0.2.1]\n",
            "Accepted password for bob\n",
            "abc\n",
            "abcd\n",
            "u=ab:\n",
            "host=12x host=34;\n",
            "qyw\n",
            "qxzw\n",
            "12 a-bob 3 45\n",
            "bob accepted x\n",
            "\n",
        ];
        let mut decided = 0;
        for pattern in cases {
            let regex = FilterRegex::new(pattern, "warn", Anchors::SingleLineBuffer).unwrap();
            for text in texts {
                assert_eq!(
                    regex.search(text),
                    regex_search_exact(&regex, text),
                    "{pattern} on {text:?}"
                );
                let parts = regex.parts.get().and_then(Option::as_ref);
                if parts.is_some_and(|p| p.search(text).is_some()) {
                    decided += 1;
                }
            }
            assert!(
                matches!(regex.parts.get(), Some(Some(_))),
                "{pattern} is searched by parts"
            );
        }
        assert!(decided > 20, "the parts decided only {decided} searches");
        // A lookaround anywhere: no parts (and nothing rendered that cannot be).
        let regex = FilterRegex::new(
            r"^(?:Disconnected|Closed) from (?P<user>\S+) <HOST>(?:: (?!Too many)[^\[]+)?$",
            "warn",
            Anchors::SingleLineBuffer,
        )
        .unwrap();
        for text in [
            "Closed from bob 192.0.2.1: bye\n",
            "Closed from bob 192.0.2.1: Too many x\n",
        ] {
            assert_eq!(
                regex.search(text),
                regex_search_exact(&regex, text),
                "{text:?}"
            );
        }
        assert!(matches!(regex.parts.get(), None | Some(None)));
    }

    #[test]
    fn host_depends_on_usedns() {
        let addr = resolve_tags("<ADDR>", "no");
        assert_eq!(resolve_tags("<HOST>", "no"), format!("(?:{addr})"));
        for mode in ["yes", "warn", "raw"] {
            assert!(resolve_tags("<HOST>", mode).contains("(?P<dns>"));
        }
    }

    #[test]
    fn custom_tags() {
        assert_eq!(resolve_tags("a</F-USER>b", "no"), "a</F-USER>b");
        assert_eq!(resolve_tags("<F-user>", "no"), "<F-user>");
        assert_eq!(resolve_tags("<F-USER/>", "no"), "<F-USER/>");
        assert_eq!(resolve_tags("<F-ID/>", "no"), r"(?P<fid>\S+)");
        assert_eq!(resolve_tags("<F-USER>x</F-USER>", "no"), "(?P<user>x)");
        assert_eq!(resolve_tags("<F-PORT>x</F-PORT>", "no"), "(?P<fport>x)");
        assert_eq!(resolve_tags("<br> <mail.x>", "no"), "<br> <mail.x>");
        assert_eq!(
            resolve_tags("<SKIPLINES>a<SKIPLINES>", "no"),
            r"\n(?P<skiplines0>(?:(?:.*\n)*?))a\n(?P<skiplines1>(?:(?:.*\n)*?))"
        );
    }

    #[test]
    fn duplicate_and_bad_names_are_errors() {
        assert!(FilterRegex::new("<HOST> <HOST>", "no", Anchors::SingleLineBuffer).is_err());
        assert!(FilterRegex::new("<F-A-B>x</F-A-B>", "no", Anchors::SingleLineBuffer).is_err());
        assert!(FilterRegex::new("(?<n>x)", "no", Anchors::SingleLineBuffer).is_err());
        assert!(FilterRegex::new(r"\1(a)", "no", Anchors::SingleLineBuffer).is_err());
        assert!(FilterRegex::new("x{2,1}", "no", Anchors::SingleLineBuffer).is_err());
        assert_eq!(
            FilterRegex::new("  ", "no", Anchors::SingleLineBuffer).err(),
            Some(RegexError::Empty)
        );
    }

    #[test]
    fn alt_suffix_only_after_underscore() {
        let re = single("x <F-ALT_USER1>a</F-ALT_USER1>");
        assert!(re.has_group("alt_user1"));
    }

    #[test]
    fn inline_flags() {
        assert!(single("((?i)abc)").search("ABC\n").is_some());
        assert!(single("(?:(?i)expn|vrfy)").search("EXPN\n").is_some());
        assert!(FilterRegex::new("a(?i)b", "no", Anchors::SingleLineBuffer).is_err());
        assert!(single("(?i)abc").search("xABC\n").is_some());
    }

    #[test]
    fn anchors_follow_python() {
        assert!(single("foo$").search("foo\n").is_some());
        assert!(single(r"^\s*$").search("abc\n").is_none());
        assert!(single(r"a\Z").search("a\n").is_none());
        assert!(single(r"^a$").search("a\n").is_some());
        let m = single(": (?P<u>[^:]+)$").search("user: bob\n");
        assert_eq!(
            m.and_then(|m| m.get("u").map(str::to_string)),
            Some("bob\n".into())
        );
        let any = FilterRegex::new("foo$", "no", Anchors::AnyBuffer).expect("compiles");
        assert!(any.search("foo\n").is_some());
        assert!(any.search("foo\nbar\n").is_none());
        let multi = FilterRegex::new("^bar$", "no", Anchors::Multiline).expect("compiles");
        assert!(multi.search("foo\nbar\n").is_some());
    }

    #[test]
    fn python_syntax_translations() {
        let m = single("(?P<x>a)?(?(x)b|c)")
            .search("ac\n")
            .expect("matches");
        assert_eq!(&"ac\n"[m.start..m.end], "c");
        assert!(single(r"[^[]*\[").search("ab[\n").is_some());
        assert!(single(r"x\<?y").search("x<y\n").is_some());
        assert!(single(r"[]a]+").search("]a\n").is_some());
        assert!(single(r"a{,2}b").search("aab\n").is_some());
        assert!(single(r"[a&&b]").search("&\n").is_some());
    }

    #[test]
    fn host_tag_matches_addresses() {
        let re = single("from <HOST>$");
        let m = re.search("from 192.0.2.1\n").expect("ipv4");
        assert_eq!(m.get("ip4"), Some("192.0.2.1"));
        let m = re.search("from [2001:db8::1]\n").expect("ipv6");
        assert_eq!(m.get("ip6"), Some("2001:db8::1"));
        let m = re.search("from ::ffff:192.0.2.1\n").expect("mapped");
        assert_eq!(m.get("ip4"), Some("192.0.2.1"));
        let m = re.search("from example.com\n").expect("dns");
        assert_eq!(m.get("dns"), Some("example.com"));
        assert_eq!(m.get("ip4"), None);
        let re = FilterRegex::new("from <HOST>$", "no", Anchors::SingleLineBuffer).expect("ok");
        assert!(re.search("from example.com\n").is_none());
    }
}
