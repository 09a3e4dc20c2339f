//! The control socket: protocol between `ironban client` and the server.
//!
//! Transport is a Unix stream socket (mode 0600). The protocol is our own, not
//! fail2ban's pickle: each request is one line of JSON `{"cmd": ["status", "sshd"]}`
//! and each response one line, `{"ok": true, "value": <fail2ban's return value>}` or
//! `{"ok": false, "error": "...", "kind": "unknown_jail"}`. Several requests may be sent
//! on one connection. Python tuples travel as JSON arrays and dicts as objects.
//!
//! Server side: [`ControlServer`] (bind, serve with a handler callback, bounded request
//! size and read time). Client side: [`send_command`], the `ironban client` command
//! ([`ClientArgs`], [`run_client`]) and [`beautify`], which reproduces
//! fail2ban-client's output layouts byte for byte.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// fail2ban's default socket path, used when neither `-s` nor `fail2ban.conf` says.
pub const DEFAULT_SOCKET: &str = "/var/run/fail2ban/fail2ban.sock";

/// Largest request line accepted by default (a whole config stream fits easily).
pub const DEFAULT_MAX_REQUEST_LEN: usize = 4 * 1024 * 1024;

/// How long a client may take to send one complete request, by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at the same time; more are turned away so a flood of idle
/// connections cannot exhaust threads.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;

/// The class of a failed command, which decides how the client words it
/// (fail2ban distinguishes these by exception type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `UnknownJailException`: `message` is the jail name.
    UnknownJail,
    /// `DuplicateJailException`: `message` is the jail name.
    DuplicateJail,
    /// `IndexError`: too few arguments.
    InvalidCommand,
    /// Anything else: `message` is shown as is.
    Other,
}

impl ErrorKind {
    fn wire_name(self) -> &'static str {
        match self {
            ErrorKind::UnknownJail => "unknown_jail",
            ErrorKind::DuplicateJail => "duplicate_jail",
            ErrorKind::InvalidCommand => "invalid_command",
            ErrorKind::Other => "other",
        }
    }

    fn from_wire_name(name: &str) -> ErrorKind {
        match name {
            "unknown_jail" => ErrorKind::UnknownJail,
            "duplicate_jail" => ErrorKind::DuplicateJail,
            "invalid_command" => ErrorKind::InvalidCommand,
            _ => ErrorKind::Other,
        }
    }
}

/// A command's failure as sent over the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CommandError {
    pub fn unknown_jail(jail: &str) -> CommandError {
        CommandError {
            kind: ErrorKind::UnknownJail,
            message: jail.to_string(),
        }
    }

    pub fn duplicate_jail(jail: &str) -> CommandError {
        CommandError {
            kind: ErrorKind::DuplicateJail,
            message: jail.to_string(),
        }
    }

    pub fn invalid_command() -> CommandError {
        CommandError {
            kind: ErrorKind::InvalidCommand,
            message: "list index out of range".to_string(),
        }
    }

    pub fn other(message: impl Into<String>) -> CommandError {
        CommandError {
            kind: ErrorKind::Other,
            message: message.into(),
        }
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> CommandError {
        CommandError::other(message)
    }
}

impl From<&str> for CommandError {
    fn from(message: &str) -> CommandError {
        CommandError::other(message)
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&beautify_error(&[], self))
    }
}

/// The JSON line answering one request.
pub fn encode_response(result: &Result<Value, CommandError>) -> String {
    let response = match result {
        Ok(value) => json!({"ok": true, "value": value}),
        Err(err) => json!({"ok": false, "error": err.message, "kind": err.kind.wire_name()}),
    };
    let mut line = response.to_string();
    line.push('\n');
    line
}

/// Parses a response line; `Err` describes a malformed response.
pub fn decode_response(line: &str) -> Result<Result<Value, CommandError>, String> {
    let response: Value =
        serde_json::from_str(line).map_err(|err| format!("malformed response: {err}"))?;
    match response.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(Ok(response.get("value").cloned().unwrap_or(Value::Null))),
        Some(false) => {
            let message = match response.get("error") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let kind = response
                .get("kind")
                .and_then(Value::as_str)
                .map_or(ErrorKind::Other, ErrorKind::from_wire_name);
            Ok(Err(CommandError { kind, message }))
        }
        None => Err("malformed response: no \"ok\" field".to_string()),
    }
}

/// The JSON line of a request.
pub fn encode_request(cmd: &[String]) -> String {
    let mut line = json!({ "cmd": cmd }).to_string();
    line.push('\n');
    line
}

/// Parses a request line into its words.
pub fn decode_request(line: &[u8]) -> Result<Vec<String>, String> {
    let request: Value =
        serde_json::from_slice(line).map_err(|err| format!("invalid request: {err}"))?;
    let Some(words) = request.get("cmd").and_then(Value::as_array) else {
        return Err("invalid request: expected {\"cmd\": [words...]}".to_string());
    };
    words
        .iter()
        .map(|word| match word {
            Value::String(text) => Ok(text.clone()),
            // fail2ban's client stringifies non-string arguments; do the same.
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(if *flag { "True" } else { "False" }.to_string()),
            _ => Err("invalid request: command words must be strings".to_string()),
        })
        .collect()
}

/// A request waiting for the handler, with the way back to its connection.
type PendingRequest = (Vec<String>, mpsc::Sender<Result<Value, CommandError>>);

/// The listening side of the control socket.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file we created, so `Drop` never removes a
    /// socket that another server has put in its place.
    socket_id: (u64, u64),
    max_request_len: usize,
    read_timeout: Duration,
    max_connections: usize,
}

impl ControlServer {
    /// Creates the socket at `path` with mode 0600, creating its directory if
    /// missing. A stale socket file (nobody answering) is removed; if a server
    /// answers, or the path is not a socket, binding fails.
    pub fn bind(path: &Path) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir(dir)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("a server is already listening on {}", path.display()),
                    ))
                }
                Err(_) => std::fs::remove_file(path)?,
            },
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        // The umask makes the socket 0600 from its creation on (no window in which
        // others could connect); the chmod below makes sure regardless of umask games.
        // SAFETY: umask only swaps the process's file mode mask; it cannot fail.
        let previous_mask = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(previous_mask) };
        let listener = bound?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let meta = std::fs::symlink_metadata(path)?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            socket_id: (meta.dev(), meta.ino()),
            max_request_len: DEFAULT_MAX_REQUEST_LEN,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Longest request line accepted; longer ones get an error and the connection
    /// is closed.
    pub fn set_max_request_len(&mut self, len: usize) {
        self.max_request_len = len.max(1);
    }

    /// Time a client has to deliver each complete request line.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout.max(Duration::from_millis(1));
    }

    pub fn set_max_connections(&mut self, max: usize) {
        self.max_connections = max.max(1);
    }

    /// Serves requests until `shutdown` becomes true (the handler may set it, e.g.
    /// for `stop`; the reply to that request is still delivered). Every request is
    /// passed to `handler` on the calling thread, one at a time; connections are
    /// read on their own threads so a slow or hostile client cannot stall others.
    pub fn serve<F, E>(&self, mut handler: F, shutdown: &AtomicBool) -> io::Result<()>
    where
        F: FnMut(Vec<String>) -> Result<Value, E>,
        E: Into<CommandError>,
    {
        let listener = self.listener.try_clone()?;
        let (request_tx, request_rx) = mpsc::channel::<PendingRequest>();
        let stop_accepting = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let limits = ConnectionLimits {
            max_request_len: self.max_request_len,
            read_timeout: self.read_timeout,
        };
        let acceptor = {
            let stop = Arc::clone(&stop_accepting);
            let active = Arc::clone(&active);
            let max_connections = self.max_connections;
            std::thread::Builder::new()
                .name("control-accept".into())
                .spawn(move || {
                    accept_loop(listener, request_tx, &stop, active, max_connections, limits)
                })?
        };
        while !shutdown.load(Ordering::SeqCst) {
            match request_rx.recv_timeout(Duration::from_millis(100)) {
                Ok((cmd, reply)) => {
                    let result = handler(cmd).map_err(Into::into);
                    // The connection may be gone already; nothing to do then.
                    let _ = reply.send(result);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        stop_accepting.store(true, Ordering::SeqCst);
        drop(request_rx);
        let _ = acceptor.join();
        // Give connections a moment to write their last reply (e.g. to `stop`).
        let deadline = Instant::now() + Duration::from_secs(1);
        while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|meta| (meta.dev(), meta.ino()) == self.socket_id)
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Clone, Copy)]
struct ConnectionLimits {
    max_request_len: usize,
    read_timeout: Duration,
}

fn accept_loop(
    listener: UnixListener,
    requests: mpsc::Sender<PendingRequest>,
    stop: &AtomicBool,
    active: Arc<AtomicUsize>,
    max_connections: usize,
    limits: ConnectionLimits,
) {
    while !stop.load(Ordering::SeqCst) {
        if !wait_readable(listener.as_raw_fd(), Duration::from_millis(100)) {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => continue,
        };
        if active.load(Ordering::SeqCst) >= max_connections {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let busy = Err(CommandError::other("too many connections"));
            let _ = (&stream).write_all(encode_response(&busy).as_bytes());
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let requests = requests.clone();
        let guard = ActiveGuard(Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || {
                let _guard = guard;
                serve_connection(stream, &requests, limits);
            });
        // If no thread could be made the guard was dropped with the closure and the
        // connection closed: the client sees EOF.
        drop(spawned);
    }
}

/// Decrements the active-connection count however the connection ends.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn wait_readable(fd: std::os::fd::RawFd, timeout: Duration) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid, initialised pollfd that outlives the call.
    let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
    ready > 0
}

/// What reading one request line produced.
enum LineRead {
    Line(Vec<u8>),
    TooLong,
    /// EOF, timeout or I/O error: the connection is over.
    Closed,
}

/// Reads one `\n`-terminated line of at most `max_len` bytes within `timeout`.
fn read_request_line(
    reader: &mut BufReader<&UnixStream>,
    max_len: usize,
    timeout: Duration,
) -> LineRead {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || reader.get_ref().set_read_timeout(Some(remaining)).is_err() {
            return LineRead::Closed;
        }
        let available = match reader.fill_buf() {
            Ok([]) => return LineRead::Closed,
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return LineRead::Closed,
        };
        let (taken, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (available.len(), false),
        };
        let content = if complete { taken - 1 } else { taken };
        if line.len() + content > max_len {
            return LineRead::TooLong;
        }
        line.extend_from_slice(&available[..content]);
        reader.consume(taken);
        if complete {
            return LineRead::Line(line);
        }
    }
}

fn serve_connection(
    stream: UnixStream,
    requests: &mpsc::Sender<PendingRequest>,
    limits: ConnectionLimits,
) {
    if stream.set_write_timeout(Some(limits.read_timeout)).is_err() {
        return;
    }
    let mut reader = BufReader::new(&stream);
    loop {
        let line = match read_request_line(&mut reader, limits.max_request_len, limits.read_timeout)
        {
            LineRead::Line(line) => line,
            LineRead::TooLong => {
                let error = Err(CommandError::other(format!(
                    "request too large (limit {} bytes)",
                    limits.max_request_len
                )));
                // The rest of the oversized line cannot be resynchronised: close.
                let _ = (&stream).write_all(encode_response(&error).as_bytes());
                return;
            }
            LineRead::Closed => return,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result = match decode_request(&line) {
            Ok(cmd) => {
                let (reply_tx, reply_rx) = mpsc::channel();
                if requests.send((cmd, reply_tx)).is_err() {
                    return;
                }
                match reply_rx.recv() {
                    Ok(result) => result,
                    Err(_) => return,
                }
            }
            Err(message) => Err(CommandError::other(message)),
        };
        if (&stream)
            .write_all(encode_response(&result).as_bytes())
            .is_err()
        {
            return;
        }
    }
}

/// Why a command could not be delivered.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens at the socket path (missing file, refused connection).
    Unreachable(io::Error),
    /// The socket exists but we may not connect to it.
    PermissionDenied,
    /// No (complete) answer in time, or a broken connection.
    Io(io::Error),
    /// The server answered something we do not understand.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(err) => write!(f, "server unreachable: {err}"),
            ClientError::PermissionDenied => f.write_str("permission denied"),
            ClientError::Io(err) => write!(f, "{err}"),
            ClientError::Protocol(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends one command and waits (at most `timeout`) for its result.
pub fn send_command(
    socket: &Path,
    cmd: &[String],
    timeout: Duration,
) -> Result<Result<Value, CommandError>, ClientError> {
    let stream = UnixStream::connect(socket).map_err(|err| match err.kind() {
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied,
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::Unreachable(err),
        _ if err.raw_os_error() == Some(libc::ENOTSOCK) => ClientError::Unreachable(err),
        _ => ClientError::Io(err),
    })?;
    let timeout = timeout.max(Duration::from_millis(1));
    stream
        .set_write_timeout(Some(timeout))
        .map_err(ClientError::Io)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(ClientError::Io)?;
    (&stream)
        .write_all(encode_request(cmd).as_bytes())
        .map_err(ClientError::Io)?;
    let mut line = String::new();
    BufReader::new((&stream).take(64 * 1024 * 1024))
        .read_line(&mut line)
        .map_err(ClientError::Io)?;
    if line.is_empty() {
        return Err(ClientError::Protocol(
            "connection closed without an answer".to_string(),
        ));
    }
    decode_response(&line).map_err(ClientError::Protocol)
}

/// `ironban client`: send one command to a running server and print its answer.
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Control socket path (default: `socket` from fail2ban.conf in the config dir).
    #[arg(short = 's', long = "socket", value_name = "SOCKET")]
    pub socket: Option<PathBuf>,
    /// Print the raw JSON value instead of fail2ban-client's layout.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// The command, e.g. `status sshd` or `set sshd banip 1.2.3.4`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "WORDS"
    )]
    pub words: Vec<String>,
}

/// The socket path from `fail2ban.conf` (+ `.local`, `fail2ban.d/`) in `conf`:
/// `[Definition] socket`, falling back to `[DEFAULT]`, else [`DEFAULT_SOCKET`].
pub fn configured_socket(conf: &Path) -> PathBuf {
    use crate::config::ini::{FileCache, Unit};
    let mut cache = FileCache::default();
    let unit = match Unit::read(&mut cache, conf, "fail2ban") {
        Ok(Some(unit)) => unit,
        _ => return PathBuf::from(DEFAULT_SOCKET),
    };
    let configured = match unit.get("Definition", "socket", &[]) {
        Ok(Some(path)) => Some(path),
        _ => unit.get("DEFAULT", "socket", &[]).ok().flatten(),
    };
    match configured {
        Some(path) if !path.trim().is_empty() => PathBuf::from(path.trim()),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// Runs `ironban client`. Exit code 0 when the command succeeded, 255 otherwise.
pub fn run_client(conf: &Path, args: ClientArgs) -> anyhow::Result<u8> {
    let socket = args.socket.unwrap_or_else(|| configured_socket(conf));
    let timeout = if args.timeout.is_finite() && args.timeout > 0.0 {
        Duration::from_secs_f64(args.timeout.min(1e9))
    } else {
        Duration::from_secs(30)
    };
    let result = match send_command(&socket, &args.words, timeout) {
        Ok(result) => result,
        Err(ClientError::Unreachable(_)) => {
            eprintln!(
                "Failed to access socket path: {}. Is ironban running?",
                socket.display()
            );
            return Ok(255);
        }
        Err(ClientError::PermissionDenied) => {
            eprintln!(
                "Permission denied to socket: {}, (you must be root)",
                socket.display()
            );
            return Ok(255);
        }
        Err(err) => {
            eprintln!("ERROR: talking to {}: {err}", socket.display());
            return Ok(255);
        }
    };
    let utf8 = stdout_is_utf8();
    match result {
        Ok(value) => {
            if args.json {
                println!("{value}");
            } else {
                println!("{}", beautify_with(&args.words, &value, utf8));
            }
            Ok(0)
        }
        Err(err) => {
            eprintln!("NOK: {}", err.message);
            if args.json {
                println!(
                    "{}",
                    json!({"error": err.message, "kind": err.kind.wire_name()})
                );
            } else {
                println!("{}", beautify_error(&args.words, &err));
            }
            Ok(255)
        }
    }
}

/// Whether box-drawing characters may be printed (fail2ban checks the stdout
/// encoding; the locale variables are our equivalent, and Python treats the bare
/// C locale as UTF-8 too).
fn stdout_is_utf8() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(value) = std::env::var(var) {
            if value.is_empty() {
                continue;
            }
            let lower = value.to_ascii_lowercase();
            return lower.contains("utf-8")
                || lower.contains("utf8")
                || lower == "c"
                || lower == "posix";
        }
    }
    true
}

/// fail2ban-client's text for a successful command (UTF-8 box characters).
pub fn beautify(cmd: &[String], value: &Value) -> String {
    beautify_with(cmd, value, true)
}

/// fail2ban-client's text for a failed command.
pub fn beautify_error(_cmd: &[String], err: &CommandError) -> String {
    match err.kind {
        ErrorKind::UnknownJail => format!("Sorry but the jail '{}' does not exist", err.message),
        ErrorKind::DuplicateJail => format!("The jail '{}' already exists", err.message),
        ErrorKind::InvalidCommand => "Sorry but the command is invalid".to_string(),
        ErrorKind::Other => err.message.clone(),
    }
}

/// [`beautify`] choosing UTF-8 or ASCII for the `stats` table.
pub fn beautify_with(cmd: &[String], value: &Value, utf8: bool) -> String {
    let word = |i: usize| cmd.get(i).map(String::as_str);
    // Shapes fail2ban does not expect end in its "Beautifier error" path; we print
    // the plain value instead.
    let fallback = || python_str(value);
    match word(0) {
        Some("ping") => return format!("Server replied: {}", python_str(value)),
        Some("version") => return python_str(value),
        Some("start") => return "Jail started".to_string(),
        Some("stop") => {
            return match (value.is_null(), cmd.len()) {
                (true, 1) => "Shutdown successful".to_string(),
                (true, _) => "Jail stopped".to_string(),
                (false, _) => fallback(),
            }
        }
        Some("add") => return format!("Added jail {}", python_str(value)),
        Some("flushlogs") => return format!("logs: {}", python_str(value)),
        Some("echo") => return join_str(value, " ").unwrap_or_else(fallback),
        Some("status") => return beautify_status(cmd, value).unwrap_or_else(fallback),
        Some("stats") | Some("statistics") => {
            return beautify_stats(value, utf8).unwrap_or_else(fallback)
        }
        _ => {}
    }
    let Some(second) = word(1) else {
        return fallback();
    };
    match second {
        "syslogsocket" => return format!("Current syslog socket is:\n`- {}", python_str(value)),
        "logtarget" => return format!("Current logging target is:\n`- {}", python_str(value)),
        "loglevel" => {
            let name = match value {
                Value::Number(number) => number.as_i64().map_or_else(
                    || python_str(value),
                    |level| log_level_name(level).to_string(),
                ),
                other => python_str(other),
            };
            return format!("Current logging level is {}", python_repr_str(&name));
        }
        "dbfile" => {
            return match value {
                Value::Null => "Database currently disabled".to_string(),
                other => format!("Current database file is:\n`- {}", python_str(other)),
            }
        }
        "dbpurgeage" => {
            return match value {
                Value::Null => "Database currently disabled".to_string(),
                Value::Number(number) => {
                    // `%i` truncates floats.
                    let seconds = number
                        .as_i64()
                        .or_else(|| number.as_f64().map(|f| f.trunc() as i64))
                        .unwrap_or(0);
                    format!("Current database purge age is:\n`- {seconds}seconds")
                }
                _ => fallback(),
            };
        }
        _ => {}
    }
    let Some(third) = word(2) else {
        return fallback();
    };
    let list = value.as_array();
    match third {
        "logpath" | "addlogpath" | "dellogpath" => list.map_or_else(fallback, |items| {
            tree_list(
                items,
                "No file is currently monitored",
                "Current monitored log file(s):",
            )
        }),
        "logencoding" => format!("Current log encoding is set to:\n{}", python_str(value)),
        "journalmatch" | "addjournalmatch" | "deljournalmatch" => {
            list.map_or_else(fallback, |groups| {
                if groups.is_empty() {
                    return "No journal match filter set".to_string();
                }
                let joined: Vec<String> = groups
                    .iter()
                    .map(|group| join_str(group, " ").unwrap_or_else(|| python_str(group)))
                    .collect();
                format!("Current match filter:\n{}", joined.join(" + "))
            })
        }
        "datepattern" => {
            let shown = match value {
                Value::Null => "Not set/required".to_string(),
                Value::Array(pair) if pair.len() == 2 => match (&pair[0], &pair[1]) {
                    (Value::Null, name) => python_str(name),
                    (pattern, name) => format!("{} ({})", python_str(pattern), python_str(name)),
                },
                _ => return fallback(),
            };
            format!("Current date pattern set to: {shown}")
        }
        "ignoreip" | "addignoreip" | "delignoreip" => list.map_or_else(fallback, |items| {
            tree_list(
                items,
                "No IP address/network is ignored",
                "These IP addresses/networks are ignored:",
            )
        }),
        "failregex" | "addfailregex" | "delfailregex" | "ignoreregex" | "addignoreregex"
        | "delignoreregex" => list.map_or_else(fallback, |items| {
            if items.is_empty() {
                return "No regular expression is defined".to_string();
            }
            let mut text = "The following regular expression are defined:".to_string();
            for (index, item) in items.iter().enumerate() {
                let branch = if index + 1 == items.len() { "`-" } else { "|-" };
                text.push_str(&format!("\n{branch} [{index}]: {}", python_str(item)));
            }
            text
        }),
        "actions" => list.map_or_else(fallback, |items| {
            if items.is_empty() {
                format!("No actions for jail {second}")
            } else {
                format!(
                    "The jail {second} has the following actions:\n{}",
                    join_items(items, ", ")
                )
            }
        }),
        "actionproperties" | "actionmethods" => list.map_or_else(fallback, |items| {
            let what = if third == "actionproperties" {
                "properties"
            } else {
                "methods"
            };
            let action = word(3).unwrap_or("");
            if items.is_empty() {
                format!("No {what} for jail {second} action {action}")
            } else {
                format!(
                    "The jail {second} action {action} has the following {what}:\n{}",
                    join_items(items, ", ")
                )
            }
        }),
        "banip" if word(0) == Some("get") => list.map_or_else(fallback, |items| {
            let separator = match word(3) {
                None => " ",
                Some("--with-time") => "\n",
                Some(custom) => custom,
            };
            join_items(items, separator)
        }),
        _ => fallback(),
    }
}

/// `|- a` / `` `- b`` lines under a heading, or the empty message.
fn tree_list(items: &[Value], empty: &str, heading: &str) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    let mut text = heading.to_string();
    for (index, item) in items.iter().enumerate() {
        let branch = if index + 1 == items.len() { "`-" } else { "|-" };
        text.push_str(&format!("\n{branch} {}", python_str(item)));
    }
    text
}

fn join_items(items: &[Value], separator: &str) -> String {
    items
        .iter()
        .map(python_str)
        .collect::<Vec<_>>()
        .join(separator)
}

fn join_str(value: &Value, separator: &str) -> Option<String> {
    value.as_array().map(|items| join_items(items, separator))
}

/// A status value: lists are space-joined, anything else printed with `str()`.
fn status_value(value: &Value) -> String {
    join_str(value, " ").unwrap_or_else(|| python_str(value))
}

/// `[label, value]` pairs of a status response.
fn status_pairs(items: &[Value]) -> Option<Vec<(String, &Value)>> {
    items
        .iter()
        .map(|pair| match pair.as_array()?.as_slice() {
            [label, value] => Some((python_str(label), value)),
            _ => None,
        })
        .collect()
}

/// One jail's status tree (`|- Filter` / `` `- Actions`` with their items), each
/// line prefixed by `indent`.
fn jail_status_lines(value: &Value, indent: &str, out: &mut Vec<String>) -> Option<()> {
    let sections = status_pairs(value.as_array()?)?;
    for (index, (label, items)) in sections.iter().enumerate() {
        let last = index + 1 == sections.len();
        out.push(format!(
            "{indent}{} {label}",
            if last { "`-" } else { "|-" }
        ));
        let child_indent = format!("{indent}{}", if last { "   " } else { "|  " });
        let entries = status_pairs(items.as_array()?)?;
        for (inner, (name, item)) in entries.iter().enumerate() {
            let branch = if inner + 1 == entries.len() {
                "`-"
            } else {
                "|-"
            };
            out.push(format!(
                "{child_indent}{branch} {name}:\t{}",
                status_value(item)
            ));
        }
    }
    Some(())
}

fn beautify_status(cmd: &[String], value: &Value) -> Option<String> {
    let mut lines = Vec::new();
    match cmd.get(1).map(String::as_str) {
        Some(jail) if jail != "--all" => {
            lines.push(format!("Status for the jail: {jail}"));
            jail_status_lines(value, "", &mut lines)?;
        }
        all => {
            let items = value.as_array()?;
            // With `--all` the last item is the {jail: status} map.
            let (server_items, jails) = match (all, items.split_last()) {
                (Some(_), Some((Value::Object(jails), rest))) => (rest, Some(jails)),
                (Some(_), _) => return None,
                (None, _) => (items.as_slice(), None),
            };
            let jails = jails.filter(|map| !map.is_empty());
            lines.push("Status".to_string());
            let pairs = status_pairs(server_items)?;
            for (index, (label, item)) in pairs.iter().enumerate() {
                let last = jails.is_none() && index + 1 == pairs.len();
                lines.push(format!(
                    "{} {label}:\t{}",
                    if last { "`-" } else { "|-" },
                    status_value(item)
                ));
            }
            if let Some(jails) = jails {
                lines.push("`- Status for the jails:".to_string());
                for (index, (name, status)) in jails.iter().enumerate() {
                    let last = index + 1 == jails.len();
                    lines.push(format!(
                        "   {} Jail: {name}",
                        if last { "`-" } else { "|-" }
                    ));
                    let indent = if last { "      " } else { "   |  " };
                    jail_status_lines(status, indent, &mut lines)?;
                }
            }
        }
    }
    Some(lines.join("\n"))
}

/// The `stats` table: `{jail: [backend, [failed cur, tot], [banned cur, tot]]}`.
fn beautify_stats(value: &Value, utf8: bool) -> Option<String> {
    let jails: &Map<String, Value> = match value {
        Value::Null => return Some("No jails found.".to_string()),
        Value::Object(map) if map.is_empty() => return Some("No jails found.".to_string()),
        Value::Object(map) => map,
        _ => return None,
    };
    // vertical, horizontal, left tee, cross (thin), cross, bottom tee, thin vertical, thin horizontal
    let chars: [&str; 8] = if utf8 {
        [
            "\u{2551}", "\u{2550}", "\u{255F}", "\u{256B}", "\u{256C}", "\u{2569}", "\u{2502}",
            "\u{2500}",
        ]
    } else {
        ["|", "-", "|", "x", "x", "-", "|", "-"]
    };
    let [vertical, double, left_tee, thin_cross, cross, bottom, thin_vertical, thin] = chars;
    let mut rows: Vec<[String; 6]> = Vec::new();
    for (name, stats) in jails {
        let (backend, filter, actions) = match stats.as_array()?.as_slice() {
            [backend, filter, actions] => (backend, filter.as_array()?, actions.as_array()?),
            _ => return None,
        };
        let (filter, actions) = match (filter.as_slice(), actions.as_slice()) {
            ([fc, ft], [ac, at]) => ([fc, ft], [ac, at]),
            _ => return None,
        };
        rows.push([
            name.clone(),
            python_str(backend),
            python_str(filter[0]),
            python_str(filter[1]),
            python_str(actions[0]),
            python_str(actions[1]),
        ]);
    }
    let min_widths = [8, 8, 3, 3, 3, 3];
    let mut widths = min_widths;
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let left = |text: &str, width: usize| format!("{text:<width$}");
    let right = |text: &str, width: usize| format!("{text:>width$}");
    let group_widths = [
        widths[0],
        widths[1],
        3 + widths[2] + widths[3],
        3 + widths[4] + widths[5],
    ];
    let column_separator = format!(" {vertical} ");
    let format_row = |cells: [&str; 6]| {
        [
            left(cells[0], widths[0]),
            left(cells[1], widths[1]),
            format!(
                "{} {thin_vertical} {}",
                right(cells[2], widths[2]),
                right(cells[3], widths[3])
            ),
            format!(
                "{} {thin_vertical} {}",
                right(cells[4], widths[4]),
                right(cells[5], widths[5])
            ),
        ]
        .join(&column_separator)
    };
    let rule = |junction: &str| {
        let segments: Vec<String> = group_widths.iter().map(|&n| double.repeat(n)).collect();
        format!(
            "{double}{}{double}",
            segments.join(&format!("{double}{junction}{double}"))
        )
    };
    let mut lines = Vec::new();
    lines.push(format!(
        " {}",
        [
            left("", widths[0]),
            left("", widths[1]),
            left("Filter", group_widths[2]),
            left("Actions", group_widths[3]),
        ]
        .join(&column_separator)
    ));
    let thin_segments: Vec<String> = group_widths[2..].iter().map(|&n| thin.repeat(n)).collect();
    lines.push(format!(
        " {} {left_tee}{thin}{}{thin}",
        [left("Jail", widths[0]), left("Backend", widths[1])].join(&column_separator),
        thin_segments.join(&format!("{thin}{thin_cross}{thin}"))
    ));
    lines.push(format!(
        " {}",
        format_row(["", "", "cur", "tot", "cur", "tot"])
    ));
    lines.push(rule(cross));
    for row in &rows {
        lines.push(format!(
            " {}",
            format_row([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]])
        ));
    }
    lines.push(rule(bottom));
    Some(lines.join("\n"))
}

/// Python's `logging.getLevelName` with fail2ban's extra levels.
fn log_level_name(level: i64) -> String {
    match level {
        0 => "NOTSET".to_string(),
        5 => "HEAVY".to_string(),
        7 => "TRACE".to_string(),
        10 => "DEBUG".to_string(),
        18 => "MSG".to_string(),
        20 => "INFO".to_string(),
        25 => "NOTICE".to_string(),
        30 => "WARNING".to_string(),
        40 => "ERROR".to_string(),
        50 => "CRITICAL".to_string(),
        1..=49 => format!("#{level:02}-Lev."),
        _ => format!("Level {level}"),
    }
}

/// Python `str()` of a value: strings bare, containers with `repr()` inside.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => python_repr(other),
    }
}

/// Python `repr()` of a value (tuples arrive as lists and print as such).
pub fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(int), _, _) => int.to_string(),
            (None, Some(uint), _) => uint.to_string(),
            (None, None, Some(float)) => python_float(float),
            _ => number.to_string(),
        },
        Value::String(text) => python_repr_str(text),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(key, item)| format!("{}: {}", python_repr_str(key), python_repr(item)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's float `repr`: shortest round-trip digits, `.0` on integral values and
/// exponent form (`1e+16`, `1e-05`) outside [1e-4, 1e16).
fn python_float(float: f64) -> String {
    if float.is_nan() {
        return "nan".to_string();
    }
    if float.is_infinite() {
        return if float > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's Debug uses the same shortest digits and the same thresholds.
    let debug = format!("{float:?}");
    match debug.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => debug,
    }
}

/// Python's `repr()` of a str (one implementation, the configuration stream's).
pub fn python_repr_str(text: &str) -> String {
    crate::config::value::python_str_repr(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(python_repr(&json!(null)), "None");
        assert_eq!(python_repr(&json!([1, 0])), "[1, 0]");
        assert_eq!(
            python_repr(&json!([{"test": ["1.2.3.4"]}])),
            "[{'test': ['1.2.3.4']}]"
        );
        assert_eq!(python_repr(&json!(5400.0)), "5400.0");
        assert_eq!(python_repr(&json!(1e16)), "1e+16");
        assert_eq!(python_repr(&json!(0.00001)), "1e-05");
        assert_eq!(python_repr(&json!(0.5)), "0.5");
        assert_eq!(python_repr_str("it's"), "\"it's\"");
        assert_eq!(python_repr_str("a\tb\\"), "'a\\tb\\\\'");
        assert_eq!(python_str(&json!("plain")), "plain");
    }

    #[test]
    fn level_names() {
        assert_eq!(log_level_name(20), "INFO");
        assert_eq!(log_level_name(25), "NOTICE");
        assert_eq!(log_level_name(3), "#03-Lev.");
        assert_eq!(log_level_name(60), "Level 60");
    }

    #[test]
    fn request_and_response_round_trip() {
        let cmd = vec!["status".to_string(), "sshd".to_string()];
        let line = encode_request(&cmd);
        assert!(line.ends_with('\n'));
        assert_eq!(decode_request(line.trim_end().as_bytes()), Ok(cmd));
        assert!(decode_request(b"not json").is_err());
        assert!(decode_request(b"{\"cmd\": [[1]]}").is_err());
        let err = Err(CommandError::unknown_jail("nojail"));
        assert_eq!(decode_response(&encode_response(&err)), Ok(err));
        let ok = Ok(json!([["Number of jail", 0]]));
        assert_eq!(decode_response(&encode_response(&ok)), Ok(ok));
        assert!(decode_response("{}").is_err());
    }
}
