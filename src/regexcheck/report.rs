//! The fail2ban-regex report: hit counters, line classification and the exact text layout
//! (fail2ban spec 9.4, 9.5).

use std::fmt::Write as _;

/// fail2ban's `shortstr`: strings longer than 53 characters become 50 characters + `...`.
pub fn shortstr(s: &str) -> String {
    if s.chars().count() > 53 {
        let cut: String = s.chars().take(50).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

/// A "Use" header line: the label right-aligned to 16 columns (`"Use %11s jail : "`).
pub fn use_line(label: &str, value: &str) -> String {
    format!("Use {label:>16} : {value}")
}

/// Python `repr` of a string (fail2ban prints option dicts with `%r`).
pub fn py_repr_str(s: &str) -> String {
    crate::config::value::python_str_repr(s)
}

/// Python `repr` of a dict of strings, in insertion order: `{'mode': 'aggressive'}`.
pub fn py_repr_dict(items: &[(String, String)]) -> String {
    let body: Vec<String> = items
        .iter()
        .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr_str(v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// One failregex or ignoreregex with its hits; `ids` (only kept with `-v`) lists
/// `(id, time, several earlier results on the same line)` per hit.
#[derive(Debug, Clone, Default)]
pub struct RegexStat {
    pub text: String,
    pub hits: u64,
    pub ids: Vec<(String, Option<f64>, bool)>,
}

impl RegexStat {
    pub fn new(text: &str) -> RegexStat {
        RegexStat {
            text: text.to_string(),
            ..RegexStat::default()
        }
    }
}

/// Listing options of the report (`--print-*`, `-v`, the print limit).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub verbose: u8,
    pub print_all_matched: bool,
    pub print_all_missed: bool,
    pub print_all_ignored: bool,
    pub print_no_missed: bool,
    pub print_no_ignored: bool,
    /// `-L` value or 20: listings with at least this many lines are summarised.
    pub limit: usize,
}

/// Line counters and the kept line texts.
#[derive(Debug, Clone, Default)]
pub struct LineStats {
    pub tested: u64,
    pub matched: u64,
    pub ignored: u64,
    pub missed: u64,
    pub matched_lines: Vec<String>,
    pub ignored_lines: Vec<String>,
    pub missed_lines: Vec<String>,
}

/// How one processed line ended up (spec 9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineClass {
    Ignored,
    Matched,
    Missed,
}

impl LineStats {
    /// Count one line; keep its text when the listing will (or might) print it. fail2ban keeps
    /// `limit + 1` lines so it can tell "print" from "too many".
    pub fn add(&mut self, class: LineClass, line: &str, listing: &Listing) {
        self.tested += 1;
        let keep_limit = listing.limit as u64 + 1;
        match class {
            LineClass::Ignored => {
                self.ignored += 1;
                if !listing.print_no_ignored
                    && (listing.print_all_ignored || self.ignored <= keep_limit)
                {
                    self.ignored_lines.push(line.to_string());
                }
            }
            LineClass::Matched => {
                self.matched += 1;
                if listing.print_all_matched {
                    self.matched_lines.push(line.to_string());
                }
            }
            LineClass::Missed => {
                self.missed += 1;
                if !listing.print_no_missed
                    && (listing.print_all_missed || self.missed <= keep_limit)
                {
                    self.missed_lines.push(line.to_string());
                }
            }
        }
    }

    /// A multi-line match consumed an earlier buffered line: it moves from missed to matched
    /// (fail2ban removes the first kept missed line with the same text, if still kept).
    pub fn reclassify_as_matched(&mut self, line: &str, listing: &Listing) {
        if let Some(pos) = self.missed_lines.iter().position(|l| l == line) {
            self.missed_lines.remove(pos);
        }
        if listing.print_all_matched {
            self.matched_lines.push(line.to_string());
        }
        self.matched += 1;
        self.missed = self.missed.saturating_sub(1);
    }
}

/// Everything the "Results" part of the report prints.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Resolved prefregex, its hit count and (with `-v`) the kept group dicts.
    pub prefregex: Option<(String, u64, Vec<String>)>,
    pub failregex: Vec<RegexStat>,
    pub ignoreregex: Vec<RegexStat>,
    /// Date templates in the detector's current order with hits; None when disabled.
    pub date_hits: Option<Vec<(String, u64)>>,
    pub lines: LineStats,
    /// Lines refused as hostile (too long, or a regex hit its backtracking limit).
    pub hostile: u64,
    /// Wall time, printed as `[processed in %.2f sec]`; None leaves the line out.
    pub elapsed: Option<f64>,
}

fn pprint_list(out: &mut String, items: &[String], header: Option<&str>) {
    if items.is_empty() {
        return;
    }
    if let Some(header) = header {
        let _ = writeln!(out, "|- {header}");
    }
    let _ = writeln!(out, "|  {}\n`-", items.join("\n|  "));
}

/// `time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(t))`.
fn local_time_string(t: Option<f64>) -> String {
    use chrono::TimeZone;
    let secs = t.unwrap_or(0.0).floor() as i64;
    match chrono::Local.timestamp_opt(secs, 0).single() {
        Some(dt) => dt.format("%a %b %d %H:%M:%S %Y").to_string(),
        None => "None".to_string(),
    }
}

fn regex_block(out: &mut String, title: &str, regexes: &[RegexStat], verbose: u8) {
    let total: u64 = regexes.iter().map(|r| r.hits).sum();
    let mut items = Vec::new();
    for (idx, regex) in regexes.iter().enumerate() {
        if regex.hits > 0 || verbose > 0 {
            items.push(format!("{:2}) [{}] {}", idx + 1, regex.hits, regex.text));
        }
        if verbose > 0 {
            for (id, time, multiple) in &regex.ids {
                items.push(format!(
                    "    {}  {}{}",
                    id,
                    local_time_string(*time),
                    if *multiple {
                        " (multiple regex matched)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    let _ = writeln!(out, "\n{title}: {total} total");
    pprint_list(out, &items, Some(" #) [# of hits] regular expression"));
}

fn print_lines(
    out: &mut String,
    kind: &str,
    count: u64,
    lines: &[String],
    all: bool,
    limit: usize,
) {
    if count == 0 {
        return;
    }
    let mut title = kind.to_string();
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let header = format!("{title} line(s):");
    if count < limit as u64 || all {
        let items: Vec<String> = lines.iter().map(|l| l.trim_end().to_string()).collect();
        pprint_list(out, &items, Some(&header));
    } else {
        let _ = writeln!(
            out,
            "{header} too many to print.  Use --print-all-{kind} to print all {count} lines"
        );
    }
}

impl Results {
    /// The report from "Results" to the end.
    pub fn render(&self, listing: &Listing) -> String {
        let mut out = String::new();
        out.push_str("\nResults\n=======\n");
        if let Some((regex, hits, groups)) = &self.prefregex {
            let mut items = vec![regex.clone()];
            if listing.verbose > 0 {
                items.extend(groups.iter().map(|g| format!("    {g}")));
            }
            let _ = writeln!(out, "\nPrefregex: {hits} total");
            pprint_list(&mut out, &items, None);
        }
        regex_block(&mut out, "Failregex", &self.failregex, listing.verbose);
        regex_block(&mut out, "Ignoreregex", &self.ignoreregex, listing.verbose);
        if let Some(templates) = &self.date_hits {
            out.push_str("\nDate template hits:\n");
            let items: Vec<String> = templates
                .iter()
                .filter(|(_, hits)| listing.verbose > 0 || *hits > 0)
                .map(|(name, hits)| format!("[{hits}] {name}"))
                .collect();
            pprint_list(&mut out, &items, Some("[# of hits] date format"));
        }
        let l = &self.lines;
        let _ = writeln!(
            out,
            "\nLines: {} lines, {} ignored, {} matched, {} missed",
            l.tested, l.ignored, l.matched, l.missed
        );
        if self.hostile > 0 {
            let _ = writeln!(
                out,
                "Hostile lines: {} (too long or regex backtracking limit hit)",
                self.hostile
            );
        }
        if let Some(elapsed) = self.elapsed {
            let _ = writeln!(out, "[processed in {elapsed:.2} sec]");
        }
        out.push('\n');
        if listing.print_all_matched {
            print_lines(
                &mut out,
                "matched",
                l.matched,
                &l.matched_lines,
                true,
                listing.limit,
            );
        }
        if !listing.print_no_ignored {
            let all = listing.print_all_ignored;
            print_lines(
                &mut out,
                "ignored",
                l.ignored,
                &l.ignored_lines,
                all,
                listing.limit,
            );
        }
        if !listing.print_no_missed {
            let all = listing.print_all_missed;
            print_lines(
                &mut out,
                "missed",
                l.missed,
                &l.missed_lines,
                all,
                listing.limit,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        Listing {
            limit: 20,
            ..Listing::default()
        }
    }

    #[test]
    fn shortstr_cuts_after_53_characters() {
        let s53 = "a".repeat(53);
        assert_eq!(shortstr(&s53), s53);
        assert_eq!(shortstr(&"b".repeat(54)), format!("{}...", "b".repeat(50)));
        assert_eq!(shortstr(&"é".repeat(60)).chars().count(), 53);
    }

    #[test]
    fn use_lines_align_labels_to_twenty_columns() {
        assert_eq!(use_line("jail", "sshd"), "Use             jail : sshd");
        assert_eq!(
            use_line("jail/flt options", "{}"),
            "Use jail/flt options : {}"
        );
        assert_eq!(use_line("filter file", "x"), "Use      filter file : x");
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr_str("extra"), "'extra'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a'\"b\\"), "'a\\'\"b\\\\'");
        assert_eq!(
            py_repr_dict(&[
                ("mode".into(), "aggressive".into()),
                ("x".into(), "1".into())
            ]),
            "{'mode': 'aggressive', 'x': '1'}"
        );
        assert_eq!(py_repr_dict(&[]), "{}");
    }

    #[test]
    fn line_listing_limits_and_reclassification() {
        let listing = listing();
        let mut stats = LineStats::default();
        for i in 0..25 {
            stats.add(LineClass::Missed, &format!("m{i}"), &listing);
        }
        stats.add(LineClass::Ignored, "ign  ", &listing);
        stats.add(LineClass::Matched, "hit", &listing);
        assert_eq!(stats.missed_lines.len(), 21);
        assert!(stats.matched_lines.is_empty());
        stats.reclassify_as_matched("m3", &listing);
        stats.reclassify_as_matched("gone", &listing);
        assert_eq!((stats.tested, stats.matched, stats.missed), (27, 3, 23));
        assert!(!stats.missed_lines.contains(&"m3".to_string()));
        let results = Results {
            lines: stats,
            ..Results::default()
        };
        let text = results.render(&listing);
        assert!(text.contains("\nLines: 27 lines, 1 ignored, 3 matched, 23 missed\n\n|- Ignored line(s):\n|  ign\n`-\nMissed line(s): too many to print.  Use --print-all-missed to print all 23 lines\n"), "{text}");
    }

    #[test]
    fn regex_blocks_list_only_hit_regexes_with_their_index() {
        let mut a = RegexStat::new("^a <HOST>$");
        a.hits = 0;
        let mut b = RegexStat::new("^b <HOST>$");
        b.hits = 12;
        let results = Results {
            failregex: vec![a, b],
            date_hits: Some(vec![("T1".into(), 0), ("T2".into(), 3)]),
            ..Results::default()
        };
        let text = results.render(&listing());
        assert_eq!(
            text,
            "\nResults\n=======\n\nFailregex: 12 total\n|-  #) [# of hits] regular expression\n|   2) [12] ^b <HOST>$\n`-\n\nIgnoreregex: 0 total\n\nDate template hits:\n|- [# of hits] date format\n|  [3] T2\n`-\n\nLines: 0 lines, 0 ignored, 0 matched, 0 missed\n\n"
        );
    }
}
