//! Split plans: the group spans of a match the DFA already found, by one walk from left to
//! right without choices. A plan exists when every choice the regex could make is forced
//! by the text: a part that varies ends where what follows it begins (it cannot contain
//! the bytes that start what follows, except maybe at its own first byte), and an optional
//! part with groups is taken exactly when the text starts like it (what follows it cannot
//! start the same way). Since the match exists, the walk then finds its only parse, which
//! is the one the backtracking regex finds. Assertions are not looked at: the match holds.

use regex_syntax::hir::{Class, Hir, HirKind};

use super::fast::{Spans, MAX_GROUPS};

type ByteSet = [bool; 256];

/// One step of a split plan over the match.
#[derive(Debug)]
pub(crate) enum Step {
    /// A literal or single-byte class.
    Skip(usize),
    Open(usize),
    Close(usize),
    /// Text up to the first byte of `stop` at or after `keep` bytes (what follows starts
    /// with a byte of `stop`, which the text cannot contain there), or to the end of the
    /// match; a group when `group` is set.
    Until {
        group: Option<usize>,
        keep: usize,
        stop: Box<ByteSet>,
    },
    /// An optional part with groups, taken when the rest of the match starts with one of
    /// `starts` (what follows the part never starts like that).
    Optional {
        starts: Starts,
        steps: Vec<Step>,
    },
}

/// A set of short strings (at most `MAX_LOOKAHEAD` bytes), packed by length for lookup.
#[derive(Debug)]
pub(crate) struct Starts {
    /// (length, the strings of that length as big-endian numbers, sorted).
    by_len: Vec<(usize, Vec<u32>)>,
}

fn pack(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |n, &b| n << 8 | u32::from(b))
}

impl Starts {
    fn new(strings: &[Vec<u8>]) -> Starts {
        let mut by_len: Vec<(usize, Vec<u32>)> = Vec::new();
        for s in strings {
            match by_len.iter_mut().find(|(len, _)| *len == s.len()) {
                Some((_, keys)) => keys.push(pack(s)),
                None => by_len.push((s.len(), vec![pack(s)])),
            }
        }
        by_len.iter_mut().for_each(|(_, keys)| keys.sort_unstable());
        Starts { by_len }
    }

    /// `text` starts with one of the strings.
    fn begin(&self, text: &[u8]) -> bool {
        self.by_len.iter().any(|(len, keys)| {
            text.get(..*len)
                .is_some_and(|head| keys.binary_search(&pack(head)).is_ok())
        })
    }
}

/// What may follow a part: the bytes it can start with, and whether it can be empty (the
/// match may end right after the part).
#[derive(Clone)]
struct Follow {
    bytes: ByteSet,
    end: bool,
}

const END: Follow = Follow {
    bytes: [false; 256],
    end: true,
};

/// Strings a prefix set may hold before the plan gives up.
const MAX_PREFIXES: usize = 1024;

/// Longest start looked at to tell an optional part from what follows it.
const MAX_LOOKAHEAD: usize = 4;

/// The plan for a plain regex, None when some choice of it is not forced.
pub(crate) fn plan(hir: &Hir) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    push_item(hir, &END, &mut steps)?;
    Some(steps)
}

/// Group spans of the match `at..end` of `bytes` by `plan`; false when the walk does not
/// end at `end` (the caller then asks a regex engine).
pub(crate) fn run_plan(
    plan: &[Step],
    bytes: &[u8],
    at: usize,
    end: usize,
    spans: &mut Spans,
) -> bool {
    let mut pos = at;
    let mut opened = [0usize; MAX_GROUPS];
    run_steps(plan, bytes, &mut pos, end, spans, &mut opened) && pos == end
}

fn run_steps(
    plan: &[Step],
    bytes: &[u8],
    pos: &mut usize,
    end: usize,
    spans: &mut Spans,
    opened: &mut [usize; MAX_GROUPS],
) -> bool {
    for step in plan {
        match step {
            Step::Skip(n) => *pos += n,
            Step::Open(group) => opened[*group] = *pos,
            Step::Close(group) => spans.set(*group, (opened[*group], *pos)),
            Step::Until { group, keep, stop } => {
                let from = *pos;
                *pos += keep;
                while *pos < end && !stop[usize::from(bytes[*pos])] {
                    *pos += 1;
                }
                if let Some(group) = group {
                    spans.set(*group, (from, *pos));
                }
            }
            Step::Optional { starts, steps } => {
                let rest = &bytes[*pos..end];
                if starts.begin(rest) && !run_steps(steps, bytes, pos, end, spans, opened) {
                    return false;
                }
            }
        }
        if *pos > end {
            return false;
        }
    }
    true
}

fn push_sequence(items: &[Hir], after: &Follow, steps: &mut Vec<Step>) -> Option<()> {
    for (i, item) in items.iter().enumerate() {
        let rest = &items[i + 1..];
        let follow = follow_of(rest, after)?;
        match item.kind() {
            HirKind::Repetition(rep)
                if rep.min == 0 && rep.max == Some(1) && has_capture(&rep.sub) =>
            {
                push_optional(&rep.sub, rest, after, &follow, steps)?
            }
            _ => push_item(item, &follow, steps)?,
        }
    }
    Some(())
}

fn push_item(hir: &Hir, follow: &Follow, steps: &mut Vec<Step>) -> Option<()> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => steps.push(Step::Skip(lit.0.len())),
        HirKind::Class(_) if single_byte(hir).is_some() => steps.push(Step::Skip(1)),
        HirKind::Concat(items) => push_sequence(items, follow, steps)?,
        HirKind::Capture(cap) if is_fixed(&cap.sub) || has_capture(&cap.sub) => {
            let group = usize::try_from(cap.index).ok()?;
            steps.push(Step::Open(group));
            push_item(&cap.sub, follow, steps)?;
            steps.push(Step::Close(group));
        }
        HirKind::Capture(cap) => {
            let group = usize::try_from(cap.index).ok()?;
            push_until(Some(group), &cap.sub, follow, steps)?;
        }
        _ if !has_capture(hir) => push_until(None, hir, follow, steps)?,
        _ => return None,
    }
    Some(())
}

/// A part without groups inside whose length varies: it ends where `follow` begins.
fn push_until(
    group: Option<usize>,
    hir: &Hir,
    follow: &Follow,
    steps: &mut Vec<Step>,
) -> Option<()> {
    let mut all = [false; 256];
    byte_set(hir, &mut all)?;
    let keep = if disjoint(&all, &follow.bytes) {
        0
    } else if hir.properties().minimum_len()? > 0 && disjoint(&later(hir)?, &follow.bytes) {
        // Only its first byte may look like what follows (`[0 ]?[1-9]` before a space).
        1
    } else {
        return None;
    };
    steps.push(Step::Until {
        group,
        keep,
        stop: Box::new(follow.bytes),
    });
    Some(())
}

/// `(?:sub)?` with groups, followed by `rest` and then `after`: decided by the shortest
/// start length at which the part's starts and the starts of what follows it differ.
fn push_optional(
    sub: &Hir,
    rest: &[Hir],
    after: &Follow,
    follow: &Follow,
    steps: &mut Vec<Step>,
) -> Option<()> {
    if sub.properties().minimum_len()? == 0 {
        return None;
    }
    let mut inner = Vec::new();
    push_item(sub, follow, &mut inner)?;
    for k in 1..=MAX_LOOKAHEAD {
        let take = prefixes(sub, k)?;
        let skip = follow_prefixes(rest, after, k)?;
        // An empty skip start is the match ending here, where the part cannot be taken.
        let clash = take.iter().any(|t| {
            skip.iter()
                .filter(|s| !s.is_empty())
                .any(|s| t.starts_with(s) || s.starts_with(t))
        });
        if !clash {
            steps.push(Step::Optional {
                starts: Starts::new(&take),
                steps: inner,
            });
            return Some(());
        }
    }
    None
}

fn disjoint(a: &ByteSet, b: &ByteSet) -> bool {
    !a.iter().zip(b.iter()).any(|(x, y)| *x && *y)
}

fn union(into: &mut ByteSet, from: &ByteSet) {
    into.iter_mut().zip(from.iter()).for_each(|(x, y)| *x |= *y);
}

/// What can follow the items `rest` of a sequence that is itself followed by `after`.
fn follow_of(rest: &[Hir], after: &Follow) -> Option<Follow> {
    let mut bytes = [false; 256];
    for item in rest {
        union(&mut bytes, &first(item)?);
        if item.properties().minimum_len()? > 0 {
            return Some(Follow { bytes, end: false });
        }
    }
    union(&mut bytes, &after.bytes);
    Some(Follow {
        bytes,
        end: after.end,
    })
}

/// The bytes a non-empty match of `hir` can start with (None for wide classes).
fn first(hir: &Hir) -> Option<ByteSet> {
    let mut set = [false; 256];
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => set[usize::from(*lit.0.first()?)] = true,
        HirKind::Class(_) => set = single_byte(hir)?,
        HirKind::Capture(cap) => set = first(&cap.sub)?,
        HirKind::Repetition(rep) if rep.max == Some(0) => {}
        HirKind::Repetition(rep) => set = first(&rep.sub)?,
        HirKind::Alternation(alts) => {
            for alt in alts {
                union(&mut set, &first(alt)?);
            }
        }
        HirKind::Concat(items) => {
            for item in items {
                union(&mut set, &first(item)?);
                if item.properties().minimum_len()? > 0 {
                    break;
                }
            }
        }
    }
    Some(set)
}

/// The bytes a match of `hir` can hold after its first byte (an over-approximation).
fn later(hir: &Hir) -> Option<ByteSet> {
    let mut set = [false; 256];
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(_) => {}
        HirKind::Literal(lit) => lit
            .0
            .iter()
            .skip(1)
            .for_each(|&b| set[usize::from(b)] = true),
        HirKind::Capture(cap) => set = later(&cap.sub)?,
        HirKind::Repetition(rep) if rep.max == Some(1) => set = later(&rep.sub)?,
        HirKind::Repetition(rep) => byte_set(&rep.sub, &mut set)?,
        HirKind::Alternation(alts) => {
            for alt in alts {
                union(&mut set, &later(alt)?);
            }
        }
        HirKind::Concat(items) => {
            for (i, item) in items.iter().enumerate() {
                union(&mut set, &later(item)?);
                if i > 0 {
                    union(&mut set, &first(item)?);
                }
            }
        }
    }
    Some(set)
}

/// The starts of what follows an optional part: of the sequence `rest`, continued by the
/// first byte of `after` where `rest` can end early. An empty start: the match can end.
fn follow_prefixes(rest: &[Hir], after: &Follow, k: usize) -> Option<Vec<Vec<u8>>> {
    let mut starts = Vec::new();
    for s in prefixes_of_sequence(rest, k)? {
        if s.len() == k {
            starts.push(s);
            continue;
        }
        if after.end {
            starts.push(s.clone());
        }
        for byte in (0..=255u8).filter(|&b| after.bytes[usize::from(b)]) {
            let mut longer = s.clone();
            longer.push(byte);
            starts.push(longer);
        }
    }
    capped(starts)
}

/// The first `k` bytes of every match of `hir` (whole matches when shorter), for the
/// constructs a plain regex has; None when there are too many.
fn prefixes(hir: &Hir, k: usize) -> Option<Vec<Vec<u8>>> {
    let found = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => vec![Vec::new()],
        HirKind::Literal(lit) => vec![lit.0[..lit.0.len().min(k)].to_vec()],
        HirKind::Class(_) => {
            let set = single_byte(hir)?;
            (0..=255u8)
                .filter(|&b| set[usize::from(b)])
                .map(|b| vec![b])
                .collect()
        }
        HirKind::Capture(cap) => prefixes(&cap.sub, k)?,
        HirKind::Concat(items) => prefixes_of_sequence(items, k)?,
        HirKind::Alternation(alts) => {
            let mut all = Vec::new();
            for alt in alts {
                all.extend(prefixes(alt, k)?);
            }
            all
        }
        HirKind::Repetition(rep) => {
            let sub = prefixes(&rep.sub, k)?;
            // Beyond `k` non-empty rounds nothing new starts (and `min` rounds must run).
            let rounds = rep.max.unwrap_or(u32::MAX).min(rep.min.max(k as u32));
            if rounds > 64 {
                return None;
            }
            let mut found = if rep.min == 0 {
                vec![Vec::new()]
            } else {
                Vec::new()
            };
            let mut so_far = vec![Vec::new()];
            for round in 1..=rounds {
                so_far = capped(concat(&so_far, &sub, k))?;
                if round >= rep.min {
                    found.extend(so_far.iter().cloned());
                }
            }
            found
        }
    };
    capped(found)
}

fn prefixes_of_sequence(items: &[Hir], k: usize) -> Option<Vec<Vec<u8>>> {
    let mut so_far = vec![Vec::new()];
    for item in items {
        if so_far.iter().all(|s| s.len() >= k) {
            break;
        }
        so_far = capped(concat(&so_far, &prefixes(item, k)?, k))?;
    }
    Some(so_far)
}

/// Every string of `heads` (those already `k` long as they are) followed by every string
/// of `tails`, cut at `k`.
fn concat(heads: &[Vec<u8>], tails: &[Vec<u8>], k: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for head in heads {
        if head.len() >= k {
            out.push(head.clone());
            continue;
        }
        for tail in tails {
            let mut joined = head.clone();
            joined.extend_from_slice(tail);
            joined.truncate(k);
            out.push(joined);
        }
    }
    out
}

fn capped(mut strings: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    strings.sort_unstable();
    strings.dedup();
    (strings.len() <= MAX_PREFIXES).then_some(strings)
}

/// Bytes a plain expression can consume (an over-approximation), None for wide classes.
fn byte_set(hir: &Hir, set: &mut ByteSet) -> Option<()> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => lit.0.iter().for_each(|&b| set[usize::from(b)] = true),
        HirKind::Class(Class::Bytes(class)) => {
            for range in class.iter() {
                (range.start()..=range.end()).for_each(|b| set[usize::from(b)] = true);
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            for range in class.iter() {
                let (lo, hi) = (
                    u8::try_from(range.start()).ok()?,
                    u8::try_from(range.end()).ok()?,
                );
                (lo..=hi).for_each(|b| set[usize::from(b)] = true);
            }
        }
        HirKind::Repetition(rep) => byte_set(&rep.sub, set)?,
        HirKind::Capture(cap) => byte_set(&cap.sub, set)?,
        HirKind::Concat(items) | HirKind::Alternation(items) => {
            for item in items {
                byte_set(item, set)?;
            }
        }
    }
    Some(())
}

/// One byte's worth of text (a single-byte literal or an ASCII byte class), as a byte set.
fn single_byte(hir: &Hir) -> Option<ByteSet> {
    let fixed = match hir.kind() {
        HirKind::Literal(lit) => lit.0.len() == 1,
        HirKind::Class(Class::Bytes(_)) => true,
        HirKind::Class(Class::Unicode(class)) => class.iter().all(|r| r.end() <= '\x7f'),
        _ => false,
    };
    if !fixed {
        return None;
    }
    let mut set = [false; 256];
    byte_set(hir, &mut set)?;
    Some(set)
}

/// Literals, one-byte classes, zero-width assertions and groups of them in sequence, with
/// groups without groups inside: the plan walks them without choices.
fn is_fixed(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Literal(_) => true,
        HirKind::Class(_) => single_byte(hir).is_some(),
        HirKind::Concat(items) => items.iter().all(|h| is_fixed(h) || is_field(h)),
        HirKind::Capture(cap) => is_fixed(&cap.sub),
        _ => false,
    }
}

fn is_field(hir: &Hir) -> bool {
    matches!(hir.kind(), HirKind::Capture(cap) if !has_capture(&cap.sub))
}

fn has_capture(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Capture(_) => true,
        HirKind::Repetition(rep) => has_capture(&rep.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => items.iter().any(has_capture),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::util::syntax;
    use regex_automata::{meta, Anchored, Input};

    /// The plan's spans for each text equal the regex engine's, whenever a plan exists.
    fn check(pattern: &str, texts: &[&str]) -> bool {
        let config = syntax::Config::new().unicode(false).utf8(false);
        let hir = syntax::parse_with(pattern, &config).unwrap();
        let regex = meta::Regex::builder()
            .syntax(config)
            .build(pattern)
            .unwrap();
        let Some(steps) = plan(&hir) else {
            return false;
        };
        for text in texts {
            let input = Input::new(text.as_bytes()).anchored(Anchored::Yes);
            let mut caps = regex.create_captures();
            regex.search_captures(&input, &mut caps);
            let Some(whole) = caps.get_match() else {
                continue;
            };
            let mut spans = Spans::new();
            spans.set(0, (0, whole.end()));
            assert!(
                run_plan(&steps, text.as_bytes(), 0, whole.end(), &mut spans),
                "{pattern} on {text:?}"
            );
            for group in 0..caps.group_len() {
                let want = caps.get_group(group).map(|s| (s.start, s.end));
                assert_eq!(
                    spans.get(group),
                    want,
                    "{pattern} group {group} on {text:?}"
                );
            }
        }
        true
    }

    #[test]
    fn plans_find_the_engine_spans() {
        // An optional part told from what follows by its second byte.
        assert!(check(
            r"(?i)(?:(mon|tue|sat) )?(mar|may|sep) (\d+)",
            &["Mon Mar 1", "mar 12", "SAT SEP 3", "sep 30", "may 7x"],
        ));
        // A field whose first byte may be the stop byte; optional tails at the end.
        assert!(check(
            r"([1-2]\d|[0 ]?[1-9]|3[0-1])  ?([0-2]?\d):(\d\d)(?:\.(\d{1,6}))?(?: (20\d\d))?",
            &[
                " 1 00:01",
                "11 00:01.5",
                "3 9:00 2025",
                "31  23:59.123456 2099",
                " 9 1:02 20"
            ],
        ));
        // Leading non-word bytes before a word.
        assert!(check(r"^(?:\W{0,2})?(\w+)", &["[[abc", "abc", "- x"]));
        // An optional part that looks like what follows: no plan.
        assert!(!check(r"(?:(a)b)?(a)(b)", &[]));
        assert!(!check(r"(a)?(a)", &[]));
        // A field that can hold its stop byte after its start: no plan.
        assert!(!check(r"([a ]+) ", &[]));
    }
}
