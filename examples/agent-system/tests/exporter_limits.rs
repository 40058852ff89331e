//! The exporter's HTTP server does not hold idle connections: a client that sends half a
//! request line is disconnected after the header-read timeout, and idle connections beyond the
//! connection limit do not stop a normal scrape from being answered.
//!
//! In-process, real loopback sockets, so the waits are on the wall clock: the server is started
//! with a test-only short header-read timeout (300 ms) or a small connection limit (8), and
//! every wait is bounded by a few seconds.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use agent_system::exporter::{self, ServerLimits};
use metrics_exporter_prometheus::PrometheusBuilder;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
const LIMIT: usize = 8;

async fn start(limits: ServerLimits) -> SocketAddr {
    let handle = PrometheusBuilder::new().build_recorder().handle();
    exporter::serve_with(
        "127.0.0.1:0".parse().unwrap(),
        false,
        handle,
        Vec::new(),
        limits,
    )
    .await
    .unwrap()
}

/// Reads until the server closes the connection (or `limit` passes): how long that took.
fn time_to_close(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            // Reset: closed too.
            Err(_) => return Some(started.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_line_is_disconnected_after_the_header_read_timeout() {
    let addr = start(ServerLimits {
        header_read_timeout: HEADER_TIMEOUT,
        ..ServerLimits::default()
    })
    .await;
    let closed = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /metr").unwrap();
        time_to_close(stream, Duration::from_secs(5))
    })
    .await
    .unwrap();
    let closed = closed.expect("a partial request was still open 5 s later");
    assert!(
        closed < HEADER_TIMEOUT + Duration::from_secs(1),
        "closed only after {closed:?}"
    );
    // A connection that sends nothing at all is closed too.
    let closed = tokio::task::spawn_blocking(move || {
        time_to_close(TcpStream::connect(addr).unwrap(), Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(
        closed.is_some(),
        "an idle connection was still open 5 s later"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_limit_do_not_stop_a_scrape() {
    // A header-read timeout far longer than the test: only making room at the limit (closing
    // the oldest idle connections) lets the scrape in.
    let addr = start(ServerLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: LIMIT,
    })
    .await;
    let (status, elapsed) = tokio::task::spawn_blocking(move || {
        // Five times the limit, all idle, kept open by the test until the scrape is done.
        let idle: Vec<TcpStream> = (0..LIMIT * 5)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        let (status, body) = common::get(addr, "/metrics").expect("the scrape is answered");
        drop(idle);
        assert!(body.is_empty() || body.contains('#') || body.contains("resilience"));
        (status, started.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
}

#[test]
fn the_default_limits_are_five_seconds_and_1024_connections() {
    let d = ServerLimits::default();
    assert_eq!(d.header_read_timeout, Duration::from_secs(5));
    assert_eq!(d.max_connections, 1024);
}
