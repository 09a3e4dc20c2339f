//! Behaviour tests of the date detector against fail2ban's documented results.

use super::*;

const TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";
const NOW: f64 = 1124013600.0;

fn detector(pattern: Option<&str>, logtz: Option<&str>) -> DateDetector {
    DateDetector::new(pattern, logtz, LocalZone::posix(TZ).unwrap()).unwrap()
}

fn time_of(d: &mut DateDetector, line: &str) -> Option<f64> {
    d.find(line, NOW).and_then(|m| m.time)
}

#[test]
fn default_syslog_dates_infer_year() {
    let mut d = detector(None, None);
    assert_eq!(time_of(&mut d, "Aug 15 11:59:59 h x"), Some(1124099999.0));
    assert_eq!(time_of(&mut d, "Aug 15 12:00:01 h x"), Some(1092564001.0));
    assert_eq!(time_of(&mut d, "Dec 31 23:59:59 h x"), Some(1104533999.0));
}
