//! Action commands: tag substitution, shell-safe values, execution with timeouts
//! (fail2ban's `CommandAction`, spec 3 and 6.5).
//!
//! Public API:
//! - [`CommandAction::new(name, props)`]: one action from the stream's
//!   `['multi-set', J, 'action', NAME, [[prop, value], ...]]` pairs. Methods `start`, `stop`,
//!   `flush`, `reload`, `ban`, `reban`, `unban`, `prolong`, `consistency_check` keep the
//!   per-family "started"/"has items" state of spec 3.2 and run the check/repair dance of 3.5.
//! - [`ActionRunner`]: the actions of one jail in order; `ban(&Ticket)`, `unban`, `prolong`,
//!   `start`, `stop` (flush or per-ticket unbans, then stop), `flush`.
//! - [`TagValues`]: the dynamic tag values (fail2ban's ActionInfo) of a ticket.
//! - [`ShellCommand`]: a substituted script plus positional values; [`execute`] runs it with
//!   `/bin/sh -c` in its own process group, with a timeout killing the whole group, serially
//!   under one global lock.
//! - [`substitute_ignorecommand`] / [`run_ignorecommand`] for `ignorecommand` (spec 6.5).
//!
//! Safety rule: values that come from logs (matches, captures, ids) are never inlined into
//! the script when they contain a shell-special character; they are passed as `$f2bV_<tag>`
//! positional parameters exactly as fail2ban does.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use regex::{Captures, Regex};

use crate::addr::FailureId;
use crate::bans::Ticket;

/// fail2ban's `MAX_TAG_REPLACE_COUNT`: more substitution rounds means self reference.
const MAX_TAG_REPLACE_COUNT: usize = 25;
/// Largest command the static pass may build; nested tags can otherwise double per round.
const MAX_COMMAND_LEN: usize = 1 << 20;
/// Default command timeout (seconds).
pub const DEFAULT_TIMEOUT: f64 = 60.0;
/// Pause between SIGTERM and SIGKILL of a timed-out command group.
const TERM_GRACE: Duration = Duration::from_millis(200);

/// Property values escaped with backslashes in the static pass (their content is foreign).
const ESCAPED_TAGS: [&str; 3] = ["matches", "ipmatches", "ipjailmatches"];

fn tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"<([^ <>]+)>").unwrap_or_else(|_| unreachable!()))
}

fn capture_tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"<F-([A-Z0-9_\-]+)>").unwrap_or_else(|_| unreachable!()))
}

fn conditional_family_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\w+\?family=.*$").unwrap_or_else(|_| unreachable!()))
}

/// Characters that make a dynamic value travel as a shell variable instead of inline text.
fn is_shell_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '#'
            | '&'
            | ';'
            | '`'
            | '|'
            | '*'
            | '?'
            | '~'
            | '<'
            | '>'
            | '^'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '$'
            | '\''
            | '"'
            | '\n'
            | '\r'
    )
}

/// fail2ban's `escapeTag`: backslash before each special character, newline/CR as `\n`/`\r`.
pub fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_shell_special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Built-in fallbacks for tags nobody defined (`<br>`, `<sp>`, host names).
fn builtin_tag(tag: &str) -> Option<String> {
    match tag {
        "br" => Some("\n".to_string()),
        "sp" => Some(" ".to_string()),
        // fail2ban uses getfqdn(); without DNS here the plain host name is the best answer.
        "fq-hostname" => Some(host_name()),
        "sh-hostname" => Some(host_name().split('.').next().unwrap_or("").to_string()),
        _ => None,
    }
}

/// A command ready to run: `/bin/sh -c script args[0] args[1] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    pub script: String,
    /// Values bound to `$0`, `$1`, ... (the `f2bV_*` variables).
    pub args: Vec<String>,
}

impl ShellCommand {
    pub fn plain(script: impl Into<String>) -> ShellCommand {
        ShellCommand {
            script: script.into(),
            args: Vec::new(),
        }
    }

    /// fail2ban's `buildShellCmd`: `f2bV_a=$0 f2bV_b=$1 \n<script>` plus the values.
    fn with_variables(script: String, vars: Vec<(String, String)>) -> ShellCommand {
        if vars.is_empty() {
            return ShellCommand::plain(script);
        }
        let mut prefix = String::new();
        let mut args = Vec::with_capacity(vars.len());
        for (i, (name, value)) in vars.into_iter().enumerate() {
            prefix.push_str(&format!("{name}=${i} "));
            args.push(value);
        }
        ShellCommand {
            script: format!("{prefix}\n{script}"),
            args,
        }
    }
}

/// Dynamic tag values of one ticket (fail2ban's ActionInfo): `tags` by name (`ip`, `fid`,
/// `family`, ...) and filter `captures` by lower-cased key (`user`, `fid`, `fport`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagValues {
    pub tags: BTreeMap<String, String>,
    pub captures: BTreeMap<String, String>,
}

/// `inet4` / `inet6` for address ids (single addresses or networks), `None` otherwise.
pub fn family_of(id: &str) -> Option<&'static str> {
    FailureId::parse(id).family()
}

/// PTR name with trailing dot (`4.3.2.1.`, IPv6 nibbles), `''` for non-addresses.
pub fn reverse_pointer(id: &str) -> String {
    FailureId::parse(id).ip_rev()
}

/// Reverse DNS name of an address (`<ip-host>`); `None` for non-addresses or no PTR.
pub fn reverse_dns(ip: &str) -> Option<String> {
    let addr: std::net::IpAddr = ip.parse().ok()?;
    let sockaddr = std::net::SocketAddr::new(addr, 0);
    // SAFETY: the sockaddr structs are fully initialised from std values, the output buffer
    // is valid for its length and getnameinfo NUL-terminates it on success.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let len = match sockaddr {
            std::net::SocketAddr::V4(v4) => {
                let sin =
                    &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
                std::mem::size_of::<libc::sockaddr_in>()
            }
            std::net::SocketAddr::V6(v6) => {
                let sin6 = &mut *(&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        let mut host = [0 as libc::c_char; 1025];
        let rc = libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        );
        if rc != 0 {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(host.as_ptr())
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

/// Python's `repr(float)` for ticket times (`1795483115.9551888`, `12.0`).
pub fn python_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl TagValues {
    /// ActionInfo of `ticket` in a jail whose `bantime` is `jail_ban_time`. The caller may
    /// add `ipmatches`, `jail.*` and similar values afterwards. `<ip-host>` is resolved
    /// (reverse DNS) only when a command uses it and no value was set.
    pub fn from_ticket(ticket: &Ticket, jail_ban_time: i64) -> TagValues {
        let ip = ticket
            .data
            .get("ip")
            .map(str::to_string)
            .unwrap_or_else(|| ticket.id.to_string());
        let mut tags = BTreeMap::new();
        tags.insert(
            "family".to_string(),
            family_of(&ip).unwrap_or("None").to_string(),
        );
        tags.insert("ip-rev".to_string(), reverse_pointer(&ip));
        tags.insert("ip".to_string(), ip);
        tags.insert("fid".to_string(), ticket.id.to_string());
        tags.insert("failures".to_string(), ticket.failures.to_string());
        let time = if ticket.restored {
            format!("{}", ticket.time.round() as i64)
        } else {
            python_float(ticket.time)
        };
        tags.insert("time".to_string(), time);
        tags.insert(
            "bantime".to_string(),
            ticket.effective_ban_time(jail_ban_time).to_string(),
        );
        tags.insert("bancount".to_string(), ticket.ban_count.to_string());
        tags.insert(
            "matches".to_string(),
            ticket.matches.iter().collect::<Vec<_>>().join("\n"),
        );
        tags.insert(
            "restored".to_string(),
            if ticket.restored { "1" } else { "0" }.to_string(),
        );
        TagValues {
            tags,
            captures: ticket
                .data
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The "empty ticket" used for start/stop/flush/check/repair: `<ip>` is `''`, `<time>` now.
    pub fn for_operation(family: &str, jail_ban_time: i64) -> TagValues {
        let mut values = TagValues::from_ticket(&Ticket::new("", now_seconds()), jail_ban_time);
        values.tags.insert("failures".to_string(), "0".to_string());
        values.tags.insert("family".to_string(), family.to_string());
        values.tags.insert("ip-host".to_string(), String::new());
        values
    }

    fn family(&self) -> String {
        match self.tags.get("family").map(String::as_str) {
            Some("inet4") => "inet4".to_string(),
            Some("inet6") => "inet6".to_string(),
            _ => String::new(),
        }
    }
}

/// Pass 2 (spec 3.4): replaces `<tag>` from `values` non-recursively; values with shell
/// specials become `$f2bV_<tag>` variables bound to positional parameters.
pub fn substitute_dynamic(command: &str, values: &TagValues) -> ShellCommand {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut escape_val = |tag: &str, value: &str| -> String {
        if !value.chars().any(is_shell_special) {
            return value.to_string();
        }
        let name: String = tag
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!("f2bV_{name}");
        match vars.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = value.to_string(),
            None => vars.push((name.clone(), value.to_string())),
        }
        format!("${name}")
    };
    let script = tag_re()
        .replace_all(command, |caps: &Captures| {
            let tag = &caps[1];
            match values.tags.get(tag) {
                Some(value) => escape_val(tag, value),
                None if tag == "ip-host" => {
                    let ip = values.tags.get("ip").map(String::as_str).unwrap_or("");
                    let host = reverse_dns(ip).unwrap_or_else(|| "None".to_string());
                    escape_val(tag, &host)
                }
                None => builtin_tag(tag).unwrap_or_else(|| caps[0].to_string()),
            }
        })
        .into_owned();
    let script = if script.contains('<') {
        capture_tag_re()
            .replace_all(&script, |caps: &Captures| {
                let key = capture_key(&caps[1]);
                match values.captures.get(&key) {
                    Some(value) => escape_val(&format!("F_{key}"), value),
                    None => String::new(),
                }
            })
            .into_owned()
    } else {
        script
    };
    ShellCommand::with_variables(script, vars)
}

/// fail2ban's `mapTag2Opt`: capture `<F-NAME>` is stored under `name`, except id/port.
pub fn capture_key(name: &str) -> String {
    let lower = name.to_lowercase();
    match lower.as_str() {
        "id" => "fid".to_string(),
        "port" => "fport".to_string(),
        _ => lower,
    }
}

/// `ignorecommand` substitution (spec 6.5): dynamic pass only, same escaping as actions.
pub fn substitute_ignorecommand(command: &str, values: &TagValues) -> ShellCommand {
    substitute_dynamic(command, values)
}

/// Runs an `ignorecommand`: exit 0 → ignore (`Ok(true)`), 1 → don't (`Ok(false)`), anything
/// else (including timeout) → `Err` with the reason, which callers treat as "don't ignore".
pub fn run_ignorecommand(command: &str, values: &TagValues) -> Result<bool, String> {
    let shell = substitute_ignorecommand(command, values);
    let output = execute(&shell, Duration::from_secs_f64(DEFAULT_TIMEOUT));
    match output.exit_code {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(output.describe_failure()),
    }
}

/// What running one command produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandOutput {
    pub success: bool,
    /// Exit code; `None` when killed by a signal, timed out or not started.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// Spawn error, if the shell could not be started.
    pub error: Option<String>,
}

impl CommandOutput {
    pub fn describe_failure(&self) -> String {
        if let Some(err) = &self.error {
            return format!("failed to start: {err}");
        }
        if self.timed_out {
            return "timed out".to_string();
        }
        match self.exit_code {
            Some(127) => "returned 127 (command not found; check PATH)".to_string(),
            Some(code) => format!("returned {code}"),
            None => "killed by a signal".to_string(),
        }
    }
}

/// One lock for every command of every action, jail and ignorecommand (spec 3.5.2).
fn command_lock() -> &'static Mutex<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    &LOCK
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: plain syscall; a negative pid addresses the process group we created.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// A descriptor that becomes readable when `child` exits (`pidfd_open`), so the wait is one
/// `poll` instead of a sleep loop; `None` on kernels without it.
fn exit_notifier(child: &Child) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(child.id()).ok()?;
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: see above.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Most output kept per stream; the rest is read and dropped so the command never blocks.
const MAX_OUTPUT: usize = 1 << 20;

/// A command's stdout or stderr pipe, read without blocking as data arrives.
struct OutputPipe {
    pipe: Option<File>,
    bytes: Vec<u8>,
}

impl OutputPipe {
    fn new(pipe: Option<OwnedFd>) -> OutputPipe {
        let pipe = pipe.map(File::from);
        if let Some(pipe) = &pipe {
            let fd = pipe.as_raw_fd();
            // SAFETY: fcntl on a descriptor we own; only the status flags change.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        OutputPipe {
            pipe,
            bytes: Vec::new(),
        }
    }

    /// Reads what is there now; closes the pipe at end of file.
    fn drain(&mut self) {
        let Some(pipe) = &mut self.pipe else { return };
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.bytes.len());
                    self.bytes.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn poll_fd(&self) -> Option<libc::pollfd> {
        self.pipe.as_ref().map(|pipe| libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Waits until `child` exits (`Ok(Some)`) or `deadline` passes (`Ok(None)`), reading its
/// output meanwhile; `Err` when the child cannot be waited for. One `poll` covers the
/// pidfd and both pipes. What the command wrote by its exit is read then, without waiting
/// for a background process that keeps the pipes open.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
    outputs: &mut [OutputPipe; 2],
) -> Result<Option<ExitStatus>, ()> {
    let notifier = exit_notifier(child);
    // Without a pidfd: short commands finish in about a millisecond, poll fast then back off.
    let mut pause = Duration::from_micros(100);
    // With a pidfd the first look is the poll: a command just started has not finished, and
    // the poll returns at once if it has.
    let mut look = notifier.is_none();
    loop {
        if look {
            outputs.iter_mut().for_each(OutputPipe::drain);
            match child.try_wait() {
                Ok(Some(status)) => {
                    outputs.iter_mut().for_each(OutputPipe::drain);
                    return Ok(Some(status));
                }
                Ok(None) => {}
                Err(_) => return Err(()),
            }
        }
        look = true;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut fds: Vec<libc::pollfd> = outputs.iter().filter_map(OutputPipe::poll_fd).collect();
        let wait = match &notifier {
            Some(fd) => {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                left
            }
            None => {
                let wait = pause.min(left);
                pause = (pause * 2).min(Duration::from_millis(10));
                wait
            }
        };
        let millis = i32::try_from(wait.as_millis() + 1).unwrap_or(i32::MAX);
        let count = libc::nfds_t::try_from(fds.len()).unwrap_or(0);
        // SAFETY: `fds` holds `count` valid pollfds for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    }
}

/// Runs `command` with `/bin/sh -c` in a new process group, serially with all other
/// commands; after `timeout` the group gets SIGTERM, 0.2 s later SIGKILL.
pub fn execute(command: &ShellCommand, timeout: Duration) -> CommandOutput {
    let _guard = command_lock().lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&command.script)
        .args(&command.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // Pipes, not files: a script may reopen /dev/stderr, which on a file would truncate it.
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            return CommandOutput {
                error: Some(err.to_string()),
                ..CommandOutput::default()
            }
        }
    };
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let mut outputs = [
        OutputPipe::new(child.stdout.take().map(OwnedFd::from)),
        OutputPipe::new(child.stderr.take().map(OwnedFd::from)),
    ];
    let (status, timed_out) = match wait_until(&mut child, Instant::now() + timeout, &mut outputs) {
        Ok(Some(status)) => (Some(status), false),
        Ok(None) => {
            signal_group(pgid, libc::SIGTERM);
            std::thread::sleep(TERM_GRACE);
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait();
            (None, true)
        }
        Err(()) => (None, false),
    };
    if timed_out {
        // Leftovers of the group must not outlive a timed-out command.
        signal_group(pgid, libc::SIGKILL);
    }
    outputs.iter_mut().for_each(OutputPipe::drain);
    let exit_code = status.and_then(|s| s.code());
    CommandOutput {
        success: exit_code == Some(0),
        exit_code,
        timed_out,
        stdout: outputs[0].text(),
        stderr: outputs[1].text(),
        error: None,
    }
}

/// Severity of a message an action wants logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Error,
    Critical,
}

/// Per-family state bits of spec 3.2.
const STARTED: u8 = 1;
const HAS_ITEMS: u8 = 2;

fn truthy(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off" | "none"
    )
}

/// One command action (spec 3.1-3.5).
#[derive(Debug, Clone)]
pub struct CommandAction {
    pub name: String,
    properties: HashMap<String, String>,
    /// family → STARTED | HAS_ITEMS bits.
    started: BTreeMap<String, u8>,
    /// Last successfully executed operation command per (operation, family): identical
    /// resolved commands of two families run once.
    executed: HashMap<String, BTreeMap<String, String>>,
    /// Incremented by repairs; tickets banned under an older epoch are re-banned.
    pub ban_epoch: u64,
    /// Jail `bantime`, for `<bantime>` of operations.
    pub jail_ban_time: i64,
    /// Log messages for the caller to emit (drained with [`CommandAction::take_messages`]).
    messages: Vec<(Level, String)>,
    /// Pass-1 results of operations by (operation, family), cleared when a property changes,
    /// as fail2ban caches them (spec 3.4; its host-name built-ins included): a ban does not
    /// redo the tag rounds.
    resolved: Vec<(String, String, String)>,
}

impl CommandAction {
    /// Builds an action from `[prop, value]` pairs. Setting `bantime` is ignored (spec 3.1).
    pub fn new(name: &str, props: impl IntoIterator<Item = (String, String)>) -> CommandAction {
        let mut properties = HashMap::new();
        for op in [
            "actionstart",
            "actionstop",
            "actionflush",
            "actioncheck",
            "actionrepair",
            "actionban",
            "actionreban",
            "actionprolong",
            "actionunban",
            "actionreload",
        ] {
            properties.insert(op.to_string(), String::new());
        }
        properties.insert("timeout".to_string(), "60".to_string());
        properties.insert("name".to_string(), name.to_string());
        properties.insert("actname".to_string(), name.to_string());
        let mut action = CommandAction {
            name: name.to_string(),
            properties,
            started: BTreeMap::new(),
            executed: HashMap::new(),
            ban_epoch: 0,
            jail_ban_time: 600,
            messages: Vec::new(),
            resolved: Vec::new(),
        };
        for (key, value) in props {
            action.set_property(&key, &value);
        }
        action
    }

    pub fn set_property(&mut self, key: &str, value: &str) {
        if key == "bantime" {
            return;
        }
        self.properties.insert(key.to_string(), value.to_string());
        self.resolved.clear();
    }

    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Command timeout from the `timeout` property (a time string), default 60 s.
    pub fn timeout(&self) -> Duration {
        let seconds = self
            .property("timeout")
            .and_then(|t| crate::timestr::str2seconds(t).ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .unwrap_or(DEFAULT_TIMEOUT);
        Duration::from_secs_f64(seconds)
    }

    /// Any `tag?family=...` property makes the action conditional (spec 3.2).
    pub fn is_conditional(&self) -> bool {
        self.properties
            .keys()
            .any(|k| conditional_family_re().is_match(k))
    }

    fn start_on_demand(&self) -> bool {
        match self.property("actionstart_on_demand") {
            Some(value) => truthy(value),
            None => self.is_conditional(),
        }
    }

    fn families(&self) -> Vec<String> {
        if self.is_conditional() {
            vec!["inet4".to_string(), "inet6".to_string()]
        } else {
            vec![String::new()]
        }
    }

    /// Restored tickets skip actions with `norestored` set.
    pub fn skips_restored(&self) -> bool {
        self.property("norestored").is_some_and(truthy)
    }

    fn has_operation(&self, op: &str) -> bool {
        self.property(op).is_some_and(|v| !v.trim().is_empty())
    }

    /// Whether the family has been started.
    pub fn is_started(&self, family: &str) -> bool {
        self.started.get(family).is_some_and(|v| v & STARTED != 0)
    }

    /// Whether a ban succeeded in the family since its last flush/stop.
    pub fn has_items(&self, family: &str) -> bool {
        self.started.get(family).is_some_and(|v| v & HAS_ITEMS != 0)
    }

    pub fn take_messages(&mut self) -> Vec<(Level, String)> {
        std::mem::take(&mut self.messages)
    }

    fn log(&mut self, level: Level, message: String) {
        self.messages.push((level, message));
    }

    /// Pass 1 (spec 3.4): properties, `tag?family=X` preferred, repeated until stable.
    pub fn substitute_static(&self, query: &str, family: &str) -> Result<String, String> {
        let mut query = query.to_string();
        let mut rounds = 0;
        loop {
            if !query.contains('<') {
                return Ok(query);
            }
            let value = tag_re()
                .replace_all(&query, |caps: &Captures| {
                    let tag = &caps[1];
                    let found = (!family.is_empty())
                        .then(|| self.properties.get(&format!("{tag}?family={family}")))
                        .flatten()
                        .or_else(|| self.properties.get(tag));
                    match found {
                        Some(value) if ESCAPED_TAGS.contains(&tag) => escape_tag(value),
                        Some(value) => value.clone(),
                        None => builtin_tag(tag).unwrap_or_else(|| caps[0].to_string()),
                    }
                })
                .into_owned();
            if value == query {
                return Ok(value);
            }
            if value.len() > MAX_COMMAND_LEN {
                return Err(format!(
                    "substitution grew beyond {MAX_COMMAND_LEN} bytes (tags doubling each other?)"
                ));
            }
            query = value;
            rounds += 1;
            if rounds > MAX_TAG_REPLACE_COUNT {
                return Err(format!(
                    "unexpected too long replacement interpolation, possible self referencing definitions in query: {query}"
                ));
            }
        }
    }

    /// `substitute_static("<op>", family)`, remembered.
    fn resolved_operation(&mut self, op: &str, family: &str) -> Result<String, String> {
        if let Some((_, _, cmd)) = self
            .resolved
            .iter()
            .find(|(o, f, _)| o == op && f == family)
        {
            return Ok(cmd.clone());
        }
        let cmd = self.substitute_static(&format!("<{op}>"), family)?;
        self.resolved
            .push((op.to_string(), family.to_string(), cmd.clone()));
        Ok(cmd)
    }

    /// Operation command (start/stop/check/...) for a family, with `<family>` filled in.
    fn operation(&self, op: &str, family: &str) -> Result<String, String> {
        let cmd = self.substitute_static(&format!("<{op}>"), family)?;
        // fail2ban fills `<family>` here already, so per-family commands differ and are not
        // deduplicated against each other.
        if family.is_empty() {
            return Ok(cmd);
        }
        Ok(cmd.replace("<family>", family))
    }

    fn run(&mut self, shell: ShellCommand) -> bool {
        let output = execute(&shell, self.timeout());
        if output.success {
            if !output.stdout.is_empty() || !output.stderr.is_empty() {
                self.log(
                    Level::Debug,
                    format!(
                        "{}: stdout: {:?} stderr: {:?}",
                        shell.script, output.stdout, output.stderr
                    ),
                );
            }
        } else {
            self.log(
                Level::Error,
                format!(
                    "{} -- {}; stdout: {:?} stderr: {:?}",
                    shell.script,
                    output.describe_failure(),
                    output.stdout,
                    output.stderr
                ),
            );
        }
        output.success
    }

    /// fail2ban's `_executeOperation`: runs `op` for each family (all started ones when
    /// `families` is `None`), skipping a command identical to one already run for another
    /// family; `after` sees each family's result.
    fn execute_operation(
        &mut self,
        op: &str,
        families: Option<Vec<String>>,
        mut after: impl FnMut(&mut CommandAction, &str, bool),
    ) -> Result<(), String> {
        let families = families.unwrap_or_else(|| {
            self.started
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(f, _)| f.clone())
                .collect()
        });
        let mut error = None;
        for family in families {
            let cmd = match self.operation(op, &family) {
                Ok(cmd) => cmd,
                Err(err) => {
                    error = Some(err);
                    continue;
                }
            };
            let mut ok = true;
            let already = self
                .executed
                .get(op)
                .is_some_and(|m| m.iter().any(|(f, c)| *f != family && *c == cmd));
            if !cmd.is_empty() && !already {
                let values = TagValues::for_operation(&family, self.jail_ban_time);
                ok = self.run(substitute_dynamic(&cmd, &values));
                if !ok {
                    error = Some(format!("{op} failed"));
                }
            }
            after(self, &family, ok);
            let entry = self.executed.entry(op.to_string()).or_default();
            if ok {
                entry.insert(family.clone(), cmd);
            } else if let Some(old) = entry.remove(&family) {
                entry.retain(|_, c| *c != old);
            }
        }
        match error {
            Some(err) => Err(format!("Error {op} action {}: {err}", self.name)),
            None => Ok(()),
        }
    }

    fn forget_executed(&mut self, op: &str, family: &str) {
        if let Some(entry) = self.executed.get_mut(op) {
            if let Some(old) = entry.remove(family) {
                entry.retain(|_, c| *c != old);
            }
        }
    }

    /// Jail start: `actionstart` unless started on demand (spec 3.2).
    pub fn start(&mut self) -> Result<(), String> {
        if self.start_on_demand() {
            return Ok(());
        }
        let families = self.families();
        self.start_families(families)
    }

    fn start_families(&mut self, families: Vec<String>) -> Result<(), String> {
        self.execute_operation("actionstart", Some(families), |action, family, ok| {
            if ok {
                action.forget_executed("actionstop", family);
                action.started.insert(family.to_string(), STARTED);
            }
        })
    }

    /// Jail stop: `actionstop` for every started family (deduplicated).
    pub fn stop(&mut self) -> Result<(), String> {
        let families: Vec<String> = self
            .started
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(f, _)| f.clone())
            .collect();
        if families.is_empty() {
            return Ok(());
        }
        self.started.clear();
        self.stop_families(families)
    }

    fn stop_families(&mut self, families: Vec<String>) -> Result<(), String> {
        self.execute_operation("actionstop", Some(families), |action, family, ok| {
            if ok {
                action.forget_executed("actionstart", family);
            }
        })
    }

    /// Whether this action has a non-empty `actionflush` (then flush replaces unbans).
    pub fn has_flush(&self) -> bool {
        self.has_operation("actionflush")
    }

    /// `actionflush` for each family that is started and has items; clears "has items".
    pub fn flush(&mut self) -> Result<(), String> {
        let families: Vec<String> = self
            .started
            .iter()
            .filter(|(_, v)| **v & (STARTED | HAS_ITEMS) == STARTED | HAS_ITEMS)
            .map(|(f, _)| f.clone())
            .collect();
        if families.is_empty() {
            return Ok(());
        }
        self.execute_operation("actionflush", Some(families), |action, family, ok| {
            if ok {
                if let Some(bits) = action.started.get_mut(family) {
                    *bits &= !HAS_ITEMS;
                }
            }
        })
    }

    /// `actionreload` for the started families.
    pub fn reload(&mut self) -> Result<(), String> {
        self.execute_operation("actionreload", None, |_, _, _| {})
    }

    /// Ban: start the family on demand, then `actionban` (with check/repair on failure).
    pub fn ban(&mut self, values: &TagValues) -> Result<(), String> {
        self.ban_with("actionban", values)
    }

    /// Re-ban after a repair: `actionreban` if set, else `actionban`.
    pub fn reban(&mut self, values: &TagValues) -> Result<(), String> {
        let op = if self.has_operation("actionreban") {
            "actionreban"
        } else {
            "actionban"
        };
        self.ban_with(op, values)
    }

    fn ban_with(&mut self, op: &str, values: &TagValues) -> Result<(), String> {
        let family = values.family();
        if self.start_on_demand() && !self.is_started(&family) {
            // As fail2ban: a failed on-demand start aborts this ban; the next ban retries.
            self.start_families(vec![family.clone()])?;
        }
        if !self.process(op, values)? {
            return Err(format!("Error banning {}", ip_of(values)));
        }
        *self.started.entry(family).or_insert(0) |= STARTED | HAS_ITEMS;
        Ok(())
    }

    /// `actionprolong`, only when non-blank.
    pub fn prolong(&mut self, values: &TagValues) -> Result<(), String> {
        if !self.has_operation("actionprolong") {
            return Ok(());
        }
        if !self.process("actionprolong", values)? {
            return Err(format!("Error prolonging {}", ip_of(values)));
        }
        Ok(())
    }

    /// `actionunban`, only when the ticket's family has items.
    pub fn unban(&mut self, values: &TagValues) -> Result<(), String> {
        let family = values.family();
        if !self.has_items(&family) {
            return Ok(());
        }
        if !self.process("actionunban", values)? {
            return Err(format!("Error unbanning {}", ip_of(values)));
        }
        Ok(())
    }

    /// fail2ban's `_processCmd`: run; on failure check/repair and run once more.
    fn process(&mut self, op: &str, values: &TagValues) -> Result<bool, String> {
        if self.property(op).is_none_or(str::is_empty) {
            return Ok(true);
        }
        let family = values.family();
        let mut attempts = 0;
        loop {
            if attempts > 0 && self.has_operation("actioncheck") {
                let allow_repair = op != "actionunban"
                    || self.property("actionrepair_on_unban").is_some_and(truthy);
                if self.invariant_check(&family, allow_repair, op != "actionunban")? != 1 {
                    return Ok(false);
                }
            }
            let cmd = self.resolved_operation(op, &family)?;
            let ok = self.run(substitute_dynamic(&cmd, values));
            attempts += 1;
            if ok || attempts > 1 {
                return Ok(ok);
            }
        }
    }

    /// fail2ban's `_invariantCheck`: 1 sane (or restored), 0 could not restore, -1 repair
    /// not allowed.
    fn invariant_check(
        &mut self,
        family: &str,
        allow_repair: bool,
        force_start: bool,
    ) -> Result<i32, String> {
        if !force_start && !self.started.contains_key(family) {
            return Ok(1);
        }
        let check = self.operation("actioncheck", family)?;
        if check.is_empty() {
            return Ok(1);
        }
        let values = TagValues::for_operation(family, self.jail_ban_time);
        if self.run(substitute_dynamic(&check, &values)) {
            return Ok(1);
        }
        if !allow_repair {
            self.log(
                Level::Error,
                "Invariant check failed. Unban is impossible.".to_string(),
            );
            return Ok(-1);
        }
        self.log(
            Level::Error,
            "Invariant check failed. Trying to restore a sane environment".to_string(),
        );
        self.ban_epoch += 1;
        let repair = self.operation("actionrepair", family)?;
        if !repair.is_empty() {
            if !self.run(substitute_dynamic(&repair, &values)) {
                self.started.insert(family.to_string(), 0);
                self.log(Level::Critical, "Unable to restore environment".to_string());
                return Ok(0);
            }
            self.started.insert(family.to_string(), STARTED);
        } else {
            // fail2ban stops only a family it knows about.
            if let Some(bits) = self.started.get_mut(family) {
                *bits = 0;
                let _ = self.stop_families(vec![family.to_string()]);
            }
            if force_start || !self.start_on_demand() {
                let _ = self.start_families(vec![family.to_string()]);
            }
        }
        if self.is_started(family) && !self.run(substitute_dynamic(&check, &values)) {
            self.log(Level::Critical, "Unable to restore environment".to_string());
            return Ok(0);
        }
        Ok(1)
    }

    /// Consistency check of spec 3.6: `actioncheck` (and repair) per started family.
    /// Returns false when some family could not be restored.
    pub fn consistency_check(&mut self) -> Result<bool, String> {
        if !self.has_operation("actioncheck") {
            return Ok(true);
        }
        let mut all_ok = true;
        let families: Vec<(String, u8)> =
            self.started.iter().map(|(f, v)| (f.clone(), *v)).collect();
        for (family, bits) in families {
            if bits != 0 && self.invariant_check(&family, true, true)? == 0 {
                self.started.insert(family.clone(), 0);
                self.forget_executed("actionstart", &family);
                all_ok = false;
            }
        }
        Ok(all_ok)
    }
}

fn ip_of(values: &TagValues) -> String {
    values.tags.get("ip").cloned().unwrap_or_default()
}

/// The command actions of one jail, run in jail order (spec 3.3).
#[derive(Debug, Clone, Default)]
pub struct ActionRunner {
    pub jail: String,
    /// Jail `bantime`, used for `<bantime>` when a ticket has none.
    pub jail_ban_time: i64,
    pub actions: Vec<CommandAction>,
}

impl ActionRunner {
    pub fn new(jail: &str, jail_ban_time: i64, mut actions: Vec<CommandAction>) -> ActionRunner {
        for action in &mut actions {
            action.jail_ban_time = jail_ban_time;
        }
        ActionRunner {
            jail: jail.to_string(),
            jail_ban_time,
            actions,
        }
    }

    /// Whether a command of an action may read a banned ticket's matched lines: a tag
    /// ending in `matches` (`<matches>`, `<ipmatches>`...), or a value that is just the
    /// name, from which a tag could be built (`<<name>>`).
    pub fn uses_matches(&self) -> bool {
        self.actions.iter().any(|action| {
            action
                .properties
                .values()
                .any(|v| v.contains("matches>") || v.trim() == "matches")
        })
    }

    /// Tag values of a ticket in this jail (adds `<jail.name>`).
    pub fn tag_values(&self, ticket: &Ticket) -> TagValues {
        let mut values = TagValues::from_ticket(ticket, self.jail_ban_time);
        values
            .tags
            .insert("jail.name".to_string(), self.jail.clone());
        values
    }

    fn each(
        &mut self,
        mut run: impl FnMut(&mut CommandAction) -> Result<(), String>,
    ) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        for action in &mut self.actions {
            if let Err(err) = run(action) {
                errors.push(format!(
                    "Failed to execute {} action '{}': {err}",
                    self.jail, action.name
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Jail start: each action's `actionstart` (unless on demand).
    pub fn start(&mut self) -> Result<(), Vec<String>> {
        self.each(CommandAction::start)
    }

    /// Ban a new ticket with every action (norestored actions skip restored tickets). Errors
    /// of one action do not stop the others.
    pub fn ban(&mut self, ticket: &Ticket) -> Result<(), Vec<String>> {
        let values = self.tag_values(ticket);
        let restored = ticket.restored;
        self.each(|action| {
            if restored && action.skips_restored() {
                return Ok(());
            }
            action.ban(&values)
        })
    }

    pub fn reban(&mut self, ticket: &Ticket) -> Result<(), Vec<String>> {
        let values = self.tag_values(ticket);
        self.each(|action| action.reban(&values))
    }

    pub fn prolong(&mut self, ticket: &Ticket) -> Result<(), Vec<String>> {
        let values = self.tag_values(ticket);
        self.each(|action| action.prolong(&values))
    }

    pub fn unban(&mut self, ticket: &Ticket) -> Result<(), Vec<String>> {
        let values = self.tag_values(ticket);
        self.each(|action| action.unban(&values))
    }

    /// Removes all bans from the firewall: `actionflush` where defined, else one
    /// `actionunban` per ticket (spec 3.3 flush).
    pub fn flush(&mut self, tickets: &[Ticket]) -> Result<(), Vec<String>> {
        let values: Vec<TagValues> = tickets.iter().map(|t| self.tag_values(t)).collect();
        self.each(|action| {
            if action.has_flush() {
                if let Err(err) = action.flush() {
                    // After a failed flush only the consistency check runs, no unbans.
                    let _ = action.consistency_check();
                    return Err(err);
                }
                return Ok(());
            }
            let mut result = Ok(());
            for value in &values {
                if let Err(err) = action.unban(value) {
                    result = Err(err);
                }
            }
            result
        })
    }

    /// Jail stop: flush (or unban each ticket), then `actionstop`.
    pub fn stop(&mut self, tickets: &[Ticket]) -> Result<(), Vec<String>> {
        let flushed = self.flush(tickets);
        let stopped = self.each(CommandAction::stop);
        match (flushed, stopped) {
            (Ok(()), Ok(())) => Ok(()),
            (a, b) => Err([a.err(), b.err()].into_iter().flatten().flatten().collect()),
        }
    }

    /// Consistency check of spec 3.6, for a new failure of an already banned id: runs each
    /// action's check/repair at most once per 3 s (`now` in seconds). Returns true when a
    /// repair raised a ban epoch, i.e. banned tickets should be re-banned ([`Self::reban`]).
    pub fn consistency_check(&mut self, now: f64, last_check: &mut Option<f64>) -> bool {
        if last_check.is_some_and(|t| now - t < 3.0) {
            return false;
        }
        *last_check = Some(now);
        let before = self.ban_epoch();
        for action in &mut self.actions {
            let _ = action.consistency_check();
        }
        self.ban_epoch() != before
    }

    /// Sum of the actions' ban epochs; a ticket banned under an older value needs a re-ban.
    pub fn ban_epoch(&self) -> u64 {
        self.actions.iter().map(|a| a.ban_epoch).sum()
    }

    /// All log messages collected from the actions, with the action name.
    pub fn take_messages(&mut self) -> Vec<(Level, String)> {
        let mut out = Vec::new();
        for action in &mut self.actions {
            for (level, message) in action.take_messages() {
                out.push((level, format!("[{}] {}: {message}", self.jail, action.name)));
            }
        }
        out
    }
}

/// Action state that outlives the process: the one-shot mode stores which families were
/// started (and hold bans) so the next run neither starts them twice nor loses unbans; the
/// daemon stops every family after a crash so restored bans are not doubled.
impl CommandAction {
    /// Started families and whether each holds bans.
    pub fn family_states(&self) -> Vec<(String, bool)> {
        self.started
            .iter()
            .filter(|(_, bits)| **bits & STARTED != 0)
            .map(|(family, bits)| (family.clone(), bits & HAS_ITEMS != 0))
            .collect()
    }

    /// Mark a family as started by an earlier run.
    pub fn restore_family(&mut self, family: &str, has_items: bool) {
        let bits = if has_items {
            STARTED | HAS_ITEMS
        } else {
            STARTED
        };
        self.started.insert(family.to_string(), bits);
    }

    /// `actionstop` for every family this action can have, errors only logged: used after
    /// an unclean shutdown, when the firewall may still hold what the dead server set up.
    pub fn stop_every_family(&mut self) {
        let families = self.families();
        self.started.clear();
        if let Err(err) = self.stop_families(families) {
            self.log(Level::Error, format!("cleanup after crash: {err}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn escape_tag_backslashes_specials() {
        assert_eq!(escape_tag("a;b\nc$d"), "a\\;b\\nc\\$d");
        assert_eq!(escape_tag("plain text"), "plain text");
    }

    #[test]
    fn static_pass_prefers_family_and_recurses() {
        let action = CommandAction::new(
            "t",
            props(&[
                ("actionban", "<cmd> -A <chain> <ip>"),
                ("cmd", "iptables"),
                ("cmd?family=inet6", "ip6tables"),
                ("chain", "f2b-<name>"),
            ]),
        );
        assert_eq!(
            action.substitute_static("<actionban>", "inet4").as_deref(),
            Ok("iptables -A f2b-t <ip>")
        );
        assert_eq!(
            action.substitute_static("<actionban>", "inet6").as_deref(),
            Ok("ip6tables -A f2b-t <ip>")
        );
        assert!(action.is_conditional());
    }

    #[test]
    fn static_pass_detects_self_reference() {
        let action = CommandAction::new("t", props(&[("a", "x<a>")]));
        assert!(action.substitute_static("<a>", "").is_err());
    }

    #[test]
    fn static_pass_bounds_exponential_growth() {
        let mut pairs = Vec::new();
        for i in 0..30 {
            pairs.push((format!("t{i}"), format!("<t{}><t{}>", i + 1, i + 1)));
        }
        pairs.push(("t30".to_string(), "x".to_string()));
        let action = CommandAction::new("t", pairs);
        assert!(action.substitute_static("<t0>", "").is_err());
    }

    #[test]
    fn builtins_and_unknown_tags() {
        let action = CommandAction::new("t", props(&[]));
        assert_eq!(
            action
                .substitute_static("a<br>b<sp>c<unknown>", "")
                .as_deref(),
            Ok("a\nb c<unknown>")
        );
    }

    #[test]
    fn a_changed_property_reaches_the_next_ban() {
        let file = std::env::temp_dir().join(format!("ironban-resolved-{}", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let mut action = CommandAction::new(
            "rec",
            props(&[
                ("actionban", "echo <x> <ip> >> <file>"),
                ("x", "one"),
                ("file", file.to_str().expect("utf-8 temp path")),
            ]),
        );
        let ban = |action: &mut CommandAction, ip: &str| {
            let values = TagValues::from_ticket(&Ticket::new(ip, 1.0e9), 600);
            action.ban(&values).expect("ban runs");
        };
        ban(&mut action, "192.0.2.1");
        ban(&mut action, "192.0.2.2");
        action.set_property("x", "two");
        ban(&mut action, "192.0.2.3");
        let written = std::fs::read_to_string(&file).expect("action output");
        let _ = std::fs::remove_file(&file);
        assert_eq!(written, "one 192.0.2.1\none 192.0.2.2\ntwo 192.0.2.3\n");
    }

    #[test]
    fn actions_that_read_matches_are_told_apart() {
        let runner = |pairs: &[(&str, &str)]| {
            ActionRunner::new("j", 600, vec![CommandAction::new("a", props(pairs))])
        };
        let plain = [
            ("actionban", "iptables -I f2b-j 1 -s <ip> -j DROP"),
            ("actionunban", "iptables -D f2b-j -s <ip> -j DROP"),
        ];
        assert!(!runner(&plain).uses_matches());
        assert!(runner(&[("actionunban", "mail -s <ip> root <<< '<matches>'")]).uses_matches());
        // Through another property, or one of the tags read from the database.
        assert!(runner(&[("actionban", "echo <lines>"), ("lines", "<matches>")]).uses_matches());
        assert!(runner(&[("actionban", "echo <ipjailmatches>")]).uses_matches());
        assert!(runner(&[("actionban", "echo <<what>>"), ("what", "matches")]).uses_matches());
        // A path is not a tag.
        assert!(!runner(&[("actionban", "echo <ip> >> /tmp/matches.log")]).uses_matches());
        let mut two = runner(&plain);
        two.actions.push(CommandAction::new(
            "b",
            props(&[("actionban", "<matches>")]),
        ));
        assert!(two.uses_matches());
    }

    #[test]
    fn dynamic_pass_binds_specials_as_variables() {
        let mut ticket = Ticket::new("1.2.3.4", 1795483115.9551888);
        ticket.matches = ["a;b", "c"].into_iter().collect();
        ticket.data.insert("user", "x$(id)");
        let values = TagValues::from_ticket(&ticket, 600);
        let cmd = substitute_dynamic(
            "ban <ip> \"<matches>\" <F-USER> <F-MISSING> <time> <ip-rev> <nope>",
            &values,
        );
        assert_eq!(
            cmd.script,
            "f2bV_matches=$0 f2bV_F_user=$1 \nban 1.2.3.4 \"$f2bV_matches\" $f2bV_F_user  1795483115.9551888 4.3.2.1. <nope>"
        );
        assert_eq!(cmd.args, vec!["a;b\nc".to_string(), "x$(id)".to_string()]);
    }

    #[test]
    fn reverse_pointers_and_families() {
        assert_eq!(reverse_pointer("1.2.3.4"), "4.3.2.1.");
        assert_eq!(
            reverse_pointer("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
        );
        assert_eq!(reverse_pointer("bob"), "");
        assert_eq!(reverse_dns("bob"), None);
        assert_eq!(reverse_dns("127.0.0.1").map(|h| h.is_empty()), Some(false));
        assert_eq!(family_of("10.0.0.0/8"), Some("inet4"));
        assert_eq!(family_of("::1"), Some("inet6"));
        assert_eq!(family_of("bob"), None);
        assert_eq!(python_float(12.0), "12.0");
        assert_eq!(python_float(1.5), "1.5");
    }

    #[test]
    fn capture_keys_follow_fail2ban() {
        assert_eq!(capture_key("ID"), "fid");
        assert_eq!(capture_key("PORT"), "fport");
        assert_eq!(capture_key("USER"), "user");
    }

    #[test]
    fn bantime_property_is_ignored() {
        let action = CommandAction::new("t", props(&[("bantime", "5"), ("timeout", "2")]));
        assert_eq!(action.property("bantime"), None);
        assert_eq!(action.timeout(), Duration::from_secs(2));
        let action = CommandAction::new("t", props(&[("timeout", "1m 30s")]));
        assert_eq!(action.timeout(), Duration::from_secs(90));
        let action = CommandAction::new("t", props(&[("timeout", "bogus")]));
        assert_eq!(action.timeout(), Duration::from_secs(60));
    }
}
