//! Transcripts generated from fail2ban 1.0.2 (Debian) runs of the same lines; see check_transcript.

use super::check_transcript;

#[test]
fn oracle_spec_examples() {
    check_transcript(
        None,
        None,
        &["Aug 15 11:59:59 h x", "Aug 15 12:00:01 h x", "Dec 31 23:59:59 h x", "12:00:01 only time", "2005-08-14T10:00:00+02:00 x", "PDT Aug 14 03:00:00 x", "pdt Aug 14 03:00:00 x", "14/08/99 10:00:00 x", "[14/Aug/2005:10:00:00 +0200] apache", "[1124013600] x", "x audit(1124013600.123:45): y", "x 1124013600 y", "@4000000042ff176000000000 x", "Aug 14, 2005 12:00:00 AM", "Aug 14, 2005 12:30:00 PM", "[[10:00:00", "[[[10:00:00", "Mar 27 02:30:00 x", "Oct 30 02:30:00 x", "Feb 29 10:00:00 x", "Aug 14 10:00:00 2031 x", "Aug 14 10:00:00 2005 x", "Sun Aug 14 10:00:00 2005 x", "Aug 14 24:00:00 x", "0000-08-14 10:00:00 x", "text"],
        &["Aug 15 11:59:59 h x|0..15|1124099999.0", "Aug 15 12:00:01 h x|0..15|1092564001.0", "Dec 31 23:59:59 h x|0..15|1104533999.0", "12:00:01 only time|0..8|1123927201.0", "2005-08-14T10:00:00+02:00 x|0..25|1124006400", "PDT Aug 14 03:00:00 x|0..19|1124013600", "pdt Aug 14 03:00:00 x|0..19|None", "14/08/99 10:00:00 x|0..17|4090377600.0", "[14/Aug/2005:10:00:00 +0200] apache|1..27|1124006400", "[1124013600] x|1..11|1124013600.0", "x audit(1124013600.123:45): y|8..22|1124013600.123", "x 1124013600 y|none", "@4000000042ff176000000000 x|0..25|1124013920", "Aug 14, 2005 12:00:00 AM|0..24|1123970400.0", "Aug 14, 2005 12:30:00 PM|0..24|1124015400.0", "[[10:00:00|2..10|1124006400.0", "[[[10:00:00|none", "Mar 27 02:30:00 x|0..15|1111887000.0", "Oct 30 02:30:00 x|0..15|1099096200.0", "Feb 29 10:00:00 x|0..15|None", "Aug 14 10:00:00 2031 x|0..15|1124006400.0", "Aug 14 10:00:00 2005 x|0..20|1124006400.0", "Sun Aug 14 10:00:00 2005 x|0..24|1124006400.0", "Aug 14 24:00:00 x|0..15|None", "0000-08-14 10:00:00 x|none", "text|none", "hits 10 {^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 1 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?", "hits 2 {^LN-BEG}24hour:Minute:Second", "hits 2 {^LN-BEG}(?:Zone name )?(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 1 {^LN-BEG}Day(?P<_sep>[-/])Month(?P=_sep)(?:ExYear|ExYear2) %k:Minute:Second", "hits 1 {^LN-BEG}Day(?P<_sep>[-/])MON(?P=_sep)ExYear[ :]?24hour:Minute:Second(?:\\.Microseconds)?(?: Zone offset)?", "hits 1 {^LN-BEG}Epoch", "hits 1 Epoch", "hits 1 {^LN-BEG}TAI64N", "hits 2 {^LN-BEG}MON Day, ExYear 12hour:Minute:Second AMPM"],
    );
}

#[test]
fn oracle_logtimezone_utc() {
    check_transcript(
        None,
        Some("UTC"),
        &["2005-08-14 10:00:00 x", "2005-08-14 10:00:00 +0100 x", "Aug 14 10:00:00 x", "10:00:00 x", "[1124013600] x"],
        &["2005-08-14 10:00:00 x|0..19|1124013600", "2005-08-14 10:00:00 +0100 x|0..25|1124010000", "Aug 14 10:00:00 x|0..15|1124013600", "10:00:00 x|0..8|1124013600", "[1124013600] x|1..11|1124013600.0", "hits 2 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?", "hits 1 {^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 1 {^LN-BEG}24hour:Minute:Second", "hits 1 {^LN-BEG}Epoch"],
    );
}

#[test]
fn oracle_logtimezone_minus5() {
    check_transcript(
        None,
        Some("-05"),
        &["2005-08-14 10:00:00 x", "Aug 14 23:00:00 x", "Aug 15 23:30:00 x"],
        &["2005-08-14 10:00:00 x|0..19|1124031600", "Aug 14 23:00:00 x|0..15|1124078400", "Aug 15 23:30:00 x|0..15|1092544200", "hits 1 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?", "hits 2 {^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?"],
    );
}

#[test]
fn oracle_logtimezone_cet_offset() {
    check_transcript(
        None,
        Some("CET+0030"),
        &["2005-08-14 10:00:00 x"],
        &["2005-08-14 10:00:00 x|0..19|1124008200", "hits 1 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?"],
    );
}

#[test]
fn oracle_mixed_log_reorder() {
    check_transcript(
        None,
        None,
        &["Aug 14 10:00:00 host sshd[1]: a", "Aug 14 10:00:01 host sshd[1]: b", "2005-08-14 10:00:02 x", "2005-08-14 10:00:03 x", "x [14/Aug/2005:10:00:04 +0200] y", "x [14/Aug/2005:10:00:05 +0200] y", "x [14/Aug/2005:10:00:06 +0200] y", "@4000000042ff176000000000 x", "Aug 14 10:00:07 host y", "prefix Aug 14 10:00:08 host y", "prefix Aug 14 10:00:09 host y", "other prefix Aug 14 10:00:09 host y", "pre 2005-08-14 10:00:10 x", "pre 2005-08-14 10:00:11 x", "pre 1124013600 x", "[1124013600] x", "Aug 14 10:00:12 host sshd[1]: a"],
        &["Aug 14 10:00:00 host sshd[1]: a|0..15|1124006400.0", "Aug 14 10:00:01 host sshd[1]: b|0..15|1124006401.0", "2005-08-14 10:00:02 x|0..19|1124006402.0", "2005-08-14 10:00:03 x|0..19|1124006403.0", "x [14/Aug/2005:10:00:04 +0200] y|3..29|1124006404", "x [14/Aug/2005:10:00:05 +0200] y|3..29|1124006405", "x [14/Aug/2005:10:00:06 +0200] y|3..29|1124006406", "@4000000042ff176000000000 x|0..25|1124013920", "Aug 14 10:00:07 host y|0..15|1124006407.0", "prefix Aug 14 10:00:08 host y|7..22|1124006408.0", "prefix Aug 14 10:00:09 host y|7..22|1124006409.0", "other prefix Aug 14 10:00:09 host y|13..28|1124006409.0", "pre 2005-08-14 10:00:10 x|4..23|1124006410.0", "pre 2005-08-14 10:00:11 x|4..23|1124006411.0", "pre 1124013600 x|none", "[1124013600] x|1..11|1124013600.0", "Aug 14 10:00:12 host sshd[1]: a|0..15|1124006412.0", "hits 4 {^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 2 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?", "hits 3 Day(?P<_sep>[-/])MON(?P=_sep)ExYear[ :]?24hour:Minute:Second(?:\\.Microseconds)?(?: Zone offset)?", "hits 1 {^LN-BEG}TAI64N", "hits 3 (?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 2 ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?", "hits 1 {^LN-BEG}Epoch"],
    );
}

#[test]
fn oracle_dovecot_like() {
    check_transcript(
        None,
        None,
        &["@4000000042ff176000000000 x", "Aug 14 10:00:07 host y", "2005-08-14 10:00:02 x", "Aug 14 10:00:07 host y", "@4000000042ff176000000000 x", "@4000000042ff176000000000 x", "Aug 14 10:00:07 host y"],
        &["@4000000042ff176000000000 x|0..25|1124013920", "Aug 14 10:00:07 host y|0..15|1124006407.0", "2005-08-14 10:00:02 x|0..19|1124006402.0", "Aug 14 10:00:07 host y|0..15|1124006407.0", "@4000000042ff176000000000 x|0..25|1124013920", "@4000000042ff176000000000 x|0..25|1124013920", "Aug 14 10:00:07 host y|0..15|1124006407.0", "hits 3 {^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 3 {^LN-BEG}TAI64N", "hits 1 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?"],
    );
}

#[test]
fn oracle_custom_kerio() {
    check_transcript(
        Some("^\\[%d/%b/%Y %H:%M:%S\\]"),
        None,
        &[
            "[14/Aug/2005 10:00:00] Failed",
            "[14/aug/2005 10:00:00] x",
            " [14/Aug/2005 10:00:00] x",
            "x [14/Aug/2005 10:00:00]",
        ],
        &[
            "[14/Aug/2005 10:00:00] Failed|0..22|1124006400.0",
            "[14/aug/2005 10:00:00] x|0..22|1124006400.0",
            " [14/Aug/2005 10:00:00] x|none",
            "x [14/Aug/2005 10:00:00]|none",
            "hits 2 ^\\[Day/MON/Year 24hour:Minute:Second\\]",
        ],
    );
}

#[test]
fn oracle_custom_literal_cut() {
    check_transcript(
        Some("^L %d/%m/%Y - %H:%M:%S"),
        None,
        &["L 14/08/2005 - 10:00:00: x", "xL 14/08/2005 - 10:00:00: x"],
        &[
            "L 14/08/2005 - 10:00:00: x|0..23|1124006400.0",
            "xL 14/08/2005 - 10:00:00: x|none",
            "hits 1 ^L Day/Month/Year - 24hour:Minute:Second",
        ],
    );
}

#[test]
fn oracle_custom_multi() {
    check_transcript(
        Some("%d.%m.%Y %H:%M\n^%Y-%m-%d\n%H:%M:%S"),
        None,
        &[
            "x 14.08.2005 10:00 y",
            "2005-08-14 y",
            "at 10:00:00 y",
            "14.08.2005 11:00 z",
        ],
        &[
            "x 14.08.2005 10:00 y|2..18|1124006400.0",
            "2005-08-14 y|0..10|1123970400.0",
            "at 10:00:00 y|3..11|1124006400.0",
            "14.08.2005 11:00 z|0..16|1124010000.0",
            "hits 2 Day.Month.Year 24hour:Minute",
            "hits 1 ^Year-Month-Day",
            "hits 1 24hour:Minute:Second",
        ],
    );
}

#[test]
fn oracle_none_pattern() {
    // fail2ban never converts an empty cut (processLine uses the last date or now); the
    // harness called getTime anyway (1123970400.0 = today 00:00), the detector reports None.
    check_transcript(
        Some("{NONE}"),
        None,
        &["Aug 14 10:00:00 x", "anything"],
        &[
            "Aug 14 10:00:00 x|0..0|None",
            "anything|0..0|None",
            "hits 2 ^",
        ],
    );
}

#[test]
fn oracle_epoch_patterns() {
    check_transcript(
        Some("EPOCH"),
        None,
        &[
            "1124013600 x",
            "[1124013600] x",
            "x 1124013600 y",
            "x audit(1124013600.5:1) y",
            "1124013600.123456 x",
        ],
        &[
            "1124013600 x|0..10|1124013600.0",
            "[1124013600] x|1..11|1124013600.0",
            "x 1124013600 y|none",
            "x audit(1124013600.5:1) y|8..18|1124013600.0",
            "1124013600.123456 x|0..17|1124013600.123456",
            "hits 4 Epoch",
        ],
    );
}

#[test]
fn oracle_epoch_anchored() {
    check_transcript(
        Some("^EPOCH"),
        None,
        &[
            "1124013600 x",
            "[1124013600] x",
            "[1124013600 x",
            "x 1124013600",
        ],
        &[
            "1124013600 x|0..10|1124013600.0",
            "[1124013600] x|1..11|1124013600.0",
            "[1124013600 x|1..11|1124013600.0",
            "x 1124013600|none",
            "hits 3 {^LN-BEG}Epoch",
        ],
    );
}

#[test]
fn oracle_lepoch() {
    check_transcript(
        Some("LEPOCH"),
        None,
        &[
            "1124013600123456 x",
            "1124013600123 x",
            "1124013600 x",
            "[1124013600123.456] x",
        ],
        &[
            "1124013600123456 x|0..16|1124013600.123456",
            "1124013600123 x|0..13|1124013600.123",
            "1124013600 x|0..10|1124013600.0",
            "[1124013600123.456] x|1..18|1124013600.123456",
            "hits 4 LongEpoch",
        ],
    );
}

#[test]
fn oracle_epoch_custom() {
    check_transcript(
        Some("ts={EPOCH} "),
        None,
        &["a ts=1124013600 b", "ts=1124013600.5 b"],
        &[
            "a ts=1124013600 b|2..15|1124013600.0",
            "ts=1124013600.5 b|0..13|1124013600.0",
            "hits 2 ts={EPOCH}",
        ],
    );
}

#[test]
fn oracle_tai64n_only() {
    check_transcript(
        Some("TAI64N"),
        None,
        &[
            "@4000000042ff176000000000 x",
            "x @4000000042ff176000000001 y",
        ],
        &[
            "@4000000042ff176000000000 x|0..25|1124013920",
            "x @4000000042ff176000000001 y|2..27|1124013920",
            "hits 2 TAI64N",
        ],
    );
}

#[test]
fn oracle_tai64n_anchored() {
    check_transcript(
        Some("{^LN-BEG}TAI64N"),
        None,
        &[
            "@4000000042ff176000000000 x",
            "x @4000000042ff176000000001 y",
            "[@4000000042ff176000000002] y",
        ],
        &[
            "@4000000042ff176000000000 x|0..25|1124013920",
            "x @4000000042ff176000000001 y|none",
            "[@4000000042ff176000000002] y|1..26|1124013920",
            "hits 2 {^LN-BEG}TAI64N",
        ],
    );
}

#[test]
fn oracle_ln_beg_defaults() {
    check_transcript(
        Some("{^LN-BEG}"),
        None,
        &["Aug 14 10:00:00 x", "x Aug 14 10:00:00 y", "2005-08-14 10:00:00 x", "[[10:00:00 x"],
        &["Aug 14 10:00:00 x|0..15|1124006400.0", "x Aug 14 10:00:00 y|none", "2005-08-14 10:00:00 x|0..19|1124006400.0", "[[10:00:00 x|2..10|1124006400.0", "hits 1 {^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?", "hits 1 {^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?", "hits 1 {^LN-BEG}24hour:Minute:Second"],
    );
}

#[test]
fn oracle_date_placeholder() {
    check_transcript(
        Some("^\\[{DATE}\\]"),
        None,
        &["[Aug 14 10:00:00] x", "[2005-08-14 10:00:00] x", "x [Aug 14 10:00:00] x", "[1124013600] x"],
        &["[Aug 14 10:00:00] x|0..17|1124006400.0", "[2005-08-14 10:00:00] x|0..21|1124006400.0", "x [Aug 14 10:00:00] x|none", "[1124013600] x|none", "hits 1 ^\\[(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?\\]", "hits 1 ^\\[ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?\\]"],
    );
}

#[test]
fn oracle_unbounded() {
    check_transcript(
        Some("{UNB}%H:%M:%S"),
        None,
        &["ab10:00:00cd", "x 10:00:01 y"],
        &[
            "ab10:00:00cd|2..10|1124006400.0",
            "x 10:00:01 y|2..10|1124006401.0",
            "hits 2 24hour:Minute:Second",
        ],
    );
}

#[test]
fn oracle_bounded() {
    check_transcript(
        Some("%H:%M:%S"),
        None,
        &["ab10:00:00cd", "x 10:00:01 y"],
        &[
            "ab10:00:00cd|none",
            "x 10:00:01 y|2..10|1124006401.0",
            "hits 1 24hour:Minute:Second",
        ],
    );
}

#[test]
fn oracle_zone_names() {
    check_transcript(
        Some("%Z %b %d %H:%M:%S"),
        None,
        &[
            "CET Aug 14 10:00:00 x",
            "CEST Aug 14 10:00:00 x",
            "NPT Aug 14 10:00:00 x",
            "utc Aug 14 10:00:00 x",
            "UTC Aug 14 10:00:00 x",
        ],
        &[
            "CET Aug 14 10:00:00 x|0..19|1124010000",
            "CEST Aug 14 10:00:00 x|0..20|1124006400",
            "NPT Aug 14 10:00:00 x|0..19|1123992900",
            "utc Aug 14 10:00:00 x|0..19|None",
            "UTC Aug 14 10:00:00 x|0..19|1124013600",
            "hits 5 Zone name MON Day 24hour:Minute:Second",
        ],
    );
}

#[test]
fn oracle_zone_ex() {
    check_transcript(
        Some("%b %d %H:%M:%S %Exz"),
        None,
        &[
            "Aug 14 10:00:00 CET+0100 x",
            "Aug 14 10:00:00 +0530 x",
            "Aug 14 10:00:00 A x",
        ],
        &[
            "Aug 14 10:00:00 CET+0100 x|0..24|1124006400",
            "Aug 14 10:00:00 +0530 x|0..21|1123993800",
            "Aug 14 10:00:00 A x|0..17|1124010000",
            "hits 3 MON Day 24hour:Minute:Second ExZone offset",
        ],
    );
}

#[test]
fn oracle_weeks_and_julian() {
    check_transcript(
        Some("%Y %j %H:%M"),
        None,
        &["2005 226 10:00", "2005 001 00:00", "2005 366 00:00"],
        &[
            "2005 226 10:00|0..14|1124006400.0",
            "2005 001 00:00|0..14|1104534000.0",
            "2005 366 00:00|0..14|1136070000.0",
            "hits 3 Year Yearday 24hour:Minute",
        ],
    );
}

#[test]
fn oracle_week_numbers() {
    check_transcript(
        Some("%Y %U %a %H:%M"),
        None,
        &["2005 32 Sun 10:00", "2005 00 Sat 10:00"],
        &[
            "2005 32 Sun 10:00|0..17|1123401600.0",
            "2005 00 Sat 10:00|0..17|1104570000.0",
            "hits 2 Year Yearweek DAY 24hour:Minute",
        ],
    );
}

#[test]
fn oracle_ampm_12() {
    check_transcript(
        Some("%I:%M %p %d/%m/%Y"),
        None,
        &[
            "12:05 AM 14/08/2005",
            "12:05 pm 14/08/2005",
            "01:05 PM 14/08/2005",
        ],
        &[
            "12:05 AM 14/08/2005|0..19|1123970700.0",
            "12:05 pm 14/08/2005|0..19|1124013900.0",
            "01:05 PM 14/08/2005|0..19|1124017500.0",
            "hits 3 12hour:Minute AMPM Day/Month/Year",
        ],
    );
}

#[test]
fn oracle_year2() {
    check_transcript(
        Some("%d-%m-%y %H:%M:%S"),
        None,
        &[
            "14-08-05 10:00:00",
            "14-08-99 10:00:00",
            "14-08-00 10:00:00",
        ],
        &[
            "14-08-05 10:00:00|0..17|1124006400.0",
            "14-08-99 10:00:00|0..17|4090377600.0",
            "14-08-00 10:00:00|0..17|966240000.0",
            "hits 3 Day-Month-Year2 24hour:Minute:Second",
        ],
    );
}

#[test]
fn oracle_dst_edges() {
    check_transcript(
        Some("%Y-%m-%d %H:%M:%S"),
        None,
        &[
            "2005-03-27 01:59:59",
            "2005-03-27 02:00:00",
            "2005-03-27 02:30:00",
            "2005-03-27 03:00:00",
            "2005-10-30 01:59:59",
            "2005-10-30 02:00:00",
            "2005-10-30 02:30:00",
            "2005-10-30 02:59:59",
            "2005-10-30 03:00:00",
            "2005-01-15 12:00:00",
        ],
        &[
            "2005-03-27 01:59:59|0..19|1111885199.0",
            "2005-03-27 02:00:00|0..19|1111885200.0",
            "2005-03-27 02:30:00|0..19|1111887000.0",
            "2005-03-27 03:00:00|0..19|1111885200.0",
            "2005-10-30 01:59:59|0..19|1130630399.0",
            "2005-10-30 02:00:00|0..19|1130634000.0",
            "2005-10-30 02:30:00|0..19|1130635800.0",
            "2005-10-30 02:59:59|0..19|1130637599.0",
            "2005-10-30 03:00:00|0..19|1130637600.0",
            "2005-01-15 12:00:00|0..19|1105786800.0",
            "hits 10 Year-Month-Day 24hour:Minute:Second",
        ],
    );
}
