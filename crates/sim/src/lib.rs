//! Deterministic in-process simulation: managers and agents on virtual time, wired by an
//! in-memory network that carries their real encoded messages.
#![forbid(unsafe_code)]
