//! Authentication of service messages: HMAC-SHA256 keys, sealing, opening and replay windows.

use core::fmt;
use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{Message, MessageType};

use super::encode::{self, SecurityFields};
use super::replay::ReplayWindow;
use super::wire::{self, MAC_LEN};
use super::{DecodeError, decode};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret [`AuthConfig::validate`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// One HMAC-SHA256 key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Key id carried in the security segment.
    pub id: u32,
    /// Secret bytes (at least 16).
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field(
                "secret",
                &format_args!("<{} bytes redacted>", self.secret.len()),
            )
            .finish()
    }
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

/// What is wrong with an [`AuthConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The send key id is not among the keys.
    #[error("send key id {0} is not among the configured keys; add it or pick a configured id")]
    SendKeyMissing(u32),
    /// A key id is configured twice.
    #[error("key id {0} is configured twice; give each key its own id")]
    DuplicateKeyId(u32),
    /// A secret is too short to resist guessing.
    #[error("key id {id} has a {len}-byte secret; use at least {MIN_SECRET_LEN} random bytes")]
    ShortSecret {
        /// The key id.
        id: u32,
        /// Its secret's length.
        len: usize,
    },
}

impl AuthConfig {
    /// Checks the configuration; a [`Codec`] built from an invalid one sends unsigned when its
    /// send key is missing and would accept forgeries of a short secret more easily.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        for (i, key) in self.keys.iter().enumerate() {
            if key.secret.len() < MIN_SECRET_LEN {
                return Err(AuthConfigError::ShortSecret {
                    id: key.id,
                    len: key.secret.len(),
                });
            }
            if self.keys.iter().skip(i + 1).any(|k| k.id == key.id) {
                return Err(AuthConfigError::DuplicateKeyId(key.id));
            }
        }
        match self.send_key {
            Some(id) if !self.keys.iter().any(|k| k.id == id) => {
                Err(AuthConfigError::SendKeyMissing(id))
            }
            _ => Ok(()),
        }
    }
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
    /// Optional segments skipped in accepted messages (unknown, or not allowed in their type).
    pub skipped_optional: u64,
}

/// An endpoint's codec: seals outgoing messages and opens incoming ones, keeping one replay
/// window per (sender, key id).
pub struct Codec {
    /// Keyed MAC state per key id (the key schedule is done once).
    keys: Vec<(u32, HmacSha256)>,
    /// The signing key, when configured and known.
    send: Option<(u32, HmacSha256)>,
    require: bool,
    /// Sequence number of the next signed message.
    next_sequence: u64,
    /// This codec's sender id in the messages it signs: its initial sequence.
    sender: u64,
    /// Replay windows by (sender id, key id); only authenticated messages create or move one.
    windows: HashMap<(u64, u32), ReplayWindow>,
    counters: CodecCounters,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field(
                "key_ids",
                &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .field("send_key", &self.send.as_ref().map(|(id, _)| id))
            .field("require", &self.require)
            .field("next_sequence", &self.next_sequence)
            .field("sender", &self.sender)
            .field("replay_windows", &self.windows.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl Codec {
    /// A codec with `config`; outgoing sequence numbers start after `initial_sequence`, which
    /// a runtime derives from the wall clock so a restarted sender is not taken for a replay.
    /// `initial_sequence` is also the sender id this codec signs its messages with, so every
    /// codec that talks to the same receivers needs its own (a runtime gives each one a
    /// different value); receivers keep one replay window per sender id and key.
    pub fn new(config: AuthConfig, initial_sequence: u64) -> Self {
        let AuthConfig {
            keys,
            send_key,
            require,
        } = config;
        let keys: Vec<(u32, HmacSha256)> = keys
            .into_iter()
            .filter_map(|k| Some((k.id, HmacSha256::new_from_slice(&k.secret).ok()?)))
            .collect();
        let send = send_key.and_then(|id| keys.iter().find(|(k, _)| *k == id).cloned());
        Self {
            keys,
            send,
            require,
            next_sequence: initial_sequence.saturating_add(1),
            sender: initial_sequence,
            windows: HashMap::new(),
            counters: CodecCounters::default(),
        }
    }

    /// Encodes `message`, signed when a send key is configured (IP packet only messages are
    /// never signed). A send key id missing from the keys sends unsigned;
    /// [`AuthConfig::validate`] reports that.
    pub fn seal(&mut self, message: &Message) -> Vec<u8> {
        let signer = match (&self.send, message) {
            (_, Message::IpPacketOnly(_)) | (None, _) => None,
            (Some(signer), _) => Some(signer),
        };
        let Some((key_id, mac)) = signer else {
            return encode::message(message, None).0;
        };
        let fields = SecurityFields {
            key_id: *key_id,
            sequence: self.next_sequence,
            sender: self.sender,
        };
        self.next_sequence = self.next_sequence.saturating_add(1);
        let (mut bytes, mac_offset) = encode::message(message, Some(&fields));
        if let Some(at) = mac_offset {
            let tag = tag(mac.clone(), &bytes, at);
            if let Some(slot) = bytes.get_mut(at..at + MAC_LEN) {
                slot.copy_from_slice(&tag);
            }
        }
        bytes
    }

    /// Decodes and authenticates a datagram; rejections are counted. The checks and their
    /// order are those of `docs/protocol.md`, "Authentication"; in particular a security
    /// segment with an unknown key id is ignored when authentication is not required. The
    /// replay window is the signed sender id's: the datagram's source address, which anyone
    /// can forge, plays no part.
    pub fn open(&mut self, bytes: &[u8]) -> Result<Message, Rejection> {
        let result = self.open_uncounted(bytes);
        let c = &mut self.counters;
        match &result {
            Ok(_) => c.accepted += 1,
            Err(Rejection::Malformed(_)) => c.malformed += 1,
            Err(Rejection::Unsigned | Rejection::UnknownKey(_) | Rejection::BadMac) => {
                c.auth_failed += 1;
            }
            Err(Rejection::Replayed(_)) => c.replayed += 1,
        }
        result
    }

    /// Counters so far.
    pub fn counters(&self) -> CodecCounters {
        self.counters
    }

    /// The checks of [`Codec::open`], in order: framing, signature, body, replay window.
    fn open_uncounted(&mut self, bytes: &[u8]) -> Result<Message, Rejection> {
        let frame = wire::frame(bytes)?;
        let exempt = frame.message_type == MessageType::IpPacketOnly;
        let verified = match &frame.security {
            None if self.require && !exempt => return Err(Rejection::Unsigned),
            None => None,
            Some(sec) => match self.keys.iter().find(|(id, _)| *id == sec.key_id) {
                Some((id, mac)) => {
                    let mut mac = mac.clone();
                    feed(&mut mac, bytes, sec.mac_offset);
                    mac.verify_slice(sec.mac).map_err(|_| Rejection::BadMac)?;
                    Some((*id, sec.sequence, sec.sender))
                }
                None if self.require => return Err(Rejection::UnknownKey(sec.key_id)),
                None => None,
            },
        };
        let decoded = decode::message(frame)?;
        if let Some((key_id, sequence, sender)) = verified {
            match self.windows.get_mut(&(sender, key_id)) {
                Some(window) if !window.check(sequence) => {
                    return Err(Rejection::Replayed(sequence));
                }
                Some(window) => window.record(sequence),
                None => {
                    self.windows
                        .insert((sender, key_id), ReplayWindow::starting_at(sequence));
                }
            }
        }
        self.counters.skipped_optional += decoded.skipped_optional as u64;
        Ok(decoded.message)
    }
}

/// Feeds `bytes` to `mac` with the MAC field at `mac_offset` read as zeros.
fn feed(mac: &mut HmacSha256, bytes: &[u8], mac_offset: usize) {
    let (before, after) = bytes.split_at_checked(mac_offset).unwrap_or((bytes, &[]));
    mac.update(before);
    mac.update(&[0; MAC_LEN]);
    mac.update(after.get(MAC_LEN..).unwrap_or_default());
}

/// The tag of `bytes` (whose MAC field is at `mac_offset`) under `mac`'s key.
fn tag(mut mac: HmacSha256, bytes: &[u8], mac_offset: usize) -> [u8; MAC_LEN] {
    feed(&mut mac, bytes, mac_offset);
    mac.finalize().into_bytes().into()
}
