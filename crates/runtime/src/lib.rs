//! Tether on Linux: packet I/O, traffic steering, neighbours and routes, control sockets and
//! health checks, driving the agent and manager state machines. All `unsafe` code of the
//! project lives in this crate's `sys` module.
#![deny(unsafe_code)]

pub mod agent_worker;
pub mod manager_driver;
pub mod neigh;
mod netlink;
pub mod steering;
#[expect(
    unsafe_code,
    reason = "the one module that wraps system calls; see its docs"
)]
pub mod sys;
