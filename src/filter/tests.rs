//! Engine tests from spec sections 3–5.

use super::*;

fn opts(pref: Option<&str>, fail: &[&str], ignore: &[&str], maxlines: usize) -> FilterOptions {
    FilterOptions {
        prefregex: pref.map(str::to_string),
        failregex: fail.iter().map(|s| s.to_string()).collect(),
        ignoreregex: ignore.iter().map(|s| s.to_string()).collect(),
        maxlines,
        usedns: "no".into(),
        ..FilterOptions::default()
    }
}

fn sample_mode() -> Mode {
    Mode {
        check_all_regex: true,
        ignore_pending: false,
        return_raw_host: true,
        check_find_time: false,
    }
}

fn ids(r: &LineResult) -> Vec<String> {
    r.failures
        .iter()
        .map(|f| f.id.as_ref().map_or("None".to_string(), |i| i.to_string()))
        .collect()
}

#[test]
fn simple_host_match() {
    let mut f = Filter::new(&opts(None, &["^fail from <HOST>$"], &[], 1), Mode::server()).unwrap();
    let r = f.process_with_cut("fail from 192.0.2.1", None, 100.0);
    assert_eq!(ids(&r), ["192.0.2.1"]);
    assert_eq!(r.failures[0].time, Some(100.0));
    assert!(f
        .process_with_cut("ok from 192.0.2.1", None, 100.0)
        .failures
        .is_empty());
}

#[test]
fn date_cut_is_removed_from_buffer() {
    let mut f = Filter::new(
        &opts(None, &[r"^\[\] host d\[1\]: x <HOST>$"], &[], 1),
        sample_mode(),
    )
    .unwrap();
    let line = "[Jun 21 16:55:03] host d[1]: x 1.2.3.4";
    let cut = DateCut {
        start: 1,
        end: 16,
        time: Some(5.0),
    };
    let r = f.process_with_cut(line, Some(cut), 10.0);
    assert_eq!(ids(&r), ["1.2.3.4"]);
    assert_eq!(r.failures[0].matches(), [line]);
    assert_eq!(r.failures[0].time, Some(5.0));
}

#[test]
fn fid_with_host_gives_complex_id() {
    let mut f = Filter::new(
        &opts(None, &["<F-ID>sess42</F-ID> from <HOST>"], &[], 1),
        Mode::server(),
    )
    .unwrap();
    let r = f.process_with_cut("sess42 from 192.0.2.9", None, 0.0);
    assert_eq!(ids(&r), ["sess42"]);
    assert_eq!(r.failures[0].data.get("ip"), Some("192.0.2.9"));
}

#[test]
fn subnet_tag() {
    let mut f = Filter::new(&opts(None, &["net <SUBNET>"], &[], 1), Mode::server()).unwrap();
    let r = f.process_with_cut("net 192.0.2.77/24", None, 0.0);
    assert_eq!(ids(&r), ["192.0.2.0/24"]);
}

#[test]
fn prefregex_content_and_ignore_visibility() {
    let pref = "^x: <F-CONTENT>.+</F-CONTENT>$";
    let mut f = Filter::new(
        &opts(Some(pref), &["^fail <HOST>$"], &["^x:"], 1),
        sample_mode(),
    )
    .unwrap();
    let r = f.process_with_cut("x: fail 1.2.3.4", None, 0.0);
    assert_eq!(ids(&r), ["1.2.3.4"]);
    assert!(r.ignored.is_empty(), "post-check sees only the content");
    assert_eq!(r.failures[0].matches(), ["x: fail 1.2.3.4"]);
    let many = ["^fail <HOST>$", "^a <HOST>", "^b <HOST>", "^c <HOST>"];
    let mut f = Filter::new(&opts(Some(pref), &many, &["^x:"], 1), sample_mode()).unwrap();
    let r = f.process_with_cut("x: fail 1.2.3.4", None, 0.0);
    assert!(r.failures.is_empty());
    assert_eq!(r.ignored, [0]);
}

#[test]
fn first_regex_wins_without_check_all() {
    let o = opts(None, &["a <HOST>", "a <HOST>$"], &[], 1);
    let mut f = Filter::new(&o, Mode::server()).unwrap();
    let r = f.process_with_cut("a 1.2.3.4", None, 0.0);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].regex_index, 0);
    let mut f = Filter::new(&o, sample_mode()).unwrap();
    assert_eq!(f.process_with_cut("a 1.2.3.4", None, 0.0).failures.len(), 2);
}

#[test]
fn failregex_without_id_group_is_rejected() {
    let e = Filter::new(&opts(None, &["literal"], &[], 1), Mode::server()).err();
    assert_eq!(e, Some(FilterError::NoFailureIdGroup("literal".into())));
    assert!(Filter::new(
        &opts(Some("^<F-MLFID>x</F-MLFID>"), &["literal"], &[], 1),
        Mode::server()
    )
    .is_ok());
}

#[test]
fn skiplines_multiline() {
    let re = r"^c(?P<c>\d+) open <HOST><SKIPLINES>c(?P=c) fail$";
    let mut f = Filter::new(&opts(None, &[re], &[], 3), sample_mode()).unwrap();
    assert!(f
        .process_with_cut("c5 open 1.2.3.4", None, 0.0)
        .failures
        .is_empty());
    assert!(f.process_with_cut("noise", None, 0.0).failures.is_empty());
    let r = f.process_with_cut("c5 fail", None, 0.0);
    assert_eq!(ids(&r), ["1.2.3.4"]);
    assert_eq!(r.failures[0].matches(), ["c5 open 1.2.3.4", "c5 fail"]);
    assert_eq!(f.buffer, [TupleLine::plain("noise")]);
}

#[test]
fn mlfid_nofail_then_failure() {
    let pref = r"^(?P<mlfid>s\d+): <F-CONTENT>.+</F-CONTENT>$";
    let fails = [
        r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|password) for \S+ from <HOST>$",
        r"^Too many failures$",
        r"^Closed by <HOST><F-MLFFORGET><F-NOFAIL></F-NOFAIL></F-MLFFORGET>$",
    ];
    let mut f = Filter::new(&opts(Some(pref), &fails, &[], 1), Mode::server()).unwrap();
    assert!(f
        .process_with_cut("s1: Failed publickey for git from 192.0.2.111", None, 0.0)
        .failures
        .is_empty());
    assert!(f
        .process_with_cut("s1: Failed publickey for git from 192.0.2.111", None, 0.0)
        .failures
        .is_empty());
    let r = f.process_with_cut("s1: Too many failures", None, 0.0);
    assert_eq!(ids(&r), ["192.0.2.111"]);
    assert_eq!(r.failures[0].matches().len(), 3);
    // A session with only nofail lines never fails.
    assert!(f
        .process_with_cut("s2: Failed publickey for x from 192.0.2.5", None, 0.0)
        .failures
        .is_empty());
    assert!(f
        .process_with_cut("s2: Failed publickey for x from 192.0.2.5", None, 0.0)
        .failures
        .is_empty());
}

#[test]
fn mlfid_pending_then_host() {
    let pref = r"^(?P<mlfid>s\d+): <F-CONTENT>.+</F-CONTENT>$";
    let fails = [r"^auth failed$", r"^from <HOST>$"];
    let mut f = Filter::new(&opts(Some(pref), &fails, &[], 1), Mode::server()).unwrap();
    assert!(f
        .process_with_cut("s1: auth failed", None, 0.0)
        .failures
        .is_empty());
    let r = f.process_with_cut("s1: from 192.0.2.7", None, 0.0);
    assert_eq!(ids(&r), ["192.0.2.7"]);
    assert_eq!(r.failures[0].matches().len(), 2);
    let mut f = Filter::new(&opts(Some(pref), &fails, &[], 1), sample_mode()).unwrap();
    assert_eq!(
        ids(&f.process_with_cut("s1: auth failed", None, 0.0)),
        ["None"]
    );
}

#[test]
fn time_fallbacks() {
    let mut f = Filter::new(&opts(None, &["x <HOST>"], &[], 1), sample_mode()).unwrap();
    let r = f.process_with_cut("x 1.2.3.4", None, 1000.0);
    assert_eq!(r.failures[0].time, None);
    let cut = DateCut {
        start: 0,
        end: 4,
        time: Some(990.0),
    };
    f.process_with_cut("DATE y", Some(cut), 1000.0);
    // Unparsable date right after: last date reused and the whole line searched.
    let bad = DateCut {
        start: 0,
        end: 4,
        time: None,
    };
    let r = f.process_with_cut("BAD! x 1.2.3.4", Some(bad), 1000.0);
    assert_eq!(r.failures[0].time, Some(990.0));
    assert_eq!(r.failures[0].matches(), ["DATEBAD! x 1.2.3.4"]);
}

#[test]
fn stream_commands() {
    use crate::config::Value;
    let s = |t: &str| Value::Str(t.to_string());
    let stream = vec![
        vec![s("set"), s("j"), s("usedns"), s("no")],
        vec![s("set"), s("j"), s("maxlines"), Value::Int(3)],
        vec![
            s("multi-set"),
            s("j"),
            s("addfailregex"),
            Value::List(vec![s("a <HOST>"), s("b <HOST>")]),
        ],
        vec![s("set"), s("j"), s("addignoreregex"), s("ign")],
        vec![s("set"), s("j"), s("datepattern"), s("{^LN-BEG}")],
        vec![s("set"), s("j"), s("bantime"), s("10")],
    ];
    let o = FilterOptions::from_stream(&stream);
    assert_eq!(o.usedns, "no");
    assert_eq!(o.maxlines, 3);
    assert_eq!(o.failregex, ["a <HOST>", "b <HOST>"]);
    assert_eq!(o.ignoreregex, ["ign"]);
    assert_eq!(o.datepattern.as_deref(), Some("{^LN-BEG}"));
    assert!(!FilterOptions::default().apply(&stream[5]));
}

#[test]
fn hostile_lines() {
    let mut f = Filter::new(&opts(None, &["^(a+)+x <HOST>$"], &[], 1), Mode::server()).unwrap();
    let long = "a".repeat(1 << 20);
    let r = f.process_with_cut(&long, None, 0.0);
    assert!(r.truncated && r.failures.is_empty());
    let r = f.process_with_cut("a\0\u{fffd} x 1.2.3.4", None, 0.0);
    assert!(r.failures.is_empty());
}

#[test]
fn server_time_checks() {
    let mut f = Filter::new(&opts(None, &["x <HOST>"], &[], 1), Mode::server()).unwrap();
    let at = |t: f64| {
        Some(DateCut {
            start: 0,
            end: 4,
            time: Some(t),
        })
    };
    // In operation: a time 2 h in the future is treated as now; 30 s off is kept.
    let r = f.process_with_cut("DATE x 1.2.3.4", at(10_000.0 + 7200.0), 10_000.0);
    assert_eq!(r.failures[0].time, Some(10_000.0));
    let r = f.process_with_cut("DATE x 1.2.3.4", at(10_000.0 - 30.0), 10_000.0);
    assert_eq!(r.failures[0].time, Some(9_970.0));
    // Initial read: lines older than findtime are dropped.
    f.in_operation = false;
    assert!(f
        .process_with_cut("DATE x 1.2.3.4", at(1_000.0), 10_000.0)
        .failures
        .is_empty());
    let r = f.process_with_cut("DATE x 1.2.3.4", at(9_500.0), 10_000.0);
    assert_eq!(r.failures[0].time, Some(9_500.0));
    // Undated lines get no time while not in operation, so the server skips them.
    let r = f.process_with_cut("x 1.2.3.4", None, 20_000.0);
    assert!(r.failures.is_empty());
    f.process_with_cut(&"y".repeat(MAX_LINE_BYTES + 10), None, 0.0);
    assert_eq!(f.truncated_lines, 1);
}

/// Cases a second reader found where the prefilter or an ASCII build could have changed a
/// result; each line must give the same result with and without the prefilter.
#[test]
fn prefilter_and_ascii_builds_keep_results_in_edge_cases() {
    let cases: [(Option<&str>, &[&str], &[&str]); 3] = [
        // `tuple_content` rewrites the content the failregexes see.
        (
            Some(r"^(?P<tuple_content>\S+) (?P<content>.+)$"),
            &[r"'<HOST>'\)"],
            &["1.2.3.4 foo"],
        ),
        // A Unicode build far over the regex crates' default size limit.
        (
            None,
            &[
                r"^user (?P<user>\w{1,200}) from <HOST>",
                r"^x (?P<user>\w{1,200}) <HOST>",
            ],
            &["user jörg from 1.2.3.4", "user jorg from 1.2.3.4"],
        ),
        // Case folding of non-ASCII pattern characters onto ASCII text.
        (
            None,
            &["(?i)user \u{212A}evin from <HOST>", "(?i)ſeen <HOST>"],
            &[
                "user kevin from 1.2.3.4",
                "user kevin from 1.2.3.4 é",
                "SEEN 1.2.3.4",
            ],
        ),
    ];
    for (pref, fails, lines) in cases {
        let options = opts(pref, fails, &[], 1);
        let mut fast = Filter::new(&options, sample_mode()).unwrap();
        fast.prefregex_detail = PrefregexDetail::Groups;
        let mut exact = Filter::new(&options, sample_mode()).unwrap();
        exact.prefregex_detail = PrefregexDetail::Groups;
        exact.disable_prefilter();
        for line in lines {
            let a = fast.process_with_cut(line, None, 100.0);
            let b = exact.process_with_cut(line, None, 100.0);
            assert_eq!(a, b, "{fails:?} on {line:?}");
            assert!(!b.failures.is_empty(), "{fails:?} should match {line:?}");
        }
    }
}

#[test]
fn prefregex_misses_skip_the_line_as_the_exact_path_would() {
    // TwoStage shape (the content ends before the line does), quiet prefregex (the daemon's
    // and regex-check --json's), with and without ignoreregexes searched before it.
    let fails: Vec<String> = (0..6).map(|i| format!(r"^fail{i} from <HOST>$")).collect();
    let fails: Vec<&str> = fails.iter().map(String::as_str).collect();
    let lines = [
        "2024-05-01 10:00:01 gw d[1]: fail1 from 192.0.2.1, user=bob",
        "2024-05-01 10:00:01 gw d[1]: fail1 from 192.0.2.1",
        "2024-05-01 10:00:02 gw d[1]: trusted fail2 from 192.0.2.2, user=x",
        "2024-05-01 10:00:02 gw e[1]: fail1 from 192.0.2.1, user=bob",
        "2024-05-01 10:00:03 gw d[1]: nothing here",
        "2024-05-01 10:00:03 trusted gw e[2]: fail3 from 192.0.2.3",
        "2024-05-01 10:00:04 gw d[1]: , user=",
        "2024-05-01 10:00:05 gw d[1]: reject: fail4 from 192.0.2.4, user=eve",
        "2024-05-01 10:00:05 gw d[1]: reject: nothing",
        "2024-05-01 10:00:06 gw d[1]: rejected: fail4 from 192.0.2.4",
    ];
    // The second prefregex needs "reject: ": buffers without it skip its search.
    let prefregexes = [
        r"^\s*\S+ d\[\d+\]: (?P<content>.+?)(?:, user=(?P<user>\S*))?$",
        r"^\s*\S+ d\[\d+\]: reject: (?P<content>.+?)(?:, user=(?P<user>\S*))?$",
    ];
    for (pref, ignores) in prefregexes
        .iter()
        .flat_map(|p| [(p, &[][..]), (p, &[r"trusted"][..])])
    {
        let options = opts(Some(pref), &fails, ignores, 1);
        let mut fast = Filter::new(&options, sample_mode()).unwrap();
        let mut exact = Filter::new(&options, sample_mode()).unwrap();
        exact.disable_prefilter();
        assert!(fast
            .matcher
            .prefilter
            .as_ref()
            .is_some_and(|p| p.needs_content()));
        let mut failures = 0;
        for line in lines {
            let a = fast.process_line(line, 1.8e9);
            let b = exact.process_line(line, 1.8e9);
            assert_eq!(a, b, "{pref} ignores {ignores:?} on {line:?}");
            failures += b.failures.len();
        }
        assert!(failures > 0);
    }
    let options = opts(Some(prefregexes[1]), &fails, &[], 1);
    let filter = Filter::new(&options, sample_mode()).unwrap();
    let pf = filter.matcher.prefilter.as_ref().expect("prefilter");
    assert!(!pf.prefregex_may_match("gw d[1]: fail1 from 192.0.2.1\n"));
    assert!(pf.prefregex_may_match("gw d[1]: reject: fail1 from 192.0.2.1\n"));
}

#[test]
fn released_caches_change_no_result() {
    // A prefregex with MLFID sessions, failregexes on either side of the prefilter, an
    // ignoreregex, and lines in and out of ASCII: every engine grows scratch to release.
    let options = opts(
        Some(r"^\s*\S+ (?P<mlfid>d\[\d+\]): (?P<content>.+)$"),
        &[
            r"^auth failed for (?P<user>\S+) from <HOST>$",
            r"^user (?P<user>\S+) unknown$",
            r"^closed from <HOST>$",
        ],
        &[r"from 192\.0\.2\.9$"],
        1,
    );
    let lines = [
        "2024-05-01 10:00:01 gw d[1]: user bob unknown",
        "2024-05-01 10:00:02 gw d[1]: closed from 192.0.2.1",
        "2024-05-01 10:00:03 gw d[2]: auth failed for ålice from 192.0.2.2",
        "2024-05-01 10:00:04 gw d[3]: auth failed for eve from 192.0.2.9",
        "May  1 10:00:05 gw d[4]: auth failed for root from 2001:db8::5",
        "2024-05-01 10:00:06 gw d[5]: nothing to see",
        "2024-05-01 10:00:07 gw d[2]: closed from 192.0.2.2",
    ];
    let mut kept = Filter::new(&options, sample_mode()).unwrap();
    let mut released = Filter::new(&options, sample_mode()).unwrap();
    let before = Arc::as_ptr(&released.matcher);
    released.release_caches();
    assert_ne!(
        Arc::as_ptr(&released.matcher),
        before,
        "the regexes were replaced"
    );
    let mut found = Vec::new();
    for line in lines.iter().cycle().take(3 * lines.len()) {
        let expected = kept.process_line(line, 1_714_557_600.0);
        released.release_caches();
        assert_eq!(
            released.process_line(line, 1_714_557_600.0),
            expected,
            "{line}"
        );
        found.extend(ids(&expected));
        found.extend(expected.ignored.iter().map(|i| format!("ignored {i}")));
    }
    // The first round's "user bob unknown" has no host yet; later rounds take the host
    // its session learnt from "closed from 192.0.2.1".
    let round = [
        "192.0.2.1",
        "192.0.2.2",
        "ignored 0",
        "2001:db8::5",
        "192.0.2.2",
    ];
    let mut expected = vec!["None"];
    expected.extend(round);
    for _ in 0..2 {
        expected.push("192.0.2.1");
        expected.extend(round);
    }
    assert_eq!(found, expected);
}

#[test]
fn tuple_group_merging_into_content_whatever_its_case() {
    // `tuple_Content` merges into `content` (fail2ban lower-cases the target), so the
    // failregexes see `('<content>', '<tuple>')`: the prefilter, which looks for them where
    // the content is in the line, must not stand in for them.
    for tuple in ["tuple_content", "tuple_Content", "tuple_CONTENT_2"] {
        let pref = format!(r"^p: (?P<{tuple}>\S+) (?P<content>.+)$");
        let mut f = Filter::new(
            &opts(Some(&pref), &[r"^\('<HOST>', 'fail'\)$"], &[], 1),
            Mode::server(),
        )
        .unwrap();
        let r = f.process_with_cut("p: fail 192.0.2.1", None, 100.0);
        assert_eq!(ids(&r), ["192.0.2.1"], "{tuple}");
    }
}
