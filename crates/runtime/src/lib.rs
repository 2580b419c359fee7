//! Tether on Linux: packet I/O, traffic steering, neighbours and routes, control sockets and
//! health checks, driving the agent and manager state machines. All `unsafe` code of the
//! project lives in this crate's `sys` module.

pub mod agent_worker;
pub mod health;
pub mod manager_driver;
