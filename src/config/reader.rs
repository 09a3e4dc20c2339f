//! Readers of fail2ban's units: `fail2ban` globals, `jail` sections, and the
//! `[Definition]`/`[Init]` files of filters and actions, turned into the
//! command stream in fail2ban 1.1's order.

use super::glob::glob;
use super::ini::{omap_get, omap_set, split_conditional, FileCache, OMap, Unit};
use super::tags::{
    extract_options, shlex_split, split_with_options, splitwords, substitute_recursive_tags, TagMap,
};
use super::value::{push_json_str, python_str_repr, Command, Value};
use super::ConfigError;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

const FAIL2BAN_VERSION: &str = "1.1.2.dev1";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Bool,
}

const FILTER_OPTS: &[(&str, Kind)] = &[
    ("usedns", Kind::Str),
    ("prefregex", Kind::Str),
    ("ignoreregex", Kind::Str),
    ("failregex", Kind::Str),
    ("maxlines", Kind::Int),
    ("datepattern", Kind::Str),
    ("journalmatch", Kind::Str),
];

const ACTION_OPTS: &[(&str, Kind)] = &[
    ("actionstart", Kind::Str),
    ("actionstart_on_demand", Kind::Bool),
    ("actionstop", Kind::Str),
    ("actionflush", Kind::Str),
    ("actionreload", Kind::Str),
    ("actioncheck", Kind::Str),
    ("actionrepair", Kind::Str),
    ("actionrepair_on_unban", Kind::Bool),
    ("actionban", Kind::Str),
    ("actionprolong", Kind::Str),
    ("actionreban", Kind::Str),
    ("actionunban", Kind::Str),
    ("norestored", Kind::Bool),
];

/// Jail options in stream order (spec 1.6.4) with type and default.
const JAIL_OPTS: &[(&str, Kind, Option<&str>)] = &[
    ("enabled", Kind::Bool, Some("false")),
    ("backend", Kind::Str, Some("auto")),
    ("maxretry", Kind::Int, None),
    ("maxmatches", Kind::Int, None),
    ("findtime", Kind::Str, None),
    ("bantime", Kind::Str, None),
    ("bantime.increment", Kind::Bool, None),
    ("bantime.factor", Kind::Str, None),
    ("bantime.formula", Kind::Str, None),
    ("bantime.multipliers", Kind::Str, None),
    ("bantime.maxtime", Kind::Str, None),
    ("bantime.rndtime", Kind::Str, None),
    ("bantime.overalljails", Kind::Bool, None),
    ("ignorecommand", Kind::Str, None),
    ("ignoreself", Kind::Bool, None),
    ("ignoreip", Kind::Str, None),
    ("ignorecache", Kind::Str, None),
    ("filter", Kind::Str, Some("")),
    ("logtimezone", Kind::Str, None),
    ("logencoding", Kind::Str, None),
    ("logpath", Kind::Str, None),
    ("skip_if_nologs", Kind::Bool, Some("false")),
    ("systemd_if_nologs", Kind::Bool, Some("true")),
    ("action", Kind::Str, Some("")),
    ("usedns", Kind::Str, None),
    ("prefregex", Kind::Str, None),
    ("ignoreregex", Kind::Str, None),
    ("failregex", Kind::Str, None),
    ("maxlines", Kind::Int, None),
    ("datepattern", Kind::Str, None),
    ("journalmatch", Kind::Str, None),
    // ironban extensions (success exclusion); absent unless a jail sets them, so fail2ban
    // trees produce fail2ban's stream unchanged.
    ("successfilter", Kind::Str, None),
    ("successlogpath", Kind::Str, None),
    ("successtime", Kind::Str, None),
];

const JAIL_OPTS_1ST: &[&str] = &["enabled", "backend", "filter"];

/// Jail options never emitted as plain `set` commands.
const JAIL_IGNORED: &[&str] = &[
    "action",
    "filter",
    "enabled",
    "backend",
    "skip_if_nologs",
    "systemd_if_nologs",
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// Python `bool` conversion of fail2ban (`_as_bool`).
fn as_bool(v: &str) -> bool {
    matches!(
        v.trim().to_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

/// Python `int()` of a string: whitespace, sign and `_` separators allowed.
pub fn python_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n: i64 = clean.parse().ok()?;
    Some(if neg { -n } else { n })
}

fn convert(kind: Kind, v: &str) -> Value {
    match kind {
        Kind::Str => Value::Str(v.to_string()),
        Kind::Int => python_int(v).map(Value::Int).unwrap_or(Value::None),
        Kind::Bool => Value::Bool(as_bool(v)),
    }
}

/// Typed options as interpolation variables (Python `str()` of each value).
fn as_vars(opts: &[(String, Value)]) -> OMap {
    opts.iter()
        .filter(|(_, v)| *v != Value::None)
        .map(|(k, v)| (k.clone(), v.python_str()))
        .collect()
}

fn lower_keys(map: &OMap) -> OMap {
    let mut out = OMap::new();
    for (k, v) in map {
        omap_set(&mut out, &k.to_lowercase(), v.clone());
    }
    out
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

/// Shared state of one configuration read: the base dir, parsed-file cache,
/// filter/action units (read once, like fail2ban's shared config) and warnings.
struct Loader {
    base: PathBuf,
    cache: FileCache,
    units: HashMap<String, Option<Rc<Unit>>>,
    warnings: Vec<String>,
}

impl Loader {
    fn new(base: &Path) -> Self {
        Loader {
            base: base.to_path_buf(),
            cache: FileCache::default(),
            units: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    fn unit(&mut self, name: &str) -> Result<Option<Rc<Unit>>, ConfigError> {
        if let Some(u) = self.units.get(name) {
            return Ok(u.clone());
        }
        // A file that exists but cannot be decoded fails the unit (1.1.1+),
        // which for a filter or action is only an error of the jail using it.
        let undecodable = super::ini::unit_files(&self.base, name)
            .into_iter()
            .find(|f| {
                std::fs::read(f)
                    .map(|b| String::from_utf8(b).is_err())
                    .unwrap_or(true)
            });
        let unit = match undecodable {
            Some(f) => {
                self.warnings
                    .push(format!("Error decoding config file '{}'", f.display()));
                None
            }
            None => Unit::read(&mut self.cache, &self.base, name)?.map(Rc::new),
        };
        if unit.is_none() {
            self.warnings.push(format!(
                "Found no accessible config files for {} under {}",
                python_str_repr(name),
                self.base.display()
            ));
        }
        self.units.insert(name.to_string(), unit.clone());
        Ok(unit)
    }
}

/// A filter or action file reader (`DefinitionInitConfigReader`).
struct DefReader {
    unit: Rc<Unit>,
    table: &'static [(&'static str, Kind)],
    jail: String,
    actname: String,
    init: OMap,
    opts: OMap,
    popts: OMap,
    def_cache: HashMap<String, Option<String>>,
}

impl DefReader {
    fn new_filter(unit: Rc<Unit>, jail: &str, init: OMap) -> Self {
        DefReader {
            unit,
            table: FILTER_OPTS,
            jail: jail.to_string(),
            actname: String::new(),
            init,
            opts: OMap::new(),
            popts: OMap::new(),
            def_cache: HashMap::new(),
        }
    }

    fn new_action(unit: Rc<Unit>, file: &str, jail: &str, mut init: OMap) -> Self {
        let name = match omap_get(&init, "name") {
            Some(n) => n.to_string(),
            None => {
                init.push(("name".into(), jail.to_string()));
                jail.to_string()
            }
        };
        let actname = match omap_get(&init, "actname") {
            Some(a) => a.to_string(),
            None => {
                let mut a = file.to_string();
                if name != jail {
                    match name.strip_prefix(jail) {
                        Some(rest) => a.push_str(rest),
                        None => {
                            a.push('-');
                            a.push_str(&name);
                        }
                    }
                }
                init.push(("actname".into(), a.clone()));
                a
            }
        };
        DefReader {
            unit,
            table: ACTION_OPTS,
            jail: jail.to_string(),
            actname,
            init,
            opts: OMap::new(),
            popts: OMap::new(),
            def_cache: HashMap::new(),
        }
    }

    /// `applyAutoOptions`: `logtype` from the backend unless set.
    fn apply_auto_options(&mut self, backend: &str) {
        let given = omap_get(&self.init, "logtype").is_some_and(|v| !v.is_empty());
        let in_def = self
            .unit
            .section("Definition")
            .is_some_and(|d| omap_get(d, "logtype").is_some());
        if !given && !in_def {
            let lt = if backend.starts_with("systemd") {
                "journal"
            } else {
                "file"
            };
            omap_set(&mut self.init, "logtype", lt.to_string());
        }
    }

    fn get_options(&mut self, popts: &OMap, all: bool) -> Result<(), ConfigError> {
        let mut p = popts.clone();
        for (k, v) in &self.init {
            omap_set(&mut p, k, v.clone());
        }
        let vars = lower_keys(&p);
        self.opts.clear();
        if self.unit.has_section("Definition") {
            for (name, _) in self.table {
                if omap_get(&p, name).is_some() {
                    continue;
                }
                if let Some(v) = self.unit.get("Definition", name, &vars)? {
                    self.opts.push((name.to_string(), v));
                }
            }
        }
        self.popts = vars;
        if self.unit.has_section("Init") {
            for opt in self.unit.own_options("Init") {
                if opt == "__name__" {
                    continue;
                }
                let mut v = None;
                if !opt.starts_with("known/") {
                    v = self.unit.get("Init", &opt, &[])?;
                    omap_set(
                        &mut self.init,
                        &format!("known/{opt}"),
                        v.clone().unwrap_or_default(),
                    );
                }
                if omap_get(&self.init, &opt).is_none() {
                    if v.is_none() {
                        v = self.unit.get("Init", &opt, &[])?;
                    }
                    if let Some((base, _)) = split_conditional(&opt) {
                        if let Some(given) = omap_get(&p, base) {
                            v = Some(given.to_string());
                        }
                    }
                    self.init.push((opt.clone(), v.unwrap_or_default()));
                }
            }
        }
        // ConfigReader.options() defaults to withDefault=False: only the
        // section's own options, not the file's [DEFAULT] ones.
        if all && self.unit.has_section("Definition") {
            for opt in self.unit.own_options("Definition") {
                if opt == "__name__" || omap_get(&self.opts, &opt).is_some() {
                    continue;
                }
                let v = self.unit.get("Definition", &opt, &[])?.unwrap_or_default();
                self.opts.push((opt, v));
            }
        }
        Ok(())
    }

    /// `getCombined`: Definition options overlaid by init options, tags
    /// resolved, typed options converted.
    fn get_combined(&mut self, extra_ignore: &[&str]) -> Result<Vec<(String, Value)>, ConfigError> {
        let mut combined: TagMap = self
            .opts
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        for (k, v) in &self.init {
            match combined.iter_mut().find(|(ck, _)| ck == k) {
                Some(e) => e.1 = Some(v.clone()),
                None => combined.push((k.clone(), Some(v.clone()))),
            }
        }
        if combined.is_empty() {
            return Ok(Vec::new());
        }
        let mut ignore: HashSet<String> = extra_ignore.iter().map(|s| s.to_string()).collect();
        for (k, _) in &combined {
            if let Some((base, _)) = split_conditional(k) {
                ignore.insert(base.to_string());
            }
        }
        let unit = self.unit.clone();
        let popts = self.popts.clone();
        let mut cache = std::mem::take(&mut self.def_cache);
        let mut failure: Option<ConfigError> = None;
        let result = substitute_recursive_tags(&combined, &ignore, &mut |tag: &str| {
            if let Some(v) = cache.get(tag) {
                return Ok(v.clone());
            }
            match unit.get_ex("Definition", tag, &popts) {
                Ok(v) => {
                    cache.insert(tag.to_string(), v.clone());
                    Ok(v)
                }
                Err(e) => {
                    let msg = e.to_string();
                    failure = Some(e);
                    Err(msg)
                }
            }
        });
        self.def_cache = cache;
        if let Some(e) = failure {
            return Err(e);
        }
        let opts = result.map_err(|e| {
            ConfigError::new(e).or_file(self.unit.files.last().map(PathBuf::as_path))
        })?;
        Ok(opts
            .into_iter()
            .map(|(k, v)| {
                let value = match (v, self.table.iter().find(|(n, _)| *n == k)) {
                    (None, _) => Value::None,
                    (Some(v), Some((_, kind))) => convert(*kind, &v),
                    (Some(v), None) => Value::Str(v),
                };
                (k, value)
            })
            .collect())
    }

    fn filter_convert(&mut self) -> Result<Vec<Command>, ConfigError> {
        let opts = self.get_combined(&[])?;
        let mut stream = Vec::new();
        fill_stream(&mut stream, &opts, &self.jail)?;
        Ok(stream)
    }

    fn action_convert(&mut self) -> Result<Vec<Command>, ConfigError> {
        let opts = self.get_combined(&[
            "matches",
            "ipmatches",
            "ipjailmatches",
            "timeout",
            "bantime",
        ])?;
        let jail = s(&self.jail);
        let actname = s(&self.actname);
        let mut stream = vec![vec![
            s("set"),
            jail.clone(),
            s("addaction"),
            actname.clone(),
        ]];
        let mut multi: Vec<Value> = Vec::new();
        for (k, v) in &opts {
            if self.table.iter().any(|(n, _)| n == k) && !k.starts_with("known/") {
                multi.push(Value::List(vec![s(k), v.clone()]));
            }
        }
        for (k, v) in &self.init {
            if !self.table.iter().any(|(n, _)| n == k) && !k.starts_with("known/") {
                multi.push(Value::List(vec![s(k), s(v)]));
            }
        }
        if multi.len() > 1 {
            stream.push(vec![
                s("multi-set"),
                jail,
                s("action"),
                actname,
                Value::List(multi),
            ]);
        } else if let Some(Value::List(pair)) = multi.pop() {
            let mut cmd = vec![s("set"), jail, s("action"), actname];
            cmd.extend(pair);
            stream.push(cmd);
        }
        Ok(stream)
    }
}

/// `_fillStream`: filter-related options of an ordered map into the stream.
fn fill_stream(
    stream: &mut Vec<Command>,
    opts: &[(String, Value)],
    jail: &str,
) -> Result<(), ConfigError> {
    let mut prio = 0usize;
    for (opt, value) in opts {
        if *value == Value::None {
            continue;
        }
        let text = value.python_str();
        match opt.as_str() {
            "failregex" | "ignoreregex" => {
                let list: Vec<Value> = text.split('\n').filter(|r| !r.is_empty()).map(s).collect();
                let cmd = format!("add{opt}");
                if list.len() > 1 {
                    stream.push(vec![s("multi-set"), s(jail), s(&cmd), Value::List(list)]);
                } else if let Some(one) = list.into_iter().next() {
                    stream.push(vec![s("set"), s(jail), s(&cmd), one]);
                }
            }
            "usedns" | "maxlines" | "prefregex" => {
                let at = if opt == "usedns" {
                    0
                } else {
                    prio.min(stream.len())
                };
                stream.insert(at, vec![s("set"), s(jail), s(opt), value.clone()]);
                prio += 1;
            }
            "journalmatch" => {
                for line in text.split('\n').filter(|l| !l.is_empty()) {
                    let words = shlex_split(line).map_err(|e| {
                        ConfigError::new(format!(
                            "Invalid journalmatch {}: {e}",
                            python_str_repr(line)
                        ))
                    })?;
                    let mut cmd = vec![s("set"), s(jail), s("addjournalmatch")];
                    cmd.extend(words.into_iter().map(Value::Str));
                    stream.push(cmd);
                }
            }
            // fail2ban tests `opt in ('datepattern')`, a substring test
            o if "datepattern".contains(o) && !o.is_empty() => {
                stream.push(vec![s("set"), s(jail), s(opt), value.clone()]);
            }
            _ => {}
        }
    }
    Ok(())
}

enum ActionEntry {
    Command(Box<DefReader>),
    Python(Command),
}

/// One jail section being read (`JailReader`).
struct JailReader {
    name: String,
    force_enable: bool,
    opts: Vec<(String, Value)>,
    filter: Option<DefReader>,
    actions: Vec<ActionEntry>,
    config_error: Option<String>,
}

fn opt_value<'a>(opts: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    opts.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl JailReader {
    fn new(name: &str, force_enable: bool) -> Self {
        JailReader {
            name: name.to_string(),
            force_enable,
            opts: Vec::new(),
            filter: None,
            actions: Vec::new(),
            config_error: None,
        }
    }

    fn is_enabled(&self) -> bool {
        self.force_enable || opt_value(&self.opts, "enabled") == Some(&Value::Bool(true))
    }

    fn read_opts(&self, unit: &Unit, names: &[&str]) -> Result<Vec<(String, Value)>, ConfigError> {
        let mut out = Vec::new();
        for name in names {
            let Some((_, kind, default)) = JAIL_OPTS.iter().find(|(n, _, _)| n == name) else {
                continue;
            };
            match unit.get(&self.name, name, &[])? {
                Some(v) => out.push((name.to_string(), convert(*kind, &v))),
                None => {
                    if let Some(d) = default {
                        out.push((name.to_string(), convert(*kind, d)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Phases 1 and 2; `Ok(false)` on a jail-level error (stored in `config_error`).
    fn get_options(
        &mut self,
        loader: &mut Loader,
        unit: &mut Unit,
        add: &OMap,
    ) -> Result<bool, ConfigError> {
        self.opts = self.read_opts(unit, JAIL_OPTS_1ST)?;
        for (k, v) in add {
            match self.opts.iter_mut().find(|(ok, _)| ok == k) {
                Some(e) => e.1 = s(v),
                None => self.opts.push((k.clone(), s(v))),
            }
        }
        if !self.is_enabled() {
            return Ok(true);
        }
        match self.read_enabled(loader, unit, add) {
            Ok(()) => Ok(true),
            Err(JailError::Jail(msg)) => {
                loader.warnings.push(format!(
                    "Errors in jail {}. Skipping...",
                    python_str_repr(&self.name)
                ));
                self.config_error = Some(msg);
                Ok(false)
            }
            Err(JailError::Fatal(e)) => Err(e),
        }
    }

    fn read_enabled(
        &mut self,
        loader: &mut Loader,
        unit: &mut Unit,
        add: &OMap,
    ) -> Result<(), JailError> {
        let flt = opt_value(&self.opts, "filter")
            .map(Value::python_str)
            .unwrap_or_default();
        if !flt.is_empty() {
            let (name, mut args) = extract_options(&flt).map_err(|e| {
                JailError::Jail(format!(
                    "Invalid filter definition {}: {e}",
                    python_str_repr(&flt)
                ))
            })?;
            for (k, v) in add {
                omap_set(&mut args, k, v.clone());
            }
            let funit = loader.unit(&format!("filter.d/{name}"))?.ok_or_else(|| {
                JailError::Jail(format!(
                    "Unable to read the filter {}",
                    python_str_repr(&name)
                ))
            })?;
            let mut reader = DefReader::new_filter(funit, &self.name, args);
            let backend = opt_value(&self.opts, "backend")
                .map(Value::python_str)
                .unwrap_or_default();
            reader.apply_auto_options(&backend);
            reader.get_options(&as_vars(&self.opts), true)?;
            let combined = reader.get_combined(&[])?;
            let sect = unit.section_mut(&self.name);
            for (k, v) in combined {
                if k.starts_with("known/") || k == "__name__" {
                    continue;
                }
                omap_set(sect, &format!("known/{k}"), v.python_str());
            }
            self.filter = Some(reader);
        } else {
            loader
                .warnings
                .push(format!("No filter set for jail {}", self.name));
        }
        let names: Vec<&str> = JAIL_OPTS.iter().map(|(n, _, _)| *n).collect();
        self.opts = self.read_opts(unit, &names)?;
        if let Some(f) = self.filter.as_mut() {
            f.get_options(&as_vars(&self.opts), false)?;
        }
        let action = opt_value(&self.opts, "action")
            .map(Value::python_str)
            .unwrap_or_default();
        for act in split_with_options(&action) {
            let act = act.trim();
            if act.is_empty() {
                continue;
            }
            let (name, mut args) = extract_options(act).map_err(|e| {
                JailError::Jail(format!(
                    "Invalid action definition {}: {e}",
                    python_str_repr(act)
                ))
            })?;
            if name.is_empty() {
                return Err(JailError::Jail(format!(
                    "Invalid action definition {}",
                    python_str_repr(act)
                )));
            }
            if let Some(stem) = name.strip_suffix(".py") {
                let actname = match args.iter().position(|(k, _)| k == "actname") {
                    Some(i) => args.remove(i).1,
                    None => stem.to_string(),
                };
                self.actions.push(ActionEntry::Python(vec![
                    s("set"),
                    s(&self.name),
                    s("addaction"),
                    s(&actname),
                    s(&loader
                        .base
                        .join("action.d")
                        .join(&name)
                        .display()
                        .to_string()),
                    Value::Str(python_json_dumps(&args)),
                ]));
                continue;
            }
            let aunit = loader.unit(&format!("action.d/{name}"))?.ok_or_else(|| {
                JailError::Jail(format!("Unable to read action {}", python_str_repr(&name)))
            })?;
            let mut reader = DefReader::new_action(aunit, &name, &self.name, args);
            reader.get_options(&as_vars(&self.opts), false)?;
            self.actions.push(ActionEntry::Command(Box::new(reader)));
        }
        if self.actions.is_empty() {
            loader
                .warnings
                .push(format!("No actions were defined for {}", self.name));
        }
        Ok(())
    }

    fn convert(
        &mut self,
        loader: &mut Loader,
        allow_no_files: bool,
    ) -> Result<Vec<Command>, ConfigError> {
        if let Some(e) = &self.config_error {
            return Ok(vec![vec![
                s("config-error"),
                Value::Str(format!(
                    "Jail '{}' skipped, because of wrong configuration: {e}",
                    self.name
                )),
            ]]);
        }
        let jail = s(&self.name);
        let mut stream = Vec::new();
        let mut filter_journalmatch = false;
        if let Some(f) = self.filter.as_mut() {
            let combined = f.get_combined(&[])?;
            filter_journalmatch = combined.iter().any(|(k, v)| {
                k == "journalmatch" && !matches!(v, Value::None) && !v.python_str().is_empty()
            });
            fill_stream(&mut stream, &combined, &self.name)?;
        }
        fill_stream(&mut stream, &self.opts, &self.name)?;
        let mut backend = opt_value(&self.opts, "backend")
            .map(Value::python_str)
            .unwrap_or_default();
        let mut logpaths = Vec::new();
        for (opt, value) in &self.opts {
            if opt == "logpath" {
                if backend.starts_with("systemd") {
                    continue;
                }
                let mut found = 0usize;
                for line in value.python_str().split('\n') {
                    let (path, tail) = match line.rsplit_once(' ') {
                        Some((p, t)) => (p, t),
                        None => (line, "head"),
                    };
                    let matches = glob(path);
                    if matches.is_empty() {
                        loader
                            .warnings
                            .push(format!("No file(s) found for glob {path}"));
                    }
                    for p in matches {
                        if !Path::new(&p).exists() {
                            loader.warnings.push(format!(
                                "File {p} is a dangling link, thus cannot be monitored"
                            ));
                            continue;
                        }
                        found += 1;
                        logpaths.push(vec![
                            s("set"),
                            jail.clone(),
                            s("addlogpath"),
                            s(&p),
                            s(tail),
                        ]);
                    }
                }
                if found == 0 {
                    let msg = format!("Have not found any log file for '{}' jail.", self.name);
                    let skip = opt_value(&self.opts, "skip_if_nologs") == Some(&Value::Bool(true));
                    let to_systemd =
                        opt_value(&self.opts, "systemd_if_nologs") != Some(&Value::Bool(false));
                    let jail_jm = opt_value(&self.opts, "journalmatch")
                        .is_some_and(|v| !v.python_str().is_empty());
                    if backend.starts_with("auto") && to_systemd && (jail_jm || filter_journalmatch)
                    {
                        backend = "systemd".to_string();
                        loader
                            .warnings
                            .push(format!("{msg} Trying systemd backend."));
                    } else if skip {
                        self.config_error = Some("missing log files".into());
                        return Ok(vec![vec![
                            s("config-error"),
                            Value::Str(format!(
                                "Jail '{}' skipped, because of missing log files.",
                                self.name
                            )),
                        ]]);
                    } else if !allow_no_files {
                        return Err(ConfigError::new(msg));
                    } else {
                        loader.warnings.push(msg);
                    }
                }
            } else if opt == "ignoreip" {
                let mut cmd = vec![s("set"), jail.clone(), s("addignoreip")];
                cmd.extend(splitwords(&value.python_str()).into_iter().map(Value::Str));
                stream.push(cmd);
            } else if !JAIL_IGNORED.contains(&opt.as_str()) {
                stream.push(vec![s("set"), jail.clone(), s(opt), value.clone()]);
            }
        }
        stream.extend(logpaths);
        for action in self.actions.iter_mut() {
            match action {
                ActionEntry::Command(r) => stream.extend(r.action_convert()?),
                ActionEntry::Python(cmd) => stream.push(cmd.clone()),
            }
        }
        stream.insert(0, vec![s("add"), jail, s(&backend)]);
        Ok(stream)
    }
}

/// Python `json.dumps` with default separators and ASCII escaping.
fn python_json_dumps(args: &OMap) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_json_str(&mut out, k, true);
        out.push_str(": ");
        push_json_str(&mut out, v, true);
    }
    out.push('}');
    out
}

enum JailError {
    Jail(String),
    Fatal(ConfigError),
}

impl From<ConfigError> for JailError {
    fn from(e: ConfigError) -> Self {
        JailError::Fatal(e)
    }
}

/// Result of reading a whole tree.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub stream: Vec<Command>,
    /// fail2ban's success rule: some enabled jail is fine, or no jail had an error.
    pub ok: bool,
    /// `-t` rule: no jail had an error.
    pub test_ok: bool,
    pub warnings: Vec<String>,
}

fn base_dir(conf_dir: &Path) -> Result<PathBuf, ConfigError> {
    let text = conf_dir.display().to_string();
    let trimmed = if text.len() > 1 {
        text.trim_end_matches('/')
    } else {
        text.as_str()
    };
    let base = PathBuf::from(if trimmed.is_empty() { "/" } else { trimmed });
    if !base.is_dir() {
        return Err(ConfigError::at(
            format!(
                "Base configuration directory {} does not exist",
                base.display()
            ),
            &base.display().to_string(),
        ));
    }
    Ok(base)
}

/// fail2ban 1.1.1+: a missing `fail2ban`/`jail` unit aborts the whole read.
fn unit_failed(what: &str, name: &str, base: &Path) -> ConfigError {
    let mut e = no_files(name, base);
    e.message = format!("{what} ({})", e.message);
    e
}

fn no_files(name: &str, base: &Path) -> ConfigError {
    ConfigError::at(
        format!(
            "Found no accessible config files for {} under {}",
            python_str_repr(name),
            base.display()
        ),
        &base.join(name).display().to_string(),
    )
}

const LOG_LEVELS: &[&str] = &[
    "CRITICAL",
    "FATAL",
    "ERROR",
    "WARN",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
    "TRACEDEBUG",
    "HEAVYDEBUG",
    "MSG",
    "NOTSET",
];

fn global_stream(loader: &mut Loader) -> Result<Vec<Command>, ConfigError> {
    let unit = loader.unit("fail2ban")?.ok_or_else(|| {
        unit_failed(
            "Read fail2ban configuration failed.",
            "fail2ban",
            &loader.base,
        )
    })?;
    let has_def = unit.has_section("Definition");
    let table: &[(&str, Option<&str>, Kind, i32)] = &[
        ("loglevel", Some("INFO"), Kind::Str, 12),
        ("logtarget", Some("/var/log/fail2ban.log"), Kind::Str, 13),
        ("syslogsocket", Some("auto"), Kind::Str, 11),
        ("allowipv6", Some("auto"), Kind::Str, 14),
        (
            "dbfile",
            Some("/var/lib/fail2ban/fail2ban.sqlite3"),
            Kind::Str,
            50,
        ),
        ("dbmaxmatches", None, Kind::Int, 51),
        ("dbpurgeage", Some("1d"), Kind::Str, 51),
    ];
    let mut entries: Vec<(i32, String, Value)> = Vec::new();
    for (name, default, kind, prio) in table {
        let raw = if has_def {
            unit.get("Definition", name, &[])?
        } else {
            None
        };
        let value = match (raw, default) {
            (Some(v), _) => convert(*kind, &v),
            (None, Some(d)) => s(d),
            (None, None) if !has_def => Value::None,
            (None, None) => continue,
        };
        entries.push((*prio, name.to_string(), value));
    }
    if let Some((_, _, Value::Str(level))) = entries.iter().find(|(_, n, _)| n == "loglevel") {
        let up = level.to_uppercase();
        if !level.chars().all(|c| c.is_ascii_digit()) && !LOG_LEVELS.contains(&up.as_str()) {
            return Err(
                ConfigError::new(format!("Invalid log level {}", python_str_repr(level)))
                    .or_file(unit.origin("Definition", "loglevel").as_deref()),
            );
        }
    }
    if unit.has_section("Thread") {
        if let Some(v) = unit.get("Thread", "stacksize", &[])? {
            entries.push((
                0,
                "thread".into(),
                Value::Dict(vec![("stacksize".into(), convert(Kind::Int, &v))]),
            ));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(entries
        .into_iter()
        .map(|(_, n, v)| vec![s("set"), Value::Str(n), v])
        .collect())
}

fn read_jail_unit(loader: &mut Loader) -> Result<Unit, ConfigError> {
    let unit = loader
        .unit("jail")?
        .ok_or_else(|| unit_failed("Read jails configuration failed.", "jail", &loader.base))?;
    let mut unit = (*unit).clone();
    omap_set(
        &mut unit.defaults,
        "fail2ban_version",
        FAIL2BAN_VERSION.to_string(),
    );
    omap_set(
        &mut unit.defaults,
        "fail2ban_confpath",
        loader.base.display().to_string(),
    );
    Ok(unit)
}

fn load_inner(loader: &mut Loader, allow_no_files: bool) -> Result<Loaded, ConfigError> {
    let mut stream = global_stream(loader)?;
    let mut unit = read_jail_unit(loader)?;
    let mut jails = Vec::new();
    let mut status = 0u8;
    for sec in unit.section_names() {
        if sec == "INCLUDES" {
            continue;
        }
        let mut jail = JailReader::new(&sec, false);
        if jail.get_options(loader, &mut unit, &OMap::new())? {
            if jail.is_enabled() {
                status |= 1;
                jails.push(jail);
            }
        } else {
            status |= 2;
            jails.push(jail);
        }
    }
    for jail in jails.iter_mut() {
        let block = jail
            .convert(loader, allow_no_files)
            .map_err(|e| e.or_file(unit.origin(&jail.name, "logpath").as_deref()))?;
        stream.extend(block);
    }
    for jail in &jails {
        if jail.config_error.is_none() {
            stream.push(vec![s("start"), s(&jail.name)]);
        }
    }
    Ok(Loaded {
        stream,
        ok: status & 1 != 0 || status & 2 == 0,
        test_ok: status & 2 == 0,
        warnings: std::mem::take(&mut loader.warnings),
    })
}

/// Read the whole tree as `fail2ban-client -d` does.
pub fn load(conf_dir: &Path) -> Result<Loaded, ConfigError> {
    let base = base_dir(conf_dir)?;
    let mut loader = Loader::new(&base);
    load_inner(&mut loader, true)
}

/// Read the whole tree as `fail2ban-client -t` does: like [`load`], but a
/// jail without any log file is a fatal error (dump mode only warns).
pub fn load_for_test(conf_dir: &Path) -> Result<Loaded, ConfigError> {
    let base = base_dir(conf_dir)?;
    let mut loader = Loader::new(&base);
    load_inner(&mut loader, false)
}

fn filter_reader_stream(
    unit: Rc<Unit>,
    args: &[(String, String)],
    jail_name: &str,
) -> Result<Vec<Command>, ConfigError> {
    let mut init = OMap::new();
    for (k, v) in args {
        omap_set(&mut init, k, v.clone());
    }
    let mut reader = DefReader::new_filter(unit, jail_name, init);
    reader.apply_auto_options("auto");
    reader.get_options(&OMap::new(), false)?;
    reader.filter_convert()
}

/// The filter part of a stream for jail `jail_name` (`spec` = `sshd` or
/// `sshd[mode=aggressive]`; `extra` are additional init options).
pub fn filter_stream(
    conf_dir: &Path,
    spec: &str,
    jail_name: &str,
    extra: &[(String, String)],
) -> Result<Vec<Command>, ConfigError> {
    let base = base_dir(conf_dir)?;
    let (name, mut args) = extract_options(spec).map_err(|e| {
        ConfigError::new(format!(
            "Invalid filter definition {}: {e}",
            python_str_repr(spec)
        ))
    })?;
    for (k, v) in extra {
        omap_set(&mut args, k, v.clone());
    }
    let mut loader = Loader::new(&base);
    let unit = loader
        .unit(&format!("filter.d/{name}"))?
        .ok_or_else(|| no_files(&format!("filter.d/{name}"), &base))?;
    filter_reader_stream(unit, &args, jail_name)
}

/// Same for a filter file outside `filter.d`, read alone with its includes.
pub fn filter_file_stream(
    path: &Path,
    args: &[(String, String)],
    jail_name: &str,
) -> Result<Vec<Command>, ConfigError> {
    let mut cache = FileCache::default();
    if cache.get(path)?.is_none() {
        let shown = path.display().to_string();
        return Err(ConfigError::at(
            format!("Unable to read the filter {}", python_str_repr(&shown)),
            &shown,
        ));
    }
    let unit = Unit::from_files(&mut cache, &[path.to_path_buf()])?;
    filter_reader_stream(Rc::new(unit), args, jail_name)
}

/// The block of one jail (forced enabled) if the tree has it.
pub fn jail_stream(
    conf_dir: &Path,
    jail: &str,
    extra: &[(String, String)],
) -> Result<Option<Vec<Command>>, ConfigError> {
    let base = base_dir(conf_dir)?;
    let mut loader = Loader::new(&base);
    let mut unit = read_jail_unit(&mut loader)?;
    if jail == "INCLUDES" || !unit.section_names().iter().any(|n| n == jail) {
        return Ok(None);
    }
    let add: OMap = extra.to_vec();
    let mut reader = JailReader::new(jail, true);
    reader.get_options(&mut loader, &mut unit, &add)?;
    reader.convert(&mut loader, true).map(Some)
}

/// `fail2ban.conf` options the server needs before anything else (spec 1.11).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyOptions {
    pub socket: String,
    pub pidfile: String,
}

/// Read `socket` and `pidfile` from the `fail2ban` unit (`[Definition]`, `[DEFAULT]` fallback).
pub fn early_options(conf_dir: &Path) -> Result<EarlyOptions, ConfigError> {
    let base = base_dir(conf_dir)?;
    let mut loader = Loader::new(&base);
    let unit = loader
        .unit("fail2ban")?
        .ok_or_else(|| no_files("fail2ban", &loader.base))?;
    let has_def = unit.has_section("Definition");
    let get = |name: &str, default: &str| -> Result<String, ConfigError> {
        let raw = if has_def {
            unit.get("Definition", name, &[])?
        } else {
            None
        };
        Ok(raw.unwrap_or_else(|| default.to_string()))
    };
    Ok(EarlyOptions {
        socket: get("socket", "/var/run/fail2ban/fail2ban.sock")?,
        pidfile: get("pidfile", "/var/run/fail2ban/fail2ban.pid")?,
    })
}
