//! The forwarding agent (seed 004) as a deterministic state machine.
#![forbid(unsafe_code)]
