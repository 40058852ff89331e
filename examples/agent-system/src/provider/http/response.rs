//! Turning an HTTP response into a [`Completion`] or a classified [`ProviderError`]: bounded body
//! reading, status mapping, `Retry-After`, and the JSON of a chat completion.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use serde::Deserialize;

use super::MIN_API_KEY_CHARS;
use crate::provider::{Completion, ProviderError};

/// Longest server pushback honoured; a larger `Retry-After` is capped to this.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How much of an error response's body is read for its message.
pub(super) const ERROR_BODY_PREFIX: usize = 8 * 1024;

/// Longest message kept in an error (characters).
pub(super) const MAX_MESSAGE_CHARS: usize = 300;

/// Most bytes reserved up front for a body from its declared `Content-Length`.
pub(super) const MAX_PREALLOCATION: usize = 64 * 1024;

/// Why a body could not be read in full.
pub(super) enum BodyError {
    /// Longer than the limit (declared by `Content-Length`, or seen while reading).
    TooLarge { declared: Option<u64>, limit: usize },
    /// The connection failed or closed before the body ended.
    Read(reqwest::Error),
}

impl BodyError {
    pub(super) fn into_provider_error(self) -> ProviderError {
        match self {
            BodyError::TooLarge {
                declared: Some(n),
                limit,
            } => ProviderError::Malformed(format!(
                "response body of {n} bytes exceeds the limit of {limit} bytes (max_body_bytes)"
            )),
            BodyError::TooLarge {
                declared: None,
                limit,
            } => ProviderError::Malformed(format!(
                "response body exceeds the limit of {limit} bytes (max_body_bytes)"
            )),
            BodyError::Read(e) => ProviderError::Malformed(format!(
                "response body truncated or unreadable: {}",
                error_chain(&e)
            )),
        }
    }
}

/// Reads the whole body, failing as soon as it is known to exceed `limit` bytes: nothing past
/// the limit is ever buffered.
pub(super) async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = response.content_length();
    if let Some(n) = declared {
        if n > limit as u64 {
            return Err(BodyError::TooLarge { declared, limit });
        }
    }
    // The declared length is the server's word, not a fact: pre-allocate at most a small
    // bound from it (a `Content-Length` of 10^18 under an unbounded `max_body_bytes` aborted
    // the process), and let the buffer grow with the bytes that actually arrive.
    let reserve = declared
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(limit)
        .min(MAX_PREALLOCATION);
    let mut body = Vec::with_capacity(reserve);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if chunk.len() > limit - body.len() {
            return Err(BodyError::TooLarge {
                declared: None,
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads at most `limit` bytes of the body (for an error's message); stops quietly at the
/// limit or on a read error.
pub(super) async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The error for a non-2xx status; `message` is the server's description (possibly empty).
pub(super) fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    message: String,
) -> ProviderError {
    let code = status.as_u16();
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no description")
            .to_owned()
    } else {
        message
    };
    match code {
        429 => ProviderError::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        401 | 403 => ProviderError::Unauthorized {
            status: code,
            message,
        },
        // The server gave up waiting for the request: worth another try, like a 5xx.
        408 => ProviderError::Server {
            status: code,
            message,
        },
        400..=499 => ProviderError::Client {
            status: code,
            message,
        },
        300..=399 => {
            let location = headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no Location");
            ProviderError::Client {
                status: code,
                message: format!("unexpected redirect to {location} (check base_url)"),
            }
        }
        // 5xx, and anything else that is neither success nor a client's mistake.
        _ => ProviderError::Server {
            status: code,
            message,
        },
    }
}

/// The server's pushback: `Retry-After` as seconds or an HTTP-date (or a `retry-after-ms`
/// header, as some OpenAI-compatible servers send), capped at [`MAX_RETRY_AFTER`]. Unparsable
/// values are ignored.
pub(super) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let cap = MAX_RETRY_AFTER.as_secs_f64();
    if let Some(value) = header(RETRY_AFTER.as_str()) {
        if let Some(secs) = parse_number(value) {
            return Some(Duration::from_secs_f64(secs.min(cap)));
        }
        if let Some(at) = parse_http_date(value) {
            return Some(
                at.duration_since(now)
                    .unwrap_or_default()
                    .min(MAX_RETRY_AFTER),
            );
        }
    }
    let millis = parse_number(header("retry-after-ms")?)?;
    Some(Duration::from_secs_f64((millis / 1000.0).min(cap)))
}

/// A non-negative, finite number (integer or decimal).
fn parse_number(v: &str) -> Option<f64> {
    let n: f64 = v.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP-date form servers send today.
fn parse_http_date(v: &str) -> Option<SystemTime> {
    let mut parts = v.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month_name)? as u32
        + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * i64::from(mo) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + s))
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// Parses a 2xx body: `choices[0].message.content` and `usage.total_tokens` (0 if absent).
pub(super) fn parse_completion(body: &[u8]) -> Result<Completion, ProviderError> {
    let malformed = |reason: String| ProviderError::Malformed(reason);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(malformed("empty response body".into()));
    }
    let parsed: ChatResponse = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("not a chat-completion JSON body: {e}")))?;
    let choice = parsed
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| malformed("`choices` is empty".into()))?;
    let text = choice
        .message
        .content
        .ok_or_else(|| malformed("`choices[0].message.content` is missing or null".into()))?;
    let tokens = parsed
        .usage
        .and_then(|u| u.total_tokens)
        .map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX));
    Ok(Completion { text, tokens })
}

/// The description in an error body: `error.message`, `error` or `message` of a JSON body, else
/// the text itself (whitespace collapsed).
pub(super) fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = value
            .pointer("/error/message")
            .or_else(|| value.get("error"))
            .or_else(|| value.get("message"))
            .and_then(serde_json::Value::as_str);
        if let Some(text) = found {
            return collapse(text);
        }
    }
    collapse(&String::from_utf8_lossy(body))
}

fn collapse(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An error and its sources, joined by `": "`.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// Removes every whole occurrence of `secret` and bounds the length: the last step before a
/// message leaves the provider. A secret shorter than [`MIN_API_KEY_CHARS`] (which the provider
/// refuses at startup) is not searched for: redacting it would blank out ordinary text.
pub(super) fn sanitize(message: &str, secret: &str) -> String {
    let redacted = if secret.chars().count() < MIN_API_KEY_CHARS {
        message.to_owned()
    } else {
        message.replace(secret, "<redacted>")
    };
    match redacted.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &redacted[..cut]),
        None => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_retry_after_is_relative_to_now() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        let date = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            date.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        let now = date - Duration::from_secs(5);
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(5)));
        // A date in the past means "now"; a far future one is capped.
        assert_eq!(
            retry_after(&headers, date + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers, UNIX_EPOCH), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_seconds_are_capped_and_garbage_ignored() {
        let at = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, v.parse().unwrap());
            retry_after(&headers, SystemTime::now())
        };
        assert_eq!(at("2"), Some(Duration::from_secs(2)));
        assert_eq!(at(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(at("99999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("1e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("-3"), None);
        assert_eq!(at("NaN"), None);
        assert_eq!(at("soon"), None);
        assert_eq!(at("Sun, 06 Nov 1994 25:49:37 GMT"), None);

        let mut headers = HeaderMap::new();
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::from_millis(1500))
        );
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn http_dates_parse_across_leap_years() {
        let secs = |v| parse_http_date(v).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(secs("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(secs("Thu, 29 Feb 2024 00:00:00 GMT"), Some(1_709_164_800));
        assert_eq!(secs("Fri, 31 Dec 1999 23:59:59 GMT"), Some(946_684_799));
        assert_eq!(secs("Thu, 29 Feb 2024 00:00:00 UTC"), None);
        assert_eq!(secs("Thu, 29 Foo 2024 00:00:00 GMT"), None);
        assert_eq!(secs("Thursday, 29-Feb-24 00:00:00 GMT"), None);
    }

    #[test]
    fn sanitize_redacts_then_truncates_on_a_char_boundary() {
        let long = format!("key sk-secret echoed {}", "é".repeat(1000));
        let clean = sanitize(&long, "sk-secret");
        assert!(!clean.contains("sk-secret"));
        assert!(clean.starts_with("key <redacted> echoed"));
        assert_eq!(clean.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn sanitize_never_redacts_single_characters() {
        assert_eq!(sanitize("a bad answer", "a"), "a bad answer");
        assert_eq!(
            sanitize("key abcd1234, not abcd123", "abcd1234"),
            "key <redacted>, not abcd123"
        );
    }

    #[test]
    fn error_message_prefers_the_json_description() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad  model"}}"#),
            "bad model"
        );
        assert_eq!(error_message(br#"{"error":"nope"}"#), "nope");
        assert_eq!(error_message(b"plain\r\ntext"), "plain text");
    }
}
