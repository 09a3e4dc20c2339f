//! Addresses and failure ids: parsing, normalisation, subnets (fail2ban's IPAddr).
//!
//! A failure id is what a failregex extracted: an IP address, a network (from `<CIDR>` /
//! `<SUBNET>` or `a.b.c.d/N` text) or a raw string that is not an address (user names,
//! host names, `999.1.1.1`). Parsing follows `inet_pton`, so IPv4 with leading zeros is raw.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A normalised failure id (fail2ban `IPAddr`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureId {
    /// A single address; IPv4-mapped IPv6 is stored as IPv4.
    Ip(IpAddr),
    /// A network with host bits cleared; never a full-length prefix.
    Net(IpNet),
    /// Anything that is not an address, compared by text.
    Raw(String),
}

impl FailureId {
    /// Parse text the way fail2ban's `IPAddr(text)` does: brackets unwrapped, optional
    /// `/prefix` or `/netmask`, otherwise raw.
    pub fn parse(text: &str) -> FailureId {
        let inner = unwrap_brackets(text.trim());
        if let Some((host, suffix)) = inner.split_once('/') {
            if let Some(ip) = parse_ip(host) {
                if let Some(prefix) = parse_prefix(ip, suffix) {
                    return with_prefix(ip, prefix).unwrap_or_else(|| FailureId::Raw(text.into()));
                }
            }
            return FailureId::Raw(text.to_string());
        }
        match parse_ip(inner) {
            Some(ip) => FailureId::Ip(ip),
            None => FailureId::Raw(text.to_string()),
        }
    }

    /// Parse a host captured by a failregex, optionally with a `<CIDR>` prefix length.
    /// Invalid address text or an impossible prefix keeps the raw text (still a failure).
    pub fn from_host(host: &str, prefix: Option<u8>) -> FailureId {
        let Some(ip) = parse_ip(unwrap_brackets(host)) else {
            return FailureId::Raw(host.to_string());
        };
        match prefix {
            None => FailureId::Ip(ip),
            Some(p) => with_prefix(ip, p).unwrap_or_else(|| FailureId::Raw(host.to_string())),
        }
    }

    /// "inet4"/"inet6" for addresses and networks, None for raw ids.
    pub fn family(&self) -> Option<&'static str> {
        match self {
            FailureId::Ip(IpAddr::V4(_)) | FailureId::Net(IpNet::V4(_)) => Some("inet4"),
            FailureId::Ip(IpAddr::V6(_)) | FailureId::Net(IpNet::V6(_)) => Some("inet6"),
            FailureId::Raw(_) => None,
        }
    }

    /// The address, when this id is a single address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            FailureId::Ip(ip) => Some(*ip),
            _ => None,
        }
    }

    /// True if `other` lies inside this id: equal ids, or an address/network inside a network
    /// of the same family.
    pub fn contains(&self, other: &FailureId) -> bool {
        match (self, other) {
            (FailureId::Net(net), FailureId::Ip(ip)) => net.contains(ip),
            (FailureId::Net(net), FailureId::Net(sub)) => net.contains(sub),
            _ => self == other,
        }
    }

    /// PTR-style reversed name with trailing dot (`<ip-rev>`): `4.3.2.1.`, IPv6 nibbles;
    /// empty for anything but a single address.
    pub fn ip_rev(&self) -> String {
        match self {
            FailureId::Ip(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}.{}.{}.", o[3], o[2], o[1], o[0])
            }
            FailureId::Ip(IpAddr::V6(v6)) => {
                let mut out = String::with_capacity(64);
                for byte in v6.octets().iter().rev() {
                    out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
                }
                out
            }
            _ => String::new(),
        }
    }

    /// True for a raw (non-address) id.
    pub fn is_raw(&self) -> bool {
        matches!(self, FailureId::Raw(_))
    }
}

impl FailureId {
    /// Appends what `Display` prints; IPv4 without the formatter, as it is the common id.
    pub fn push_to(&self, out: &mut String) {
        match self {
            FailureId::Ip(IpAddr::V4(ip)) => {
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    if octet >= 100 {
                        out.push(char::from(b'0' + octet / 100));
                    }
                    if octet >= 10 {
                        out.push(char::from(b'0' + octet / 10 % 10));
                    }
                    out.push(char::from(b'0' + octet % 10));
                }
            }
            FailureId::Ip(IpAddr::V6(ip)) => push_ipv6(out, ip),
            FailureId::Raw(text) => out.push_str(text),
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
}

impl fmt::Display for FailureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureId::Ip(ip) => write!(f, "{ip}"),
            FailureId::Net(net) => write!(f, "{net}"),
            FailureId::Raw(text) => f.write_str(text),
        }
    }
}

fn unwrap_brackets(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
}

/// `inet_pton` semantics: dotted quad without leading zeros, or IPv6 (no zone id).
/// IPv4-mapped IPv6 is normalised to IPv4.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Some(v4) = dotted_quad(text) {
        return Some(IpAddr::V4(v4));
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        // std already rejects leading zeros; keep an explicit check so behaviour does not
        // depend on the std version.
        if text
            .split('.')
            .any(|part| part.len() > 1 && part.starts_with('0'))
        {
            return None;
        }
        return Some(IpAddr::V4(v4));
    }
    if !text.contains(':') {
        return None;
    }
    let v6 = text.parse::<Ipv6Addr>().ok()?;
    Some(normalise_v6(v6))
}

/// The usual dotted quad, read without std's general parser (most failures carry one):
/// four decimal octets of one to three digits, no leading zero, none above 255. None for
/// anything else, which `parse_ip` then reads as before.
fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let bytes = text.as_bytes();
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let digits = bytes[at..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let value = bytes[at..at + digits]
            .iter()
            .fold(0u16, |value, b| value * 10 + u16::from(b - b'0'));
        if digits == 0 || (digits > 1 && bytes[at] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
        at += digits;
    }
    (at == bytes.len()).then_some(Ipv4Addr::from(octets))
}

/// What `Display` writes for `v6` (std's form: the first longest run of two or more zero
/// groups as `::`, groups in lower-case hex), without the formatting machinery.
fn push_ipv6(out: &mut String, v6: &Ipv6Addr) {
    if let Some(v4) = v6.to_ipv4_mapped() {
        let _ = write!(out, "::ffff:{v4}");
        return;
    }
    let groups = v6.segments();
    let (mut zeros, mut run) = ((0, 0), (0, 0));
    for (i, group) in groups.iter().enumerate() {
        if *group == 0 {
            if run.1 == 0 {
                run.0 = i;
            }
            run.1 += 1;
            if run.1 > zeros.1 {
                zeros = run;
            }
        } else {
            run = (0, 0);
        }
    }
    let push_groups = |out: &mut String, groups: &[u16]| {
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            let digits = (4 - group.leading_zeros() / 4).max(1);
            for shift in (0..digits).rev() {
                let nibble = (group >> (shift * 4)) & 0xf;
                out.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
            }
        }
    };
    if zeros.1 > 1 {
        push_groups(out, &groups[..zeros.0]);
        out.push_str("::");
        push_groups(out, &groups[zeros.0 + zeros.1..]);
    } else {
        push_groups(out, &groups);
    }
}

fn normalise_v6(v6: Ipv6Addr) -> IpAddr {
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn parse_prefix(ip: IpAddr, suffix: &str) -> Option<u8> {
    if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
        return suffix.parse::<u8>().ok();
    }
    // Netmask notation: must be the same family and contiguous.
    let mask = parse_ip(suffix)?;
    let bits: u128 = match (ip, mask) {
        (IpAddr::V4(_), IpAddr::V4(m)) => u128::from(u32::from(m)) << 96,
        (IpAddr::V6(_), IpAddr::V6(m)) => u128::from(m),
        _ => return None,
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    u8::try_from(ones).ok()
}

fn with_prefix(ip: IpAddr, prefix: u8) -> Option<FailureId> {
    match ip {
        IpAddr::V4(v4) if prefix == 32 => Some(FailureId::Ip(IpAddr::V4(v4))),
        IpAddr::V6(v6) if prefix == 128 => Some(FailureId::Ip(IpAddr::V6(v6))),
        IpAddr::V4(v4) => Ipv4Net::new(v4, prefix)
            .ok()
            .map(|n| FailureId::Net(IpNet::V4(n.trunc()))),
        IpAddr::V6(v6) => Ipv6Net::new(v6, prefix)
            .ok()
            .map(|n| FailureId::Net(IpNet::V6(n.trunc()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast readers and writers against std on edge cases and a random sweep.
    #[test]
    fn fast_paths_agree_with_std() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut quads: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.1.1.1",
            "1.1.1.01",
            "1.1.1.0",
            "1.1.1",
            "1.1.1.1.",
            "1.1.1.1.1",
            ".1.1.1",
            "1..1.1",
            "1234.1.1.1",
            "1.1.1.1234",
            "+1.1.1.1",
            "1.1.1.1 ",
            "",
            "0.0.0.00",
            "199.200.249.255",
            "99.999.1.1",
        ]
        .map(String::from)
        .to_vec();
        let pieces = [
            "0", "00", "1", "9", "10", "99", "100", "199", "255", "256", "300", "999", "007", ".",
            "", "a",
        ];
        for _ in 0..20_000 {
            // Mostly four pieces, some of them not octets; now and then a stray byte.
            let n = [3, 4, 4, 4, 4, 5][(next() % 6) as usize];
            let mut text = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(".");
            if next() % 8 == 0 {
                let at = (next() % (text.len() as u64 + 1)) as usize;
                text.insert(at, ['.', '0', ':', ' ', '5'][(next() % 5) as usize]);
            }
            quads.push(text);
        }
        for text in &quads {
            let std_reading = text
                .parse::<Ipv4Addr>()
                .ok()
                .filter(|_| !text.split('.').any(|p| p.len() > 1 && p.starts_with('0')));
            if let Some(fast) = dotted_quad(text) {
                assert_eq!(Some(fast), std_reading, "{text:?}");
            }
            assert_eq!(parse_ip(text), std_reading.map(IpAddr::V4), "{text:?}");
        }
        assert!(quads.iter().filter(|t| dotted_quad(t).is_some()).count() > 500);

        let mut v6: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "1:0:0:2:0:0:0:3",
            "1:0:0:2:0:0:3:4",
            "0:0:1:0:0:1:0:0",
            "1:0:1:0:1:0:1:0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "64:ff9b::1.2.3.4",
            "fe80::1:0:0:0",
        ]
        .iter()
        .map(|t| t.parse().expect("test address"))
        .collect();
        for _ in 0..20_000 {
            let mut groups = [0u16; 8];
            for group in &mut groups {
                // Zeros often, so runs of every length and place come up.
                *group = match next() % 4 {
                    0 | 1 => 0,
                    2 => (next() % 16) as u16,
                    _ => next() as u16,
                };
            }
            v6.push(Ipv6Addr::from(groups));
        }
        for ip in v6 {
            let mut out = String::from("x");
            push_ipv6(&mut out, &ip);
            assert_eq!(out, format!("x{ip}"));
        }
    }

    #[test]
    fn push_to_writes_what_display_writes() {
        for text in [
            "0.0.0.0",
            "9.10.99.100",
            "255.254.200.1",
            "192.0.2.1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "10.0.0.0/8",
            "host.example",
        ] {
            let id = FailureId::parse(text);
            let mut out = String::from("x");
            id.push_to(&mut out);
            assert_eq!(out, format!("x{id}"), "{text}");
        }
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(FailureId::parse("192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(FailureId::parse("2001:DB8:0::1").to_string(), "2001:db8::1");
        assert_eq!(
            FailureId::parse("::ffff:192.0.2.1").to_string(),
            "192.0.2.1"
        );
        assert_eq!(FailureId::parse("::ffff:c000:201").to_string(), "192.0.2.1");
        assert_eq!(FailureId::parse("[2001:db8::1]").to_string(), "2001:db8::1");
    }

    #[test]
    fn invalid_text_stays_raw() {
        for raw in ["999.1.1.1", "192.168.001.001", "fe80::1%eth0", "bob", ""] {
            assert_eq!(FailureId::parse(raw), FailureId::Raw(raw.to_string()));
            assert_eq!(FailureId::parse(raw).family(), None);
        }
    }

    #[test]
    fn prefixes_mask_host_bits() {
        assert_eq!(
            FailureId::parse("192.0.2.77/24").to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(FailureId::parse("192.0.2.77/32").to_string(), "192.0.2.77");
        assert_eq!(
            FailureId::parse("192.0.2.77/255.255.0.0").to_string(),
            "192.0.0.0/16"
        );
        assert_eq!(
            FailureId::from_host("192.0.2.77", Some(24)).to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            FailureId::parse("2001:db8::1/64").to_string(),
            "2001:db8::/64"
        );
        assert!(FailureId::parse("192.0.2.1/33").is_raw());
    }

    #[test]
    fn families_and_containment() {
        let net = FailureId::parse("192.0.2.0/24");
        assert_eq!(net.family(), Some("inet4"));
        assert_eq!(FailureId::parse("::1").family(), Some("inet6"));
        assert!(net.contains(&FailureId::parse("192.0.2.200")));
        assert!(!net.contains(&FailureId::parse("192.0.3.1")));
        assert!(!net.contains(&FailureId::parse("::ffff:192.0.3.1")));
        assert!(net.contains(&FailureId::parse("192.0.2.0/25")));
    }

    #[test]
    fn reversed_names() {
        assert_eq!(FailureId::parse("1.2.3.4").ip_rev(), "4.3.2.1.");
        let v6 = FailureId::parse("2001:db8::1").ip_rev();
        assert!(v6.starts_with("1.0.0.0."));
        assert!(v6.ends_with("8.b.d.0.1.0.0.2."));
        assert_eq!(FailureId::parse("bob").ip_rev(), "");
    }
}
