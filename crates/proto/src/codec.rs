//! Bytes of service messages (see `docs/protocol.md`) and their authentication.
//!
//! CONTRACT (filled in by the proto work; signatures are what agent and manager code against).

use core::net::SocketAddr;

use crate::model::Message;

/// Why bytes are not a service message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Placeholder until the proto work lands.
    #[error("message is malformed")]
    Malformed,
}

/// Encodes a message without a security segment.
pub fn encode(message: &Message) -> Vec<u8> {
    let _ = message;
    todo!("proto work")
}

/// Decodes a message, ignoring any security segment. Unknown optional segments are skipped;
/// unknown or unprocessable required segments are listed in the envelope's
/// `unsupported_required` (or, for messages without an envelope, rejected).
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let _ = bytes;
    todo!("proto work")
}

/// One HMAC-SHA256 key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Key id carried in the security segment.
    pub id: u32,
    /// Secret bytes (at least 16).
    pub secret: Vec<u8>,
}

/// How an endpoint signs what it sends and checks what it receives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Keys this endpoint knows.
    pub keys: Vec<Key>,
    /// Id of the key used to sign outgoing messages; `None` sends unsigned.
    pub send_key: Option<u32>,
    /// Whether incoming messages (other than IP packet only) must carry a valid signature.
    pub require: bool,
}

/// Why a received datagram was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The bytes are not a service message.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    /// Authentication is required and the message carries no security segment.
    #[error("message is not signed and this endpoint requires authentication")]
    Unsigned,
    /// The security segment names a key id this endpoint does not have.
    #[error("message is signed with unknown key id {0}; configure that key or fix the sender")]
    UnknownKey(u32),
    /// The HMAC does not verify.
    #[error("message authentication code does not verify (wrong key or altered message)")]
    BadMac,
    /// The sequence number was seen before or is too old for the replay window.
    #[error("sequence number {0} was already seen or is older than the replay window")]
    Replayed(u64),
}

impl Rejection {
    /// A stable label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Unsigned => "unsigned",
            Self::UnknownKey(_) => "unknown_key",
            Self::BadMac => "bad_mac",
            Self::Replayed(_) => "replayed",
        }
    }
}

/// Counters of an endpoint's codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecCounters {
    /// Messages accepted.
    pub accepted: u64,
    /// Dropped: malformed.
    pub malformed: u64,
    /// Dropped: unsigned, unknown key or bad MAC.
    pub auth_failed: u64,
    /// Dropped: replayed or too old.
    pub replayed: u64,
}

/// An endpoint's codec: seals outgoing messages and opens incoming ones, keeping one replay
/// window per (sender, key id).
#[derive(Debug)]
pub struct Codec {
    config: AuthConfig,
}

impl Codec {
    /// A codec with `config`; outgoing sequence numbers start after `initial_sequence`, which
    /// a runtime derives from the wall clock so a restarted sender is not taken for a replay.
    pub fn new(config: AuthConfig, initial_sequence: u64) -> Self {
        let _ = initial_sequence;
        Self { config }
    }

    /// Encodes `message`, signed when a send key is configured (IP packet only messages are
    /// never signed).
    pub fn seal(&mut self, message: &Message) -> Vec<u8> {
        let _ = (message, &self.config);
        todo!("proto work")
    }

    /// Decodes and authenticates a datagram from `from`; rejections are counted.
    pub fn open(&mut self, from: SocketAddr, bytes: &[u8]) -> Result<Message, Rejection> {
        let _ = (from, bytes);
        todo!("proto work")
    }

    /// Counters so far.
    pub fn counters(&self) -> CodecCounters {
        todo!("proto work")
    }
}
