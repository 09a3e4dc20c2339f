//! Turning matched date fields into epoch seconds (fail2ban's `reGroupDictStrptime`,
//! `zone2offset`, epoch and TAI64N conversion) and the fixed zone-abbreviation table.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

use super::template::Field;
use super::zone::LocalZone;

/// Outcome of converting one match.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Converted {
    /// Epoch seconds; `zoned` when an explicit zone made fail2ban return an integer.
    Time { secs: f64, zoned: bool },
    /// The text matched but is not a valid date (fail2ban: ValueError → no time).
    Invalid,
    /// fail2ban raises an exception that escapes the detector (unknown zone abbreviation,
    /// month without day); we report it instead.
    Error(String),
}

/// Zone abbreviations fail2ban knows, with fixed offsets in hours (`strptime.TZ_STR`).
const TZ_TABLE: &[(f64, &str)] = &[
    (-12.0, "Y"),
    (-11.0, "X NUT SST"),
    (-10.0, "W CKT HAST HST TAHT TKT"),
    (-9.0, "V AKST GAMT GIT HADT HNY"),
    (-8.0, "U AKDT CIST HAY HNP PST PT"),
    (-7.0, "T HAP HNR MST PDT"),
    (-6.0, "S CST EAST GALT HAR HNC MDT"),
    (-5.0, "R CDT COT EASST ECT EST ET HAC HNE PET"),
    (-4.0, "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT"),
    (
        -3.0,
        "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT",
    ),
    (-2.0, "O BRST FNT PMDT UYST WGST"),
    (-1.0, "N AZOT CVT EGT"),
    (0.0, "Z EGST GMT UTC WET WT"),
    (1.0, "A CET DFT WAT WEDT WEST"),
    (2.0, "B CAT CEDT CEST EET SAST WAST"),
    (3.0, "C EAT EEDT EEST IDT MSK"),
    (4.0, "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT"),
    (
        5.0,
        "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT",
    ),
    (6.0, "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST"),
    (7.0, "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB"),
    (
        8.0,
        "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST",
    ),
    (9.0, "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT"),
    (10.0, "K AEST ChST PGT VLAT YAKST YAPT"),
    (11.0, "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT"),
    (
        12.0,
        "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT",
    ),
    (13.0, "FJST NZDT"),
    (11.5, "NFT"),
    (10.5, "ACDT LHST"),
    (9.5, "ACST"),
    (6.5, "CCT MMT"),
    (5.75, "NPT"),
    (5.5, "SLT"),
    (4.5, "AFT IRDT"),
    (3.5, "IRST"),
    (-2.5, "HAT NDT"),
    (-3.5, "HNT NST NT"),
    (-4.5, "HLV VET"),
    (-9.5, "MART MIT"),
];

fn abbreviation_offset(abbr: &str) -> Option<i64> {
    if abbr.is_empty() {
        return Some(0);
    }
    TZ_TABLE.iter().find_map(|(hours, names)| {
        names
            .split(' ')
            .any(|n| n == abbr)
            .then_some((hours * 60.0) as i64)
    })
}

/// Why a zone text was rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ZoneProblem {
    /// Not of the form `ABBR?([+-]hh(:?mm)?)?` (fail2ban: ValueError).
    Unsupported,
    /// Well-formed but the abbreviation is not in the table (fail2ban: KeyError).
    UnknownAbbreviation(String),
}

/// Offset in minutes east of UTC of `ABBR?([+-][01]\d(:?\d\d)?)?` (`validateTimeZone`).
pub(crate) fn zone_offset_minutes(text: &str) -> Result<i64, ZoneProblem> {
    let b = text.as_bytes();
    // Abbreviation: one upper-case letter, optionally followed by 2–4 more.
    let mut i = 0;
    while i < b.len() && i < 5 && b[i].is_ascii_uppercase() {
        i += 1;
    }
    // `[A-Z](?:[A-Z]{2,4})?` cannot be exactly two letters; backtrack to one.
    if i == 2 {
        i = 1;
    }
    let (abbr, rest) = text.split_at(i);
    let offset = if rest.is_empty() {
        0
    } else {
        let r = rest.as_bytes();
        let sign = match r[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(ZoneProblem::Unsupported),
        };
        let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        let hours_ok = r.len() >= 3 && (r[1] == b'0' || r[1] == b'1') && digits(&r[2..3]);
        if !hours_ok {
            return Err(ZoneProblem::Unsupported);
        }
        let hours = i64::from(r[1] - b'0') * 10 + i64::from(r[2] - b'0');
        let minutes_text = match r.len() {
            3 => None,
            5 if digits(&r[3..5]) => Some(&r[3..5]),
            6 if r[3] == b':' && digits(&r[4..6]) => Some(&r[4..6]),
            _ => return Err(ZoneProblem::Unsupported),
        };
        match minutes_text {
            // fail2ban: `int(tzo) * 60` for `+hh`.
            None => sign * hours * 60,
            Some(m) => {
                let minutes = i64::from(m[0] - b'0') * 10 + i64::from(m[1] - b'0');
                sign * (hours * 60 + minutes)
            }
        }
    };
    let base = abbreviation_offset(abbr)
        .ok_or_else(|| ZoneProblem::UnknownAbbreviation(abbr.to_string()))?;
    Ok(base + offset)
}

/// First code point of every run of ten Unicode decimal digits (category Nd): `\\d` in a
/// date regex matches them and Python's `int()` converts them.
const DIGIT_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

fn digit_value(c: char) -> Option<i64> {
    if c.is_ascii_digit() {
        return Some(i64::from(c as u8 - b'0'));
    }
    let cp = u32::from(c);
    let zero = DIGIT_ZEROS.iter().rev().find(|&&z| z <= cp)?;
    (cp - zero < 10).then(|| i64::from(cp - zero))
}

/// Python `int()` of a captured number (surrounding spaces allowed, any decimal digits).
pub(crate) fn int(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if (1..=18).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_digit) {
        return Some(
            bytes
                .iter()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
        );
    }
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 18 {
        return None;
    }
    t.chars()
        .try_fold(0i64, |acc, c| Some(acc * 10 + digit_value(c)?))
}

const MONTH_ABBR: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAY_ABBR: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn index_of(names: &[&str], text: &str) -> Option<i64> {
    if text.is_ascii() {
        // Python's lower() of ASCII text is ASCII lowercasing: same answer, no allocation.
        return names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(text))
            .map(|i| i as i64);
    }
    let lower = text.to_lowercase();
    names.iter().position(|n| *n == lower).map(|i| i as i64)
}

/// Inputs of one conversion besides the fields.
pub(crate) struct Context<'a> {
    pub zone: &'a LocalZone,
    /// `now` as local wall time in `zone`.
    pub now_local: NaiveDateTime,
    /// `logtimezone` offset in minutes, applied when the line has no zone.
    pub default_offset: Option<i64>,
    /// Out: the local wall time (as epoch-like seconds) the zone was asked to convert,
    /// when it was (the minute memo checks that it reads back).
    pub wall: std::cell::Cell<Option<i64>>,
}

/// `reGroupDictStrptime`: `fields` in pattern order, with the captured text (None = group
/// did not participate).
pub(crate) fn fields_to_time<'t>(
    fields: impl Iterator<Item = (Field, Option<&'t str>)> + Clone,
    ctx: &Context,
) -> Converted {
    let mut year = None;
    let mut month = None;
    let mut day = None;
    let (mut hour, mut minute, mut second) = (0i64, 0i64, 0i64);
    let mut weekday = None;
    let mut julian = None;
    let mut week = None;
    let mut tz_offset: Option<i64> = None;
    let am_pm = fields
        .clone()
        .find(|(f, _)| *f == Field::AmPm)
        .and_then(|(_, v)| v)
        .map(str::to_lowercase)
        .unwrap_or_default();
    macro_rules! int_or_invalid {
        ($v:expr) => {
            match int($v) {
                Some(n) => n,
                None => return Converted::Invalid,
            }
        };
    }
    for (field, value) in fields {
        let Some(v) = value else { continue };
        match field {
            Field::Year2 => {
                let y = int_or_invalid!(v);
                year = Some(if y <= 2000 { y + 2000 } else { y });
            }
            Field::Year => year = Some(int_or_invalid!(v)),
            Field::Month => month = Some(int_or_invalid!(v)),
            Field::MonthName => match index_of(&MONTH_NAMES, v) {
                Some(i) => month = Some(i + 1),
                None => return Converted::Invalid,
            },
            Field::MonthAbbr => match index_of(&MONTH_ABBR, v) {
                Some(i) => month = Some(i + 1),
                None => return Converted::Invalid,
            },
            Field::Day => day = Some(int_or_invalid!(v)),
            Field::Hour => hour = int_or_invalid!(v),
            Field::Hour12 => {
                hour = int_or_invalid!(v);
                if am_pm.is_empty() || am_pm == "am" {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if am_pm == "pm" && hour != 12 {
                    hour += 12;
                }
            }
            Field::Minute => minute = int_or_invalid!(v),
            Field::Second => second = int_or_invalid!(v),
            Field::WeekdayName => weekday = index_of(&DAY_NAMES, v),
            Field::WeekdayAbbr => weekday = index_of(&DAY_ABBR, v),
            Field::WeekdaySun0 => {
                let w = int_or_invalid!(v) - 1;
                weekday = Some(if w < 0 { 6 } else { w });
            }
            Field::YearDay => julian = Some(int_or_invalid!(v)),
            Field::WeekSun => week = Some((int_or_invalid!(v), false)),
            Field::WeekMon => week = Some((int_or_invalid!(v), true)),
            Field::ZoneOffset | Field::ZoneName => {
                tz_offset = Some(if matches!(v, "Z" | "UTC" | "GMT") {
                    0
                } else {
                    match zone_offset_minutes(v) {
                        Ok(m) => m,
                        Err(ZoneProblem::Unsupported) => return Converted::Invalid,
                        Err(ZoneProblem::UnknownAbbreviation(a)) => {
                            return Converted::Error(format!(
                                "unknown time zone abbreviation {a:?}"
                            ))
                        }
                    }
                });
            }
            Field::AmPm | Field::Fraction => {}
        }
    }
    let now_local = ctx.now_local;
    let assume_year = year.is_none();
    let mut year = year.unwrap_or(i64::from(now_local.year()));
    if month.is_none() || day.is_none() {
        if julian.is_none() {
            if let (Some((w, monday_first)), Some(wd)) = (week, weekday) {
                julian = julian_from_week(year, w, wd, monday_first);
            }
        }
        if let Some(j) = julian {
            let Some(date) = i32::try_from(year)
                .ok()
                .and_then(|y| NaiveDate::from_ymd_opt(y, 1, 1))
                .and_then(|d| d.checked_add_signed(Duration::try_days(j - 1)?))
            else {
                return Converted::Invalid;
            };
            year = i64::from(date.year());
            month = Some(i64::from(date.month()));
            day = Some(i64::from(date.day()));
        }
    }
    let mut assume_today = false;
    if month.is_none() && day.is_none() {
        month = Some(i64::from(now_local.month()));
        day = Some(i64::from(now_local.day()));
        assume_today = true;
    }
    let (Some(month), Some(day)) = (month, day) else {
        return Converted::Error("date has a month or a day but not both".to_string());
    };
    let Some(mut result) = naive(year, month, day, hour, minute, second) else {
        return Converted::Invalid;
    };
    let tz_offset = tz_offset.or(ctx.default_offset);
    if let Some(offset) = tz_offset {
        result -= Duration::minutes(offset);
    }
    if assume_today && result > now_local {
        result -= Duration::days(1);
    }
    if assume_year && result > now_local + Duration::days(1) {
        // fail2ban re-applies the original month/day (quirk kept: it may differ after a
        // zone shift).
        let Some(date) = i32::try_from(year - 1)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, month as u32, day as u32))
        else {
            return Converted::Invalid;
        };
        result = date.and_time(result.time());
    }
    match tz_offset {
        Some(_) => Converted::Time {
            secs: result.and_utc().timestamp() as f64,
            zoned: true,
        },
        None => match ctx.zone.local_to_utc(result) {
            Some(secs) => {
                ctx.wall.set(Some(result.and_utc().timestamp()));
                Converted::Time { secs, zoned: false }
            }
            None => Converted::Invalid,
        },
    }
}

fn naive(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> Option<NaiveDateTime> {
    if !(1..=9999).contains(&year) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    )?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&s) {
        return None;
    }
    date.and_hms_opt(h as u32, m as u32, s as u32)
}

/// Python `_strptime._calc_julian_from_U_or_W` (weekday: Monday = 0).
fn julian_from_week(year: i64, week: i64, weekday: i64, monday_first: bool) -> Option<i64> {
    let jan1 = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 1, 1)?;
    let mut first_weekday = i64::from(jan1.weekday().num_days_from_monday());
    let mut weekday = weekday;
    if !monday_first {
        first_weekday = (first_weekday + 1) % 7;
        weekday = (weekday + 1) % 7;
    }
    let week0_length = (7 - first_weekday) % 7;
    Some(if week == 0 {
        1 + weekday - first_weekday
    } else {
        1 + week0_length + 7 * (week - 1) + weekday
    })
}

/// Epoch template value: `long` = LEPOCH (milli/microseconds by digit count).
pub(crate) fn epoch_to_time(text: &str, long: bool) -> Converted {
    // Python's float() also reads non-ASCII decimal digits, which `\\d` may have matched.
    let ascii: Option<String> = text
        .chars()
        .map(|c| match c {
            '.' => Some('.'),
            _ => digit_value(c).map(|d| char::from(b'0' + d as u8)),
        })
        .collect();
    let Some(text) = ascii else {
        return Converted::Invalid;
    };
    let Ok(mut value) = text.parse::<f64>() else {
        return Converted::Invalid;
    };
    if long && text.len() >= 13 {
        if text.len() >= 16 && !text.contains('.') {
            value /= 1_000_000.0;
        } else {
            value /= 1000.0;
        }
    }
    Converted::Time {
        secs: value,
        zoned: false,
    }
}

/// TAI64N label `@4000…`: hex digits 2..17 are the seconds (no leap-second correction).
pub(crate) fn tai64n_to_time(text: &str) -> Converted {
    match text.get(2..17).map(|h| i64::from_str_radix(h, 16)) {
        Some(Ok(secs)) => Converted::Time {
            secs: secs as f64,
            zoned: true,
        },
        _ => Converted::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_texts() {
        assert_eq!(zone_offset_minutes("UTC"), Ok(0));
        assert_eq!(zone_offset_minutes("+0200"), Ok(120));
        assert_eq!(zone_offset_minutes("-05"), Ok(-300));
        assert_eq!(zone_offset_minutes("-05:30"), Ok(-330));
        assert_eq!(zone_offset_minutes("CET"), Ok(60));
        assert_eq!(zone_offset_minutes("UTC+0200"), Ok(120));
        assert_eq!(zone_offset_minutes("NPT"), Ok(345));
        assert_eq!(zone_offset_minutes("pdt"), Err(ZoneProblem::Unsupported));
        assert_eq!(
            zone_offset_minutes("Europe/Paris"),
            Err(ZoneProblem::Unsupported)
        );
        assert_eq!(
            zone_offset_minutes("XYZ"),
            Err(ZoneProblem::UnknownAbbreviation("XYZ".into()))
        );
        assert_eq!(zone_offset_minutes(""), Ok(0));
    }

    #[test]
    fn python_int_accepts_unicode_digits() {
        assert_eq!(int(" 7"), Some(7));
        assert_eq!(int("2005"), Some(2005));
        assert_eq!(int("\u{662}\u{660}\u{660}\u{665}"), Some(2005));
        assert_eq!(int("\u{FF11}\u{FF12}"), Some(12));
        assert_eq!(int("1a"), None);
        assert_eq!(int(""), None);
    }

    #[test]
    fn epoch_and_tai64n_values() {
        assert_eq!(
            epoch_to_time("1124013600123456", true),
            Converted::Time {
                secs: 1124013600.123456,
                zoned: false
            }
        );
        assert_eq!(
            epoch_to_time("1124013600123", true),
            Converted::Time {
                secs: 1124013600.123,
                zoned: false
            }
        );
        assert_eq!(
            tai64n_to_time("@4000000042ff176000000000"),
            Converted::Time {
                secs: 1124013920.0,
                zoned: true
            }
        );
    }
}
