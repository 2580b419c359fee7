//! Deterministic in-process simulation: managers and agents on virtual time, wired by an
//! in-memory network that carries their real encoded, authenticated messages.
//!
//! The shape follows quinn-proto's test pair: every state machine is driven through its
//! `handle_*` / `poll_*` calls, time only moves when [`World`] moves it, and a seed fixes every
//! fault the network injects, so a failing schedule can be replayed exactly.
#![forbid(unsafe_code)]

pub mod net;
pub mod world;

pub use net::{Datagram, Faults, NetStats, Network, Rng};
pub use world::{AgentId, Emitted, ManagerId, Node, World};
