//! fail2ban's INI dialect: Python `configparser` line rules for one file,
//! `[INCLUDES]` expansion, merging of a unit's files (with `KNOWN/` history
//! and conditional sections) and `%(...)s` interpolation.

use super::value::python_str_repr;
use super::ConfigError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Ordered option map (insertion order matters everywhere in fail2ban).
pub type OMap = Vec<(String, String)>;

pub fn omap_get<'a>(map: &'a [(String, String)], key: &str) -> Option<&'a str> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Python `dict[key] = value`: replace in place or append.
pub fn omap_set(map: &mut OMap, key: &str, value: String) {
    match map.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => map.push((key.to_string(), value)),
    }
}

/// One parsed file, before merging.
#[derive(Debug, Default, Clone)]
pub struct ParsedFile {
    pub defaults: OMap,
    pub sections: Vec<(String, OMap)>,
}

const DEFAULT_SECTION: &str = "DEFAULT";

/// Parse one file's text with Python `ConfigParser(strict=True,
/// inline_comment_prefixes=";")` rules. `source` names the file in errors.
pub fn parse_ini(text: &str, source: &str) -> Result<ParsedFile, ConfigError> {
    let mut file = ParsedFile::default();
    // Current section: None = before any header, Some(None) = DEFAULT, Some(Some(i)) = sections[i].
    let mut cursect: Option<Option<usize>> = None;
    let mut optname: Option<String> = None;
    let mut indent_level = 0usize;
    let mut seen_sections: Vec<String> = Vec::new();
    let mut seen_options: Vec<(String, String)> = Vec::new();
    let mut sectname = String::new();
    // Values are collected as line lists and joined at the end (like configparser).
    let mut values: HashMap<(Option<usize>, String), Vec<String>> = HashMap::new();

    for (idx, raw_line) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        // inline `;` comments: only at column 0 or after whitespace
        let chars: Vec<char> = line.chars().collect();
        let mut comment_start: Option<usize> = None;
        for (i, c) in chars.iter().enumerate() {
            if *c == ';' && (i == 0 || chars[i - 1].is_whitespace()) {
                comment_start = Some(i);
                break;
            }
        }
        let trimmed_full = line.trim();
        if trimmed_full.starts_with('#') || trimmed_full.starts_with(';') {
            comment_start = Some(0);
        }
        let kept: String = match comment_start {
            Some(i) => chars[..i].iter().collect(),
            None => line.to_string(),
        };
        let value = kept.trim();
        if value.is_empty() {
            if comment_start.is_none() {
                if let (Some(sect), Some(name)) = (cursect, optname.as_ref()) {
                    if let Some(lines) = values.get_mut(&(sect, name.clone())) {
                        lines.push(String::new());
                    }
                }
            }
            continue;
        }
        let cur_indent = chars.iter().position(|c| !c.is_whitespace()).unwrap_or(0);
        if let (Some(sect), Some(name), true) =
            (cursect, optname.as_ref(), cur_indent > indent_level)
        {
            if let Some(lines) = values.get_mut(&(sect, name.clone())) {
                lines.push(value.to_string());
            }
            continue;
        }
        indent_level = cur_indent;
        if let Some(header) = section_header(value) {
            if header == DEFAULT_SECTION {
                cursect = Some(None);
            } else if let Some(i) = file.sections.iter().position(|(n, _)| n == header) {
                if seen_sections.iter().any(|s| s == header) {
                    return Err(ConfigError::at(
                        format!(
                            "While reading from {} [line {lineno:2}]: section {} already exists",
                            python_str_repr(source),
                            python_str_repr(header)
                        ),
                        source,
                    ));
                }
                cursect = Some(Some(i));
            } else {
                file.sections.push((header.to_string(), OMap::new()));
                seen_sections.push(header.to_string());
                cursect = Some(Some(file.sections.len() - 1));
            }
            sectname = header.to_string();
            optname = None;
            continue;
        }
        let Some(sect) = cursect else {
            return Err(ConfigError::at(
                format!(
                    "File contains no section headers.\nfile: {}, line: {lineno}\n{}",
                    python_str_repr(source),
                    python_str_repr(&format!("{line}\n"))
                ),
                source,
            ));
        };
        let delim = value.find(['=', ':']);
        let name = delim.map(|d| value[..d].trim_end());
        match (delim, name) {
            (Some(d), Some(name)) if !name.is_empty() => {
                let name = name.to_lowercase();
                if seen_options
                    .iter()
                    .any(|(s, o)| *s == sectname && *o == name)
                {
                    return Err(ConfigError::at(
                        format!(
                            "While reading from {} [line {lineno:2}]: option {} in section {} already exists",
                            python_str_repr(source),
                            python_str_repr(&name),
                            python_str_repr(&sectname)
                        ),
                        source,
                    ));
                }
                seen_options.push((sectname.clone(), name.clone()));
                let optval = value[d + 1..].trim().to_string();
                let target = match sect {
                    None => &mut file.defaults,
                    Some(i) => &mut file.sections[i].1,
                };
                omap_set(target, &name, String::new());
                values.insert((sect, name.clone()), vec![optval]);
                optname = Some(name);
            }
            _ => {
                return Err(ConfigError::at(
                    format!(
                        "Source contains parsing errors: {}\n\t[line {lineno:2}]: {}",
                        python_str_repr(source),
                        python_str_repr(&format!("{line}\n"))
                    ),
                    source,
                ));
            }
        }
    }
    // join multi-line values; trailing empty lines (and whitespace) go away
    let join = |sect: Option<usize>, map: &mut OMap| {
        for (k, v) in map.iter_mut() {
            if let Some(lines) = values.get(&(sect, k.clone())) {
                *v = lines.join("\n").trim_end().to_string();
            }
        }
    };
    join(None, &mut file.defaults);
    for (i, (_, map)) in file.sections.iter_mut().enumerate() {
        join(Some(i), map);
    }
    Ok(file)
}

/// `[header]`: text between the first `[` and the last `]` (Python SECTCRE).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    if end == 0 {
        return None;
    }
    Some(&rest[..end])
}

/// Parsed-file cache shared by all units of one load (fail2ban shares them too).
#[derive(Default)]
pub struct FileCache {
    parsed: HashMap<PathBuf, Option<Rc<ParsedFile>>>,
}

impl FileCache {
    /// Parse a file once. `Ok(None)` if it does not exist or cannot be read
    /// or decoded (fail2ban skips such included files).
    pub fn get(&mut self, path: &Path) -> Result<Option<Rc<ParsedFile>>, ConfigError> {
        if let Some(p) = self.parsed.get(path) {
            return Ok(p.clone());
        }
        let parsed = match std::fs::read(path) {
            Ok(bytes) if path.is_file() => match String::from_utf8(bytes) {
                Ok(text) => Some(Rc::new(parse_ini(&text, &path.display().to_string())?)),
                Err(_) => None,
            },
            _ => None,
        };
        self.parsed.insert(path.to_path_buf(), parsed.clone());
        Ok(parsed)
    }
}

/// Deepest include nesting accepted; Python would overflow its stack on
/// non-ancestor include cycles, we stop with an error instead.
const MAX_INCLUDE_DEPTH: usize = 64;

fn local_companion(path: &Path) -> PathBuf {
    path.with_extension("local")
}

/// `_expandConfFilesWithLocal` + `__getIncludesUncached` for a list of files.
fn expand_includes(
    cache: &mut FileCache,
    files: &[PathBuf],
    seen: &[PathBuf],
    out: &mut Vec<PathBuf>,
) -> Result<(), ConfigError> {
    if seen.len() > MAX_INCLUDE_DEPTH {
        let last = seen
            .last()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        return Err(ConfigError::at(
            format!("Include nesting too deep in {last:?}"),
            &last,
        ));
    }
    let mut expanded: Vec<PathBuf> = Vec::new();
    for f in files {
        expanded.push(f.clone());
        let local = local_companion(f);
        if !files.contains(&local) && local.is_file() {
            expanded.push(local);
        }
    }
    for resource in expanded {
        let Some(parsed) = cache.get(&resource)? else {
            continue;
        };
        let dir = resource.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut before = Vec::new();
        let mut after = Vec::new();
        if let Some((_, inc)) = parsed.sections.iter().find(|(n, _)| n == "INCLUDES") {
            for (key, list) in [("before", &mut before), ("after", &mut after)] {
                let Some(v) = omap_get(inc, key).or_else(|| omap_get(&parsed.defaults, key)) else {
                    continue;
                };
                for name in v.split('\n') {
                    let r = if Path::new(name).is_absolute() {
                        PathBuf::from(name)
                    } else {
                        dir.join(name)
                    };
                    if seen.contains(&r) {
                        continue;
                    }
                    let mut chain = seen.to_vec();
                    chain.push(resource.clone());
                    expand_includes(cache, &[r], &chain, list)?;
                }
            }
        }
        out.extend(before);
        out.push(resource);
        out.extend(after);
    }
    Ok(())
}

/// A merged configuration unit (`jail`, `filter.d/sshd`, ...).
#[derive(Debug, Default, Clone)]
pub struct Unit {
    /// Files applied, in order (with repetitions, as fail2ban).
    pub files: Vec<PathBuf>,
    pub defaults: OMap,
    /// Sections in order of first appearance, including hidden `KNOWN/*`.
    pub sections: Vec<(String, OMap)>,
    index: HashMap<String, usize>,
}

/// `^(\w+)(\?.+)$`: split a conditional name into base and `?cond`.
pub fn split_conditional(name: &str) -> Option<(&str, &str)> {
    let q = name.find('?')?;
    let base = &name[..q];
    if base.is_empty()
        || q + 1 >= name.len()
        || !base.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((base, &name[q..]))
}

/// Files of unit `name` under `base`, in fail2ban's order, existing only.
pub fn unit_files(base: &Path, name: &str) -> Vec<PathBuf> {
    let basename = base.join(name);
    let stem = basename.display().to_string();
    let mut list = vec![PathBuf::from(format!("{stem}.conf"))];
    let dir = PathBuf::from(format!("{stem}.d"));
    let in_dir = |ext: &str| -> Vec<PathBuf> {
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| !n.starts_with('.') && n.ends_with(ext))
                    .map(|n| dir.join(n).display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found.into_iter().map(PathBuf::from).collect()
    };
    list.extend(in_dir(".conf"));
    list.push(PathBuf::from(format!("{stem}.local")));
    list.extend(in_dir(".local"));
    list.into_iter().filter(|p| p.exists()).collect()
}

/// Interpolation variables (already lower-cased keys, like configparser's `vars`).
pub type Vars = [(String, String)];

impl Unit {
    /// Read unit `name` under `base` (1.1 + includes). `Ok(None)` when no file exists.
    pub fn read(
        cache: &mut FileCache,
        base: &Path,
        name: &str,
    ) -> Result<Option<Unit>, ConfigError> {
        let files = unit_files(base, name);
        if files.is_empty() {
            return Ok(None);
        }
        for f in &files {
            if std::fs::read(f)
                .map(|b| String::from_utf8(b).is_err())
                .unwrap_or(true)
            {
                let shown = f.display().to_string();
                return Err(ConfigError::at(
                    format!("Error decoding config file '{shown}'"),
                    &shown,
                ));
            }
        }
        Self::from_files(cache, &files).map(Some)
    }

    /// Read explicit files with their includes (no `.d`/`.local` unit lookup).
    pub fn from_files(cache: &mut FileCache, files: &[PathBuf]) -> Result<Unit, ConfigError> {
        let mut full = Vec::new();
        expand_includes(cache, files, &[], &mut full)?;
        let mut unit = Unit::default();
        for f in &full {
            if let Some(parsed) = cache.get(f)? {
                unit.merge(&parsed);
                unit.files.push(f.clone());
            }
        }
        Ok(unit)
    }

    fn merge(&mut self, parsed: &ParsedFile) {
        for (k, v) in &parsed.defaults {
            omap_set(&mut self.defaults, k, v.clone());
        }
        for (name, opts) in &parsed.sections {
            let (name, opts): (&str, OMap) = match split_conditional(name) {
                Some((base, cond)) => (
                    base,
                    opts.iter()
                        .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                        .collect(),
                ),
                None => (name.as_str(), opts.clone()),
            };
            if let Some(&i) = self.index.get(name) {
                let previous: OMap = self.sections[i]
                    .1
                    .iter()
                    .filter(|(k, _)| omap_get(&opts, k).is_some())
                    .cloned()
                    .collect();
                let known = self.section_mut(&format!("KNOWN/{name}"));
                for (k, v) in previous {
                    omap_set(known, &k, v);
                }
                let sect = &mut self.sections[i].1;
                for (k, v) in opts {
                    omap_set(sect, &k, v);
                }
            } else {
                self.index.insert(name.to_string(), self.sections.len());
                self.sections.push((name.to_string(), opts));
            }
        }
    }

    /// Section options, creating the section if needed (fail2ban `merge_section`).
    pub fn section_mut(&mut self, name: &str) -> &mut OMap {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.index.insert(name.to_string(), self.sections.len());
                self.sections.push((name.to_string(), OMap::new()));
                self.sections.len() - 1
            }
        };
        &mut self.sections[i].1
    }

    pub fn section(&self, name: &str) -> Option<&OMap> {
        self.index.get(name).map(|&i| &self.sections[i].1)
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Visible sections (without `KNOWN/*`), in order.
    pub fn section_names(&self) -> Vec<String> {
        self.sections
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !n.starts_with("KNOWN/"))
            .collect()
    }

    /// Raw value lookup: section, then `[DEFAULT]`.
    pub fn raw(&self, section: &str, option: &str) -> Option<&str> {
        self.section(section)
            .and_then(|s| omap_get(s, option))
            .or_else(|| omap_get(&self.defaults, option))
    }

    /// Python `ConfigParser.get(section, option, vars=vars)`: `Ok(None)` for a
    /// missing section or option, `Err` for interpolation errors.
    pub fn get(
        &self,
        section: &str,
        option: &str,
        vars: &Vars,
    ) -> Result<Option<String>, ConfigError> {
        let option = option.to_lowercase();
        let sect = if section == DEFAULT_SECTION {
            None
        } else {
            match self.section(section) {
                Some(s) => Some(s),
                None => return Ok(None),
            }
        };
        let raw = omap_get(vars, &option)
            .or_else(|| sect.and_then(|s| omap_get(s, &option)))
            .or_else(|| omap_get(&self.defaults, &option));
        let Some(raw) = raw else {
            return Ok(None);
        };
        let mut ctx = Interp {
            unit: self,
            section,
            option: &option,
            rawval: raw,
            vars,
            sect,
            extra: vec![("__name__".to_string(), section.to_string())],
        };
        let mut out = String::new();
        match ctx.interpolate(raw, 1, &mut out) {
            Ok(()) => Ok(Some(out)),
            Err(mut e) => {
                if e.file.is_none() {
                    e.file = self
                        .origin(section, &option)
                        .map(|p| p.display().to_string());
                }
                Err(e)
            }
        }
    }

    /// Own option names of a section (without `[DEFAULT]`).
    pub fn own_options(&self, section: &str) -> Vec<String> {
        self.section(section)
            .map(|s| s.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    /// Option names of a section including `[DEFAULT]` ones.
    pub fn options_with_default(&self, section: &str) -> Vec<String> {
        let mut names = self.own_options(section);
        for (k, _) in &self.defaults {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        names
    }

    /// The last file of this unit that defines `option` in `section` (for error messages).
    pub fn origin(&self, section: &str, option: &str) -> Option<PathBuf> {
        let mut found = None;
        let mut cache = FileCache::default();
        for f in &self.files {
            if let Ok(Some(p)) = cache.get(f) {
                let in_sect = p.sections.iter().any(|(n, o)| {
                    let base = split_conditional(n).map(|(b, _)| b).unwrap_or(n);
                    base == section && omap_get(o, option).is_some()
                });
                if in_sect || omap_get(&p.defaults, option).is_some() {
                    found = Some(f.clone());
                }
            }
        }
        found.or_else(|| self.files.last().cloned())
    }

    /// fail2ban's `get_ex`: `sec/opt`, `known/opt`, `default/opt` names.
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: &Vars,
    ) -> Result<Option<String>, ConfigError> {
        if let Some((sec, opt)) = option.split_once('/') {
            let valid_sec = !sec.is_empty()
                && sec
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            let valid_opt = !opt.is_empty() && !opt.chars().any(|c| c.is_whitespace() || c == '>');
            if valid_sec && valid_opt {
                let lower = sec.to_lowercase();
                let candidates: Vec<String> = if lower == "known" {
                    vec![format!("KNOWN/{section}"), section.to_string()]
                } else if lower == "default" {
                    vec![DEFAULT_SECTION.to_string()]
                } else {
                    vec![sec.to_string()]
                };
                for s in candidates {
                    if s != DEFAULT_SECTION && !self.has_section(&s) {
                        continue;
                    }
                    if let Some(v) = self.get(&s, opt, &[])? {
                        return Ok(Some(v));
                    }
                }
            }
        }
        self.get(section, option, vars)
    }
}

const MAX_INTERPOLATION_DEPTH: usize = 10;

struct Interp<'a> {
    unit: &'a Unit,
    section: &'a str,
    option: &'a str,
    rawval: &'a str,
    vars: &'a Vars,
    sect: Option<&'a OMap>,
    /// `__name__` and mapped `sec/opt` references (Python's map copy).
    extra: Vec<(String, String)>,
}

impl Interp<'_> {
    fn lookup(&self, key: &str) -> Option<String> {
        omap_get(&self.extra, key)
            .or_else(|| omap_get(self.vars, key))
            .or_else(|| self.sect.and_then(|s| omap_get(s, key)))
            .or_else(|| omap_get(&self.unit.defaults, key))
            .map(str::to_string)
    }

    fn err(&self, text: String) -> ConfigError {
        ConfigError::interp(text, self.section, self.option)
    }

    /// `_map_section_options`: make `%(sec/opt)s` references resolvable.
    fn map_section_options(&mut self, rest: &str) {
        if !rest.contains('/') || !rest.contains("%(") {
            return;
        }
        let mut pos = 0;
        while let Some(start) = rest[pos..].find("%(") {
            let begin = pos + start + 2;
            pos = begin;
            let Some(close) = rest[begin..].find(')') else {
                break;
            };
            let sopt = &rest[begin..begin + close];
            if !rest[begin + close..].starts_with(")s") {
                continue;
            }
            let Some((sec, opt)) = sopt.split_once('/') else {
                continue;
            };
            if sec.is_empty()
                || opt.is_empty()
                || !sec
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                continue;
            }
            if self.lookup(sopt).is_some() {
                continue;
            }
            let seclwr = sec.to_lowercase();
            let mut value: Option<String> = None;
            let mut usedef = seclwr == "default";
            if !usedef {
                if seclwr == "known" {
                    match self
                        .unit
                        .section(&format!("KNOWN/{}", self.section))
                        .and_then(|s| omap_get(s, opt))
                    {
                        Some(v) => value = Some(v.to_string()),
                        None => usedef = true,
                    }
                } else {
                    let Some(s) = self.unit.section(sec) else {
                        continue;
                    };
                    match omap_get(s, opt) {
                        Some(v) => value = Some(v.to_string()),
                        None => usedef = true,
                    }
                }
            }
            if usedef {
                value = omap_get(&self.unit.defaults, opt).map(str::to_string);
            }
            if let Some(v) = value {
                self.extra.push((sopt.to_string(), v));
            }
        }
    }

    fn interpolate(
        &mut self,
        rest: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(self.err(format!(
                "Recursion limit exceeded in value substitution: option {} in section {} contains an interpolation key which cannot be substituted in {} steps. Raw value: {}",
                python_str_repr(self.option),
                python_str_repr(self.section),
                MAX_INTERPOLATION_DEPTH,
                python_str_repr(self.rawval)
            )));
        }
        self.map_section_options(rest);
        let mut rest = rest;
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                out.push_str(rest);
                return Ok(());
            };
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            let next = rest[1..].chars().next();
            match next {
                Some('%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some('(') => {
                    let close = rest
                        .find(')')
                        .filter(|&c| c > 2 && rest[c..].starts_with(")s"));
                    let Some(close) = close else {
                        return Err(self.err(format!(
                            "bad interpolation variable reference {}",
                            python_str_repr(rest)
                        )));
                    };
                    let var = rest[2..close].to_lowercase();
                    rest = &rest[close + 2..];
                    let Some(v) = self.lookup(&var) else {
                        return Err(self.err(format!(
                            "Bad value substitution: option {} in section {} contains an interpolation key {} which is not a valid option name. Raw value: {}",
                            python_str_repr(self.option),
                            python_str_repr(self.section),
                            python_str_repr(&var),
                            python_str_repr(self.rawval)
                        )));
                    };
                    if v.contains('%') {
                        self.interpolate(&v, depth + 1, out)?;
                    } else {
                        out.push_str(&v);
                    }
                }
                _ => {
                    return Err(self.err(format!(
                        "'%' must be followed by '%' or '(', found: {}",
                        python_str_repr(rest)
                    )));
                }
            }
        }
        Ok(())
    }
}
