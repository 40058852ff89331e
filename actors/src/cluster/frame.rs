//! [`Frame`]: the versioned payload of every remote message, and the wire types it carries.
//!
//! ```text
//!  byte 0   version (1 ..= FRAME_VERSION; each kind is written at the lowest version whose
//!           body it has: Call and Cancel at 2, the others at 1)
//!  byte 1   kind (Call, Answer, Ping, Pong, Command, Ack, Snapshot, Cancel)
//!  2..      postcard body (serde), at most MAX_BODY bytes
//! ```
//!
//! Versions: 1 carried a call as a bare [`TaskEnvelope`]; 2 carries a [`RemoteCall`] (the
//! envelope and the [`CallTag`] a later `Cancel` names) and adds `Cancel`. A version-2 node
//! reads version-1 calls (no tag: not cancellable) and answers them in version-1 frames, so an
//! older caller keeps working; an older node answers a version-2 call `BadRequest(Version)`,
//! which the caller treats as a frame error (retried on another replica), never a hang.
//!
//! ractor_cluster's `BytesConvertable::from_bytes` cannot return an error, so a [`Frame`] is
//! only bytes on the way in; [`Frame::decode`] validates it and returns a [`FrameError`] value
//! for anything malformed — never a panic — so the receiver can answer "bad request" instead
//! of dropping the caller's reply port.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::task::TaskEnvelope;

/// The highest frame format version this build speaks (it reads every version from
/// [`MIN_FRAME_VERSION`] on).
pub const FRAME_VERSION: u8 = 2;

/// The lowest frame format version this build reads.
pub const MIN_FRAME_VERSION: u8 = 1;

/// The largest body a frame may carry (well below ractor_cluster's 16 MiB inbound frame cap, so
/// an oversized payload is a clear error here rather than a dropped connection there).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// The capacity a frame's buffer starts with (it grows past it as needed).
const INITIAL_CAPACITY: usize = 256;

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
    /// The caller gave up an attempt (its timeout, its cancellation, its deadline): the
    /// [`CallTag`] of the call to stop (version 2 on).
    Cancel = 8,
}

impl FrameKind {
    /// The version this kind is written at: the lowest whose body it has, so that nodes of an
    /// older version keep reading what did not change.
    pub const fn version(self) -> u8 {
        match self {
            FrameKind::Call | FrameKind::Cancel => 2,
            _ => 1,
        }
    }

    /// The first version that has this kind.
    const fn since(self) -> u8 {
        match self {
            FrameKind::Cancel => 2,
            _ => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FrameKind::Call),
            2 => Some(FrameKind::Answer),
            3 => Some(FrameKind::Ping),
            4 => Some(FrameKind::Pong),
            5 => Some(FrameKind::Command),
            6 => Some(FrameKind::Ack),
            7 => Some(FrameKind::Snapshot),
            8 => Some(FrameKind::Cancel),
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
    /// Written by a version this build does not speak (or a kind that version lacks).
    #[error(
        "frame version {got} not supported (this node speaks {MIN_FRAME_VERSION} to {FRAME_VERSION})"
    )]
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
        Frame::encode_at(kind.version(), kind, value)
    }

    /// Encodes `value` as a frame of `kind` at `version` (for answering an older node in its
    /// own version, and for tests).
    fn encode_at<T: Serialize + ?Sized>(
        version: u8,
        kind: FrameKind,
        value: &T,
    ) -> Result<Frame, FrameError> {
        // Room for a typical small call or answer up front: postcard writes byte by byte, and
        // a buffer grown from the two header bytes reallocates six times for a 64-byte task.
        let mut buf = Vec::with_capacity(INITIAL_CAPACITY);
        buf.extend_from_slice(&[version, kind as u8]);
        let bytes = postcard::to_extend(value, buf).map_err(|e| FrameError::Body(e.to_string()))?;
        let len = bytes.len() - 2;
        if len > MAX_BODY {
            return Err(FrameError::TooLarge { len });
        }
        Ok(Frame(bytes))
    }

    /// Decodes a frame of `kind`. Never panics: anything malformed is an [`FrameError`].
    /// Calls are read with [`RemoteCall::from_frame`], which also reads version-1 calls.
    ///
    /// # Errors
    /// See [`FrameError`].
    pub fn decode<T: DeserializeOwned>(&self, kind: FrameKind) -> Result<T, FrameError> {
        self.decode_body(kind)
    }

    /// The frame's version byte, once its header is valid (`None`: truncated).
    pub fn version(&self) -> Option<u8> {
        (self.0.len() >= 2).then(|| self.0[0])
    }

    fn decode_body<T: DeserializeOwned>(&self, kind: FrameKind) -> Result<T, FrameError> {
        let [version, got, body @ ..] = self.0.as_slice() else {
            return Err(FrameError::Truncated { len: self.0.len() });
        };
        if !(MIN_FRAME_VERSION..=FRAME_VERSION).contains(version) || *version < kind.since() {
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

/// What names one remote attempt to its serving node, for a later `Cancel`: a number the
/// calling process drew at random once, and a counter. Unique per attempt across callers
/// (task ids are unique only within a process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallTag {
    /// The calling process's random number.
    pub caller: u64,
    /// The attempt's number in that process.
    pub seq: u64,
}

/// A task for one attempt on a serving node: its envelope carries the id (the idempotency key),
/// the attempt number, the deadline as the time remaining when it was sent, the operation (for
/// per-operation timeouts there) and the breaker key (for a keyed breaker family there); the
/// tag lets the caller cancel it. The serving node runs exactly one attempt (it is told the
/// caller retries).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::cluster::{CallTag, Frame, FrameKind, RemoteCall};
/// use ractor_resilience::task::TaskEnvelope;
///
/// let envelope = TaskEnvelope::new("hi".to_string())
///     .with_deadline(Duration::from_secs(1))
///     .with_operation("summarise");
/// let call = RemoteCall::new(envelope).with_tag(CallTag { caller: 7, seq: 1 });
/// let frame = Frame::encode(FrameKind::Call, &call).unwrap();
/// assert_eq!(RemoteCall::<String>::from_frame(&frame).unwrap(), call);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteCall<T> {
    /// The task and what travels with it.
    pub envelope: TaskEnvelope<T>,
    /// What a `Cancel` for this attempt names (`None`: not cancellable, e.g. a version-1 call).
    pub tag: Option<CallTag>,
}

impl<T> RemoteCall<T> {
    /// A call of `envelope`, not cancellable.
    pub fn new(envelope: TaskEnvelope<T>) -> Self {
        RemoteCall {
            envelope,
            tag: None,
        }
    }

    /// The same call, cancellable by a `Cancel` naming `tag`.
    pub fn with_tag(mut self, tag: CallTag) -> Self {
        self.tag = Some(tag);
        self
    }
}

impl<T: DeserializeOwned> RemoteCall<T> {
    /// Reads a `Call` frame of any version this build speaks: a version-1 frame (a bare
    /// envelope) becomes a call with no tag.
    ///
    /// # Errors
    /// See [`FrameError`].
    pub fn from_frame(frame: &Frame) -> Result<Self, FrameError> {
        match frame.version() {
            Some(1) => frame.decode_body(FrameKind::Call).map(RemoteCall::new),
            _ => frame.decode_body(FrameKind::Call),
        }
    }
}

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

    fn envelope() -> TaskEnvelope<String> {
        TaskEnvelope::new("hello".to_string()).with_deadline(Duration::from_millis(1500))
    }

    fn call() -> RemoteCall<String> {
        RemoteCall::new(envelope()).with_tag(CallTag { caller: 42, seq: 7 })
    }

    #[test]
    fn call_round_trips_with_operation_key_and_tag() {
        let mut call = call();
        call.envelope = call
            .envelope
            .with_operation("summarise")
            .with_breaker_key("gpt-4o");
        let frame = Frame::encode(FrameKind::Call, &call).unwrap();
        assert_eq!(frame.as_bytes()[..2], [2, FrameKind::Call as u8]);
        let back = RemoteCall::<String>::from_frame(&frame).unwrap();
        assert_eq!(back, call);
        assert_eq!(back.envelope.operation.as_deref(), Some("summarise"));
        assert_eq!(back.envelope.breaker_key.as_deref(), Some("gpt-4o"));
        assert_eq!(back.tag, Some(CallTag { caller: 42, seq: 7 }));
    }

    #[test]
    fn a_version_1_call_is_read_as_a_call_without_a_tag() {
        // What a version-1 node sends: the bare envelope.
        let env = envelope().with_operation("summarise");
        let frame = Frame::encode_at(1, FrameKind::Call, &env).unwrap();
        assert_eq!(frame.version(), Some(1));
        let back = RemoteCall::<String>::from_frame(&frame).unwrap();
        assert_eq!(back, RemoteCall::new(env));
        assert_eq!(back.tag, None, "not cancellable");
    }

    #[test]
    fn answers_stay_at_version_1_so_older_callers_read_them() {
        let frame = Frame::encode(FrameKind::Answer, &Answer::<u8, String>::Ok(1)).unwrap();
        assert_eq!(frame.version(), Some(1));
        for kind in [
            FrameKind::Ping,
            FrameKind::Pong,
            FrameKind::Command,
            FrameKind::Ack,
            FrameKind::Snapshot,
        ] {
            assert_eq!(kind.version(), 1, "{kind:?}");
        }
    }

    #[test]
    fn cancel_round_trips_and_needs_version_2() {
        let tag = CallTag { caller: 1, seq: 2 };
        let frame = Frame::encode(FrameKind::Cancel, &tag).unwrap();
        assert_eq!(frame.as_bytes()[..2], [2, FrameKind::Cancel as u8]);
        assert_eq!(frame.decode::<CallTag>(FrameKind::Cancel), Ok(tag));
        let v1 = Frame::encode_at(1, FrameKind::Cancel, &tag).unwrap();
        assert_eq!(
            v1.decode::<CallTag>(FrameKind::Cancel),
            Err(FrameError::Version { got: 1 }),
            "version 1 has no Cancel"
        );
    }

    #[test]
    fn version_0_is_an_error_value() {
        let mut bytes = Frame::encode(FrameKind::Call, &call()).unwrap().0;
        bytes[0] = 0;
        assert_eq!(
            RemoteCall::<String>::from_frame(&Frame(bytes)),
            Err(FrameError::Version { got: 0 })
        );
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
        let err = RemoteCall::<String>::from_frame(&Frame(bytes));
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
            let err = RemoteCall::<String>::from_frame(&cut).unwrap_err();
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
            let _ = RemoteCall::<String>::from_frame(&frame);
            let _ = frame.decode::<CallTag>(FrameKind::Cancel);
            let _ = frame.decode::<Answer<Vec<u32>, String>>(FrameKind::Answer);
            let _ = frame.decode::<String>(FrameKind::Pong);
        }

        #[test]
        fn decoding_a_valid_header_with_arbitrary_body_never_panics(
            version in MIN_FRAME_VERSION..=FRAME_VERSION,
            kind in 1u8..=8,
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = vec![version, kind];
            bytes.extend(body);
            let frame = Frame(bytes);
            let _ = RemoteCall::<String>::from_frame(&frame);
            let _ = frame.decode::<CallTag>(FrameKind::Cancel);
            let _ = frame.decode::<Answer<(u8, String), FrameError>>(FrameKind::Answer);
        }

        #[test]
        fn calls_round_trip(
            task in ".{0,64}",
            ms in 0u64..100_000,
            attempt in 1u32..5,
            op in proptest::option::of("[a-z]{1,12}"),
            key in proptest::option::of(".{0,16}"),
            tag in proptest::option::of((any::<u64>(), any::<u64>())),
        ) {
            let mut env = TaskEnvelope::new(task).with_deadline(Duration::from_millis(ms));
            env.attempt = attempt;
            env.operation = op.map(Into::into);
            env.breaker_key = key.map(Into::into);
            let call = RemoteCall {
                envelope: env,
                tag: tag.map(|(caller, seq)| CallTag { caller, seq }),
            };
            let frame = Frame::encode(FrameKind::Call, &call).unwrap();
            prop_assert_eq!(RemoteCall::<String>::from_frame(&frame).unwrap(), call);
        }
    }
}
