//! A network-namespace testbed: hosts, links, addresses and processes that clean up after
//! themselves, plus traffic programs (checksummed streams, HTTP, UDP echo) to run in them.
//!
//! Everything here is blocking std code driving the `ip` command (iproute2); it needs root.
//! The lab creates nothing in the caller's own namespace, so its traffic stays inside it.
#![forbid(unsafe_code)]

mod command;
mod error;
mod net;
pub mod netns;
mod stop;
pub mod stream;

pub use error::LabError;
pub use stop::StopFlag;
