//! Filters: failregex/ignoreregex/prefregex matching turning log lines into failures
//! (fail2ban's `Filter.processLine`/`findFailure`, multi-line buffer and MLFID sessions).

pub mod ascii;
pub mod data;
pub mod expand;
pub mod host;
pub mod prefilter;
pub mod regex;
mod sessions;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::addr::FailureId;
use crate::config::{Command, Value};
use crate::date::{DateDetector, LocalZone};
use data::SearchText;
pub use data::{FailData, SharedStr, TupleLine};
use data::{GroupValue, Groups};
use prefilter::{Candidates, Prefilter};
use regex::{Anchors, FilterRegex, MatchSpans, RegexError, RegexMatch};
use sessions::Sessions;

/// Lines longer than this are cut (at a character boundary) before matching.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Filter options as the command stream sets them.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterOptions {
    pub prefregex: Option<String>,
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub maxlines: usize,
    pub datepattern: Option<String>,
    /// `yes`, `warn`, `no` or `raw`; invalid values behave as `no`.
    pub usedns: String,
    pub logtimezone: Option<String>,
    /// Journal backend: lines come with their own time, no date detection. Set by the
    /// caller from the jail's backend (not part of the filter's stream).
    pub journal: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            prefregex: None,
            failregex: Vec::new(),
            ignoreregex: Vec::new(),
            maxlines: 1,
            datepattern: None,
            usedns: "warn".to_string(),
            logtimezone: None,
            journal: false,
        }
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn value_list(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) => items.iter().filter_map(value_text).collect(),
        other => value_text(other).into_iter().collect(),
    }
}

impl FilterOptions {
    /// Apply one stream command (`["set", jail, "prefregex", v]`,
    /// `["multi-set", jail, "addfailregex", [..]]`, …). Returns false when the command is
    /// not a filter option (so the caller can route it elsewhere).
    pub fn apply(&mut self, cmd: &[Value]) -> bool {
        let verb = cmd.first().and_then(|v| v.as_str());
        if !matches!(verb, Some("set") | Some("multi-set")) || cmd.len() < 4 {
            return false;
        }
        let Some(option) = cmd[2].as_str() else {
            return false;
        };
        let value = &cmd[3];
        match option {
            "prefregex" => self.prefregex = value_text(value).filter(|v| !v.trim().is_empty()),
            "addfailregex" => self.failregex.extend(value_list(value)),
            "addignoreregex" => self.ignoreregex.extend(value_list(value)),
            "maxlines" => {
                self.maxlines = value_text(value)
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .map_or(1, |n| n.max(1))
            }
            "datepattern" => self.datepattern = value_text(value),
            "usedns" => {
                let v = value_text(value).unwrap_or_default().to_lowercase();
                self.usedns = match v.as_str() {
                    "yes" | "warn" | "no" | "raw" => v,
                    "true" | "1" => "yes".into(),
                    _ => "no".into(),
                };
            }
            "logtimezone" => self.logtimezone = value_text(value),
            _ => return false,
        }
        true
    }

    /// Options from a whole command stream (commands that are not filter options are skipped).
    pub fn from_stream(stream: &[Command]) -> FilterOptions {
        let mut opts = FilterOptions::default();
        for cmd in stream {
            opts.apply(cmd);
        }
        opts
    }
}

/// Behaviour switches that differ between server, fail2ban-regex and sample tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mode {
    /// Try every failregex instead of stopping at the first match.
    pub check_all_regex: bool,
    /// Drop MLFID results that have no id yet.
    pub ignore_pending: bool,
    /// Never resolve DNS; use captured names/ids as raw text.
    pub return_raw_host: bool,
    /// Server behaviour for times (skip undated matches, clamp to now).
    pub check_find_time: bool,
}

impl Mode {
    /// The daemon's settings.
    pub fn server() -> Mode {
        Mode {
            check_all_regex: false,
            ignore_pending: true,
            return_raw_host: false,
            check_find_time: true,
        }
    }
}

/// What a line reports about the prefregex (`LineResult::prefregex_groups`); lines the
/// prefilter rules out report it at a cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefregexDetail {
    /// Nothing (the daemon): a ruled-out line costs one DFA pass; a matched prefregex
    /// reports no groups.
    #[default]
    Nothing,
    /// Whether it matched (`prefregex_groups` = `Some(empty)`), as regex-check counts.
    Hit,
    /// Its groups, as regex-check lists them in verbose mode.
    Groups,
}

/// Errors building a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    Regex(RegexError),
    /// A failregex without `fid`, `ip4`, `ip6`, `dns` or `mlfid` group (resolved text).
    NoFailureIdGroup(String),
    /// The date pattern or time zone is invalid.
    Date(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Regex(e) => write!(f, "{e}"),
            FilterError::NoFailureIdGroup(r) => write!(f, "No failure-id group in '{r}'"),
            FilterError::Date(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for FilterError {}

impl From<RegexError> for FilterError {
    fn from(e: RegexError) -> Self {
        FilterError::Regex(e)
    }
}

/// Where the date detector found the date in a line (byte offsets of the cut) and its time
/// (None when it did not parse). `start == end` is an empty date match (`{NONE}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateCut {
    pub start: usize,
    pub end: usize,
    pub time: Option<f64>,
}

/// A line's date as the detector found it (see `Filter::date_line`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatedLine {
    pub cut: Option<DateCut>,
    /// The date had an explicit zone.
    pub zoned: bool,
}

impl DatedLine {
    /// The date of `line` by `detector` (None in journal mode: no date in the text).
    pub fn find(detector: Option<&mut DateDetector>, line: &str, now: f64) -> DatedLine {
        let (line, _) = truncate(line);
        let found = detector.and_then(|d| d.find(line, now));
        DatedLine {
            zoned: found.as_ref().is_some_and(|m| m.zoned),
            cut: found.map(|m| DateCut {
                start: m.start,
                end: m.end,
                time: m.time,
            }),
        }
    }
}

/// One result entry of a line (fail2ban `[index, fid, time, data]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub regex_index: usize,
    /// None for a pending MLFID session (no host yet).
    pub id: Option<FailureId>,
    pub time: Option<f64>,
    /// All groups, None for non-participating ones, plus merged session values.
    pub data: FailData,
}

impl Failure {
    /// Matched lines as full text (`pre + date + post`).
    pub fn matches(&self) -> Vec<String> {
        self.data
            .matches
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(TupleLine::full)
            .collect()
    }

    /// A truthy `nofail` marks a match that is not a failure.
    pub fn nofail(&self) -> bool {
        self.data.truthy("nofail")
    }
}

/// What one line produced, with what fail2ban-regex counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineResult {
    pub failures: Vec<Failure>,
    /// Indexes of ignoreregexes that matched.
    pub ignored: Vec<usize>,
    /// Groups of the prefregex when it matched (content removed).
    pub prefregex_groups: Option<Groups>,
    /// Lines taken out of the buffer as part of a failregex match (full text), for filters
    /// with `maxlines` > 1: a single-line filter's match is always the line itself.
    pub matched_lines: Vec<String>,
    /// The line's time (None when unknown).
    pub time: Option<f64>,
    /// The line was longer than `MAX_LINE_BYTES` and was cut.
    pub truncated: bool,
    /// The time came from a date with an explicit zone (fail2ban keeps it an integer).
    pub zoned: bool,
    /// Failregex matches dropped because no failure id group was set.
    pub errors: Vec<String>,
}

/// A compiled filter with its state (line buffer, MLFID sessions, last date).
pub struct Filter {
    pub options: FilterOptions,
    pub mode: Mode,
    /// The compiled regexes: pure, shared with threads that match ahead (`Matcher::prematch`).
    pub matcher: Arc<Matcher>,
    /// Results computed ahead for the line being processed.
    prematch: Option<Prematch>,
    buffer: Vec<TupleLine>,
    sessions: Sessions,
    last_date: Option<f64>,
    last_date_text: String,
    /// `pre + post + "\n"` of the line `plain_miss` looks at, reused from line to line.
    miss_buffer: String,
    /// None in journal mode: lines come with their time.
    pub date_detector: Option<DateDetector>,
    /// Server: tailing new lines (true) or reading a file initially (false); see
    /// `Mode::check_find_time`.
    pub in_operation: bool,
    /// Server: seconds after which an initially read line is too old to count.
    pub find_time: f64,
    /// Lines cut at `MAX_LINE_BYTES` so far.
    pub truncated_lines: u64,
    pub prefregex_detail: PrefregexDetail,
}

/// A filter's compiled regexes. Searching is a pure function of the text, so this part can
/// run on other threads ahead of the (stateful) filter.
#[derive(Clone)]
pub struct Matcher {
    pub prefregex: Option<FilterRegex>,
    pub failregex: Vec<FilterRegex>,
    pub ignoreregex: Vec<FilterRegex>,
    /// Single-line filters: which failregexes can match a line, decided by one DFA pass.
    prefilter: Option<Prefilter>,
}

/// Regex results for one single-line buffer, computed ahead of `Filter::find_failure`
/// (typically on another thread). Each result is kept with the text it was computed for and
/// used only for that same text, so using it can never change a result.
#[derive(Default, Clone)]
pub struct Prematch {
    /// Shared with the caller rather than copied: whichever thread drops it last frees it.
    buffer: SharedStr,
    candidates: Option<Candidates>,
    /// None: not searched; `Some(None)`: searched, no match.
    prefregex: Option<Option<MatchSpans>>,
    /// The text the failregexes search when it is not the buffer (the prefregex content).
    content: Option<SharedStr>,
    fails: Vec<(usize, Option<MatchSpans>)>,
}

impl Matcher {
    /// The prefregex content as the failregexes see it (`content\n`), from the prefregex
    /// match `m` of `buffer`.
    fn content_text(pref: &FilterRegex, buffer: &SharedStr, m: &MatchSpans) -> Option<SharedStr> {
        if pref.has_alt_tuple() {
            let combined = data::combine_alt_tuple(pref.to_match(buffer, m).groups);
            let content = data::get_group(&combined, "content").filter(|c| !c.is_empty())?;
            return Some(data::buffer_of(content).as_str().into());
        }
        let (start, end) = pref.group_span(m, "content").filter(|(s, e)| s < e)?;
        // The content usually ends the line: its buffer is then the end of the line's own.
        if buffer.get(end..) == Some("\n") {
            return Some(buffer.sub(start, end + 1));
        }
        Some(data::buffer_of(&buffer[start..end]).as_str().into())
    }

    /// Search ahead what `find_failure` will search for the single-line `buffer`
    /// (`text\n`): prefilter, prefregex, and the failregexes up to the first match (all of
    /// them with `check_all`).
    pub fn prematch(&self, buffer: SharedStr, check_all: bool) -> Prematch {
        let mut pre = Prematch {
            buffer,
            ..Prematch::default()
        };
        if let Some(pf) = self.prefilter.as_ref().filter(|pf| !pf.needs_content()) {
            let found = pf.candidates(&pre.buffer);
            let none = found.is_empty();
            pre.candidates = Some(found);
            if none {
                return pre;
            }
        }
        if let Some(pref) = &self.prefregex {
            let ruled_out = self
                .prefilter
                .as_ref()
                .is_some_and(|pf| !pf.prefregex_may_match(&pre.buffer));
            let found = if ruled_out {
                None
            } else {
                pref.search_spans(&pre.buffer)
            };
            let Some(m) = found else {
                pre.prefregex = Some(None);
                return pre;
            };
            pre.content = Self::content_text(pref, &pre.buffer, &m);
            pre.prefregex = Some(Some(m));
            if let Some(pf) = self.prefilter.as_ref().filter(|pf| pf.needs_content()) {
                pre.candidates = Some(pf.candidates(pre.fail_text()));
            }
        }
        for (index, re) in self.failregex.iter().enumerate() {
            if pre.candidates.as_ref().is_some_and(|c| !c.may_match(index)) {
                continue;
            }
            let found = re.search_spans(pre.fail_text());
            let matched = found.is_some();
            pre.fails.push((index, found));
            if matched && !check_all {
                break;
            }
        }
        pre
    }
}

impl Prematch {
    fn fail_text(&self) -> &str {
        self.content.as_deref().unwrap_or(&self.buffer)
    }

    /// Prefilter answer for the whole buffer (Combined shape).
    fn candidates_for(&mut self, text: &str) -> Option<Candidates> {
        (*self.buffer == *text)
            .then(|| self.candidates.take())
            .flatten()
    }

    /// Prefilter answer for the prefregex content (TwoStage shape).
    fn content_candidates_for(&mut self, text: &str) -> Option<Candidates> {
        (self.fail_text() == text)
            .then(|| self.candidates.take())
            .flatten()
    }

    fn prefregex_for(&mut self, text: &str) -> Option<Option<MatchSpans>> {
        (*self.buffer == *text)
            .then(|| self.prefregex.take())
            .flatten()
    }

    fn failregex_for(&mut self, index: usize, text: &str) -> Option<Option<MatchSpans>> {
        if self.fail_text() != text {
            return None;
        }
        let pos = self.fails.iter().position(|(i, _)| *i == index)?;
        Some(self.fails[pos].1.take())
    }
}

const FAILURE_ID_GROUPS: [&str; 5] = ["fid", "ip4", "ip6", "dns", "mlfid"];

fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn truthy(v: &Option<GroupValue>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

impl Filter {
    /// Compile all regexes and build the date detector in the system's local zone.
    pub fn new(options: &FilterOptions, mode: Mode) -> Result<Filter, FilterError> {
        Self::with_zone(options, mode, LocalZone::system())
    }

    /// As `new`, with the local zone used for dates without zone.
    pub fn with_zone(
        options: &FilterOptions,
        mode: Mode,
        zone: LocalZone,
    ) -> Result<Filter, FilterError> {
        let usedns = options.usedns.as_str();
        let mut prefregex = match &options.prefregex {
            Some(p) => Some(FilterRegex::new(
                p,
                usedns,
                single_or_any(options.maxlines),
            )?),
            None => None,
        };
        if let Some(pref) = prefregex.as_mut().filter(|_| options.maxlines == 1) {
            pref.split_content_tail();
        }
        let fail_anchors = if options.maxlines > 1 {
            Anchors::Multiline
        } else {
            Anchors::SingleLineBuffer
        };
        let pref_has_id = prefregex
            .as_ref()
            .is_some_and(|p| FAILURE_ID_GROUPS.iter().any(|g| p.has_group(g)));
        let mut failregex = Vec::with_capacity(options.failregex.len());
        for text in &options.failregex {
            let re = FilterRegex::new(text, usedns, fail_anchors)?;
            if !pref_has_id && !FAILURE_ID_GROUPS.iter().any(|g| re.has_group(g)) {
                return Err(FilterError::NoFailureIdGroup(re.resolved));
            }
            failregex.push(re);
        }
        let ignoreregex = options
            .ignoreregex
            .iter()
            .map(|t| FilterRegex::new(t, usedns, single_or_any(options.maxlines)))
            .collect::<Result<Vec<_>, _>>()?;
        let date_detector = if options.journal {
            None
        } else {
            Some(
                DateDetector::new(
                    options.datepattern.as_deref(),
                    options.logtimezone.as_deref(),
                    zone,
                )
                .map_err(|e| FilterError::Date(e.to_string()))?,
            )
        };
        let prefilter = if options.maxlines == 1 {
            // The failregexes see the `content` group as such unless an `alt_`/`tuple_` group
            // merges into it; only then can the prefilter stand in for the prefregex.
            let merged_content = |p: &FilterRegex| {
                p.group_names()
                    .any(|n| data::combine_target(n).is_some_and(|(_, t)| t == "content"))
            };
            let pref = match &prefregex {
                Some(p) if !merged_content(p) => p
                    .group_index("content")
                    .map(|content| (p.translated.as_str(), content)),
                _ => None,
            };
            let usable = prefregex.is_none() || pref.is_some();
            let fail: Vec<&str> = failregex.iter().map(|r| r.translated.as_str()).collect();
            let ignore: Vec<&str> = ignoreregex.iter().map(|r| r.translated.as_str()).collect();
            let precheck = precheck_ignore(ignore.len(), fail.len());
            usable
                .then(|| Prefilter::new(pref, &fail, &ignore, precheck))
                .flatten()
        } else {
            None
        };
        Ok(Filter {
            options: options.clone(),
            mode,
            matcher: Arc::new(Matcher {
                prefregex,
                failregex,
                ignoreregex,
                prefilter,
            }),
            prematch: None,
            buffer: Vec::new(),
            sessions: Sessions::default(),
            last_date: None,
            last_date_text: String::new(),
            miss_buffer: String::new(),
            date_detector,
            in_operation: true,
            find_time: 600.0,
            truncated_lines: 0,
            prefregex_detail: PrefregexDetail::Nothing,
        })
    }

    /// Whether single-line matching starts with the prefilter (see `prefilter`).
    pub fn has_prefilter(&self) -> bool {
        self.matcher.prefilter.is_some()
    }

    /// Match every line with the exact regexes only (the reference the prefilter is
    /// tested against).
    pub fn disable_prefilter(&mut self) {
        if let Some(matcher) = Arc::get_mut(&mut self.matcher) {
            matcher.prefilter = None;
        }
    }

    /// Frees the scratch memory the regex engines keep between searches (lazy DFA states,
    /// capture slots), grown over a burst of lines. A copy of a regex-automata regex shares
    /// its automata and starts with empty scratch, so the filter swaps its regexes for
    /// copies; the next search grows the scratch again. (fancy-regex's backtracking programs
    /// share their scratch with their copies, and the date templates are shared between
    /// detectors: both keep theirs.)
    pub fn release_caches(&mut self) {
        self.matcher = Arc::new(Matcher::clone(&self.matcher));
    }

    /// Process one log line (without terminator) at wall time `now`.
    pub fn process_line(&mut self, line: &str, now: f64) -> LineResult {
        let dated = self.date_line(line, now);
        self.process_dated(line, dated, None, now)
    }

    /// First half of `process_line`: find the line's date (the detector's state moves on).
    pub fn date_line(&mut self, line: &str, now: f64) -> DatedLine {
        DatedLine::find(self.date_detector.as_mut(), line, now)
    }

    /// The buffer a single-line filter searches for a dated line in the usual case (date cut
    /// out), for `Matcher::prematch`, appended to `buffer`. Should the filter end up
    /// searching another text, the prematch is simply not used.
    pub fn likely_buffer(buffer: &mut String, line: &str, dated: &DatedLine) {
        let (line, _) = truncate(line);
        match dated.cut {
            Some(c) if c.start < c.end && line.get(c.start..c.end).is_some() => {
                buffer.push_str(&line[..c.start]);
                buffer.push_str(&line[c.end..]);
            }
            _ => buffer.push_str(line),
        }
        buffer.push('\n');
    }

    /// Second half of `process_line`, optionally with regex results computed ahead.
    pub fn process_dated(
        &mut self,
        line: &str,
        dated: DatedLine,
        prematch: Option<Prematch>,
        now: f64,
    ) -> LineResult {
        let (line, truncated) = self.truncate(line);
        self.prematch = prematch;
        let mut result = self.process_cut(line, dated.cut, now);
        self.prematch = None;
        result.truncated = truncated;
        result.zoned = dated.zoned && result.time.is_some();
        result
    }

    /// Process a line whose date was determined by the caller (`cut` as the detector
    /// would return it).
    pub fn process_with_cut(&mut self, line: &str, cut: Option<DateCut>, now: f64) -> LineResult {
        let (line, truncated) = self.truncate(line);
        let mut result = self.process_cut(line, cut, now);
        result.truncated = truncated;
        result
    }

    fn process_cut(&mut self, line: &str, cut: Option<DateCut>, now: f64) -> LineResult {
        // The usual line, a parsed date: no allocation at all when the prefilter rules it out.
        if let Some((c, t)) = cut
            .filter(|c| c.start < c.end && line.get(c.start..c.end).is_some())
            .and_then(|c| Some((c, c.time?)))
        {
            self.last_date = Some(t);
            self.last_date_text.clear();
            self.last_date_text.push_str(&line[c.start..c.end]);
            let Some(time) = self.server_time(Some(t), now) else {
                return LineResult {
                    time: Some(t),
                    ..LineResult::default()
                };
            };
            let (pre, post) = (&line[..c.start], &line[c.end..]);
            if self.plain_miss(pre, post) {
                return LineResult {
                    time,
                    ..LineResult::default()
                };
            }
            let tuple = TupleLine::cut(line, c.start, c.end);
            return self.find_failure(tuple, time, now);
        }
        let recent = |last: Option<f64>| last.filter(|d| *d > now - 60.0);
        let (tuple, time) = match cut {
            Some(c)
                if c.start < c.end
                    && c.end <= line.len()
                    && line.is_char_boundary(c.start)
                    && line.is_char_boundary(c.end) =>
            {
                let tuple = TupleLine::cut(line, c.start, c.end);
                match c.time {
                    Some(t) => {
                        self.last_date = Some(t);
                        self.last_date_text = tuple.date().to_string();
                        (tuple, Some(t))
                    }
                    None => self.no_date(tuple, line, now),
                }
            }
            Some(c) if c.start == c.end => match recent(self.last_date) {
                Some(t) => (self.last_tuple(line), Some(t)),
                None => (TupleLine::plain(line), Some(c.time.unwrap_or(now))),
            },
            _ => self.no_date(TupleLine::plain(line), line, now),
        };
        match self.server_time(time, now) {
            Some(time) => self.find_failure(tuple, time, now),
            None => LineResult {
                time,
                ..LineResult::default()
            },
        }
    }

    /// Single-line filters: whether the prefilter rules out the buffer `pre + post + "\n"`
    /// (then `find_failure` would return an empty result). The answer comes from the prematch
    /// when it is for this text; a prefilter answer computed here is kept for `find_failure`.
    /// When the prefilter looks at the prefregex content only, the prefregex decides first:
    /// a buffer it does not match is a miss too, unless an ignoreregex is searched before it.
    fn plain_miss(&mut self, pre: &str, post: &str) -> bool {
        let pref_quiet =
            self.matcher.prefregex.is_none() || self.prefregex_detail == PrefregexDetail::Nothing;
        if self.options.maxlines != 1 || !pref_quiet {
            return false;
        }
        let Some(pf) = self.matcher.prefilter.as_ref() else {
            return false;
        };
        let memo = self
            .prematch
            .as_ref()
            .filter(|m| data::is_buffer_of(&m.buffer, pre, post));
        let buffer = &mut self.miss_buffer;
        let fill = |buffer: &mut String| {
            buffer.clear();
            buffer.push_str(pre);
            buffer.push_str(post);
            buffer.push('\n');
        };
        if pf.needs_content() {
            let Some(pref) = &self.matcher.prefregex else {
                return false;
            };
            if precheck_ignore(self.matcher.ignoreregex.len(), self.matcher.failregex.len()) {
                fill(buffer);
                if pf.may_be_ignored(buffer) {
                    return false;
                }
            }
            // (A prefregex match is reported even when no failregex matches after it.)
            if let Some(memo) = memo {
                return matches!(memo.prefregex, Some(None));
            }
            fill(buffer);
            if !pf.prefregex_may_match(buffer) {
                return true;
            }
            let Some(found) = pref.search_spans(buffer) else {
                return true;
            };
            self.prematch = Some(Prematch {
                buffer: buffer.as_str().into(),
                prefregex: Some(Some(found)),
                ..Prematch::default()
            });
            return false;
        }
        if let Some(memo) = memo {
            return memo.candidates.as_ref().is_some_and(Candidates::is_empty);
        }
        fill(buffer);
        let found = pf.candidates(buffer);
        if found.is_empty() {
            return true;
        }
        self.prematch = Some(Prematch {
            buffer: buffer.as_str().into(),
            candidates: Some(found),
            ..Prematch::default()
        });
        false
    }

    /// Server time checks (spec 6.6): in operation a time more than 60 s off is replaced by
    /// now; while reading a file initially, lines older than `find_time` are dropped (None).
    fn server_time(&mut self, time: Option<f64>, now: f64) -> Option<Option<f64>> {
        let Some(t) = time.filter(|_| self.mode.check_find_time) else {
            return Some(time);
        };
        if self.in_operation {
            if (t - now).trunc().abs() > 60.0 {
                self.last_date = Some(now);
                return Some(Some(now));
            }
        } else if t < now - self.find_time {
            return None;
        }
        Some(Some(t))
    }

    /// Cut a line to `MAX_LINE_BYTES` at a character boundary, counting cut lines.
    fn truncate<'l>(&mut self, line: &'l str) -> (&'l str, bool) {
        let (line, cut) = truncate(line);
        if cut {
            self.truncated_lines += 1;
        }
        (line, cut)
    }

    /// Process a line with a known time and date text (journal entries, sample tests with
    /// `logtype = journal`): no date detection.
    pub fn process_line_at(
        &mut self,
        line: &str,
        time: f64,
        date_text: &str,
        now: f64,
    ) -> LineResult {
        let (line, truncated) = self.truncate(line);
        self.last_date = Some(time);
        self.last_date_text = date_text.to_string();
        let tuple = TupleLine::dated(date_text, line);
        let mut result = match self.server_time(Some(time), now) {
            Some(time) => self.find_failure(tuple, time, now),
            None => LineResult::default(),
        };
        result.truncated = truncated;
        result
    }

    fn last_tuple(&self, line: &str) -> TupleLine {
        TupleLine::dated(&self.last_date_text, line)
    }

    /// Time unknown: reuse a recent last date (searching the whole line), else now in the
    /// server, else None.
    fn no_date(&self, tuple: TupleLine, line: &str, now: f64) -> (TupleLine, Option<f64>) {
        match self.last_date.filter(|d| *d > now - 60.0) {
            Some(t) => (self.last_tuple(line), Some(t)),
            None if self.mode.check_find_time && self.in_operation => (tuple, Some(now)),
            None => (tuple, None),
        }
    }

    fn find_failure(&mut self, tuple: TupleLine, time: Option<f64>, now: f64) -> LineResult {
        let mut result = LineResult {
            time,
            ..LineResult::default()
        };
        let multiline = self.options.maxlines > 1;
        if multiline {
            self.buffer.push(tuple);
            let excess = self.buffer.len().saturating_sub(self.options.maxlines);
            self.buffer.drain(..excess);
        } else {
            self.buffer.clear();
            self.buffer.push(tuple);
        }
        let check_all = self.mode.check_all_regex;
        let mut memo = self.prematch.take().filter(|_| !multiline);
        let mut buf = Some(match (&memo, self.buffer.as_slice()) {
            (Some(m), [line]) if data::is_buffer_of(&m.buffer, line.pre(), line.post()) => {
                SearchText::Shared(m.buffer.clone())
            }
            _ => SearchText::Built(data::join_buffer(&self.buffer)),
        });

        let mut candidates = None;
        let mut may_be_ignored = true;
        if let (Some(pf), Some(text)) = (&self.matcher.prefilter, &buf) {
            if pf.needs_content() {
                may_be_ignored = pf.may_be_ignored(text);
            } else {
                let found = match memo.as_mut().and_then(|m| m.candidates_for(text)) {
                    Some(found) => found,
                    None => pf.candidates(text),
                };
                if found.is_empty() {
                    match (&self.matcher.prefregex, self.prefregex_detail) {
                        (None, _) | (Some(_), PrefregexDetail::Nothing) => return result,
                        (Some(pref), PrefregexDetail::Hit) => {
                            if pref.is_match(text) {
                                result.prefregex_groups = Some(Vec::new());
                            }
                            return result;
                        }
                        (Some(_), PrefregexDetail::Groups) => {}
                    }
                }
                candidates = Some(found);
            }
        }

        // ignoreregex pre-check on the whole original buffer.
        if may_be_ignored
            && precheck_ignore(self.matcher.ignoreregex.len(), self.matcher.failregex.len())
        {
            let text = buf.as_deref().unwrap_or_default();
            for (i, re) in self.matcher.ignoreregex.iter().enumerate() {
                if re.search_spans(text).is_some() {
                    result.ignored.push(i);
                    if !check_all {
                        break;
                    }
                }
            }
            if !result.ignored.is_empty() {
                return result;
            }
        }

        // The buffer as it came, once the search replaces it (None: it has not).
        let mut org_buffer: Option<Vec<TupleLine>> = None;
        let mut pre_groups: Groups = Vec::new();
        if let Some(pref) = &self.matcher.prefregex {
            let text = buf.as_deref().unwrap_or_default();
            let found = match memo.as_mut().and_then(|m| m.prefregex_for(text)) {
                Some(found) => found,
                None => pref.search_spans(text),
            };
            let Some(spans) = found else {
                return result;
            };
            let alt_content;
            let (groups, content) = if pref.has_alt_tuple() {
                let mut groups = data::combine_alt_tuple(pref.to_match(text, &spans).groups);
                alt_content = data::remove_group(&mut groups, "content");
                (groups, alt_content.as_deref())
            } else {
                let groups = pref.groups_except(text, &spans, Some("content"));
                (groups, pref.group(text, &spans, "content"))
            };
            let content = content.filter(|c| !c.is_empty()).map(|c| {
                let ahead = memo.as_ref().and_then(|m| m.content.as_ref());
                let text = match ahead.filter(|ahead| data::is_buffer_of(ahead, c, "")) {
                    Some(ahead) => SearchText::Shared(ahead.clone()),
                    None => SearchText::Built(data::buffer_of(c)),
                };
                (text, TupleLine::plain(c))
            });
            result.prefregex_groups = Some(match self.prefregex_detail {
                PrefregexDetail::Groups => groups.clone(),
                PrefregexDetail::Hit | PrefregexDetail::Nothing => Vec::new(),
            });
            pre_groups = groups;
            if let Some((content_buffer, line)) = content {
                buf = Some(content_buffer);
                self.replace_buffer(&mut org_buffer, vec![line]);
            }
            if let (Some(pf), Some(text)) = (&self.matcher.prefilter, &buf) {
                if pf.needs_content() {
                    candidates = match memo.as_mut().and_then(|m| m.content_candidates_for(text)) {
                        Some(found) => Some(found),
                        None => Some(pf.candidates(text)),
                    };
                }
            }
        }

        for index in 0..self.matcher.failregex.len() {
            if candidates.as_ref().is_some_and(|c| !c.may_match(index)) {
                continue;
            }
            let text = match buf.take() {
                Some(b) => b,
                None => SearchText::Built(data::join_buffer(&self.buffer)),
            };
            let regex = &self.matcher.failregex[index];
            let found = match memo.as_mut().and_then(|m| m.failregex_for(index, &text)) {
                Some(found) => found.map(|spans| regex.to_match(&text, &spans)),
                None => regex.search(&text),
            };
            let Some(m) = found else {
                buf = Some(text);
                continue;
            };
            let (matched, unmatched) =
                split_matched(&text, org_buffer.as_ref().unwrap_or(&self.buffer), &m);

            if !self.matcher.ignoreregex.is_empty() {
                let joined;
                let check_text = if multiline {
                    joined = data::join_buffer(&matched);
                    joined.as_str()
                } else {
                    &text
                };
                let mut hit = false;
                for (i, re) in self.matcher.ignoreregex.iter().enumerate() {
                    if re.search_spans(check_text).is_some() {
                        result.ignored.push(i);
                        hit = true;
                        if !check_all {
                            break;
                        }
                    }
                }
                if hit {
                    if !check_all || multiline {
                        self.replace_buffer(&mut org_buffer, unmatched);
                    }
                    buf = None;
                    if !check_all {
                        break;
                    }
                    continue;
                }
            }

            if time.is_none() && self.mode.check_find_time {
                buf = Some(text);
                continue;
            }
            if multiline {
                result
                    .matched_lines
                    .extend(matched.iter().map(TupleLine::full));
            }
            // Otherwise the buffer is searched again as it was, by the next failregex.
            let keep_text = check_all && !multiline;
            if !keep_text {
                self.replace_buffer(&mut org_buffer, unmatched);
            }

            let mut groups = data::combine_alt_tuple(m.groups);
            if !pre_groups.is_empty() {
                let mut merged = Vec::with_capacity(pre_groups.len() + groups.len());
                merged.extend(pre_groups.iter().cloned());
                for (k, v) in groups {
                    match merged.iter_mut().find(|(n, _)| *n == k) {
                        Some(slot) if v.is_some() => slot.1 = v,
                        Some(_) => {}
                        None => merged.push((k, v)),
                    }
                }
                groups = merged;
            }
            let mlfid = data::get_group(&groups, "mlfid").map(GroupValue::from);
            let fail_data = FailData {
                groups,
                ..FailData::default()
            };
            let (mut fail_data, session_key) = match &mlfid {
                Some(key) => {
                    let merged = self.merge_failure(key, fail_data, &matched);
                    if merged.truthy("nofail") && !check_all {
                        return result;
                    }
                    (merged, Some(key.clone()))
                }
                None => {
                    let mut d = fail_data;
                    d.matches = Some(matched);
                    (d, None)
                }
            };

            let ids = self.failure_ids(&mut fail_data, &text, index);
            if keep_text {
                buf = Some(text);
            }
            match ids {
                Err(message) => {
                    result.errors.push(message);
                    continue;
                }
                Ok(None) => {
                    // Pending MLFID session: remember it so the next merge keeps the matches.
                    fail_data.mlfpending = true;
                    if let Some(key) = &session_key {
                        if let Some(pos) = self.sessions.find(key) {
                            self.sessions.data_mut(pos).mlfpending = true;
                        }
                    }
                    if !check_all && self.mode.ignore_pending {
                        return result;
                    }
                    result.failures.push(Failure {
                        regex_index: index,
                        id: None,
                        time,
                        data: fail_data,
                    });
                }
                Ok(Some(ids)) => {
                    let count = ids.len();
                    for (n, id) in ids.into_iter().enumerate() {
                        let data = if n + 1 == count {
                            std::mem::take(&mut fail_data)
                        } else {
                            fail_data.clone()
                        };
                        result.failures.push(Failure {
                            regex_index: index,
                            id: Some(id),
                            time,
                            data,
                        });
                    }
                }
            }
            if !check_all {
                break;
            }
        }
        let _ = now;
        result
    }

    /// Failure ids for merged data (spec 4.8). `Ok(None)` = pending, `Ok(Some(vec![]))` =
    /// a name that did not resolve, `Err` = no group found.
    fn failure_ids(
        &self,
        data: &mut FailData,
        buffer: &str,
        index: usize,
    ) -> Result<Option<Vec<FailureId>>, String> {
        let raw_mode = self.options.usedns == "raw" || self.mode.return_raw_host;
        // Group values: most fit inline, as the groups' own do.
        let fid = data.get("fid").map(GroupValue::from);
        let prefix = data
            .get("cidr")
            .filter(|c| !c.is_empty())
            .and_then(|c| c.parse::<u8>().ok());
        let (host, raw) = if let Some(ip4) = data.get("ip4") {
            (Some(GroupValue::from(ip4)), true)
        } else if let Some(ip6) = data.get("ip6") {
            (Some(GroupValue::from(ip6)), true)
        } else if let Some(dns) = data.get("dns") {
            (Some(GroupValue::from(dns)), raw_mode)
        } else {
            if fid.is_none() && data.get("mlfid").is_none() {
                return Err(format!(
                    "No group found in {:?} using {:?}",
                    buffer, self.matcher.failregex[index].resolved
                ));
            }
            (fid.clone(), true)
        };
        let Some(host) = host else {
            return Ok(None);
        };
        if raw {
            let address = if data.get("ip4").is_some() || data.get("ip6").is_some() {
                FailureId::from_host(&host, prefix)
            } else if raw_mode {
                FailureId::Raw(host.to_string())
            } else {
                FailureId::parse(&host)
            };
            match fid {
                Some(f) if f != host => {
                    data.set("ip", Some(compact_str::format_compact!("{address}")));
                    let id = if raw_mode {
                        FailureId::Raw(f.into())
                    } else {
                        FailureId::parse(&f)
                    };
                    Ok(Some(vec![id]))
                }
                _ => Ok(Some(vec![address])),
            }
        } else {
            Ok(Some(resolve_host(&host, &self.options.usedns)))
        }
    }

    /// Replaces the line buffer during a search, keeping the one the search started with in
    /// `org` (failregexes split their matched lines from that one).
    fn replace_buffer(&mut self, org: &mut Option<Vec<TupleLine>>, new: Vec<TupleLine>) {
        let old = std::mem::replace(&mut self.buffer, new);
        org.get_or_insert(old);
    }

    /// MLFID session merge (spec 5.2). Returns the merged data; the session cache keeps its
    /// own copy in sync.
    fn merge_failure(&mut self, key: &str, mut fail: FailData, matched: &[TupleLine]) -> FailData {
        const NOFAIL: u8 = 1;
        const FORGET: u8 = 2;
        const PREV: u8 = 4;
        const GAINED: u8 = 8;
        let wall = wall_clock();
        let position = self.sessions.find_live(key, wall);
        let mut flags = 0u8;
        if fail.truthy("mlfgained") {
            flags |= GAINED | NOFAIL;
            if !fail.truthy("nofail") {
                let gained = fail.get("mlfgained").map(GroupValue::from);
                fail.set("nofail", gained);
            }
        } else if fail.truthy("nofail") {
            flags |= NOFAIL;
        }
        if truthy(&fail.pop("mlfforget")) {
            flags |= FORGET;
        }
        let user = fail
            .get("user")
            .filter(|u| !u.is_empty())
            .map(GroupValue::from);
        let users_len;
        let mut merged = match position {
            Some(pos) => {
                // Overwritten or removed below.
                let mut session = std::mem::take(self.sessions.data_mut(pos));
                if let Some(u) = &user {
                    session
                        .users
                        .get_or_insert_with(Default::default)
                        .insert(u.clone());
                }
                if truthy(&session.pop("nofail")) {
                    flags |= PREV;
                }
                if truthy(&session.pop("mlfgained")) {
                    flags |= PREV;
                }
                if flags & GAINED != 0 {
                    session.mlfpending = false;
                }
                if flags & PREV == 0 && !session.mlfpending {
                    session.matches = None;
                }
                for (k, v) in fail.groups {
                    if v.is_some() {
                        session.set(&k, v);
                    }
                }
                if fail.matches.is_some() {
                    session.matches = fail.matches;
                }
                users_len = session.users.as_ref().map_or(0, |u| u.len());
                if flags & FORGET != 0 {
                    self.sessions.remove(pos);
                }
                session
            }
            None => {
                if flags & FORGET == 0 {
                    if let Some(u) = &user {
                        fail.users
                            .get_or_insert_with(Default::default)
                            .insert(u.clone());
                    }
                }
                users_len = fail.users.as_ref().map_or(0, |u| u.len());
                fail
            }
        };
        if std::mem::take(&mut merged.mlfpending) || users_len > 1 {
            merged.pop("nofail");
            merged.pop("mlfgained");
            flags &= !(GAINED | NOFAIL);
        }
        if flags & NOFAIL == 0 {
            let mut lines = merged.nofail_matches.take().unwrap_or_default();
            lines.extend(merged.matches.take().unwrap_or_default());
            if flags & GAINED == 0 {
                lines.extend(matched.iter().cloned());
            }
            merged.matches = Some(lines);
        } else if flags & (NOFAIL | FORGET) == NOFAIL {
            merged
                .nofail_matches
                .get_or_insert_with(Vec::new)
                .extend(matched.iter().cloned());
        }
        let keep = match position {
            Some(_) => flags & FORGET == 0,
            None => flags & FORGET == 0,
        };
        if keep {
            // Nothing was removed since `position` was taken (FORGET does not keep).
            match position {
                Some(pos) => *self.sessions.data_mut(pos) = merged.clone(),
                None => self.sessions.insert(key, merged.clone(), wall),
            }
        }
        merged
    }
}

/// fail2ban searches the ignoreregexes before the failregexes when there are many of the latter.
fn precheck_ignore(ignoreregexes: usize, failregexes: usize) -> bool {
    ignoreregexes > 0 && ignoreregexes + 2 < failregexes
}

fn single_or_any(maxlines: usize) -> Anchors {
    if maxlines > 1 {
        Anchors::AnyBuffer
    } else {
        Anchors::SingleLineBuffer
    }
}

/// Cut a line to `MAX_LINE_BYTES` at a character boundary.
fn truncate(line: &str) -> (&str, bool) {
    if line.len() <= MAX_LINE_BYTES {
        return (line, false);
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    (&line[..end], true)
}

/// DNS expansion of a captured host name (spec 4.8 step 7).
fn resolve_host(host: &str, usedns: &str) -> Vec<FailureId> {
    let parsed = FailureId::parse(host);
    if !parsed.is_raw() {
        return vec![parsed];
    }
    if usedns != "yes" && usedns != "warn" {
        return Vec::new();
    }
    use std::net::ToSocketAddrs;
    let mut ids: Vec<FailureId> = Vec::new();
    if let Ok(addrs) = (host, 0u16).to_socket_addrs() {
        for a in addrs {
            let id = FailureId::from_host(&a.ip().to_string(), None);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// Split the original buffer lines into matched and unmatched ones (spec 3.2).
fn split_matched(
    buffer: &str,
    lines: &[TupleLine],
    m: &RegexMatch,
) -> (Vec<TupleLine>, Vec<TupleLine>) {
    if lines.len() <= 1 {
        return (lines.to_vec(), Vec::new());
    }
    let bytes = buffer.as_bytes();
    let upto = (m.start + 1).min(bytes.len());
    let line_start = bytes[..upto]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let from = if m.end == 0 {
        bytes.len().saturating_sub(1)
    } else {
        m.end - 1
    };
    let line_end = bytes[from.min(bytes.len())..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |p| from + p + 1);
    let count = |end: usize| bytes[..end].iter().filter(|b| **b == b'\n').count();
    let a = count(line_start).min(lines.len());
    let b = count(line_end).min(lines.len()).max(a);
    let mut matched: Vec<TupleLine> = lines[a..b].to_vec();
    let mut unmatched: Vec<TupleLine> = lines[..a].to_vec();
    let mut skipped = String::new();
    for n in 0.. {
        let name = format!("skiplines{n}");
        if !m.groups.iter().any(|(g, _)| **g == *name) {
            break;
        }
        if let Some(v) = m.get(&name) {
            skipped.push_str(v);
        }
    }
    let mut pos = 0;
    for skipped_line in data::python_splitlines(&skipped) {
        if let Some(k) = matched[pos.min(matched.len())..]
            .iter()
            .position(|t| t.text() == skipped_line)
        {
            unmatched.push(matched.remove(pos + k));
            pos += k;
        }
    }
    unmatched.extend(lines[b..].iter().cloned());
    (matched, unmatched)
}

#[cfg(test)]
mod tests;
