//! `ironban regex-check`: the fail2ban-regex equivalent. Owns argument handling, the REGEX
//! argument lookup (filter name, jail, file, literal), log input, line classification, the
//! report and the `--json` failure stream (fail2ban spec section 9).

mod input;
mod report;

use std::fmt::Write as _;
use std::path::Path;

pub use report::{LineClass, LineStats, Listing, RegexStat, Results};

/// Arguments of `ironban regex-check` (fail2ban-regex's, plus `--json`).
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Log file path, or log text (a literal line).
    pub log: Option<String>,
    /// Filter name (in -c DIR/filter.d), jail name, filter file, `name[opt=val,...]`, or a
    /// literal failregex.
    pub regex: Option<String>,
    /// Literal ignoreregex (replaces the filter's ignoreregexes).
    pub ignoreregex: Option<String>,
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
    #[arg(long)]
    pub print_no_missed: bool,
    #[arg(long)]
    pub print_no_ignored: bool,
    #[arg(long)]
    pub print_all_matched: bool,
    #[arg(long)]
    pub print_all_missed: bool,
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
    if args.log.is_none() || args.regex.is_none() {
        errors.push("ERROR: provide both <LOG> and <REGEX>.");
    }
    errors
}

/// fail2ban's test for "this REGEX argument names a filter" (`^/{0,3}[\w/_\-.]+(?:\[.*\])?$`,
/// dot matching newlines).
pub fn looks_like_name(value: &str) -> bool {
    let (name, rest) = match value.find('[') {
        Some(pos) => (&value[..pos], &value[pos..]),
        None => (value, ""),
    };
    let name = {
        let stripped = name.trim_start_matches('/');
        if name.len() - stripped.len() > 3 {
            return false;
        }
        stripped
    };
    if name.is_empty() && value.len() == rest.len() {
        return false;
    }
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '-' | '.'));
    name_ok && (rest.is_empty() || rest.ends_with(']'))
}

/// Splits `name[key=value, key2="v, w"]` (fail2ban's `extractOptions`). Values may be quoted
/// with `"` or `'`; unquoted values end at `,`. Returns None when the brackets do not parse.
pub fn split_name_options(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let Some(open) = value.find('[') else {
        return Some((value.trim().to_string(), Vec::new()));
    };
    let name = value[..open].trim().to_string();
    let inner = value[open + 1..].strip_suffix(']')?;
    let mut options = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            return None;
        }
        let after = rest[eq + 1..].trim_start();
        let (val, remaining) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let end = after[1..].find(q)? + 1;
                (after[1..end].to_string(), &after[end + 1..])
            }
            _ => match after.find(',') {
                Some(comma) => (after[..comma].trim_end().to_string(), &after[comma..]),
                None => (after.trim_end().to_string(), ""),
            },
        };
        options.push((key.to_string(), val));
        let remaining = remaining.trim_start();
        rest = match remaining.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if remaining.is_empty() => remaining,
            None => return None,
        };
    }
    Some((name, options))
}

/// One failure as a `--json` line, keys in this order:
/// `{"line","fid","ip","time","user"?,"captures"}`.
pub fn json_failure(
    line: u64,
    fid: Option<&str>,
    ip: Option<&str>,
    time: Option<f64>,
    user: Option<&str>,
    captures: &[(String, Option<String>)],
) -> String {
    use serde_json::Value;
    let text = |v: Option<&str>| Value::from(v).to_string();
    let mut out = String::with_capacity(160);
    let _ = write!(
        out,
        "{{\"line\":{line},\"fid\":{},\"ip\":{},\"time\":{}",
        text(fid),
        text(ip),
        // serde_json writes whole floats as `1308330045.0` and non-finite ones as null.
        Value::from(time)
    );
    if let Some(user) = user {
        let _ = write!(out, ",\"user\":{}", text(Some(user)));
    }
    out.push_str(",\"captures\":{");
    for (i, (name, value)) in captures.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", text(Some(name)), text(value.as_deref()));
    }
    out.push_str("}}");
    out
}

pub fn run(_conf: &Path, args: Args) -> anyhow::Result<u8> {
    let errors = argument_errors(&args);
    if !errors.is_empty() {
        eprintln!(
            "Usage: ironban regex-check [OPTIONS] <LOG> <REGEX> [IGNOREREGEX]\n\n{}",
            errors.join("\n")
        );
        return Ok(255);
    }
    anyhow::bail!("regex-check: the filter engine is not merged yet")
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
            "sendmail-reject[mode=extra, x=\"a b\"]",
        ] {
            assert!(looks_like_name(name), "{name}");
        }
        for literal in [
            "^Failed from <HOST>$",
            "////x",
            "a b",
            "[x]",
            "sshd[mode=extra",
            "",
        ] {
            assert!(!looks_like_name(literal), "{literal}");
        }
    }

    #[test]
    fn name_options_parse_like_fail2ban() {
        assert_eq!(split_name_options("sshd"), Some(("sshd".into(), vec![])));
        let (name, opts) =
            split_name_options("postfix[mode=aggressive, x=\"a, b\", y='q\"', z=]").unwrap();
        assert_eq!(name, "postfix");
        assert_eq!(
            opts,
            vec![
                ("mode".into(), "aggressive".into()),
                ("x".into(), "a, b".into()),
                ("y".into(), "q\"".into()),
                ("z".into(), "".into()),
            ]
        );
        assert_eq!(split_name_options("x[=1]"), None);
        assert_eq!(split_name_options("x[a=\"1]"), None);
        assert_eq!(split_name_options("x[a=1"), None);
    }

    #[test]
    fn argument_checks() {
        let mut args = Args {
            log: Some("l".into()),
            ..Args::default()
        };
        assert_eq!(
            argument_errors(&args),
            ["ERROR: provide both <LOG> and <REGEX>."]
        );
        args.regex = Some("r".into());
        assert!(argument_errors(&args).is_empty());
        args.print_no_missed = true;
        args.print_all_missed = true;
        assert_eq!(argument_errors(&args).len(), 1);
    }

    #[test]
    fn json_failure_shape() {
        let line = json_failure(
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
        let no_user = json_failure(1, Some("sess1"), None, None, None, &[]);
        assert_eq!(
            no_user,
            r#"{"line":1,"fid":"sess1","ip":null,"time":null,"captures":{}}"#
        );
    }
}
