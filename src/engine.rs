//! The running jails: log lines go through the filter, failures through the ignore rules
//! into the failure counter, bans into the actions and the database; expired bans are
//! lifted. The server and the one-shot mode drive it; control commands query and change it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

use crate::actions::{run_ignorecommand, ActionRunner, CommandAction, Level};
use crate::bans::{
    apply_increment, BanManager, BanOutcome, BanTimeIncrement, FailManager, Ticket, TicketData,
};
use crate::config::Command;
use crate::db::{BanRecord, Db, RestorePolicy};
use crate::filter::{Filter, FilterOptions, Mode as FilterMode};
use crate::ignore::IgnoreList;
use crate::jail::{read_stream, GlobalSettings, JailSettings};
use crate::logsource::{Backend, Encoding, Lines, LogFile, Position, StartAt};
use crate::server::log;
use crate::timestr::str2seconds;

/// How the engine is driven.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The daemon: actions run, state persisted, actions stopped at the end.
    Daemon,
    /// One pass for cron: actions run, state persisted, firewall state left in place.
    Once { db: Option<PathBuf> },
    /// One pass that only reports what it would do.
    DryRun,
}

/// Adds a line to the one-shot modes' report. The daemon logs instead: it would keep every
/// line of its lifetime.
fn add_report(report: &mut Vec<String>, mode: &Mode, line: impl FnOnce() -> String) {
    if *mode != Mode::Daemon {
        report.push(line());
    }
}

/// A followed log file of a jail.
struct Source {
    path: String,
    start: StartAt,
    file: Option<LogFile>,
    saved_offset: u64,
}

/// ironban's success exclusion: addresses seen logging in successfully in another log.
struct SuccessWatch {
    filter: Filter,
    source: Source,
    window: f64,
    seen: BTreeMap<String, f64>,
}

/// One running jail.
struct Jail {
    settings: JailSettings,
    filter: Filter,
    sources: Vec<Source>,
    ignore: IgnoreList,
    fails: FailManager,
    bans: BanManager,
    actions: ActionRunner,
    find_time: f64,
    ban_time: i64,
    increment: Option<BanTimeIncrement>,
    /// After the first pass over the files: times are clamped to "now" (spec 4.1.1).
    in_operation: bool,
    success: Option<SuccessWatch>,
}

/// Bytes of a log read and processed at a time when a jail catches up with a backlog.
const READ_SLICE: usize = 256 * 1024;

/// Held-back bans are written once this many have gathered, even before the round ends
/// (they only need to land no later than the read positions past their lines).
const PENDING_BANS_MAX: usize = 64;

pub struct Engine {
    conf: PathBuf,
    mode: Mode,
    jails: Vec<Jail>,
    db: Option<Db>,
    global: GlobalSettings,
    stop_requested: bool,
    report: Vec<String>,
    lines_since_cleanup: usize,
    /// Reused for every read, so reading allocates only while a slice is larger than before.
    read_buffer: Lines,
    /// Bans of the pass at hand, stored with its read positions when it ends.
    pending_bans: Vec<BanRecord>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn seconds(text: &str, what: &str, jail: &str) -> anyhow::Result<f64> {
    str2seconds(text).map_err(|e| anyhow::anyhow!("jail '{jail}': invalid {what} {text:?}: {e}"))
}

fn emit(jail: &str, messages: Vec<(Level, String)>) {
    for (level, text) in messages {
        match level {
            Level::Error | Level::Critical => log::error(&format!("[{jail}] {text}")),
            Level::Debug => {}
        }
    }
}

impl Source {
    fn new(path: &str, start: StartAt) -> Source {
        Source {
            path: path.to_string(),
            start,
            file: None,
            saved_offset: 0,
        }
    }

    /// Open the file if it exists, resuming at a saved position when its first line matches.
    fn ensure_open(&mut self, saved: Option<&Position>, encoding: Encoding) {
        if self.file.is_some() {
            return;
        }
        match LogFile::open(Path::new(&self.path), self.start, saved) {
            Ok(mut file) => {
                file.set_encoding(encoding);
                self.saved_offset = file.position().offset;
                self.file = Some(file);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => log::warn(&format!("cannot open {}: {err}", self.path)),
        }
    }

    /// Reads about `max_bytes` of new lines into `out`; returns whether more may be waiting.
    fn read(&mut self, out: &mut Lines, max_bytes: usize) -> bool {
        let Some(file) = self.file.as_mut() else {
            return false;
        };
        file.read_some_lines(out, max_bytes).unwrap_or_else(|err| {
            log::warn(&format!("cannot read {}: {err}", self.path));
            false
        })
    }
}

impl Engine {
    /// Build every started jail of the stream, restore bans, start actions.
    pub fn start(conf: &Path, stream: &[Command], mode: Mode) -> anyhow::Result<Engine> {
        let settings = read_stream(stream).map_err(|e| anyhow::anyhow!("{e}"))?;
        for error in &settings.config_errors {
            log::warn(error);
        }
        let db = match (&mode, &settings.global.dbfile) {
            (Mode::DryRun, _) => None,
            (Mode::Once { db: Some(path) }, _) => Some(Db::open(path)?),
            (_, Some(file)) if file != ":memory:" => {
                if let Some(dir) = Path::new(file).parent() {
                    std::fs::create_dir_all(dir).ok();
                }
                Some(Db::open(Path::new(file))?)
            }
            _ => None,
        };
        if mode == Mode::Daemon {
            log::set_level(&settings.global.loglevel);
        }
        let mut engine = Engine {
            conf: conf.to_path_buf(),
            mode,
            jails: Vec::new(),
            db,
            global: settings.global.clone(),
            stop_requested: false,
            report: Vec::new(),
            lines_since_cleanup: 0,
            read_buffer: Lines::new(),
            pending_bans: Vec::new(),
        };
        let started = settings.jails.into_iter().filter(|j| j.started).collect();
        engine.jails = build_jails(conf, started)?;
        let now = now();
        for index in 0..engine.jails.len() {
            engine.open_jail(index, now)?;
        }
        Ok(engine)
    }

    /// Database bookkeeping, crash recovery, restored bans and `actionstart` of one jail.
    fn open_jail(&mut self, index: usize, now: f64) -> anyhow::Result<()> {
        let jail = &mut self.jails[index];
        let mut applied: HashSet<String> = HashSet::new();
        let name = jail.settings.name.clone();
        let encoding = Encoding::from_name(&jail.settings.logencoding).unwrap_or(Encoding::Utf8);
        if let Some(db) = &self.db {
            db.add_jail(&name)?;
            for source in &mut jail.sources {
                let saved = db
                    .position(&name, &source.path)?
                    .map(|(hash, offset)| Position {
                        first_line_hash: hash,
                        offset,
                    });
                source.ensure_open(saved.as_ref(), encoding);
            }
            if let Some(success) = &mut jail.success {
                success.source.ensure_open(None, encoding);
            }
            // What an earlier one-shot run left in place: started actions and applied bans.
            // Both modes take it over as it is instead of starting and banning again.
            let families = db.action_families(&name)?;
            for (action, family, has_items) in &families {
                if let Some(a) = jail.actions.actions.iter_mut().find(|a| a.name == *action) {
                    a.restore_family(family, *has_items);
                }
            }
            applied = db.applied_bans(&name)?.into_iter().collect();
            match self.mode {
                Mode::Daemon => {
                    if db.was_running(&name)? && families.is_empty() {
                        log::warn(&format!(
                            "[{name}] previous server did not stop cleanly: stopping its actions first"
                        ));
                        for action in &mut jail.actions.actions {
                            action.stop_every_family();
                        }
                    }
                    db.set_running(&name, true)?;
                }
                Mode::Once { .. } => {
                    for ticket in db.load_failures(&name)? {
                        jail.fails.restore(ticket);
                    }
                }
                Mode::DryRun => {}
            }
        } else {
            for source in &mut jail.sources {
                source.ensure_open(None, encoding);
            }
            if let Some(success) = &mut jail.success {
                success.source.ensure_open(None, encoding);
            }
        }
        if self.mode == Mode::DryRun {
            return Ok(());
        }
        if let Err(errors) = jail.actions.start() {
            for e in errors {
                log::error(&format!("[{name}] actionstart failed: {e}"));
            }
        }
        emit(&name, jail.actions.take_messages());
        let restored = match &self.db {
            Some(db) => db.bans_to_restore(
                &name,
                now as i64,
                &RestorePolicy {
                    jail_ban_time: jail.ban_time,
                    increment: jail.increment.is_some(),
                    max_time: jail.increment.as_ref().and_then(|i| i.max_time),
                },
            )?,
            None => Vec::new(),
        };
        for record in restored {
            let mut ticket = record.to_ticket();
            ticket.restored = true;
            if jail.ignore.check(&ticket.id, now).is_some() {
                continue;
            }
            if let BanOutcome::Banned(ticket) = jail.bans.add_ban(ticket, now) {
                if matches!(self.mode, Mode::Daemon) && !applied.contains(ticket.id.as_str()) {
                    log::info(&format!("[{name}] Restore Ban {}", ticket.id));
                    if let Err(errors) = jail.actions.ban(&ticket) {
                        for e in errors {
                            log::error(&format!("[{name}] restore ban failed: {e}"));
                        }
                    }
                    emit(&name, jail.actions.take_messages());
                }
            }
        }
        if let Some(db) = &mut self.db {
            if !applied.is_empty() {
                for record in db.active_bans(&name, i64::MIN)? {
                    if applied.contains(&record.id) {
                        let mut ticket = record.to_ticket();
                        ticket.restored = true;
                        jail.bans.insert_applied(ticket);
                    }
                }
            }
            if self.mode == Mode::Daemon {
                // From now on the daemon owns this state and undoes it when it stops.
                db.save_applied_bans(&name, &[])?;
                db.save_action_families(&name, &[])?;
            }
        }
        Ok(())
    }

    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// The backend to watch files with: polling only if every jail asks for it.
    pub fn backend(&self) -> Backend {
        let all_polling = !self.jails.is_empty()
            && self
                .jails
                .iter()
                .all(|j| Backend::parse(&j.settings.backend) == Some(Backend::Polling));
        if all_polling {
            Backend::Polling
        } else {
            Backend::Auto
        }
    }

    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for jail in &self.jails {
            let success = jail.success.iter().map(|s| &s.source);
            for source in jail.sources.iter().chain(success) {
                let p = PathBuf::from(&source.path);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        paths
    }

    /// Once the logs are quiet: drop what a burst of lines grew and the next burst grows
    /// again (the filters' regex scratch, the read buffer), and hand the freed heap back.
    pub fn release_idle_memory(&mut self) {
        for jail in &mut self.jails {
            jail.filter.release_caches();
            if let Some(success) = &mut jail.success {
                success.filter.release_caches();
            }
        }
        self.read_buffer = Lines::new();
        release_free_memory();
    }

    /// Read what is new in every file of every jail and act on it; returns the number of
    /// lines read.
    pub fn process_logs(&mut self) -> usize {
        let mut read = 0;
        for index in 0..self.jails.len() {
            read += self.process_jail_logs(index);
        }
        self.store_pending(true);
        read
    }

    fn process_jail_logs(&mut self, index: usize) -> usize {
        let mut read = 0;
        let encoding =
            Encoding::from_name(&self.jails[index].settings.logencoding).unwrap_or(Encoding::Utf8);
        let mut lines = std::mem::take(&mut self.read_buffer);
        // Logs are read and processed a slice at a time, so memory stays bounded; the clock
        // is read again for each slice, as lines written meanwhile are read in the same pass.
        let mut time_now = now();
        // Successes first: a login seen in the same pass must protect its address.
        if let Some(success) = &mut self.jails[index].success {
            success.source.ensure_open(None, encoding);
            loop {
                lines.clear();
                let more = success.source.read(&mut lines, READ_SLICE);
                read += lines.len();
                time_now = now();
                for line in lines.iter() {
                    for failure in success.filter.process_line(line, time_now).failures {
                        if let Some(id) = failure.id {
                            success
                                .seen
                                .insert(id.to_string(), failure.time.unwrap_or(time_now));
                        }
                    }
                }
                if !more {
                    break;
                }
            }
            let window = success.window;
            success.seen.retain(|_, t| *t > time_now - window);
            let ids: Vec<String> = success.seen.keys().cloned().collect();
            for id in ids {
                self.clear_successful(index, &id);
            }
        }
        for source_index in 0..self.jails[index].sources.len() {
            self.jails[index].sources[source_index].ensure_open(None, encoding);
            loop {
                lines.clear();
                let more = self.jails[index].sources[source_index].read(&mut lines, READ_SLICE);
                time_now = now();
                for line in lines.iter() {
                    self.process_line(index, line, time_now);
                }
                self.lines_since_cleanup += lines.len();
                read += lines.len();
                if self.pending_bans.len() >= PENDING_BANS_MAX {
                    self.store_pending(false);
                }
                if !more {
                    break;
                }
            }
        }
        // A rotated file's rest is read whole: do not keep such a buffer for good.
        if lines.capacity() > 2 * READ_SLICE {
            lines = Lines::new();
        }
        lines.clear();
        self.read_buffer = lines;
        self.jails[index].in_operation = true;
        if self.lines_since_cleanup >= 100 {
            self.lines_since_cleanup = 0;
            for jail in &mut self.jails {
                jail.fails.cleanup(time_now);
            }
        }
        read
    }

    /// Writes the bans held back since the last store and, with `with_positions`, every
    /// read position that moved, in one short transaction: bans and positions land together,
    /// once per round over the jails, and the database is not locked while actions run. A
    /// single write needs no transaction; a round that found nothing takes no write lock.
    fn store_pending(&mut self, with_positions: bool) {
        let pending = std::mem::take(&mut self.pending_bans);
        let moved = if with_positions {
            self.moved_positions()
        } else {
            Vec::new()
        };
        let Some(db) = self.db.as_mut() else {
            for (index, source_index, position) in moved {
                self.jails[index].sources[source_index].saved_offset = position.offset;
            }
            return;
        };
        let together = pending.len() + moved.len() > 1;
        if together {
            if let Err(err) = db.begin_pass() {
                log::error(&format!("database: cannot start a transaction: {err}"));
            }
        }
        for record in &pending {
            if let Err(err) = db.add_ban(record) {
                log::error(&format!(
                    "[{}] cannot store ban of {}: {err}",
                    record.jail, record.id
                ));
            }
        }
        let mut written = Vec::with_capacity(moved.len());
        for (index, source_index, position) in moved {
            let jail = &self.jails[index];
            let source = &jail.sources[source_index];
            match db.set_position(
                &jail.settings.name,
                &source.path,
                &position.first_line_hash,
                position.offset,
            ) {
                Ok(()) => written.push((index, source_index, position.offset)),
                Err(err) => log::warn(&format!("cannot store position of {}: {err}", source.path)),
            }
        }
        if together {
            if let Err(err) = db.end_pass() {
                let ids: Vec<&str> = pending.iter().map(|r| r.id.as_str()).collect();
                log::error(&format!(
                    "database: cannot commit the bans of {ids:?} and read positions: {err}"
                ));
                // Rolled back: the positions are written again after the next read.
                written.clear();
            }
        }
        for (index, source_index, offset) in written {
            self.jails[index].sources[source_index].saved_offset = offset;
        }
    }

    /// (jail, source, position) of every open log whose read position differs from the one
    /// last stored.
    fn moved_positions(&self) -> Vec<(usize, usize, Position)> {
        let mut moved = Vec::new();
        for (index, jail) in self.jails.iter().enumerate() {
            for (source_index, source) in jail.sources.iter().enumerate() {
                let Some(file) = &source.file else { continue };
                let position = file.position();
                if position.offset != source.saved_offset {
                    moved.push((index, source_index, position));
                }
            }
        }
        moved
    }

    /// A success for `id`: forget its failures and lift a ban of this jail.
    fn clear_successful(&mut self, index: usize, id: &str) {
        let jail = &mut self.jails[index];
        jail.fails.remove(id);
        if jail.bans.contains(id) {
            let name = jail.settings.name.clone();
            log::info(&format!("[{name}] Unban {id} (successful login)"));
            let verb = if self.mode == Mode::DryRun {
                "would unban"
            } else {
                "unban"
            };
            add_report(&mut self.report, &self.mode, || {
                format!("{verb} {id} in {name} (successful login)")
            });
            self.unban_id(index, id, true);
        }
    }

    fn process_line(&mut self, index: usize, line: &str, now: f64) {
        let jail = &mut self.jails[index];
        let result = jail.filter.process_line(line, now);
        let mut to_ban = Vec::new();
        for failure in result.failures {
            if failure.nofail() {
                continue;
            }
            let Some(id) = &failure.id else { continue };
            let id = id.to_string();
            let mut time = failure.time.unwrap_or(now);
            if jail.in_operation {
                if time > now || (now - time).abs() > 60.0 {
                    time = now;
                }
            } else if time < now - jail.find_time {
                continue;
            }
            if let Some(success) = &jail.success {
                if success.seen.contains_key(&id) {
                    continue;
                }
            }
            if let Some(source) = jail.ignore.check(&id, now) {
                log::info(&format!(
                    "[{}] Ignore {id} by {}",
                    jail.settings.name,
                    source.describe()
                ));
                continue;
            }
            let data: TicketData = failure
                .data
                .groups
                .iter()
                .filter_map(|(key, value)| Some((key.as_ref(), value.as_deref()?)))
                .collect();
            let matches = failure.matches();
            if !jail.settings.ignorecommand.is_empty() {
                let mut probe = Ticket::new(id.clone(), time);
                probe.data = data.clone();
                probe.matches = matches.iter().map(String::as_str).collect();
                let values = jail.actions.tag_values(&probe);
                match run_ignorecommand(&jail.settings.ignorecommand, &values) {
                    Ok(true) => {
                        log::info(&format!("[{}] Ignore {id} by command", jail.settings.name));
                        continue;
                    }
                    Ok(false) => {}
                    Err(err) => {
                        log::error(&format!("[{}] ignorecommand: {err}", jail.settings.name))
                    }
                }
            }
            log::info(&format!("[{}] Found {id}", jail.settings.name));
            if let Some(ticket) = jail.fails.add_failure(&id, time, &matches, data, 1) {
                to_ban.push(ticket);
            }
        }
        for ticket in to_ban {
            self.ban(index, ticket, now);
        }
    }

    /// Ban a ticket in jail `index`: increment, ban list, actions, database.
    fn ban(&mut self, index: usize, mut ticket: Ticket, now: f64) {
        if self.jails[index].increment.is_some() && !self.pending_bans.is_empty() {
            // The ban history must include this pass's bans.
            self.store_pending(false);
        }
        let jail = &mut self.jails[index];
        let name = jail.settings.name.clone();
        if let (Some(increment), Some(db)) = (&jail.increment, &self.db) {
            let previous = db
                .ban_count(
                    &ticket.id,
                    (!increment.overall_jails).then_some(name.as_str()),
                )
                .ok()
                .flatten()
                .map(|h| h.ban_count);
            let base = ticket.ban_time.unwrap_or(jail.ban_time);
            match apply_increment(increment, previous, base, random01()) {
                Ok((ban_time, count)) => {
                    if previous.is_some() {
                        ticket.ban_time = Some(ban_time);
                        ticket.ban_count = count.saturating_sub(1);
                    }
                }
                Err(err) => log::error(&format!("[{name}] bantime increment: {err}")),
            }
        }
        match jail.bans.add_ban(ticket, now) {
            BanOutcome::Banned(ticket) => {
                let end = jail.bans.ban_end(&ticket);
                let verb = if self.mode == Mode::DryRun {
                    "would ban"
                } else {
                    "ban"
                };
                add_report(&mut self.report, &self.mode, || {
                    format!(
                        "{verb} {} in {name} ({} failures{})",
                        ticket.id,
                        ticket.failures,
                        match end {
                            Some(end) => format!(", until {}", format_time(end)),
                            None => ", permanently".to_string(),
                        }
                    )
                });
                log::info(&format!("[{name}] Ban {}", ticket.id));
                if self.mode == Mode::DryRun {
                    return;
                }
                if let Err(errors) = jail.actions.ban(&ticket) {
                    for e in errors {
                        log::error(&format!("[{name}] ban of {} failed: {e}", ticket.id));
                    }
                }
                emit(&name, jail.actions.take_messages());
                if self.db.is_some() {
                    // Stored with the pass's read positions when the pass ends.
                    let ban_time = ticket.ban_time.unwrap_or(jail.ban_time);
                    self.pending_bans.push(BanRecord::from_ticket(
                        &name,
                        &ticket,
                        ban_time,
                        usize::try_from(self.global.dbmaxmatches).unwrap_or(0),
                    ));
                }
            }
            BanOutcome::Expired => {
                log::info(&format!("[{name}] Ignore expired bantime"));
            }
            BanOutcome::AlreadyBanned { .. } => {
                log::info(&format!("[{name}] already banned"));
            }
        }
    }

    /// Lift every ban whose time is over.
    pub fn unban_expired(&mut self) {
        let now = now();
        for index in 0..self.jails.len() {
            let due = self.jails[index].bans.unban_due(now, usize::MAX);
            for ticket in due {
                let name = self.jails[index].settings.name.clone();
                let verb = if self.mode == Mode::DryRun {
                    "would unban"
                } else {
                    "unban"
                };
                add_report(&mut self.report, &self.mode, || {
                    format!("{verb} {} in {name}", ticket.id)
                });
                log::info(&format!("[{name}] Unban {}", ticket.id));
                if self.mode == Mode::DryRun {
                    continue;
                }
                let jail = &mut self.jails[index];
                if let Err(errors) = jail.actions.unban(&ticket) {
                    for e in errors {
                        log::error(&format!("[{name}] unban of {} failed: {e}", ticket.id));
                    }
                }
                emit(&name, jail.actions.take_messages());
            }
        }
    }

    /// Seconds until the earliest ban end, if any ban can end.
    pub fn seconds_to_next_unban(&self) -> Option<f64> {
        let now = now();
        self.jails
            .iter()
            .filter_map(|j| j.bans.next_end())
            .map(|end| end - now)
            .reduce(f64::min)
    }

    /// Unban `id` in jail `index` now (manual or success): actions and database rows.
    fn unban_id(&mut self, index: usize, id: &str, delete_from_db: bool) -> bool {
        let jail = &mut self.jails[index];
        let name = jail.settings.name.clone();
        if delete_from_db {
            if let Some(db) = &mut self.db {
                if let Err(err) = db.remove_ban(Some(&name), id) {
                    log::error(&format!("[{name}] cannot delete ban of {id}: {err}"));
                }
            }
        }
        let Some(ticket) = jail.bans.remove(id) else {
            return false;
        };
        if self.mode != Mode::DryRun {
            if let Err(errors) = jail.actions.unban(&ticket) {
                for e in errors {
                    log::error(&format!("[{name}] unban of {id} failed: {e}"));
                }
            }
            emit(&name, jail.actions.take_messages());
        }
        true
    }

    /// Manual ban (no ignore check, as fail2ban's `banip`). Returns whether newly banned.
    fn ban_manual(&mut self, index: usize, id: &str) -> bool {
        let now = now();
        let before = self.jails[index].bans.total_banned;
        let mut ticket = Ticket::new(id, now);
        ticket.failures = 0;
        self.ban(index, ticket, now);
        self.store_pending(false);
        self.jails[index].bans.total_banned > before
    }

    /// Clean shutdown: actions stopped (bans flushed from the firewall, kept in the database).
    pub fn stop(&mut self) {
        self.store_pending(true);
        for index in 0..self.jails.len() {
            let jail = &mut self.jails[index];
            let name = jail.settings.name.clone();
            if self.mode == Mode::Daemon {
                let tickets = jail.bans.remove_all();
                for t in &tickets {
                    log::info(&format!("[{name}] Repeal Ban {}", t.id));
                }
                if let Err(errors) = jail.actions.stop(&tickets) {
                    for e in errors {
                        log::error(&format!("[{name}] actionstop failed: {e}"));
                    }
                }
                emit(&name, jail.actions.take_messages());
                if let Some(db) = &self.db {
                    if let Err(err) = db.set_running(&name, false) {
                        log::error(&format!("[{name}] cannot record clean stop: {err}"));
                    }
                }
            }
        }
    }

    /// One-shot mode: persist action state and pending failures for the next run.
    pub fn finish_once(&mut self) {
        let now = now();
        let Some(db) = &mut self.db else { return };
        if !matches!(self.mode, Mode::Once { .. }) {
            return;
        }
        for jail in &mut self.jails {
            let name = &jail.settings.name;
            jail.fails.cleanup(now);
            let mut states = Vec::new();
            for action in &jail.actions.actions {
                for (family, has_items) in action.family_states() {
                    states.push((action.name.clone(), family, has_items));
                }
            }
            if let Err(err) = db.save_action_families(name, &states) {
                log::error(&format!("[{name}] cannot store action state: {err}"));
            }
            if let Err(err) = db.save_applied_bans(name, &jail.bans.ban_list()) {
                log::error(&format!("[{name}] cannot store applied bans: {err}"));
            }
            if let Err(err) = db.save_failures(name, &jail.fails.tickets()) {
                log::error(&format!("[{name}] cannot store failures: {err}"));
            }
        }
    }

    /// What the one-shot mode did (or would do), one line each.
    pub fn report_lines(&self) -> Vec<String> {
        self.report.clone()
    }

    fn jail_index(&self, name: &str) -> Result<usize, String> {
        self.jails
            .iter()
            .position(|j| j.settings.name == name)
            .ok_or_else(|| format!("Sorry but the jail '{name}' does not exist"))
    }

    /// Apply a new command stream (reload): jails kept keep their bans and counters.
    pub fn reload(&mut self, stream: &[Command], _options: &[String]) -> Result<(), String> {
        let settings = read_stream(stream)?;
        let started = settings.jails.into_iter().filter(|j| j.started).collect();
        let fresh = build_jails(&self.conf, started).map_err(|e| e.to_string())?;
        // Everything parsed and compiled: now swap, carrying state of kept jails over.
        let now = now();
        let mut old = std::mem::take(&mut self.jails);
        for mut jail in fresh {
            if let Some(pos) = old
                .iter()
                .position(|o| o.settings.name == jail.settings.name)
            {
                let previous = old.remove(pos);
                // Counters and pending failures carry over; the limits are the new ones.
                let (max_retry, find_time, max_matches) = (
                    jail.fails.max_retry,
                    jail.fails.find_time,
                    jail.fails.max_matches,
                );
                jail.fails = previous.fails;
                jail.fails.max_retry = max_retry;
                jail.fails.find_time = find_time;
                jail.fails.max_matches = max_matches;
                jail.bans = previous.bans;
                jail.bans.set_jail_ban_time(jail.ban_time);
                jail.in_operation = previous.in_operation;
                for source in &mut jail.sources {
                    if let Some(prev) = previous.sources.iter().find(|s| s.path == source.path) {
                        source.saved_offset = prev.saved_offset;
                        source.file = prev.file.as_ref().and_then(|f| {
                            LogFile::open(
                                Path::new(&source.path),
                                StartAt::Head,
                                Some(&f.position()),
                            )
                            .ok()
                        });
                    }
                }
                // Actions keep their started state when their definition did not change.
                let mut previous_actions = previous.actions;
                for action in &mut jail.actions.actions {
                    if let Some(prev) = previous_actions
                        .actions
                        .iter()
                        .position(|a| a.name == action.name)
                    {
                        let prev = previous_actions.actions.remove(prev);
                        for (family, has_items) in prev.family_states() {
                            action.restore_family(&family, has_items);
                        }
                    }
                }
                let tickets: Vec<Ticket> = jail.bans.tickets().cloned().collect();
                if !previous_actions.actions.is_empty() {
                    let _ = previous_actions.stop(&tickets);
                }
                // After the removed actions unbanned with the matches they may read.
                self.keep_matches_for(&mut jail, now);
                self.jails.push(jail);
            } else {
                self.jails.push(jail);
                let index = self.jails.len() - 1;
                self.open_jail(index, now).map_err(|e| e.to_string())?;
            }
        }
        for mut gone in old {
            let tickets = gone.bans.remove_all();
            let _ = gone.actions.stop(&tickets);
            if let Some(db) = &self.db {
                let _ = db.set_running(&gone.settings.name, false);
            }
        }
        Ok(())
    }

    /// A kept jail's bans keep their matched lines when its new actions read them; those
    /// dropped under the old actions come back from the database (as many as it stored).
    fn keep_matches_for(&mut self, jail: &mut Jail, now: f64) {
        let keep = jail.actions.uses_matches();
        let refill = keep && !jail.bans.keeps_matches();
        jail.bans.set_keep_matches(keep);
        if !refill {
            return;
        }
        self.store_pending(false);
        let Some(db) = &self.db else { return };
        match db.active_bans(&jail.settings.name, now as i64) {
            Ok(records) => {
                for record in records {
                    let matches = record.matches().iter().map(String::as_str).collect();
                    jail.bans.set_matches(&record.id, matches);
                }
            }
            Err(err) => log::error(&format!(
                "[{}] cannot read the matches of its bans: {err}",
                jail.settings.name
            )),
        }
    }

    /// A control command (fail2ban-client words). Values are fail2ban's return values as JSON.
    pub fn command(&mut self, words: &[String]) -> Result<Json, String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["ping", ..] => Ok(json!("pong")),
            ["version"] => Ok(json!(env!("CARGO_PKG_VERSION"))),
            ["stop"] => {
                self.stop_requested = true;
                Ok(Json::Null)
            }
            ["status"] => {
                let mut names: Vec<&str> = self
                    .jails
                    .iter()
                    .map(|j| j.settings.name.as_str())
                    .collect();
                names.sort_unstable();
                Ok(json!([
                    ["Number of jail", names.len()],
                    ["Jail list", names.join(", ")]
                ]))
            }
            ["status", name, rest @ ..] => {
                let index = self.jail_index(name)?;
                let short = rest.first() == Some(&"short");
                Ok(self.jail_status(index, short))
            }
            ["banned"] => Ok(Json::Array(
                self.jails
                    .iter()
                    .map(|j| json!({ j.settings.name.clone(): j.bans.ban_list() }))
                    .collect(),
            )),
            ["banned", ids @ ..] => Ok(Json::Array(
                ids.iter()
                    .map(|id| {
                        json!(self
                            .jails
                            .iter()
                            .filter(|j| j.bans.contains(id))
                            .map(|j| j.settings.name.clone())
                            .collect::<Vec<_>>())
                    })
                    .collect(),
            )),
            ["unban", "--all"] => {
                let mut count = 0;
                for index in 0..self.jails.len() {
                    let ids = self.jails[index].bans.ban_list();
                    for id in ids {
                        count += usize::from(self.unban_id(index, &id, true));
                    }
                    let name = self.jails[index].settings.name.clone();
                    if let Some(db) = &mut self.db {
                        let _ = db.remove_jail_bans(Some(&name));
                    }
                }
                Ok(json!(count))
            }
            ["unban", ids @ ..] => {
                let mut count = 0;
                for id in ids {
                    for index in 0..self.jails.len() {
                        count += usize::from(self.unban_id(index, id, true));
                    }
                }
                Ok(json!(count))
            }
            ["set", name, "banip", ids @ ..] => {
                let index = self.jail_index(name)?;
                let mut count = 0;
                for id in ids {
                    count += usize::from(self.ban_manual(index, id));
                }
                Ok(json!(count))
            }
            ["set", name, "unbanip", ids @ ..] => {
                let index = self.jail_index(name)?;
                let report_absent = ids.first() == Some(&"--report-absent");
                let ids: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|i| *i != "--report-absent")
                    .collect();
                let mut count = 0;
                let mut absent = Vec::new();
                for id in ids {
                    if self.unban_id(index, id, true) {
                        count += 1;
                    } else {
                        absent.push(id.to_string());
                    }
                }
                if report_absent && !absent.is_empty() {
                    return Err(format!("not banned: {absent:?}"));
                }
                Ok(json!(count))
            }
            ["set", name, "addignoreip", ids @ ..] => {
                let index = self.jail_index(name)?;
                for id in ids {
                    self.jails[index].ignore.add(id);
                }
                Ok(json!(self.jails[index].ignore.entries()))
            }
            ["set", name, "delignoreip", ids @ ..] => {
                let index = self.jail_index(name)?;
                for id in ids {
                    self.jails[index].ignore.remove(id);
                }
                Ok(json!(self.jails[index].ignore.entries()))
            }
            ["get", name, what, rest @ ..] => {
                let index = self.jail_index(name)?;
                self.get(index, what, rest)
            }
            _ => Err("Invalid command".to_string()),
        }
    }

    fn get(&self, index: usize, what: &str, rest: &[&str]) -> Result<Json, String> {
        let jail = &self.jails[index];
        Ok(match what {
            "bantime" => json!(jail.ban_time),
            // fail2ban keeps whole findtimes as ints (`600`, not `600.0`).
            "findtime" if jail.find_time.fract() == 0.0 => json!(jail.find_time as i64),
            "findtime" => json!(jail.find_time),
            "maxretry" => json!(jail.settings.maxretry),
            "maxmatches" => json!(jail.settings.maxmatches),
            "ignoreip" => json!(jail.ignore.entries()),
            "ignoreself" => json!(jail.ignore.ignore_self),
            "ignorecommand" => json!(jail.settings.ignorecommand),
            "logpath" => json!(jail
                .sources
                .iter()
                .map(|s| s.path.clone())
                .collect::<Vec<_>>()),
            "logencoding" => json!(jail.settings.logencoding),
            "failregex" => json!(jail
                .filter
                .matcher
                .failregex
                .iter()
                .map(|r| r.resolved.clone())
                .collect::<Vec<_>>()),
            "ignoreregex" => json!(jail
                .filter
                .matcher
                .ignoreregex
                .iter()
                .map(|r| r.resolved.clone())
                .collect::<Vec<_>>()),
            "actions" => json!(jail
                .actions
                .actions
                .iter()
                .map(|a| a.name.clone())
                .collect::<Vec<_>>()),
            "banned" if rest.is_empty() => json!(jail.bans.ban_list()),
            "banned" => json!(rest
                .iter()
                .map(|id| u8::from(jail.bans.contains(id)))
                .collect::<Vec<_>>()),
            "banip" => {
                let mut tickets: Vec<&Ticket> = jail.bans.tickets().collect();
                tickets.sort_by(|a, b| {
                    let ea = jail.bans.ban_end(a).unwrap_or(f64::MAX);
                    let eb = jail.bans.ban_end(b).unwrap_or(f64::MAX);
                    ea.total_cmp(&eb)
                });
                if rest.first() == Some(&"--with-time") {
                    json!(tickets
                        .iter()
                        .map(|t| {
                            let bt = t.ban_time.unwrap_or(jail.ban_time);
                            let end = jail
                                .bans
                                .ban_end(t)
                                .map(format_time)
                                .unwrap_or_else(|| "9999-12-31 23:59:59".into());
                            format!("{} \t{} + {} = {}", t.id, format_time(t.time), bt, end)
                        })
                        .collect::<Vec<_>>())
                } else {
                    json!(tickets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>())
                }
            }
            other => {
                return Err(format!(
                    "Invalid command (no get action or not yet implemented): {other}"
                ))
            }
        })
    }

    fn jail_status(&self, index: usize, short: bool) -> Json {
        let jail = &self.jails[index];
        let files: Vec<String> = jail.sources.iter().map(|s| s.path.clone()).collect();
        let mut actions = vec![
            json!(["Currently banned", jail.bans.len()]),
            json!(["Total banned", jail.bans.total_banned]),
        ];
        if !short {
            actions.push(json!(["Banned IP list", jail.bans.ban_list()]));
        }
        json!([
            [
                "Filter",
                [
                    ["Currently failed", jail.fails.len()],
                    ["Total failed", jail.fails.total_failed],
                    ["File list", files]
                ]
            ],
            ["Actions", actions]
        ])
    }

    /// Per-jail report for `status JAIL --json` consumers and the `report` of scenario 4.
    pub fn jail_names(&self) -> Vec<String> {
        self.jails.iter().map(|j| j.settings.name.clone()).collect()
    }
}

fn format_time(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// A number in [0, 1) for `bantime.rndtime`; not cryptographic, only spreading unban times.
fn random01() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now().to_bits());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Builds the jails in order, on every core: compiling their filters and date templates
/// is most of start-up and each jail's is independent. The first error in jail order is
/// the one returned.
fn build_jails(conf: &Path, wanted: Vec<JailSettings>) -> anyhow::Result<Vec<Jail>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let count = wanted.len();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if workers < 2 || count < 2 {
        let jails = wanted.into_iter().map(|s| build_jail(conf, s)).collect();
        release_load_memory();
        return jails;
    }
    let todo: Vec<Mutex<Option<JailSettings>>> =
        wanted.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let built: Vec<Mutex<Option<anyhow::Result<Jail>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = todo.get(index) else { break };
        let settings = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(settings) = settings {
            let jail = build_jail(conf, settings);
            *built[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(jail);
        }
    };
    std::thread::scope(|scope| {
        // This thread works too: should the system refuse a thread, the jails still get
        // built, by fewer threads.
        for _ in 1..workers.min(count) {
            if std::thread::Builder::new()
                .spawn_scoped(scope, work)
                .is_err()
            {
                break;
            }
        }
        work();
    });
    release_load_memory();
    built
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(anyhow::anyhow!("a jail was not built")))
        })
        .collect()
}

/// After a configuration is read and its jails built: the option-syntax and date-pattern
/// regexes go until the next read, and the building's garbage goes back to the system.
fn release_load_memory() {
    crate::config::tags::release_regexes();
    crate::date::release_regexes();
    release_free_memory();
}

/// Hands back to the system what glibc keeps resident after frees: the building threads'
/// compilation garbage in their own arenas, a burst's buffers.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Build a jail from its settings: compile the filter, parse times, create the actions.
fn build_jail(conf: &Path, settings: JailSettings) -> anyhow::Result<Jail> {
    let name = settings.name.clone();
    let options = FilterOptions::from_stream(&settings.filter_commands);
    let filter = Filter::new(&options, FilterMode::server())
        .map_err(|e| anyhow::anyhow!("jail '{name}': {e}"))?;
    let find_time = seconds(&settings.findtime, "findtime", &name)?;
    let ban_time = seconds(&settings.bantime, "bantime", &name)? as i64;
    let increment_on = settings
        .bantime_option("increment")
        .is_some_and(|v| matches!(v.to_lowercase().as_str(), "true" | "1" | "yes" | "on"));
    let increment = if increment_on {
        let time_opt = |key: &str| -> anyhow::Result<Option<i64>> {
            settings
                .bantime_option(key)
                .filter(|v| !v.trim().is_empty())
                .map(|v| seconds(v, &format!("bantime.{key}"), &name).map(|s| s as i64))
                .transpose()
        };
        Some(
            BanTimeIncrement::from_options(
                settings.bantime_option("factor"),
                settings.bantime_option("formula"),
                settings.bantime_option("multipliers"),
                time_opt("maxtime")?,
                time_opt("rndtime")?,
                settings.bantime_option("overalljails").is_some_and(|v| {
                    matches!(v.to_lowercase().as_str(), "true" | "1" | "yes" | "on")
                }),
            )
            .map_err(|e| anyhow::anyhow!("jail '{name}': {e}"))?,
        )
    } else {
        None
    };
    let mut ignore = IgnoreList::default();
    ignore.ignore_self = settings.ignoreself;
    for entry in &settings.ignoreip {
        ignore.add(entry);
    }
    let actions: Vec<CommandAction> = settings
        .actions
        .iter()
        .map(|a| CommandAction::new(&a.name, a.props.iter().cloned()))
        .collect();
    let sources = settings
        .logpaths
        .iter()
        .map(|lp| {
            Source::new(
                &lp.path,
                if lp.tail {
                    StartAt::Tail
                } else {
                    StartAt::Head
                },
            )
        })
        .collect();
    let success = success_watch(conf, &settings)?;
    let actions = ActionRunner::new(&name, ban_time, actions);
    let mut bans = BanManager::new(ban_time);
    bans.set_keep_matches(actions.uses_matches());
    Ok(Jail {
        filter,
        sources,
        ignore,
        fails: FailManager::new(
            u32::try_from(settings.maxretry.max(1)).unwrap_or(u32::MAX),
            find_time as i64,
            usize::try_from(settings.maxmatches.max(0)).unwrap_or(0),
        ),
        bans,
        actions,
        find_time,
        ban_time,
        increment,
        in_operation: false,
        success,
        settings,
    })
}

/// ironban's `successfilter`/`successlogpath`/`successtime` jail options.
fn success_watch(conf: &Path, settings: &JailSettings) -> anyhow::Result<Option<SuccessWatch>> {
    let get = |key: &str| {
        settings
            .extra
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
    };
    let (Some(filter_name), Some(logpath)) = (get("successfilter"), get("successlogpath")) else {
        return Ok(None);
    };
    let name = &settings.name;
    let stream = crate::config::filter_stream(conf, &filter_name, name, &[])
        .map_err(|e| anyhow::anyhow!("jail '{name}': successfilter {filter_name}: {e}"))?;
    let options = FilterOptions::from_stream(&stream);
    let filter = Filter::new(&options, FilterMode::server())
        .map_err(|e| anyhow::anyhow!("jail '{name}': successfilter {filter_name}: {e}"))?;
    let window = match get("successtime") {
        Some(t) => seconds(&t, "successtime", name)?,
        None => 30.0 * 86400.0,
    };
    Ok(Some(SuccessWatch {
        filter,
        source: Source::new(&logpath, StartAt::Head),
        window,
        seen: BTreeMap::new(),
    }))
}
