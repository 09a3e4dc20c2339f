//! Date captures without the backtracking engine, where a template allows it. Most templates
//! are zero-width lookaheads around a plain regex (`(?=^|\b|\W)( ... )(?=\b|\W|$)`): the
//! plain middle is matched by a DFA, the lookaheads are checked at its two ends, and the
//! group spans come from a split plan (fields followed by bytes they cannot contain, as in
//! `[%d/%b/%Y %H:%M:%S]`) or from the plain regex run on the match. The DFA is stepped by
//! hand so that it tells how many bytes decided the match: a line that repeats those bytes
//! (the usual burst of lines within one second) reuses the previous match without any
//! search. Only ASCII text takes this path; anything it cannot decide goes back to the exact
//! regex. (One difference by design: where the exact regex would give up at its backtrack
//! limit on a hostile line, the DFA still answers, as Python would.)

use fancy_regex::{Expr, LookAround};
use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};

use super::plan::{plan, run_plan, Step};
use crate::filter::ascii::{build_plain, is_plain, render, unoptimized_tree};

/// Groups (group 0 included) a template may have to take this path.
pub(crate) const MAX_GROUPS: usize = 16;

/// Capture spans of one match, group 0 first, as 16-bit offsets: a line the fast path
/// takes is shorter than 64 KiB (longer ones go to the exact regex), and a small `Spans`
/// is cheap to move around with its match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spans {
    slots: [[u16; 2]; MAX_GROUPS],
    /// The memo fill these spans come from: two matches with the same fill matched the same
    /// bytes with the same template (see `Memo`).
    fill: u64,
}

/// The slot value of a group that did not take part.
const ABSENT: u16 = u16::MAX;

impl Spans {
    pub(crate) fn new() -> Spans {
        Spans {
            slots: [[ABSENT; 2]; MAX_GROUPS],
            fill: 0,
        }
    }

    pub(crate) fn fill(&self) -> u64 {
        self.fill
    }

    /// The same group spans (of whichever fills).
    pub(crate) fn same_places(&self, other: &Spans) -> bool {
        self.slots == other.slots
    }

    /// The spans moved by `by` bytes to the right (`by` may be negative).
    fn shifted(&self, by: isize) -> Spans {
        let mut moved = *self;
        if by == 0 {
            return moved;
        }
        for slot in moved.slots.iter_mut().filter(|s| s[0] != ABSENT) {
            for offset in slot.iter_mut() {
                *offset = (*offset as isize + by) as u16;
            }
        }
        moved
    }

    pub(crate) fn get(&self, group: usize) -> Option<(usize, usize)> {
        match self.slots.get(group)? {
            [ABSENT, _] => None,
            [start, end] => Some((*start as usize, *end as usize)),
        }
    }

    /// Offsets fit: the caller only passes positions inside a line below 64 KiB.
    pub(crate) fn set(&mut self, group: usize, (start, end): (usize, usize)) {
        self.slots[group] = [start as u16, end as u16];
    }
}

/// What the fast path found at a position.
pub(crate) enum Found {
    /// The template cannot match there (the exact regex would not either).
    NoMatch,
    Match(Spans),
    /// Not decidable here: ask the exact regex.
    Unsure,
}

/// A zero-width lookahead at an end of the middle.
struct Edge {
    test: EdgeTest,
    negated: bool,
}

/// What a lookahead tests; fail2ban's two word-bound forms are read off the bytes directly.
enum EdgeTest {
    /// `^|\b|\W`
    WordBegin,
    /// `\b|\W|$`
    WordEnd,
    Regex(meta::Regex),
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

impl Edge {
    fn holds(&self, text: &str, at: usize) -> bool {
        let bytes = text.as_bytes();
        let word_before = at > 0 && is_word(bytes[at - 1]);
        let next = bytes.get(at).copied();
        let boundary = word_before != next.is_some_and(is_word);
        let non_word_next = next.is_some_and(|b| !is_word(b));
        let found = match &self.test {
            EdgeTest::WordBegin => at == 0 || boundary || non_word_next,
            EdgeTest::WordEnd => boundary || non_word_next || next.is_none(),
            EdgeTest::Regex(regex) => {
                regex.is_match(Input::new(text).range(at..).anchored(Anchored::Yes))
            }
        };
        found != self.negated
    }
}

/// The last scan of one detector. The DFA's walk depends only on its start context and the
/// bytes it read, so a text with the same start context and the same bytes from `at` gets
/// the same match and the same group spans.
#[derive(Debug, Clone, Default)]
pub(crate) struct Memo {
    /// The template's address: it lives in the template's shared cell for as long as the
    /// detector (which owns the memo) holds the template. 0: nothing recalled yet.
    template: usize,
    /// What the DFA's start state depends on: `at == 0` and the byte before `at`.
    start: (bool, u8),
    /// The bytes the DFA read from `at`; `eoi`: it read on to the end of the text.
    read: Vec<u8>,
    eoi: bool,
    /// The match with its group spans relative to `at` (group 0 gives its end); None: the
    /// template does not match there.
    found: Option<Spans>,
    /// Fills so far, numbering them.
    fills: u64,
}

fn start_context(bytes: &[u8], at: usize) -> (bool, u8) {
    (at == 0, if at > 0 { bytes[at - 1] } else { 0 })
}

impl Memo {
    fn recalls(&self, template: usize, bytes: &[u8], at: usize) -> bool {
        self.template == template
            && self.start == start_context(bytes, at)
            && bytes[at..].starts_with(&self.read)
            && (!self.eoi || bytes.len() == at + self.read.len())
    }

    fn fill(
        &mut self,
        template: usize,
        bytes: &[u8],
        at: usize,
        scan: &Scan,
        found: Option<Spans>,
    ) {
        self.fills += 1;
        self.template = template;
        self.start = start_context(bytes, at);
        self.read.clear();
        self.read.extend_from_slice(&bytes[at..at + scan.read]);
        self.eoi = scan.eoi;
        self.found = found.map(|spans| Spans {
            fill: self.fills,
            ..spans.shifted(-(at as isize))
        });
    }
}

/// One walk of the middle's DFA from a position: where its leftmost-first match ends (None:
/// no match) and how many bytes it read, up to the end of the text (`eoi`) or not.
struct Scan {
    end: Option<usize>,
    read: usize,
    eoi: bool,
}

/// A walk of a template's DFA stopped before `pos`: its state there and the end of the last
/// match it passed. The state is an index into that template's DFA only, hence `template`
/// (its address, as in `Memo`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resume {
    template: usize,
    state: StateID,
    pos: usize,
    end: Option<usize>,
}

/// Bytes of DFA (transition table) a template's middle may take; larger ones get no fast
/// form.
const SCAN_SIZE_LIMIT: usize = 1 << 20;

/// The fast form of a template regex (its ASCII build).
pub(crate) struct FastTemplate {
    lead: Vec<Edge>,
    /// The middle, for its group spans.
    middle: meta::Regex,
    /// The middle as a DFA anchored at its start, for its match and the bytes deciding it.
    scan: dense::DFA<Vec<u32>>,
    trail: Vec<Edge>,
    plan: Option<Vec<Step>>,
    groups: usize,
}

impl std::fmt::Debug for FastTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastTemplate")
            .field("groups", &self.groups)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// A lookahead without groups whose body is plain.
fn edge(expr: &Expr) -> Option<Edge> {
    let Expr::LookAround(body, kind) = expr else {
        return None;
    };
    let negated = match kind {
        LookAround::LookAhead => false,
        LookAround::LookAheadNeg => true,
        _ => return None,
    };
    if !is_plain(body) || body.has_descendant_or_self(|e| matches!(e, Expr::Group(_))) {
        return None;
    }
    let text = render(body);
    let test = match text.as_str() {
        r"^|\b|\W" | r"^|\b|(?i:\W)" => EdgeTest::WordBegin,
        r"\b|\W|$" | r"\b|(?i:\W)|$" => EdgeTest::WordEnd,
        _ => EdgeTest::Regex(build_plain(&text)?),
    };
    Some(Edge { test, negated })
}

impl FastTemplate {
    /// The fast form of `pattern` (a translated template regex with `groups` groups, group
    /// 0 included), or None when it is not lookaheads around a plain regex with the same
    /// groups.
    pub(crate) fn new(pattern: &str, groups: usize) -> Option<FastTemplate> {
        if groups > MAX_GROUPS {
            return None;
        }
        let items = match unoptimized_tree(pattern)? {
            Expr::Concat(items) => items,
            other => vec![other],
        };
        let is_edge = |e: &Expr| matches!(e, Expr::LookAround(..));
        let lead_len = items.iter().take_while(|e| is_edge(e)).count();
        let trail_len = items[lead_len..]
            .iter()
            .rev()
            .take_while(|e| is_edge(e))
            .count();
        let middle = Expr::Concat(items[lead_len..items.len() - trail_len].to_vec());
        if !is_plain(&middle) {
            return None;
        }
        let lead = items[..lead_len]
            .iter()
            .map(edge)
            .collect::<Option<Vec<_>>>()?;
        let trail = items[items.len() - trail_len..]
            .iter()
            .map(edge)
            .collect::<Option<Vec<_>>>()?;
        let text = render(&middle);
        let regex = build_plain(&text)?;
        if regex.captures_len() != groups {
            return None;
        }
        let ascii = syntax::Config::new().unicode(false).utf8(false);
        let scan = dense::Builder::new()
            .syntax(ascii)
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    // An accelerated state skips bytes, which the count of read bytes needs.
                    .accelerate(false)
                    .dfa_size_limit(Some(SCAN_SIZE_LIMIT))
                    .determinize_size_limit(Some(SCAN_SIZE_LIMIT)),
            )
            .build(&text)
            .ok()?;
        let plan = syntax::parse_with(&text, &ascii)
            .ok()
            .and_then(|hir| plan(&hir));
        Some(FastTemplate {
            lead,
            middle: regex,
            scan,
            trail,
            plan,
            groups,
        })
    }

    /// The template's match starting exactly at `at` in the ASCII `text`, as the exact
    /// regex searched anchored there would find it.
    pub(crate) fn captures_at(&self, text: &str, at: usize, memo: &mut Memo) -> Found {
        match self.recall(text, at, memo) {
            Some(found) => found,
            None => self.scan_at(text, at, memo),
        }
    }

    /// `captures_at` after `recall` found nothing in `memo` (the leading lookaheads hold at
    /// `at`): scan, fill the memo, and answer as the recall of that fill would. A text too
    /// long for 16-bit spans is left to the exact regex here too.
    pub(crate) fn scan_at(&self, text: &str, at: usize, memo: &mut Memo) -> Found {
        self.scan_from(text, at, None, memo)
    }

    /// `scan_at`, the DFA walk going on from `resume` when given: taken by `resume_at`
    /// (which walks from the start) on the same bytes before its position.
    fn scan_from(&self, text: &str, at: usize, resume: Option<Resume>, memo: &mut Memo) -> Found {
        if text.len() >= ABSENT as usize {
            return Found::Unsure;
        }
        let bytes = text.as_bytes();
        let scan = match resume.filter(|_| at == 0) {
            Some(resume) => self.scan_on(bytes, at, resume),
            None => self.scan(bytes, at),
        };
        let Some(scan) = scan else {
            return Found::Unsure;
        };
        let found = match scan.end {
            None => None,
            // The first middle match is the exact one only if the trailing lookaheads hold
            // after it; otherwise the exact regex may take another way.
            Some(end) if !self.trail.iter().all(|e| e.holds(text, end)) => return Found::Unsure,
            Some(end) => match self.spans(bytes, at, end) {
                Some(spans) => Some(spans),
                None => return Found::Unsure,
            },
        };
        memo.fill(self.address(), bytes, at, &scan, found);
        // The trailing lookaheads were checked above.
        match found {
            Some(spans) => Found::Match(Spans {
                fill: memo.fills,
                ..spans
            }),
            None => Found::NoMatch,
        }
    }

    /// The match at the start of the ASCII `text`, recalled or scanned; None when there is
    /// none or the exact regex must decide.
    pub(crate) fn match_at_start(&self, text: &str, memo: &mut Memo) -> Option<Spans> {
        self.match_resumed(text, None, memo)
    }

    /// `match_at_start` for a `text` whose bytes before the position of `resume` (when
    /// given) are those of the line it was taken on: a scan goes on from there.
    pub(crate) fn match_resumed(
        &self,
        text: &str,
        resume: Option<&Resume>,
        memo: &mut Memo,
    ) -> Option<Spans> {
        let resume = resume.filter(|r| r.template == self.address()).copied();
        let found = match self.recall(text, 0, memo) {
            Some(found) => found,
            None => self.scan_from(text, 0, resume, memo),
        };
        match found {
            Found::Match(spans) => Some(spans),
            Found::NoMatch | Found::Unsure => None,
        }
    }

    /// What `captures_at` finds without scanning: None when `memo` does not hold this
    /// template's scan of the same bytes from `at`.
    pub(crate) fn recall(&self, text: &str, at: usize, memo: &Memo) -> Option<Found> {
        if text.len() >= ABSENT as usize {
            return Some(Found::Unsure);
        }
        if !self.lead.iter().all(|e| e.holds(text, at)) {
            return Some(Found::NoMatch);
        }
        if !memo.recalls(self as *const FastTemplate as usize, text.as_bytes(), at) {
            return None;
        }
        let Some(relative) = memo.found else {
            return Some(Found::NoMatch);
        };
        let spans = relative.shifted(at as isize);
        Some(match spans.get(0) {
            // A lookahead may read past the bytes the DFA read: checked again.
            Some((_, end)) if self.trail.iter().all(|e| e.holds(text, end)) => Found::Match(spans),
            _ => Found::Unsure,
        })
    }

    /// Walk the DFA from `at` as a leftmost-first search does, counting the bytes read.
    fn scan(&self, bytes: &[u8], at: usize) -> Option<Scan> {
        let input = Input::new(bytes).range(at..).anchored(Anchored::Yes);
        let start = Resume {
            template: self.address(),
            state: self.scan.start_state_forward(&input).ok()?,
            pos: at,
            end: None,
        };
        self.scan_on(bytes, at, start)
    }

    /// Where the walk of the DFA from the start of `bytes` stands before `stop`, for
    /// `match_resumed`; None when the walk has ended (or given up) before.
    pub(crate) fn resume_at(&self, bytes: &[u8], stop: usize) -> Option<Resume> {
        let dfa = &self.scan;
        let input = Input::new(bytes).anchored(Anchored::Yes);
        let mut state = dfa.start_state_forward(&input).ok()?;
        let mut end = None;
        for (pos, &byte) in bytes.get(..stop)?.iter().enumerate() {
            state = dfa.next_state(state, byte);
            if dfa.is_special_state(state) {
                if dfa.is_match_state(state) {
                    end = Some(pos);
                } else {
                    return None;
                }
            }
        }
        Some(Resume {
            template: self.address(),
            state,
            pos: stop,
            end,
        })
    }

    /// Identifies the template for a memo or a resumed walk (see `Memo::template`).
    fn address(&self) -> usize {
        self as *const FastTemplate as usize
    }

    /// The walk of the DFA begun at `at`, going on from `resume`.
    fn scan_on(&self, bytes: &[u8], at: usize, resume: Resume) -> Option<Scan> {
        let dfa = &self.scan;
        let Resume {
            mut state,
            pos: from,
            mut end,
            ..
        } = resume;
        for (pos, &byte) in bytes.iter().enumerate().skip(from) {
            state = dfa.next_state(state, byte);
            if dfa.is_special_state(state) {
                // Matches are reported one byte late: this one ended before `byte`.
                if dfa.is_match_state(state) {
                    end = Some(pos);
                } else if dfa.is_dead_state(state) {
                    return Some(Scan {
                        end,
                        read: pos + 1 - at,
                        eoi: false,
                    });
                } else if dfa.is_quit_state(state) {
                    return None;
                }
            }
        }
        if dfa.is_match_state(dfa.next_eoi_state(state)) {
            end = Some(bytes.len());
        }
        Some(Scan {
            end,
            read: bytes.len() - at,
            eoi: true,
        })
    }

    /// Group spans of the middle's match `at..end`: from the split plan, else from the
    /// plain regex run on the match (None if that disagrees about the match).
    fn spans(&self, bytes: &[u8], at: usize, end: usize) -> Option<Spans> {
        let mut spans = Spans::new();
        spans.set(0, (at, end));
        if let Some(plan) = &self.plan {
            let mut planned = spans;
            if run_plan(plan, bytes, at, end, &mut planned) {
                return Some(planned);
            }
        }
        let input = Input::new(bytes).span(at..end).anchored(Anchored::Yes);
        let mut slots = [None; 2 * MAX_GROUPS];
        let slots = &mut slots[..2 * self.groups];
        self.middle.search_slots(&input, slots)?;
        for group in 0..self.groups {
            if let (Some(s), Some(e)) = (slots[2 * group], slots[2 * group + 1]) {
                spans.set(group, (s.get(), e.get()));
            }
        }
        (spans.get(0) == Some((at, end))).then_some(spans)
    }
}
