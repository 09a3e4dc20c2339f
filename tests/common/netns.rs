//! Two network namespaces joined by a veth pair (server 192.0.2.1, client 192.0.2.2), a TCP
//! listener in the server namespace, and a connect probe from the client. Removed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::run_ok;

pub const SERVER_IP: &str = "192.0.2.1";
pub const CLIENT_IP: &str = "192.0.2.2";

/// Two namespaces joined by a veth pair, removed on drop.
pub struct Netns {
    pub server: String,
    pub client: String,
    port: u16,
    listener: Option<Child>,
}

impl Netns {
    pub fn create(tag: &str, port: u16) -> Netns {
        let id = format!("{}{}", tag, std::process::id() % 100_000);
        let server = format!("ibs{id}");
        let client = format!("ibc{id}");
        let (va, vb) = (format!("ib{id}a"), format!("ib{id}b"));
        // Leftovers of an earlier crashed run with the same pid would make `add` fail.
        let _ = quiet("ip", &["netns", "del", &server]);
        let _ = quiet("ip", &["netns", "del", &client]);
        run_ok("ip", &["netns", "add", &server]);
        run_ok("ip", &["netns", "add", &client]);
        run_ok(
            "ip",
            &["link", "add", &va, "type", "veth", "peer", "name", &vb],
        );
        run_ok("ip", &["link", "set", &va, "netns", &server]);
        run_ok("ip", &["link", "set", &vb, "netns", &client]);
        run_ok(
            "ip",
            &[
                "-n",
                &server,
                "addr",
                "add",
                &format!("{SERVER_IP}/24"),
                "dev",
                &va,
            ],
        );
        run_ok(
            "ip",
            &[
                "-n",
                &client,
                "addr",
                "add",
                &format!("{CLIENT_IP}/24"),
                "dev",
                &vb,
            ],
        );
        for (ns, dev) in [(&server, &va), (&client, &vb)] {
            run_ok("ip", &["-n", ns, "link", "set", dev, "up"]);
            run_ok("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        let listener = Command::new("ip")
            .args(["netns", "exec", &server, "python3", "-c"])
            .arg(format!(
                "import socket,time\n\
                 s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('{SERVER_IP}', {port})); s.listen(64); s.settimeout(1)\n\
                 end=time.time()+300\n\
                 while time.time()<end:\n\
                 \x20 try:\n\
                 \x20   c,_=s.accept(); c.close()\n\
                 \x20 except OSError: pass\n"
            ))
            .spawn()
            .expect("start listener");
        let ns = Netns {
            server,
            client,
            port,
            listener: Some(listener),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ns.client_connects() {
            assert!(Instant::now() < deadline, "listener never came up");
            std::thread::sleep(Duration::from_millis(100));
        }
        ns
    }

    /// Does a TCP connect from the client namespace reach the listener within a second?
    pub fn client_connects(&self) -> bool {
        let port = self.port;
        Command::new("ip")
            .args(["netns", "exec", &self.client, "python3", "-c"])
            .arg(format!(
                "import socket,sys\n\
                 try:\n\
                 \x20 socket.create_connection(('{SERVER_IP}', {port}), timeout=1).close()\n\
                 except OSError: sys.exit(1)\n"
            ))
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.server, program])
            .args(args)
            .output()
            .expect("run in namespace");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut l) = self.listener.take() {
            let _ = l.kill();
            let _ = l.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.server])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.client])
            .status();
    }
}

/// Run a command whose failure is expected and harmless (cleanup of what may not exist).
fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
