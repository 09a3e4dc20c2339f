//! Jail definitions read from the command stream, the way fail2ban's server applies it:
//! `add J backend`, then `set J ...` / `multi-set J ...` commands, then `start J`.
//!
//! This is plain data; the server turns it into running jails.

use crate::config::{Command, Value};

/// Server-wide settings from the stream's global `set` commands.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalSettings {
    pub loglevel: String,
    pub logtarget: String,
    pub dbfile: Option<String>,
    pub dbpurgeage: String,
    pub dbmaxmatches: i64,
}

impl Default for GlobalSettings {
    fn default() -> Self {
        GlobalSettings {
            loglevel: "INFO".into(),
            logtarget: "STDERR".into(),
            dbfile: None,
            dbpurgeage: "1d".into(),
            dbmaxmatches: 10,
        }
    }
}

/// One action of a jail: its name and its properties in stream order.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpec {
    pub name: String,
    pub props: Vec<(String, String)>,
}

/// One log file of a jail and where to start reading it when no position is known.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPath {
    pub path: String,
    pub tail: bool,
}

/// Everything the stream says about one jail.
#[derive(Debug, Clone, PartialEq)]
pub struct JailSettings {
    pub name: String,
    pub backend: String,
    /// The filter's commands (prefregex, addfailregex, maxlines, datepattern, usedns, ...),
    /// kept as commands so the filter module applies them with its own rules.
    pub filter_commands: Vec<Command>,
    pub logpaths: Vec<LogPath>,
    pub logencoding: String,
    pub ignoreip: Vec<String>,
    pub ignoreself: bool,
    pub ignorecommand: String,
    pub ignorecache: String,
    pub maxretry: i64,
    pub maxmatches: i64,
    pub findtime: String,
    pub bantime: String,
    /// `bantime.*` options (increment, factor, formula, multipliers, maxtime, rndtime,
    /// overalljails) by their name after `bantime.`.
    pub bantime_extra: Vec<(String, String)>,
    pub actions: Vec<ActionSpec>,
    /// ironban extension: options fail2ban does not know, kept by name (e.g. `successfilter`).
    pub extra: Vec<(String, String)>,
    pub started: bool,
}

impl JailSettings {
    fn new(name: &str, backend: &str) -> Self {
        JailSettings {
            name: name.to_string(),
            backend: backend.to_string(),
            filter_commands: Vec::new(),
            logpaths: Vec::new(),
            logencoding: "auto".into(),
            ignoreip: Vec::new(),
            ignoreself: true,
            ignorecommand: String::new(),
            ignorecache: String::new(),
            maxretry: 3,
            maxmatches: 5,
            findtime: "600".into(),
            bantime: "600".into(),
            bantime_extra: Vec::new(),
            actions: Vec::new(),
            extra: Vec::new(),
            started: false,
        }
    }

    /// A `bantime.<key>` option, if set.
    pub fn bantime_option(&self, key: &str) -> Option<&str> {
        self.bantime_extra
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The stream, read: global settings, jails in stream order, and config errors to log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub global: GlobalSettings,
    pub jails: Vec<JailSettings>,
    pub config_errors: Vec<String>,
}

/// Filter options the filter module consumes (fail2ban's jail `set` commands for them).
const FILTER_OPTIONS: &[&str] = &[
    "usedns",
    "prefregex",
    "maxlines",
    "addfailregex",
    "addignoreregex",
    "datepattern",
    "logtimezone",
    "addjournalmatch",
];

/// Apply a whole stream. Unknown commands are errors naming the command, as the server
/// would refuse them.
pub fn read_stream(stream: &[Command]) -> Result<Settings, String> {
    let mut settings = Settings::default();
    for cmd in stream {
        apply(&mut settings, cmd).map_err(|e| format!("{e} in command {}", show(cmd)))?;
    }
    Ok(settings)
}

fn show(cmd: &Command) -> String {
    Value::List(cmd.clone()).python_repr()
}

fn text(v: Option<&Value>) -> Result<String, String> {
    match v {
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        Some(Value::Bool(b)) => Ok(if *b { "true".into() } else { "false".into() }),
        Some(Value::None) => Err("missing value".into()),
        Some(other) => Err(format!("unexpected value {}", other.python_repr())),
        None => Err("missing argument".into()),
    }
}

fn int(v: Option<&Value>) -> Result<i64, String> {
    match v {
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Str(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("invalid integer {s:?}")),
        Some(Value::None) | None => Err("invalid integer None".into()),
        Some(other) => Err(format!("invalid integer {}", other.python_repr())),
    }
}

fn boolean(v: Option<&Value>) -> Result<bool, String> {
    match v {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Int(i)) => Ok(*i != 0),
        Some(Value::Str(s)) => Ok(matches!(
            s.to_lowercase().as_str(),
            "1" | "on" | "true" | "yes"
        )),
        _ => Err("invalid boolean".into()),
    }
}

fn apply(settings: &mut Settings, cmd: &Command) -> Result<(), String> {
    let verb = cmd.first().and_then(Value::as_str).unwrap_or("");
    match verb {
        "add" => {
            let name = text(cmd.get(1))?;
            if settings.jails.iter().any(|j| j.name == name) {
                return Err(format!("The jail '{name}' already exists"));
            }
            let backend = cmd
                .get(2)
                .map(|v| text(Some(v)))
                .transpose()?
                .unwrap_or_else(|| "auto".into());
            settings.jails.push(JailSettings::new(&name, &backend));
            Ok(())
        }
        "start" => {
            jail_mut(settings, cmd.get(1))?.started = true;
            Ok(())
        }
        "config-error" => {
            settings.config_errors.push(text(cmd.get(1))?);
            Ok(())
        }
        "set" | "multi-set" if cmd.len() == 3 => apply_global(&mut settings.global, cmd),
        "set" | "multi-set" => {
            let jail = jail_mut(settings, cmd.get(1))?;
            apply_jail(jail, verb, cmd)
        }
        other => Err(format!("Invalid command {other:?}")),
    }
}

fn jail_mut<'a>(
    settings: &'a mut Settings,
    name: Option<&Value>,
) -> Result<&'a mut JailSettings, String> {
    let name = text(name)?;
    settings
        .jails
        .iter_mut()
        .find(|j| j.name == name)
        .ok_or_else(|| format!("Sorry but the jail '{name}' does not exist"))
}

fn apply_global(global: &mut GlobalSettings, cmd: &Command) -> Result<(), String> {
    let option = text(cmd.get(1))?;
    let value = cmd.get(2);
    match option.as_str() {
        "loglevel" => global.loglevel = text(value)?,
        "logtarget" => global.logtarget = text(value)?,
        "dbfile" => {
            let file = text(value)?;
            global.dbfile = (!file.eq_ignore_ascii_case("none")).then_some(file);
        }
        "dbpurgeage" => global.dbpurgeage = text(value)?,
        "dbmaxmatches" => global.dbmaxmatches = int(value)?,
        // Accepted and without effect here, as on a fail2ban server without syslog.
        "syslogsocket" | "allowipv6" | "thread" => {}
        other => return Err(format!("Invalid command (set {other})")),
    }
    Ok(())
}

fn apply_jail(jail: &mut JailSettings, verb: &str, cmd: &Command) -> Result<(), String> {
    let option = text(cmd.get(2))?;
    let value = cmd.get(3);
    if FILTER_OPTIONS.contains(&option.as_str()) {
        jail.filter_commands.push(cmd.clone());
        return Ok(());
    }
    match option.as_str() {
        "addlogpath" => {
            let path = text(value)?;
            let tail = match cmd.get(4).map(|v| text(Some(v))).transpose()? {
                None => false,
                Some(mode) if mode == "head" => false,
                Some(mode) if mode == "tail" => true,
                Some(_) => return Err("File option must be 'head' or 'tail'".into()),
            };
            jail.logpaths.push(LogPath { path, tail });
        }
        "addignoreip" => {
            for word in &cmd[3..] {
                jail.ignoreip.push(text(Some(word))?);
            }
        }
        "logencoding" => jail.logencoding = text(value)?,
        "ignoreself" => jail.ignoreself = boolean(value)?,
        "ignorecommand" => jail.ignorecommand = text(value)?,
        "ignorecache" => jail.ignorecache = text(value)?,
        "maxretry" => jail.maxretry = int(value)?,
        "maxmatches" => jail.maxmatches = int(value)?,
        "findtime" => jail.findtime = text(value)?,
        "bantime" => jail.bantime = text(value)?,
        "addaction" => {
            let name = text(value)?;
            if cmd.len() > 4 {
                return Err(format!(
                    "Python action '{name}' is not supported by ironban"
                ));
            }
            if jail.actions.iter().any(|a| a.name == name) {
                return Err(format!("Action {name} already exists"));
            }
            jail.actions.push(ActionSpec {
                name,
                props: Vec::new(),
            });
        }
        "action" => {
            let name = text(value)?;
            let action = jail
                .actions
                .iter_mut()
                .find(|a| a.name == name)
                .ok_or_else(|| format!("Invalid Action name: {name}"))?;
            if verb == "multi-set" {
                let Some(Value::List(pairs)) = cmd.get(4) else {
                    return Err("expected a list of [property, value] pairs".into());
                };
                for pair in pairs {
                    let Value::List(kv) = pair else {
                        return Err("expected a [property, value] pair".into());
                    };
                    set_prop(action, text(kv.first())?, action_value(kv.get(1))?);
                }
            } else {
                set_prop(action, text(cmd.get(4))?, action_value(cmd.get(5))?);
            }
        }
        key if key.starts_with("bantime.") => {
            let v = text(value).unwrap_or_default();
            jail.bantime_extra
                .push((key["bantime.".len()..].to_string(), v));
        }
        key => {
            jail.extra.push((key.to_string(), text(value)?));
        }
    }
    Ok(())
}

/// Action property values arrive as strings or, for the bool options, as booleans.
fn action_value(v: Option<&Value>) -> Result<String, String> {
    match v {
        Some(Value::Bool(b)) => Ok(if *b { "True".into() } else { "False".into() }),
        other => text(other),
    }
}

fn set_prop(action: &mut ActionSpec, key: String, value: String) {
    match action.props.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => action.props.push((key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    #[test]
    fn reads_a_jail_block() {
        let stream = vec![
            vec![s("set"), s("dbfile"), s("/tmp/x.sqlite3")],
            vec![s("add"), s("sshd"), s("polling")],
            vec![s("set"), s("sshd"), s("usedns"), s("warn")],
            vec![
                s("multi-set"),
                s("sshd"),
                s("addfailregex"),
                Value::List(vec![s("^a <HOST>$"), s("^b <HOST>$")]),
            ],
            vec![s("set"), s("sshd"), s("maxretry"), Value::Int(3)],
            vec![
                s("set"),
                s("sshd"),
                s("bantime.increment"),
                Value::Bool(true),
            ],
            vec![
                s("set"),
                s("sshd"),
                s("addignoreip"),
                s("10.0.0.0/8"),
                s("::1"),
            ],
            vec![
                s("set"),
                s("sshd"),
                s("addlogpath"),
                s("/var/log/auth.log"),
                s("tail"),
            ],
            vec![s("set"), s("sshd"), s("addaction"), s("dummy")],
            vec![
                s("multi-set"),
                s("sshd"),
                s("action"),
                s("dummy"),
                Value::List(vec![
                    Value::List(vec![s("actionban"), s("echo <ip>")]),
                    Value::List(vec![s("norestored"), Value::Bool(true)]),
                ]),
            ],
            vec![s("start"), s("sshd")],
        ];
        let settings = read_stream(&stream).unwrap();
        assert_eq!(settings.global.dbfile.as_deref(), Some("/tmp/x.sqlite3"));
        let jail = &settings.jails[0];
        assert_eq!(jail.backend, "polling");
        assert_eq!(jail.filter_commands.len(), 2);
        assert_eq!(jail.maxretry, 3);
        assert_eq!(jail.bantime_option("increment"), Some("true"));
        assert_eq!(jail.ignoreip, vec!["10.0.0.0/8", "::1"]);
        assert!(jail.logpaths[0].tail);
        assert_eq!(
            jail.actions[0].props[1],
            ("norestored".into(), "True".into())
        );
        assert!(jail.started);
    }

    #[test]
    fn errors_name_the_command() {
        let stream = vec![vec![s("set"), s("nojail"), s("maxretry"), Value::Int(3)]];
        let err = read_stream(&stream).unwrap_err();
        assert!(err.contains("nojail") && err.contains("maxretry"), "{err}");
        let stream = vec![
            vec![s("add"), s("j"), s("auto")],
            vec![s("set"), s("j"), s("maxretry"), Value::None],
        ];
        assert!(read_stream(&stream).unwrap_err().contains("maxretry"));
    }
}
