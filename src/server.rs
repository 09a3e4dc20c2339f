//! The daemon process and the one-shot mode: load the configuration, build the engine,
//! wake on log changes, control requests, signals and ban expiry, and stop cleanly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config;
use crate::control::ControlServer;
use crate::engine::{Engine, Mode};
use crate::logsource::Watcher;

#[derive(clap::Args)]
pub struct Args {
    /// Control socket path (default: fail2ban.conf's `socket`).
    #[arg(short = 's', long = "socket")]
    pub socket: Option<PathBuf>,
    /// PID file path (default: fail2ban.conf's `pidfile`).
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
    /// Stay in the foreground (ironban never forks; accepted for fail2ban compatibility).
    #[arg(short = 'f', long = "foreground")]
    pub foreground: bool,
    /// Remove a stale socket file before starting.
    #[arg(short = 'x', long = "force")]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct RunOnceArgs {
    /// Also log every failure found and every ban on stderr (cron mails stderr, so the
    /// default is warnings and errors only).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print what would be banned and unbanned; run no action and store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// State database (default: fail2ban.conf's `dbfile`).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Tell systemd we are ready, when started as a notify service.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(b"READY=1", &addr))
    } else {
        sock.send_to(b"READY=1", Path::new(&path))
    };
    if let Err(err) = sent {
        log::warn(&format!("sd_notify failed: {err}"));
    }
}

/// Everything that wakes the main loop.
pub enum Wake {
    LogsChanged,
    Control(Vec<String>, mpsc::Sender<Result<serde_json::Value, String>>),
}

pub fn run(conf: &Path, args: Args) -> anyhow::Result<u8> {
    let loaded = config::load(conf).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !loaded.ok {
        anyhow::bail!(
            "the configuration in {} has errors; refusing to start",
            conf.display()
        );
    }
    let early = config::early_options(conf).map_err(|e| anyhow::anyhow!("{e}"))?;
    let socket = args.socket.unwrap_or_else(|| PathBuf::from(&early.socket));
    let pidfile = args
        .pidfile
        .unwrap_or_else(|| PathBuf::from(&early.pidfile));

    install_signal_handlers();
    // A stale socket is replaced by `bind` itself when no server answers on it, so `-x`
    // is accepted but not needed.
    let _ = args.force;
    let control = ControlServer::bind(&socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    write_pidfile(&pidfile)?;

    let mut engine = Engine::start(conf, &loaded.stream, Mode::Daemon)?;
    let (wake_tx, wake_rx) = mpsc::channel::<Wake>();
    let control_tx = wake_tx.clone();
    std::thread::spawn(move || {
        // The process ends with the main loop; this thread never needs to stop on its own.
        static NEVER: AtomicBool = AtomicBool::new(false);
        let served = control.serve(
            move |words| {
                let (reply_tx, reply_rx) = mpsc::channel();
                control_tx
                    .send(Wake::Control(words, reply_tx))
                    .map_err(|_| "server is stopping".to_string())?;
                reply_rx
                    .recv()
                    .map_err(|_| "server is stopping".to_string())?
            },
            &NEVER,
        );
        if let Err(err) = served {
            log::error(&format!("control socket failed: {err}"));
        }
    });
    let watch_paths = engine.watched_paths();
    let mut watcher = Watcher::new(engine.backend(), Duration::from_secs(1))?;
    for path in &watch_paths {
        watcher.add(path);
    }
    let watch_tx = wake_tx;
    std::thread::spawn(move || loop {
        // A wake-up every few seconds even without events is a cheap safety net.
        for _ in 0..5 {
            if watcher.wait(Duration::from_secs(1)) {
                break;
            }
        }
        if watch_tx.send(Wake::LogsChanged).is_err() {
            return;
        }
    });
    notify_ready();
    log::info("Server ready");

    log::batch(|| engine.process_logs());
    // When the work of a burst of lines or commands was done (a quiet second since).
    let mut worked_at = Some(Instant::now());
    while !STOP_REQUESTED.load(Ordering::SeqCst) && !engine.stop_requested() {
        let timeout = engine
            .seconds_to_next_unban()
            .map(|s| s.clamp(0.0, 1.0))
            .unwrap_or(1.0);
        match wake_rx.recv_timeout(Duration::from_secs_f64(timeout)) {
            Ok(Wake::LogsChanged) => {
                // The watcher's periodic wakes read nothing: they leave nothing to trim.
                if log::batch(|| engine.process_logs()) > 0 {
                    worked_at = Some(Instant::now());
                }
            }
            Ok(Wake::Control(words, reply)) => {
                let answer = handle_control(&mut engine, conf, &words);
                let _ = reply.send(answer);
                worked_at = Some(Instant::now());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // A burst leaves scratch memory and freed buffers behind: release them once
                // things are quiet, not after every batch (a trim walks the heap).
                if worked_at.is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
                    engine.release_idle_memory();
                    worked_at = None;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        engine.unban_expired();
    }
    engine.stop();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pidfile);
    log::info("Exiting ironban");
    Ok(0)
}

/// `reload` needs the configuration directory; everything else is the engine's.
fn handle_control(
    engine: &mut Engine,
    conf: &Path,
    words: &[String],
) -> Result<serde_json::Value, String> {
    match words.first().map(String::as_str) {
        Some("reload") => {
            let loaded = config::load(conf).map_err(|e| e.to_string())?;
            if !loaded.ok {
                return Err(format!(
                    "configuration in {} has errors; keeping the running one",
                    conf.display()
                ));
            }
            engine.reload(&loaded.stream, &words[1..])?;
            Ok(serde_json::Value::String("OK".into()))
        }
        _ => engine.command(words),
    }
}

fn write_pidfile(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write pid file {}", path.display()))
}

pub fn run_once(conf: &Path, args: RunOnceArgs) -> anyhow::Result<u8> {
    let loaded = config::load(conf).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !loaded.ok {
        anyhow::bail!("the configuration in {} has errors", conf.display());
    }
    if !args.verbose {
        log::set_level("WARNING");
    }
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Once { db: args.db }
    };
    let mut engine = Engine::start(conf, &loaded.stream, mode)?;
    engine.process_logs();
    engine.unban_expired();
    for line in engine.report_lines() {
        println!("{line}");
    }
    engine.finish_once();
    Ok(0)
}

/// Logging to stderr (systemd's journal picks it up), filtered by fail2ban's `loglevel`.
pub mod log {
    use std::io::Write;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    const ERROR: u8 = 40;
    const WARNING: u8 = 30;
    const INFO: u8 = 20;

    static THRESHOLD: AtomicU8 = AtomicU8::new(INFO);

    /// Set the threshold from a fail2ban `loglevel` name or number (unknown names keep INFO).
    pub fn set_level(level: &str) {
        let value = match level.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" => 50,
            "ERROR" => ERROR,
            "WARN" | "WARNING" | "NOTICE" => WARNING,
            "INFO" => INFO,
            "DEBUG" | "TRACEDEBUG" | "HEAVYDEBUG" | "NOTSET" => 0,
            other => other.parse().unwrap_or(INFO),
        };
        THRESHOLD.store(value, Ordering::Relaxed);
    }

    /// Records held by [`batch`]; None while records are written one by one.
    static HELD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

    /// Held records are written once this much has gathered, even before the batch ends.
    const HELD_MAX: usize = 64 * 1024;

    fn held() -> MutexGuard<'static, Option<Vec<u8>>> {
        HELD.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_out(bytes: &[u8]) {
        // One write per record or batch: stderr is unbuffered, `eprintln!` writes piece by
        // piece.
        let _ = std::io::stderr().lock().write_all(bytes);
    }

    fn emit(level: u8, name: &str, msg: &str) {
        if level < THRESHOLD.load(Ordering::Relaxed) {
            return;
        }
        let mut held = held();
        match held.as_mut() {
            Some(buffer) => {
                let _ = writeln!(buffer, "{name} {msg}");
                if buffer.len() >= HELD_MAX {
                    write_out(buffer);
                    buffer.clear();
                }
            }
            None => {
                drop(held);
                write_out(format!("{name} {msg}\n").as_bytes());
            }
        }
    }

    /// Runs `work` with the records of every thread held and written together when it
    /// returns (or unwinds): a round over busy logs logs with a few writes, not one per
    /// record.
    pub fn batch<T>(work: impl FnOnce() -> T) -> T {
        struct Release;
        impl Drop for Release {
            fn drop(&mut self) {
                if let Some(buffer) = held().take() {
                    write_out(&buffer);
                }
            }
        }
        let mut held = held();
        if held.is_some() {
            // Inside another batch: that one writes.
            drop(held);
            return work();
        }
        *held = Some(Vec::new());
        drop(held);
        let _release = Release;
        work()
    }

    pub fn info(msg: &str) {
        emit(INFO, "INFO", msg);
    }
    pub fn warn(msg: &str) {
        emit(WARNING, "WARNING", msg);
    }
    pub fn error(msg: &str) {
        emit(ERROR, "ERROR", msg);
    }
}
