//! Shared by the cluster process tests: start an `agent-system node` child on 127.0.0.1:0, read
//! its address from its banner (bounded wait), kill it on drop; run a child command to its exit
//! with a bound.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agent_system::node::COOKIE_ENV;

/// A child node, killed (SIGKILL) when dropped.
pub struct NodeProcess {
    /// Its address, from its banner.
    pub addr: SocketAddr,
    /// Its loopback HTTP control address (`control=` in its banner).
    pub control: SocketAddr,
    /// The process.
    pub child: Child,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `agent-system node` named `name` in cluster `cluster` on 127.0.0.1:0 with `cookie` in
/// its environment (plus `extra` arguments) and waits (at most 20 s) for its banner.
pub fn start_node(name: &str, cluster: &str, cookie: &str, extra: &[&str]) -> NodeProcess {
    start_node_at(name, cluster, cookie, "127.0.0.1:0", extra)
}

/// [`start_node`] listening on `listen`.
pub fn start_node_at(
    name: &str,
    cluster: &str,
    cookie: &str,
    listen: &str,
    extra: &[&str],
) -> NodeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(["--log-level", "warn", "node", "--listen", listen])
        .args(["--node-name", name, "--cluster", cluster, "--workers", "48"])
        .args(["--lifetime", "60s"])
        .args(extra)
        .env_clear()
        .env(COOKIE_ENV, cookie)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agent-system node starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    let mut node = NodeProcess {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        control: SocketAddr::from(([127, 0, 0, 1], 0)),
        child,
    };
    let banner = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{name}: no banner within 20 s"));
    let addr = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .unwrap_or_else(|| panic!("{name}: no addr in banner {banner:?}"));
    node.addr = addr.parse().expect("banner address");
    let control = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("control="))
        .unwrap_or_else(|| panic!("{name}: no control address in banner {banner:?}"));
    node.control = control.parse().expect("banner control address");
    assert!(
        banner.starts_with(&format!("NODE name={name} ")),
        "{banner}"
    );
    assert_ne!(node.addr.port(), 0, "the banner has the real port");
    node
}

/// A little entropy for the cookie (no extra crate): time and the address of a local.
pub fn rand_suffix() -> u128 {
    let local = 0u8;
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ (&local as *const u8 as usize as u128)
}

/// Runs `agent-system ARGS` with only `env` in its environment to its exit, killing it after
/// `bound`.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)], bound: Duration) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent-system starts");
    let until = Instant::now() + bound;
    loop {
        if let Some(_status) = child.try_wait().expect("try_wait") {
            let Output { status, stderr, .. } = child.wait_with_output().expect("output");
            return (status, String::from_utf8_lossy(&stderr).into_owned());
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("agent-system {args:?} still running after {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
