//! Ignore rules of a jail: `ignoreip` entries (addresses, networks, host names, `file:` lists)
//! and `ignoreself`, checked in fail2ban's order before a failure is counted.
//!
//! `ignorecommand` is not here: it runs a shell command, which belongs to `actions`; the
//! server asks it after these rules said "not ignored".

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::SystemTime;

use ipnet::IpNet;

/// How long resolved names and the own-address set stay valid (fail2ban: 5 minutes).
const CACHE_SECONDS: f64 = 300.0;

/// One `ignoreip` entry that is not a single address.
#[derive(Debug, Clone)]
enum Entry {
    Net(IpNet),
    Name(String),
    File(FileList),
}

/// A `file:` entry: words of a file, re-read when the file changes (checked at most once a second).
#[derive(Debug, Clone)]
struct FileList {
    /// The entry as the user wrote it, normalised the way fail2ban shows it.
    shown: String,
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    checked_at: f64,
    singles: HashSet<IpAddr>,
    others: Vec<Entry>,
}

/// Why a failure id was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreSource {
    SelfAddress,
    Ip,
    Net,
    Dns,
    File,
}

impl IgnoreSource {
    /// The wording of fail2ban's log line `[J] Ignore IP by <source>`.
    pub fn describe(self) -> &'static str {
        match self {
            IgnoreSource::SelfAddress => "ignoreself rule",
            IgnoreSource::Ip => "ip",
            IgnoreSource::Net => "ip",
            IgnoreSource::Dns => "dns",
            IgnoreSource::File => "file",
        }
    }
}

/// The `ignoreip` list and `ignoreself` flag of one jail.
#[derive(Debug, Clone)]
pub struct IgnoreList {
    singles: Vec<IpAddr>,
    single_set: HashSet<IpAddr>,
    others: Vec<Entry>,
    pub ignore_self: bool,
    own_addresses: Option<(f64, HashSet<IpAddr>)>,
    resolved: HashMap<String, (f64, Vec<IpAddr>)>,
}

impl Default for IgnoreList {
    fn default() -> Self {
        IgnoreList {
            singles: Vec::new(),
            single_set: HashSet::new(),
            others: Vec::new(),
            ignore_self: true,
            own_addresses: None,
            resolved: HashMap::new(),
        }
    }
}

/// Parse an address the way fail2ban's IPAddr does: brackets unwrapped, `a/N` or `a/mask`
/// networks with host bits cleared, `/32` and `/128` single, IPv4-mapped IPv6 as IPv4.
/// Returns `None` for anything that is not an address (a name, a raw id).
pub fn parse_address(text: &str) -> Option<Result<IpAddr, IpNet>> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr = parse_strict_ip(addr_text)?;
    let Some(prefix_text) = prefix_text else {
        return Some(Ok(addr));
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text.parse::<u8>() {
        Ok(p) if p <= max => p,
        Ok(_) => return None,
        Err(_) => mask_to_prefix(parse_strict_ip(prefix_text)?)?,
    };
    if prefix == max {
        return Some(Ok(addr));
    }
    let net = IpNet::new(addr, prefix).ok()?.trunc();
    Some(Err(net))
}

/// `inet_pton` rules: no leading zeros in IPv4 parts, IPv4-mapped IPv6 folded to IPv4.
fn parse_strict_ip(text: &str) -> Option<IpAddr> {
    let addr: IpAddr = text.parse().ok()?;
    Some(match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

fn mask_to_prefix(mask: IpAddr) -> Option<u8> {
    let bits: u128 = match mask {
        IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
        IpAddr::V6(m) => u128::from(m),
    };
    let ones = bits.leading_ones();
    // A netmask must be contiguous ones followed by zeros.
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    let ones = if mask.is_ipv4() { ones.min(32) } else { ones };
    u8::try_from(ones).ok()
}

impl IgnoreList {
    /// Add `ignoreip` words (whitespace/comma separated; duplicates and empty words skipped).
    pub fn add(&mut self, text: &str) {
        for word in split_words(text) {
            self.add_entry(word);
        }
    }

    fn add_entry(&mut self, word: &str) {
        if let Some(path) = word.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            let shown = file_entry_name(path);
            if self
                .others
                .iter()
                .any(|e| matches!(e, Entry::File(f) if f.shown == shown))
            {
                return;
            }
            self.others.push(Entry::File(FileList {
                shown,
                path: PathBuf::from(path),
                stamp: None,
                checked_at: f64::NEG_INFINITY,
                singles: HashSet::new(),
                others: Vec::new(),
            }));
            return;
        }
        match classify(word) {
            Classified::Single(ip) => {
                if self.single_set.insert(ip) {
                    self.singles.push(ip);
                }
            }
            Classified::Other(entry) => {
                let shown = entry_text(&entry);
                if !self.others.iter().any(|e| entry_text(e) == shown) {
                    self.others.push(entry);
                }
            }
        }
    }

    /// Remove an entry given in any form that normalises to it; returns whether one was removed.
    pub fn remove(&mut self, text: &str) -> bool {
        let word = text.trim();
        if let Some(path) = word.strip_prefix("file:") {
            let before = self.others.len();
            let shown = file_entry_name(path);
            self.others.retain(|e| entry_text(e) != shown);
            return before != self.others.len();
        }
        match classify(word) {
            Classified::Single(ip) => {
                let removed = self.single_set.remove(&ip);
                self.singles.retain(|s| *s != ip);
                removed
            }
            Classified::Other(entry) => {
                let shown = entry_text(&entry);
                let before = self.others.len();
                self.others.retain(|e| entry_text(e) != shown);
                before != self.others.len()
            }
        }
    }

    /// The entries as fail2ban lists them: networks, names and files in insertion order,
    /// then the single addresses.
    pub fn entries(&self) -> Vec<String> {
        let mut out: Vec<String> = self.others.iter().map(entry_text).collect();
        out.extend(self.singles.iter().map(|ip| ip.to_string()));
        out
    }

    /// Check a failure id (as the filter normalised it) at time `now`.
    pub fn check(&mut self, id: &str, now: f64) -> Option<IgnoreSource> {
        let target = parse_address(id);
        if self.ignore_self {
            if let Some(Ok(ip)) = target {
                if self.own_addresses(now).contains(&ip) {
                    return Some(IgnoreSource::SelfAddress);
                }
            }
        }
        let target = target?;
        if let Ok(ip) = target {
            if self.single_set.contains(&ip) {
                return Some(IgnoreSource::Ip);
            }
        }
        let mut others = std::mem::take(&mut self.others);
        let mut found = None;
        for entry in others.iter_mut() {
            if let Some(source) = self.entry_matches(entry, &target, now) {
                found = Some(source);
                break;
            }
        }
        self.others = others;
        found
    }

    fn entry_matches(
        &mut self,
        entry: &mut Entry,
        target: &Result<IpAddr, IpNet>,
        now: f64,
    ) -> Option<IgnoreSource> {
        match entry {
            Entry::Net(net) => net_contains(net, target).then_some(IgnoreSource::Net),
            Entry::Name(name) => {
                let Ok(ip) = target else { return None };
                self.resolve(name, now)
                    .contains(ip)
                    .then_some(IgnoreSource::Dns)
            }
            Entry::File(list) => {
                list.refresh(now);
                if let Ok(ip) = target {
                    if list.singles.contains(ip) {
                        return Some(IgnoreSource::File);
                    }
                }
                let mut inner = std::mem::take(&mut list.others);
                let hit = inner
                    .iter_mut()
                    .any(|e| self.entry_matches(e, target, now).is_some());
                list.others = inner;
                hit.then_some(IgnoreSource::File)
            }
        }
    }

    fn resolve(&mut self, name: &str, now: f64) -> Vec<IpAddr> {
        if let Some((at, addrs)) = self.resolved.get(name) {
            if now - at < CACHE_SECONDS {
                return addrs.clone();
            }
        }
        let addrs = lookup_host(name);
        if self.resolved.len() >= 1000 {
            self.resolved.clear();
        }
        self.resolved.insert(name.to_string(), (now, addrs.clone()));
        addrs
    }

    fn own_addresses(&mut self, now: f64) -> &HashSet<IpAddr> {
        let stale = match &self.own_addresses {
            Some((at, _)) => now - at >= CACHE_SECONDS || now < *at,
            None => true,
        };
        if stale {
            self.own_addresses = Some((now, own_addresses()));
        }
        match &self.own_addresses {
            Some((_, set)) => set,
            None => unreachable!("own addresses were just filled in"),
        }
    }
}

enum Classified {
    Single(IpAddr),
    Other(Entry),
}

fn classify(word: &str) -> Classified {
    match parse_address(word) {
        Some(Ok(ip)) => Classified::Single(ip),
        Some(Err(net)) => Classified::Other(Entry::Net(net)),
        None => Classified::Other(Entry::Name(word.to_string())),
    }
}

/// fail2ban shows `file:/abs` as `file://abs` and `file:rel` unchanged.
fn file_entry_name(path: &str) -> String {
    let path = path.strip_prefix("//").unwrap_or(path);
    let slash = if path.starts_with('/') { "/" } else { "" };
    format!("file:{slash}{path}")
}

fn entry_text(entry: &Entry) -> String {
    match entry {
        Entry::Net(net) => net.to_string(),
        Entry::Name(name) => name.clone(),
        Entry::File(list) => list.shown.clone(),
    }
}

fn net_contains(net: &IpNet, target: &Result<IpAddr, IpNet>) -> bool {
    match target {
        Ok(ip) => net.contains(ip),
        Err(inner) => net.contains(inner),
    }
}

/// Words of an `ignoreip` value or file: separated by whitespace and commas.
fn split_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
}

impl FileList {
    fn refresh(&mut self, now: f64) {
        if now - self.checked_at < 1.0 && now >= self.checked_at {
            return;
        }
        self.checked_at = now;
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_some() && stamp == self.stamp {
            return;
        }
        self.stamp = stamp;
        self.singles.clear();
        self.others.clear();
        let Ok(bytes) = std::fs::read(&self.path) else {
            // Retry a missing or unreadable file after a minute, as fail2ban does.
            self.checked_at = now + 59.0;
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            for word in split_words(strip_comment(line)) {
                match classify(word) {
                    Classified::Single(ip) => {
                        self.singles.insert(ip);
                    }
                    Classified::Other(entry) => self.others.push(entry),
                }
            }
        }
    }
}

/// `#` or `;` starts a comment at line start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if (c == '#' || c == ';') && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn lookup_host(name: &str) -> Vec<IpAddr> {
    match (name, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            let mut out: Vec<IpAddr> = Vec::new();
            for a in addrs {
                let ip = match a.ip() {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a.ip()),
                    ip => ip,
                };
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
            out
        }
        Err(_) => Vec::new(),
    }
}

/// Interface addresses plus what `localhost` and the host's own name resolve to.
fn own_addresses() -> HashSet<IpAddr> {
    let mut set: HashSet<IpAddr> = interface_addresses().into_iter().collect();
    set.extend(lookup_host("localhost"));
    if let Some(host) = hostname() {
        set.extend(lookup_host(&host));
    }
    set
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free with freeifaddrs below; every
    // pointer is checked for null and the sockaddr is read according to its family.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = addr.cast::<libc::sockaddr_in>();
                        let raw = u32::from_be((*sin).sin_addr.s_addr);
                        out.push(IpAddr::V4(raw.into()));
                    }
                    libc::AF_INET6 => {
                        let sin6 = addr.cast::<libc::sockaddr_in6>();
                        out.push(IpAddr::V6((*sin6).sin6_addr.s6_addr.into()));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_normalised_as_fail2ban_lists_them() {
        let mut list = IgnoreList::default();
        list.add(
            "10.0.0.0/8 192.168.0.0/255.255.0.0 2001:db8::/32 ::ffff:1.2.3.4 1.2.3.5/32 \
             [2001:db8::5] 127.0.0.1/8",
        );
        assert_eq!(
            list.entries(),
            vec![
                "10.0.0.0/8",
                "192.168.0.0/16",
                "2001:db8::/32",
                "127.0.0.0/8",
                "1.2.3.4",
                "1.2.3.5",
                "2001:db8::5"
            ]
        );
    }

    #[test]
    fn subnets_singles_and_leading_zeros() {
        let mut list = IgnoreList {
            ignore_self: false,
            ..IgnoreList::default()
        };
        list.add("10.0.0.0/8, 192.0.2.7 2001:db8::/32");
        assert_eq!(list.check("10.1.2.3", 0.0), Some(IgnoreSource::Net));
        assert_eq!(list.check("192.0.2.7", 0.0), Some(IgnoreSource::Ip));
        assert_eq!(list.check("2001:DB8::99", 0.0), Some(IgnoreSource::Net));
        assert_eq!(list.check("192.0.2.8", 0.0), None);
        assert_eq!(list.check("010.001.002.003", 0.0), None);
    }

    #[test]
    fn raw_ids_are_not_matched_by_identical_raw_entries() {
        let mut list = IgnoreList {
            ignore_self: false,
            ..IgnoreList::default()
        };
        list.add("bob");
        assert_eq!(list.check("bob", 0.0), None);
    }

    #[test]
    fn ignoreself_covers_loopback() {
        let mut list = IgnoreList::default();
        assert_eq!(
            list.check("127.0.0.1", 0.0),
            Some(IgnoreSource::SelfAddress)
        );
        list.ignore_self = false;
        assert_eq!(list.check("127.0.0.1", 0.0), None);
    }

    #[test]
    fn file_lists_are_reread_after_change() {
        let dir = std::env::temp_dir().join(format!("ironban-ignore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ignore.txt");
        std::fs::write(&path, "10.0.0.0/8\n# 192.0.2.1\n192.168.1.7 ; note\n").unwrap();
        let mut list = IgnoreList {
            ignore_self: false,
            ..IgnoreList::default()
        };
        list.add(&format!("file:{}", path.display()));
        assert_eq!(list.entries(), vec![format!("file:/{}", path.display())]);
        assert_eq!(list.check("10.9.9.9", 0.0), Some(IgnoreSource::File));
        assert_eq!(list.check("192.168.1.7", 0.0), Some(IgnoreSource::File));
        assert_eq!(list.check("192.0.2.1", 0.0), None);
        std::fs::write(&path, "192.0.2.1 # now listed, and longer\n").unwrap();
        assert_eq!(
            list.check("192.0.2.1", 0.5),
            None,
            "re-read at most once a second"
        );
        assert_eq!(list.check("192.0.2.1", 2.0), Some(IgnoreSource::File));
        assert_eq!(list.check("10.9.9.9", 2.0), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removal_by_normalised_value() {
        let mut list = IgnoreList::default();
        list.add("192.168.0.0/255.255.0.0 1.2.3.4");
        assert!(list.remove("192.168.0.0/16"));
        assert!(list.remove("::ffff:1.2.3.4"));
        assert!(list.entries().is_empty());
    }
}
