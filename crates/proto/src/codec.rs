//! Bytes of service messages (see `docs/protocol.md`) and their authentication.
//!
//! ```text
//!  Message ──encode──▶ bytes          Codec::seal: encode + security segment (HMAC-SHA256)
//!  Message ◀──decode── bytes          Codec::open: frame → verify MAC → decode → replay window
//! ```
//!
//! [`decode`] is total over arbitrary input: every length is checked against the bytes that
//! are there, and nothing is allocated beyond the size of the input.

mod auth;
mod decode;
mod encode;
mod error;
#[cfg(test)]
mod fixtures;
mod replay;
mod wire;

pub use auth::{AuthConfig, AuthConfigError, Codec, CodecCounters, Key, MIN_SECRET_LEN, Rejection};
pub use decode::Decoded;
pub use error::DecodeError;
pub use replay::REPLAY_WINDOW;
pub use wire::{FLAG_REQUIRED, HEADER_LEN, MAC_LEN, SECURITY_HMAC_SHA256, SEGMENT_HEADER_LEN};

use crate::model::Message;

/// Encodes a message without a security segment.
///
/// # Panics
///
/// If a segment would be 4 GiB or longer, which no datagram can carry.
pub fn encode(message: &Message) -> Vec<u8> {
    encode::message(message, None).0
}

/// Decodes a message, ignoring any security segment. Unknown optional segments are skipped;
/// unknown or unprocessable required segments are listed in the envelope's
/// `unsupported_required` (or, for messages without an envelope, rejected).
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_counted(bytes).map(|d| d.message)
}

/// Like [`decode`], and also says how many optional segments were skipped.
pub fn decode_counted(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode::message(wire::frame(bytes)?)
}
