//! The service manager (seed 004) as a deterministic state machine.
#![forbid(unsafe_code)]
