//! [`Frame`]: the versioned payload of every remote message, and the wire types it carries.
//!
//! ```text
//!  byte 0   version (FRAME_VERSION)
//!  byte 1   kind (Call, Answer, Ping, Pong, Command, Ack, Snapshot)
//!  2..      postcard body (serde), at most MAX_BODY bytes
//! ```
//!
//! ractor_cluster's `BytesConvertable::from_bytes` cannot return an error, so a [`Frame`] is
//! only bytes on the way in; [`Frame::decode`] validates it and returns a [`FrameError`] value
//! for anything malformed — never a panic — so the receiver can answer "bad request" instead
//! of dropping the caller's reply port.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::task::TaskEnvelope;

/// The frame format version this build speaks.
pub const FRAME_VERSION: u8 = 1;

/// The largest body a frame may carry (well below ractor_cluster's 16 MiB inbound frame cap, so
/// an oversized payload is a clear error here rather than a dropped connection there).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// What a frame carries (its second byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A [`RemoteCall`]: a task for one attempt.
    Call = 1,
    /// An [`Answer`] to a call.
    Answer = 2,
    /// A liveness probe (empty body).
    Ping = 3,
    /// The probe's answer: the serving node's name.
    Pong = 4,
    /// A cluster-wide breaker command ([`BreakerCommand`](super::BreakerCommand)).
    Command = 5,
    /// A node's answer to a command ([`CommandAck`](super::CommandAck)).
    Ack = 6,
    /// A node's latest command per breaker, pushed to nodes that join
    /// (`Vec<`[`BreakerCommand`](super::BreakerCommand)`>`).
    Snapshot = 7,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FrameKind::Call),
            2 => Some(FrameKind::Answer),
            3 => Some(FrameKind::Ping),
            4 => Some(FrameKind::Pong),
            5 => Some(FrameKind::Command),
            6 => Some(FrameKind::Ack),
            7 => Some(FrameKind::Snapshot),
            _ => None,
        }
    }
}

/// Why a frame could not be made or read. Every malformed input ends here, as a value.
///
/// ```
/// use ractor_resilience::cluster::{Frame, FrameError, FrameKind};
///
/// let bad = Frame::from_vec(vec![]);
/// assert_eq!(bad.decode::<u32>(FrameKind::Answer), Err(FrameError::Truncated { len: 0 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum FrameError {
    /// Shorter than its two header bytes.
    #[error("frame truncated: {len} byte(s), the header needs 2")]
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// Written by a version this build does not speak.
    #[error("frame version {got} not supported (this node speaks {FRAME_VERSION})")]
    Version {
        /// The version byte found.
        got: u8,
    },
    /// Not the kind expected here (or no kind at all).
    #[error("frame kind {got} where {expected:?} was expected")]
    Kind {
        /// The kind expected.
        expected: FrameKind,
        /// The kind byte found.
        got: u8,
    },
    /// The body is larger than [`MAX_BODY`].
    #[error("frame body of {len} bytes exceeds the {MAX_BODY} byte limit")]
    TooLarge {
        /// The body's length.
        len: usize,
    },
    /// The body does not decode as the expected type (or the value does not encode).
    #[error("frame body: {0}")]
    Body(String),
}

// Serialised as its byte (FrameError travels inside answers).
impl Serialize for FrameKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl<'de> Deserialize<'de> for FrameKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = u8::deserialize(d)?;
        FrameKind::from_byte(b).ok_or_else(|| serde::de::Error::custom("unknown frame kind"))
    }
}

/// The bytes of one remote payload: a version byte, a kind byte and a postcard body.
///
/// ```
/// use ractor_resilience::cluster::{Frame, FrameKind};
///
/// let frame = Frame::encode(FrameKind::Pong, &"node-b".to_string()).unwrap();
/// assert_eq!(frame.decode::<String>(FrameKind::Pong).unwrap(), "node-b");
/// assert!(frame.decode::<String>(FrameKind::Answer).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Vec<u8>);

impl Frame {
    /// Encodes `value` as a frame of `kind`.
    ///
    /// # Errors
    /// [`FrameError::Body`] if serde refuses the value, [`FrameError::TooLarge`] past
    /// [`MAX_BODY`].
    pub fn encode<T: Serialize + ?Sized>(kind: FrameKind, value: &T) -> Result<Frame, FrameError> {
        let bytes = postcard::to_extend(value, vec![FRAME_VERSION, kind as u8])
            .map_err(|e| FrameError::Body(e.to_string()))?;
        let len = bytes.len() - 2;
        if len > MAX_BODY {
            return Err(FrameError::TooLarge { len });
        }
        Ok(Frame(bytes))
    }

    /// Decodes a frame of `kind`. Never panics: anything malformed is an [`FrameError`].
    ///
    /// # Errors
    /// See [`FrameError`].
    pub fn decode<T: DeserializeOwned>(&self, kind: FrameKind) -> Result<T, FrameError> {
        let [version, got, body @ ..] = self.0.as_slice() else {
            return Err(FrameError::Truncated { len: self.0.len() });
        };
        if *version != FRAME_VERSION {
            return Err(FrameError::Version { got: *version });
        }
        if *got != kind as u8 {
            return Err(FrameError::Kind {
                expected: kind,
                got: *got,
            });
        }
        if body.len() > MAX_BODY {
            return Err(FrameError::TooLarge { len: body.len() });
        }
        let (value, rest) =
            postcard::take_from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FrameError::Body(format!("{} trailing byte(s)", rest.len())));
        }
        Ok(value)
    }

    /// A frame from raw bytes (what arrives from the network), not yet validated.
    pub fn from_vec(bytes: Vec<u8>) -> Frame {
        Frame(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ractor::BytesConvertable for Frame {
    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        Frame(bytes)
    }
}

/// A task for one attempt on a serving node: its envelope carries the id (the idempotency key),
/// the attempt number, the deadline as the time remaining when it was sent, and the operation.
/// The serving node runs exactly one attempt (it is told the caller retries).
pub type RemoteCall<T> = TaskEnvelope<T>;

/// How a serving node's one attempt ended, as its caller sees it.
///
/// ```
/// use ractor_resilience::cluster::{Answer, Frame, FrameKind};
///
/// let answer: Answer<String, String> = Answer::Overloaded;
/// let frame = Frame::encode(FrameKind::Answer, &answer).unwrap();
/// assert_eq!(frame.decode::<Answer<String, String>>(FrameKind::Answer).unwrap(), answer);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer<O, E> {
    /// The agent's output.
    Ok(O),
    /// The agent's error.
    Agent(E),
    /// The attempt's timeout (or the task's remaining deadline) passed on the serving node.
    TimedOut {
        /// The timeout applied there.
        after: Duration,
    },
    /// The serving node's breaker for the agent refused.
    Rejected {
        /// When asking that node again may succeed.
        retry_after: Option<Duration>,
    },
    /// The serving node's agent is full or shed the task.
    Overloaded,
    /// The serving node's agent is stopping or stopped, or the task was cancelled there.
    Unavailable,
    /// The serving node's worker crashed during the attempt.
    WorkerLost,
    /// The serving node could not read the call's frame.
    BadRequest(FrameError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call() -> RemoteCall<String> {
        TaskEnvelope::new("hello".to_string()).with_deadline(Duration::from_millis(1500))
    }

    #[test]
    fn call_round_trips() {
        let env = call().with_operation("summarise");
        let frame = Frame::encode(FrameKind::Call, &env).unwrap();
        assert_eq!(
            frame.as_bytes()[..2],
            [FRAME_VERSION, FrameKind::Call as u8]
        );
        let back: RemoteCall<String> = frame.decode(FrameKind::Call).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn every_answer_round_trips() {
        let answers: Vec<Answer<u64, String>> = vec![
            Answer::Ok(7),
            Answer::Agent("boom".into()),
            Answer::TimedOut {
                after: Duration::from_millis(250),
            },
            Answer::Rejected {
                retry_after: Some(Duration::from_secs(3)),
            },
            Answer::Rejected { retry_after: None },
            Answer::Overloaded,
            Answer::Unavailable,
            Answer::WorkerLost,
            Answer::BadRequest(FrameError::Version { got: 9 }),
        ];
        for answer in answers {
            let frame = Frame::encode(FrameKind::Answer, &answer).unwrap();
            assert_eq!(
                frame.decode::<Answer<u64, String>>(FrameKind::Answer),
                Ok(answer)
            );
        }
    }

    #[test]
    fn an_unknown_version_is_an_error_value() {
        let mut bytes = Frame::encode(FrameKind::Call, &call()).unwrap().0;
        bytes[0] = FRAME_VERSION + 1;
        let err = Frame(bytes).decode::<RemoteCall<String>>(FrameKind::Call);
        assert_eq!(
            err,
            Err(FrameError::Version {
                got: FRAME_VERSION + 1
            })
        );
    }

    #[test]
    fn the_wrong_kind_is_an_error_value() {
        let frame = Frame::encode(FrameKind::Call, &call()).unwrap();
        assert_eq!(
            frame.decode::<RemoteCall<String>>(FrameKind::Answer),
            Err(FrameError::Kind {
                expected: FrameKind::Answer,
                got: FrameKind::Call as u8
            })
        );
    }

    #[test]
    fn every_truncation_is_an_error_value() {
        let whole = Frame::encode(FrameKind::Call, &call()).unwrap().0;
        for len in 0..whole.len() {
            let cut = Frame(whole[..len].to_vec());
            let err = cut
                .decode::<RemoteCall<String>>(FrameKind::Call)
                .unwrap_err();
            if len < 2 {
                assert_eq!(err, FrameError::Truncated { len });
            } else {
                assert!(matches!(err, FrameError::Body(_)), "{len}: {err:?}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_an_error_value() {
        let mut bytes = Frame::encode(FrameKind::Pong, &"b".to_string()).unwrap().0;
        bytes.push(0);
        assert!(matches!(
            Frame(bytes).decode::<String>(FrameKind::Pong),
            Err(FrameError::Body(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_value() {
        // A huge declared string length, then nothing.
        let frame = Frame(vec![
            FRAME_VERSION,
            FrameKind::Call as u8,
            0xff,
            0xff,
            0xff,
            0xff,
            0x0f,
        ]);
        assert!(matches!(
            frame.decode::<RemoteCall<String>>(FrameKind::Call),
            Err(FrameError::Body(_))
        ));
    }

    #[test]
    fn an_oversized_body_is_refused_both_ways() {
        let big = vec![0u8; MAX_BODY + 1];
        assert!(matches!(
            Frame::encode(FrameKind::Answer, &big),
            Err(FrameError::TooLarge { .. })
        ));
        let mut bytes = vec![FRAME_VERSION, FrameKind::Answer as u8];
        bytes.resize(MAX_BODY + 3, 0);
        assert_eq!(
            Frame(bytes).decode::<Vec<u8>>(FrameKind::Answer),
            Err(FrameError::TooLarge { len: MAX_BODY + 1 })
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let frame = Frame(bytes);
            let _ = frame.decode::<RemoteCall<String>>(FrameKind::Call);
            let _ = frame.decode::<Answer<Vec<u32>, String>>(FrameKind::Answer);
            let _ = frame.decode::<String>(FrameKind::Pong);
        }

        #[test]
        fn decoding_a_valid_header_with_arbitrary_body_never_panics(
            kind in 1u8..=4,
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = vec![FRAME_VERSION, kind];
            bytes.extend(body);
            let frame = Frame(bytes);
            let _ = frame.decode::<RemoteCall<String>>(FrameKind::Call);
            let _ = frame.decode::<Answer<(u8, String), FrameError>>(FrameKind::Answer);
        }

        #[test]
        fn calls_round_trip(task in ".{0,64}", ms in 0u64..100_000, attempt in 1u32..5) {
            let mut env = TaskEnvelope::new(task).with_deadline(Duration::from_millis(ms));
            env.attempt = attempt;
            let frame = Frame::encode(FrameKind::Call, &env).unwrap();
            prop_assert_eq!(frame.decode::<RemoteCall<String>>(FrameKind::Call).unwrap(), env);
        }
    }
}
