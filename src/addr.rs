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
