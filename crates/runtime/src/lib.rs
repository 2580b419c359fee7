//! Tether on Linux: packet I/O, traffic steering, neighbours and routes, control sockets and
//! health checks, driving the agent and manager state machines. All `unsafe` code of the
//! project lives in this crate's `sys` module.
//!
//! The packet path (see [`agent_worker`]): every data interface gets an AF_PACKET TPACKET_V2
//! ring ([`sys`]), so the agent sees each frame without a copy, rewrites it in place in its ring
//! slot and copies it into a send batch. The kernel receives its own copy of every frame; an
//! nftables `netdev` ingress rule per wildcard affinity drops the copies of traffic the agent
//! owns ([`steering`]), which keeps the host from answering them (no resets during a
//! takeover) while everything else still reaches the kernel. Next hops and MAC addresses come
//! from the kernel's routing and neighbour tables ([`neigh`], over [`netlink`]).
#![deny(unsafe_code)]

pub mod agent_worker;
mod frame;
pub mod health;
pub mod manager_driver;
pub mod neigh;
pub mod netlink;
mod reinject;
pub mod steering;
#[expect(
    unsafe_code,
    reason = "the one module that wraps system calls; see its docs"
)]
pub mod sys;
