//! `ironban test-samples`: fail2ban's sample-log test over failJSON annotations
//! (upstream `samplestestcase.py`): every annotated line of `LOGDIR/<filter>` is run through
//! each filter variant and compared with its `failJSON` expectation.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value as Json;

use crate::addr::FailureId;
use crate::config::Value;
use crate::date::LocalZone;
use crate::filter::regex::resolve_tags;
use crate::filter::{Filter, FilterOptions, LineResult, Mode};

/// The fixed "now" of the sample tests (2005-08-14 10:00:00 UTC).
pub const TEST_NOW: f64 = 1_124_013_600.0;
const TEST_NOW_TEXT: &str = "2005-08-14T10:00:00";
/// The POSIX zone of the sample tests.
pub const TEST_TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";

#[derive(clap::Args)]
pub struct Args {
    /// Directory holding the annotated sample logs (one file per filter name).
    #[arg(long)]
    pub samples: PathBuf,
    /// Additional config directory whose `filter.d/zzz-*.conf` test filters are tested too.
    #[arg(long = "extra-conf")]
    pub extra_conf: Vec<PathBuf>,
    /// Only these filters (default: all of `filter.d` except `*common.conf`).
    pub filters: Vec<String>,
}

/// Outcome of one filter's sample test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterReport {
    pub name: String,
    pub passed: usize,
    /// One message per failed assertion.
    pub failures: Vec<String>,
}

pub fn run(conf: &Path, args: Args) -> anyhow::Result<u8> {
    let mut tests: Vec<(String, PathBuf)> = Vec::new();
    for name in filter_names(conf, |n| !n.ends_with("common"))? {
        tests.push((name, conf.to_path_buf()));
    }
    for extra in &args.extra_conf {
        for name in filter_names(extra, |n| n.starts_with("zzz-"))? {
            tests.push((name, extra.clone()));
        }
    }
    if !args.filters.is_empty() {
        let unknown: Vec<&String> = args
            .filters
            .iter()
            .filter(|f| !tests.iter().any(|(n, _)| n == *f))
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!("unknown filter(s): {unknown:?}");
        }
        tests.retain(|(n, _)| args.filters.contains(n));
    }
    let zone = LocalZone::posix(TEST_TZ).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for (name, base) in &tests {
        let report = test_filter(name, base, &args.samples, &zone);
        for failure in &report.failures {
            println!("{failure}");
        }
        println!(
            "{}: {} passed, {} failed",
            report.name,
            report.passed,
            report.failures.len()
        );
        passed += report.passed;
        failed += report.failures.len();
    }
    println!("{passed} passed, {failed} failed");
    Ok(u8::from(failed > 0))
}

fn filter_names(conf: &Path, keep: impl Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
    let dir = conf.join("filter.d");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".conf").map(str::to_string)
        })
        .filter(|n| keep(n))
        .collect();
    names.sort();
    Ok(names)
}

/// One filter variant (an options combination) with the regex indexes that had samples.
struct Variant {
    key: String,
    opts: serde_json::Map<String, Json>,
    filter: Filter,
    used: HashSet<usize>,
}

/// Python's `str(dict)` for the variant name (JSON objects keep their order).
fn py_dict_repr(map: &serde_json::Map<String, Json>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_json_repr(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn py_repr_str(s: &str) -> String {
    Value::Str(s.to_string()).python_repr()
}

fn py_json_repr(v: &Json) -> String {
    match v {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => py_repr_str(s),
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(py_json_repr).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(o) => py_dict_repr(o),
    }
}

fn json_plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluate the corpus' `test.condition`/`constraint` expressions: `A == B` / `A != B` where
/// each side is `name`, `opts.get('key')` or a quoted literal.
pub fn eval_condition(
    expr: &str,
    name: &str,
    opts: &serde_json::Map<String, Json>,
) -> Result<bool, String> {
    let (lhs, rhs, equal) = if let Some((l, r)) = expr.split_once("==") {
        (l, r, true)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l, r, false)
    } else {
        return Err(format!("unsupported expression {expr:?}"));
    };
    let operand = |text: &str| -> Result<Option<String>, String> {
        let t = text.trim();
        if t == "name" {
            return Ok(Some(name.to_string()));
        }
        if let Some(key) = t
            .strip_prefix("opts.get(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let key = unquote(key.trim()).ok_or_else(|| format!("bad key in {expr:?}"))?;
            return Ok(opts.get(&key).map(json_plain));
        }
        if t == "None" {
            return Ok(None);
        }
        unquote(t)
            .map(Some)
            .ok_or_else(|| format!("unsupported operand {t:?} in {expr:?}"))
    };
    let (a, b) = (operand(lhs)?, operand(rhs)?);
    Ok((a == b) == equal)
}

fn unquote(t: &str) -> Option<String> {
    let inner = t
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| t.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
    Some(inner.to_string())
}

/// fail2ban's RE_WRONG_GREED: a greedy catch-all before `<HOST>` not hard-anchored after it.
fn wrong_greed_re() -> Option<fancy_regex::Regex> {
    let host = resolve_tags("<HOST>", "warn");
    let pattern = format!(
        r"\.[+*](?!\?)[^$^]*{}.*(?:\.[+*].*|[^$])$",
        fancy_regex::escape(&host)
    );
    fancy_regex::Regex::new(&pattern).ok()
}

fn build_variant(
    test_name: &str,
    key: String,
    base: &Path,
    opts: &serde_json::Map<String, Json>,
    zone: &LocalZone,
) -> Result<Variant, String> {
    let extra: Vec<(String, String)> = opts
        .iter()
        .filter(|(k, _)| !k.starts_with("test."))
        .map(|(k, v)| (k.clone(), json_plain(v)))
        .collect();
    let stream = crate::config::filter_stream(base, test_name, "jail", &extra)
        .map_err(|e| format!("{key}: cannot read filter: {}", e.message))?;
    // Only these options reach the test filter; usedns keeps its default.
    let mut options = FilterOptions::default();
    for cmd in &stream {
        if let Some(Value::Str(option)) = cmd.get(2) {
            if matches!(
                option.as_str(),
                "prefregex" | "addfailregex" | "addignoreregex" | "maxlines" | "datepattern"
            ) {
                options.apply(cmd);
            }
        }
    }
    options.journal = opts.get("logtype").and_then(Json::as_str) == Some("journal");
    let mode = Mode {
        check_all_regex: true,
        ignore_pending: false,
        return_raw_host: true,
        check_find_time: false,
    };
    let mut filter = Filter::with_zone(&options, mode, zone.clone())
        .map_err(|e| format!("{key}: cannot build filter: {e}"))?;
    if options.journal {
        // Journal lines come with their time; the sample test never runs the detector.
        filter.date_detector = None;
    }
    if let Some(greed) = wrong_greed_re() {
        for re in &filter.matcher.failregex {
            if greed.is_match(&re.resolved).unwrap_or(false) {
                return Err(format!(
                    "{key}: regexp contains greedy catch-all before <HOST>, that is not \
                     hard-anchored at end or has not precise sub expression after <HOST>: {}",
                    re.original
                ));
            }
        }
    }
    Ok(Variant {
        key,
        opts: opts.clone(),
        filter,
        used: HashSet::new(),
    })
}

/// Run one filter's sample test.
pub fn test_filter(name: &str, base: &Path, samples: &Path, zone: &LocalZone) -> FilterReport {
    let mut report = FilterReport {
        name: name.to_string(),
        ..FilterReport::default()
    };
    let mut state = TestState {
        name,
        base,
        zone,
        variants: Vec::new(),
        active: Vec::new(),
        used_regex_texts: HashSet::new(),
    };
    let mut files = vec![name.to_string()];
    let mut index = 0;
    while index < files.len() {
        let file = samples.join(&files[index]);
        index += 1;
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                report
                    .failures
                    .push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        state.run_file(&file, &bytes, &mut files, &mut report);
    }
    for v in &state.variants {
        for (i, re) in v.filter.matcher.failregex.iter().enumerate() {
            if v.used.contains(&i) || state.used_regex_texts.contains(&re.resolved) {
                report.passed += 1;
            } else {
                report.failures.push(format!(
                    "{}: Regex has no samples: {i}: {:?}",
                    v.key, re.original
                ));
            }
        }
    }
    report
}

struct TestState<'a> {
    name: &'a str,
    base: &'a Path,
    zone: &'a LocalZone,
    variants: Vec<Variant>,
    /// Indexes into `variants` of the variants seeing lines now.
    active: Vec<usize>,
    used_regex_texts: HashSet<String>,
}

fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = bytes
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    if bytes.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

fn annotation(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches('#');
    if rest.len() == line.len() {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    for kind in ["failJSON", "fileOptions", "filterOptions", "addFILE"] {
        if let Some(payload) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(':')) {
            if !payload.is_empty() {
                return Some((kind, payload));
            }
        }
    }
    None
}

impl TestState<'_> {
    fn variant(
        &mut self,
        key: String,
        opts: &serde_json::Map<String, Json>,
        report: &mut FilterReport,
    ) -> Option<usize> {
        if let Some(pos) = self.variants.iter().position(|v| v.key == key) {
            return Some(pos);
        }
        match build_variant(self.name, key, self.base, opts, self.zone) {
            Ok(v) => {
                report.passed += 1;
                self.variants.push(v);
                Some(self.variants.len() - 1)
            }
            Err(message) => {
                report.failures.push(format!("{}: {message}", self.name));
                None
            }
        }
    }

    fn run_file(
        &mut self,
        file: &Path,
        bytes: &[u8],
        files: &mut Vec<String>,
        report: &mut FilterReport,
    ) {
        let lines = split_lines(bytes);
        let mut file_options: Option<serde_json::Map<String, Json>> = None;
        let mut ignore_block = false;
        let mut n = 0;
        while n < lines.len() {
            let raw = lines[n].trim_end_matches(['\r', '\n']);
            n += 1;
            let lnnum = n;
            let where_ = format!("{}:{lnnum}", file.display());
            let (expect, test_line, test_lnnum) = match annotation(raw) {
                Some((kind, payload)) => {
                    let data: Json = match serde_json::from_str(payload) {
                        Ok(d) => d,
                        Err(e) => {
                            report.failures.push(format!("{where_}: bad JSON: {e}"));
                            continue;
                        }
                    };
                    match kind {
                        "fileOptions" => {
                            file_options = data.as_object().cloned();
                            continue;
                        }
                        "filterOptions" => {
                            ignore_block = self.set_variants(&data, &file_options, &where_, report);
                            continue;
                        }
                        "addFILE" => {
                            files.push(json_plain(&data));
                            continue;
                        }
                        _ => {}
                    }
                    let Some(next) = lines.get(n) else {
                        break;
                    };
                    n += 1;
                    (data, next.trim_end_matches(['\r', '\n']).to_string(), n)
                }
                None if ignore_block || raw.starts_with('#') || raw.trim().is_empty() => continue,
                None => (Json::Object(Default::default()), raw.to_string(), lnnum),
            };
            if ignore_block {
                continue;
            }
            if self.active.is_empty() {
                let empty = serde_json::Map::new();
                if let Some(idx) = self.variant(self.name.to_string(), &empty, report) {
                    self.active = vec![idx];
                }
            }
            let location = format!("{}:{test_lnnum}", file.display());
            self.check_line(&expect, &test_line, &location, report);
        }
    }

    /// Handle a filterOptions annotation; returns the new ignore-block state.
    fn set_variants(
        &mut self,
        data: &Json,
        file_options: &Option<serde_json::Map<String, Json>>,
        where_: &str,
        report: &mut FilterReport,
    ) -> bool {
        self.active.clear();
        let mut ignore_block = false;
        let entries: Vec<Json> = match data {
            Json::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for entry in entries {
            let mut opts = file_options.clone().unwrap_or_default();
            if let Some(o) = entry.as_object() {
                for (k, v) in o {
                    opts.insert(k.clone(), v.clone());
                }
            }
            if let Some(cond) = opts.get("test.condition").and_then(Json::as_str) {
                if !cond.is_empty() {
                    match eval_condition(cond, self.name, &opts) {
                        Ok(ok) => ignore_block = !ok,
                        Err(e) => {
                            report.failures.push(format!("{where_}: {e}"));
                            ignore_block = true;
                        }
                    }
                }
            }
            if ignore_block {
                continue;
            }
            let filter_opts: serde_json::Map<String, Json> = opts
                .iter()
                .filter(|(k, _)| !k.starts_with("test."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let suffix = match opts.get("test.filter-name").map(json_plain) {
                Some(n) if !n.is_empty() => n,
                _ => py_dict_repr(&filter_opts),
            };
            let key = format!("{}{suffix}", self.name);
            if let Some(idx) = self.variant(key, &opts, report) {
                self.active.push(idx);
            }
        }
        ignore_block
    }

    fn check_line(&mut self, expect: &Json, line: &str, location: &str, report: &mut FilterReport) {
        let empty = serde_json::Map::new();
        let expect = expect.as_object().unwrap_or(&empty);
        for &idx in &self.active.clone() {
            let variant = &mut self.variants[idx];
            if let Some(constraint) = expect.get("constraint").and_then(Json::as_str) {
                if !constraint.is_empty() {
                    match eval_condition(constraint, self.name, &variant.opts) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            report.failures.push(format!("{location}: {e}"));
                            continue;
                        }
                    }
                }
            }
            let journal = variant.opts.get("logtype").and_then(Json::as_str) == Some("journal");
            let result = if journal {
                let prefix = variant
                    .opts
                    .get("test.prefix-line")
                    .map(json_plain)
                    .unwrap_or_default();
                let full = format!("{prefix}{line}");
                variant
                    .filter
                    .process_line_at(&full, TEST_NOW, TEST_NOW_TEXT, TEST_NOW)
            } else {
                variant.filter.process_line(line, TEST_NOW)
            };
            match evaluate(expect, &result, self.zone) {
                Ok(used) => {
                    report.passed += 1;
                    for i in used {
                        variant.used.insert(i);
                        if let Some(re) = variant.filter.matcher.failregex.get(i) {
                            self.used_regex_texts.insert(re.resolved.clone());
                        }
                    }
                }
                Err(message) => report.failures.push(format!(
                    "{location}: {}: {message}; line: {line}",
                    variant.key
                )),
            }
        }
    }
}

/// Check one line's result against its failJSON; Ok = indexes of regexes that count as used.
fn evaluate(
    expect: &serde_json::Map<String, Json>,
    result: &LineResult,
    zone: &LocalZone,
) -> Result<Vec<usize>, String> {
    let mut used = Vec::new();
    let mut found = Vec::new();
    for f in &result.failures {
        if f.id.is_none() || f.nofail() {
            used.push(f.regex_index);
        } else {
            found.push(f);
        }
    }
    let want_match = expect.get("match").and_then(Json::as_bool).unwrap_or(false);
    let Some(fail) = found.first() else {
        if want_match {
            return Err("Line not matched when should have".into());
        }
        return Ok(used);
    };
    if !want_match {
        return Err(format!(
            "Line matched when shouldn't have (regex {}, id {})",
            fail.regex_index,
            fail.id.as_ref().map_or("None".into(), |i| i.to_string())
        ));
    }
    if found.len() != 1 {
        let idx: Vec<usize> = found.iter().map(|f| f.regex_index).collect();
        return Err(format!("Multiple regexs matched {idx:?}"));
    }
    for (key, want) in expect {
        if matches!(key.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let ok = match key.as_str() {
            "users" => {
                let got: BTreeSet<String> = fail
                    .data
                    .users
                    .iter()
                    .flatten()
                    .map(|u| u.to_string())
                    .collect();
                let want: Option<BTreeSet<String>> =
                    want.as_array().map(|a| a.iter().map(json_plain).collect());
                let ok = want.as_ref() == Some(&got);
                if !ok {
                    return Err(format!("users: expected {want:?}, got {got:?}"));
                }
                ok
            }
            _ => {
                let got = fail.data.get(key).map(str::to_string);
                match (key.as_str(), got) {
                    ("host", None) => {
                        let id = fail.id.clone();
                        let ok = match (want, &id) {
                            (Json::String(w), Some(id)) => id_equals(id, w),
                            (Json::Null, None) => true,
                            _ => false,
                        };
                        if !ok {
                            return Err(format!("host: expected {want}, got {id:?}"));
                        }
                        ok
                    }
                    ("attempts", None) => {
                        let n = fail.data.matches.as_ref().map_or(0, Vec::len);
                        if want.as_u64() != Some(n as u64) {
                            return Err(format!("attempts: expected {want}, got {n}"));
                        }
                        true
                    }
                    (_, got) => {
                        let ok = match (want, &got) {
                            (Json::Null, None) => true,
                            (Json::String(w), Some(g)) => w == g,
                            _ => false,
                        };
                        if !ok {
                            return Err(format!("{key}: expected {want}, got {got:?}"));
                        }
                        ok
                    }
                }
            }
        };
        debug_assert!(ok);
    }
    if let Some(t) = expect.get("time").and_then(Json::as_str) {
        let want = local_time(t, zone).ok_or_else(|| format!("bad time {t:?}"))?;
        if fail.time != Some(want) {
            return Err(format!("time: expected {t} ({want}), got {:?}", fail.time));
        }
    }
    used.push(fail.regex_index);
    Ok(used)
}

/// An id equals a string when the string parses to the same address, or for raw ids when
/// the text is the same.
fn id_equals(id: &FailureId, text: &str) -> bool {
    match id {
        FailureId::Raw(raw) => raw == text || FailureId::parse(raw) == FailureId::parse(text),
        other => *other == FailureId::parse(text),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` in the test zone as Unix time (Python `time.mktime`).
fn local_time(text: &str, zone: &LocalZone) -> Option<f64> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let whole = naive.with_nanosecond(0)?;
    let micros = f64::from(naive.and_utc().timestamp_subsec_micros()) / 1_000_000.0;
    Some(zone.local_to_utc(whole)? + micros)
}

use chrono::Timelike as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        let mut opts = serde_json::Map::new();
        opts.insert("mode".into(), Json::String("aggressive".into()));
        assert_eq!(eval_condition("name=='sshd'", "sshd", &opts), Ok(true));
        assert_eq!(eval_condition("name == 'sshd'", "x", &opts), Ok(false));
        assert_eq!(
            eval_condition("opts.get('mode') == 'aggressive'", "x", &opts),
            Ok(true)
        );
        assert_eq!(
            eval_condition("opts.get('mode') != 'aggressive'", "x", &opts),
            Ok(false)
        );
        assert!(eval_condition("len(x)", "x", &opts).is_err());
    }

    #[test]
    fn variant_names_follow_python_repr() {
        let mut opts = serde_json::Map::new();
        opts.insert("mode".into(), Json::String("aggressive".into()));
        assert_eq!(py_dict_repr(&opts), "{'mode': 'aggressive'}");
        assert_eq!(py_dict_repr(&serde_json::Map::new()), "");
    }

    #[test]
    fn annotations() {
        assert_eq!(
            annotation("# failJSON: { \"match\": false }"),
            Some(("failJSON", " { \"match\": false }"))
        );
        assert_eq!(annotation("#failJSON: {}"), Some(("failJSON", " {}")));
        assert_eq!(annotation("## addFILE: \"x\""), Some(("addFILE", " \"x\"")));
        assert_eq!(annotation("# just a comment"), None);
        assert_eq!(annotation("line"), None);
    }

    #[test]
    fn wrong_greed_lint() {
        let greed = wrong_greed_re().expect("lint regex compiles");
        let bad = resolve_tags("^.* from <HOST> x", "warn");
        let good = resolve_tags("^.* from <HOST>$", "warn");
        assert!(greed.is_match(&bad).unwrap_or(false));
        assert!(!greed.is_match(&good).unwrap_or(true));
    }
}
