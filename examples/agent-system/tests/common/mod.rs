//! Shared by the tests that run the real `agent-system` binary on loopback (`shutdown.rs`,
//! `scrapes.rs`, `security.rs`): start it with a config file and a clean environment, read the
//! metrics address from its first line, drain its output in the background, signal it, scrape
//! it, and wait for it with a bound. Every wait here has a limit; a process still running when
//! a test ends is killed.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Writes `text` to a config file unique to this test process.
pub fn config_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("agent-system-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("config file written");
    path
}

/// A path for a report file unique to this test process.
pub fn report_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("agent-system-{}-{name}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A running `agent-system run`.
pub struct Running {
    child: Child,
    /// Where `/metrics` and `/health` are served.
    pub addr: SocketAddr,
    /// The first stdout line (the banner).
    pub banner: String,
    stdout_so_far: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// From the call to [`Running::wait`] (or from a given instant) to the exit.
    pub elapsed: Duration,
    /// Everything it wrote to stdout (banner included).
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Starts `agent-system [global args] run --config FILE [run args]` with an empty environment
/// plus `env` (so neither `RUST_LOG`, nor `RESILIENCE__*`, nor proxy variables of the caller
/// change what the test sees), and waits (at most 20 s) for the banner.
pub fn start(global: &[&str], config: &PathBuf, run: &[&str], env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-system"));
    cmd.env_clear()
        .args(global)
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(run)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the agent-system binary starts");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    // stderr is drained from the start: at `--log-level trace` it is large, and a full pipe
    // would block the process.
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let (banner_tx, banner_rx) = mpsc::channel();
    let so_far = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stdout = {
        let so_far = so_far.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            so_far.lock().unwrap().push_str(&first);
            let _ = banner_tx.send(first);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                so_far.lock().unwrap().push_str(&line);
                line.clear();
            }
            so_far.lock().unwrap().clone()
        })
    };
    let banner = match banner_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("no banner within 20 s");
        }
    };
    let Some(addr) = banner
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
    else {
        let _ = child.kill();
        let _ = child.wait();
        let err = stderr.join().unwrap_or_default();
        panic!("no metrics address in the banner {banner:?}; stderr:\n{err}");
    };
    Running {
        child,
        addr,
        banner,
        stdout_so_far: so_far,
        stdout: Some(stdout),
        stderr: Some(stderr),
    }
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `limit`) until stdout has a line containing `needle`; returns stdout so
    /// far, or `None` if the line did not come in time.
    pub fn wait_for_stdout(&self, needle: &str, limit: Duration) -> Option<String> {
        let give_up = Instant::now() + limit;
        loop {
            let text = self.stdout_so_far.lock().unwrap().clone();
            if text.contains(needle) {
                return Some(text);
            }
            if Instant::now() >= give_up {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGTERM with `kill -TERM PID` (the crate forbids `unsafe`, so no `libc::kill`).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the exit, at most `limit` from now (killing it and failing past that), and
    /// collects its output; `elapsed` counts from `since`.
    pub fn wait_since(mut self, since: Instant, limit: Duration) -> Finished {
        let give_up = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= give_up {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "agent-system still running {limit:?} later; killed it. stderr tail:\n{}",
                    tail(&self.stderr.take().unwrap().join().unwrap_or_default())
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = since.elapsed();
        Finished {
            status,
            elapsed,
            stdout: self.stdout.take().unwrap().join().unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap_or_default(),
        }
    }

    /// [`wait_since`](Self::wait_since) now.
    pub fn wait(self, limit: Duration) -> Finished {
        self.wait_since(Instant::now(), limit)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave the process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last 40 lines.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A minimal HTTP/1.0 GET with 5 s timeouts: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(split_response(&response))
}

/// A minimal HTTP/1.0 POST with an empty body and 5 s timeouts (20 s to answer): (status, body).
pub fn post(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(split_response(&response))
}

/// (status, body) of a raw HTTP response.
pub fn split_response(response: &str) -> (u16, String) {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The sum of every sample of `family` (without suffix) in a Prometheus exposition.
pub fn sum_of(exposition: &str, family: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Every `(label, value)` pair of every sample in a Prometheus exposition, with the line.
pub fn label_pairs(exposition: &str) -> Vec<(String, String, String)> {
    let mut pairs = Vec::new();
    for line in exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let labels = rest
            .rsplit_once('}')
            .unwrap_or_else(|| panic!("unterminated labels in {line:?}"))
            .0;
        // The exporter escapes `\`, `"` and newlines in values; none of ours may contain them.
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad labels in {line:?}"));
            let (value, after) = after
                .split_once('"')
                .unwrap_or_else(|| panic!("bad labels in {line:?}"));
            assert!(!value.contains('\\'), "escaped label value in {line:?}");
            pairs.push((key.to_owned(), value.to_owned(), line.to_owned()));
            rest = after.strip_prefix(',').unwrap_or(after);
        }
    }
    pairs
}

/// The JSON report.
pub fn read_report(path: &PathBuf) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the report is JSON")
}

/// A count of the report.
pub fn count(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {report}"))
}

/// Asserts `submitted` equals the sum of the five outcomes; returns the five, in order
/// succeeded, failed, rejected, timed_out, cancelled.
#[track_caller]
pub fn assert_adds_up(report: &serde_json::Value) -> [u64; 6] {
    let outcomes = [
        "succeeded",
        "failed",
        "rejected",
        "overloaded",
        "timed_out",
        "cancelled",
    ]
    .map(|k| count(report, k));
    assert_eq!(
        count(report, "submitted"),
        outcomes.iter().sum::<u64>(),
        "the outcomes do not add up: {report:#}"
    );
    outcomes
}

/// One request as a [`ScriptedServer`] read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request line and headers.
    pub head: String,
    /// The body (as far as `Content-Length` says).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The prompt of a chat-completion request body, if it has one.
    pub fn prompt(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body.pointer("/messages/0/content")?
            .as_str()
            .map(str::to_owned)
    }
}

/// What a [`ScriptedServer`] answers to its `i`-th request (counting from 0).
pub type Script = dyn Fn(usize, &Request) -> Vec<u8> + Send + Sync;

/// A scripted HTTP/1.1 server on 127.0.0.1 (port 0), one thread per connection, one request per
/// connection: answers each request with `script(i, request)` and records every request.
/// Bounded: it stops accepting after 30 s or 5,000 connections, or when dropped; every read and
/// write has a 2 s timeout.
pub struct ScriptedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Every request read in full, in arrival order.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    /// Starts it.
    pub fn start(script: impl Fn(usize, &Request) -> Vec<u8> + Send + Sync + 'static) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let thread = {
            let (stop, requests) = (stop.clone(), requests.clone());
            std::thread::spawn(move || {
                let give_up = Instant::now() + Duration::from_secs(30);
                let counter = Arc::new(AtomicUsize::new(0));
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && Instant::now() < give_up && n < 5000 {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            n += 1;
                            let (requests, script, counter) =
                                (requests.clone(), script.clone(), counter.clone());
                            std::thread::spawn(move || {
                                let _ = serve_one(stream, &requests, &*script, &counter);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        ScriptedServer {
            addr,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    /// The provider's `base_url` for this server.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// How many requests it has read so far.
    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    requests: &std::sync::Mutex<Vec<Request>>,
    script: &Script,
    counter: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut request = Request {
        head: String::from_utf8_lossy(&buf[..head_end]).into_owned(),
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    request.body = buf[head_end..(head_end + length).min(buf.len())].to_vec();
    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let answer = script(i, &request);
    requests.lock().unwrap().push(request);
    stream.write_all(&answer)?;
    stream.flush()
}

/// A complete HTTP/1.1 response that closes the connection.
pub fn http_response(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// A chat-completion body answering `text`.
pub fn completion_body(text: &str) -> String {
    format!(
        r#"{{"choices":[{{"message":{{"role":"assistant","content":"{text}"}}}}],"usage":{{"total_tokens":3}}}}"#
    )
}

/// A configuration for the HTTP provider against `base_url` (key from `key_var`): one agent
/// `llm_worker` behind breaker `llm` (`max_failures`), `max_attempts` attempts, the workload
/// at `rate` tasks/s for `duration`, and `extra` appended to `[system.exporter]` (whose `addr` is `127.0.0.1:0`).
pub fn http_config(
    base_url: &str,
    key_var: &str,
    max_failures: u32,
    max_attempts: u32,
    rate: f64,
    duration: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[breakers.llm]
max_failures = {max_failures}
open_duration = "300ms"

[retry_policies.llm]
max_attempts = {max_attempts}
initial_delay = "20ms"
max_delay = "50ms"

[timeouts.llm]
kind = "fixed"
duration = "2s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 2
max_pending = 100

[system]
duration = "{duration}"
drain_deadline = "3s"

[system.workload]
rate = {rate:?}
task_deadline = "3s"

[system.provider]
kind = "http"
base_url = "{base_url}"
model = "test-model"
api_key_env = "{key_var}"
request_timeout = "1s"

[system.exporter]
addr = "127.0.0.1:0"
{extra}
"#
    )
}
