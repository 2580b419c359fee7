//! A network-namespace testbed: hosts, links, addresses and processes that clean up after
//! themselves, plus traffic programs (checksummed streams, HTTP, UDP echo) to run in them.
#![forbid(unsafe_code)]
