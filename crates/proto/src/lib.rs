//! Tether's service protocol (seed 004): the messages between service managers and forwarding
//! agents, as values ([`model`]), as bytes ([`codec`]), and how they are authenticated.
//!
//! This crate does no I/O and reads no clock: callers hand it bytes and get bytes back.
#![forbid(unsafe_code)]

pub mod codec;
pub mod maglev;
pub mod model;
pub mod time;

pub use codec::{AuthConfig, Codec, CodecCounters, DecodeError, Key, Rejection};
pub use model::*;
pub use time::Timestamp;

/// A datagram a state machine wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (a unicast peer or the multicast group).
    pub dest: core::net::SocketAddr,
    /// The encoded message.
    pub payload: Vec<u8>,
}
