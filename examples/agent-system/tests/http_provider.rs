//! The HTTP provider against a scripted HTTP/1.1 server on 127.0.0.1 (port 0), one connection
//! per test: success, 429 with `Retry-After`, 5xx, 4xx, malformed, truncated and oversized
//! bodies, refused connections, silent and trickling servers, deadlines and cancellation, and
//! the API key never leaking.
//!
//! These tests use real loopback sockets, so network timeouts run on the wall clock (tokio's
//! paused clock cannot drive a real socket). The timeouts are kept tiny (a few hundred
//! milliseconds) so the whole file runs in a couple of seconds.

use std::net::SocketAddr;
use std::time::Duration;

use agent_system::provider::http::{HttpProvider, HttpProviderSettings, ProviderSetupError};
use agent_system::provider::{Completion, CompletionRequest, ProviderError};
use ractor_resilience::agent::{CallOutcome, ErrorClass};
use ractor_resilience::task::{CancellationToken, TaskContext, TaskId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A distinctive key that must never show up in any message.
const KEY: &str = "sk-test-7Hq2xZ9-never-print-me";
/// A variable name unique to this file (looked up through the injected lookup, not the
/// process environment).
const KEY_VAR: &str = "AGENT_SYSTEM_HTTP_PROVIDER_TEST_KEY";
/// The request timeout of most tests.
const TIMEOUT: Duration = Duration::from_millis(400);
/// Generous slack for a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

/// What the scripted server does once it has read the request.
enum Reply {
    /// Write these bytes, then close.
    Close(Vec<u8>),
    /// Write these bytes, then keep the connection open without a word.
    Hang(Vec<u8>),
    /// Write `head`, then `bytes` one at a time, `every` apart.
    Drip {
        head: Vec<u8>,
        bytes: Vec<u8>,
        every: Duration,
    },
    /// Write `head`, then `total` bytes of body in 16 KiB chunks, then hang.
    Flood { head: Vec<u8>, total: usize },
}

/// The request as the server saw it.
struct Recorded {
    head: String,
    body: Vec<u8>,
}

/// Starts a one-connection server; returns the provider's base URL and the recorded request.
async fn serve(reply: Reply) -> (String, JoinHandle<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let recorded = read_request(&mut stream).await;
        match reply {
            Reply::Close(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
            }
            Reply::Hang(bytes) => {
                let _ = stream.write_all(&bytes).await;
                hang().await;
            }
            Reply::Drip { head, bytes, every } => {
                let _ = stream.write_all(&head).await;
                for b in bytes {
                    if stream.write_all(&[b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(every).await;
                }
            }
            Reply::Flood { head, total } => {
                let _ = stream.write_all(&head).await;
                let chunk = vec![b'x'; 16 * 1024];
                let mut sent = 0;
                while sent < total {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                hang().await;
            }
        }
        recorded
    });
    (format!("http://{addr}/v1"), handle)
}

async fn hang() {
    tokio::time::sleep(Duration::from_secs(30)).await;
}

async fn read_request(stream: &mut TcpStream) -> Recorded {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed before sending its request");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Recorded {
        head,
        body: buf[head_end..head_end + length].to_vec(),
    }
}

/// A complete HTTP/1.1 response with a `Content-Length`.
fn response(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
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

const GOOD_BODY: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

fn settings(base_url: &str) -> HttpProviderSettings {
    HttpProviderSettings {
        request_timeout: TIMEOUT,
        max_body_bytes: 64 * 1024,
        ..HttpProviderSettings::new(base_url, "test-model", KEY_VAR)
    }
}

fn provider(settings: HttpProviderSettings) -> HttpProvider {
    HttpProvider::with_key_lookup(settings, |name| (name == KEY_VAR).then_some(KEY)).unwrap()
}

fn ctx() -> TaskContext {
    TaskContext::new(TaskId::next(), 1, None, CancellationToken::new(), false)
}

fn request() -> CompletionRequest {
    CompletionRequest {
        prompt: "Say hello".into(),
        max_tokens: 32,
        model: None,
    }
}

/// Calls the provider and checks, for every outcome, that the key did not leak.
async fn call_with(
    provider: &HttpProvider,
    ctx: &TaskContext,
) -> Result<Completion, ProviderError> {
    let result = provider.complete(request(), ctx).await;
    if let Err(e) = &result {
        assert_no_key(&format!("{e} {e:?} {:?}", e.class()));
    }
    result
}

async fn call(base_url: &str) -> Result<Completion, ProviderError> {
    call_with(&provider(settings(base_url)), &ctx()).await
}

/// Calls a server that sends `reply`, returning the outcome and how long it took.
async fn call_reply(reply: Reply) -> (Result<Completion, ProviderError>, Duration) {
    let (url, _server) = serve(reply).await;
    let started = Instant::now();
    let result = call(&url).await;
    (result, started.elapsed())
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "the API key leaked into: {text}");
    assert!(
        !text.contains("7Hq2xZ9"),
        "part of the API key leaked into: {text}"
    );
}

fn malformed(result: Result<Completion, ProviderError>) -> String {
    match result {
        Err(ProviderError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn transport(result: Result<Completion, ProviderError>) -> String {
    match result {
        Err(ProviderError::Transport(m)) => m,
        other => panic!("expected Transport, got {other:?}"),
    }
}

fn assert_ends_at_timeout(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout - Duration::from_millis(20),
        "ended before the timeout: {elapsed:?}"
    );
    assert!(
        elapsed < timeout + SLACK,
        "ended long after the timeout: {elapsed:?}"
    );
}

#[tokio::test]
async fn success_returns_the_text_and_sends_model_prompt_and_bearer_key() {
    let (url, server) = serve(Reply::Close(response(
        "200 OK",
        &["Content-Type: application/json"],
        GOOD_BODY,
    )))
    .await;
    let completion = call(&url).await.unwrap();
    assert_eq!(
        completion,
        Completion {
            text: "Hello there".into(),
            tokens: 7
        }
    );

    let seen = server.await.unwrap();
    assert!(
        seen.head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    let auth = seen
        .head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .unwrap();
    assert_eq!(
        auth.split_once(':').unwrap().1.trim(),
        format!("Bearer {KEY}")
    );
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "model": "test-model",
            "messages": [{ "role": "user", "content": "Say hello" }],
            "max_tokens": 32,
        })
    );
}

#[tokio::test]
async fn success_without_usage_counts_zero_tokens() {
    let body = r#"{"choices":[{"message":{"content":"hi"}}]}"#;
    let (result, _) = call_reply(Reply::Close(response("200 OK", &[], body))).await;
    assert_eq!(
        result.unwrap(),
        Completion {
            text: "hi".into(),
            tokens: 0
        }
    );
}

#[tokio::test]
async fn rate_limited_429_honours_retry_after() {
    let reply = response(
        "429 Too Many Requests",
        &["Retry-After: 2"],
        r#"{"error":{"message":"slow down"}}"#,
    );
    let (result, _) = call_reply(Reply::Close(reply)).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    let class = error.class();
    assert!(class.retry);
    assert_eq!(class.breaker, CallOutcome::Failure);
    assert_eq!(class.retry_after, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn rate_limited_429_caps_absurd_retry_after_and_ignores_garbage() {
    let (result, _) = call_reply(Reply::Close(response(
        "429 Too Many Requests",
        &["Retry-After: 999999999"],
        "",
    )))
    .await;
    assert_eq!(
        result.unwrap_err(),
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(600))
        }
    );
    let (result, _) = call_reply(Reply::Close(response(
        "429 Too Many Requests",
        &["Retry-After: later"],
        "",
    )))
    .await;
    assert_eq!(
        result.unwrap_err(),
        ProviderError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn server_error_500_is_retryable() {
    let reply = response(
        "500 Internal Server Error",
        &[],
        r#"{"error":{"message":"upstream exploded"}}"#,
    );
    let (result, _) = call_reply(Reply::Close(reply)).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Server {
            status: 500,
            message: "upstream exploded".into()
        }
    );
    assert_eq!(error.class(), ErrorClass::TRANSIENT);
}

#[tokio::test]
async fn server_error_whose_body_never_ends_is_still_a_server_error_within_the_timeout() {
    let head = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\nbusy"
        .as_bytes()
        .to_vec();
    let (result, elapsed) = call_reply(Reply::Hang(head)).await;
    match result {
        Err(ProviderError::Server {
            status: 503,
            message,
        }) => assert!(message.contains("not received"), "{message}"),
        other => panic!("expected a 503 Server error, got {other:?}"),
    }
    assert_ends_at_timeout(elapsed, TIMEOUT);
}

#[tokio::test]
async fn client_error_400_is_a_caller_mistake_ignored_by_the_breaker() {
    let reply = response(
        "400 Bad Request",
        &[],
        r#"{"error":{"message":"max_tokens is too large"}}"#,
    );
    let (result, _) = call_reply(Reply::Close(reply)).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Client {
            status: 400,
            message: "max_tokens is too large".into()
        }
    );
    assert_eq!(error.class(), ErrorClass::CALLER_MISTAKE);
    assert!(!error.class().retry);
    assert_eq!(error.class().breaker, CallOutcome::Ignored);
}

#[tokio::test]
async fn unauthorized_401_and_403_fail_every_call_so_the_breaker_counts_them_without_retry() {
    for (status, code) in [("401 Unauthorized", 401), ("403 Forbidden", 403)] {
        let reply = response(status, &[], r#"{"error":{"message":"invalid api key"}}"#);
        let (result, _) = call_reply(Reply::Close(reply)).await;
        let error = result.unwrap_err();
        assert_eq!(
            error,
            ProviderError::Unauthorized {
                status: code,
                message: "invalid api key".into()
            }
        );
        assert_eq!(error.class(), ErrorClass::PERMANENT, "{status}");
        assert!(!error.class().retry);
        assert_eq!(error.class().breaker, CallOutcome::Failure);
    }
}

#[tokio::test]
async fn request_timeout_408_is_retryable() {
    let (result, _) = call_reply(Reply::Close(response("408 Request Timeout", &[], ""))).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Server {
            status: 408,
            message: "Request Timeout".into()
        }
    );
    assert_eq!(error.class(), ErrorClass::TRANSIENT);
}

#[tokio::test]
async fn redirect_is_not_followed_and_is_a_client_error() {
    let reply = response("302 Found", &["Location: http://127.0.0.1:9/elsewhere"], "");
    let (result, _) = call_reply(Reply::Close(reply)).await;
    match result {
        Err(ProviderError::Client {
            status: 302,
            message,
        }) => assert!(message.contains("redirect"), "{message}"),
        other => panic!("expected a Client error, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_is_malformed() {
    let (result, _) = call_reply(Reply::Close(response(
        "200 OK",
        &[],
        "{\"choices\": [ this is not json",
    )))
    .await;
    let message = malformed(result);
    assert!(
        message.contains("not a chat-completion JSON body"),
        "{message}"
    );
    assert_eq!(
        ProviderError::Malformed(message).class(),
        ErrorClass::TRANSIENT
    );

    let (result, _) = call_reply(Reply::Close(response("200 OK", &[], ""))).await;
    assert!(malformed(result).contains("empty response body"));
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_malformed() {
    let cases = [
        (
            r#"{"choices":[{"message":{"content":42}}]}"#,
            "invalid type",
        ),
        (
            r#"{"choices":[{"message":{"content":"x"}}],"usage":{"total_tokens":"seven"}}"#,
            "invalid type",
        ),
        (r#"{"choices":"nope"}"#, "invalid type"),
        (r#"{"object":"chat.completion"}"#, "missing field `choices`"),
        (r#"{"choices":[]}"#, "`choices` is empty"),
        (
            r#"{"choices":[{"message":{"content":null}}]}"#,
            "missing or null",
        ),
        (r#"[1,2,3]"#, "invalid type"),
    ];
    for (body, expected) in cases {
        let (result, _) = call_reply(Reply::Close(response("200 OK", &[], body))).await;
        let message = malformed(result);
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[tokio::test]
async fn truncated_body_is_malformed() {
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n".to_vec();
    reply.extend_from_slice(&GOOD_BODY.as_bytes()[..40]);
    let (result, elapsed) = call_reply(Reply::Close(reply)).await;
    assert!(malformed(result).contains("truncated"));
    assert!(elapsed < TIMEOUT, "{elapsed:?}");
}

#[tokio::test]
async fn huge_declared_body_is_rejected_without_reading_it() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n".to_vec();
    let (result, elapsed) = call_reply(Reply::Flood {
        head,
        total: 256 * 1024,
    })
    .await;
    let message = malformed(result);
    assert!(
        message.contains("104857600 bytes exceeds the limit of 65536 bytes"),
        "{message}"
    );
    assert!(elapsed < TIMEOUT, "{elapsed:?}");
}

#[tokio::test]
async fn an_absurd_declared_length_with_an_absurd_limit_is_a_classified_error_not_an_abort() {
    // `max_body_bytes` at its largest and a `Content-Length` of almost 10^18: the body must not
    // be pre-allocated from the declared length (that aborted the process).
    let (url, _server) = serve(Reply::Close(
        format!("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\nConnection: close\r\n\r\n{GOOD_BODY}")
            .into_bytes(),
    ))
    .await;
    let provider = provider(HttpProviderSettings {
        max_body_bytes: usize::MAX,
        ..settings(&url)
    });
    let message = malformed(call_with(&provider, &ctx()).await);
    assert!(message.contains("truncated"), "{message}");
}

#[tokio::test]
async fn huge_undeclared_body_stops_at_the_limit() {
    let head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    let (result, elapsed) = call_reply(Reply::Flood {
        head,
        total: 1024 * 1024,
    })
    .await;
    let message = malformed(result);
    assert!(
        message.contains("exceeds the limit of 65536 bytes"),
        "{message}"
    );
    assert!(elapsed < TIMEOUT, "{elapsed:?}");
}

#[tokio::test]
async fn a_reply_that_is_not_http_is_a_classified_error() {
    let (result, _) = call_reply(Reply::Close(b"\x00\xffGARBAGE\r\n\r\n".to_vec())).await;
    let error = result.unwrap_err();
    assert!(error.class().retry, "{error:?}");
}

#[tokio::test]
async fn connection_refused_is_transport() {
    let addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let started = Instant::now();
    let result = call(&format!("http://{addr}/v1")).await;
    let message = transport(result);
    assert!(
        message.contains(&format!("could not connect to {addr}")),
        "{message}"
    );
    assert!(started.elapsed() < TIMEOUT);
    assert_eq!(
        ProviderError::Transport(message).class(),
        ErrorClass::TRANSIENT
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (result, elapsed) = call_reply(Reply::Hang(Vec::new())).await;
    let message = transport(result);
    assert!(
        message.contains("timed out waiting for the response"),
        "{message}"
    );
    assert!(message.contains("request_timeout"), "{message}");
    assert_ends_at_timeout(elapsed, TIMEOUT);
}

#[tokio::test]
async fn a_server_trickling_bytes_ends_at_the_timeout() {
    // A byte every 50 ms: the connection is never idle for long, yet the whole request is
    // bounded.
    let reply = Reply::Drip {
        head: Vec::new(),
        bytes: response("200 OK", &[], GOOD_BODY),
        every: Duration::from_millis(50),
    };
    let (result, elapsed) = call_reply(reply).await;
    assert!(transport(result).contains("timed out"));
    assert_ends_at_timeout(elapsed, TIMEOUT);
}

#[tokio::test]
async fn a_body_trickling_after_prompt_headers_ends_at_the_timeout() {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        GOOD_BODY.len()
    )
    .into_bytes();
    let reply = Reply::Drip {
        head: head.clone(),
        bytes: GOOD_BODY.as_bytes().to_vec(),
        every: Duration::from_millis(50),
    };
    let (result, elapsed) = call_reply(reply).await;
    let message = transport(result);
    assert!(
        message.contains("timed out reading the response body"),
        "{message}"
    );
    assert_ends_at_timeout(elapsed, TIMEOUT);

    // Headers, then silence.
    let (result, elapsed) = call_reply(Reply::Hang(head)).await;
    assert!(transport(result).contains("reading the response body"));
    assert_ends_at_timeout(elapsed, TIMEOUT);
}

#[tokio::test]
async fn the_attempt_deadline_bounds_the_request_when_sooner() {
    let (url, _server) = serve(Reply::Hang(Vec::new())).await;
    let provider = provider(HttpProviderSettings {
        request_timeout: Duration::from_secs(30),
        ..settings(&url)
    });
    let deadline = Duration::from_millis(250);
    let mut ctx = ctx();
    ctx.deadline = Some(Instant::now() + deadline);
    let started = Instant::now();
    let message = transport(call_with(&provider, &ctx).await);
    assert!(message.contains("attempt's deadline"), "{message}");
    assert_ends_at_timeout(started.elapsed(), deadline);
}

#[tokio::test]
async fn cancellation_ends_the_request_promptly() {
    let (url, _server) = serve(Reply::Hang(Vec::new())).await;
    let provider = provider(HttpProviderSettings {
        request_timeout: Duration::from_secs(30),
        ..settings(&url)
    });
    let ctx = ctx();
    let cancel = ctx.cancel().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let message = transport(call_with(&provider, &ctx).await);
    assert!(message.contains("cancelled"), "{message}");
    assert!(
        started.elapsed() < Duration::from_millis(100) + SLACK,
        "{:?}",
        started.elapsed()
    );

    // Already cancelled: no request at all.
    let started = Instant::now();
    assert!(transport(call_with(&provider, &ctx).await).contains("cancelled"));
    assert!(started.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug_output() {
    let echo = format!(r#"{{"error":{{"message":"invalid key Bearer {KEY} for this model"}}}}"#);
    for status in [
        "400 Bad Request",
        "401 Unauthorized",
        "500 Internal Server Error",
    ] {
        let (result, _) = call_reply(Reply::Close(response(status, &[], &echo))).await;
        let error = result.unwrap_err();
        let text = format!("{error} {error:?}");
        assert_no_key(&text);
        assert!(text.contains("<redacted>"), "{text}");
    }
    // serde's message quotes the offending value.
    let wrong_type = format!(r#"{{"choices":[{{"message":{{"content":["{KEY}"]}}}}]}}"#);
    let (result, _) = call_reply(Reply::Close(response("200 OK", &[], &wrong_type))).await;
    malformed(result);
    let wrong_type = format!(
        r#"{{"choices":[{{"message":{{"content":"x"}}}}],"usage":{{"total_tokens":"{KEY}"}}}}"#
    );
    let (result, _) = call_reply(Reply::Close(response("200 OK", &[], &wrong_type))).await;
    assert!(malformed(result).contains("<redacted>"));

    let provider = provider(settings("http://127.0.0.1:9/v1"));
    let debug = format!(
        "{provider:?} {provider:#?} {:?} {}",
        provider.settings(),
        provider.settings()
    );
    assert_no_key(&debug);
    assert!(debug.contains(KEY_VAR), "{debug}");
}

#[tokio::test]
async fn setup_errors_name_the_variable_never_the_value() {
    let settings = settings("http://127.0.0.1:9/v1");
    let missing = HttpProvider::with_key_lookup(settings.clone(), |_| None::<String>).unwrap_err();
    assert_eq!(
        missing,
        ProviderSetupError::MissingApiKey {
            variable: KEY_VAR.into()
        }
    );
    assert!(missing.to_string().contains(KEY_VAR));

    // The real environment: a variable nobody sets.
    let unset = "AGENT_SYSTEM_HTTP_PROVIDER_TEST_UNSET_VARIABLE_3F9A";
    let from_env = HttpProvider::new(HttpProviderSettings {
        api_key_env: unset.into(),
        ..settings.clone()
    })
    .unwrap_err();
    assert_eq!(
        from_env,
        ProviderSetupError::MissingApiKey {
            variable: unset.into()
        }
    );

    let empty = HttpProvider::with_key_lookup(settings.clone(), |_| Some("  ")).unwrap_err();
    assert_eq!(
        empty,
        ProviderSetupError::EmptyApiKey {
            variable: KEY_VAR.into()
        }
    );

    let bad_key = format!("{KEY}\nX-Injected: 1");
    let invalid =
        HttpProvider::with_key_lookup(settings.clone(), |_| Some(bad_key.clone())).unwrap_err();
    assert_eq!(
        invalid,
        ProviderSetupError::InvalidApiKey {
            variable: KEY_VAR.into()
        }
    );
    assert_no_key(&format!("{invalid} {invalid:?}"));
}

#[tokio::test]
async fn a_key_shorter_than_eight_characters_is_refused_naming_the_variable() {
    let settings = settings("http://127.0.0.1:9/v1");
    for short in ["k", "a1", "sk-1234"] {
        let error = HttpProvider::with_key_lookup(settings.clone(), |_| Some(short)).unwrap_err();
        assert_eq!(
            error,
            ProviderSetupError::ShortApiKey {
                variable: KEY_VAR.into(),
                min: 8
            }
        );
        let text = error.to_string();
        assert!(text.contains(KEY_VAR), "{text}");
        assert!(text.contains("shorter than 8 characters"), "{text}");
    }
}

#[tokio::test]
async fn only_whole_occurrences_of_the_key_are_redacted() {
    // An 8-character key (the shortest accepted): the echo of the key is redacted, and the
    // rest of the message, which shares characters with it, is untouched.
    let key = "abcd1234";
    let (url, _server) = serve(Reply::Close(response(
        "500 Internal Server Error",
        &[],
        r#"{"error":{"message":"bad key abcd1234 from a client at 10.0.0.1 (abcd)"}}"#,
    )))
    .await;
    let provider =
        HttpProvider::with_key_lookup(settings(&url), |name| (name == KEY_VAR).then_some(key))
            .unwrap();
    let error = provider.complete(request(), &ctx()).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Server {
            status: 500,
            message: "bad key <redacted> from a client at 10.0.0.1 (abcd)".into()
        }
    );
}

#[tokio::test]
async fn invalid_settings_are_rejected() {
    let lookup = |_: &str| Some(KEY);
    let field = |s: HttpProviderSettings| match HttpProvider::with_key_lookup(s, lookup) {
        Err(ProviderSetupError::InvalidSetting { field, .. }) => field,
        other => panic!("expected InvalidSetting, got {other:?}"),
    };
    let ok = settings("https://api.example.invalid/v1/");
    assert!(HttpProvider::with_key_lookup(ok.clone(), lookup).is_ok());
    assert_eq!(
        field(HttpProviderSettings {
            base_url: "ftp://example.invalid".into(),
            ..ok.clone()
        }),
        "base_url"
    );
    assert_eq!(
        field(HttpProviderSettings {
            base_url: "not a url".into(),
            ..ok.clone()
        }),
        "base_url"
    );
    assert_eq!(
        field(HttpProviderSettings {
            base_url: "https://u:p@example.invalid/v1".into(),
            ..ok.clone()
        }),
        "base_url"
    );
    assert_eq!(
        field(HttpProviderSettings {
            model: " ".into(),
            ..ok.clone()
        }),
        "model"
    );
    assert_eq!(
        field(HttpProviderSettings {
            api_key_env: String::new(),
            ..ok.clone()
        }),
        "api_key_env"
    );
    assert_eq!(
        field(HttpProviderSettings {
            request_timeout: Duration::ZERO,
            ..ok.clone()
        }),
        "request_timeout"
    );
    assert_eq!(
        field(HttpProviderSettings {
            max_body_bytes: 0,
            ..ok
        }),
        "max_body_bytes"
    );
}

#[test]
fn settings_deserialize_with_humantime_and_defaults_and_reject_unknown_fields() {
    let s: HttpProviderSettings = serde_json::from_str(
        r#"{"base_url":"https://api.example.invalid/v1","model":"m","api_key_env":"K","request_timeout":"1m 30s"}"#,
    )
    .unwrap();
    assert_eq!(s.request_timeout, Duration::from_secs(90));
    assert_eq!(
        s.max_body_bytes,
        HttpProviderSettings::DEFAULT_MAX_BODY_BYTES
    );
    let unknown = serde_json::from_str::<HttpProviderSettings>(
        r#"{"base_url":"x","model":"m","api_key_env":"K","api_key":"oops"}"#,
    );
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `api_key`")
    );
}
