//! Prefilter: one multi-pattern DFA over relaxed copies of a filter's regexes says which
//! failregexes can possibly match a line, so most lines never reach the exact (backtracking)
//! search.
//!
//! A relaxed regex matches a superset of what the exact one matches: lookarounds and
//! assertions whose outcome could differ become "always true", backreferences become "any
//! text", conditionals become both branches. A line the relaxed set rejects is therefore
//! rejected by the exact regexes too, and results never change; a false "maybe" only costs
//! the exact search it would have cost anyway.
//!
//! Before the DFA, a literal search: when every pattern of the set needs one of a few fixed
//! strings in any match (`Failed `, `authentication failure`, ...), a line containing none of
//! them is rejected at the speed of a substring search.

use std::cell::RefCell;
use std::sync::OnceLock;

use fancy_regex::{Assertion, Expr};
use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{meta, Input, MatchKind, PatternSet};

use super::ascii::{self, AsciiFirst};
use super::regex::split_literal_head;

/// Which failregexes may match, as the prefilter's answer for one line.
#[derive(Clone)]
pub struct Candidates {
    /// Bit `i` set: pattern `i` may match. None: no answer (every regex may match), also
    /// for sets of more than [`MAX_PATTERNS`] patterns.
    bits: Option<u128>,
}

/// Patterns a [`Candidates`] can tell apart (no filter has nearly as many).
const MAX_PATTERNS: usize = 128;

impl Candidates {
    /// Failregex `index` may match (an exact search is needed).
    pub fn may_match(&self, index: usize) -> bool {
        self.bits
            .is_none_or(|bits| index < MAX_PATTERNS && bits >> index & 1 == 1)
    }

    /// No failregex and no pre-checked ignoreregex can match: the line is a plain miss.
    pub fn is_empty(&self) -> bool {
        self.bits == Some(0)
    }
}

thread_local! {
    /// The sets a DFA reports into, by capacity (a set is cleared and read over its whole
    /// capacity, so each DFA gets one of exactly its size), reused from line to line.
    static MATCHED: RefCell<Vec<PatternSet>> = const { RefCell::new(Vec::new()) };
}

/// A multi-pattern DFA over relaxed patterns.
type PatternDfa = AsciiFirst<[String], SetDfa>;

type CacheFn = Box<dyn Fn() -> hybrid::dfa::Cache + Send + Sync>;

/// A set of relaxed patterns searched forward by a lazy DFA. The prefilter asks only which
/// patterns match, or which matches first, never where a match starts: it needs none of the
/// reverse automaton and capture engines a `meta::Regex` keeps (half of a daemon's prefilter
/// memory). Where the lazy DFA cannot be built (a huge Unicode NFA) or gives up (a Unicode
/// word boundary next to non-ASCII text), the `meta::Regex` of the same patterns answers,
/// built on first need; should that fail too, every pattern may match.
pub struct SetDfa {
    lazy: Option<LazyDfa>,
    patterns: Box<[String]>,
    ascii: bool,
    kind: MatchKind,
    exact: OnceLock<Option<meta::Regex>>,
}

struct LazyDfa {
    dfa: hybrid::dfa::DFA,
    caches: Pool<hybrid::dfa::Cache, CacheFn>,
}

impl LazyDfa {
    fn new(dfa: hybrid::dfa::DFA) -> LazyDfa {
        let for_pool = dfa.clone();
        let create: CacheFn = Box::new(move || for_pool.create_cache());
        LazyDfa {
            dfa,
            caches: Pool::new(create),
        }
    }
}

impl SetDfa {
    fn build(patterns: &[String], ascii: bool, kind: MatchKind) -> Result<SetDfa, String> {
        let limit = syntax_limit(patterns, ascii)?;
        let lazy = hybrid::dfa::DFA::builder()
            .syntax(syntax::Config::new().unicode(!ascii).utf8(!ascii))
            .thompson(
                thompson::Config::new()
                    .which_captures(WhichCaptures::None)
                    .utf8(!ascii)
                    .nfa_size_limit(Some(limit)),
            )
            .configure(
                hybrid::dfa::Config::new()
                    .match_kind(kind)
                    .unicode_word_boundary(true),
            )
            .build_many(patterns)
            .ok()
            .map(LazyDfa::new);
        let set = SetDfa {
            lazy,
            patterns: patterns.into(),
            ascii,
            kind,
            exact: OnceLock::new(),
        };
        if set.lazy.is_none() {
            // Nothing else will answer: the exact form must build now, or the set fails.
            let exact = build_dfa(patterns, ascii, kind)?;
            let _ = set.exact.set(Some(exact));
        }
        Ok(set)
    }

    fn exact(&self) -> Option<&meta::Regex> {
        self.exact
            .get_or_init(|| build_dfa(&self.patterns, self.ascii, self.kind).ok())
            .as_ref()
    }

    fn pattern_len(&self) -> usize {
        self.patterns.len()
    }

    /// The lazy DFA's forward search; None when it is missing or gives up.
    fn lazy_search(&self, input: &Input) -> Option<Option<usize>> {
        let lazy = self.lazy.as_ref()?;
        let mut cache = lazy.caches.get();
        let found = lazy.dfa.try_search_fwd(&mut cache, input).ok()?;
        Some(found.map(|m| m.pattern().as_usize()))
    }

    fn is_match(&self, text: &str) -> bool {
        let input = Input::new(text).earliest(true);
        match self.lazy_search(&input) {
            Some(found) => found.is_some(),
            None => self.exact().is_none_or(|exact| exact.is_match(input)),
        }
    }

    /// The pattern of the first (leftmost-first) match; pattern 0 when nothing can tell.
    fn first_match(&self, text: &str) -> Option<usize> {
        let input = Input::new(text);
        if let Some(found) = self.lazy_search(&input) {
            return found;
        }
        match self.exact() {
            Some(exact) => exact.search_half(&input).map(|m| m.pattern().as_usize()),
            None => Some(0),
        }
    }

    fn which_overlapping_matches(&self, text: &str, matched: &mut PatternSet) {
        let input = Input::new(text);
        if let Some(lazy) = &self.lazy {
            let mut cache = lazy.caches.get();
            if lazy
                .dfa
                .try_which_overlapping_matches(&mut cache, &input, matched)
                .is_ok()
            {
                return;
            }
        }
        matched.clear();
        match self.exact() {
            Some(exact) => exact.which_overlapping_matches(&input, matched),
            None => {
                for id in 0..self.pattern_len().min(matched.capacity()) {
                    let _ = matched.try_insert(regex_automata::PatternID::new_unchecked(id));
                }
            }
        }
    }
}

impl Clone for SetDfa {
    fn clone(&self) -> SetDfa {
        SetDfa {
            lazy: self
                .lazy
                .as_ref()
                .map(|lazy| LazyDfa::new(lazy.dfa.clone())),
            patterns: self.patterns.clone(),
            ascii: self.ascii,
            kind: self.kind,
            exact: self.exact.clone(),
        }
    }
}

/// How the failregexes see the line.
#[derive(Clone, Copy)]
enum Shape {
    /// No prefregex, or a prefregex whose content runs to the end of the line: one DFA pass
    /// over the whole buffer decides (the failregexes are inlined where the content was).
    Combined,
    /// The content ends before the line does: the exact prefregex runs first and the set
    /// then looks at the content only.
    TwoStage,
}

/// The compiled prefilter of a single-line filter.
#[derive(Clone)]
pub struct Prefilter {
    /// When every failregex starts with `\A` and a literal and no ignoreregex is pre-checked:
    /// the literals, compared instead of running the set (a failregex whose literal starts
    /// the buffer "may match", the others cannot).
    literals: Option<Vec<String>>,
    shape: Shape,
    /// Failregex patterns `0..n`; then, when ignoreregexes are checked before the
    /// failregexes, those (whole-buffer patterns) in Combined shape.
    set: PatternDfa,
    /// TwoStage only: pre-checked ignoreregexes over the whole buffer.
    ignore_set: Option<PatternDfa>,
    /// TwoStage only: strings one of which a buffer the prefregex matches contains (see
    /// `required_literals`), so that most buffers it rules out skip its search.
    prefregex_required: Option<Required>,
    /// Strings one of which the text contains wherever a pattern of `set` matches (see
    /// `required_literals`); None when some pattern needs none.
    required: Option<Required>,
    /// Every pattern of `set` is a failregex that can only match from the start of the text:
    /// `set` is then built leftmost-first, and its one forward search tells the first
    /// failregex that may match (the earliest pattern wins at the one start there is); the
    /// later ones count as "may match". The filter tries failregexes in order and stops at
    /// the first match, so this rules out as much as the set of all matching patterns does
    /// in the usual case, with the DFA's fast loop instead of its overlapping walk.
    first_only: bool,
}

/// The literal search, built on first use: building it costs about as much as a thousand
/// lines' worth of DFA passes, and a jail may never see a line.
#[derive(Clone)]
struct Required {
    literals: Vec<String>,
    search: OnceLock<Option<meta::Regex>>,
}

impl Required {
    /// Whether `text` contains one of the literals (true when the search cannot be built).
    fn found_in(&self, text: &str) -> bool {
        let search = self.search.get_or_init(|| {
            // One alternation of literals: the regex crate runs it on its literal searcher
            // alone (Teddy, Aho-Corasick).
            let escaped: Vec<String> = self
                .literals
                .iter()
                .map(|l| regex_syntax::escape(l))
                .collect();
            meta::Regex::new(&escaped.join("|")).ok()
        });
        search.as_ref().is_none_or(|s| s.is_match(text))
    }
}

impl Prefilter {
    /// Build the prefilter for a single-line filter. `prefregex` carries the index of its
    /// `content` group. `precheck_ignore` says whether ignoreregexes are searched before the
    /// failregexes (fail2ban does so when there are many failregexes). None when some regex
    /// cannot be relaxed: every line then takes the exact path. The DFAs are built on first use.
    pub fn new(
        prefregex: Option<(&str, usize)>,
        failregexes: &[&str],
        ignoreregexes: &[&str],
        precheck_ignore: bool,
    ) -> Option<Prefilter> {
        let mut bodies = Vec::with_capacity(failregexes.len());
        for pattern in failregexes {
            bodies.push(Expr::parse_tree(pattern).ok()?.expr);
        }
        let ignores: Vec<String> = if precheck_ignore {
            ignoreregexes
                .iter()
                .map(|p| {
                    Some(relaxed_text(&relax(
                        &Expr::parse_tree(p).ok()?.expr,
                        false,
                    )?))
                })
                .collect::<Option<_>>()?
        } else {
            Vec::new()
        };
        let mut prefregex_required = None;
        let (shape, mut patterns) = match prefregex {
            None => {
                let patterns = bodies
                    .iter()
                    .map(|b| Some(relaxed_text(&relax(b, false)?)))
                    .collect::<Option<Vec<_>>>()?;
                (Shape::Combined, patterns)
            }
            Some((pref, content_group)) => {
                let pref = Expr::parse_tree(pref).ok()?.expr;
                if content_runs_to_line_end(&pref, content_group) {
                    let mut patterns = Vec::with_capacity(bodies.len());
                    for body in &bodies {
                        let inlined = inline_body(body)?;
                        let mut counter = 0;
                        let combined = replace_group(&pref, content_group, &inlined, &mut counter)?;
                        patterns.push(relaxed_text(&combined));
                    }
                    (Shape::Combined, patterns)
                } else {
                    let patterns = bodies
                        .iter()
                        .map(|b| Some(relaxed_text(&relax(b, false)?)))
                        .collect::<Option<Vec<_>>>()?;
                    prefregex_required = required_finder(std::slice::from_ref(&pref), &[]);
                    (Shape::TwoStage, patterns)
                }
            }
        };
        let ignore_set = match shape {
            Shape::Combined => {
                patterns.extend(ignores);
                None
            }
            Shape::TwoStage if !ignores.is_empty() => Some(pattern_dfa(ignores, build_set)),
            Shape::TwoStage => None,
        };
        // The failregexes (and pre-checked ignoreregexes) search the text `candidates` gets,
        // or, in Combined shape with a prefregex, the content within it.
        let checked_ignores = match shape {
            Shape::Combined if precheck_ignore => ignoreregexes,
            _ => &[],
        };
        let literals: Option<Vec<String>> = match (&shape, prefregex) {
            (Shape::Combined, None) if patterns.len() == failregexes.len() => failregexes
                .iter()
                .map(|p| split_literal_head(p).map(|(literal, _)| literal))
                .collect(),
            _ => None,
        };
        // With head literals to compare, `candidates` never gets to the literal search.
        let required = match literals {
            Some(_) => None,
            None => required_finder(&bodies, checked_ignores),
        };
        let first_only = patterns.len() == failregexes.len()
            && patterns
                .iter()
                .all(|p| Expr::parse_tree(p).is_ok_and(|tree| starts_at_text_start(&tree.expr)));
        let build = if first_only { build_first } else { build_set };
        Some(Prefilter {
            literals,
            shape,
            set: pattern_dfa(patterns, build),
            ignore_set,
            prefregex_required,
            required,
            first_only,
        })
    }

    /// True when the exact prefregex must run first and `candidates` then gets the content.
    pub fn needs_content(&self) -> bool {
        matches!(self.shape, Shape::TwoStage)
    }

    /// Candidates for `text` (the whole buffer in Combined shape, the prefregex content plus
    /// `\n` in TwoStage shape).
    pub fn candidates(&self, text: &str) -> Candidates {
        if let Some(literals) = self.literals.as_ref().filter(|l| l.len() <= MAX_PATTERNS) {
            let bits = literals
                .iter()
                .enumerate()
                .filter(|(_, literal)| text.starts_with(literal.as_str()))
                .fold(0u128, |bits, (i, _)| bits | 1 << i);
            return Candidates { bits: Some(bits) };
        }
        if self.required.as_ref().is_some_and(|r| !r.found_in(text)) {
            return Candidates { bits: Some(0) };
        }
        let set = self
            .set
            .for_text(text)
            .filter(|dfa| dfa.pattern_len() <= MAX_PATTERNS);
        if self.first_only {
            let bits = set.map(|dfa| match dfa.first_match(text) {
                Some(first) => u128::MAX << first,
                None => 0,
            });
            return Candidates { bits };
        }
        let bits = set.map(|dfa| {
            MATCHED.with_borrow_mut(|sets| {
                let len = dfa.pattern_len();
                while sets.len() <= len {
                    sets.push(PatternSet::new(sets.len()));
                }
                let matched = &mut sets[len];
                matched.clear();
                dfa.which_overlapping_matches(text, matched);
                matched
                    .iter()
                    .fold(0u128, |bits, id| bits | 1 << id.as_usize())
            })
        });
        Candidates { bits }
    }

    /// Whether the prefregex may match the whole buffer (false: it cannot). Only a TwoStage
    /// prefregex keeps required literals; in Combined shape the set decides, and this is true.
    pub fn prefregex_may_match(&self, buffer: &str) -> bool {
        self.prefregex_required
            .as_ref()
            .is_none_or(|required| required.found_in(buffer))
    }

    /// TwoStage shape: whether a pre-checked ignoreregex may match the whole buffer.
    pub fn may_be_ignored(&self, buffer: &str) -> bool {
        self.ignore_set
            .as_ref()
            .is_some_and(|set| set.for_text(buffer).is_none_or(|dfa| dfa.is_match(buffer)))
    }
}

/// The DFA of `patterns`, built when a line first needs it: a jail whose log stays quiet
/// never pays for it (a sixth of the start-up work, and memory). A set that then fails to
/// build gives no answer: every regex the literal checks leave is searched, as without the
/// set; the exact regexes were checked at load.
fn pattern_dfa(patterns: Vec<String>, build: ascii::Build<[String], SetDfa>) -> PatternDfa {
    let has_ascii = patterns.iter().all(|p| ascii::ascii_safe(p));
    AsciiFirst::unbuilt(patterns.into(), build, has_ascii)
}

/// Shortest literal worth a search of its own: a shorter one is in nearly every line.
const MIN_REQUIRED_LEN: usize = 4;

/// Most literals searched for (a few per failregex).
const MAX_REQUIRED: usize = 256;

/// The literal search over what `failregexes` (parsed) and `ignoreregexes` (translated
/// patterns) require, when each of them requires some long enough literal.
fn required_finder(failregexes: &[Expr], ignoreregexes: &[&str]) -> Option<Required> {
    let mut literals = Vec::new();
    for body in failregexes {
        literals.extend(required_literals(&relax(body, false)?)?);
    }
    for pattern in ignoreregexes {
        let body = Expr::parse_tree(pattern).ok()?.expr;
        literals.extend(required_literals(&relax(&body, false)?)?);
    }
    literals.sort();
    literals.dedup();
    if literals.is_empty()
        || literals.len() > MAX_REQUIRED
        || literals.iter().any(|l| l.len() < MIN_REQUIRED_LEN)
    {
        return None;
    }
    Some(Required {
        literals,
        search: OnceLock::new(),
    })
}

/// Literals at least one of which every match of the (relaxed) `expr` contains; None when
/// there is no such set (a match may consist of classes only). Case-insensitive text counts
/// as no literal.
fn required_literals(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Literal { val, casei: false } if !val.is_empty() => Some(vec![val.clone()]),
        Expr::Repeat { child, lo, hi, .. } if *lo >= 1 && *hi >= *lo => required_literals(child),
        Expr::Alt(branches) => {
            let mut all = Vec::new();
            for branch in branches {
                all.extend(required_literals(branch)?);
            }
            Some(all)
        }
        Expr::Concat(items) => {
            // Every item is needed: the best of their requirements, adjacent literal
            // characters taken as one string.
            let mut best: Option<Vec<String>> = None;
            let mut run = String::new();
            for item in items {
                if let Expr::Literal { val, casei: false } = item {
                    run.push_str(val);
                    continue;
                }
                if !run.is_empty() {
                    best = better(best, Some(vec![std::mem::take(&mut run)]));
                }
                best = better(best, required_literals(item));
            }
            if !run.is_empty() {
                best = better(best, Some(vec![run]));
            }
            best
        }
        _ => None,
    }
}

/// The requirement that rejects more lines: longer shortest literal (past 16 bytes a literal
/// is rare enough whatever its length), then fewer literals.
fn better(a: Option<Vec<String>>, b: Option<Vec<String>>) -> Option<Vec<String>> {
    let score = |l: &[String]| {
        let shortest = l.iter().map(String::len).min().unwrap_or(0);
        (shortest.min(16), std::cmp::Reverse(l.len()))
    };
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn build_set(patterns: &[String], ascii: bool) -> Result<SetDfa, String> {
    SetDfa::build(patterns, ascii, MatchKind::All)
}

fn build_first(patterns: &[String], ascii: bool) -> Result<SetDfa, String> {
    SetDfa::build(patterns, ascii, MatchKind::LeftmostFirst)
}

/// The NFA size limit of a build; an error when an ASCII build is asked for patterns that
/// have no exact ASCII form.
fn syntax_limit<P: AsRef<str>>(patterns: &[P], ascii: bool) -> Result<usize, String> {
    if !ascii {
        return Ok(ascii::UNICODE_SIZE_LIMIT);
    }
    if !patterns.iter().all(|p| ascii::ascii_safe(p.as_ref())) {
        return Err("no exact ASCII form".into());
    }
    Ok(10 << 20)
}

/// Whether every match of `expr` starts at the start of the text (`\A`, or `^` outside
/// multi-line mode), judged by its first item.
fn starts_at_text_start(expr: &Expr) -> bool {
    match expr {
        Expr::Assertion(Assertion::StartText) => true,
        // (Relaxed patterns have no groups: `relax` turns them into concatenations.)
        Expr::Concat(items) => items.first().is_some_and(starts_at_text_start),
        Expr::Alt(branches) => branches.iter().all(starts_at_text_start),
        _ => false,
    }
}

/// A relaxed copy of a whole (translated) pattern for the regex crate's syntax: it matches
/// wherever the pattern matches, starting at the same positions. None when some construct has
/// no relaxed form or the pattern does not parse.
pub fn relaxed_pattern(pattern: &str) -> Option<String> {
    let tree = Expr::parse_tree(pattern).ok()?;
    Some(relaxed_text(&relax(&tree.expr, false)?))
}

/// A leftmost-first DFA-backed regex over a relaxed pattern (see `relaxed_pattern`), limited
/// to ASCII or with Unicode classes.
pub fn build_relaxed(pattern: &str, ascii: bool) -> Result<meta::Regex, String> {
    build_dfa(
        std::slice::from_ref(&pattern),
        ascii,
        MatchKind::LeftmostFirst,
    )
}

/// A (multi-pattern) regex-automata regex in its ASCII or Unicode build (see `filter::ascii`).
fn build_dfa<P: AsRef<str>>(
    patterns: &[P],
    ascii: bool,
    kind: MatchKind,
) -> Result<meta::Regex, String> {
    let limit = syntax_limit(patterns, ascii)?;
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(!ascii).utf8(!ascii))
        .configure(
            meta::Config::new()
                .match_kind(kind)
                .utf8_empty(!ascii)
                .nfa_size_limit(Some(limit)),
        )
        .build_many(patterns)
        .map_err(|e| e.to_string())
}

fn relaxed_text(expr: &Expr) -> String {
    let mut out = String::new();
    expr.to_str(&mut out, 0);
    out
}

/// Matches the empty string, printable in any position (`(?:)`).
fn nothing() -> Expr {
    Expr::Concat(Vec::new())
}

/// Any text, newlines included.
fn anything() -> Expr {
    Expr::Repeat {
        child: Box::new(Expr::Any {
            newline: true,
            crlf: false,
        }),
        lo: 0,
        hi: usize::MAX,
        greedy: true,
    }
}

/// A relaxed copy of `expr` that the regex crate can run. `inlined`: the expression is
/// searched inside a longer text than the exact one, so assertions about what precedes it
/// (line/text start, word boundaries) are dropped as well. None for constructs with no
/// superset form.
fn relax(expr: &Expr, inlined: bool) -> Option<Expr> {
    if let Some(mapped) = map_children(expr, &mut |e| relax(e, inlined)) {
        return mapped;
    }
    let relaxed = match expr {
        Expr::Empty
        | Expr::Any { .. }
        | Expr::Literal { .. }
        | Expr::Delegate { .. }
        | Expr::DefineGroup { .. } => expr.clone(),
        Expr::Assertion(a) => match a {
            // The text after the content is the same in both searches.
            Assertion::EndText | Assertion::EndLine { .. } => expr.clone(),
            Assertion::StartText | Assertion::StartLine { .. } if !inlined => expr.clone(),
            Assertion::WordBoundary | Assertion::NotWordBoundary if !inlined => expr.clone(),
            _ => nothing(),
        },
        Expr::LookAround(..) | Expr::KeepOut | Expr::BackrefExistsCondition { .. } => nothing(),
        Expr::Backref { .. } | Expr::BackrefWithRelativeRecursionLevel { .. } => anything(),
        Expr::Conditional {
            condition,
            true_branch,
            false_branch,
        } => Expr::Alt(vec![
            Expr::Concat(vec![
                relax(condition, inlined)?,
                relax(true_branch, inlined)?,
            ]),
            relax(false_branch, inlined)?,
        ]),
        _ => return None,
    };
    Some(relaxed)
}

/// `expr` rebuilt with `f` applied to its children, for the nodes that only sequence, choose,
/// group or repeat (capture and atomic groups become plain groups: captures are of no use to
/// the DFA, and dropping atomicity only widens). None for every other node; `Some(None)`
/// when `f` failed on a child.
fn map_children(expr: &Expr, f: &mut dyn FnMut(&Expr) -> Option<Expr>) -> Option<Option<Expr>> {
    let mut all = |items: &[Expr]| items.iter().map(&mut *f).collect::<Option<Vec<_>>>();
    let mapped = match expr {
        Expr::Concat(items) => all(items).map(Expr::Concat),
        Expr::Alt(items) => all(items).map(Expr::Alt),
        Expr::Group(inner) => f(inner).map(|e| Expr::Concat(vec![e])),
        Expr::AtomicGroup(inner) => f(inner).map(|e| Expr::Concat(vec![e])),
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => f(child).map(|e| Expr::Repeat {
            child: Box::new(e),
            lo: *lo,
            hi: *hi,
            greedy: *greedy,
        }),
        _ => return None,
    };
    Some(mapped)
}

/// A failregex body to put in place of the prefregex content: anchored bodies (`\A…`)
/// start right there, others anywhere in the content; the rest of the content follows.
fn inline_body(body: &Expr) -> Option<Expr> {
    let (anchored, rest): (bool, Vec<&Expr>) = match body {
        Expr::Concat(items) => {
            let start = items
                .iter()
                .position(|e| matches!(e, Expr::Assertion(Assertion::StartText)));
            // Only flag groups may precede the anchor, and the parser folds those away.
            match start {
                Some(0) => (true, items[1..].iter().collect()),
                _ => (false, items.iter().collect()),
            }
        }
        other => (false, vec![other]),
    };
    let mut out = Vec::with_capacity(rest.len() + 1);
    if !anchored {
        out.push(anything());
    }
    for e in rest {
        out.push(relax(e, true)?);
    }
    // The failregex needs to match only the beginning of the content.
    out.push(anything());
    Some(Expr::Concat(out))
}

/// Whether the prefregex is `… (?P<content>…)$` at its top level, so the content is always
/// the rest of the line and the failregexes see the same following text in both searches.
/// `content_runs_to_line_end` on a pattern's text.
pub fn content_runs_to_line_end_text(pattern: &str, content_group: usize) -> bool {
    Expr::parse_tree(pattern).is_ok_and(|tree| content_runs_to_line_end(&tree.expr, content_group))
}

fn content_runs_to_line_end(pref: &Expr, content_group: usize) -> bool {
    let Expr::Concat(items) = pref else {
        return false;
    };
    let Some(last) = items.last() else {
        return false;
    };
    if !matches!(last, Expr::Assertion(Assertion::EndLine { crlf: false })) || items.len() < 2 {
        return false;
    }
    let Expr::Group(content) = &items[items.len() - 2] else {
        return false;
    };
    // The content group must be the one numbered `content_group`: count groups before it.
    let mut counter = 0;
    for item in &items[..items.len() - 2] {
        count_groups(item, &mut counter);
    }
    counter + 1 == content_group && single_line_rest(content)
}

/// `.+` or `.+?` (no newline): the content takes everything up to the line end and is never
/// empty (an empty content would leave the failregexes searching the whole buffer).
fn single_line_rest(expr: &Expr) -> bool {
    matches!(expr, Expr::Repeat { child, lo: 1, hi: usize::MAX, .. }
        if matches!(**child, Expr::Any { newline: false, .. }))
}

pub(super) fn count_groups(expr: &Expr, counter: &mut usize) {
    if matches!(expr, Expr::Group(_)) {
        *counter += 1;
    }
    for child in expr.children_iter() {
        count_groups(child, counter);
    }
}

/// The relaxed prefregex with capture group number `target` replaced by `body`.
fn replace_group(expr: &Expr, target: usize, body: &Expr, counter: &mut usize) -> Option<Expr> {
    if let Expr::Group(inner) = expr {
        *counter += 1;
        if *counter == target {
            // Skip the numbering of groups inside the replaced content.
            count_groups(inner, counter);
            return Some(body.clone());
        }
        return replace_group(inner, target, body, counter).map(|e| Expr::Concat(vec![e]));
    }
    if let Some(mapped) = map_children(expr, &mut |e| replace_group(e, target, body, counter)) {
        return mapped;
    }
    count_groups(expr, counter);
    relax(expr, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefilter(pref: Option<(&str, usize)>, fails: &[&str]) -> Prefilter {
        Prefilter::new(pref, fails, &[], false).expect("prefilter builds")
    }

    #[test]
    fn set_dfas_ask_the_exact_form_where_they_give_up() {
        let patterns = [r"\bfoo\b".to_string(), "bar".to_string()];
        let set = build_set(&patterns, false).expect("unicode set builds");
        let first = build_first(&patterns, false).expect("unicode set builds");
        let which = |text: &str| {
            let mut matched = PatternSet::new(2);
            set.which_overlapping_matches(text, &mut matched);
            matched.iter().map(|p| p.as_usize()).collect::<Vec<_>>()
        };
        // ASCII text: the DFA decides.
        assert_eq!(which("a foo b"), [0]);
        assert_eq!(which("xfoo bar"), [1]);
        assert!(!set.is_match("nothing"));
        assert_eq!(first.first_match("foo bar"), Some(0));
        assert_eq!(first.first_match("nothing"), None);
        // A Unicode word boundary next to non-ASCII text: the lazy DFA gives up and the
        // exact form answers.
        assert_eq!(which("été foo"), [0]);
        assert_eq!(which("été bar"), [1]);
        assert_eq!(which("foo été"), [0]);
        assert!(!set.is_match("été"));
        assert!(set.is_match("é foo"));
        assert_eq!(first.first_match("été"), None);
        assert_eq!(first.first_match("é bar foo"), Some(1));
        // A copy answers the same (its own caches).
        assert_eq!(set.clone().pattern_len(), 2);
        assert_eq!(set.clone().is_match("a foo"), set.is_match("a foo"));
    }

    #[test]
    fn set_dfas_too_big_for_a_lazy_dfa_answer_by_the_exact_form() {
        // Thousands of Unicode word classes: an NFA whose lazy DFA would not fit its cache.
        let patterns = [r"x\w{3000}y".to_string(), "bar".to_string()];
        let set = build_set(&patterns, false).expect("the exact form builds");
        assert!(set.lazy.is_none(), "the lazy DFA should not fit");
        let mut matched = PatternSet::new(2);
        set.which_overlapping_matches("a bar", &mut matched);
        assert_eq!(
            matched.iter().map(|p| p.as_usize()).collect::<Vec<_>>(),
            [1]
        );
        assert!(!set.is_match("nothing"));
        let long = format!("x{}y", "é".repeat(3000));
        assert!(set.is_match(&long));
        assert_eq!(set.clone().first_match("a bar"), Some(1));
    }

    fn required(pattern: &str) -> Option<Vec<String>> {
        let body = Expr::parse_tree(pattern).expect("parses").expr;
        required_literals(&relax(&body, false)?)
    }

    #[test]
    fn required_literals_of_patterns() {
        let cases: [(&str, Option<&[&str]>); 9] = [
            (
                r"^Failed (?:password|publickey) for (?P<user>\S+) from (?P<h>\S+)$",
                Some(&["password", "publickey"]),
            ),
            (r"^(?:foo|\S+) bar\d", Some(&[" bar"])),
            // A lookahead needs nothing of its own text here.
            (r"^(?:xx(?=abc)|yy)z+", Some(&["xx", "yy"])),
            (r"(?:user (?P<u>\S+))+ gone", Some(&["user "])),
            (r"(?:user )* gone", Some(&[" gone"])),
            (r"\d+\.\d+", Some(&["."])),
            (r"(?i)authentication failure", None),
            (r"(?x) auth \s failure  # comment", Some(&["failure"])),
            (r"\S+", None),
        ];
        for (pattern, want) in cases {
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(required(pattern), want, "{pattern}");
        }
        // Too short to be worth a search, or some pattern without any: no literal search.
        let fails: Vec<Expr> = [r"^x\d+$", r"^Failed \S+"]
            .iter()
            .map(|p| Expr::parse_tree(p).expect("parses").expr)
            .collect();
        assert!(required_finder(&fails, &[]).is_none());
        assert!(required_finder(&fails[1..], &[r"\S+ okay"]).is_some());
        assert!(required_finder(&fails[1..], &[r"\S+"]).is_none());
    }

    #[test]
    fn literal_search_rejects_only_lines_without_them() {
        let pf = prefilter(
            None,
            // No head literal (see `literals`): the literal search is what rejects.
            &[
                r"^(?:error: )?Failed (?:password|publickey) for \S+ from \S+",
                r"^(?:error: )?Invalid user \S+",
            ],
        );
        let required = pf.required.as_ref().expect("a literal search");
        // Has a literal: the DFA decides.
        assert!(required.found_in("Accepted password for bob from x\n"));
        assert!(pf
            .candidates("Accepted password for bob from x\n")
            .is_empty());
        assert!(pf
            .candidates("Failed password for bob from x\n")
            .may_match(0));
        assert!(pf.candidates("Invalid user bob\n").may_match(1));
        assert!(pf.candidates("Connection closed by x\n").is_empty());

        // Combined shape with a prefregex: the failregexes' literals are looked for in the
        // whole buffer, which holds the content.
        let pf = prefilter(
            Some((r"(?m)^\S+ sshd\[\d+\]: (?P<content>.+)$", 1)),
            &[r"^Invalid user \S+ from \S+"],
        );
        assert!(pf.required.is_some() && !pf.needs_content());
        assert!(pf
            .candidates("gw sshd[1]: Invalid user bob from x\n")
            .may_match(0));
        assert!(pf
            .candidates("gw sshd[1]: Accepted key for bob\n")
            .is_empty());

        // A pre-checked ignoreregex's literal alone keeps the line (it may be ignored).
        let fails: Vec<String> = (0..6).map(|i| format!(r"^fail{i} from \S+")).collect();
        let fails: Vec<&str> = fails.iter().map(String::as_str).collect();
        let pf = Prefilter::new(None, &fails, &[r"(?:^| )trusted peer \S+"], true).expect("builds");
        assert!(pf.required.is_some());
        assert!(!pf.candidates("trusted peer x\n").is_empty());
        assert!(pf.candidates("untrusted x\n").is_empty());
    }

    #[test]
    fn sets_are_built_by_the_first_line_that_needs_them() {
        let fails = [
            r"^\S+ fail from (?P<ip4>\S+)",
            r"^\S+ bad user \S+ from (?P<ip4>\S+)",
        ];
        let pf = prefilter(None, &fails);
        assert!(
            pf.literals.is_none() && !pf.set.built(),
            "nothing built at load"
        );
        // The required literals turn this line away before the set is needed.
        assert!(pf.candidates("noise\n").is_empty());
        assert!(!pf.set.built());
        assert!(pf.candidates("a fail from \n").is_empty());
        assert!(pf.set.built());
        let hit = pf.candidates("a bad user x from 1.2.3.4\n");
        assert!(!hit.may_match(0) && hit.may_match(1));
    }

    #[test]
    fn combined_shape_inlines_failregexes_where_the_content_was() {
        let pref = r"(?m)\A(?P<mlfid>\S+ sshd\[\d+\]: )(?:error: )?(?P<content>.+)$";
        let fails = [
            r"(?m)\AFailed \S+ for (?P<user>\S+) from (?P<ip4>\d+\.\d+\.\d+\.\d+)",
            r"(?m)\AInvalid user (?P<user>\S+) from (?P<ip4>[\d.]+)(?! port 0)",
        ];
        let pf = prefilter(Some((pref, 2)), &fails);
        assert!(!pf.needs_content() && pf.first_only);
        let hit = pf.candidates("gw sshd[1]: error: Failed password for root from 1.2.3.4\n");
        assert!(hit.may_match(0) && !hit.is_empty());
        let lookahead = pf.candidates("gw sshd[1]: Invalid user x from 1.2.3.4 port 0\n");
        assert!(
            !lookahead.may_match(0) && lookahead.may_match(1),
            "dropped lookahead must widen, not narrow"
        );
        // Anchored failregexes stay anchored at the content start.
        assert!(pf
            .candidates("gw sshd[1]: Accepted; Failed x for y from 1.2.3.4\n")
            .is_empty());
        assert!(pf
            .candidates("gw cron[1]: Failed x for y from 1.2.3.4\n")
            .is_empty());
    }

    #[test]
    fn anchored_sets_tell_the_first_failregex_that_may_match() {
        let fails = [
            r"\AFailed \S+ for (?P<user>\S+) from (?P<ip4>\S+)",
            r"\A(?:Failed|Invalid) \S+ for \S+",
            r"^Invalid user (?P<user>\S+)",
        ];
        let pf = prefilter(None, &fails);
        assert!(pf.first_only);
        // The first that matches and every one after it; none before it.
        let both = pf.candidates("Failed password for root from x\n");
        assert!(both.may_match(0) && both.may_match(1) && both.may_match(2));
        let second = pf.candidates("Failed password for root\n");
        assert!(!second.may_match(0) && second.may_match(1) && second.may_match(2));
        let third = pf.candidates("Invalid user bob\n");
        assert!(!third.may_match(0) && !third.may_match(1) && third.may_match(2));
        assert!(pf.candidates("Accepted password for root\n").is_empty());
        assert!(pf.candidates("x Failed password for root\n").is_empty());
        // Non-ASCII text takes the Unicode build, leftmost-first too.
        let unicode = pf.candidates("Failed pässword for röot\n");
        assert!(!unicode.may_match(0) && unicode.may_match(1));

        // The earliest pattern wins even where a later one's match ends first.
        let pf = prefilter(None, &[r"\Aa.*z", r"\Aab"]);
        assert!(pf.first_only);
        let first = |text: &str| (0..2).find(|i| pf.candidates(text).may_match(*i));
        assert_eq!(first("abc\n"), Some(1));
        assert_eq!(first("abz\n"), Some(0));
        let pf = prefilter(None, &[r"\Aa", r"\Aab.*"]);
        assert!(pf.candidates("abc\n").may_match(0));

        // Patterns that may start elsewhere keep the set of all matches.
        for other in [r"(?m)^x", r"^a|b", r"^a|", r"(?:^)?a", r"(?=y)a"] {
            let pf = prefilter(None, &[r"\Afail \S+", other]);
            assert!(!pf.first_only, "{other}");
        }

        // A failregex that may match further in: every matching one is told, by the set of
        // all matches.
        let pf = prefilter(None, &[r"\AFailed \S+", r"Invalid user \S+"]);
        assert!(!pf.first_only);
        let later = pf.candidates("x Invalid user bob\n");
        assert!(!later.may_match(0) && later.may_match(1));
        let both = pf.candidates("Failed x Invalid user bob\n");
        assert!(both.may_match(0) && both.may_match(1));
        // Pre-checked ignoreregexes in the set: all matches too.
        let fails: Vec<String> = (0..6).map(|i| format!(r"\Afail{i} from \S+")).collect();
        let fails: Vec<&str> = fails.iter().map(String::as_str).collect();
        let pf = Prefilter::new(None, &fails, &[r"\Atrusted"], true).expect("builds");
        assert!(!pf.first_only);
    }

    #[test]
    fn content_that_can_be_empty_or_stops_early_needs_the_exact_prefregex() {
        let fails = [r"(?m)\Afrom (?P<ip4>[\d.]+)"];
        let empty_ok = prefilter(Some((r"(?m)\Ax: (?P<content>.*)$", 1)), &fails);
        assert!(empty_ok.needs_content());
        let early = prefilter(Some((r"(?m)\Ax: (?P<content>.+?)(?:, tail)?$", 1)), &fails);
        assert!(early.needs_content());
        let hit = early.candidates("from 1.2.3.4\n");
        assert!(hit.may_match(0));
    }

    #[test]
    fn relaxed_patterns_match_a_superset() {
        let cases = [
            (r"(?P<a>x)y(?P=a)", "xyx"),
            (r"(?<=\[)\d+(?=\])", "[12]"),
            (r"(?P<q>\[)?\d+(?(<q>)\]|$)", "[12]"),
            (r"(?>a+)b", "aab"),
            (r"\bword\b", "a word here"),
        ];
        for (pattern, text) in cases {
            let exact = fancy_regex::Regex::new(pattern).expect("exact compiles");
            assert!(exact.is_match(text).unwrap_or(false), "{pattern} on {text}");
            let relaxed = relaxed_pattern(pattern).expect("relaxed form");
            let re = build_relaxed(&relaxed, true).expect("relaxed compiles");
            assert!(re.is_match(text), "relaxed {relaxed:?} misses {text:?}");
        }
        assert!(relaxed_pattern(r"\Gx").is_none());
    }
}
