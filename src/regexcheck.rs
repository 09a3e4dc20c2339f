//! `ironban regex-check`: the fail2ban-regex equivalent. Owns argument handling, the REGEX
//! argument lookup (filter name, jail, file, literal), log input, line classification, the
//! report and the `--json` failure stream (fail2ban spec section 9).

mod ahead;
mod input;
mod report;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use crate::date::{DateDetector, LocalZone};
use crate::filter::data::{GroupName, GroupValue, Groups};
use crate::filter::{self, Filter, FilterOptions, Mode, PrefregexDetail};

pub use report::{LineClass, LineStats, Listing, RegexStat, Results};

/// Arguments of `ironban regex-check` (fail2ban-regex's, plus `--json`).
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// `<LOG> <REGEX> [IGNOREREGEX]`: a log file path or log text; a filter name (in
    /// -c DIR/filter.d), jail name, filter file, `name[opt=val,...]` or literal failregex;
    /// an optional literal ignoreregex (replaces the filter's).
    #[arg(value_name = "LOG REGEX [IGNOREREGEX]")]
    pub positional: Vec<String>,
    /// Date pattern; wins over the filter's.
    #[arg(short = 'd', long)]
    pub datepattern: Option<String>,
    /// maxlines for multi-line regexes; wins over the filter's; also the listing limit.
    #[arg(short = 'L', short_alias = 'l', long)]
    pub maxlines: Option<usize>,
    /// Time zone of log dates without one (`logtimezone`).
    #[arg(long, alias = "TZ")]
    pub timezone: Option<String>,
    /// Log encoding; only UTF-8 is supported (invalid bytes become U+FFFD).
    #[arg(short = 'e', long)]
    pub encoding: Option<String>,
    /// Raw hosts: do not resolve names.
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// `usedns` for `<HOST>` (yes, no, warn, raw); the filter's own value is ignored.
    #[arg(long, default_value = "warn")]
    pub usedns: String,
    /// More output (per-hit ids, all regexes and templates).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Numeric verbosity (0..4).
    #[arg(long)]
    pub verbosity: Option<u8>,
    /// Stop at the first matching failregex.
    #[arg(long)]
    pub no_check_all: bool,
    /// Print only this per failure: id, fid, ip, msg, row, a data key, or a `<tag>` template.
    #[arg(short = 'o', long)]
    pub out: Option<String>,
    /// With --out: print the lines without failures instead.
    #[arg(short = 'i', long)]
    pub invert: bool,
    /// Do not list missed lines.
    #[arg(long)]
    pub print_no_missed: bool,
    /// Do not list ignored lines.
    #[arg(long)]
    pub print_no_ignored: bool,
    /// List all matched lines.
    #[arg(long)]
    pub print_all_matched: bool,
    /// List all missed lines, however many.
    #[arg(long)]
    pub print_all_missed: bool,
    /// List all ignored lines, however many.
    #[arg(long)]
    pub print_all_ignored: bool,
    /// JSON Lines on stdout, one object per failure, and nothing else.
    #[arg(long)]
    pub json: bool,
}

/// Checks fail2ban-regex makes before doing anything; each message is printed on stderr and
/// the command exits with 255.
fn argument_errors(args: &Args) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if args.print_no_missed && args.print_all_missed {
        errors.push("ERROR: --print-no-missed and --print-all-missed are mutually exclusive.");
    }
    if args.print_no_ignored && args.print_all_ignored {
        errors.push("ERROR: --print-no-ignored and --print-all-ignored are mutually exclusive.");
    }
    if !matches!(args.positional.len(), 2 | 3) {
        errors.push("ERROR: provide both <LOG> and <REGEX>.");
    }
    errors
}

/// fail2ban's test for "this REGEX argument names a filter" (`^/{0,3}[\w/_\-.]+(?:\[.*\])?$`,
/// dot matching newlines).
pub fn looks_like_name(value: &str) -> bool {
    // The leading `/{0,3}` adds nothing: `/` is in the class anyway.
    let (name, rest) = match value.find('[') {
        Some(pos) => value.split_at(pos),
        None => (value, ""),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '-' | '.'));
    name_ok && (rest.is_empty() || rest.ends_with(']'))
}

/// One failure as a `--json` line appended to `out`, keys in this order:
/// `{"line","fid","ip","time","user"?,"captures"}`.
pub fn json_failure(
    out: &mut String,
    line: u64,
    fid: Option<&str>,
    ip: Option<&str>,
    time: Option<f64>,
    user: Option<&str>,
    captures: &[(GroupName, Option<GroupValue>)],
) {
    out.push_str("{\"line\":");
    push_u64(out, line);
    out.push_str(",\"fid\":");
    push_json_str(out, fid);
    out.push_str(",\"ip\":");
    push_json_str(out, ip);
    out.push_str(",\"time\":");
    match time {
        // serde_json writes whole floats as `1308330045.0`; both print the shortest
        // round-trip digits, in plain notation inside this range.
        Some(t) if t.is_finite() && (1e-5..1e16).contains(&t.abs()) => {
            if t.fract() == 0.0 {
                if t < 0.0 {
                    out.push('-');
                }
                // Whole and below 1e16: exactly the integer `{t:.1}` prints, without
                // the float formatter.
                push_u64(out, t.abs() as u64);
                out.push_str(".0");
            } else {
                let _ = write!(out, "{t}");
            }
        }
        other => out.push_str(&serde_json::Value::from(other).to_string()),
    }
    if let Some(user) = user {
        out.push_str(",\"user\":");
        push_json_str(out, Some(user));
    }
    out.push_str(",\"captures\":{");
    for (i, (name, value)) in captures.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, Some(name));
        out.push(':');
        push_json_str(out, value.as_deref());
    }
    out.push_str("}}");
}

/// Decimal digits of `n` (what `{n}` prints).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// A JSON string (or `null`) as serde_json escapes it.
fn push_json_str(out: &mut String, value: Option<&str>) {
    match value {
        Some(text) => crate::config::value::push_json_str(out, text, false),
        None => out.push_str("null"),
    }
}

/// Where the filter definition came from and what regex-check prints about it.
#[derive(Debug, Default)]
struct Setup {
    /// "Use ..." lines in fail2ban's order.
    header: Vec<String>,
    options: FilterOptions,
    /// Original (untagged-resolved) texts, as the report prints them.
    failregex: Vec<String>,
    ignoreregex: Vec<String>,
    maxlines_set: bool,
    datepattern_set: bool,
}

/// A failure as fail2ban-regex reports an error: `ERROR: ...` on stdout, exit 255.
struct Fatal(String);

impl From<filter::FilterError> for Fatal {
    fn from(e: filter::FilterError) -> Fatal {
        Fatal(format!("ERROR: {e}"))
    }
}

/// The name fail2ban-regex prints after a date pattern: the first template's name when the
/// pattern gives one or two templates, else "Default Detectors".
fn datepattern_name(pattern: &str, timezone: Option<&str>) -> Result<String, Fatal> {
    let detector = DateDetector::new(Some(pattern), timezone, LocalZone::system())
        .map_err(|e| Fatal(format!("ERROR: {e}")))?;
    let templates = detector.template_hits();
    Ok(match templates.as_slice() {
        [(name, _)] | [(name, _), _] => name.clone(),
        _ => "Default Detectors".to_string(),
    })
}

impl Setup {
    fn set_maxlines(&mut self, value: usize) {
        if !self.maxlines_set {
            self.maxlines_set = true;
            self.options.maxlines = value.max(1);
            self.header.push(report::use_line(
                "maxlines",
                &self.options.maxlines.to_string(),
            ));
        }
    }

    fn set_datepattern(&mut self, pattern: &str, timezone: Option<&str>) -> Result<(), Fatal> {
        if !self.datepattern_set {
            self.datepattern_set = true;
            let name = datepattern_name(pattern, timezone)?;
            self.options.datepattern = Some(pattern.to_string());
            self.header.push(report::use_line(
                "datepattern",
                &format!("{pattern} : {name}"),
            ));
        }
        Ok(())
    }

    /// Apply the options regex-check takes from a filter/jail command stream (spec 9.2.6).
    fn apply_stream(
        &mut self,
        stream: &[Vec<serde_json::Value>],
        timezone: Option<&str>,
    ) -> Result<(), Fatal> {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        for cmd in stream {
            let verb = cmd.first().and_then(|v| v.as_str());
            if !matches!(verb, Some("set" | "multi-set")) || cmd.len() < 4 {
                continue;
            }
            let values: Vec<String> = match &cmd[3] {
                serde_json::Value::Array(items) => items.iter().filter_map(text).collect(),
                other => text(other).into_iter().collect(),
            };
            match cmd[2].as_str() {
                Some("prefregex") => {
                    self.options.prefregex = values.last().cloned().filter(|v| !v.trim().is_empty())
                }
                Some("addfailregex") => self.failregex.extend(values),
                Some("addignoreregex") => self.ignoreregex.extend(values),
                Some("maxlines") => {
                    for v in values {
                        let n = v.trim().parse::<usize>().map_err(|_| {
                            Fatal(format!("ERROR: Invalid value for maxlines ({v:?})"))
                        })?;
                        self.set_maxlines(n);
                    }
                }
                Some("datepattern") => {
                    for v in values {
                        self.set_datepattern(&v, timezone)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Resolves the REGEX argument (spec 9.2) into `setup`.
fn read_failregex(conf: &Path, value: &str, setup: &mut Setup, args: &Args) -> Result<(), Fatal> {
    if looks_like_name(value) {
        let (name, options) = crate::config::tags::extract_options(value).map_err(|e| {
            Fatal(format!(
                "ERROR: Wrong filter name or options: {e}\n       while parsing: {value}"
            ))
        })?;
        let loaded = filter_source::load(conf, value, &name, &options, &mut setup.header)
            .map_err(|e| Fatal(format!("{e}\nERROR: failed to load filter {value}")))?;
        if let Some(stream) = loaded {
            return setup.apply_stream(&stream, args.timezone.as_deref());
        }
    }
    setup
        .header
        .push(report::use_line("failregex line", &report::shortstr(value)));
    setup.failregex = vec![value.to_string()];
    Ok(())
}

/// Output of the run besides the report.
#[derive(Debug, Clone, PartialEq)]
enum Emit {
    Report,
    Json,
    /// `-o FMT` (with `-i`: lines without failures).
    Out {
        format: String,
        invert: bool,
    },
}

/// Per-run state: the counters and what to print (the filter is kept beside it).
struct Checker {
    /// The filter's `maxlines` (earlier lines can be re-classified when above 1).
    maxlines: usize,
    results: Results,
    listing: Listing,
    emit: Emit,
    prefregex_text: Option<String>,
    /// Reused for each `--json` line and its failure id.
    scratch_json: String,
    scratch_fid: String,
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Python's repr of a time: an int when the date had a zone, else a float.
fn py_time(t: f64, zoned: bool) -> String {
    if zoned && t.fract() == 0.0 && t.abs() < 1e16 {
        format!("{t:.0}")
    } else {
        py_float(t)
    }
}

/// Python's float repr for whole and fractional seconds.
fn py_float(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1e16 {
        format!("{t:.1}")
    } else {
        format!("{t}")
    }
}

impl Checker {
    /// Account for one line's result; writes `--json`/`-o` output to `sink`.
    fn line(
        &mut self,
        line: &str,
        line_no: u64,
        result: filter::LineResult,
        sink: &mut impl Write,
    ) -> io::Result<()> {
        if result.truncated {
            self.results.hostile += 1;
        }
        match &self.emit {
            Emit::Report => {}
            Emit::Json => {
                for failure in result.failures.iter().filter(|f| !f.nofail()) {
                    let Some(id) = &failure.id else { continue };
                    let mut fid = std::mem::take(&mut self.scratch_fid);
                    fid.clear();
                    id.push_to(&mut fid);
                    let ip = match failure.data.get("ip") {
                        Some(ip) => Some(ip),
                        None if !id.is_raw() => Some(fid.as_str()),
                        None => None,
                    };
                    let json = &mut self.scratch_json;
                    json.clear();
                    json_failure(
                        json,
                        line_no,
                        Some(&fid),
                        ip,
                        failure.time,
                        failure.data.get("user"),
                        &failure.data.groups,
                    );
                    json.push('\n');
                    sink.write_all(json.as_bytes())?;
                    self.scratch_fid = fid;
                }
                return Ok(());
            }
            Emit::Out { format, invert } => {
                let zoned = result.zoned;
                let ignored =
                    !result.ignored.is_empty() || result.failures.iter().any(|f| f.nofail());
                let failures: Vec<&filter::Failure> =
                    result.failures.iter().filter(|f| !f.nofail()).collect();
                if *invert {
                    if failures.is_empty() {
                        write_out_line(sink, format, None, line, result.time, zoned)?;
                    }
                } else if !ignored {
                    for failure in failures {
                        write_out_line(sink, format, Some(failure), line, result.time, zoned)?;
                    }
                }
                return Ok(());
            }
        }

        let mut is_ignored = !result.ignored.is_empty();
        for idx in &result.ignored {
            if let Some(stat) = self.results.ignoreregex.get_mut(*idx) {
                stat.hits += 1;
            }
        }
        let mut counted = 0usize;
        for failure in &result.failures {
            if let Some(stat) = self.results.failregex.get_mut(failure.regex_index) {
                stat.hits += 1;
                if self.listing.verbose > 0 {
                    let id = failure
                        .id
                        .as_ref()
                        .map_or_else(|| "None".to_string(), |id| id.to_string());
                    // fail2ban's flag is `len(ret) > 1`: two or more earlier results.
                    stat.ids.push((id, failure.time, counted > 1));
                }
            }
            if failure.nofail() {
                is_ignored = true;
            } else {
                counted += 1;
            }
        }
        if let (Some(groups), Some((_, hits, kept))) =
            (&result.prefregex_groups, self.results.prefregex.as_mut())
        {
            *hits += 1;
            if self.listing.verbose > 0 && kept.len() <= self.listing.limit {
                if kept.len() == self.listing.limit {
                    kept.push("...".to_string());
                } else {
                    kept.push(py_repr_groups(groups));
                }
            }
        }
        if self.maxlines > 1 {
            let mut seen: Vec<&str> = Vec::new();
            for earlier in &result.matched_lines {
                if earlier != line && !seen.contains(&earlier.as_str()) {
                    seen.push(earlier);
                    self.results
                        .lines
                        .reclassify_as_matched(earlier, &self.listing);
                }
            }
        }
        let class = if is_ignored {
            LineClass::Ignored
        } else if counted > 0 {
            LineClass::Matched
        } else {
            LineClass::Missed
        };
        self.results.lines.add(class, line, &self.listing);
        Ok(())
    }

    fn finish(mut self, filter: &Filter) -> Results {
        self.results.date_hits = filter.date_detector.as_ref().map(|d| d.template_hits());
        if let (Some(text), Some(pref)) =
            (self.prefregex_text.take(), self.results.prefregex.as_mut())
        {
            pref.0 = text;
        }
        self.results
    }
}

/// Python repr of a group dict (`{'mlfid': ' srv sshd[1]: ', 'port': None}`).
fn py_repr_groups(groups: &[(GroupName, Option<GroupValue>)]) -> String {
    let body: Vec<String> = groups
        .iter()
        .map(|(k, v)| {
            let value = v
                .as_deref()
                .map_or_else(|| "None".to_string(), report::py_repr_str);
            format!("{}: {}", report::py_repr_str(k), value)
        })
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// One `-o FMT` output line (or several for `msg`).
fn write_out_line(
    sink: &mut impl Write,
    format: &str,
    failure: Option<&filter::Failure>,
    line: &str,
    time: Option<f64>,
    zoned: bool,
) -> io::Result<()> {
    let id = failure
        .and_then(|f| f.id.as_ref())
        .map_or_else(String::new, |id| id.to_string());
    let data = failure.map(|f| &f.data);
    let matches = failure.map_or_else(|| vec![line.to_string()], |f| f.matches());
    let get = |name: &str| data.and_then(|d| d.get(name)).map(str::to_string);
    match format {
        "id" | "fid" => writeln!(sink, "{id}"),
        "ip" => writeln!(sink, "{}", get("ip").unwrap_or(id)),
        "msg" => {
            for m in matches {
                writeln!(sink, "{m}")?;
            }
            Ok(())
        }
        "row" => {
            let mut groups: Groups = data.map(|d| d.groups.clone()).unwrap_or_default();
            groups.retain(|(k, _)| &**k != "matches");
            let mut dict = py_repr_groups(&groups);
            if let Some(users) = data.and_then(|d| d.users.as_ref()) {
                let set: Vec<String> = users.iter().map(|u| report::py_repr_str(u)).collect();
                dict.pop();
                if !groups.is_empty() {
                    dict.push_str(", ");
                }
                dict.push_str(&format!("'users': {{{}}}}}", set.join(", ")));
            }
            let time = failure.and_then(|f| f.time).or(time);
            writeln!(
                sink,
                "[{},\t{},\t{}],",
                report::py_repr_str(&id),
                time.map_or_else(|| "None".to_string(), |t| py_time(t, zoned)),
                dict
            )
        }
        f if !f.contains('<') => {
            writeln!(sink, "{}", get(f).unwrap_or_else(|| "None".to_string()))
        }
        template => {
            let time = failure.and_then(|f| f.time).or(time);
            let mut text = template
                .replace("<fid>", &id)
                .replace("<ip>", &get("ip").unwrap_or_else(|| id.clone()))
                .replace(
                    "<time>",
                    &time.map_or_else(String::new, |t| py_time(t, zoned)),
                )
                .replace("<matches>", &matches.join("\n"));
            for (name, value) in data.map(|d| d.groups.as_slice()).unwrap_or_default() {
                let tag = format!("<F-{}>", name.to_uppercase());
                text = text.replace(&tag, value.as_deref().unwrap_or(""));
            }
            text = drop_unknown_f_tags(&text);
            if text.contains("<msg>") {
                for m in &matches {
                    writeln!(sink, "{}", text.replace("<msg>", m))?;
                }
                Ok(())
            } else {
                writeln!(sink, "{text}")
            }
        }
    }
}

/// `<F-NAME>` tags without a captured value print as nothing (fail2ban's dynamic tags).
fn drop_unknown_f_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("<F-") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 3..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('>') {
            rest = &after[name_len + 1..];
        } else {
            out.push_str("<F-");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Progress bar on stderr for big files, only when stderr is a terminal.
fn progress_bar(path: &Path) -> Option<indicatif::ProgressBar> {
    const BIG_FILE: u64 = 16 << 20;
    use std::io::IsTerminal;
    let len = std::fs::metadata(path).ok()?.len();
    if len < BIG_FILE || !io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

pub fn run(conf: &Path, args: Args) -> anyhow::Result<u8> {
    let errors = argument_errors(&args);
    if !errors.is_empty() {
        eprintln!(
            "Usage: ironban regex-check [OPTIONS] <LOG> <REGEX> [IGNOREREGEX]\n\n{}",
            errors.join("\n")
        );
        return Ok(255);
    }
    let stdout = io::stdout();
    let mut sink = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match check(conf, &args, &mut sink) {
        Ok(()) => {
            sink.flush()?;
            Ok(0)
        }
        Err(Fatal(message)) => {
            writeln!(sink, "{message}")?;
            sink.flush()?;
            Ok(255)
        }
    }
}

fn io_fatal(e: io::Error) -> Fatal {
    Fatal(format!("ERROR: {e}"))
}

/// Reads the filter (REGEX and IGNOREREGEX arguments, CLI overrides) into `setup` and builds
/// the filter with its date detector.
fn prepare(
    conf: &Path,
    args: &Args,
    regex: &str,
    rest: &[String],
    machine: bool,
    setup: &mut Setup,
) -> Result<Filter, Fatal> {
    let timezone = args.timezone.as_deref();
    if let Some(n) = args.maxlines.filter(|n| *n > 0) {
        setup.set_maxlines(n);
    }
    if let Some(pattern) = &args.datepattern {
        setup.set_datepattern(pattern, timezone)?;
    }
    read_failregex(conf, regex, setup, args)?;
    if let Some(ignore) = rest.first() {
        setup.header.push(report::use_line(
            "ignoreregex line",
            &report::shortstr(ignore),
        ));
        setup.ignoreregex = vec![ignore.clone()];
    }
    setup.options.failregex = setup.failregex.clone();
    setup.options.ignoreregex = setup.ignoreregex.clone();

    // Server-like processing for machine output: first failregex only, pending dropped.
    let mode = Mode {
        check_all_regex: !args.no_check_all && !machine,
        ignore_pending: machine,
        return_raw_host: args.raw,
        check_find_time: false,
    };
    let mut filter = Filter::new(&setup.options, mode).map_err(Fatal::from)?;
    filter.prefregex_detail = match (machine, args.verbosity.unwrap_or(args.verbose)) {
        (true, _) => PrefregexDetail::Nothing,
        (false, 0) => PrefregexDetail::Hit,
        (false, _) => PrefregexDetail::Groups,
    };
    Ok(filter)
}

/// The whole fail2ban-regex run; report text goes to `sink` unless `--json`/`-o`.
fn check(conf: &Path, args: &Args, sink: &mut impl Write) -> Result<(), Fatal> {
    let [log, regex, rest @ ..] = args.positional.as_slice() else {
        return Err(Fatal("ERROR: provide both <LOG> and <REGEX>.".into()));
    };
    let emit = if args.json {
        Emit::Json
    } else if let Some(format) = &args.out {
        Emit::Out {
            format: format.clone(),
            invert: args.invert,
        }
    } else {
        Emit::Report
    };
    let report = emit == Emit::Report;
    if report {
        write!(sink, "\nRunning tests\n=============\n\n").map_err(io_fatal)?;
    }
    let mut setup = Setup {
        options: FilterOptions {
            usedns: args.usedns.to_lowercase(),
            logtimezone: args.timezone.clone(),
            ..FilterOptions::default()
        },
        ..Setup::default()
    };
    // fail2ban prints each "Use" line as it goes: on an error, show those printed so far.
    let filter = match prepare(conf, args, regex, rest, !report, &mut setup) {
        Ok(prepared) => prepared,
        Err(fatal) => {
            if report {
                for line in &setup.header {
                    writeln!(sink, "{line}").map_err(io_fatal)?;
                }
            }
            return Err(fatal);
        }
    };

    let path = Path::new(log);
    let is_file = path.is_file();
    if is_file {
        setup.header.push(report::use_line("log file", log));
        let encoding = args.encoding.as_deref().unwrap_or("UTF-8");
        let normalized = encoding.to_ascii_lowercase().replace(['-', '_'], "");
        if normalized != "utf8" {
            return Err(Fatal(format!(
                "ERROR: unsupported encoding {encoding:?}: only UTF-8 is read (invalid bytes become U+FFFD)"
            )));
        }
        setup.header.push(report::use_line("encoding", encoding));
    } else {
        let lines = input::text_lines(log, setup.options.maxlines);
        if lines.len() == 1 {
            setup.header.push(report::use_line(
                "single line",
                &report::shortstr(&log.replace('\n', "\\n")),
            ));
        } else {
            setup
                .header
                .push(format!("Use       multi line : {} line(s)", lines.len()));
            for (i, l) in lines.iter().enumerate() {
                if i >= 5 {
                    setup.header.push("| ...".to_string());
                    break;
                }
                setup
                    .header
                    .push(format!("| {:>2}: {}", i + 1, report::shortstr(l)));
            }
            setup.header.push("`-".to_string());
        }
    }
    if report {
        for line in &setup.header {
            writeln!(sink, "{line}").map_err(io_fatal)?;
        }
        writeln!(sink).map_err(io_fatal)?;
        sink.flush().map_err(io_fatal)?;
    }

    let listing = Listing {
        verbose: args.verbosity.unwrap_or(args.verbose),
        print_all_matched: args.print_all_matched,
        print_all_missed: args.print_all_missed,
        print_all_ignored: args.print_all_ignored,
        print_no_missed: args.print_no_missed,
        print_no_ignored: args.print_no_ignored,
        limit: args.maxlines.filter(|n| *n > 0).unwrap_or(20),
    };
    let prefregex_text = filter
        .matcher
        .prefregex
        .as_ref()
        .map(|p| p.resolved.clone());
    let mut filter = filter;
    let mut checker = Checker {
        results: Results {
            prefregex: prefregex_text.as_ref().map(|t| (t.clone(), 0, Vec::new())),
            failregex: setup.failregex.iter().map(|t| RegexStat::new(t)).collect(),
            ignoreregex: setup
                .ignoreregex
                .iter()
                .map(|t| RegexStat::new(t))
                .collect(),
            ..Results::default()
        },
        maxlines: filter.options.maxlines,
        listing: listing.clone(),
        emit,
        prefregex_text,
        scratch_json: String::with_capacity(256),
        scratch_fid: String::with_capacity(64),
    };

    let started = std::time::Instant::now();
    let now = wall_clock();
    if is_file {
        let mut reader = input::LineReader::open(path).map_err(io_fatal)?;
        let bar = progress_bar(path);
        let mut since_update = 0u32;
        // The next line to check (read into `line`) and its number.
        let mut next = |line: &mut String| -> io::Result<Option<u64>> {
            loop {
                let Some((line_no, raw)) = reader.next_line()? else {
                    return Ok(None);
                };
                let text = input::strip_eol(&raw);
                if input::is_skipped(text) {
                    continue;
                }
                line.clear();
                line.push_str(text);
                since_update += 1;
                if since_update == 65_536 {
                    since_update = 0;
                    if let Some(bar) = &bar {
                        bar.set_position(reader.bytes);
                    }
                }
                return Ok(Some(line_no));
            }
        };
        if filter.options.maxlines == 1 {
            ahead::run(&mut filter, now, &mut next, |pending, result| {
                checker.line(pending.line(), pending.line_no, result, sink)
            })
            .map_err(io_fatal)?;
        } else {
            let mut line = String::new();
            while let Some(line_no) = next(&mut line).map_err(io_fatal)? {
                let result = filter.process_line(&line, now);
                checker
                    .line(&line, line_no, result, sink)
                    .map_err(io_fatal)?;
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    } else {
        for (i, raw) in input::text_lines(log, filter.options.maxlines)
            .into_iter()
            .enumerate()
        {
            let line = input::strip_eol(raw);
            if !input::is_skipped(line) {
                let result = filter.process_line(line, now);
                checker
                    .line(line, i as u64 + 1, result, sink)
                    .map_err(io_fatal)?;
            }
        }
    }
    if report {
        let mut results = checker.finish(&filter);
        results.elapsed = Some(started.elapsed().as_secs_f64());
        sink.write_all(results.render(&listing).as_bytes())
            .map_err(io_fatal)?;
    }
    Ok(())
}

/// Finding a named filter or jail in the configuration (spec 9.2 steps 1-3).
mod filter_source {
    use std::path::{Path, PathBuf};

    use super::report::{py_repr_dict, use_line};
    use crate::config::{self, Command};

    /// The jail name fail2ban-regex reads filters for.
    const JAIL: &str = "fail2ban-regex-jail";

    /// A loaded stream, or the error text fail2ban-regex prints before
    /// `ERROR: failed to load filter ...`.
    pub type Loaded = Result<Option<Vec<Vec<serde_json::Value>>>, String>;

    fn to_json(stream: Vec<Command>) -> Vec<Vec<serde_json::Value>> {
        stream
            .into_iter()
            .map(|cmd| cmd.iter().map(config::Value::to_json).collect())
            .collect()
    }

    /// fail2ban's `"." in name[~5:]`: a dot among the last six characters.
    fn has_extension(name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        chars[chars.len().saturating_sub(6)..].contains(&'.')
    }

    fn is_filter_d(dir: &Path) -> bool {
        dir.file_name().is_some_and(|n| n == "filter.d")
    }

    /// The command stream of the filter or jail `value` (`name` with `options` parsed from
    /// it), adding the "Use ..." header lines. `Ok(None)`: nothing by that name exists, the
    /// argument is a literal regex.
    pub fn load(
        conf: &Path,
        value: &str,
        name: &str,
        options: &[(String, String)],
        header: &mut Vec<String>,
    ) -> Loaded {
        // 1. A bare name may be a jail: its filter with the jail's and the given options.
        if !name.contains('/') && !name.ends_with(".conf") && !name.ends_with(".local") {
            let mut extra = options.to_vec();
            extra.push(("backend".into(), "auto".into()));
            if let Ok(Some(stream)) = config::jail_stream(conf, name, &extra) {
                header.push(use_line("jail", name));
                if !options.is_empty() {
                    header.push(use_line("jail/flt options", &py_repr_dict(options)));
                }
                return Ok(Some(to_json(stream)));
            }
        }
        // 2. Candidate files.
        let candidates: Vec<String> = if has_extension(name) {
            vec![name.to_string()]
        } else {
            vec![
                name.to_string(),
                format!("{name}.conf"),
                format!("{name}.local"),
            ]
        };
        let mut basedir = conf.to_path_buf();
        let mut found: Option<PathBuf> = None;
        for candidate in candidates {
            let path = if candidate.contains('/') {
                let path = PathBuf::from(&candidate);
                basedir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                path
            } else if is_filter_d(conf) {
                conf.join(&candidate)
            } else {
                conf.join("filter.d").join(&candidate)
            };
            if path.is_file() {
                found = Some(path);
                break;
            }
        }
        let Some(path) = found else {
            return Ok(None);
        };
        // 3. Inside the configuration: the normal algorithm (.conf + .local, includes).
        let stream = if basedir == conf
            || is_filter_d(&basedir)
            || (!has_extension(name) && !name.contains('/'))
        {
            if is_filter_d(&basedir) {
                basedir = basedir.parent().map(Path::to_path_buf).unwrap_or_default();
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            header.push(use_line(
                "filter file",
                &format!("{stem}, basedir: {}", basedir.display()),
            ));
            if !options.is_empty() {
                header.push(use_line("filter options", &py_repr_dict(options)));
            }
            let spec = match value.find('[') {
                Some(pos) => format!("{stem}{}", &value[pos..]),
                None => stem,
            };
            config::filter_stream(&basedir, &spec, JAIL, &[])
        } else {
            header.push(use_line("filter file", name));
            if !options.is_empty() {
                header.push(use_line("filter options", &py_repr_dict(options)));
            }
            let absolute = std::path::absolute(&path).unwrap_or(path);
            config::filter_file_stream(&absolute, options, JAIL)
        };
        stream
            .map(|s| Some(to_json(s)))
            .map_err(|e| format!("Wrong config file: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versus_literal_regexes() {
        for name in [
            "sshd",
            "sshd[mode=aggressive]",
            "/etc/fail2ban/filter.d/sshd.conf",
            "///x.local",
            "filter.d/kerio",
            "////x",
            "x[]",
            "é.conf",
            "sendmail-reject[mode=extra, x=\"a b\"]",
        ] {
            assert!(looks_like_name(name), "{name}");
        }
        for literal in ["^Failed from <HOST>$", "a b", "[x]", "sshd[mode=extra", ""] {
            assert!(!looks_like_name(literal), "{literal}");
        }
    }

    #[test]
    fn unknown_f_tags_print_as_nothing() {
        assert_eq!(drop_unknown_f_tags("<ip>:<F-USER>"), "<ip>:");
        assert_eq!(drop_unknown_f_tags("a<F-X_1>b<F->c<F-y"), "ab<F->c<F-y");
    }

    #[test]
    fn argument_checks() {
        let mut args = Args {
            positional: vec!["l".into()],
            ..Args::default()
        };
        assert_eq!(
            argument_errors(&args),
            ["ERROR: provide both <LOG> and <REGEX>."]
        );
        args.positional.push("r".into());
        assert!(argument_errors(&args).is_empty());
        args.print_no_missed = true;
        args.print_all_missed = true;
        assert_eq!(argument_errors(&args).len(), 1);
    }

    #[test]
    fn json_strings_and_times_as_serde_json_writes_them() {
        for text in [
            "plain",
            "q\"b\\s",
            "c\u{1}\u{1f}\n\r\t\u{8}\u{c}",
            "ü€😀",
            "",
            "a\"b é\u{7f}x\\",
            "\u{0}tail",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, Some(text));
            assert_eq!(out, serde_json::Value::from(text).to_string());
        }
        for t in [
            1308330045.0,
            1308330045.25,
            0.5,
            1e-7,
            1e17,
            f64::NAN,
            -3.0,
            1e-5,
            9_999_999_999_999_998.0,
            9_007_199_254_740_992.0,
            -1e15,
        ] {
            let mut line = String::new();
            json_failure(&mut line, 1, None, None, Some(t), None, &[]);
            let expected = format!("\"time\":{}", serde_json::Value::from(t));
            assert!(line.contains(&expected), "{line} lacks {expected}");
        }
    }

    #[test]
    fn json_failure_shape() {
        let mut line = String::new();
        json_failure(
            &mut line,
            7,
            Some("192.0.2.1"),
            Some("192.0.2.1"),
            Some(1_308_330_045.0),
            Some("root"),
            &[("user".into(), Some("root".into())), ("port".into(), None)],
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["line"], 7);
        assert_eq!(value["ip"], "192.0.2.1");
        assert_eq!(value["time"].as_f64(), Some(1_308_330_045.0));
        assert!(line.contains("\"time\":1308330045.0"));
        assert_eq!(value["captures"]["port"], serde_json::Value::Null);
        let mut no_user = String::new();
        json_failure(&mut no_user, 1, Some("sess1"), None, None, None, &[]);
        assert_eq!(
            no_user,
            r#"{"line":1,"fid":"sess1","ip":null,"time":null,"captures":{}}"#
        );
    }
}
