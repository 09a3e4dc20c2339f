//! Plain forms of regexes that need fancy-regex's backtracking VM only for conditionals
//! `(?(g)yes|no)`, tempered dots `(?:(?!literal).)*` and negative lookaheads of a literal
//! `(?!literal)`, as in sshd's `Failed …` and `Connection closed …` failregexes.
//! A conditional is expanded by distributing the rest of the pattern over the choice that
//! decides its group (`(g)?` or an alternation defining it), each alternative then knowing
//! which branch to take. A tempered dot becomes `.*` in a group of its own, and a match is
//! kept only when no position of that group's span starts the literal; a lookahead becomes
//! an empty group, and a match is kept only when the literal does not start where that group
//! stands. The regex then runs on
//! regex-automata's engines, several times faster than the VM, with the same match and groups:
//! both forms try the same paths in the same order, and the checks reject exactly the paths
//! the lookaheads prune; when the best relaxed path fails a check, the VM decides. (As with
//! the other fast paths, a search the VM would give up at its backtrack limit can match.)

use std::collections::HashMap;

use fancy_regex::{Expr, LookAround};
use memchr::memmem;
use regex_automata::util::captures::Captures;
use regex_automata::{meta, Anchored, Input};

use super::ascii;

/// Most alternatives an expansion may produce (each copies the rest of the pattern).
const MAX_ALTERNATIVES: usize = 16;

/// A regex's plain form: see the module comment.
#[derive(Debug, Clone)]
pub struct Expanded {
    regex: meta::Regex,
    /// Groups of the original regex, counting the whole match.
    original_groups: usize,
    /// For each group of `regex` (index 0 unused), the original regex's group number, or None
    /// for the group of a tempered dot or a lookahead.
    groups: Vec<Option<usize>>,
    /// What the relaxed match must pass where the original has lookaheads.
    checks: Vec<Check>,
    /// The same tree searched branch by branch (see `Step`); None when its top is not a head
    /// followed by branches.
    guided: Option<Step>,
}

/// The pattern tree with each group's original number, conditionals, tempered dots and
/// lookaheads made explicit; everything else is a plain leaf rendered as it is.
#[derive(Debug, Clone)]
enum Node {
    Leaf(Expr),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Group(usize, Box<Node>),
    Repeat {
        child: Box<Node>,
        lo: usize,
        hi: usize,
        greedy: bool,
    },
    Cond {
        group: usize,
        yes: Box<Node>,
        no: Box<Node>,
    },
    Tempered {
        literal: String,
        any: Expr,
        greedy: bool,
    },
    /// `(?!literal)`.
    NotAhead(String),
}

/// A lookahead of the original regex, checked on the relaxed match: the literal starts at no
/// position of the group's span (a tempered dot), or not where the group is (a lookahead,
/// whose group is empty).
#[derive(Debug, Clone)]
struct Check {
    group: usize,
    literal: memmem::Finder<'static>,
    kind: CheckKind,
}

/// What a check's group stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckKind {
    TemperedDot,
    Lookahead,
}

impl Check {
    fn new((group, literal, kind): (usize, String, CheckKind)) -> Check {
        let literal = memmem::Finder::new(literal.as_bytes()).into_owned();
        Check {
            group,
            literal,
            kind,
        }
    }

    /// Whether the relaxed match whose groups are `caps` passes the check on `text`; a
    /// literal running past a tempered span's end counts.
    fn holds(&self, text: &str, caps: &Captures) -> bool {
        let Some(span) = caps.get_group(self.group) else {
            return true;
        };
        let rest = &text.as_bytes()[span.start..];
        if self.kind == CheckKind::TemperedDot {
            self.literal
                .find(rest)
                .is_none_or(|at| at >= span.end - span.start)
        } else {
            !rest.starts_with(self.literal.needle())
        }
    }
}

/// Span of each group by number (0: the whole match), None where it did not take part.
pub type Spans = Vec<Option<(usize, usize)>>;

/// Which condition groups took part, on the path an alternative stands for.
type Known = HashMap<usize, bool>;

impl Expanded {
    /// The plain form of a translated pattern; None when the pattern is plain already (the
    /// regex crate runs it as it is), has other fancy constructs, or is not `ascii_safe`.
    pub fn new(translated: &str, groups: usize) -> Option<Expanded> {
        let tree = ascii::unoptimized_tree(translated)?;
        if ascii::is_plain(&tree) {
            return None;
        }
        let mut counter = 0;
        let node = convert(&tree, &mut counter)?;
        let node = expand(&node, &Known::new(), &mut 1)?;
        let rendered = render(&node)?;
        let regex = ascii::build_plain(&rendered.pattern)?;
        let expanded = Expanded {
            regex,
            original_groups: groups,
            groups: rendered.groups,
            checks: rendered.checks.into_iter().map(Check::new).collect(),
            guided: Step::new(&node)
                .filter(|step| step.head.is_some() && !step.branches.is_empty()),
        };
        let covered = (1..groups).all(|g| expanded.groups.contains(&Some(g)));
        (covered && expanded.regex.captures_len() == expanded.groups.len()).then_some(expanded)
    }

    /// Leftmost match on ASCII `text`: Some(spans by the original regex's group numbers), or
    /// Some(None) for no match; None when the relaxed match fails a check and the original
    /// regex must decide.
    pub fn search(&self, text: &str) -> Option<Option<Spans>> {
        if let Some(step) = &self.guided {
            let mut spans = vec![None; self.original_groups];
            match step.search(text, None, &mut spans) {
                Ok((start, end)) => {
                    spans[0] = Some((start.unwrap_or(end), end));
                    return Some(Some(spans));
                }
                Err(Stop::NoMatch) => return Some(None),
                Err(Stop::Undecided) => {}
            }
        }
        let mut caps = self.regex.create_captures();
        self.regex.search_captures(&Input::new(text), &mut caps);
        if !caps.is_match() {
            return Some(None);
        }
        if !self.checks.iter().all(|check| check.holds(text, &caps)) {
            return None;
        }
        let mut spans = vec![None; self.original_groups];
        for (index, original) in self.groups.iter().enumerate() {
            let slot = match (index, original) {
                (0, _) => 0,
                (_, Some(original)) => *original,
                (_, None) => continue,
            };
            if spans[slot].is_none() {
                spans[slot] = caps.get_group(index).map(|s| (s.start, s.end));
            }
        }
        Some(Some(spans))
    }
}

/// The resolved tree as the backtracker walks it: `head`, then the first of `branches` that
/// can match where the head ended. An expansion ends each concatenation with the
/// alternation it distributed the rest over, so nothing follows the branches. A backtracking
/// search tries the head's parses in order and, for each, the branches in order; so when a
/// branch (tested by a DFA, anchored where the head's first parse ends) matches, the whole
/// match is that head parse followed by the branch's own first parse, found the same way.
/// The capture engine then runs on each small piece of the path alone, not on the whole
/// tree, whose failing alternatives it would otherwise explore one parse at a time (sshd's
/// `Failed …` first tries the branch that wants `: ` at the end). When no branch matches
/// after the head's first parse, the whole regex decides.
#[derive(Debug, Clone)]
struct Step {
    head: Option<Piece>,
    /// Each branch's test (the whole branch, searched anchored) and its own steps.
    branches: Vec<(meta::Regex, Step)>,
}

/// A plain piece of the tree with its groups (see `Expanded::groups`) and lookahead checks.
#[derive(Debug, Clone)]
struct Piece {
    regex: meta::Regex,
    groups: Vec<Option<usize>>,
    checks: Vec<Check>,
}

/// Why a guided search gave no match: none at all, or the whole regex must decide.
enum Stop {
    NoMatch,
    Undecided,
}

impl Piece {
    fn new(node: &Node) -> Option<Piece> {
        let rendered = render(node)?;
        Some(Piece {
            regex: ascii::build_plain(&rendered.pattern)?,
            groups: rendered.groups,
            checks: rendered.checks.into_iter().map(Check::new).collect(),
        })
    }
}

fn render(node: &Node) -> Option<Rendered> {
    let mut rendered = Rendered {
        pattern: String::new(),
        // Group 0, the whole match.
        groups: vec![None],
        checks: Vec::new(),
    };
    rendered.node(node, false)?;
    Some(rendered)
}

impl Step {
    fn new(node: &Node) -> Option<Step> {
        let items = match node {
            Node::Concat(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        let (head, branches) = match items.split_last() {
            Some((Node::Alt(branches), head)) => (head, branches.as_slice()),
            _ => (items, &[][..]),
        };
        let head = if head.iter().all(is_empty) {
            None
        } else {
            Some(Piece::new(&Node::Concat(head.to_vec()))?)
        };
        let branches = branches
            .iter()
            .map(|branch| {
                let test = ascii::build_plain(&render(branch)?.pattern)?;
                Some((test, Step::new(branch)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Step { head, branches })
    }

    /// The path's match from `at` (None: the first step, searched unanchored): its start
    /// (None while only empty heads ran) and end, the groups written into `spans`.
    fn search(
        &self,
        text: &str,
        at: Option<usize>,
        spans: &mut Spans,
    ) -> Result<(Option<usize>, usize), Stop> {
        let mut start = None;
        let mut end = at.unwrap_or(0);
        if let Some(head) = &self.head {
            let input = match at {
                None => Input::new(text),
                Some(at) => Input::new(text).range(at..).anchored(Anchored::Yes),
            };
            let mut caps = head.regex.create_captures();
            head.regex.search_captures(&input, &mut caps);
            let Some(found) = caps.get_match() else {
                // Every match of the whole starts with a match of its first head.
                return Err(if at.is_none() {
                    Stop::NoMatch
                } else {
                    Stop::Undecided
                });
            };
            if !head.checks.iter().all(|check| check.holds(text, &caps)) {
                return Err(Stop::Undecided);
            }
            // A piece may hold several copies of a group (an expansion inside a group copies
            // the rest into each alternative): the one that took part sets the span.
            for (index, original) in head.groups.iter().enumerate() {
                if let (Some(original), Some(span)) = (original, caps.get_group(index)) {
                    spans[*original] = Some((span.start, span.end));
                }
            }
            start = Some(found.start());
            end = found.end();
        } else if at.is_none() {
            return Err(Stop::Undecided);
        }
        if self.branches.is_empty() {
            return Ok((start, end));
        }
        let from = Input::new(text).range(end..).anchored(Anchored::Yes);
        let (_, branch) = self
            .branches
            .iter()
            .find(|(test, _)| test.is_match(from.clone()))
            .ok_or(Stop::Undecided)?;
        let (branch_start, branch_end) = branch.search(text, Some(end), spans)?;
        Ok((start.or(branch_start), branch_end))
    }
}

fn is_empty(node: &Node) -> bool {
    matches!(node, Node::Concat(items) if items.iter().all(is_empty))
}

/// The tree of a fancy-regex expression; None for constructs other than conditionals on a
/// group, tempered dots and negative lookaheads of a literal that the regex crate cannot run.
fn convert(expr: &Expr, counter: &mut usize) -> Option<Node> {
    Some(match expr {
        Expr::Concat(items) => Node::Concat(
            items
                .iter()
                .map(|e| convert(e, counter))
                .collect::<Option<_>>()?,
        ),
        Expr::Alt(items) => Node::Alt(
            items
                .iter()
                .map(|e| convert(e, counter))
                .collect::<Option<_>>()?,
        ),
        Expr::Group(inner) => {
            *counter += 1;
            let number = *counter;
            Node::Group(number, Box::new(convert(inner, counter)?))
        }
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => match tempered(child) {
            Some((literal, any)) if *lo == 0 && *hi == usize::MAX => Node::Tempered {
                literal,
                any: any.clone(),
                greedy: *greedy,
            },
            // Groups repeated more than once: the engines differ on an empty last iteration's
            // groups, and a conditional in the body sees the previous iteration's captures.
            _ if *hi > 1 && child.has_descendant_or_self(|e| matches!(e, Expr::Group(_))) => {
                return None
            }
            _ => Node::Repeat {
                child: Box::new(convert(child, counter)?),
                lo: *lo,
                hi: *hi,
                greedy: *greedy,
            },
        },
        Expr::Conditional {
            condition,
            true_branch,
            false_branch,
        } => {
            let Expr::BackrefExistsCondition {
                group,
                relative_recursion_level: None,
            } = **condition
            else {
                return None;
            };
            Node::Cond {
                group,
                yes: Box::new(convert(true_branch, counter)?),
                no: Box::new(convert(false_branch, counter)?),
            }
        }
        Expr::LookAround(inner, LookAround::LookAheadNeg) => Node::NotAhead(literal_of(inner)?),
        leaf if ascii::is_plain(leaf)
            && !leaf.has_descendant_or_self(|e| matches!(e, Expr::Group(_))) =>
        {
            Node::Leaf(leaf.clone())
        }
        _ => return None,
    })
}

/// `(?!literal).` as the body of a repeat: the literal and the dot.
fn tempered(child: &Expr) -> Option<(String, &Expr)> {
    let Expr::Concat(items) = child else {
        return None;
    };
    let [Expr::LookAround(inner, LookAround::LookAheadNeg), any @ Expr::Any { .. }] =
        items.as_slice()
    else {
        return None;
    };
    Some((literal_of(inner)?, any))
}

/// The text a case-sensitive literal expression matches; None for anything else or "".
fn literal_of(expr: &Expr) -> Option<String> {
    let literal = match expr {
        Expr::Literal { val, casei: false } => val.clone(),
        Expr::Concat(parts) => parts
            .iter()
            .map(|p| match p {
                Expr::Literal { val, casei: false } => Some(val.as_str()),
                _ => None,
            })
            .collect::<Option<String>>()?,
        _ => return None,
    };
    (!literal.is_empty()).then_some(literal)
}

/// Condition groups that a conditional in `node` asks about and `known` does not answer.
fn open_conditions(node: &Node, known: &Known, out: &mut Vec<usize>) {
    match node {
        Node::Cond { group, yes, no } => {
            if !known.contains_key(group) {
                out.push(*group);
            }
            open_conditions(yes, known, out);
            open_conditions(no, known, out);
        }
        Node::Concat(items) | Node::Alt(items) => {
            items.iter().for_each(|n| open_conditions(n, known, out));
        }
        Node::Group(_, child) | Node::Repeat { child, .. } => open_conditions(child, known, out),
        Node::Leaf(_) | Node::Tempered { .. } | Node::NotAhead(_) => {}
    }
}

/// Whether `node` sets `group` on every path (Some(true)) or on none (Some(false)); None
/// when that depends on the path.
fn sets_group(node: &Node, group: usize) -> Option<bool> {
    if !contains_group(node, group) {
        return Some(false);
    }
    let always = match node {
        Node::Group(number, child) => *number == group || sets_group(child, group)?,
        Node::Concat(items) => items
            .iter()
            .filter(|n| contains_group(n, group))
            .all(|n| sets_group(n, group) == Some(true)),
        Node::Alt(items) => items.iter().all(|n| sets_group(n, group) == Some(true)),
        Node::Repeat { child, lo, .. } => *lo > 0 && sets_group(child, group) == Some(true),
        Node::Cond { .. } | Node::Leaf(_) | Node::Tempered { .. } | Node::NotAhead(_) => false,
    };
    always.then_some(true)
}

fn contains_group(node: &Node, group: usize) -> bool {
    match node {
        Node::Group(number, child) => *number == group || contains_group(child, group),
        Node::Concat(items) | Node::Alt(items) => items.iter().any(|n| contains_group(n, group)),
        Node::Repeat { child, .. } => contains_group(child, group),
        Node::Cond { yes, no, .. } => contains_group(yes, group) || contains_group(no, group),
        Node::Leaf(_) | Node::Tempered { .. } | Node::NotAhead(_) => false,
    }
}

/// The choices of `node` in the order the backtracker tries them, each with what it sets of
/// `wanted`: `(g)?` (taken or not) and an alternation, possibly inside a group, whose
/// alternatives each set or skip the wanted groups outright. None when `node` is no such
/// choice for any wanted group.
fn choices(node: &Node, wanted: &[usize]) -> Option<Vec<(Node, Known)>> {
    let decided: Vec<usize> = wanted
        .iter()
        .copied()
        .filter(|g| contains_group(node, *g))
        .collect();
    if decided.is_empty() {
        return None;
    }
    let answers = |n: &Node| -> Option<Known> {
        decided
            .iter()
            .map(|g| sets_group(n, *g).map(|set| (*g, set)))
            .collect()
    };
    match node {
        Node::Repeat {
            child,
            lo: 0,
            hi: 1,
            greedy,
        } => {
            let taken = ((**child).clone(), answers(child)?);
            let skipped = (
                Node::Concat(Vec::new()),
                decided.iter().map(|g| (*g, false)).collect(),
            );
            Some(if *greedy {
                vec![taken, skipped]
            } else {
                vec![skipped, taken]
            })
        }
        Node::Alt(alternatives) => alternatives
            .iter()
            .map(|a| Some((a.clone(), answers(a)?)))
            .collect(),
        Node::Group(number, child) => {
            let Node::Alt(alternatives) = &**child else {
                return None;
            };
            alternatives
                .iter()
                .map(|a| {
                    let option = Node::Group(*number, Box::new(a.clone()));
                    let known = answers(&option)?;
                    Some((option, known))
                })
                .collect()
        }
        _ => None,
    }
}

/// `node` with its conditionals resolved: a concatenation is distributed over the first
/// choice that decides a later conditional. `alternatives` counts the copies made.
fn expand(node: &Node, known: &Known, alternatives: &mut usize) -> Option<Node> {
    Some(match node {
        Node::Concat(items) => Node::Concat(expand_items(items, known, alternatives)?),
        Node::Alt(items) => Node::Alt(
            items
                .iter()
                .map(|n| expand(n, known, alternatives))
                .collect::<Option<_>>()?,
        ),
        Node::Group(number, child) => {
            Node::Group(*number, Box::new(expand(child, known, alternatives)?))
        }
        Node::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => Node::Repeat {
            child: Box::new(expand(child, known, alternatives)?),
            lo: *lo,
            hi: *hi,
            greedy: *greedy,
        },
        Node::Cond { group, yes, no } => {
            let branch = if *known.get(group)? { yes } else { no };
            expand(branch, known, alternatives)?
        }
        Node::Leaf(_) | Node::Tempered { .. } | Node::NotAhead(_) => node.clone(),
    })
}

fn expand_items(items: &[Node], known: &Known, alternatives: &mut usize) -> Option<Vec<Node>> {
    let mut known = known.clone();
    let mut done = Vec::with_capacity(items.len());
    for (at, item) in items.iter().enumerate() {
        let mut wanted = Vec::new();
        for later in &items[at + 1..] {
            open_conditions(later, &known, &mut wanted);
        }
        wanted.sort_unstable();
        wanted.dedup();
        if let Some(options) = choices(item, &wanted) {
            *alternatives += options.len() - 1;
            if *alternatives > MAX_ALTERNATIVES {
                return None;
            }
            let mut branches = Vec::with_capacity(options.len());
            for (option, sets) in options {
                // The choice's own conditionals run before its groups close.
                let mut branch = vec![expand(&option, &known, alternatives)?];
                let mut inner = known.clone();
                inner.extend(sets);
                branch.extend(expand_items(&items[at + 1..], &inner, alternatives)?);
                branches.push(Node::Concat(branch));
            }
            done.push(Node::Alt(branches));
            return Some(done);
        }
        done.push(expand(item, &known, alternatives)?);
        // A group the item always sets answers later conditionals too.
        for group in wanted {
            if sets_group(item, group) == Some(true) {
                known.insert(group, true);
            }
        }
    }
    Some(done)
}

/// A resolved tree as regex crate syntax, with what each of its groups stands for.
struct Rendered {
    pattern: String,
    groups: Vec<Option<usize>>,
    /// Each check's group, literal and kind.
    checks: Vec<(usize, String, CheckKind)>,
}

impl Rendered {
    /// Renders `node`; `repeated` when inside a repeat that may run more than once (a
    /// tempered dot or lookahead there would only show its last iteration's group).
    fn node(&mut self, node: &Node, repeated: bool) -> Option<()> {
        match node {
            Node::Leaf(expr) => {
                self.pattern.push_str("(?:");
                expr.to_str(&mut self.pattern, 0);
                self.pattern.push(')');
            }
            Node::Concat(items) => {
                self.pattern.push_str("(?:");
                for item in items {
                    self.node(item, repeated)?;
                }
                self.pattern.push(')');
            }
            Node::Alt(items) => {
                self.pattern.push_str("(?:");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.pattern.push('|');
                    }
                    self.node(item, repeated)?;
                }
                self.pattern.push(')');
            }
            Node::Group(number, child) => {
                self.groups.push(Some(*number));
                self.pattern.push('(');
                self.node(child, repeated)?;
                self.pattern.push(')');
            }
            Node::Repeat {
                child,
                lo,
                hi,
                greedy,
            } => {
                self.pattern.push_str("(?:");
                self.node(child, repeated || *hi > 1)?;
                self.pattern.push(')');
                match *hi {
                    usize::MAX => self.pattern.push_str(&format!("{{{lo},}}")),
                    hi => self.pattern.push_str(&format!("{{{lo},{hi}}}")),
                }
                if !greedy {
                    self.pattern.push('?');
                }
            }
            Node::Tempered {
                literal,
                any,
                greedy,
            } => {
                self.open_checked_group(literal, CheckKind::TemperedDot, repeated)?;
                self.pattern.push_str("(?:");
                any.to_str(&mut self.pattern, 0);
                self.pattern.push_str(if *greedy { ")*)" } else { ")*?)" });
            }
            Node::NotAhead(literal) => {
                self.open_checked_group(literal, CheckKind::Lookahead, repeated)?;
                self.pattern.push(')');
            }
            Node::Cond { .. } => return None,
        }
        Some(())
    }

    /// Opens the group a check of `literal` is made on; None inside a repeat that may run
    /// more than once, where the group would only show the last iteration.
    fn open_checked_group(&mut self, literal: &str, kind: CheckKind, repeated: bool) -> Option<()> {
        if repeated {
            return None;
        }
        self.checks
            .push((self.groups.len(), literal.to_string(), kind));
        self.groups.push(None);
        self.pattern.push('(');
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::regex::{Anchors, FilterRegex};

    fn expanded(pattern: &str) -> Expanded {
        let regex = FilterRegex::new(pattern, "warn", Anchors::SingleLineBuffer).unwrap();
        let groups = super::super::regex::compile(&regex.translated, true)
            .unwrap()
            .captures_len();
        Expanded::new(&regex.translated, groups).expect("expands")
    }

    /// The whole relaxed regex's answer, without the guided steps.
    fn unguided(expanded: &Expanded, text: &str) -> Option<Option<Spans>> {
        let whole = Expanded {
            guided: None,
            ..expanded.clone()
        };
        whole.search(text)
    }

    #[test]
    fn guided_steps_decide_sshd_lines_as_the_whole_regex() {
        let failed = expanded(
            r"^Failed (?:(?P<pk>publickey)|\S+) for (?P<inv>invalid user )?(?P<user>(?P<plain>\S+)|(?(inv)(?:(?! from ).)*?|[^:]+)) from <HOST>(?: port \d+)?(?: ssh\d*)?(?(plain): |(?:(?! from ).)*$)",
        );
        let step = failed.guided.as_ref().expect("guided");
        for text in [
            "Failed password for root from 192.0.2.1 port 22 ssh2\n",
            "Failed password for invalid user bob from 2001:db8::1 port 22 ssh2\n",
            "Failed password for root from 192.0.2.1 port 22 ssh2: RSA x\n",
            "Failed publickey for root from 192.0.2.1 port 22 ssh2\n",
            "Failed password for user from host.example.org\n",
        ] {
            let mut spans = vec![None; failed.original_groups];
            assert!(
                step.search(text, None, &mut spans).is_ok(),
                "decided on {text:?}"
            );
            assert_eq!(failed.search(text), unguided(&failed, text), "{text:?}");
        }
        // The relaxed path's user fails its tempered check: the backtracking VM decides.
        let text = "Failed password for invalid user a from b from 192.0.2.1 port 22 ssh2\n";
        let mut spans = vec![None; failed.original_groups];
        assert!(matches!(
            step.search(text, None, &mut spans),
            Err(Stop::Undecided)
        ));
        assert_eq!(failed.search(text), None);
        assert!(matches!(
            step.search("Accepted password for root\n", None, &mut spans),
            Err(Stop::NoMatch)
        ));
    }

    #[test]
    fn guided_steps_leave_other_head_parses_to_the_whole_regex() {
        // The head's first parse takes both a's; only a shorter one lets a branch match.
        let regex = expanded(r"^(?P<h>a+)(?P<c>a)?(?(c)b|c)$");
        let step = regex.guided.as_ref().expect("guided");
        let mut spans = vec![None; regex.original_groups];
        assert!(matches!(
            step.search("aab\n", None, &mut spans),
            Err(Stop::Undecided)
        ));
        let found = regex.search("aab\n").flatten().expect("match");
        assert_eq!(found[1], Some((0, 1)));
        assert_eq!(found[2], Some((1, 2)));
        assert_eq!(regex.search("aac\n"), unguided(&regex, "aac\n"));
        assert_eq!(regex.search("b\n"), Some(None));
    }
}
