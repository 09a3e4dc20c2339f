//! The groups of `<HOST>` followed by a literal, as the backtracking regex
//! finds them, without running it: most failregexes put the address between literals, so
//! this is the capture search of most failure lines.
//!
//! The backtracker tries the parses of `(?:\[?(?:(?:::f{4,6}:)?(ip4)|(ip6))\]?|(dns))` +
//! literal in order and keeps the first that matches. Each piece's first parse is simple:
//! `\[?` and `\]?` take their bracket when there is one, the `::ffff:` prefix is taken when
//! present, `ip4` and `dns` take their longest forced run, `ip6`'s comes from a DFA. So the
//! first candidate is followed piece by piece; the next one is only needed when a piece has
//! no parse at all (then the whole branch has none, and the next branch is tried) or when
//! the literal does not follow (then shorter parses would be next, and the caller runs the
//! backtracker).

use std::sync::OnceLock;

use fancy_regex::{Assertion, Expr};
use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input, PatternID};

use super::ascii;
use super::regex::{resolve_tags, translate, Anchors};

/// A part that is `<HOST>`, then maybe literal text, then maybe `(?m:$)`.
#[derive(Debug, Clone)]
pub struct HostPart {
    /// A host name may follow the addresses (group 3): not with `usedns = no`.
    dns: bool,
    suffix: Box<[u8]>,
    /// `(?m:$)` after the literal.
    end_line: bool,
}

/// `<HOST>` as failregexes hold it, parsed: with `dns`, and as `usedns = no` makes it.
struct Forms {
    host: Expr,
    addr: Expr,
    ip6: dense::DFA<Vec<u32>>,
}

fn forms() -> Option<&'static Forms> {
    static FORMS: OnceLock<Option<Forms>> = OnceLock::new();
    FORMS
        .get_or_init(|| {
            // The pieces below are written for these forms.
            let ip4 = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
            let dns = r"(?P<dns>[\w\-.^_]*\w)";
            if resolve_tags("<IP4>", "no") != ip4 || resolve_tags("<DNS>", "no") != dns {
                return None;
            }
            let tree = |usedns: &str| {
                let py = resolve_tags("<HOST>", usedns);
                ascii::unoptimized_tree(&translate(&py, Anchors::SingleLineBuffer).ok()?)
            };
            let ip6 = translate(&resolve_tags("<IP6>", "no"), Anchors::SingleLineBuffer).ok()?;
            let ip6 = dense::Builder::new()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .configure(dense::Config::new().start_kind(StartKind::Anchored))
                .build(&ip6)
                .ok()?;
            Some(Forms {
                host: tree("warn")?,
                addr: tree("no")?,
                ip6,
            })
        })
        .as_ref()
}

impl HostPart {
    /// When the part made of `items` is `<HOST>` (its groups numbered 1 `ip4`, 2 `ip6` and
    /// 3 `dns`), then maybe case-sensitive literal text, then maybe the end of a line.
    pub fn new(items: &[Expr]) -> Option<HostPart> {
        let forms = forms()?;
        let (dns, rest) = match items.split_first()? {
            (first, rest) if *first == forms.host => (true, rest),
            (first, rest) if *first == forms.addr => (false, rest),
            _ => return None,
        };
        let (literals, end_line) = match rest {
            [literals @ .., Expr::Assertion(Assertion::EndLine { crlf: false })] => {
                (literals, true)
            }
            literals => (literals, false),
        };
        let mut suffix = String::new();
        for literal in literals {
            let Expr::Literal { val, casei: false } = literal else {
                return None;
            };
            suffix.push_str(val);
        }
        let suffix = suffix.into_bytes().into_boxed_slice();
        Some(HostPart {
            dns,
            suffix,
            end_line,
        })
    }

    /// Fills `slots` (the part regex's) with the groups of the part's match `start..end` in
    /// `text`; false when the backtracker must decide.
    pub fn slots(
        &self,
        text: &str,
        start: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let Some((group, span, parsed_end)) = self.parse(text.as_bytes(), start) else {
            return false;
        };
        if parsed_end != end || slots.len() != if self.dns { 8 } else { 6 } {
            return false;
        }
        slots.fill(None);
        let at = [
            (0, start),
            (1, end),
            (2 * group, span.0),
            (2 * group + 1, span.1),
        ];
        for (slot, offset) in at {
            slots[slot] = NonMaxUsize::new(offset);
        }
        true
    }

    /// The group that took part (1-3), its span, and where the part ends.
    fn parse(&self, text: &[u8], at: usize) -> Option<(usize, (usize, usize), usize)> {
        let bracket = text.get(at) == Some(&b'[');
        let inner = at + usize::from(bracket);
        // The `::ffff:` prefix has one parse at most; without it, `ip4` cannot start at a `:`.
        let ip4_at = ffff_prefix(text, inner).unwrap_or(inner);
        if let Some(ip4_end) = ip4(text, ip4_at) {
            return self
                .close(text, ip4_end)
                .map(|end| (1, (ip4_at, ip4_end), end));
        }
        if let Some(ip6_end) = ip6(text, inner)? {
            return self
                .close(text, ip6_end)
                .map(|end| (2, (inner, ip6_end), end));
        }
        // No address at all. With `[` taken, the other choice fails too: nothing of
        // `<HOST>` starts at `[` (so the part's DFA found no match here).
        if bracket || !self.dns {
            return None;
        }
        let dns_end = dns(text, at)?;
        self.suffix_at(text, dns_end)
            .map(|end| (3, (at, dns_end), end))
    }

    /// After an address ending at `at`: `\]?` (the bracket first), then the literal.
    fn close(&self, text: &[u8], at: usize) -> Option<usize> {
        let taken = (text.get(at) == Some(&b']'))
            .then(|| self.suffix_at(text, at + 1))
            .flatten();
        taken.or_else(|| self.suffix_at(text, at))
    }

    fn suffix_at(&self, text: &[u8], at: usize) -> Option<usize> {
        let end = at + self.suffix.len();
        let line_ends = |end: usize| text.get(end).is_none_or(|b| *b == b'\n');
        (text.get(at..)?.starts_with(&self.suffix) && (!self.end_line || line_ends(end)))
            .then_some(end)
    }
}

/// The slots of `regex`'s match in `input` (None: no match): from `host` when it decides,
/// else from the regex's capture search over the match the DFA found.
pub fn search_slots(
    regex: &meta::Regex,
    host: Option<&HostPart>,
    text: &str,
    input: &Input<'_>,
    slots: &mut [Option<NonMaxUsize>],
) -> Option<PatternID> {
    let Some(host) = host else {
        return regex.search_slots(input, slots);
    };
    let found = regex.search(input)?;
    if host.slots(text, found.start(), found.end(), slots) {
        return Some(PatternID::ZERO);
    }
    let span = input.clone().span(found.range()).anchored(Anchored::Yes);
    regex.search_slots(&span, slots)
}

/// `::f{4,6}:` at `at`: with a run of `n` f's, `f{4,6}` can be followed by `:` only when
/// it takes them all.
fn ffff_prefix(text: &[u8], at: usize) -> Option<usize> {
    let rest = text.get(at..)?.strip_prefix(b"::")?;
    let run = rest.iter().take_while(|b| **b == b'f').count();
    ((4..=6).contains(&run) && rest.get(run) == Some(&b':')).then_some(at + 2 + run + 1)
}

/// `(?:\d{1,3}\.){3}\d{1,3}` at `at`, first parse: each `\d{1,3}` takes the whole run of
/// digits (a shorter one would leave a digit where `.` must be), the last at most three.
fn ip4(text: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    for octet in 0..4 {
        let run = text
            .get(pos..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if run == 0 {
            return None;
        }
        if octet == 3 {
            return Some(pos + run.min(3));
        }
        if run > 3 || text.get(pos + run) != Some(&b'.') {
            return None;
        }
        pos += run + 1;
    }
    None
}

/// The ip6 pattern's first parse at `at` (leftmost-first, anchored), None inside when it
/// has none; None when the DFA cannot tell.
fn ip6(text: &[u8], at: usize) -> Option<Option<usize>> {
    let input = Input::new(text).range(at..).anchored(Anchored::Yes);
    let found = forms()?.ip6.try_search_fwd(&input).ok()?;
    Some(found.map(|m| m.offset()))
}

/// `[\w\-.^_]*\w` at `at`, first parse: the star takes the whole run of its bytes and gives
/// back up to the last word byte.
fn dns(text: &[u8], at: usize) -> Option<usize> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let rest = text.get(at..)?;
    let run = rest
        .iter()
        .take_while(|b| word(**b) || matches!(b, b'-' | b'.' | b'^'))
        .count();
    let last_word = rest[..run].iter().rposition(|b| word(*b))?;
    Some(at + last_word + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::util::captures::Captures;

    /// The items and the regex of the part after the head `A` of the failregex `A` + `py`
    /// (as `LiteralHead` cuts one).
    fn part(py: &str, usedns: &str) -> (Vec<Expr>, meta::Regex) {
        let py = resolve_tags(&format!("A{py}"), usedns);
        let translated = translate(&py, Anchors::SingleLineBuffer).unwrap();
        let Expr::Concat(mut items) = ascii::unoptimized_tree(&translated).unwrap() else {
            panic!("{py}");
        };
        items.remove(0);
        let regex = ascii::build_plain(&ascii::render(&Expr::Concat(items.clone()))).unwrap();
        (items, regex)
    }

    #[test]
    fn host_groups_are_the_backtrackers() {
        let hosts = "192.0.2.1 1.2.3.4567 1.2.3 1.2.3. 01.002.3.44 1234.1.1.1 ::ffff:192.0.2.1 \
            ::fffff:1.2.3.4 ::ffffff:1.2.3.4 ::fffffff:1.2.3.4 ::fff:1.2.3.4 ::ffff: ::ffff:abc \
            2001:db8::1 a:b: a:b ::1 fe80:: 1:2:3:4:5:6:7:8:9 dead:beef dead.beef \
            mail.example.org -x- x. x-. [192.0.2.1] [2001:db8::1] [host] [ ] 1.2.3.4] [1.2.3.4 \
            _ ^a 192.0.2.1:25 [1.2.3.4]] x1.2.3.4 a[1.2.3.4] [[1.2.3.4] :::ffff:1.2.3.4 \
            ]1.2.3.4 ::FFFF:1.2.3.4 ::fFff:1.2.3.4 ::ffff:1.2.3 ::ffff:1.2.3.4.5 \
            ::ffff:::1.2.3.4 a^b a^ ^ _a_ -.- a..b é1.2.3.4 1.2.3.4é";
        let hosts: Vec<&str> = hosts.split_whitespace().chain(["", "\n1.2.3.4"]).collect();
        let tails = [
            "",
            ",",
            "]",
            " failed: x",
            "\n",
            " failed: x\n",
            "]]",
            "],",
            "x",
            "]\n",
            ", x",
            "\nx",
            "]\nx",
            "\n1.2.3.4\n",
            ".",
            ":",
            "5",
            "a",
            "-",
        ];
        let suffixes = [
            "",
            ",",
            "]",
            " failed: x",
            "$",
            " failed: x$",
            "]:",
            "\\.",
            ":",
            "5",
            "a",
            "-",
            "]$",
            ":$",
        ];
        // Decided without the backtracker, by group: ip4, ip6, dns.
        let mut decided = [0; 4];
        for usedns in ["warn", "no"] {
            for suffix in suffixes {
                let (items, regex) = part(&format!("<HOST>{suffix}"), usedns);
                let host = HostPart::new(&items)
                    .unwrap_or_else(|| panic!("{usedns} {suffix:?}: {items:?}"));
                for text in hosts.iter().flat_map(|h| tails.map(|t| format!("{h}{t}"))) {
                    let mut want = regex.create_captures();
                    regex.search_captures(&Input::new(&text), &mut want);
                    let Some(found) = regex.search(&Input::new(&text)) else {
                        assert!(!want.is_match(), "{text:?}");
                        continue;
                    };
                    let mut got = regex.create_captures();
                    if host.slots(&text, found.start(), found.end(), got.slots_mut()) {
                        got.set_pattern(Some(PatternID::ZERO));
                        let spans =
                            |c: &Captures| (0..4).map(|g| c.get_group(g)).collect::<Vec<_>>();
                        assert_eq!(spans(&got), spans(&want), "{usedns} {suffix:?}: {text:?}");
                        let group = (1..4).find(|g| got.get_group(*g).is_some()).unwrap_or(0);
                        decided[group] += 1;
                    }
                }
            }
        }
        assert!(decided[1..].iter().all(|n| *n > 100), "{decided:?}");
    }

    #[test]
    fn other_parts_are_not_host_parts() {
        let cases = [
            "<HOST> \\S+",
            "<HOST>(?i:x)",
            "(?i:<HOST>)x",
            "x<HOST>",
            "<HOST>(?P<x>y)",
            "<IP4>",
            "<ADDR>x",
            "<HOST>$x",
            "<HOST>\\Z",
        ];
        for py in cases {
            let (items, _) = part(py, "warn");
            assert!(HostPart::new(&items).is_none(), "{py}");
        }
    }
}
