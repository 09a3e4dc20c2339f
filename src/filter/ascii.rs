//! ASCII-first regex builds: most log lines are ASCII, and on ASCII text a regex whose classes
//! (`\w`, `\d`, `\s`, `.`, case folding) are limited to ASCII matches exactly what the Unicode
//! build matches, with automata many times smaller and faster to build. The ASCII build is
//! made at load (or, for a regex only `checked` there or trusted `unbuilt`, on first use);
//! the Unicode build only when the first non-ASCII text arrives.

use std::sync::OnceLock;

use fancy_regex::{Assertion, Expr};
use regex_automata::meta;
use regex_automata::util::syntax;

/// Builds a regex from a pattern, limited to ASCII (`true`) or with full Unicode classes. An
/// ASCII build must fail for a pattern that is not `ascii_safe`.
pub type Build<P, R> = fn(&P, bool) -> Result<R, String>;

/// NFA size allowed to a Unicode build (made on demand, so only for logs that need it); the
/// regex crates' default of 10 MB refuses patterns like `\w{1,400}` that Python accepts.
pub const UNICODE_SIZE_LIMIT: usize = 256 << 20;

/// Whether a pattern's ASCII build matches exactly what its Unicode build matches on ASCII
/// text. Only pure-ASCII pattern text qualifies, and no escape that names a non-ASCII
/// character or a Unicode property: with case folding, `(?i)\u{212A}` (Kelvin sign) or `ſ`
/// match ASCII letters in the Unicode build only.
pub fn ascii_safe(pattern: &str) -> bool {
    if !pattern.is_ascii() {
        return false;
    }
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes[i + 1] {
                b'u' | b'U' | b'N' | b'p' | b'P' => return false,
                b'x' if bytes.get(i + 2).is_none_or(|b| !matches!(b, b'0'..=b'7')) => return false,
                _ => {}
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    true
}

/// Whether a fancy-regex expression uses only what the regex crate runs as it is (no
/// lookaround, backreference, atomic group or conditional, only the common assertions) and
/// repeats no capture group except with `?`: such a part can be rendered and searched by
/// regex-automata with the same groups. (The engines differ on the groups of repeated
/// iterations, e.g. the empty last one of `(a?)*`, and fancy-regex rewrites some nested
/// repeats of groups.)
pub fn is_plain(expr: &Expr) -> bool {
    let plain = |e: &Expr| match e {
        Expr::Assertion(a) => matches!(
            a,
            Assertion::StartText
                | Assertion::EndText
                | Assertion::StartLine { .. }
                | Assertion::EndLine { .. }
                | Assertion::WordBoundary
                | Assertion::NotWordBoundary
        ),
        Expr::Repeat { child, lo, hi, .. } => {
            (*lo == 0 && *hi == 1) || !child.has_descendant_or_self(|c| matches!(c, Expr::Group(_)))
        }
        Expr::Empty
        | Expr::Any { .. }
        | Expr::Literal { .. }
        | Expr::Concat(_)
        | Expr::Alt(_)
        | Expr::Group(_)
        | Expr::Delegate { .. } => true,
        _ => false,
    };
    plain(expr) && !expr.has_descendant(|e| !plain(e))
}

/// The parse tree of `pattern` when fancy-regex's optimizer would leave it as it is. Its
/// rewrites of ambiguous repeats (`x*(g)?x+` and the like) can change groups, so a tree it
/// rewrites is not handed to regex-automata as parsed: the whole regex keeps deciding.
/// (`internal::optimize` is fancy-regex's own pass, hence the exact version in Cargo.toml.)
pub fn unoptimized_tree(pattern: &str) -> Option<Expr> {
    let tree = Expr::parse_tree(pattern).ok()?;
    let mut optimized = tree.clone();
    let options = fancy_regex::internal::OptimizeOptions {
        find_not_empty: true,
    };
    fancy_regex::internal::optimize(&mut optimized, options);
    (optimized.expr == tree.expr).then_some(tree.expr)
}

/// A plain expression (see [`is_plain`]) as regex crate syntax; groups become unnamed and
/// keep their numbers.
pub fn render(expr: &Expr) -> String {
    let mut out = String::new();
    expr.to_str(&mut out, 0);
    out
}

/// The ASCII build of a rendered plain pattern, with captures, leftmost-first; None when it
/// is not `ascii_safe` or does not compile.
pub fn build_plain(pattern: &str) -> Option<meta::Regex> {
    if !ascii_safe(pattern) {
        return None;
    }
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(meta::Config::new().utf8_empty(false))
        .build(pattern)
        .ok()
}

/// A regex in its ASCII build and (on demand) its Unicode build.
#[derive(Debug)]
pub struct AsciiFirst<P: ?Sized, R> {
    pattern: Box<P>,
    build: Build<P, R>,
    /// False when the pattern has no ASCII form (e.g. case-insensitive non-ASCII literals).
    has_ascii: bool,
    /// Built at load, or (`checked`) on first use.
    ascii: OnceLock<Option<R>>,
    unicode: OnceLock<Option<R>>,
}

impl<P: ?Sized, R: Clone> Clone for AsciiFirst<P, R>
where
    Box<P>: Clone,
{
    fn clone(&self) -> Self {
        AsciiFirst {
            pattern: self.pattern.clone(),
            build: self.build,
            has_ascii: self.has_ascii,
            ascii: self.ascii.clone(),
            unicode: self.unicode.clone(),
        }
    }
}

impl<P: ?Sized, R> AsciiFirst<P, R> {
    /// Build the ASCII form, or the Unicode form at once when there is no ASCII form; the
    /// error is the Unicode build's.
    pub fn new(pattern: Box<P>, build: Build<P, R>) -> Result<Self, String> {
        let (has_ascii, built) = Self::first_build(&pattern, build)?;
        let (ascii, unicode) = (OnceLock::new(), OnceLock::new());
        let _ = if has_ascii { &ascii } else { &unicode }.set(Some(built));
        Ok(AsciiFirst {
            pattern,
            build,
            has_ascii,
            ascii,
            unicode,
        })
    }

    /// As `new`, but the build is only checked (and shown to `inspect`), then dropped and
    /// made again on first use: a filter's regexes that its prefilter never lets a line
    /// reach cost no memory.
    pub fn checked(
        pattern: Box<P>,
        build: Build<P, R>,
        inspect: impl FnOnce(&R),
    ) -> Result<Self, String> {
        let (has_ascii, built) = Self::first_build(&pattern, build)?;
        inspect(&built);
        Ok(AsciiFirst {
            pattern,
            build,
            has_ascii,
            ascii: OnceLock::new(),
            unicode: OnceLock::new(),
        })
    }

    /// Nothing built: both builds on first use (`has_ascii` as [`ascii_safe`] tells). A
    /// failed build is not retried; with neither build, the regex has no answer (`None`).
    pub fn unbuilt(pattern: Box<P>, build: Build<P, R>, has_ascii: bool) -> Self {
        AsciiFirst {
            pattern,
            build,
            has_ascii,
            ascii: OnceLock::new(),
            unicode: OnceLock::new(),
        }
    }

    /// The ASCII build, or the Unicode build when there is no ASCII form (its error).
    fn first_build(pattern: &P, build: Build<P, R>) -> Result<(bool, R), String> {
        match build(pattern, true) {
            Ok(ascii) => Ok((true, ascii)),
            Err(_) => Ok((false, build(pattern, false)?)),
        }
    }

    /// The build to run on `text`. None when `text` is not ASCII and the Unicode build fails
    /// (a size limit the ASCII build stayed under): the ASCII build would not match what the
    /// Unicode one matches there, so the caller treats this as "no answer".
    pub fn for_text(&self, text: &str) -> Option<&R> {
        self.for_ascii(text.is_ascii())
    }

    /// [`AsciiFirst::for_text`] for a caller that already knows whether its text is ASCII.
    pub fn for_ascii(&self, text_is_ascii: bool) -> Option<&R> {
        if text_is_ascii && self.has_ascii {
            let ascii = self
                .ascii
                .get_or_init(|| (self.build)(&self.pattern, true).ok());
            if let Some(ascii) = ascii {
                return Some(ascii);
            }
        }
        self.unicode
            .get_or_init(|| (self.build)(&self.pattern, false).ok())
            .as_ref()
    }

    /// The build ASCII text gets (for properties both share, like group names).
    pub fn any(&self) -> Option<&R> {
        self.for_ascii(true)
    }

    /// Whether a build was made (or tried).
    #[cfg(test)]
    pub fn built(&self) -> bool {
        self.ascii.get().is_some() || self.unicode.get().is_some()
    }

    pub fn pattern(&self) -> &P {
        &self.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pattern: &str, ascii: bool) -> Result<fancy_regex::Regex, String> {
        if ascii && !ascii_safe(pattern) {
            return Err("not ASCII-safe".into());
        }
        let mut builder = fancy_regex::RegexBuilder::new(pattern);
        if ascii {
            builder.bytes_mode(fancy_regex::BytesMode::Ascii);
        }
        builder.build().map_err(|e| e.to_string())
    }

    #[test]
    fn unicode_build_only_for_non_ascii_text() {
        let re = AsciiFirst::new(r"^\w+ \d+$".into(), build).expect("compiles");
        let ascii = re.for_text("abc 12").expect("ascii build");
        assert!(ascii.is_match("abc 12").unwrap_or(false));
        assert!(re.unicode.get().is_none());
        let unicode = re.for_text("äöü ٣").expect("unicode build");
        assert!(unicode.is_match("äöü ٣").unwrap_or(false));
        assert!(re.unicode.get().is_some());
    }

    #[test]
    fn ascii_and_unicode_builds_agree_on_ascii_text() {
        let patterns = [
            r"\w+", r"\s\S", r"(?i)k", r"\bx\b", r"[^\[]+", r".", r"\D\W",
        ];
        let texts = ["ab_1", " x", "K", "a x b", "q[", "\t", "a-", "\u{1c}"];
        for p in patterns {
            let re = AsciiFirst::new(p.into(), build).expect("compiles");
            let unicode = build(p, false).expect("compiles");
            for t in texts {
                let a = re
                    .for_text(t)
                    .expect("build")
                    .find(t)
                    .ok()
                    .flatten()
                    .map(|m| m.range());
                let u = unicode.find(t).ok().flatten().map(|m| m.range());
                assert_eq!(a, u, "pattern {p:?} on {t:?}");
            }
        }
    }

    #[test]
    fn no_ascii_form_means_unicode_at_once() {
        let re = AsciiFirst::new("(?i)ä".into(), build).expect("compiles");
        assert!(re.unicode.get().is_some() || re.ascii.get().is_some());
        assert!(re
            .for_text("Ä")
            .is_some_and(|r| r.is_match("Ä").unwrap_or(false)));
        assert!(AsciiFirst::new("(".into(), build).is_err());
    }

    #[test]
    fn checked_builds_on_first_use() {
        let mut groups = 0;
        let re = AsciiFirst::checked(r"^(\w+) (\d+)$".into(), build, |r| {
            groups = r.captures_len()
        })
        .expect("compiles");
        assert_eq!(groups, 3);
        assert!(re.ascii.get().is_none() && re.unicode.get().is_none());
        assert!(re
            .for_text("abc 12")
            .is_some_and(|r| r.is_match("abc 12").unwrap_or(false)));
        assert!(re.ascii.get().is_some() && re.unicode.get().is_none());
        assert!(re
            .for_text("äöü ٣")
            .is_some_and(|r| r.is_match("äöü ٣").unwrap_or(false)));
        assert!(re.unicode.get().is_some());
        // A pattern that does not compile is refused at once, not on first use.
        assert!(AsciiFirst::checked("(".into(), build, |_| {}).is_err());
    }
}
