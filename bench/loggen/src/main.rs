//! loggen: writes N deterministic, seeded log lines in one of the mail/ssh formats ironban
//! benchmarks against (sshd, Postfix, Kerio security.log, OpenSMTPD maillog), with a realistic
//! mix of attack and benign lines, IPv4 and IPv6.
//!
//! Usage: `loggen <sshd|postfix|kerio|opensmtpd> <LINES> [--seed N] [--attack-pct P] [--at EPOCH]`
//! (`--at` stamps every line with that instant instead of a clock running from 2025-03-01, for
//! feeding a live daemon).
//! Lines go to stdout; a one-line summary (`loggen: format=… lines=… attack_lines=…`) goes to
//! stderr. The same arguments always produce the same bytes, so benchmark runs are comparable.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// splitmix64: tiny, fast, good enough statistical quality for test data, and fully
/// deterministic across platforms (unlike the std hasher seeds).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant for test data.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn percent(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Format {
    Sshd,
    Postfix,
    Kerio,
    Opensmtpd,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        match name {
            "sshd" => Some(Format::Sshd),
            "postfix" => Some(Format::Postfix),
            "kerio" => Some(Format::Kerio),
            "opensmtpd" => Some(Format::Opensmtpd),
            _ => None,
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Log clock: starts at a fixed instant and advances 0–2 seconds per line, like a busy server.
struct Clock {
    epoch: i64,
    /// A frozen clock stamps every line with the same instant (live daemon feeding).
    frozen: bool,
}

impl Clock {
    /// 2025-03-01 00:00:00 UTC: in the past, so year inference of syslog dates is stable.
    const START: i64 = 1_740_787_200;

    fn tick(&mut self, rng: &mut Rng) {
        // Draw even when frozen so `--at` does not change which lines are generated.
        let step = rng.below(3) as i64;
        if !self.frozen {
            self.epoch += step;
        }
    }

    /// (year, month 1-12, day, hour, minute, second) in UTC.
    fn fields(&self) -> (i64, usize, i64, i64, i64, i64) {
        let days = self.epoch.div_euclid(86_400);
        let secs = self.epoch.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// `Mar  1 00:00:07` (syslog, day space-padded).
    fn syslog(&self, out: &mut String) {
        let (_, m, d, hh, mm, ss) = self.fields();
        let _ = write!(
            out,
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[m - 1],
            d,
            hh,
            mm,
            ss
        );
    }

    /// `[01/Mar/2025 00:00:07]` (Kerio Connect security.log).
    fn kerio(&self, out: &mut String) {
        let (y, m, d, hh, mm, ss) = self.fields();
        let _ = write!(
            out,
            "[{:02}/{}/{} {:02}:{:02}:{:02}]",
            d,
            MONTHS[m - 1],
            y,
            hh,
            mm,
            ss
        );
    }
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m as usize, d)
}

/// Address pools: a few thousand attackers (some very noisy) and a few hundred legitimate
/// clients; about 15% of each pool is IPv6.
struct Pools {
    attackers: Vec<String>,
    clients: Vec<String>,
}

fn random_ip(rng: &mut Rng) -> String {
    if rng.percent(15) {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.below(0x10000),
            rng.below(0x10000),
            1 + rng.below(0xfffe)
        )
    } else {
        // Avoid 0/8, 10/8, 127/8 and multicast so every address looks like a public host.
        let mut first = 1 + rng.below(223);
        if first == 10 || first == 127 {
            first += 1;
        }
        format!(
            "{}.{}.{}.{}",
            first,
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        )
    }
}

impl Pools {
    fn new(rng: &mut Rng) -> Pools {
        Pools {
            attackers: (0..4000).map(|_| random_ip(rng)).collect(),
            clients: (0..300).map(|_| random_ip(rng)).collect(),
        }
    }

    /// Attack traffic is skewed: a quarter of the attempts come from the first 1% of attackers.
    fn attacker(&self, rng: &mut Rng) -> &str {
        if rng.percent(25) {
            &self.attackers[rng.below(40) as usize]
        } else {
            rng.pick(&self.attackers).as_str()
        }
    }

    fn client(&self, rng: &mut Rng) -> &str {
        rng.pick(&self.clients).as_str()
    }
}

const USERS: [&str; 12] = [
    "root", "admin", "test", "oracle", "postgres", "ubuntu", "git", "user", "guest", "ftpuser",
    "pi", "support",
];
const LOCAL_USERS: [&str; 4] = ["deploy", "alice", "bob", "backup"];
const DOMAINS: [&str; 5] = [
    "example.com",
    "example.net",
    "example.org",
    "mail.example.com",
    "lists.example.org",
];
const HOSTNAMES: [&str; 4] = [
    "unknown",
    "mx1.example.net",
    "static.example.org",
    "dsl-pool.example.com",
];

/// Writes one format's lines; `attack` says whether to emit an attack line.
struct Generator {
    rng: Rng,
    clock: Clock,
    pools: Pools,
    format: Format,
    attack_pct: u64,
    /// OpenSMTPD logs sessions interleaved: each open session holds its remaining lines.
    sessions: Vec<Vec<(bool, String)>>,
}

impl Generator {
    fn new(format: Format, seed: u64, attack_pct: u64, at: Option<i64>) -> Generator {
        let mut rng = Rng(seed);
        let pools = Pools::new(&mut rng);
        Generator {
            rng,
            clock: Clock {
                epoch: at.unwrap_or(Clock::START),
                frozen: at.is_some(),
            },
            pools,
            format,
            attack_pct,
            sessions: Vec::new(),
        }
    }

    /// Appends one line (without newline) to `out`; returns true when it is an attack line.
    fn line(&mut self, out: &mut String) -> bool {
        self.clock.tick(&mut self.rng);
        match self.format {
            Format::Sshd => self.sshd(out),
            Format::Postfix => self.postfix(out),
            Format::Kerio => self.kerio(out),
            Format::Opensmtpd => self.opensmtpd(out),
        }
    }

    fn pid(&mut self) -> u64 {
        1000 + self.rng.below(60_000)
    }

    fn port(&mut self) -> u64 {
        1024 + self.rng.below(64_000)
    }

    fn sshd(&mut self, out: &mut String) -> bool {
        self.clock.syslog(out);
        let attack = self.rng.percent(self.attack_pct);
        let pid = self.pid();
        let port = self.port();
        if attack {
            let ip = self.pools.attacker(&mut self.rng).to_string();
            let user = *self.rng.pick(&USERS);
            let _ = match self.rng.below(5) {
                0 => write!(out, " gw sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"),
                1 => write!(out, " gw sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2"),
                2 => write!(out, " gw sshd[{pid}]: Invalid user {user} from {ip} port {port}"),
                3 => write!(out, " gw sshd[{pid}]: error: maximum authentication attempts exceeded for {user} from {ip} port {port} ssh2 [preauth]"),
                _ => write!(out, " gw sshd[{pid}]: error: PAM: Authentication failure for {user} from {ip}"),
            };
        } else {
            let ip = self.pools.client(&mut self.rng).to_string();
            let user = *self.rng.pick(&LOCAL_USERS);
            let fingerprint = self.rng.next_u64();
            let _ = match self.rng.below(9) {
                0 => write!(out, " gw sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{fingerprint:016x}{fingerprint:x}"),
                1 => write!(out, " gw sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"),
                2 => write!(out, " gw sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}"),
                3 => write!(out, " gw sshd[{pid}]: Received disconnect from {ip} port {port}:11: disconnected by user"),
                4 => write!(out, " gw sshd[{pid}]: Disconnected from user {user} {ip} port {port}"),
                5 => write!(out, " gw sshd[{pid}]: Connection closed by {ip} port {port} [preauth]"),
                6 => write!(out, " gw CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
                7 => write!(out, " gw systemd[1]: Started session-{pid}.scope - Session {pid} of User {user}."),
                _ => write!(out, " gw sshd[{pid}]: Server listening on :: port 22."),
            };
        }
        attack
    }

    fn postfix(&mut self, out: &mut String) -> bool {
        self.clock.syslog(out);
        let attack = self.rng.percent(self.attack_pct);
        let pid = self.pid();
        let queue_id = self.rng.next_u64() & 0xff_ffff_ffff;
        let domain = *self.rng.pick(&DOMAINS);
        let host = *self.rng.pick(&HOSTNAMES);
        let user = *self.rng.pick(&USERS);
        if attack {
            let ip = self.pools.attacker(&mut self.rng).to_string();
            let _ = match self.rng.below(5) {
                0 => write!(out, " mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {host}[{ip}]: 554 5.7.1 <{user}@relay.test>: Relay access denied; from=<{user}@{domain}> to=<{user}@relay.test> proto=ESMTP helo=<{host}>"),
                1 => write!(out, " mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {host}[{ip}]: 550 5.1.1 <{user}@{domain}>: Recipient address rejected: User unknown in local recipient table; from=<> to=<{user}@{domain}> proto=ESMTP helo=<{host}>"),
                2 => write!(out, " mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 450 4.7.25 Client host rejected: cannot find your hostname, [{ip}]; from=<{user}@{domain}> to=<postmaster@{domain}> proto=ESMTP helo=<{host}>"),
                3 => write!(out, " mx postfix/smtpd[{pid}]: improper command pipelining after CONNECT from unknown[{ip}]: "),
                _ => write!(out, " mx postfix/smtpd[{pid}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"),
            };
        } else {
            let ip = self.pools.client(&mut self.rng).to_string();
            let size = 800 + self.rng.below(200_000);
            let _ = match self.rng.below(6) {
                0 => write!(out, " mx postfix/smtpd[{pid}]: connect from {host}[{ip}]"),
                1 => write!(out, " mx postfix/smtpd[{pid}]: disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"),
                2 => write!(out, " mx postfix/cleanup[{pid}]: {queue_id:010X}: message-id=<{queue_id:x}@{domain}>"),
                3 => write!(out, " mx postfix/qmgr[{pid}]: {queue_id:010X}: from=<{user}@{domain}>, size={size}, nrcpt=1 (queue active)"),
                4 => write!(out, " mx postfix/smtp[{pid}]: {queue_id:010X}: to=<{user}@{domain}>, relay={host}[{ip}]:25, delay=0.61, delays=0.05/0.01/0.2/0.35, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued)"),
                _ => write!(out, " mx postfix/anvil[{pid}]: statistics: max connection rate 3/60s for (smtp:{ip}) at Mar  1 00:00:00"),
            };
        }
        attack
    }

    fn kerio(&mut self, out: &mut String) -> bool {
        self.clock.kerio(out);
        let attack = self.rng.percent(self.attack_pct);
        let user = *self.rng.pick(&USERS);
        let domain = *self.rng.pick(&DOMAINS);
        if attack {
            let ip = self.pools.attacker(&mut self.rng).to_string();
            let _ = match self.rng.below(9) {
                0 => write!(out, " SMTP Spam attack detected from {ip}, client closed connection before SMTP greeting"),
                1 => write!(out, " IP address {ip} found in DNS blacklist SpamCop, mail from <{user}@{domain}> to <info@{domain}> rejected"),
                2 => write!(out, " Relay attempt from IP address {ip}, mail from <{user}@{domain}> to <{user}@relay.test> rejected"),
                3 => write!(out, " Attempt to deliver to unknown recipient <{user}@{domain}>, from <{user}@relay.test>, IP address {ip}"),
                4 => write!(out, " Failed SMTP login from {ip} with SASL method LOGIN."),
                5 => write!(out, " SMTP: User {user}@{domain} doesn't exist. Attempt from IP address {ip}."),
                6 => write!(out, " Client with IP address {ip} has no reverse DNS entry, connection rejected before SMTP greeting"),
                7 => write!(out, " Administration login into Web Administration from {ip} failed: IP address not allowed"),
                _ => write!(out, " Message from IP address {ip}, sender <{user}@{domain}> rejected: sender domain does not exist"),
            };
        } else {
            let ip = self.pools.client(&mut self.rng).to_string();
            let local = *self.rng.pick(&LOCAL_USERS);
            let _ = match self.rng.below(4) {
                0 => write!(out, " User {local}@{domain} logged in to WebMail from {ip}"),
                1 => write!(out, " Administration login into Web Administration from {ip} succeeded"),
                2 => write!(out, " Message from IP address {ip}, sender <{local}@{domain}> accepted by SpamAssassin score 0.4"),
                _ => write!(out, " Certificate for {domain} expires in 30 days"),
            };
        }
        attack
    }

    /// OpenSMTPD logs one session over several lines keyed by a 16-hex-digit session id; only
    /// the `connected` line carries the address, so a filter needs the session id (mlfid).
    fn opensmtpd(&mut self, out: &mut String) -> bool {
        const OPEN_SESSIONS: usize = 16;
        while self.sessions.len() < OPEN_SESSIONS {
            let session = self.new_smtpd_session();
            self.sessions.push(session);
        }
        let slot = self.rng.below(self.sessions.len() as u64) as usize;
        // Lines are stored reversed so the next one is a cheap pop().
        let (attack, text) = self.sessions[slot].pop().unwrap_or_default();
        if self.sessions[slot].is_empty() {
            self.sessions.swap_remove(slot);
        }
        self.clock.syslog(out);
        out.push_str(&text);
        attack
    }

    fn new_smtpd_session(&mut self) -> Vec<(bool, String)> {
        let pid = 40_000 + self.rng.below(100);
        let id = self.rng.next_u64();
        let prefix = format!(" mail smtpd[{pid}]: {id:016x} smtp");
        let attack = self.rng.percent(self.attack_pct);
        let ip = if attack {
            self.pools.attacker(&mut self.rng).to_string()
        } else {
            self.pools.client(&mut self.rng).to_string()
        };
        let host = *self.rng.pick(&HOSTNAMES);
        let domain = *self.rng.pick(&DOMAINS);
        let user = *self.rng.pick(&USERS);
        let mut lines = vec![(
            false,
            format!("{prefix} connected address={ip} host={host}"),
        )];
        if attack {
            let attempts = 1 + self.rng.below(3);
            for _ in 0..attempts {
                let text = match self.rng.below(3) {
                    0 => format!("{prefix} authentication user={user} result=permfail"),
                    1 => format!("{prefix} failed-command command=\"AUTH LOGIN\" result=\"535 Authentication failed\""),
                    _ => format!("{prefix} failed-command command=\"RCPT TO:<{user}@{domain}>\" result=\"550 Invalid recipient: <{user}@{domain}>\""),
                };
                lines.push((true, text));
            }
        } else {
            let msg = self.rng.next_u64() as u32;
            lines.push((
                false,
                format!("{prefix} tls ciphers=TLSv1.3:TLS_AES_256_GCM_SHA384:256"),
            ));
            lines.push((
                false,
                format!(
                    "{prefix} message msgid={msg:08x} size={} nrcpt=1 proto=ESMTP",
                    900 + self.rng.below(90_000)
                ),
            ));
            lines.push((false, format!("{prefix} envelope evpid={msg:08x}{:08x} from=<{user}@{domain}> to=<alice@{domain}>", self.rng.next_u64() as u32)));
        }
        lines.push((false, format!("{prefix} disconnected reason=quit")));
        lines.reverse();
        lines
    }
}

/// Writes `opts.lines` lines; returns how many were attack lines.
fn generate(opts: &Options, out: &mut impl Write) -> io::Result<u64> {
    let mut generator = Generator::new(opts.format, opts.seed, opts.attack_pct, opts.at);
    let mut buf = String::with_capacity(512);
    let mut attacks = 0;
    for _ in 0..opts.lines {
        buf.clear();
        if generator.line(&mut buf) {
            attacks += 1;
        }
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    Ok(attacks)
}

struct Options {
    format: Format,
    lines: u64,
    seed: u64,
    attack_pct: u64,
    at: Option<i64>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut positional = Vec::new();
    let mut seed = 42;
    let mut attack_pct = 30;
    let mut at = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--at" => {
                let value = iter.next().and_then(|v| v.parse::<i64>().ok());
                at = Some(value.ok_or("--at needs epoch seconds")?);
            }
            "--seed" | "--attack-pct" => {
                let value = iter
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("{arg} needs a non-negative integer"))?;
                if arg == "--seed" {
                    seed = value;
                } else if value > 100 {
                    return Err("--attack-pct must be 0..=100".into());
                } else {
                    attack_pct = value;
                }
            }
            _ => positional.push(arg.clone()),
        }
    }
    let [format, lines] = positional.as_slice() else {
        return Err("expected <FORMAT> <LINES>".into());
    };
    let format = Format::parse(format).ok_or_else(|| format!("unknown format {format:?}"))?;
    let lines = lines
        .parse()
        .map_err(|_| format!("LINES must be an integer, got {lines:?}"))?;
    Ok(Options {
        format,
        lines,
        seed,
        attack_pct,
        at,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(opts) => opts,
        Err(err) => {
            eprintln!("loggen: {err}");
            eprintln!(
                "usage: loggen <sshd|postfix|kerio|opensmtpd> <LINES> [--seed N] [--attack-pct P] [--at EPOCH]"
            );
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = generate(&opts, &mut out).and_then(|attacks| out.flush().map(|()| attacks));
    match result {
        Ok(attacks) => {
            eprintln!(
                "loggen: format={:?} lines={} attack_lines={} seed={}",
                opts.format, opts.lines, attacks, opts.seed
            );
            ExitCode::SUCCESS
        }
        // A closed pipe (e.g. `| head`) is not an error worth a message.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loggen: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(format: Format, lines: u64, seed: u64) -> Options {
        Options {
            format,
            lines,
            seed,
            attack_pct: 30,
            at: None,
        }
    }

    fn text(format: Format, lines: u64, seed: u64) -> (String, u64) {
        let mut out = Vec::new();
        let attacks = generate(&options(format, lines, seed), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), attacks)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        for format in [
            Format::Sshd,
            Format::Postfix,
            Format::Kerio,
            Format::Opensmtpd,
        ] {
            assert_eq!(text(format, 500, 7), text(format, 500, 7));
            assert_ne!(text(format, 500, 7).0, text(format, 500, 8).0);
        }
    }

    #[test]
    fn exact_line_count_and_attack_share_near_requested() {
        let (body, attacks) = text(Format::Sshd, 10_000, 1);
        assert_eq!(body.lines().count(), 10_000);
        assert!((2_500..3_500).contains(&attacks), "attacks = {attacks}");
    }

    #[test]
    fn syslog_and_kerio_dates() {
        let clock = Clock {
            epoch: Clock::START + 86_400 * 4 + 3_723,
            frozen: false,
        };
        let (mut syslog, mut kerio) = (String::new(), String::new());
        clock.syslog(&mut syslog);
        clock.kerio(&mut kerio);
        assert_eq!(syslog, "Mar  5 01:02:03");
        assert_eq!(kerio, "[05/Mar/2025 01:02:03]");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn mixes_ipv4_and_ipv6() {
        let (body, _) = text(Format::Kerio, 5_000, 3);
        let v6 = body.lines().filter(|l| l.contains("2001:db8:")).count();
        assert!(v6 > 200 && v6 < 2_000, "v6 lines = {v6}");
    }

    #[test]
    fn opensmtpd_sessions_start_with_connected_and_end_with_disconnected() {
        let (body, attacks) = text(Format::Opensmtpd, 20_000, 5);
        let mut state: std::collections::HashMap<&str, &str> = Default::default();
        for line in body.lines() {
            let mut words = line.split_whitespace().skip(5);
            let id = words.next().unwrap();
            let event = words.nth(1).unwrap();
            let previous = state.insert(id, event);
            match event {
                "connected" => assert_eq!(previous, None, "{line}"),
                _ => assert!(previous.is_some_and(|p| p != "disconnected"), "{line}"),
            }
        }
        assert!(attacks > 1_000);
        assert!(body.contains("result=permfail"));
    }

    #[test]
    fn at_freezes_the_clock_without_changing_the_lines() {
        let mut opts = options(Format::Sshd, 300, 9);
        opts.at = Some(Clock::START + 86_400);
        let mut out = Vec::new();
        generate(&opts, &mut out).unwrap();
        let frozen = String::from_utf8(out).unwrap();
        assert!(frozen.lines().all(|l| l.starts_with("Mar  2 00:00:00 ")));
        let (running, _) = text(Format::Sshd, 300, 9);
        let strip =
            |body: &str| -> Vec<String> { body.lines().map(|l| l[15..].to_string()).collect() };
        assert_eq!(strip(&frozen), strip(&running));
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let args = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(args(&["sshd"]).is_err());
        assert!(args(&["smtp", "10"]).is_err());
        assert!(args(&["kerio", "ten"]).is_err());
        assert!(args(&["kerio", "10", "--attack-pct", "101"]).is_err());
        assert!(args(&["kerio", "10", "--at"]).is_err());
        let ok = args(&["kerio", "10", "--seed", "5", "--at", "1700000000"]).unwrap();
        assert_eq!(
            (ok.format, ok.lines, ok.seed, ok.at),
            (Format::Kerio, 10, 5, Some(1_700_000_000))
        );
    }
}
