//! [`KeyBuf`]: a key as the family stores it — inline up to [`INLINE`] bytes (no allocation,
//! and compared in place inside the map's bucket: one cache miss less per admission), shared
//! beyond that.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Keys up to this many bytes are stored inline (model names, endpoints, most tenant ids).
pub(super) const INLINE: usize = 22;

/// A key's bytes (always valid UTF-8: built from a `&str`). Hashes and compares as its bytes,
/// so the map is searched with `key.as_bytes()`.
#[derive(Clone)]
pub(super) enum KeyBuf {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl KeyBuf {
    pub(super) fn new(key: &str) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            KeyBuf::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            KeyBuf::Shared(Arc::from(key))
        }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            KeyBuf::Inline { len, bytes } => &bytes[..usize::from(*len)],
            KeyBuf::Shared(s) => s.as_bytes(),
        }
    }

    /// The key as text (labels, listings, logs: never on the hot path).
    pub(super) fn as_str(&self) -> &str {
        match self {
            KeyBuf::Inline { .. } => {
                std::str::from_utf8(self.as_bytes()).expect("built from a &str")
            }
            KeyBuf::Shared(s) => s,
        }
    }
}

impl Hash for KeyBuf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes: `Borrow<[u8]>` lookups must find it.
        self.as_bytes().hash(state);
    }
}

impl PartialEq for KeyBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KeyBuf {}

impl Borrow<[u8]> for KeyBuf {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for KeyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn short_keys_are_inline_and_every_key_hashes_as_its_bytes() {
        let s = foldhash::fast::FixedState::with_seed(1);
        let long = "x".repeat(INLINE + 1);
        for key in ["", "gpt-4o", &"y".repeat(INLINE), &long] {
            let k = KeyBuf::new(key);
            assert_eq!(k.as_str(), key);
            assert_eq!(s.hash_one(&k), s.hash_one(key.as_bytes()));
            assert_eq!(matches!(k, KeyBuf::Inline { .. }), key.len() <= INLINE);
        }
        assert_eq!(std::mem::size_of::<KeyBuf>(), 24);
    }
}
