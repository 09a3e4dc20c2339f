//! Persistence: bans and log positions in SQLite, using fail2ban's own schema (version 4,
//! spec 4.6) so that a `fail2ban.sqlite3` can be read; import of fail2ban's database and the
//! `ironban import-db PATH` command.
//!
//! Public API:
//! - [`Db::open(path)`]: creates/opens the database (WAL journal, foreign keys on).
//! - jails: `add_jail`, `disable_jail`.
//! - bans: `add_ban(&BanRecord)` (history row in `bans` + latest row in `bips`),
//!   `remove_ban(jail or all, id)`, `remove_jail_bans`, `active_bans(jail, now)`,
//!   `bans_to_restore(jail, now, &RestorePolicy)` (spec 4.7), `ban_count(id, jail or all)`
//!   for `bantime.increment`, `purge(now, purge_age)`.
//! - log positions: `set_position(jail, path, first_line_hash, pos)`, `position(jail, path)`;
//!   [`first_line_hash`] gives the SHA-1 hex of a first line as fail2ban stores it.
//! - [`BanRecord`]: one ban row; `from_ticket` / `to_ticket` convert to [`Ticket`].
//! - [`import_fail2ban_db(src, dst)`]: copies jails, bans, bips and logs of a fail2ban DB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Map};

use crate::bans::Ticket;

/// fail2ban database schema version written and understood.
pub const SCHEMA_VERSION: i64 = 4;
/// fail2ban's default `dbfile`.
pub const DEFAULT_DBFILE: &str = "/var/lib/fail2ban/fail2ban.sqlite3";
/// fail2ban's default `dbmaxmatches`.
pub const DEFAULT_DB_MAX_MATCHES: usize = 10;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fail2banDb(version INTEGER);
CREATE TABLE IF NOT EXISTS jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS jails_name ON jails(name);
CREATE TABLE IF NOT EXISTS logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0, FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, UNIQUE(jail, path),UNIQUE(jail, path, firstlinemd5));
CREATE INDEX IF NOT EXISTS logs_path ON logs(path);
CREATE INDEX IF NOT EXISTS logs_jail_path ON logs(jail, path);
CREATE TABLE IF NOT EXISTS bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, FOREIGN KEY(jail) REFERENCES jails(name) );
CREATE INDEX IF NOT EXISTS bans_jail_timeofban_ip ON bans(jail, timeofban);
CREATE INDEX IF NOT EXISTS bans_jail_ip ON bans(jail, ip);
CREATE INDEX IF NOT EXISTS bans_ip ON bans(ip);
CREATE TABLE IF NOT EXISTS bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail), FOREIGN KEY(jail) REFERENCES jails(name) );
CREATE INDEX IF NOT EXISTS bips_timeofban ON bips(timeofban);
CREATE INDEX IF NOT EXISTS bips_ip ON bips(ip);
";

/// One ban as stored in `bans`/`bips`.
#[derive(Debug, Clone, PartialEq)]
pub struct BanRecord {
    pub jail: String,
    /// Failure id (`ip` column).
    pub id: String,
    /// Ticket time rounded to whole seconds.
    pub time_of_ban: i64,
    /// Ban time after increment; `-1` permanent, `-2` unknown (pre-v3 databases).
    pub ban_time: i64,
    pub ban_count: u32,
    /// Ticket data: `matches`, `failures` and filter captures.
    pub data: serde_json::Value,
}

/// Python 3 `round()` to an integer (half to even).
fn round_time(time: f64) -> i64 {
    crate::bans::round_half_even(time) as i64
}

impl BanRecord {
    /// Record of a ban of `ticket` in `jail` with the given final ban time; at most
    /// `max_matches` matches are kept (0 drops them), as fail2ban's `addBan`.
    pub fn from_ticket(jail: &str, ticket: &Ticket, ban_time: i64, max_matches: usize) -> Self {
        let mut data = Map::new();
        if max_matches > 0 {
            let skip = ticket.matches.len().saturating_sub(max_matches);
            let matches: Vec<serde_json::Value> =
                ticket.matches.iter().skip(skip).map(|m| json!(m)).collect();
            data.insert("matches".to_string(), json!(matches));
        }
        data.insert("failures".to_string(), json!(ticket.failures));
        for (key, value) in &ticket.data {
            data.insert(key.to_string(), json!(value));
        }
        BanRecord {
            jail: jail.to_string(),
            id: ticket.id.to_string(),
            time_of_ban: round_time(ticket.time),
            ban_time,
            ban_count: ticket.ban_count.max(1),
            data: serde_json::Value::Object(data),
        }
    }

    /// Matches of the data; a list element (fail2ban's `[before, date, after]`) is joined.
    pub fn matches(&self) -> Vec<String> {
        let Some(list) = self.data.get("matches").and_then(|m| m.as_array()) else {
            return Vec::new();
        };
        list.iter()
            .map(|m| match m {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(parts) => parts
                    .iter()
                    .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                    .collect::<String>(),
                other => other.to_string(),
            })
            .collect()
    }

    /// A restored ticket (spec 4.7): time = timeofban, ban time as stored (apply
    /// [`Db::bans_to_restore`]'s corrections first), bancount = stored count + 1.
    pub fn to_ticket(&self) -> Ticket {
        let mut ticket = Ticket::new(self.id.clone(), self.time_of_ban as f64);
        ticket.matches = self.matches().iter().map(String::as_str).collect();
        ticket.failures = self
            .data
            .get("failures")
            .and_then(|f| f.as_u64())
            .and_then(|f| u32::try_from(f).ok())
            .unwrap_or(0);
        ticket.retry = ticket.failures;
        if let Some(map) = self.data.as_object() {
            let captures: Vec<(&str, String)> = map
                .iter()
                .filter(|(key, _)| *key != "matches" && *key != "failures")
                .map(|(key, value)| {
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string);
                    (key.as_str(), text)
                })
                .collect();
            ticket.data = captures.iter().map(|(k, v)| (*k, v.as_str())).collect();
        }
        ticket.ban_time = Some(self.ban_time);
        ticket.ban_count = self.ban_count.saturating_add(1);
        ticket.restored = true;
        ticket
    }
}

/// Previous bans of an id (fail2ban's `getBan`), for `bantime.increment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanHistory {
    pub ban_count: u32,
    pub last_time_of_ban: i64,
    pub ban_time: i64,
}

/// Which stored bans a starting jail restores (spec 4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePolicy {
    /// Current jail `bantime` (`-1` permanent).
    pub jail_ban_time: i64,
    /// `bantime.increment` active.
    pub increment: bool,
    /// `bantime.maxtime`, used as the clamp when incrementing.
    pub max_time: Option<i64>,
}

/// SHA-1 hex digest of a file's first line including its newline, as fail2ban stores it in
/// `logs.firstlinemd5`; `''` when the line is incomplete or empty.
pub fn first_line_hash(first_line: &[u8]) -> String {
    if first_line.is_empty() || !first_line.ends_with(b"\n") {
        return String::new();
    }
    crate::logsource::sha1_hex(first_line)
}

const BANS_INSERT: &str =
    "INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES(?, ?, ?, ?, ?, ?)";
const BIPS_UPSERT: &str = "INSERT OR REPLACE INTO bips(jail, ip, timeofban, bantime, bancount, data) VALUES(?, ?, ?, ?, ?, ?)";

/// One ban row into `bans` or `bips`, `data` stored as a UTF-8 JSON blob like fail2ban.
fn insert_record(conn: &Connection, sql: &str, record: &BanRecord) -> anyhow::Result<()> {
    insert_record_with(conn, sql, record, &serde_json::to_vec(&record.data)?)
}

/// [`insert_record`] with the record's data already serialised (`bans` and `bips` rows of
/// one ban share it).
fn insert_record_with(
    conn: &Connection,
    sql: &str,
    record: &BanRecord,
    data: &[u8],
) -> anyhow::Result<()> {
    conn.prepare_cached(sql)?.execute(params![
        record.jail,
        record.id,
        record.time_of_ban,
        record.ban_time,
        record.ban_count,
        Value::Blob(data.to_vec())
    ])?;
    Ok(())
}

/// fail2ban stores `data` as a UTF-8 JSON blob; accept text too.
fn json_from_sql(value: ValueRef<'_>) -> serde_json::Value {
    let text = match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        _ => return serde_json::Value::Object(Map::new()),
    };
    serde_json::from_str(&text).unwrap_or_else(|_| serde_json::Value::Object(Map::new()))
}

/// Integer column that fail2ban may have written as REAL (a `rndtime` ban time is a float)
/// or text; anything unreadable counts as `default`.
fn lenient_i64(value: ValueRef<'_>, default: i64) -> i64 {
    match value {
        ValueRef::Integer(i) => i,
        ValueRef::Real(f) if f.is_finite() => f as i64,
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .map_or(default, |f| f as i64),
        _ => default,
    }
}

fn lenient_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => String::new(),
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<BanRecord> {
    Ok(BanRecord {
        jail: lenient_text(row.get_ref(0)?),
        id: lenient_text(row.get_ref(1)?),
        time_of_ban: lenient_i64(row.get_ref(2)?, 0),
        ban_time: lenient_i64(row.get_ref(3)?, -2),
        ban_count: u32::try_from(lenient_i64(row.get_ref(4)?, 1).max(0)).unwrap_or(u32::MAX),
        data: json_from_sql(row.get_ref(5)?),
    })
}

/// An open ironban (= fail2ban schema) database.
pub struct Db {
    conn: Connection,
    pub path: PathBuf,
}

impl Db {
    /// Opens or creates the database at `path` (`:memory:` allowed): WAL journal, foreign
    /// keys on, schema created if missing.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // WAL + NORMAL sync: a crash loses at most the last transactions, never corrupts.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Statement journals in memory: every ban's savepoint would otherwise open, write and
        // delete a temporary file. A small page cache: the daemon's queries touch few pages,
        // and the default 2 MB would sit in its resident memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -256)?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating schema in {}", path.display()))?;
        let version: Option<i64> = conn
            .query_row("SELECT version FROM fail2banDb LIMIT 1", [], |r| r.get(0))
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO fail2banDb(version) VALUES(?)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                bail!(
                    "database {} has schema version {v}, newer than {SCHEMA_VERSION}",
                    path.display()
                )
            }
            Some(v) if v < SCHEMA_VERSION => bail!(
                "database {} has old schema version {v}; use `ironban import-db` to convert it",
                path.display()
            ),
            Some(_) => {}
        }
        Ok(Db {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Groups the writes until [`Db::end_pass`] into one transaction, so the bans of a pass
    /// over a jail's new lines and its read positions are committed together and once (the
    /// methods that write several rows use savepoints, which nest inside it). The engine
    /// opens it only to write what the pass held back, never around action commands.
    pub fn begin_pass(&self) -> anyhow::Result<()> {
        if self.conn.is_autocommit() {
            // IMMEDIATE: the write lock is taken (or waited for) now, so a read in the
            // transaction cannot later fail on another connection's commit.
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(())
    }

    /// Commits what was written since [`Db::begin_pass`]; when the commit fails, rolls
    /// back rather than leave the transaction open for unrelated later writes.
    pub fn end_pass(&self) -> anyhow::Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        if let Err(err) = self.conn.execute_batch("COMMIT") {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            return Err(err.into());
        }
        Ok(())
    }

    /// `add J`: registers the jail as enabled.
    pub fn add_jail(&self, jail: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO jails(name, enabled) VALUES(?, 1) ON CONFLICT(name) DO UPDATE SET enabled=1",
            [jail],
        )?;
        Ok(())
    }

    /// Jail removal: marks it disabled (its bans stay for a later restore).
    pub fn disable_jail(&self, jail: &str) -> anyhow::Result<()> {
        self.conn
            .execute("UPDATE jails SET enabled=0 WHERE name=?", [jail])?;
        Ok(())
    }

    /// Marks every jail disabled (fail2ban does this when `dbfile` is set).
    pub fn disable_all_jails(&self) -> anyhow::Result<()> {
        self.conn.execute("UPDATE jails SET enabled=0", [])?;
        Ok(())
    }

    /// Enabled jail names.
    pub fn jails(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM jails WHERE enabled=1 ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a ban: one history row in `bans`, the latest per (id, jail) in `bips`.
    pub fn add_ban(&mut self, ban: &BanRecord) -> anyhow::Result<()> {
        let data = serde_json::to_vec(&ban.data)?;
        // A savepoint from cached statements: a pass stores many bans, and rusqlite's
        // `savepoint()` parses its SQL each time.
        self.conn.prepare_cached("SAVEPOINT add_ban")?.execute([])?;
        let rows = || -> anyhow::Result<()> {
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, 1)")?
                .execute([&ban.jail])?;
            insert_record_with(&self.conn, BANS_INSERT, ban, &data)?;
            insert_record_with(&self.conn, BIPS_UPSERT, ban, &data)
        };
        let written = rows().and_then(|()| {
            self.conn.prepare_cached("RELEASE add_ban")?.execute([])?;
            Ok(())
        });
        if written.is_err() {
            // Undo the rows and end the savepoint, also when RELEASE itself failed (as the
            // outermost statement it commits): no transaction is left open behind a failed
            // ban. Should SQLite have rolled everything back already, both fail quietly and
            // the first error is the one reported.
            let _ = self
                .conn
                .execute_batch("ROLLBACK TO add_ban; RELEASE add_ban");
        }
        written
    }

    /// `unbanip`/`unban`: deletes the id's rows from `bans` and `bips` of `jail` (all jails
    /// with `None`). Returns the number of `bips` rows removed.
    pub fn remove_ban(&mut self, jail: Option<&str>, id: &str) -> anyhow::Result<usize> {
        let tx = self.conn.savepoint()?;
        let removed = match jail {
            Some(jail) => {
                tx.execute("DELETE FROM bans WHERE jail=? AND ip=?", [jail, id])?;
                tx.execute("DELETE FROM bips WHERE jail=? AND ip=?", [jail, id])?
            }
            None => {
                tx.execute("DELETE FROM bans WHERE ip=?", [id])?;
                tx.execute("DELETE FROM bips WHERE ip=?", [id])?
            }
        };
        tx.commit()?;
        Ok(removed)
    }

    /// `unban --all` / `reload --unban`: deletes every ban of `jail` (all jails with `None`).
    pub fn remove_jail_bans(&mut self, jail: Option<&str>) -> anyhow::Result<()> {
        self.with_file_journals(|conn| {
            let tx = conn.savepoint()?;
            match jail {
                Some(jail) => {
                    tx.execute("DELETE FROM bans WHERE jail=?", [jail])?;
                    tx.execute("DELETE FROM bips WHERE jail=?", [jail])?;
                }
                None => {
                    tx.execute("DELETE FROM bans", [])?;
                    tx.execute("DELETE FROM bips", [])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Runs a bulk change with statement journals in temporary files. `open` keeps them in
    /// memory (a ban's savepoint would otherwise write a file each time), where a bulk delete
    /// would hold a copy of every page it touches. Best effort: SQLite refuses the switch
    /// inside a transaction, and the change then journals in memory.
    fn with_file_journals<T>(
        &mut self,
        change: impl FnOnce(&mut Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let _ = self.conn.pragma_update(None, "temp_store", "FILE");
        let result = change(&mut self.conn);
        let _ = self.conn.pragma_update(None, "temp_store", "MEMORY");
        result
    }

    /// Bans of `jail` still in force at `now` (latest per id, ordered by id).
    pub fn active_bans(&self, jail: &str, now: i64) -> anyhow::Result<Vec<BanRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT jail, ip, timeofban, bantime, bancount, data FROM bips \
             WHERE jail=? AND (timeofban + bantime > ? OR bantime <= -1) ORDER BY ip",
        )?;
        let rows = stmt.query_map(params![jail, now], row_to_record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Bans a starting jail restores (spec 4.7): ban times corrected (unknown `-2` → jail
    /// bantime; clamped to the jail bantime, or to `maxtime` with increment) and rows whose
    /// corrected end is past dropped. Ignore checks are the caller's.
    pub fn bans_to_restore(
        &self,
        jail: &str,
        now: i64,
        policy: &RestorePolicy,
    ) -> anyhow::Result<Vec<BanRecord>> {
        let mut records = self.active_bans(jail, now)?;
        if !policy.increment && policy.jail_ban_time != -1 {
            records.retain(|r| r.time_of_ban > now - policy.jail_ban_time);
        }
        let clamp = if policy.increment {
            policy.max_time.filter(|m| *m >= 0)
        } else {
            Some(policy.jail_ban_time).filter(|b| *b >= 0)
        };
        for record in &mut records {
            if record.ban_time == -2 {
                record.ban_time = policy.jail_ban_time;
            }
            if let Some(max) = clamp {
                if record.ban_time > max || record.ban_time < 0 {
                    record.ban_time = max;
                }
            }
        }
        records.retain(|r| r.ban_time < 0 || r.time_of_ban + r.ban_time > now);
        Ok(records)
    }

    /// Previous bans of `id` in `jail`, or summed over all jails with `None`
    /// (`overalljails`); `None` when never banned.
    pub fn ban_count(&self, id: &str, jail: Option<&str>) -> anyhow::Result<Option<BanHistory>> {
        let row = match jail {
            Some(jail) => self
                .conn
                .query_row(
                    "SELECT bancount, timeofban, bantime FROM bips WHERE ip=? AND jail=?",
                    [id, jail],
                    |r| {
                        Ok((
                            lenient_i64(r.get_ref(0)?, 0),
                            lenient_i64(r.get_ref(1)?, 0),
                            lenient_i64(r.get_ref(2)?, 0),
                        ))
                    },
                )
                .optional()?,
            None => self
                .conn
                .query_row(
                    "SELECT sum(bancount), max(timeofban), sum(bantime) FROM bips WHERE ip=? \
                     GROUP BY ip",
                    [id],
                    |r| {
                        Ok((
                            lenient_i64(r.get_ref(0)?, 0),
                            lenient_i64(r.get_ref(1)?, 0),
                            lenient_i64(r.get_ref(2)?, 0),
                        ))
                    },
                )
                .optional()?,
        };
        Ok(row.map(|(count, time, ban_time)| BanHistory {
            ban_count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
            last_time_of_ban: time,
            ban_time,
        }))
    }

    /// Number of history rows (`bans`) for `id` in `jail`.
    pub fn ban_history_len(&self, id: &str, jail: &str) -> anyhow::Result<usize> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM bans WHERE ip=? AND jail=?",
            [id, jail],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Stores the read position of a log file with the hash of its first line.
    pub fn set_position(
        &self,
        jail: &str,
        path: &str,
        first_line_hash: &str,
        position: u64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, 1)",
            [jail],
        )?;
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        self.conn.execute(
            "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?, ?, ?, ?)",
            params![jail, path, first_line_hash, position],
        )?;
        Ok(())
    }

    /// Stored `(first line hash, position)` of a log file.
    pub fn position(&self, jail: &str, path: &str) -> anyhow::Result<Option<(String, u64)>> {
        let row = self
            .conn
            .query_row(
                "SELECT firstlinemd5, lastfilepos FROM logs WHERE jail=? AND path=?",
                [jail, path],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    ))
                },
            )
            .optional()?;
        Ok(row.map(|(hash, pos)| (hash, u64::try_from(pos).unwrap_or(0))))
    }

    /// Position to resume reading at: the stored one if the first-line hash still matches.
    pub fn resume_position(
        &self,
        jail: &str,
        path: &str,
        current_hash: &str,
    ) -> anyhow::Result<u64> {
        Ok(match self.position(jail, path)? {
            Some((hash, pos)) if hash == current_hash => pos,
            _ => 0,
        })
    }

    /// Hourly purge (spec 4.6.7): history older than `purge_age`, outdated `bips`, disabled
    /// jails without bans.
    pub fn purge(&mut self, now: i64, purge_age: i64) -> anyhow::Result<()> {
        let limit = now - purge_age;
        self.with_file_journals(|conn| {
            let tx = conn.savepoint()?;
            tx.execute("DELETE FROM bans WHERE timeofban < ?", [limit])?;
            tx.execute(
                "DELETE FROM bips WHERE timeofban < ? AND bantime != -1 AND timeofban + 3*bantime < ?",
                [limit, limit],
            )?;
            tx.execute(
                "DELETE FROM jails WHERE enabled = 0 \
                 AND NOT EXISTS (SELECT 1 FROM bans WHERE jail = jails.name) \
                 AND NOT EXISTS (SELECT 1 FROM bips WHERE jail = jails.name)",
                [],
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}

/// What an import copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub jails: usize,
    pub bans: usize,
    pub bips: usize,
    pub logs: usize,
}

fn has_table(conn: &Connection, name: &str) -> anyhow::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

fn has_column(conn: &Connection, table: &str, column: &str) -> anyhow::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Copies the jails, ban history (`bans`), latest bans (`bips`) and log positions of the
/// fail2ban database `src` (opened read-only) into the ironban database `dst`. Older schemas
/// without `bantime`/`bips` are converted as fail2ban's upgrade does (unknown ban time `-2`,
/// `bips` built from the latest `bans` row per id and jail).
pub fn import_fail2ban_db(src: &Path, dst: &Path) -> anyhow::Result<ImportCounts> {
    let source = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening fail2ban database {}", src.display()))?;
    if !has_table(&source, "bans")? || !has_table(&source, "jails")? {
        bail!("{} is not a fail2ban database", src.display());
    }
    let mut db = Db::open(dst)?;
    let mut counts = ImportCounts::default();
    let tx = db.conn.transaction()?;

    {
        let mut stmt = source.prepare("SELECT name, enabled FROM jails")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, enabled) = row?;
            counts.jails += tx.execute(
                "INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, ?)",
                params![name, enabled],
            )?;
        }
    }

    let has_bantime = has_column(&source, "bans", "bantime")?;
    let bans_sql = if has_bantime {
        "SELECT jail, ip, timeofban, bantime, bancount, data FROM bans ORDER BY rowid"
    } else {
        "SELECT jail, ip, timeofban, -2, 1, data FROM bans ORDER BY rowid"
    };
    let mut latest: BTreeMap<(String, String), BanRecord> = BTreeMap::new();
    {
        let mut stmt = source.prepare(bans_sql)?;
        let rows = stmt.query_map([], row_to_record)?;
        for row in rows {
            let record = row?;
            tx.execute(
                "INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, 0)",
                [&record.jail],
            )?;
            insert_record(&tx, BANS_INSERT, &record)?;
            counts.bans += 1;
            let key = (record.id.clone(), record.jail.clone());
            let newer = latest
                .get(&key)
                .is_none_or(|old| old.time_of_ban <= record.time_of_ban);
            if newer {
                latest.insert(key, record);
            }
        }
    }

    let bips: Vec<BanRecord> = if has_table(&source, "bips")? {
        let mut stmt =
            source.prepare("SELECT jail, ip, timeofban, bantime, bancount, data FROM bips")?;
        let rows = stmt.query_map([], row_to_record)?;
        rows.collect::<Result<_, _>>()?
    } else {
        latest.into_values().collect()
    };
    for record in bips {
        tx.execute(
            "INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, 0)",
            [&record.jail],
        )?;
        insert_record(&tx, BIPS_UPSERT, &record)?;
        counts.bips += 1;
    }

    if has_table(&source, "logs")? {
        let mut stmt = source.prepare("SELECT jail, path, firstlinemd5, lastfilepos FROM logs")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        for row in rows {
            let (jail, path, hash, pos) = row?;
            tx.execute(
                "INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, 0)",
                [&jail],
            )?;
            counts.logs += tx.execute(
                "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?, ?, ?, ?)",
                params![jail, path, hash, pos.unwrap_or(0)],
            )?;
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// `ironban import-db PATH`: import a fail2ban database into ironban's.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The fail2ban database to read (e.g. /var/lib/fail2ban/fail2ban.sqlite3).
    pub path: PathBuf,
    /// ironban's database to write; default: `dbfile` of the configuration's fail2ban.conf.
    #[arg(long = "db")]
    pub db: Option<PathBuf>,
}

/// `dbfile` of `[Definition]` in `fail2ban.conf`, overridden by `fail2ban.local` and
/// `fail2ban.d/*.conf|*.local` (simple reading: no interpolation).
pub fn configured_dbfile(conf: &Path) -> Option<String> {
    let mut files = vec![conf.join("fail2ban.conf")];
    let mut dropins: Vec<PathBuf> = std::fs::read_dir(conf.join("fail2ban.d"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect()
        })
        .unwrap_or_default();
    dropins.sort();
    files.extend(dropins);
    files.push(conf.join("fail2ban.local"));
    let mut value = None;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut in_definition = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                in_definition = trimmed == "[Definition]";
                continue;
            }
            if !in_definition || line.starts_with([' ', '\t', '#', ';']) {
                continue;
            }
            if let Some((key, val)) = trimmed.split_once(['=', ':']) {
                if key.trim() == "dbfile" {
                    value = Some(val.trim().to_string());
                }
            }
        }
    }
    value
}

pub fn run_import(conf: &Path, args: ImportArgs) -> anyhow::Result<u8> {
    let dst = match args.db {
        Some(path) => path,
        None => {
            let dbfile = configured_dbfile(conf).unwrap_or_else(|| DEFAULT_DBFILE.to_string());
            if dbfile.eq_ignore_ascii_case("none") || dbfile == ":memory:" {
                bail!("the configuration has no database file (dbfile = {dbfile}); use --db PATH");
            }
            PathBuf::from(dbfile)
        }
    };
    let same = match (args.path.canonicalize(), dst.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => args.path == dst,
    };
    if same {
        bail!(
            "{} is already the configured database (same schema); nothing to import",
            dst.display()
        );
    }
    let counts = import_fail2ban_db(&args.path, &dst)?;
    println!(
        "Imported from {} into {}: {} jails, {} ban history rows, {} current bans, {} log positions",
        args.path.display(),
        dst.display(),
        counts.jails,
        counts.bans,
        counts.bips,
        counts.logs
    );
    Ok(0)
}

/// ironban's own state beside fail2ban's schema: which jails are running (to detect an
/// unclean shutdown), and for the one-shot mode the started action families and the
/// failures still counting between runs.
const IRONBAN_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ironban_running(jail TEXT NOT NULL PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ironban_action_families(jail TEXT NOT NULL, action TEXT NOT NULL, family TEXT NOT NULL, has_items INTEGER NOT NULL, PRIMARY KEY(jail, action, family));
CREATE TABLE IF NOT EXISTS ironban_failures(jail TEXT NOT NULL, id TEXT NOT NULL, ticket JSON NOT NULL, PRIMARY KEY(jail, id));
CREATE TABLE IF NOT EXISTS ironban_applied(jail TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY(jail, id));
";

impl Db {
    fn ironban_schema(&self) -> anyhow::Result<()> {
        self.conn.execute_batch(IRONBAN_SCHEMA)?;
        Ok(())
    }

    /// Was the jail marked running by a server that never stopped it?
    pub fn was_running(&self, jail: &str) -> anyhow::Result<bool> {
        self.ironban_schema()?;
        Ok(self
            .conn
            .query_row("SELECT 1 FROM ironban_running WHERE jail=?", [jail], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    pub fn set_running(&self, jail: &str, running: bool) -> anyhow::Result<()> {
        self.ironban_schema()?;
        if running {
            self.conn.execute(
                "INSERT OR IGNORE INTO ironban_running(jail) VALUES(?)",
                [jail],
            )?;
        } else {
            self.conn
                .execute("DELETE FROM ironban_running WHERE jail=?", [jail])?;
        }
        Ok(())
    }

    /// Started action families of a jail: (action, family, has bans).
    pub fn action_families(&self, jail: &str) -> anyhow::Result<Vec<(String, String, bool)>> {
        self.ironban_schema()?;
        let mut stmt = self.conn.prepare(
            "SELECT action, family, has_items FROM ironban_action_families WHERE jail=?",
        )?;
        let rows = stmt.query_map([jail], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn save_action_families(
        &mut self,
        jail: &str,
        states: &[(String, String, bool)],
    ) -> anyhow::Result<()> {
        self.ironban_schema()?;
        let tx = self.conn.savepoint()?;
        tx.execute("DELETE FROM ironban_action_families WHERE jail=?", [jail])?;
        for (action, family, has_items) in states {
            tx.execute(
                "INSERT INTO ironban_action_families(jail, action, family, has_items) VALUES(?,?,?,?)",
                params![jail, action, family, i64::from(*has_items)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ids whose ban the previous one-shot run left applied (to lift once expired).
    pub fn applied_bans(&self, jail: &str) -> anyhow::Result<Vec<String>> {
        self.ironban_schema()?;
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM ironban_applied WHERE jail=?")?;
        let rows = stmt.query_map([jail], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn save_applied_bans(&mut self, jail: &str, ids: &[String]) -> anyhow::Result<()> {
        self.ironban_schema()?;
        let tx = self.conn.savepoint()?;
        tx.execute("DELETE FROM ironban_applied WHERE jail=?", [jail])?;
        for id in ids {
            tx.execute(
                "INSERT OR IGNORE INTO ironban_applied(jail, id) VALUES(?,?)",
                params![jail, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Failure tickets saved by the previous one-shot run.
    pub fn load_failures(&self, jail: &str) -> anyhow::Result<Vec<Ticket>> {
        self.ironban_schema()?;
        let mut stmt = self
            .conn
            .prepare("SELECT id, ticket FROM ironban_failures WHERE jail=?")?;
        let rows = stmt.query_map([jail], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row?;
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let mut t = Ticket::new(id, v["time"].as_f64().unwrap_or(0.0));
            t.first_time = v["first_time"].as_f64().unwrap_or(t.time);
            t.retry = u32::try_from(v["retry"].as_u64().unwrap_or(1)).unwrap_or(1);
            t.failures = u32::try_from(v["failures"].as_u64().unwrap_or(1)).unwrap_or(1);
            t.matches = v["matches"]
                .as_array()
                .map(|m| m.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            out.push(t);
        }
        Ok(out)
    }

    pub fn save_failures(&mut self, jail: &str, tickets: &[Ticket]) -> anyhow::Result<()> {
        self.ironban_schema()?;
        let tx = self.conn.savepoint()?;
        tx.execute("DELETE FROM ironban_failures WHERE jail=?", [jail])?;
        for t in tickets {
            let v = json!({
                "time": t.time, "first_time": t.first_time, "retry": t.retry,
                "failures": t.failures, "matches": t.matches.iter().collect::<Vec<_>>(),
            });
            tx.execute(
                "INSERT INTO ironban_failures(jail, id, ticket) VALUES(?,?,?)",
                params![jail, t.id.as_str(), v.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(db: &Db) -> i64 {
        db.conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .expect("temp_store")
    }

    #[test]
    fn bulk_deletes_journal_in_files_and_bans_in_memory() {
        let dir = std::env::temp_dir().join(format!("ironban-db-journals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut db = Db::open(&dir.join("state.sqlite3")).expect("open");
        const MEMORY: i64 = 2;
        assert_eq!(temp_store(&db), MEMORY);
        let seen = std::cell::Cell::new(-1);
        let _ = db.with_file_journals(|conn| {
            seen.set(conn.query_row("PRAGMA temp_store", [], |r| r.get(0))?);
            Ok(())
        });
        assert_eq!(seen.get(), 1, "FILE during a bulk change");
        db.purge(1_000_000, 10).expect("purge");
        db.remove_jail_bans(None).expect("remove");
        assert_eq!(temp_store(&db), MEMORY, "MEMORY again afterwards");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sha1_matches_known_digests() {
        assert_eq!(
            crate::logsource::sha1_hex(b""),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            crate::logsource::sha1_hex(b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            first_line_hash(b"hello\n"),
            "f572d396fae9206628714fb2ce00f72e94f2258f"
        );
        assert_eq!(first_line_hash(b"partial"), "");
    }

    #[test]
    fn record_round_trips_ticket() {
        let mut ticket = Ticket::new("1.2.3.4", 100.5);
        let lines: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
        ticket.matches = lines.iter().map(String::as_str).collect();
        ticket.failures = 3;
        ticket.ban_count = 2;
        ticket.data.insert("user", "alice");
        let record = BanRecord::from_ticket("sshd", &ticket, 600, 10);
        assert_eq!(record.time_of_ban, 100, "round half to even");
        assert_eq!(record.matches().len(), 10);
        let back = record.to_ticket();
        assert_eq!(back.matches.iter().next(), Some("m2"));
        assert_eq!(back.failures, 3);
        assert_eq!(back.ban_count, 3, "restored count is stored + 1");
        assert!(back.restored);
        assert_eq!(back.data.get("user"), Some("alice"));
        let none = BanRecord::from_ticket("sshd", &ticket, 600, 0);
        assert!(none.data.get("matches").is_none());
    }

    #[test]
    fn list_matches_are_joined() {
        let record = BanRecord {
            jail: "j".into(),
            id: "i".into(),
            time_of_ban: 0,
            ban_time: 1,
            ban_count: 1,
            data: json!({"matches": [["a ", "DATE", " b"], "plain"]}),
        };
        assert_eq!(record.matches(), vec!["a DATE b", "plain"]);
    }
}
