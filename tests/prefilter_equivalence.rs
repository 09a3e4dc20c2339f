//! The prefilter must never change a result: every upstream filter, on every line of its
//! upstream sample log (as is, and with a non-ASCII tail that takes the Unicode builds), gives
//! the same line result with and without the prefilter, in fail2ban-regex's check-all mode
//! and in the server's first-match mode; and so do results searched ahead
//! (`Matcher::prematch`, as regex-check runs it on a second thread).

use std::path::{Path, PathBuf};

use ironban::date::LocalZone;
use ironban::filter::{Filter, FilterOptions, Mode, PrefregexDetail};

fn upstream() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream")
}

fn filters(conf: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(conf.join("filter.d"))
        .expect("read filter.d")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".conf").map(str::to_string))
        .filter(|n| !n.ends_with("common"))
        .collect();
    names.sort();
    names
}

fn build(options: &FilterOptions, mode: Mode, prefilter: bool) -> Filter {
    let zone = LocalZone::posix("UTC0").expect("UTC zone");
    let mut filter = Filter::with_zone(options, mode, zone).expect("filter compiles");
    // Every line reports its prefregex groups, even one the prefilter rules out, so the
    // whole result can be compared.
    filter.prefregex_detail = PrefregexDetail::Groups;
    if !prefilter {
        filter.disable_prefilter();
    }
    filter
}

#[test]
fn prefilter_never_changes_a_line_result() {
    let up = upstream();
    let conf = up.join("config");
    let now = 1_800_000_000.0;
    let mut with_prefilter = 0;
    let mut lines_compared = 0usize;
    for name in filters(&conf) {
        let Ok(log) = std::fs::read(up.join("samples/logs").join(&name)) else {
            continue;
        };
        let stream = ironban::config::filter_stream(&conf, &name, "j", &[]).expect("filter loads");
        let options = FilterOptions::from_stream(&stream);
        let text = String::from_utf8_lossy(&log);
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .flat_map(|l| [l.to_string(), format!("{l} é")])
            .collect();
        for check_all in [true, false] {
            let mode = Mode {
                check_all_regex: check_all,
                ignore_pending: !check_all,
                ..Mode::default()
            };
            let mut fast = build(&options, mode, true);
            if !fast.has_prefilter() {
                continue;
            }
            if check_all {
                with_prefilter += 1;
            }
            let mut exact = build(&options, mode, false);
            let mut ahead = build(&options, mode, true);
            ahead.prefregex_detail = PrefregexDetail::Nothing;
            let mut plain = build(&options, mode, true);
            plain.prefregex_detail = PrefregexDetail::Nothing;
            for line in &lines {
                let a = fast.process_line(line, now);
                let b = exact.process_line(line, now);
                assert_eq!(a, b, "filter {name}, check_all {check_all}, line {line:?}");
                let dated = ahead.date_line(line, now);
                let mut buffer = String::new();
                Filter::likely_buffer(&mut buffer, line, &dated);
                let prematch = ahead.matcher.prematch(buffer.as_str().into(), check_all);
                let c = ahead.process_dated(line, dated, Some(prematch), now);
                let d = plain.process_line(line, now);
                assert_eq!(
                    c, d,
                    "ahead: filter {name}, check_all {check_all}, line {line:?}"
                );
                lines_compared += 1;
            }
        }
    }
    assert!(
        with_prefilter > 80,
        "only {with_prefilter} filters have a prefilter"
    );
    eprintln!("{with_prefilter} filters with a prefilter, {lines_compared} line results compared");
    assert!(
        lines_compared > 4_000,
        "only {lines_compared} lines compared"
    );
}

/// A prefregex `P(?P<content>.+)$` searched by its head `P` (the rest of the line taken as the
/// content) finds the same match and groups as the whole regex: every upstream filter's
/// prefregex on every line of its sample log, as the single-line buffer and the bare line.
#[test]
fn prefregex_head_search_equals_whole_search() {
    use ironban::filter::regex::{Anchors, FilterRegex};
    let up = upstream();
    let conf = up.join("config");
    let (mut split_filters, mut compared) = (0, 0usize);
    for name in filters(&conf) {
        let Ok(log) = std::fs::read(up.join("samples/logs").join(&name)) else {
            continue;
        };
        let stream = ironban::config::filter_stream(&conf, &name, "j", &[]).expect("filter loads");
        let options = FilterOptions::from_stream(&stream);
        let Some(pref) = options.prefregex.as_deref() else {
            continue;
        };
        let whole = FilterRegex::new(pref, "warn", Anchors::SingleLineBuffer).expect("compiles");
        let mut split = whole.clone();
        split.split_content_tail();
        if !split.has_head() {
            continue;
        }
        split_filters += 1;
        let text = String::from_utf8_lossy(&log);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            for buffer in [format!("{line}\n"), format!("{line} é\n"), line.to_string()] {
                assert_eq!(
                    split.search(&buffer),
                    whole.search(&buffer),
                    "filter {name}, buffer {buffer:?}"
                );
                compared += 1;
            }
        }
    }
    eprintln!("{split_filters} prefregexes searched by their head, {compared} buffers compared");
    assert!(
        split_filters >= 15,
        "only {split_filters} prefregexes split"
    );
    assert!(compared > 2_000, "only {compared} buffers compared");
}
