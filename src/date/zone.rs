//! Local time zone for naive log dates: the process zone (chrono) or a POSIX TZ rule
//! string such as `CET-01CEST-02,M3.5.0,M10.5.0`, with libc `mktime` semantics.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone};

use super::DateError;

/// Local time zone used for dates without an explicit zone and for "now".
#[derive(Debug, Clone, PartialEq)]
pub struct LocalZone {
    kind: ZoneKind,
    last_offset: LastOffset,
}

/// Offset (seconds east) of the previous `local_to_utc` result. glibc's `mktime` keeps the
/// same state and resolves an ambiguous local time to the candidate nearest its guess
/// `local - last offset` (initially 0), so consecutive log lines stay on one side of the
/// autumn switch.
#[derive(Debug, Default)]
struct LastOffset(AtomicI64);

impl LastOffset {
    fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, offset: i64) {
        self.0.store(offset, Ordering::Relaxed);
    }
}

impl Clone for LastOffset {
    fn clone(&self) -> LastOffset {
        LastOffset(AtomicI64::new(self.get()))
    }
}

impl PartialEq for LastOffset {
    /// The guess state is not part of a zone's identity.
    fn eq(&self, _other: &LastOffset) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ZoneKind {
    System,
    Posix(PosixTz),
}

/// A parsed POSIX TZ rule; offsets are seconds east of UTC.
#[derive(Debug, Clone, PartialEq)]
struct PosixTz {
    std_offset: i64,
    dst: Option<DstRule>,
}

#[derive(Debug, Clone, PartialEq)]
struct DstRule {
    offset: i64,
    start: TransitionDay,
    start_time: i64,
    end: TransitionDay,
    end_time: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum TransitionDay {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(u32),
    /// `n`: zero-based day 0..=365, counting February 29.
    Julian0(u32),
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay(u32, u32, u32),
}

/// Default transition time of POSIX rules without `/time`: 02:00 local.
const DEFAULT_TRANSITION: i64 = 2 * 3600;

impl LocalZone {
    /// The process's own zone (TZ env var or /etc/localtime, as chrono resolves it).
    pub fn system() -> LocalZone {
        LocalZone {
            kind: ZoneKind::System,
            last_offset: LastOffset::default(),
        }
    }

    /// An explicit POSIX TZ rule, e.g. `CET-01CEST-02,M3.5.0,M10.5.0` or `UTC0`.
    pub fn posix(rule: &str) -> Result<LocalZone, DateError> {
        let tz = parse_posix(rule)
            .ok_or_else(|| DateError::Zone(format!("invalid POSIX TZ rule: {rule:?}")))?;
        Ok(LocalZone {
            kind: ZoneKind::Posix(tz),
            last_offset: LastOffset::default(),
        })
    }

    /// Epoch seconds of a local naive time, like `mktime` with `tm_isdst = -1`: a
    /// non-existent time (spring gap) is read with the standard offset; an ambiguous one
    /// (autumn) takes the candidate nearest to `local - previous offset` (glibc's guess).
    pub fn local_to_utc(&self, naive: NaiveDateTime) -> Option<f64> {
        let local = naive.and_utc().timestamp();
        let (earlier, later) = match &self.kind {
            ZoneKind::System => {
                use chrono::LocalResult;
                match chrono::Local.from_local_datetime(&naive) {
                    LocalResult::Single(t) => (t.timestamp(), t.timestamp()),
                    LocalResult::Ambiguous(a, b) => {
                        let (a, b) = (a.timestamp(), b.timestamp());
                        (a.min(b), a.max(b))
                    }
                    LocalResult::None => {
                        let before = naive.checked_sub_signed(Duration::hours(3))?;
                        let offset = chrono::Local
                            .from_local_datetime(&before)
                            .earliest()?
                            .offset()
                            .local_minus_utc();
                        let t = local - i64::from(offset);
                        (t, t)
                    }
                }
            }
            ZoneKind::Posix(tz) => match &tz.dst {
                None => {
                    let t = local - tz.std_offset;
                    (t, t)
                }
                Some(dst) => {
                    let as_std = local - tz.std_offset;
                    let as_dst = local - dst.offset;
                    let std_ok = !tz.is_dst(as_std, dst);
                    let dst_ok = tz.is_dst(as_dst, dst);
                    match (std_ok, dst_ok) {
                        (true, true) => (as_std.min(as_dst), as_std.max(as_dst)),
                        (false, true) => (as_dst, as_dst),
                        _ => (as_std, as_std),
                    }
                }
            },
        };
        let guess = local - self.last_offset.get();
        let chosen = if (guess - earlier).abs() < (later - guess).abs() {
            earlier
        } else {
            later
        };
        self.last_offset.set(local - chosen);
        Some(chosen as f64)
    }

    /// The mktime guess state (for tests comparing two paths of a conversion).
    #[cfg(test)]
    pub(super) fn guess_offset(&self) -> i64 {
        self.last_offset.get()
    }

    /// Local naive time of epoch seconds `ts` (fractions kept).
    pub fn utc_to_local(&self, ts: f64) -> NaiveDateTime {
        let whole = ts.floor();
        let nanos = ((ts - whole) * 1e9) as u32;
        let secs = whole as i64;
        let utc = chrono::DateTime::from_timestamp(secs, nanos.min(999_999_999))
            .unwrap_or_default()
            .naive_utc();
        let offset = match &self.kind {
            ZoneKind::System => i64::from(
                chrono::Local
                    .from_utc_datetime(&utc)
                    .offset()
                    .local_minus_utc(),
            ),
            ZoneKind::Posix(tz) => tz.offset_at(secs),
        };
        utc.checked_add_signed(Duration::seconds(offset))
            .unwrap_or(utc)
    }
}

impl PosixTz {
    fn offset_at(&self, utc: i64) -> i64 {
        match &self.dst {
            Some(dst) if self.is_dst(utc, dst) => dst.offset,
            _ => self.std_offset,
        }
    }

    /// Whether DST is in force at `utc` (epoch seconds).
    fn is_dst(&self, utc: i64, dst: &DstRule) -> bool {
        let year = match chrono::DateTime::from_timestamp(utc + self.std_offset, 0) {
            Some(t) => t.year(),
            None => return false,
        };
        let Some(start_day) = transition_day(year, &dst.start) else {
            return false;
        };
        let Some(end_day) = transition_day(year, &dst.end) else {
            return false;
        };
        // The start is given in standard local time, the end in daylight local time.
        let start = start_day + dst.start_time - self.std_offset;
        let end = end_day + dst.end_time - dst.offset;
        if start < end {
            start <= utc && utc < end
        } else {
            !(end <= utc && utc < start)
        }
    }
}

/// Epoch seconds of local midnight (as if UTC) of a rule's day in `year`.
fn transition_day(year: i32, day: &TransitionDay) -> Option<i64> {
    let date = match *day {
        TransitionDay::Julian1(n) => {
            let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
            let mut ordinal = n;
            if jan1.leap_year() && n >= 60 {
                ordinal += 1;
            }
            NaiveDate::from_yo_opt(year, ordinal)?
        }
        TransitionDay::Julian0(n) => NaiveDate::from_yo_opt(year, n + 1)?,
        TransitionDay::MonthWeekDay(month, week, weekday) => {
            let first = NaiveDate::from_ymd_opt(year, month, 1)?;
            let first_wd = first.weekday().num_days_from_sunday();
            let mut mday = 1 + (weekday + 7 - first_wd) % 7 + (week - 1) * 7;
            let days_in_month = days_in_month(year, month)?;
            while mday > days_in_month {
                mday -= 7;
            }
            NaiveDate::from_ymd_opt(year, month, mday)?
        }
    };
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some(next.pred_opt()?.day())
}

/// Cursor over a POSIX TZ string.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<i64> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) && self.i - start < 6 {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// Zone name: `<...>` quoted or three or more letters.
    fn name(&mut self) -> Option<()> {
        if self.eat(b'<') {
            while self.peek()? != b'>' {
                self.i += 1;
            }
            self.i += 1;
            return Some(());
        }
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.i += 1;
        }
        (self.i - start >= 3).then_some(())
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn time(&mut self) -> Option<i64> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number()? * 3600;
        if self.eat(b':') {
            secs += self.number()? * 60;
            if self.eat(b':') {
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }

    fn rule(&mut self) -> Option<(TransitionDay, i64)> {
        let day = if self.eat(b'M') {
            let month = self.number()?;
            if !self.eat(b'.') {
                return None;
            }
            let week = self.number()?;
            if !self.eat(b'.') {
                return None;
            }
            let weekday = self.number()?;
            if !(1..=12).contains(&month) || !(1..=5).contains(&week) || !(0..=6).contains(&weekday)
            {
                return None;
            }
            TransitionDay::MonthWeekDay(month as u32, week as u32, weekday as u32)
        } else if self.eat(b'J') {
            let n = self.number()?;
            if !(1..=365).contains(&n) {
                return None;
            }
            TransitionDay::Julian1(n as u32)
        } else {
            let n = self.number()?;
            if !(0..=365).contains(&n) {
                return None;
            }
            TransitionDay::Julian0(n as u32)
        };
        let time = if self.eat(b'/') {
            self.time()?
        } else {
            DEFAULT_TRANSITION
        };
        Some((day, time))
    }
}

fn parse_posix(rule: &str) -> Option<PosixTz> {
    let rule = rule.strip_prefix(':').unwrap_or(rule);
    let mut c = Cursor {
        s: rule.as_bytes(),
        i: 0,
    };
    c.name()?;
    // POSIX offsets are west of UTC; we store east.
    let std_offset = -c.time()?;
    if c.peek().is_none() {
        return Some(PosixTz {
            std_offset,
            dst: None,
        });
    }
    c.name()?;
    let dst_offset = match c.peek() {
        Some(b',') | None => std_offset + 3600,
        _ => -c.time()?,
    };
    // Without rules POSIX leaves the choice to the implementation; glibc uses the US rules.
    let (start, start_time, end, end_time) = if c.eat(b',') {
        let (start, start_time) = c.rule()?;
        if !c.eat(b',') {
            return None;
        }
        let (end, end_time) = c.rule()?;
        (start, start_time, end, end_time)
    } else {
        (
            TransitionDay::MonthWeekDay(3, 2, 0),
            DEFAULT_TRANSITION,
            TransitionDay::MonthWeekDay(11, 1, 0),
            DEFAULT_TRANSITION,
        )
    };
    if c.peek().is_some() {
        return None;
    }
    Some(PosixTz {
        std_offset,
        dst: Some(DstRule {
            offset: dst_offset,
            start,
            start_time,
            end,
            end_time,
        }),
    })
}
