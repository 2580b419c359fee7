//! Packet views over byte buffers for Tether's forwarding agents.
//!
//! Every protocol has a typed view over `T: AsRef<[u8]>` (with `AsMut` for setters). A view is
//! made by one length check; after that no getter or setter can panic. Nothing here allocates,
//! and nothing is `unsafe`. [`packet`] combines the views into the one-pass parse the agent's
//! pipeline needs, and [`nat`] performs in-place rewrites with incremental checksum updates
//! (RFC 1624), including the packet embedded in ICMP errors.
#![forbid(unsafe_code)]

mod bytes;

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod flow;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6ext;
pub mod nat;
pub mod packet;
mod quote;
pub mod tcp;
pub mod udp;

pub use error::{Layer, WireError};
pub use flow::AffinityKey;
