//! A network-namespace testbed: hosts, links, addresses and processes that clean up after
//! themselves, plus traffic programs (checksummed streams, HTTP, UDP echo) to run in them.
//!
//! Everything here is blocking std code. Topologies are built with the `ip` command
//! (iproute2) and need root; the lab creates nothing in the caller's own namespace, so its
//! traffic never leaves it. The traffic programs need no root and also run over loopback.
//!
//! - [`netns`]: [`Lab`](netns::Lab), [`Host`](netns::Host), veth links, bridges, routes,
//!   VIPs on `lo`, and [`Process`](netns::Process) guards for programs started in a host.
//! - [`stream`]: long-lived TCP streams whose every byte is verified in both directions.
//! - [`http`]: an HTTP/1.1 server that names its backend, and a minimal client.
//! - [`udp`]: an echo server that names its backend, and a multi-port client.
//! - [`topology`]: the standard client / Tether node / backends lab of the demo and the tests.
//! - [`udpgen`]: a small-packet UDP load generator, a counting sink and a flow opener.
//! - [`bench`](mod@bench): the side-by-side benchmark of `scripts/bench` (Tether, nftables, HAProxy).
//!
//! # As separate processes
//!
//! A test runs a traffic program inside a namespace by starting the `tether` binary there
//! with [`Host::spawn`](netns::Host::spawn). Its hidden `tether lab …` subcommands are thin
//! wrappers; each stops on SIGTERM (the default action), so none needs a [`StopFlag`] set,
//! except a stream server with `--report`, which catches SIGTERM and SIGINT to write its report:
//!
//! | subcommand | calls |
//! |---|---|
//! | `tether lab stream-server --listen ADDR --name NAME` | [`stream::serve`]`(listen, name, &StopFlag::new())` |
//! | `tether lab stream-server --listen ADDR --name NAME --report PATH` | [`stream::serve_reporting`]`(listener, name, &stop)` with `stop` set by SIGTERM or SIGINT, then write [`ServeReport::to_json`](stream::ServeReport::to_json) to PATH |
//! | `tether lab stream-client --target ADDR --streams N --bytes B [--rate BPS] [--stall-timeout-ms MS] [--connect-timeout-ms MS] [--source IP] [--json]` | [`stream::run`]`(&StreamClientConfig { … })`, then print [`StreamReport::to_json`](stream::StreamReport::to_json) or its `Display` line; exit non-zero unless [`all_complete`](stream::StreamReport::all_complete) |
//! | `tether lab http-server --listen ADDR --name NAME` | [`http::serve`]`(listen, name, &StopFlag::new())` |
//! | `tether lab udp-echo --listen ADDR --name NAME` | [`udp::echo_serve`]`(listen, name, &StopFlag::new())` |
//! | `tether lab udp-client --target ADDR --ports P --datagrams D [--timeout-ms MS] [--json]` | [`udp::run_clients`]`(target, ports, datagrams, timeout)`, then print [`UdpReport::to_json`](udp::UdpReport::to_json) or its `Display` line |
//! | `tether lab udp-gen --target ADDR [--rate PPS] [--duration-ms MS] [--flows N] [--threads N] [--payload B]` | [`udpgen::generate`], then print [`GenReport::to_json`](udpgen::GenReport::to_json) |
//! | `tether lab udp-sink --listen ADDR [--threads N] [--idle-ms MS] [--max-ms MS]` | [`udpgen::sink`], then print [`SinkReport::to_json`](udpgen::SinkReport::to_json) |
//! | `tether lab udp-flows --target ADDR --sources IP,… --count N [--rate N]` | [`udpgen::open_flows`], then print the number sent |
//! | `tether lab tcp-connect --target ADDR [--count N]` | [`bench::connect_times`], then print `connected=N p50_us=… p99_us=…` |
//! | `tether lab tcp-hold --target ADDR --count N [--hold-ms MS]` | [`bench::hold_connections`], printing `held N` once open |
//! | `tether lab bench [--runs N] [--quick] [--modes …] [--out FILE] [--threads N] [--tether-workers N]` | [`bench::run`], then print the tables (needs root) |
//!
//! A test waits for a server with [`Host::wait_listening`](netns::Host::wait_listening) and
//! reads a client's report back with [`StreamReport::from_json`](stream::StreamReport::from_json)
//! or [`UdpReport::from_json`](udp::UdpReport::from_json).
#![forbid(unsafe_code)]

pub mod bench;
mod command;
mod error;
pub mod http;
mod net;
pub mod netns;
mod stop;
pub mod stream;
pub mod topology;
pub mod udp;
pub mod udpgen;

pub use error::LabError;
pub use stop::StopFlag;
