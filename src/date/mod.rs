//! Date detection: fail2ban's templates, custom `datepattern` values, the stateful template
//! choice of `DateDetector.matchTime` and the conversion of the matched text to a time.

mod convert;
mod fast;
mod plan;
mod template;
mod zone;

#[cfg(test)]
mod tests;

use std::fmt;

use chrono::Datelike;
use fancy_regex::{Captures, RegexInput};

use convert::{Context, Converted};
pub use template::release_regexes;
use template::{Kind, Template};
pub use zone::LocalZone;

/// Errors building a detector.
#[derive(Debug, Clone, PartialEq)]
pub enum DateError {
    /// A `datepattern` entry does not compile.
    Pattern(String),
    /// Two templates with the same name.
    Duplicate(String),
    /// Unknown or unsupported `logtimezone` / POSIX TZ rule.
    Zone(String),
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateError::Pattern(msg) => write!(f, "invalid date pattern: {msg}"),
            DateError::Duplicate(name) => {
                write!(f, "There is already a template with name {name}")
            }
            DateError::Zone(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for DateError {}

/// A date found in a line.
#[derive(Debug, Clone, PartialEq)]
pub struct DateMatch {
    /// Byte offsets in the line of the text to cut out (template group 1); may be empty.
    pub start: usize,
    pub end: usize,
    /// None when the text matched but did not convert (fail2ban spec 6.2), and always for
    /// an empty cut (`{NONE}`, `^I\(()**`): fail2ban does not convert those but uses the
    /// last date or now (spec 6.3).
    pub time: Option<f64>,
    /// The time came from an explicit zone (fail2ban returns an integer then).
    pub zoned: bool,
    /// Set when fail2ban would have raised an exception out of the detector (unknown zone
    /// abbreviation, month without day); `time` is None then.
    pub error: Option<String>,
}

/// Per-detector state of one template (`DateDetectorTemplate`).
#[derive(Debug, Clone)]
struct Entry {
    template: Template,
    hits: u64,
    last_used: f64,
    distance: usize,
    /// Matches of the template's regex whether chosen or not (`DateTemplate.hits`).
    regex_hits: u64,
}

impl Entry {
    fn new(template: Template) -> Entry {
        Entry {
            template,
            hits: 0,
            last_used: 0.0,
            distance: 0x7fff_ffff,
            regex_hits: 0,
        }
    }

    fn weight(&self) -> f64 {
        self.hits as f64 * self.template.weight / (self.distance.max(1) as f64)
    }
}

/// Position of the last match boundary with its neighbouring characters.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    pos: usize,
    before: Option<char>,
    at: Option<char>,
}

/// Seconds a template must be more recently used than another to overtake it.
const UNUSED_TIME: f64 = 300.0;

/// fail2ban's date detector: template list (reordered as it learns), hit counts and the
/// position of the last date.
#[derive(Debug, Clone)]
pub struct DateDetector {
    entries: Vec<Entry>,
    last_idx: Option<usize>,
    last_pos: Boundary,
    last_end: Boundary,
    first_unused: usize,
    default_offset: Option<i64>,
    zone: LocalZone,
    /// Cache of `now_local`: (now, local wall time).
    now_local: Option<(f64, chrono::NaiveDateTime)>,
    /// The last field conversion: consecutive lines often carry the same date.
    last_conversion: Option<Conversion>,
    /// The key of the conversion at hand (kept to reuse its allocation).
    scratch_key: Vec<u8>,
    /// The last match of a template's fast form (see `fast`).
    fast_memo: fast::Memo,
    /// The last date found from a fast-form match (see `find`).
    last_found: Option<LastFound>,
    /// The last converted date, when the next lines of its minute can take it (see
    /// `next_second`).
    minute_date: Option<MinuteDate>,
}

/// A date the fast form of an anchored template found at the start of a line, converted as
/// the start of its minute plus its seconds (see `Conversion::minute_start`). It is the
/// latest conversion: the detector drops it whenever it converts anything else.
#[derive(Debug, Clone)]
struct MinuteDate {
    /// The template's index (the detector's `last_idx`) and the `now` of the conversion.
    idx: usize,
    now: f64,
    /// The line's bytes up to the end of the match and the byte after it.
    read: Vec<u8>,
    /// The match's group spans; where the seconds are; the end of the match.
    spans: fast::Spans,
    seconds: (usize, usize),
    end: usize,
    /// The template's DFA walk over the bytes before the seconds, which the next lines of
    /// the minute share; None: they are matched from the start.
    resume: Option<fast::Resume>,
    minute_start: f64,
    found: DateMatch,
}

/// A date found from a fast-form match: the same memo fill at the same position with the
/// same `now` converts to the same date.
#[derive(Debug, Clone)]
struct LastFound {
    fill: u64,
    at: usize,
    now: f64,
    found: DateMatch,
}

/// A field conversion with everything its result depends on: the fields, their captured
/// texts (`key`) and `now`.
#[derive(Debug, Clone)]
struct Conversion {
    fields: Vec<(template::Field, usize)>,
    now: f64,
    key: Vec<u8>,
    result: Converted,
    /// For a key without the seconds (see `minute_seconds`): the time of second 0 of that
    /// minute, when every second of it converts to it plus the seconds.
    minute_start: Option<(f64, bool)>,
}

/// The seconds of a date whose time may be the start of its minute plus the seconds: the
/// template captured a month, a day and seconds 0..=59 (a date taken from "now" could flip
/// within the minute), with whether it captured a year. None otherwise.
fn minute_seconds(fields: &[(template::Field, usize)], caps: &Groups<'_>) -> Option<(i64, bool)> {
    use template::Field;
    let captured = |wanted: &[Field]| {
        fields
            .iter()
            .any(|&(f, i)| wanted.contains(&f) && caps.text(i).is_some())
    };
    let dated =
        captured(&[Field::Month, Field::MonthAbbr, Field::MonthName]) && captured(&[Field::Day]);
    let &(_, group) = fields.iter().find(|(f, _)| *f == Field::Second)?;
    let seconds = convert::int(caps.text(group)?)?;
    (dated && (0..60).contains(&seconds)).then(|| (seconds, captured(&[Field::Year, Field::Year2])))
}

/// The captured texts a conversion depends on: those of `fields`, without the seconds when
/// `skip_seconds`.
fn key_parts<'a>(
    fields: &'a [(template::Field, usize)],
    caps: &'a Groups<'_>,
    skip_seconds: bool,
) -> impl Iterator<Item = Option<&'a str>> + 'a {
    fields
        .iter()
        .filter(move |&&(field, _)| !(skip_seconds && field == template::Field::Second))
        .map(|&(_, i)| caps.text(i))
}

/// `key` := the [`key_parts`], each length-prefixed (a missing group has the length
/// `usize::MAX`), so that different captures never give the same key, after a byte
/// marking `skip_seconds`.
fn conversion_key(
    key: &mut Vec<u8>,
    fields: &[(template::Field, usize)],
    caps: &Groups<'_>,
    skip_seconds: bool,
) {
    key.clear();
    key.push(u8::from(skip_seconds));
    for part in key_parts(fields, caps, skip_seconds) {
        match part {
            Some(g) => {
                key.extend_from_slice(&g.len().to_le_bytes());
                key.extend_from_slice(g.as_bytes());
            }
            None => key.extend_from_slice(&usize::MAX.to_le_bytes()),
        }
    }
}

/// Whether `key` is what [`conversion_key`] would build for these captures (compared in
/// place: most lines repeat the previous line's date).
fn key_is(
    key: &[u8],
    fields: &[(template::Field, usize)],
    caps: &Groups<'_>,
    skip_seconds: bool,
) -> bool {
    let Some((&flag, mut rest)) = key.split_first() else {
        return false;
    };
    if flag != u8::from(skip_seconds) {
        return false;
    }
    for part in key_parts(fields, caps, skip_seconds) {
        let Some((len, tail)) = rest.split_first_chunk::<{ std::mem::size_of::<usize>() }>() else {
            return false;
        };
        let len = usize::from_le_bytes(*len);
        rest = match part {
            Some(g) if g.len() == len && tail.starts_with(g.as_bytes()) => &tail[len..],
            None if len == usize::MAX => tail,
            _ => return false,
        };
    }
    rest.is_empty()
}

fn char_before(line: &str, pos: usize) -> Option<char> {
    line.get(..pos)?.chars().next_back()
}

fn char_at(line: &str, pos: usize) -> Option<char> {
    line.get(pos..)?.chars().next()
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

/// A candidate match: template index, whole-match span and captures.
struct Candidate<'t> {
    idx: usize,
    start: usize,
    end: usize,
    caps: Groups<'t>,
}

/// What `repeat` settled without `match_time`.
enum Quick<'t> {
    /// The previous line's date.
    Same(DateMatch),
    /// The last template's match, chosen.
    Matched(Candidate<'t>),
}

/// A match's groups, from the exact regex or from the template's fast form.
enum Groups<'t> {
    Exact(Captures<'t, str>),
    Fast(&'t str, fast::Spans),
}

impl<'t> Groups<'t> {
    fn span(&self, group: usize) -> Option<(usize, usize)> {
        match self {
            Groups::Exact(caps) => caps.get(group).map(|g| (g.start(), g.end())),
            Groups::Fast(_, spans) => spans.get(group),
        }
    }

    fn text(&self, group: usize) -> Option<&'t str> {
        match self {
            Groups::Exact(caps) => caps.get(group).map(|g| g.as_str()),
            Groups::Fast(text, spans) => spans.get(group).and_then(|(s, e)| text.get(s..e)),
        }
    }
}

impl DateDetector {
    /// `datepattern` = the filter/jail option value (may be multi-line) or None for the
    /// defaults; `logtimezone` = the option value or None.
    pub fn new(
        datepattern: Option<&str>,
        logtimezone: Option<&str>,
        zone: LocalZone,
    ) -> Result<DateDetector, DateError> {
        let now_year = chrono::Local::now().year();
        let default_offset = match logtimezone {
            None => None,
            Some(tz) => Some(convert::zone_offset_minutes(tz).map_err(|e| match e {
                convert::ZoneProblem::Unsupported => {
                    DateError::Zone(format!("Unknown or unsupported time zone: {tz:?}"))
                }
                convert::ZoneProblem::UnknownAbbreviation(a) => {
                    DateError::Zone(format!("Unknown time zone abbreviation: {a:?}"))
                }
            })?),
        };
        let mut detector = DateDetector {
            entries: Vec::new(),
            last_idx: None,
            last_pos: Boundary {
                pos: 1,
                before: None,
                at: None,
            },
            last_end: Boundary {
                pos: 0x7fff_ffff,
                before: None,
                at: None,
            },
            first_unused: 0,
            default_offset,
            zone,
            now_local: None,
            last_conversion: None,
            scratch_key: Vec::new(),
            fast_memo: fast::Memo::default(),
            last_found: None,
            minute_date: None,
        };
        for entry in datepattern.unwrap_or("").lines() {
            let entry = entry.trim();
            if !entry.is_empty() {
                detector.append_entry(entry, now_year)?;
            }
        }
        // `{DEFAULT}` or no pattern: fail2ban adds all defaults lazily when the list is empty.
        if detector.entries.is_empty() {
            for t in template::default_templates(now_year)? {
                detector.push(t, false)?;
            }
        }
        Ok(detector)
    }

    fn push(&mut self, template: Template, ignore_duplicate: bool) -> Result<(), DateError> {
        if self
            .entries
            .iter()
            .any(|e| e.template.name == template.name)
        {
            if ignore_duplicate {
                return Ok(());
            }
            return Err(DateError::Duplicate(template.name));
        }
        self.entries.push(Entry::new(template));
        Ok(())
    }

    /// `DateDetector.appendTemplate` for one line of `datepattern`.
    fn append_entry(&mut self, entry: &str, now_year: i32) -> Result<(), DateError> {
        let key = if entry.contains('%') {
            entry.to_string()
        } else {
            entry.to_uppercase()
        };
        match key.as_str() {
            "{DEFAULT}" => Ok(()),
            "{^LN-BEG}" => {
                let ignore = !self.entries.is_empty();
                for t in template::default_templates(now_year)? {
                    if t.flags & template::LINE_BEGIN != 0 {
                        self.push(t, ignore)?;
                    }
                }
                Ok(())
            }
            _ if template::has_date_placeholder(entry) => {
                let ignore = !self.entries.is_empty();
                for t in template::date_placeholder_templates(entry, now_year)? {
                    self.push(t, ignore)?;
                }
                Ok(())
            }
            "{NONE}" => {
                let t = template::none_template(now_year)?;
                self.push(t, false)
            }
            _ => {
                let t = template::template_for(entry, now_year)?;
                self.push(t, false)
            }
        }
    }

    pub fn zone(&self) -> &LocalZone {
        &self.zone
    }

    /// Templates with their hit counts, in the detector's current order.
    pub fn template_hits(&self) -> Vec<(String, u64)> {
        self.entries
            .iter()
            .map(|e| (e.template.name.clone(), e.hits))
            .collect()
    }

    /// Search with template `idx` in `line[pos..endpos]` (lookbehind sees before `pos`).
    fn search<'t>(
        &mut self,
        idx: usize,
        line: &'t str,
        window: Option<(usize, usize)>,
    ) -> Option<Candidate<'t>> {
        let entry = &mut self.entries[idx];
        let template = &entry.template;
        let (pos, endpos) = window.unwrap_or((0, line.len()));
        let endpos = endpos.min(line.len());
        if pos > endpos || !line.is_char_boundary(pos) || !line.is_char_boundary(endpos) {
            return None;
        }
        let text = &line[..endpos];
        let ascii = text.is_ascii();
        let fast = if ascii { template.fast() } else { None };
        // The backtracking regex is built on first use (`AsciiFirst::checked` or `unbuilt`):
        // not at all while the fast form decides. On ASCII text it always exists.
        let regex = || template.regex.for_ascii(ascii);
        if fast.is_none() {
            regex()?;
        }
        let memo = &mut self.fast_memo;
        // The template's match anchored at `at`: its fast form decides when it can. A regex
        // runtime error (backtrack limit on hostile input) counts as no match.
        let mut anchored_at = |at: usize| -> Option<Groups<'t>> {
            if let Some(fast) = fast {
                match fast.captures_at(text, at, memo) {
                    fast::Found::NoMatch => return None,
                    fast::Found::Match(spans) => return Some(Groups::Fast(text, spans)),
                    fast::Found::Unsure => {}
                }
            }
            let exact = regex()?.captures_input(RegexInput::new(text).from_pos(at).anchored(true));
            exact.ok().flatten().map(Groups::Exact)
        };
        let caps = if template.start_anchored {
            if pos > 0 {
                return None;
            }
            anchored_at(0)?
        } else if let Some(prefilter) = template.prefilter().and_then(|p| p.for_text(text)) {
            // Try the backtracking regex only where the linear prefilter can start a match,
            // anchored there: same leftmost result, no quadratic scan of long lines.
            let mut from = pos;
            loop {
                let candidate = prefilter
                    .find(regex_automata::Input::new(text).range(from..))?
                    .start();
                if let Some(caps) = anchored_at(candidate) {
                    break caps;
                }
                from = candidate + text[candidate..].chars().next().map_or(1, char::len_utf8);
                if from > text.len() {
                    return None;
                }
            }
        } else {
            Groups::Exact(regex()?.captures_from_pos(text, pos).ok().flatten()?)
        };
        let (start, end) = caps.span(0)?;
        entry.regex_hits += 1;
        Some(Candidate {
            idx,
            start,
            end,
            caps,
        })
    }

    /// `DateDetector.matchTime`: choose the template for `line` and update the statistics.
    fn match_time<'t>(&mut self, line: &'t str, now: f64) -> Option<Candidate<'t>> {
        let count = self.entries.len();
        let mut reserve: Option<Candidate<'t>> = None;
        let mut skip = None;
        let mut chosen = None;
        if let Some(i) = self.last_idx.filter(|&i| i < count) {
            let found = if self.entries[i].template.anchored() {
                skip = Some(i);
                self.search(i, line, None)
            } else {
                let (d, e) = (self.last_pos.pos, self.last_end.pos);
                let begin_ok = char_before(line, d) == self.last_pos.before
                    || (char_at(line, d) == self.last_pos.at && !is_alnum(self.last_pos.at));
                let end_ok = char_at(line, e) == self.last_end.at
                    || (char_before(line, e) == self.last_end.before
                        && !is_alnum(self.last_end.before));
                if begin_ok && end_ok {
                    self.search(i, line, Some((d, e)))
                } else {
                    skip = Some(i);
                    self.search(i, line, None)
                }
            };
            if let Some(m) = found {
                if count == 1
                    || self.entries[i].template.anchored()
                    || (m.start == self.last_pos.pos && m.end == self.last_end.pos)
                {
                    chosen = Some(m);
                } else {
                    reserve = Some(m);
                }
            }
        }
        if chosen.is_none() {
            for i in 0..count {
                if skip == Some(i) {
                    continue;
                }
                let Some(m) = self.search(i, line, None) else {
                    continue;
                };
                let entry = &self.entries[i];
                if i + 1 >= count
                    || entry.template.anchored()
                    || (m.start == 0 && entry.hits > 0 && self.entries[i + 1].regex_hits == 0)
                {
                    chosen = Some(m);
                    break;
                }
                if m.start > entry.distance || m.start > self.last_pos.pos {
                    if reserve.as_ref().is_none_or(|r| m.start < r.start) {
                        reserve = Some(m);
                    }
                    continue;
                }
                chosen = Some(m);
                break;
            }
        }
        let chosen = chosen.or(reserve)?;
        self.record_choice(chosen.idx, line, chosen.start, chosen.end, now);
        Some(chosen)
    }

    /// The statistics and positions `matchTime` keeps of the template `i` chosen for `line`
    /// with the match `start..end`.
    fn record_choice(&mut self, i: usize, line: &str, start: usize, end: usize, now: f64) {
        let entry = &mut self.entries[i];
        entry.hits += 1;
        entry.last_used = now;
        entry.distance = start;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = Boundary {
            pos: start,
            before: char_before(line, start),
            at: char_at(line, start),
        };
        self.last_end = Boundary {
            pos: end,
            before: char_before(line, end),
            at: char_at(line, end),
        };
        let mut final_idx = i;
        if i != 0 && Some(i) != self.last_idx {
            final_idx = self.reorder(i);
        }
        self.last_idx = Some(final_idx);
    }

    /// `match_time` for a line whose last template is anchored at the line start, without
    /// its general search: that template alone is searched, by its fast form, and when it
    /// matches it is chosen with the same bookkeeping. A line that repeats the bytes which
    /// decided the previous line's date (a burst of lines within one second) gets that date
    /// (`Quick::Same`): its fast form recalls the same memo fill, and `find` would reuse the
    /// same conversion. None: `match_time` decides.
    fn repeat<'t>(&mut self, line: &'t str, now: f64) -> Option<Quick<'t>> {
        let i = self.last_idx?;
        let template = &self.entries.get(i)?.template;
        if !(template.anchored() && template.start_anchored && line.is_ascii()) {
            return None;
        }
        let fast = template.fast()?;
        let spans = fast.match_at_start(line, &mut self.fast_memo)?;
        let (_, end) = spans.get(0)?;
        self.entries[i].regex_hits += 1;
        self.record_choice(i, line, 0, end, now);
        let same = self
            .last_found
            .as_ref()
            .filter(|last| last.at == 0 && last.now == now && last.fill == spans.fill());
        Some(match same {
            Some(last) => Quick::Same(last.found.clone()),
            None => Quick::Matched(Candidate {
                idx: i,
                start: 0,
                end,
                caps: Groups::Fast(line, spans),
            }),
        })
    }

    /// `_reorderTemplate`: bubble a template up when its weight or recency beats the target.
    fn reorder(&mut self, num: usize) -> usize {
        let entry = &self.entries[num];
        let untime = entry.last_used - UNUSED_TIME;
        let weight = entry.weight();
        let movable = |target: &Entry| weight > target.weight() || untime > target.last_used;
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        if !movable(&self.entries[pos]) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !movable(&self.entries[pos]) {
                return num;
            }
        }
        let moved = self.entries.remove(num);
        self.entries.insert(pos, moved);
        while self.first_unused < self.entries.len() && self.entries[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }

    /// The date of a line whose template match has the same spans as the line of
    /// `minute_date`, with the same bytes outside the seconds: `repeat` would take the same
    /// template with the same fields, and the conversion would be that minute's start plus
    /// the seconds. The match is found as `repeat` finds it (the fast form's DFA and spans,
    /// exact, the memo kept), except that a scan needs not walk the bytes before the
    /// seconds again: the DFA goes on from where the minute's line left it there. Only the
    /// conversion is skipped; the bookkeeping is `repeat`'s. None: `repeat` and the rest
    /// decide.
    fn next_second(&mut self, line: &str, now: f64) -> Option<DateMatch> {
        let minute = self.minute_date.as_ref()?;
        let bytes = line.as_bytes();
        let (start, end) = minute.seconds;
        let read = minute.read.len();
        if Some(minute.idx) != self.last_idx
            || minute.now != now
            || bytes.len() < read
            || bytes[..start] != minute.read[..start]
            || bytes[end..read] != minute.read[end..]
            || !line.is_ascii()
        {
            return None;
        }
        let fast = self.entries.get(minute.idx)?.template.fast()?;
        let spans = fast.match_resumed(line, minute.resume.as_ref(), &mut self.fast_memo)?;
        if !spans.same_places(&minute.spans) {
            return None;
        }
        let mut second = 0;
        for &digit in &bytes[start..end] {
            if !digit.is_ascii_digit() {
                return None;
            }
            second = second * 10 + i64::from(digit - b'0');
        }
        if second >= 60 {
            return None;
        }
        let found = DateMatch {
            time: Some(minute.minute_start + second as f64),
            ..minute.found.clone()
        };
        let (i, match_end) = (minute.idx, minute.end);
        self.entries[i].regex_hits += 1;
        self.record_choice(i, line, 0, match_end, now);
        Some(found)
    }

    /// After `find_in` converted the match `m` of `line` into `found`: keep it as
    /// `minute_date` when the next lines of its minute can take it, else drop the old one
    /// (whose conversion is no longer the latest).
    fn remember_minute(&mut self, line: &str, m: &Candidate, found: &DateMatch, now: f64) {
        let kept = self.minute_date.take();
        let (Some(idx), Groups::Fast(_, spans), 0) = (self.last_idx, &m.caps, m.start) else {
            return;
        };
        let Some(template) = self.entries.get(idx).map(|e| &e.template) else {
            return;
        };
        let Kind::Pattern(fields) = &template.kind else {
            return;
        };
        if !(template.anchored() && template.start_anchored && template.fast().is_some()) {
            return;
        }
        let Some(conversion) = self.last_conversion.as_ref().filter(|c| c.now == now) else {
            return;
        };
        let (Some((minute_start, zoned)), Some((second, _))) =
            (conversion.minute_start, minute_seconds(fields, &m.caps))
        else {
            return;
        };
        let expected = Some(minute_start + second as f64);
        let Some(&(_, group)) = fields.iter().find(|(f, _)| *f == template::Field::Second) else {
            return;
        };
        let (Some(seconds), Some((_, end))) = (m.caps.span(group), spans.get(0)) else {
            return;
        };
        // The other fields' texts are the conversion's key: none of them may hold a byte of
        // the seconds (a custom pattern's group around `%S`), or the key would change too.
        let apart = |&(field, group): &(template::Field, usize)| {
            field == template::Field::Second
                || m.caps
                    .span(group)
                    .is_none_or(|(s, e)| e <= seconds.0 || s >= seconds.1)
        };
        if found.time != expected
            || found.zoned != zoned
            || found.error.is_some()
            || !fields.iter().all(apart)
        {
            return;
        }
        // The match and the byte after it (more than the key needs: the match itself is
        // found again, lookaheads included, for each line). The old buffer is reused.
        let mut read = kept.map(|old| old.read).unwrap_or_default();
        read.clear();
        read.extend_from_slice(&line.as_bytes()[..line.len().min(end + 1)]);
        let resume = template
            .fast()
            .and_then(|fast| fast.resume_at(line.as_bytes(), seconds.0));
        self.minute_date = Some(MinuteDate {
            idx,
            now,
            read,
            spans: *spans,
            seconds,
            end,
            resume,
            minute_start,
            found: found.clone(),
        });
    }

    /// Find the date in `line` as fail2ban's matchTime+getTime do, with "now" = `now`.
    pub fn find(&mut self, line: &str, now: f64) -> Option<DateMatch> {
        if let Some(found) = self.next_second(line, now) {
            return Some(found);
        }
        let m = match self.repeat(line, now) {
            Some(Quick::Same(found)) => return Some(found),
            Some(Quick::Matched(m)) => m,
            None => self.match_time(line, now)?,
        };
        // A line repeating the previous line's date bytes (a burst within one second) gets
        // its date without converting again.
        let fill = match &m.caps {
            Groups::Fast(_, spans) => Some(spans.fill()),
            Groups::Exact(_) => None,
        };
        if let Some(last) = self
            .last_found
            .as_ref()
            .filter(|last| Some(last.fill) == fill && last.at == m.start && last.now == now)
        {
            return Some(last.found.clone());
        }
        let found = self.find_in(&m, now);
        self.remember_minute(line, &m, &found, now);
        self.last_found = fill.map(|fill| LastFound {
            fill,
            at: m.start,
            now,
            found: found.clone(),
        });
        Some(found)
    }

    /// The date of the chosen match `m`.
    fn find_in(&mut self, m: &Candidate, now: f64) -> DateMatch {
        let (start, end) = m.caps.span(1).unwrap_or((m.start, m.start));
        let converted = if start == end {
            Converted::Invalid
        } else {
            self.convert(m, now)
        };
        let (time, zoned, error) = match converted {
            Converted::Time { secs, zoned } => (Some(secs), zoned, None),
            Converted::Invalid => (None, false, None),
            Converted::Error(e) => (None, false, Some(e)),
        };
        DateMatch {
            start,
            end,
            time,
            zoned,
            error,
        }
    }

    /// `now` in the local zone; the conversion is cached since `now` changes rarely (once
    /// per regex-check run, once per read in the server).
    fn now_local(&mut self, now: f64) -> chrono::NaiveDateTime {
        match self.now_local {
            Some((at, local)) if at == now => local,
            _ => {
                let local = self.zone.utc_to_local(now);
                self.now_local = Some((now, local));
                local
            }
        }
    }

    fn convert(&mut self, m: &Candidate, now: f64) -> Converted {
        // The entry may have moved by reordering; the index now lives in last_idx.
        let idx = self.last_idx.unwrap_or(m.idx);
        let now_local = self.now_local(now);
        let template = &self.entries[idx].template;
        match &template.kind {
            Kind::Pattern(fields) => {
                let minute = minute_seconds(fields, &m.caps);
                let seconds = minute.map(|(s, _)| s);
                if let Some(last) = &self.last_conversion {
                    if last.now == now
                        && last.fields == *fields
                        && key_is(&last.key, fields, &m.caps, seconds.is_some())
                    {
                        match (seconds, last.minute_start) {
                            (None, _) => return last.result.clone(),
                            (Some(s), Some((start, zoned))) => {
                                return Converted::Time {
                                    secs: start + s as f64,
                                    zoned,
                                }
                            }
                            (Some(_), None) => {}
                        }
                    }
                }
                conversion_key(&mut self.scratch_key, fields, &m.caps, seconds.is_some());
                let ctx = Context {
                    zone: &self.zone,
                    now_local,
                    default_offset: self.default_offset,
                    wall: std::cell::Cell::new(None),
                };
                let values = fields.iter().map(|&(f, i)| (f, m.caps.text(i)));
                let result = convert::fields_to_time(values, &ctx);
                let minute_start = match (&result, seconds) {
                    (&Converted::Time { secs, zoned }, Some(s)) => {
                        let start = secs - s as f64;
                        // The time reads back as the line's wall time (not a reading inside
                        // a spring gap) with the offset that holds at both ends of the
                        // minute: no zone change inside it, and the next line of the minute
                        // is read on the same side of an autumn overlap, as mktime's guess
                        // would.
                        let offset =
                            |t: f64| self.zone.utc_to_local(t).and_utc().timestamp() as f64 - t;
                        let steady = ctx.wall.get().is_some_and(|wall| {
                            let used = wall as f64 - secs;
                            used == offset(start) && used == offset(start + 59.0)
                        });
                        // Without a year, fail2ban takes the previous year for a date more
                        // than a day ahead: both ends of the minute must fall on the side
                        // of that point this line fell on. (Probed on a copy of the zone:
                        // a conversion moves its mktime guess.)
                        let year_kept = || {
                            let probe_zone = self.zone.clone();
                            ["0", "59"].iter().all(|second| {
                                let ctx = Context {
                                    zone: &probe_zone,
                                    wall: std::cell::Cell::new(None),
                                    ..ctx
                                };
                                let at = convert::int(second).unwrap_or(0) as f64;
                                let values = fields.iter().map(|&(f, i)| match f {
                                    template::Field::Second => (f, Some(*second)),
                                    _ => (f, m.caps.text(i)),
                                });
                                convert::fields_to_time(values, &ctx)
                                    == (Converted::Time {
                                        secs: start + at,
                                        zoned,
                                    })
                            })
                        };
                        let year_known = minute.is_some_and(|(_, year)| year);
                        ((zoned || steady) && (year_known || year_kept())).then_some((start, zoned))
                    }
                    _ => None,
                };
                // Reuse the memo's buffers: no allocation per line once it exists.
                match &mut self.last_conversion {
                    Some(last) => {
                        last.fields.clone_from(fields);
                        last.now = now;
                        std::mem::swap(&mut last.key, &mut self.scratch_key);
                        last.result = result.clone();
                        last.minute_start = minute_start;
                    }
                    None => {
                        self.last_conversion = Some(Conversion {
                            fields: fields.clone(),
                            now,
                            key: std::mem::take(&mut self.scratch_key),
                            result: result.clone(),
                            minute_start,
                        });
                    }
                }
                result
            }
            Kind::Epoch { long, group } => match m.caps.text(*group) {
                Some(g) => convert::epoch_to_time(g, *long),
                None => Converted::Invalid,
            },
            Kind::Tai64n => match m.caps.text(1) {
                Some(g) => convert::tai64n_to_time(g),
                None => Converted::Invalid,
            },
        }
    }
}
