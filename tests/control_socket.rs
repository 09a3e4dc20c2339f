//! The control socket over a real Unix socket: round trips, permissions, hostile
//! clients, and the `ironban client` command line.

mod common;

use common::TempDir;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ironban::control::{
    configured_socket, send_command, ClientError, CommandError, ControlServer, ErrorKind,
    DEFAULT_SOCKET,
};
use serde_json::{json, Value};

/// What the test server answers, a small stand-in for the real server.
fn test_handler(cmd: Vec<String>) -> Result<Value, CommandError> {
    let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["ping"] => Ok(json!("pong")),
        ["echo", rest @ ..] => Ok(json!(rest)),
        ["status"] => Ok(json!([["Number of jail", 1], ["Jail list", "sshd"]])),
        ["status", "sshd"] => Ok(json!([
            [
                "Filter",
                [
                    ["Currently failed", 0],
                    ["Total failed", 3],
                    ["File list", ["/var/log/auth.log"]]
                ]
            ],
            [
                "Actions",
                [
                    ["Currently banned", 1],
                    ["Total banned", 1],
                    ["Banned IP list", ["1.2.3.4"]]
                ]
            ]
        ])),
        ["status", jail] => Err(CommandError::unknown_jail(jail)),
        ["stop"] => Ok(Value::Null),
        _ => Err(CommandError::other("Invalid command")),
    }
}

struct Running {
    path: PathBuf,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn stop(mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start(path: &Path, configure: impl FnOnce(&mut ControlServer)) -> Running {
    let mut server = ControlServer::bind(path).expect("bind");
    configure(&mut server);
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&shutdown);
    let thread = std::thread::spawn(move || {
        let stop_flag = Arc::clone(&flag);
        server
            .serve(
                move |cmd: Vec<String>| {
                    if cmd == ["stop"] {
                        stop_flag.store(true, Ordering::SeqCst);
                    }
                    test_handler(cmd)
                },
                &flag,
            )
            .expect("serve");
    });
    Running {
        path: path.to_path_buf(),
        shutdown,
        thread: Some(thread),
    }
}

fn cmd(text: &str) -> Vec<String> {
    text.split(' ').map(str::to_string).collect()
}

fn raw_exchange(path: &Path, payload: &[u8]) -> (UnixStream, String) {
    let mut stream = UnixStream::connect(path).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(payload).expect("write");
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .expect("read response");
    (stream, line)
}

#[test]
fn round_trip_values_and_errors() {
    let dir = TempDir::new("rt");
    let server = start(&dir.file("s.sock"), |_| {});
    let timeout = Duration::from_secs(5);
    let pong = send_command(&server.path, &cmd("ping"), timeout).expect("send");
    assert_eq!(pong, Ok(json!("pong")));
    let echo = send_command(&server.path, &cmd("echo a b"), timeout).expect("send");
    assert_eq!(echo, Ok(json!(["a", "b"])));
    let err = send_command(&server.path, &cmd("status nojail"), timeout)
        .expect("send")
        .expect_err("unknown jail");
    assert_eq!(err.kind, ErrorKind::UnknownJail);
    assert_eq!(err.message, "nojail");
    server.stop();
}

#[test]
fn socket_mode_is_0600_and_file_removed_on_drop() {
    let dir = TempDir::new("mode");
    let path = dir.file("sub").join("s.sock");
    let server = ControlServer::bind(&path).expect("bind creates directory");
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(server);
    assert!(!path.exists());
}

#[test]
fn stale_socket_is_replaced_but_live_server_is_not() {
    let dir = TempDir::new("stale");
    let path = dir.file("s.sock");
    drop(UnixListener::bind(&path).expect("stale listener"));
    assert!(path.exists());
    let server = start(&path, |_| {});
    let second = ControlServer::bind(&path);
    assert!(second.is_err(), "second server must be refused");
    // The refused bind must not have removed the live server's socket.
    let pong = send_command(&path, &cmd("ping"), Duration::from_secs(5)).expect("send");
    assert_eq!(pong, Ok(json!("pong")));
    server.stop();
    fs::write(&path, b"not a socket").expect("regular file");
    assert!(ControlServer::bind(&path).is_err());
}

#[test]
fn garbage_gets_an_error_and_the_connection_keeps_working() {
    let dir = TempDir::new("garbage");
    let server = start(&dir.file("s.sock"), |_| {});
    let (stream, line) = raw_exchange(&server.path, b"this is not json\n");
    let response: Value = serde_json::from_str(&line).expect("json response");
    assert_eq!(response["ok"], json!(false));
    assert!(response["error"]
        .as_str()
        .unwrap_or("")
        .contains("invalid request"));
    // Same connection, a valid request now.
    (&stream)
        .write_all(b"{\"cmd\": [\"ping\"]}\n")
        .expect("write");
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).expect("read");
    assert_eq!(
        serde_json::from_str::<Value>(&line).expect("json"),
        json!({"ok": true, "value": "pong"})
    );
    let (_, line) = raw_exchange(&server.path, b"{\"cmd\": \"ping\"}\n");
    assert!(line.contains("\"ok\":false"), "{line}");
    server.stop();
}

#[test]
fn oversized_request_is_refused_and_server_keeps_serving() {
    let dir = TempDir::new("big");
    let server = start(&dir.file("s.sock"), |s| s.set_max_request_len(1024));
    let mut payload = vec![b'x'; 100_000];
    payload.push(b'\n');
    let mut stream = UnixStream::connect(&server.path).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The server may close before reading everything; a write error is fine.
    let _ = stream.write_all(&payload);
    let mut line = String::new();
    let _ = BufReader::new(&stream).read_line(&mut line);
    assert!(line.contains("request too large"), "{line}");
    let pong = send_command(&server.path, &cmd("ping"), Duration::from_secs(5)).expect("send");
    assert_eq!(pong, Ok(json!("pong")));
    server.stop();
}

#[test]
fn silent_client_does_not_stall_others_and_is_dropped() {
    let dir = TempDir::new("slow");
    let server = start(&dir.file("s.sock"), |s| {
        s.set_read_timeout(Duration::from_millis(300))
    });
    let idle = UnixStream::connect(&server.path).expect("connect idle");
    let started = Instant::now();
    let pong = send_command(&server.path, &cmd("ping"), Duration::from_secs(5)).expect("send");
    assert_eq!(pong, Ok(json!("pong")));
    assert!(started.elapsed() < Duration::from_millis(250));
    // After the read timeout the idle connection is closed (EOF).
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut line = String::new();
    let read = BufReader::new(&idle).read_line(&mut line).expect("read");
    assert_eq!(read, 0);
    server.stop();
}

#[test]
fn too_many_connections_are_turned_away() {
    let dir = TempDir::new("many");
    let server = start(&dir.file("s.sock"), |s| {
        s.set_max_connections(2);
        s.set_read_timeout(Duration::from_secs(2));
    });
    let _a = UnixStream::connect(&server.path).expect("a");
    let _b = UnixStream::connect(&server.path).expect("b");
    std::thread::sleep(Duration::from_millis(200));
    // The third connection is answered without being read from.
    let third = UnixStream::connect(&server.path).expect("c");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut line = String::new();
    BufReader::new(&third).read_line(&mut line).expect("read");
    assert!(line.contains("too many connections"), "{line}");
    server.stop();
}

#[test]
fn unreachable_socket_is_reported() {
    let dir = TempDir::new("unreach");
    let path = dir.file("none.sock");
    match send_command(&path, &cmd("ping"), Duration::from_secs(1)) {
        Err(ClientError::Unreachable(_)) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .args(["client", "-s"])
        .arg(&path)
        .arg("ping")
        .output()
        .expect("run client");
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Failed to access socket path: {}. Is ironban running?\n",
            path.display()
        )
    );
}

fn run_client(path: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .args(["client", "-s"])
        .arg(path)
        .args(args)
        .output()
        .expect("run client");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn client_command_prints_fail2ban_layouts() {
    let dir = TempDir::new("cli");
    let server = start(&dir.file("s.sock"), |_| {});
    let (code, out, _) = run_client(&server.path, &["ping"]);
    assert_eq!((code, out.as_str()), (Some(0), "Server replied: pong\n"));
    let (code, out, _) = run_client(&server.path, &["status", "sshd"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        concat!(
            "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t0\n",
            "|  |- Total failed:\t3\n|  `- File list:\t/var/log/auth.log\n`- Actions\n",
            "   |- Currently banned:\t1\n   |- Total banned:\t1\n",
            "   `- Banned IP list:\t1.2.3.4\n"
        )
    );
    let (code, out, _) = run_client(&server.path, &["--json", "status"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        json!([["Number of jail", 1], ["Jail list", "sshd"]])
    );
    let (code, out, err) = run_client(&server.path, &["status", "nojail"]);
    assert_eq!(code, Some(255));
    assert_eq!(out, "Sorry but the jail 'nojail' does not exist\n");
    assert!(err.contains("NOK"), "{err}");
    // Hyphenated words pass through as command words.
    let (code, out, _) = run_client(&server.path, &["echo", "--all", "-x"]);
    assert_eq!((code, out.as_str()), (Some(0), "--all -x\n"));
    let (code, out, _) = run_client(&server.path, &["stop"]);
    assert_eq!((code, out.as_str()), (Some(0), "Shutdown successful\n"));
    // `stop` made the server's loop return.
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.thread.as_ref().is_some_and(|t| !t.is_finished()) {
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn socket_path_comes_from_fail2ban_conf() {
    let dir = TempDir::new("conf");
    fs::write(
        dir.file("fail2ban.conf"),
        "[DEFAULT]\nsocket = /run/x/default.sock\n[Definition]\n",
    )
    .expect("write conf");
    assert_eq!(
        configured_socket(dir.path()),
        PathBuf::from("/run/x/default.sock")
    );
    fs::write(
        dir.file("fail2ban.local"),
        "[Definition]\nsocket = /run/y/local.sock\n",
    )
    .expect("write local");
    assert_eq!(
        configured_socket(dir.path()),
        PathBuf::from("/run/y/local.sock")
    );
    let empty = TempDir::new("noconf");
    assert_eq!(
        configured_socket(empty.path()),
        PathBuf::from(DEFAULT_SOCKET)
    );
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fail2ban-upstream/config");
    if upstream.is_dir() {
        assert_eq!(configured_socket(&upstream), PathBuf::from(DEFAULT_SOCKET));
    }
}
