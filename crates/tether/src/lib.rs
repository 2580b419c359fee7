//! The `tether` binary's library: command line, configuration, daemon composition, admin API,
//! status tables and the demo.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
mod daemon;
pub mod demo;
pub mod lab_cmd;
pub mod report;
pub mod status_view;
