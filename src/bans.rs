//! Failure counting within findtime, ban decisions, ban times and their increase
//! (fail2ban's `failmanager.py`, `banmanager.py`, `ticket.py` and the observer's
//! `bantime.increment`).
//!
//! Public API (all plain data; "now" is always a parameter, there is no clock inside):
//! - [`Ticket`]: one failure id with its times, counts, matches and filter captures.
//! - [`FailManager`]: `add_failure(id, time, matches, data, count)` returns a ban ticket
//!   once the (decayed) count reaches `maxretry`; `cleanup(now)` drops stale tickets.
//! - [`BanManager`]: `add_ban(ticket, now)` → [`BanOutcome`]; `unban_due(now, limit)`
//!   removes and returns expired bans; `ban_list()` ids ordered by end of ban; `remove(id)`.
//! - [`BanTimeIncrement`]: `bantime.*` options; `increased_ban_time(base, count, rnd)`;
//!   [`apply_increment`] gives a new ban's (ban time, ban count) from its DB history.
//! - [`known_offender_failures`]: how much a failure of an already-banned-before id counts.
//! - [`eval_expression`]: the small Python-expression subset used by `bantime.formula`/`factor`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use compact_str::CompactString;

/// Ban time meaning "never unban".
pub const PERMANENT: i64 = -1;

/// A list of strings in one allocation, each written as a netstring (`<len>:<text>`).
/// Tickets keep their matched lines and captures for as long as they fail or stay banned;
/// a vector plus one allocation per string was most of what a ticket cost (20 jails over
/// 1M lines: ~1.06 KB a ticket before, ~0.63 KB after, map slots included).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Strs(String);

impl Strs {
    pub fn iter(&self) -> StrsIter<'_> {
        StrsIter(&self.0)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends `text`, growing the allocation by just what it needs.
    pub fn push(&mut self, text: &str) {
        let digits = text.len().checked_ilog10().map_or(1, |d| d as usize + 1);
        self.0.reserve_exact(digits + 1 + text.len());
        self.append(text);
    }

    fn append(&mut self, text: &str) {
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{}:", text.len());
        self.0.push_str(text);
    }

    /// Drops all but the last `n` strings.
    pub fn keep_last(&mut self, n: usize) {
        let excess = self.len().saturating_sub(n);
        if excess > 0 {
            let mut rest = self.iter();
            rest.by_ref().take(excess).for_each(drop);
            let cut = self.0.len() - rest.0.len();
            self.0.drain(..cut);
            self.0.shrink_to_fit();
        }
    }
}

/// Iterator over the strings of a [`Strs`].
pub struct StrsIter<'a>(&'a str);

impl<'a> Iterator for StrsIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let text = rest.get(..len)?;
        self.0 = &rest[len..];
        Some(text)
    }
}

impl<'a> FromIterator<&'a str> for Strs {
    fn from_iter<I: IntoIterator<Item = &'a str>>(texts: I) -> Strs {
        let mut strs = Strs::default();
        for text in texts {
            strs.append(text);
        }
        strs.0.shrink_to_fit();
        strs
    }
}

impl<'a> IntoIterator for &'a Strs {
    type Item = &'a str;
    type IntoIter = StrsIter<'a>;
    fn into_iter(self) -> StrsIter<'a> {
        self.iter()
    }
}

impl std::fmt::Debug for Strs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A ticket's filter captures in key order: key, value, key, value, ... in one [`Strs`].
#[derive(Clone, PartialEq, Default)]
pub struct TicketData(Strs);

impl TicketData {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets `key` (a newer value replaces the old one).
    pub fn insert(&mut self, key: &str, value: &str) {
        self.extend([(key, value)]);
    }

    /// Pairs in key order.
    pub fn iter(&self) -> Pairs<'_> {
        Pairs(self.0.iter())
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Iterator over a [`TicketData`]'s pairs.
pub struct Pairs<'a>(StrsIter<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        Some((self.0.next()?, self.0.next()?))
    }
}

impl std::fmt::Debug for TicketData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Later pairs win over earlier ones and over the pairs already held, as fail2ban's
/// ticket data update.
impl<'a> Extend<(&'a str, &'a str)> for TicketData {
    fn extend<I: IntoIterator<Item = (&'a str, &'a str)>>(&mut self, pairs: I) {
        let mut newer: Vec<(&str, &str)> = pairs.into_iter().collect();
        if newer.is_empty() {
            return;
        }
        // Stable sort, then keep the last of equal keys.
        newer.sort_by(|a, b| a.0.cmp(b.0));
        newer.reverse();
        newer.dedup_by(|later, earlier| later.0 == earlier.0);
        newer.reverse();
        let held = std::mem::take(&mut self.0);
        let mut old = Pairs(held.iter()).peekable();
        let mut new = newer.into_iter().peekable();
        let merged = std::iter::from_fn(|| match (old.peek(), new.peek()) {
            (Some(o), Some(n)) if o.0 < n.0 => old.next(),
            (Some(o), Some(n)) if o.0 == n.0 => {
                old.next();
                new.next()
            }
            (Some(_), None) => old.next(),
            (_, Some(_)) => new.next(),
            (None, None) => None,
        });
        self.0 = merged.flat_map(|(key, value)| [key, value]).collect();
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for TicketData {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> TicketData {
        let mut data = TicketData::default();
        data.extend(pairs);
        data
    }
}

impl<'a> IntoIterator for &'a TicketData {
    type Item = (&'a str, &'a str);
    type IntoIter = Pairs<'a>;
    fn into_iter(self) -> Pairs<'a> {
        self.iter()
    }
}

/// One failure id: counting state while failing, ban state once banned.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// Failure id (normalised address text, or a raw string from `<F-ID>`); up to 24 bytes
    /// of text (any IPv4 address, shorter IPv6 ones) are kept inline, without an allocation.
    pub id: CompactString,
    /// Start of the counting window (decay rule, spec 4.1.3).
    pub first_time: f64,
    /// Time of the last failure (or of the manual ban).
    pub time: f64,
    /// Decayed failure count compared with maxretry.
    pub retry: u32,
    /// Total failures seen (the `<failures>` tag).
    pub failures: u32,
    /// Matched lines, the last `maxmatches` kept.
    pub matches: Strs,
    /// Filter captures, keys lower-cased (`user`, `fid`, `fport`, ...).
    pub data: TicketData,
    /// Ban time of this ticket if set (restore/increment); else the jail's is used.
    pub ban_time: Option<i64>,
    /// How often this id has been banned (1 for a fresh ban).
    pub ban_count: u32,
    /// Restored from the database at jail start.
    pub restored: bool,
}

impl Ticket {
    /// A fresh ticket for one failure (or a manual ban) at `time`.
    pub fn new(id: impl Into<CompactString>, time: f64) -> Ticket {
        Ticket {
            id: id.into(),
            first_time: time,
            time,
            retry: 1,
            failures: 1,
            matches: Strs::default(),
            data: TicketData::default(),
            ban_time: None,
            ban_count: 0,
            restored: false,
        }
    }

    /// Ban time to apply: the ticket's own, else the jail's.
    pub fn effective_ban_time(&self, jail_ban_time: i64) -> i64 {
        self.ban_time.unwrap_or(jail_ban_time)
    }

    /// End of ban (spec 4.2.2): ticket time + ban time; `None` = permanent.
    pub fn ban_end(&self, jail_ban_time: i64) -> Option<f64> {
        let ban_time = self.effective_ban_time(jail_ban_time);
        if ban_time < 0 {
            None
        } else {
            Some(self.time + ban_time as f64)
        }
    }

    /// Decay rule of spec 4.1.3: when the window start falls out of `findtime`, rescale
    /// the count to the rate observed so far and move the window start.
    fn adjust_time(&mut self, time: f64, find_time: f64) {
        if time > self.time {
            if self.first_time < time - find_time {
                let elapsed = time - self.first_time;
                let scaled = self.retry as f64 / elapsed * find_time;
                self.retry = round_half_even(scaled).max(0.0) as u32;
                self.first_time = time - find_time;
            }
            self.time = time;
        }
    }
}

/// Python 3 `round()` on floats: ties go to the even neighbour.
pub fn round_half_even(value: f64) -> f64 {
    let floor = value.floor();
    let diff = value - floor;
    if diff > 0.5 {
        floor + 1.0
    } else if diff < 0.5 || floor % 2.0 == 0.0 {
        floor
    } else {
        floor + 1.0
    }
}

/// Per-jail failure counting (spec 4.1).
#[derive(Debug, Clone)]
pub struct FailManager {
    pub max_retry: u32,
    pub find_time: i64,
    /// Matches kept per ticket; 0 keeps none.
    pub max_matches: usize,
    /// Boxed: a map keeps spare slots, and a spare slot of a pointer costs less than one
    /// of a whole ticket.
    tickets: HashMap<CompactString, Box<Ticket>>,
    /// Failures counted since creation ("Total failed").
    pub total_failed: u64,
}

impl Default for FailManager {
    fn default() -> Self {
        FailManager::new(3, 600, 5)
    }
}

impl FailManager {
    pub fn new(max_retry: u32, find_time: i64, max_matches: usize) -> FailManager {
        FailManager {
            max_retry,
            find_time,
            max_matches,
            tickets: HashMap::new(),
            total_failed: 0,
        }
    }

    /// Records `count` failures (normally 1) of `id` at `time`. Returns the ticket, removed
    /// from the fail list, when its count reaches `max_retry`.
    pub fn add_failure(
        &mut self,
        id: &str,
        time: f64,
        matches: &[String],
        data: TicketData,
        count: u32,
    ) -> Option<Ticket> {
        let count = count.max(1);
        let find_time = self.find_time as f64;
        let max_matches = self.max_matches;
        let ticket = match self.tickets.get_mut(id) {
            Some(ticket) => {
                ticket.adjust_time(time, find_time);
                ticket.retry += count;
                ticket.failures += 1;
                matches.iter().for_each(|line| ticket.matches.push(line));
                // Captures of the newest failure win, as fail2ban's ticket data update.
                ticket.data.extend(data.iter());
                ticket
            }
            None => {
                let mut ticket = Ticket::new(id, time);
                ticket.retry = count;
                ticket.matches = matches.iter().map(String::as_str).collect();
                ticket.data = data;
                self.tickets.entry(id.into()).or_insert(Box::new(ticket))
            }
        };
        ticket.matches.keep_last(max_matches);
        self.total_failed += 1;
        if ticket.retry >= self.max_retry {
            return self.tickets.remove(id).map(|ticket| *ticket);
        }
        None
    }

    /// Time to count a failure at (spec 4.1.1), `None` to drop it. While reading old lines
    /// (`initial_read`), failures older than `now - findtime` are dropped; in operation a
    /// time more than 60 s away from `now` is replaced by `now`. Future times become `now`.
    pub fn failure_time(&self, parsed: f64, now: f64, initial_read: bool) -> Option<f64> {
        if !parsed.is_finite() {
            return Some(now);
        }
        if parsed > now {
            return Some(now);
        }
        if initial_read {
            if parsed < now - self.find_time as f64 {
                return None;
            }
            return Some(parsed);
        }
        if (now - parsed).abs() > 60.0 {
            return Some(now);
        }
        Some(parsed)
    }

    /// Current (decayed) count of `id`, 0 if unknown.
    pub fn retry_count(&self, id: &str) -> u32 {
        self.tickets.get(id).map_or(0, |t| t.retry)
    }

    /// Ids currently failing ("Currently failed").
    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Forgets `id` (e.g. after a manual ban).
    pub fn remove(&mut self, id: &str) -> Option<Ticket> {
        self.tickets.remove(id).map(|ticket| *ticket)
    }

    /// Housekeeping (spec 4.1.6): drops tickets whose last failure is `<= now - findtime`.
    pub fn cleanup(&mut self, now: f64) {
        let limit = now - self.find_time as f64;
        self.tickets.retain(|_, t| t.time > limit);
    }
}

/// Result of [`BanManager::add_ban`].
#[derive(Debug, Clone, PartialEq)]
pub enum BanOutcome {
    /// Newly banned: run the ban actions. Carries the ticket as stored (ban count raised).
    Banned(Ticket),
    /// The end of ban is already in the past ("Ignore IP, expired bantime").
    Expired,
    /// Already banned; `prolonged` tells whether the stored end moved later.
    AlreadyBanned { prolonged: bool },
}

/// Banned tickets of one jail (spec 4.2).
#[derive(Debug, Clone)]
pub struct BanManager {
    /// Jail `bantime` in seconds; `-1` permanent.
    ban_time: i64,
    /// Banned tickets by id (a ban looks its id up; thousands of bans must not make that a
    /// scan), each with its insertion number: status output lists bans in the order they
    /// came, sorted when asked (a tree by number besides the map cost ~40 % more per ban).
    banned: HashMap<CompactString, Banned>,
    next_number: u64,
    /// The bans that end, by (end in `total_cmp` order, insertion number, id): the server
    /// asks for the next end and the bans due on every wake-up, and a scan of the bans each
    /// time cost ~7 ms at 100k bans. It costs ~0.15 KB a ban (daemon20: +0.5 MB, 3,761 bans).
    by_end: BTreeSet<(u64, u64, CompactString)>,
    /// Bans since creation ("Total banned").
    pub total_banned: u64,
    /// Whether banned tickets keep their matched lines. Only the `<matches>` tag of an
    /// action reads them once the ban is stored (the database has its own copy), and they
    /// are most of what a ban costs (daemon20: ~0.4 of ~0.75 KB a ban).
    keep_matches: bool,
}

#[derive(Debug, Clone)]
struct Banned {
    number: u64,
    /// Boxed for the map's spare slots, as the fail list's tickets.
    ticket: Box<Ticket>,
}

impl Default for BanManager {
    fn default() -> Self {
        BanManager::new(600)
    }
}

fn end_key(end: Option<f64>) -> f64 {
    end.unwrap_or(f64::INFINITY)
}

/// `end` as an integer ordered as `f64::total_cmp` orders the floats.
fn end_order(end: f64) -> u64 {
    let bits = end.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn end_from_order(order: u64) -> f64 {
    f64::from_bits(if order >> 63 == 1 {
        order & !(1 << 63)
    } else {
        !order
    })
}

/// Moves a ban's entry in the end index from `old` to `new` (`None`: permanent, no entry).
fn reindex(
    by_end: &mut BTreeSet<(u64, u64, CompactString)>,
    old: Option<f64>,
    new: Option<f64>,
    number: u64,
    id: &CompactString,
) {
    if let Some(end) = old {
        by_end.remove(&(end_order(end), number, id.clone()));
    }
    if let Some(end) = new {
        by_end.insert((end_order(end), number, id.clone()));
    }
}

impl BanManager {
    pub fn new(ban_time: i64) -> BanManager {
        BanManager {
            ban_time,
            banned: HashMap::new(),
            next_number: 0,
            by_end: BTreeSet::new(),
            total_banned: 0,
            keep_matches: true,
        }
    }

    pub fn keeps_matches(&self) -> bool {
        self.keep_matches
    }

    /// Keep the matched lines of bans, or not (then those of the current bans go too).
    pub fn set_keep_matches(&mut self, keep: bool) {
        self.keep_matches = keep;
        if !keep {
            for banned in self.banned.values_mut() {
                banned.ticket.matches = Strs::default();
            }
        }
    }

    /// Gives a banned id its matched lines back (from the database, when they are kept
    /// again); returns whether it is banned.
    pub fn set_matches(&mut self, id: &str, matches: Strs) -> bool {
        match self.banned.get_mut(id) {
            Some(banned) => {
                banned.ticket.matches = matches;
                true
            }
            None => false,
        }
    }

    /// The jail's `bantime` in seconds; `-1` permanent.
    pub fn jail_ban_time(&self) -> i64 {
        self.ban_time
    }

    /// A new jail `bantime` (reload): the end of every ban without its own ban time moves.
    pub fn set_jail_ban_time(&mut self, ban_time: i64) {
        self.ban_time = ban_time;
        self.by_end = self
            .banned
            .values()
            .filter_map(|b| {
                let end = b.ticket.ban_end(ban_time)?;
                Some((end_order(end), b.number, b.ticket.id.clone()))
            })
            .collect();
    }

    /// End of ban of `ticket` under this jail; `None` = permanent.
    pub fn ban_end(&self, ticket: &Ticket) -> Option<f64> {
        ticket.ban_end(self.ban_time)
    }

    /// Bans `ticket` unless expired or already banned (then maybe prolongs the stored ban).
    pub fn add_ban(&mut self, mut ticket: Ticket, now: f64) -> BanOutcome {
        let new_end = self.ban_end(&ticket);
        if let Some(end) = new_end {
            if end < now {
                return BanOutcome::Expired;
            }
        }
        let jail_ban_time = self.ban_time;
        if let Some(Banned {
            number,
            ticket: existing,
        }) = self.banned.get_mut(&ticket.id)
        {
            let old_end = existing.ban_end(jail_ban_time);
            let later = end_key(new_end) > end_key(old_end);
            if later {
                // Keep the original ticket time; stretch its ban time to reach the new end.
                existing.ban_time = Some(match new_end {
                    None => PERMANENT,
                    Some(end) => (end - existing.time).ceil() as i64,
                });
                let moved = existing.ban_end(jail_ban_time);
                reindex(&mut self.by_end, old_end, moved, *number, &existing.id);
            }
            return BanOutcome::AlreadyBanned { prolonged: later };
        }
        if !ticket.restored {
            ticket.ban_count += 1;
        } else {
            ticket.ban_count = ticket.ban_count.max(1);
        }
        self.total_banned += 1;
        // The caller gets the matches (actions, database); the stored copy only if kept.
        let matches = std::mem::take(&mut ticket.matches);
        let mut stored = ticket.clone();
        if self.keep_matches {
            stored.matches = matches.clone();
        }
        ticket.matches = matches;
        self.insert(stored);
        BanOutcome::Banned(ticket)
    }

    /// Replaces the ban time of a banned id (after a `bantime.increment`); returns whether
    /// it was banned.
    pub fn set_ban_time(&mut self, id: &str, ban_time: i64, ban_count: u32) -> bool {
        match self.banned.get_mut(id) {
            Some(Banned { number, ticket }) => {
                let old_end = ticket.ban_end(self.ban_time);
                ticket.ban_time = Some(ban_time);
                ticket.ban_count = ban_count;
                let new_end = ticket.ban_end(self.ban_time);
                reindex(&mut self.by_end, old_end, new_end, *number, &ticket.id);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the bans whose end is strictly before `now` (spec 4.2.5), at most
    /// `limit` of them, earliest end first.
    pub fn unban_due(&mut self, now: f64, limit: usize) -> Vec<Ticket> {
        // Earliest end first, equal ends in the order they were banned; a NaN end (never
        // due) sorts first or last and is passed over.
        let due: Vec<CompactString> = self
            .by_end
            .iter()
            .map(|(order, _, id)| (end_from_order(*order), id))
            .filter(|(end, _)| !end.is_nan())
            .take_while(|(end, _)| now > *end)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect();
        due.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Earliest end of ban, for the actions loop's wake-up.
    pub fn next_end(&self) -> Option<f64> {
        let (order, _, _) = self.by_end.first()?;
        Some(end_from_order(*order))
    }

    /// Removes `id` from the ban list.
    pub fn remove(&mut self, id: &str) -> Option<Ticket> {
        let banned = self.banned.remove(id)?;
        let end = self.ban_end(&banned.ticket);
        reindex(
            &mut self.by_end,
            end,
            None,
            banned.number,
            &banned.ticket.id,
        );
        Some(*banned.ticket)
    }

    /// Removes every ban (flush), returning them in insertion order.
    pub fn remove_all(&mut self) -> Vec<Ticket> {
        self.by_end.clear();
        let mut all: Vec<Banned> = std::mem::take(&mut self.banned).into_values().collect();
        all.sort_unstable_by_key(|banned| banned.number);
        all.into_iter().map(|banned| *banned.ticket).collect()
    }

    pub fn get(&self, id: &str) -> Option<&Ticket> {
        self.banned.get(id).map(|banned| &*banned.ticket)
    }

    /// Adds a ban of an id not banned yet (a replaced ban would leave its end indexed).
    fn insert(&mut self, mut ticket: Ticket) {
        debug_assert!(!self.banned.contains_key(&ticket.id));
        if !self.keep_matches {
            ticket.matches = Strs::default();
        }
        let number = self.next_number;
        self.next_number += 1;
        let end = self.ban_end(&ticket);
        reindex(&mut self.by_end, None, end, number, &ticket.id);
        self.banned.insert(
            ticket.id.clone(),
            Banned {
                number,
                ticket: Box::new(ticket),
            },
        );
    }

    /// Banned entries in insertion order.
    fn in_order(&self) -> Vec<&Banned> {
        let mut all: Vec<&Banned> = self.banned.values().collect();
        all.sort_unstable_by_key(|banned| banned.number);
        all
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Banned tickets in insertion order (status output).
    pub fn tickets(&self) -> impl Iterator<Item = &Ticket> + '_ {
        self.in_order().into_iter().map(|banned| &*banned.ticket)
    }

    /// Banned ids ordered by end of ban (`get J banip`); permanent bans last.
    pub fn ban_list(&self) -> Vec<String> {
        let mut list: Vec<(f64, u64, &Ticket)> = self
            .banned
            .values()
            .map(|b| (end_key(self.ban_end(&b.ticket)), b.number, &*b.ticket))
            .collect();
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        list.into_iter().map(|(_, _, t)| t.id.to_string()).collect()
    }

    pub fn len(&self) -> usize {
        self.banned.len()
    }

    pub fn is_empty(&self) -> bool {
        self.banned.is_empty()
    }
}

/// `bantime.*` options of a jail (spec 4.5).
#[derive(Debug, Clone, PartialEq)]
pub struct BanTimeIncrement {
    /// `bantime.factor`, already evaluated.
    pub factor: f64,
    /// `bantime.formula` (Python expression); `None` = fail2ban's default formula.
    pub formula: Option<String>,
    /// `bantime.multipliers`; when non-empty they replace the formula.
    pub multipliers: Vec<i64>,
    pub max_time: Option<i64>,
    pub rnd_time: Option<i64>,
    pub overall_jails: bool,
}

impl Default for BanTimeIncrement {
    fn default() -> Self {
        BanTimeIncrement {
            factor: 1.0,
            formula: None,
            multipliers: Vec::new(),
            max_time: None,
            rnd_time: None,
            overall_jails: false,
        }
    }
}

/// fail2ban's default `bantime.formula`.
pub const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";

impl BanTimeIncrement {
    /// Builds from the option strings as the stream carries them (`factor` and `formula`
    /// are expressions, `multipliers` space separated).
    pub fn from_options(
        factor: Option<&str>,
        formula: Option<&str>,
        multipliers: Option<&str>,
        max_time: Option<i64>,
        rnd_time: Option<i64>,
        overall_jails: bool,
    ) -> Result<BanTimeIncrement, String> {
        let factor = match factor.map(str::trim).filter(|f| !f.is_empty()) {
            Some(text) => eval_expression(text, &BTreeMap::new())?,
            None => 1.0,
        };
        let multipliers = match multipliers.map(str::trim).filter(|m| !m.is_empty()) {
            Some(text) => text
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(|w| {
                    w.parse::<i64>()
                        .map_err(|_| format!("bantime.multipliers: not an integer: {w:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let formula = formula
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        if let Some(text) = &formula {
            // Validate now so that a bad formula is a configuration error, not a ban error.
            eval_formula(text, 1.0, 1, factor)?;
        }
        Ok(BanTimeIncrement {
            factor,
            formula,
            multipliers,
            max_time,
            rnd_time,
            overall_jails,
        })
    }

    /// New ban time for a ban whose id was banned `previous_count` times before (spec 4.5.2).
    /// `random01` is a number in [0, 1) used with `rndtime`. Non-positive base ban times and
    /// `previous_count == 0` are returned unchanged.
    pub fn increased_ban_time(
        &self,
        base: i64,
        previous_count: u32,
        random01: f64,
    ) -> Result<i64, String> {
        if base <= 0 || previous_count == 0 {
            return Ok(base);
        }
        let time = base as f64;
        let mut value = if !self.multipliers.is_empty() {
            let index = (previous_count as usize).min(self.multipliers.len() - 1);
            time * self.factor * self.multipliers[index] as f64
        } else {
            let formula = self.formula.as_deref().unwrap_or(DEFAULT_FORMULA);
            time.max(eval_formula(formula, time, previous_count, self.factor)?)
        };
        if let Some(max) = self.max_time {
            value = value.min(max as f64);
        }
        if let Some(rnd) = self.rnd_time {
            value += random01 * rnd as f64;
        }
        if !value.is_finite() {
            return Err(format!("bantime increment gave {value}"));
        }
        Ok(value as i64)
    }
}

/// The observer's step for a new (non-restored) ban (spec 4.5.1-2): given how often the id
/// was banned before (`None` = never, from the database), returns the ticket's new ban time
/// and ban count. Permanent or non-positive ban times are not increased.
pub fn apply_increment(
    increment: &BanTimeIncrement,
    previous_count: Option<u32>,
    base_ban_time: i64,
    random01: f64,
) -> Result<(i64, u32), String> {
    match previous_count {
        Some(count) if count > 0 && base_ban_time > 0 => Ok((
            increment.increased_ban_time(base_ban_time, count, random01)?,
            count + 1,
        )),
        _ => Ok((base_ban_time, 1)),
    }
}

fn eval_formula(formula: &str, time: f64, count: u32, factor: f64) -> Result<f64, String> {
    let mut names = BTreeMap::new();
    names.insert("ban.Time".to_string(), time);
    names.insert("ban.Count".to_string(), count as f64);
    names.insert("banFactor".to_string(), factor);
    eval_expression(formula, &names)
}

/// How many times a new failure of an id that was banned before counts (spec 4.5.5):
/// `2^(count-1) + 1`, capped at `max_retry`; 1 when never banned.
pub fn known_offender_failures(previous_count: u32, max_retry: u32) -> u32 {
    if previous_count == 0 {
        return 1;
    }
    let exp = (previous_count - 1).min(31);
    let value = (1u64 << exp) + 1;
    value.min(max_retry.max(1) as u64) as u32
}

/// Evaluates the Python expression subset used by `bantime.formula` / `bantime.factor`:
/// numbers, names from `names` (dotted, e.g. `ban.Time`), `+ - * / // % **`, `<< >>`,
/// comparisons, `not and or`, `x if c else y`, parentheses, `int() float() min() max()
/// abs() round()` and `math.*` functions/constants. Booleans are 1.0/0.0.
pub fn eval_expression(text: &str, names: &BTreeMap<String, f64>) -> Result<f64, String> {
    let tokens = tokenize(text)?;
    let mut parser = ExprParser {
        tokens,
        pos: 0,
        names,
        depth: 0,
    };
    let value = parser.conditional()?;
    if parser.pos != parser.tokens.len() {
        return Err(format!("unexpected text in expression {text:?}"));
    }
    Ok(value)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    const OPS: [&str; 20] = [
        "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "(", ")", "<",
        ">", ",", "&", "|",
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let word: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let value = word
                .parse::<f64>()
                .map_err(|_| format!("bad number {word:?}"))?;
            tokens.push(Tok::Num(value));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            tokens.push(Tok::Name(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| format!("unexpected character {c:?} in expression"))?;
            i += op.chars().count();
            tokens.push(Tok::Op(op));
        }
    }
    Ok(tokens)
}

struct ExprParser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    names: &'a BTreeMap<String, f64>,
    /// Nesting depth, bounded so that hostile input cannot overflow the stack.
    depth: usize,
}

/// Deepest nesting of parentheses / unary operators accepted in an expression.
const MAX_EXPRESSION_DEPTH: usize = 64;

fn truth(value: f64) -> bool {
    value != 0.0
}

fn to_int(value: f64) -> Result<i64, String> {
    if value.is_finite() && value.abs() < 9.0e18 {
        Ok(value.trunc() as i64)
    } else {
        Err(format!("cannot convert {value} to an integer"))
    }
}

impl ExprParser<'_> {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Tok::Op(o)) if *o == op)
    }

    fn peek_name(&self, name: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Tok::Name(n)) if n == name)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.peek_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {op:?} in expression"))
        }
    }

    /// `a if c else b` (lowest precedence).
    fn conditional(&mut self) -> Result<f64, String> {
        self.depth += 1;
        let result = self.conditional_inner();
        self.depth -= 1;
        result
    }

    fn conditional_inner(&mut self) -> Result<f64, String> {
        if self.depth > MAX_EXPRESSION_DEPTH {
            return Err("expression nested too deeply".to_string());
        }
        let value = self.or_expr()?;
        if self.peek_name("if") {
            self.pos += 1;
            let cond = self.or_expr()?;
            if !self.peek_name("else") {
                return Err("expected 'else' in expression".to_string());
            }
            self.pos += 1;
            let other = self.conditional()?;
            return Ok(if truth(cond) { value } else { other });
        }
        Ok(value)
    }

    fn or_expr(&mut self) -> Result<f64, String> {
        let mut value = self.and_expr()?;
        while self.peek_name("or") {
            self.pos += 1;
            let rhs = self.and_expr()?;
            value = if truth(value) { value } else { rhs };
        }
        Ok(value)
    }

    fn and_expr(&mut self) -> Result<f64, String> {
        let mut value = self.not_expr()?;
        while self.peek_name("and") {
            self.pos += 1;
            let rhs = self.not_expr()?;
            value = if truth(value) { rhs } else { value };
        }
        Ok(value)
    }

    fn not_expr(&mut self) -> Result<f64, String> {
        if self.peek_name("not") {
            self.pos += 1;
            self.depth += 1;
            let value = if self.depth > MAX_EXPRESSION_DEPTH * 4 {
                Err("expression nested too deeply".to_string())
            } else {
                self.not_expr()
            };
            self.depth -= 1;
            let value = value?;
            return Ok(if truth(value) { 0.0 } else { 1.0 });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<f64, String> {
        let mut left = self.bit_or()?;
        let mut result = true;
        let mut compared = false;
        loop {
            let op = match self.tokens.get(self.pos) {
                Some(Tok::Op(op)) if matches!(*op, "<" | ">" | "<=" | ">=" | "==" | "!=") => *op,
                _ => break,
            };
            self.pos += 1;
            let right = self.bit_or()?;
            let holds = match op {
                "<" => left < right,
                ">" => left > right,
                "<=" => left <= right,
                ">=" => left >= right,
                "==" => left == right,
                _ => left != right,
            };
            result = result && holds;
            compared = true;
            left = right;
        }
        if compared {
            Ok(if result { 1.0 } else { 0.0 })
        } else {
            Ok(left)
        }
    }

    fn bit_or(&mut self) -> Result<f64, String> {
        let mut value = self.bit_and()?;
        while self.peek_op("|") {
            self.pos += 1;
            let rhs = self.bit_and()?;
            value = (to_int(value)? | to_int(rhs)?) as f64;
        }
        Ok(value)
    }

    fn bit_and(&mut self) -> Result<f64, String> {
        let mut value = self.shift()?;
        while self.peek_op("&") {
            self.pos += 1;
            let rhs = self.shift()?;
            value = (to_int(value)? & to_int(rhs)?) as f64;
        }
        Ok(value)
    }

    fn shift(&mut self) -> Result<f64, String> {
        let mut value = self.additive()?;
        loop {
            let left_shift = if self.peek_op("<<") {
                true
            } else if self.peek_op(">>") {
                false
            } else {
                break;
            };
            self.pos += 1;
            let rhs = to_int(self.additive()?)?;
            if !(0..=62).contains(&rhs) {
                return Err(format!("shift count {rhs} out of range"));
            }
            let lhs = to_int(value)?;
            value = if left_shift {
                lhs.checked_shl(rhs as u32)
                    .filter(|v| v >> rhs == lhs)
                    .ok_or("shift overflow")? as f64
            } else {
                (lhs >> rhs) as f64
            };
        }
        Ok(value)
    }

    fn additive(&mut self) -> Result<f64, String> {
        let mut value = self.term()?;
        loop {
            if self.peek_op("+") {
                self.pos += 1;
                value += self.term()?;
            } else if self.peek_op("-") {
                self.pos += 1;
                value -= self.term()?;
            } else {
                return Ok(value);
            }
        }
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut value = self.unary()?;
        loop {
            let op = match self.tokens.get(self.pos) {
                Some(Tok::Op(op)) if matches!(*op, "*" | "/" | "//" | "%") => *op,
                _ => return Ok(value),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            if op != "*" && rhs == 0.0 {
                return Err("division by zero in expression".to_string());
            }
            value = match op {
                "*" => value * rhs,
                "/" => value / rhs,
                "//" => (value / rhs).floor(),
                _ => value - rhs * (value / rhs).floor(),
            };
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        self.depth += 1;
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<f64, String> {
        if self.depth > MAX_EXPRESSION_DEPTH * 4 {
            return Err("expression nested too deeply".to_string());
        }
        if self.peek_op("-") {
            self.pos += 1;
            return Ok(-self.unary()?);
        }
        if self.peek_op("+") {
            self.pos += 1;
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.peek_op("**") {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or("unexpected end of expression")?;
        self.pos += 1;
        match token {
            Tok::Num(value) => Ok(value),
            Tok::Op("(") => {
                let value = self.conditional()?;
                self.expect_op(")")?;
                Ok(value)
            }
            Tok::Op(op) => Err(format!("unexpected {op:?} in expression")),
            Tok::Name(name) => {
                if self.peek_op("(") {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if !self.peek_op(")") {
                        loop {
                            args.push(self.conditional()?);
                            if self.peek_op(",") {
                                self.pos += 1;
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect_op(")")?;
                    return call_function(&name, &args);
                }
                match name.as_str() {
                    "True" => Ok(1.0),
                    "False" => Ok(0.0),
                    "math.pi" => Ok(std::f64::consts::PI),
                    "math.e" => Ok(std::f64::consts::E),
                    _ => self
                        .names
                        .get(&name)
                        .copied()
                        .ok_or_else(|| format!("unknown name {name:?} in expression")),
                }
            }
        }
    }
}

fn call_function(name: &str, args: &[f64]) -> Result<f64, String> {
    let one = |f: fn(f64) -> f64| -> Result<f64, String> {
        match args {
            [x] => Ok(f(*x)),
            _ => Err(format!("{name}() takes one argument")),
        }
    };
    match name {
        "int" | "math.trunc" => one(f64::trunc),
        "float" => one(|x| x),
        "abs" | "math.fabs" => one(f64::abs),
        "round" => one(round_half_even),
        "math.floor" => one(f64::floor),
        "math.ceil" => one(f64::ceil),
        "math.sqrt" => one(f64::sqrt),
        "math.exp" => one(f64::exp),
        "math.log" if args.len() == 2 => Ok(args[0].ln() / args[1].ln()),
        "math.log" => one(f64::ln),
        "math.log2" => one(f64::log2),
        "math.log10" => one(f64::log10),
        "math.pow" => match args {
            [x, y] => Ok(x.powf(*y)),
            _ => Err("math.pow() takes two arguments".to_string()),
        },
        "min" | "max" if !args.is_empty() => {
            let pick = if name == "min" { f64::min } else { f64::max };
            Ok(args.iter().copied().fold(args[0], pick))
        }
        _ => Err(format!("unknown function {name:?} in expression")),
    }
}

/// Carrying failure counts across runs of the one-shot mode.
impl FailManager {
    /// The tickets still counting, in no particular order.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.tickets
            .values()
            .map(|ticket| Ticket::clone(ticket))
            .collect()
    }

    /// Put back a ticket saved by an earlier run.
    pub fn restore(&mut self, ticket: Ticket) {
        self.tickets.insert(ticket.id.clone(), Box::new(ticket));
    }
}

impl BanManager {
    /// Put back a ban an earlier one-shot run applied, even if it has expired since: the
    /// next `unban_due` then lifts it.
    pub fn insert_applied(&mut self, ticket: Ticket) {
        if !self.contains(&ticket.id) {
            self.insert(ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(fm: &mut FailManager, id: &str, t: f64) -> Option<Ticket> {
        fm.add_failure(id, t, &[format!("line at {t}")], TicketData::default(), 1)
    }

    #[test]
    fn bans_when_count_reaches_maxretry() {
        let mut fm = FailManager::new(3, 600, 5);
        assert!(fail(&mut fm, "1.2.3.4", 10.0).is_none());
        assert!(fail(&mut fm, "1.2.3.4", 20.0).is_none());
        let ticket = fail(&mut fm, "1.2.3.4", 30.0).expect("third failure bans");
        assert_eq!(ticket.retry, 3);
        assert_eq!(ticket.failures, 3);
        assert_eq!(ticket.time, 30.0);
        assert_eq!(ticket.first_time, 10.0);
        assert_eq!(fm.len(), 0, "banned ticket leaves the fail list");
        assert_eq!(fm.total_failed, 3);
    }

    #[test]
    fn decay_rule_is_not_a_strict_window() {
        // Spec 4.1.3: maxretry 5 / findtime 600, failures at 0,100,200,300,700,750 ban at 750.
        let mut fm = FailManager::new(5, 600, 5);
        for t in [0.0, 100.0, 200.0, 300.0] {
            assert!(fail(&mut fm, "a", t).is_none());
        }
        assert!(fail(&mut fm, "a", 700.0).is_none());
        // round(4/700*600) = 3, +1
        assert_eq!(fm.retry_count("a"), 4);
        let ticket = fail(&mut fm, "a", 750.0).expect("ban at 750");
        assert_eq!(ticket.retry, 5);
        assert_eq!(ticket.first_time, 150.0);
    }

    #[test]
    fn decay_uses_round_half_even() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.49), 1.0);
        // 2 failures at 0 and 100, then one at 800 with findtime 500: 2/800*500 = 1.25 → 1.
        let mut fm = FailManager::new(10, 500, 5);
        fail(&mut fm, "x", 0.0);
        fail(&mut fm, "x", 100.0);
        fail(&mut fm, "x", 800.0);
        assert_eq!(fm.retry_count("x"), 2);
        // Exact tie: 5 failures over 1000 s scaled to findtime 100 = 0.5 → 0, +1.
        let mut fm = FailManager::new(10, 100, 5);
        for t in [0.0, 0.0, 0.0, 0.0, 0.0] {
            fail(&mut fm, "y", t);
        }
        fail(&mut fm, "y", 1000.0);
        assert_eq!(fm.retry_count("y"), 1);
    }

    #[test]
    fn packed_strings_keep_their_text_and_order() {
        let mut strs: Strs = ["", "12:34", "3:abc", "\u{e9}t\u{e9}\n"]
            .into_iter()
            .collect();
        strs.push("x");
        assert_eq!(strs.len(), 5);
        let all: Vec<&str> = strs.iter().collect();
        assert_eq!(all, ["", "12:34", "3:abc", "\u{e9}t\u{e9}\n", "x"]);
        strs.keep_last(2);
        let kept: Vec<&str> = strs.iter().collect();
        assert_eq!(kept, ["\u{e9}t\u{e9}\n", "x"]);
        let long = "7".repeat(100);
        strs.push("0123456789");
        strs.push(&long);
        let last: Vec<&str> = strs.iter().skip(2).collect();
        assert_eq!(last, ["0123456789", long.as_str()]);
        strs.keep_last(0);
        assert!(strs.is_empty());
        assert_eq!(format!("{strs:?}"), "[]");
    }

    #[test]
    fn matches_are_capped_at_maxmatches() {
        let mut fm = FailManager::new(10, 600, 2);
        for t in [1.0, 2.0, 3.0] {
            fail(&mut fm, "m", t);
        }
        let ticket = fm.remove("m").expect("ticket");
        let kept: Vec<&str> = ticket.matches.iter().collect();
        assert_eq!(kept, ["line at 2", "line at 3"]);
        let mut none = FailManager::new(10, 600, 0);
        fail(&mut none, "m", 1.0);
        assert!(none.remove("m").expect("ticket").matches.is_empty());
    }

    #[test]
    fn failure_times_are_clamped_or_dropped() {
        let fm = FailManager::new(3, 600, 5);
        // Initial read: old lines dropped, recent kept as logged.
        assert_eq!(fm.failure_time(300.0, 1000.0, true), None);
        assert_eq!(fm.failure_time(500.0, 1000.0, true), Some(500.0));
        // Operation: far-off times replaced by now, near ones kept.
        assert_eq!(fm.failure_time(500.0, 1000.0, false), Some(1000.0));
        assert_eq!(fm.failure_time(950.0, 1000.0, false), Some(950.0));
        // Future clamps to now in both modes.
        assert_eq!(fm.failure_time(5000.0, 1000.0, true), Some(1000.0));
        assert_eq!(fm.failure_time(1010.0, 1000.0, false), Some(1000.0));
    }

    #[test]
    fn count_argument_adds_several_failures_at_once() {
        let mut fm = FailManager::new(5, 600, 5);
        assert!(fm
            .add_failure("z", 1.0, &[], TicketData::default(), 3)
            .is_none());
        assert_eq!(fm.retry_count("z"), 3);
        assert!(fm
            .add_failure("z", 2.0, &[], TicketData::default(), 2)
            .is_some());
    }

    #[test]
    fn cleanup_drops_failures_outside_findtime() {
        let mut fm = FailManager::new(3, 600, 5);
        fail(&mut fm, "old", 100.0);
        fail(&mut fm, "new", 500.0);
        fm.cleanup(700.0);
        assert_eq!(fm.retry_count("old"), 0);
        assert_eq!(fm.retry_count("new"), 1);
        // Boundary: last failure exactly now - findtime is dropped.
        fm.cleanup(1100.0);
        assert!(fm.is_empty());
    }

    #[test]
    fn captures_of_the_latest_failure_are_kept() {
        let mut fm = FailManager::new(2, 600, 5);
        let mut d1 = TicketData::default();
        d1.insert("user", "alice");
        let mut d2 = TicketData::default();
        d2.insert("user", "bob");
        fm.add_failure("i", 1.0, &[], d1, 1);
        let ticket = fm.add_failure("i", 2.0, &[], d2, 1).expect("ban");
        assert_eq!(ticket.data.get("user"), Some("bob"));
    }

    #[test]
    fn ban_end_is_last_failure_plus_bantime() {
        let mut bm = BanManager::new(600);
        let mut ticket = Ticket::new("1.2.3.4", 1000.0);
        ticket.first_time = 900.0;
        match bm.add_ban(ticket, 1010.0) {
            BanOutcome::Banned(t) => assert_eq!(t.ban_count, 1),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(bm.next_end(), Some(1600.0));
        assert!(
            bm.unban_due(1600.0, 20).is_empty(),
            "unban only when now > end"
        );
        let gone = bm.unban_due(1600.5, 20);
        assert_eq!(gone.len(), 1);
        assert!(bm.is_empty());
        assert_eq!(bm.total_banned, 1);
    }

    #[test]
    fn expired_ticket_is_ignored() {
        let mut bm = BanManager::new(600);
        assert_eq!(
            bm.add_ban(Ticket::new("1.2.3.4", 100.0), 800.0),
            BanOutcome::Expired
        );
        assert!(bm.is_empty());
        assert_eq!(bm.total_banned, 0);
    }

    #[test]
    fn permanent_bans_never_expire() {
        let mut bm = BanManager::new(PERMANENT);
        assert!(matches!(
            bm.add_ban(Ticket::new("p", 0.0), 1.0e9),
            BanOutcome::Banned(_)
        ));
        assert!(bm.unban_due(1.0e12, 20).is_empty());
        assert_eq!(bm.next_end(), None);
        // Own ban time of the ticket wins over the jail's.
        let mut bm = BanManager::new(600);
        let mut t = Ticket::new("q", 0.0);
        t.ban_time = Some(PERMANENT);
        assert!(matches!(bm.add_ban(t, 1.0e9), BanOutcome::Banned(_)));
        assert!(bm.unban_due(1.0e12, 20).is_empty());
    }

    #[test]
    fn already_banned_is_prolonged_only_when_later() {
        let mut bm = BanManager::new(600);
        bm.add_ban(Ticket::new("a", 100.0), 100.0);
        assert_eq!(
            bm.add_ban(Ticket::new("a", 50.0), 100.0),
            BanOutcome::AlreadyBanned { prolonged: false }
        );
        assert_eq!(
            bm.add_ban(Ticket::new("a", 400.0), 400.0),
            BanOutcome::AlreadyBanned { prolonged: true }
        );
        assert_eq!(bm.next_end(), Some(1000.0));
        assert_eq!(bm.len(), 1);
        assert_eq!(bm.total_banned, 1);
    }

    #[test]
    fn ticket_data_keeps_keys_sorted_and_newest_values() {
        let mut data: TicketData = [("user", "bob"), ("fid", "7"), ("ip", "192.0.2.1")]
            .into_iter()
            .collect();
        data.insert("user", "eve");
        data.extend([("fport", "22")]);
        let keys: Vec<&str> = data.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["fid", "fport", "ip", "user"]);
        assert_eq!(data.get("user"), Some("eve"));
        assert_eq!(data.get("nope"), None);
        assert_eq!(data.len(), 4);
        assert!(TicketData::default().is_empty());
        // Later pairs of one update win; values may hold the packing's own characters.
        let mut odd = TicketData::default();
        odd.extend([("k", "1"), ("a", "x:3:y"), ("k", "2"), ("", "")]);
        odd.extend([("b", "12:"), ("a", "\0\n:")]);
        let pairs: Vec<(&str, &str)> = odd.iter().collect();
        assert_eq!(pairs, [("", ""), ("a", "\0\n:"), ("b", "12:"), ("k", "2")]);
        assert_eq!(odd.get(""), Some(""));
        assert_eq!(
            format!("{odd:?}"),
            r#"{"": "", "a": "\0\n:", "b": "12:", "k": "2"}"#
        );
    }

    #[test]
    fn end_order_is_total_cmp_order() {
        let values = [
            -f64::NAN,
            f64::NEG_INFINITY,
            -1.0e9,
            -0.5,
            -0.0,
            0.0,
            1.0e-300,
            1_700_000_000.25,
            f64::INFINITY,
            f64::NAN,
        ];
        for a in values {
            assert_eq!(end_from_order(end_order(a)).to_bits(), a.to_bits());
            for b in values {
                assert_eq!(end_order(a).cmp(&end_order(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }

    /// The index by end is kept up to date: after any sequence of bans, prolongations, ban
    /// time changes, removals and unbans, the next end and the bans due are what a scan of
    /// the bans gives.
    #[test]
    fn end_index_matches_a_scan_after_any_change() {
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut bm = BanManager::new(600);
        let scan = |bm: &BanManager| {
            bm.tickets()
                .filter_map(|t| bm.ban_end(t))
                .min_by(|a, b| a.total_cmp(b))
        };
        let mut unbanned = 0;
        for step in 0..5_000 {
            let id = format!("10.0.0.{}", next(30));
            // Fractions too: a prolonged ban's time is stretched with a ceil.
            let time = 1_000.0 + next(5_000) as f64 + [0.0, 0.25, 0.5][next(3) as usize];
            match next(8) {
                0..=2 => {
                    let mut ticket = Ticket::new(id.as_str(), time);
                    if next(6) == 0 {
                        ticket.ban_time = Some(PERMANENT);
                    }
                    bm.add_ban(ticket, time);
                }
                3 => {
                    bm.remove(&id);
                }
                4 => {
                    let ban_time = [PERMANENT, 60, 3_600][next(3) as usize];
                    bm.set_ban_time(&id, ban_time, 2);
                }
                5 if next(2) == 0 => bm.set_jail_ban_time([PERMANENT, 300, 600][next(3) as usize]),
                5 => bm.insert_applied(Ticket::new(id.as_str(), time)),
                6 => {
                    let now = 1_000.0 + next(8_000) as f64;
                    let limit = next(4) as usize;
                    // In insertion order; a stable sort keeps it for equal ends.
                    let mut expected: Vec<(f64, String)> = bm
                        .tickets()
                        .filter_map(|t| Some((bm.ban_end(t)?, t.id.to_string())))
                        .filter(|(end, _)| now > *end)
                        .collect();
                    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
                    expected.truncate(limit);
                    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
                    let due: Vec<String> = bm
                        .unban_due(now, limit)
                        .into_iter()
                        .map(|t| t.id.to_string())
                        .collect();
                    assert_eq!(due, expected, "step {step}");
                    unbanned += due.len();
                }
                _ if next(20) == 0 => {
                    bm.remove_all();
                }
                _ => {}
            }
            assert_eq!(bm.next_end(), scan(&bm), "step {step}");
            let rebuilt: BTreeSet<(u64, u64, CompactString)> = bm
                .banned
                .values()
                .filter_map(|b| {
                    Some((
                        end_order(bm.ban_end(&b.ticket)?),
                        b.number,
                        b.ticket.id.clone(),
                    ))
                })
                .collect();
            assert_eq!(bm.by_end, rebuilt, "step {step}");
        }
        assert!(unbanned > 100, "the sequence unbanned {unbanned}");
    }

    #[test]
    fn insertion_order_survives_removal_and_reban() {
        let mut bm = BanManager::new(600);
        for id in ["a", "b", "c", "d"] {
            bm.add_ban(Ticket::new(id, 100.0), 100.0);
        }
        assert_eq!(bm.remove("b").map(|t| t.id), Some("b".into()));
        assert!(bm.remove("b").is_none());
        assert!(!bm.contains("b") && bm.contains("c"));
        bm.add_ban(Ticket::new("b", 200.0), 200.0);
        assert!(bm.set_ban_time("b", 60, 2));
        assert_eq!(bm.get("b").map(|t| t.ban_time), Some(Some(60)));
        let order: Vec<&str> = bm.tickets().map(|t| t.id.as_str()).collect();
        assert_eq!(order, ["a", "c", "d", "b"]);
        // Earliest end first ("b": 200 + 60), equal ends in insertion order.
        let due: Vec<String> = bm
            .unban_due(1.0e9, 2)
            .into_iter()
            .map(|t| t.id.to_string())
            .collect();
        assert_eq!(due, ["b", "a"]);
        let rest: Vec<String> = bm
            .remove_all()
            .into_iter()
            .map(|t| t.id.to_string())
            .collect();
        assert_eq!(rest, ["c", "d"]);
        assert!(bm.is_empty() && bm.get("d").is_none());
    }

    #[test]
    fn bans_keep_their_matches_only_when_asked() {
        let ticket = |id: &str| {
            let mut t = Ticket::new(id, 100.0);
            t.matches = ["line 1", "line 2"].into_iter().collect();
            t
        };
        let mut bm = BanManager::new(600);
        bm.set_keep_matches(false);
        // The caller still gets them, for the ban actions and the database.
        let BanOutcome::Banned(banned) = bm.add_ban(ticket("a"), 100.0) else {
            panic!("not banned");
        };
        assert_eq!(banned.matches.len(), 2);
        assert!(bm.get("a").is_some_and(|t| t.matches.is_empty()));
        bm.insert_applied(ticket("b"));
        assert!(bm.get("b").is_some_and(|t| t.matches.is_empty()));
        assert!(bm.set_matches("a", ["from db"].into_iter().collect()));
        assert!(!bm.set_matches("x", Strs::default()));
        let kept: Vec<&str> = bm
            .get("a")
            .map(|t| t.matches.iter().collect())
            .unwrap_or_default();
        assert_eq!(kept, ["from db"]);

        bm.set_keep_matches(true);
        bm.add_ban(ticket("c"), 100.0);
        assert!(bm.get("c").is_some_and(|t| t.matches.len() == 2));
        // No longer kept: the stored ones go.
        bm.set_keep_matches(false);
        assert!(bm.tickets().all(|t| t.matches.is_empty()));
        assert_eq!(bm.unban_due(1.0e9, 10).len(), 3);
    }

    #[test]
    fn ban_list_is_ordered_by_end() {
        let mut bm = BanManager::new(600);
        bm.add_ban(Ticket::new("late", 300.0), 300.0);
        let mut perm = Ticket::new("perm", 0.0);
        perm.ban_time = Some(PERMANENT);
        bm.add_ban(perm, 300.0);
        bm.add_ban(Ticket::new("early", 100.0), 300.0);
        assert_eq!(bm.ban_list(), vec!["early", "late", "perm"]);
        let insertion: Vec<&str> = bm.tickets().map(|t| t.id.as_str()).collect();
        assert_eq!(insertion, vec!["late", "perm", "early"]);
        let due = bm.unban_due(10_000.0, 1);
        assert_eq!(
            due[0].id, "early",
            "earliest end unbanned first, limit respected"
        );
        assert_eq!(bm.len(), 2);
    }

    #[test]
    fn increment_default_formula_doubles() {
        // Spec 4.5.4: base 2 s gives 2, 4, 8, 16, 32 for previous counts 0..4.
        let inc = BanTimeIncrement::default();
        let got: Vec<i64> = (0..5)
            .map(|c| inc.increased_ban_time(2, c, 0.0).expect("formula"))
            .collect();
        assert_eq!(got, vec![2, 4, 8, 16, 32]);
        // Count capped at 20 in the default formula.
        assert_eq!(
            inc.increased_ban_time(1, 30, 0.0).expect("formula"),
            1 << 20
        );
    }

    #[test]
    fn increment_multipliers_index_by_count() {
        let inc = BanTimeIncrement::from_options(None, None, Some("1 2 4"), None, None, false)
            .expect("options");
        let got: Vec<i64> = (1..5)
            .map(|c| inc.increased_ban_time(100, c, 0.0).expect("mult"))
            .collect();
        assert_eq!(got, vec![200, 400, 400, 400]);
        let factor =
            BanTimeIncrement::from_options(Some("2"), None, Some("1 2 4"), None, None, false)
                .expect("options");
        assert_eq!(factor.increased_ban_time(100, 1, 0.0), Ok(400));
    }

    #[test]
    fn increment_maxtime_and_rndtime() {
        let inc = BanTimeIncrement::from_options(None, None, None, Some(1000), Some(100), false)
            .expect("options");
        assert_eq!(inc.increased_ban_time(600, 1, 0.0), Ok(1000));
        assert_eq!(inc.increased_ban_time(600, 1, 0.5), Ok(1050));
        assert_eq!(inc.increased_ban_time(100, 1, 0.25), Ok(225));
    }

    #[test]
    fn increment_does_not_apply_to_permanent_or_first_bans() {
        let inc = BanTimeIncrement::default();
        assert_eq!(inc.increased_ban_time(PERMANENT, 3, 0.0), Ok(PERMANENT));
        assert_eq!(inc.increased_ban_time(600, 0, 0.0), Ok(600));
    }

    #[test]
    fn increment_custom_formula_and_factor() {
        let inc = BanTimeIncrement::from_options(
            Some("1.5"),
            Some("ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)"),
            None,
            None,
            None,
            false,
        )
        .expect("options");
        // 600 * e^(2*1.5) / e^1.5 = 600 * e^1.5 ≈ 2689.1
        assert_eq!(inc.increased_ban_time(600, 1, 0.0), Ok(2689));
        // A formula smaller than the base keeps the base.
        let small =
            BanTimeIncrement::from_options(None, Some("ban.Time / 2"), None, None, None, false)
                .expect("options");
        assert_eq!(small.increased_ban_time(600, 3, 0.0), Ok(600));
        assert!(
            BanTimeIncrement::from_options(None, Some("ban.Nope"), None, None, None, false)
                .is_err()
        );
        assert!(
            BanTimeIncrement::from_options(None, None, Some("1 x"), None, None, false).is_err()
        );
    }

    #[test]
    fn expressions_cover_python_subset() {
        let names = BTreeMap::new();
        let ev = |s: &str| eval_expression(s, &names);
        assert_eq!(ev("1<<3"), Ok(8.0));
        assert_eq!(ev("2**3**2"), Ok(512.0));
        assert_eq!(ev("-2**2"), Ok(-4.0));
        assert_eq!(ev("7//2 + 7%3"), Ok(4.0));
        assert_eq!(ev("int(7/2)"), Ok(3.0));
        assert_eq!(ev("3 if 1 < 2 < 3 else 4"), Ok(3.0));
        assert_eq!(ev("3 if 2 < 1 else 4"), Ok(4.0));
        assert_eq!(ev("max(1, 5, 2)"), Ok(5.0));
        assert!(ev("1/0").is_err());
        assert!(ev("1 <<").is_err());
        assert!(ev("__import__('os')").is_err());
        assert!(ev("1 << 99").is_err());
        assert!(ev(&format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000))).is_err());
        assert!(ev(&format!("{}1", "-".repeat(100_000))).is_err());
        assert!(ev(&format!("{}1", "not ".repeat(100_000))).is_err());
        assert!(ev(&"2**".repeat(100_000)).is_err());
    }

    #[test]
    fn known_offender_failure_weights() {
        assert_eq!(known_offender_failures(0, 10), 1);
        assert_eq!(known_offender_failures(1, 10), 2);
        assert_eq!(known_offender_failures(2, 10), 3);
        assert_eq!(known_offender_failures(3, 10), 5);
        assert_eq!(known_offender_failures(4, 10), 9);
        assert_eq!(known_offender_failures(5, 10), 10);
        assert_eq!(known_offender_failures(40, 3), 3);
    }
}
