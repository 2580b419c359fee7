//! A small-packet UDP load generator and a counting sink, for forwarding-rate benchmarks.
//!
//! The generator sends datagrams of a fixed payload size from many source ports (flows) at a
//! paced rate, or as fast as it can, on several threads; the sink counts what arrives, per
//! source, on one or more `SO_REUSEPORT` sockets and reports once the traffic has stopped.
//! Loss is `1 - received / sent`, summed over the sinks of every backend.
//!
//! [`open_flows`] sends one datagram from each of many distinct source addresses and ports, so
//! a load balancer creates that many flows (for memory-per-flow figures).
#![expect(
    clippy::disallowed_types,
    reason = "a load generator paces itself and a sink times out by the wall clock"
)]

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

use crate::LabError;

/// Receive buffer asked for each sink socket (the kernel caps it at `net.core.rmem_max`).
const SINK_BUFFER: usize = 8 << 20;

/// Datagrams a generator thread sends between looks at the clock.
const BURST: u64 = 32;

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Where datagrams go (a VIP and port, or a server).
    pub target: SocketAddr,
    /// Datagrams per second over all threads; 0 sends as fast as possible.
    pub rate: u64,
    /// How long to send.
    pub duration: Duration,
    /// Source ports (flows), spread over the threads; at least one per thread.
    pub flows: usize,
    /// Sending threads.
    pub threads: usize,
    /// UDP payload bytes of each datagram (at least 8: the flow and sequence stamp).
    pub payload: usize,
}

/// What a generator run sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenReport {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Sends that failed (a full buffer, an ICMP error reported back).
    pub errors: u64,
    /// How long sending took, in microseconds.
    pub elapsed_us: u64,
}

impl GenReport {
    /// Datagrams sent per second.
    pub fn rate(&self) -> f64 {
        if self.elapsed_us == 0 {
            0.0
        } else {
            self.sent as f64 * 1e6 / self.elapsed_us as f64
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a generator report has only plain fields")
    }

    /// Reads a report printed by [`GenReport::to_json`].
    pub fn from_json(json: &str) -> Result<GenReport, LabError> {
        serde_json::from_str(json.trim()).map_err(|e| LabError::Protocol {
            peer: "UDP generator output".to_owned(),
            reason: e.to_string(),
        })
    }
}

/// What a sink received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkReport {
    /// Datagrams received.
    pub received: u64,
    /// Distinct source addresses and ports seen.
    pub sources: u64,
    /// Receive errors other than timeouts.
    pub errors: u64,
}

impl SinkReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a sink report has only plain fields")
    }

    /// Reads a report printed by [`SinkReport::to_json`].
    pub fn from_json(json: &str) -> Result<SinkReport, LabError> {
        serde_json::from_str(json.trim()).map_err(|e| LabError::Protocol {
            peer: "UDP sink output".to_owned(),
            reason: e.to_string(),
        })
    }
}

fn unspecified(target: SocketAddr) -> SocketAddr {
    if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

/// Sends datagrams as `config` says and reports how many went out.
pub fn generate(config: &GenConfig) -> Result<GenReport, LabError> {
    if config.threads == 0 || config.flows < config.threads {
        return Err(LabError::Invalid {
            what: "generator flows and threads",
            value: format!("{} flows, {} threads", config.flows, config.threads),
            reason: "use at least one thread and at least one flow per thread",
        });
    }
    if config.payload < 8 {
        return Err(LabError::Invalid {
            what: "payload size",
            value: config.payload.to_string(),
            reason: "use at least 8 bytes",
        });
    }
    let mut sockets: Vec<Vec<UdpSocket>> = (0..config.threads).map(|_| Vec::new()).collect();
    for flow in 0..config.flows {
        let socket = UdpSocket::bind(unspecified(config.target))
            .and_then(|s| s.connect(config.target).map(|()| s))
            .map_err(|e| LabError::io(format!("opening flow {flow} to {}", config.target), e))?;
        sockets[flow % config.threads].push(socket);
    }
    let per_thread_rate = config.rate as f64 / config.threads as f64;
    let start = Instant::now();
    let totals = thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .iter()
            .map(|socks| {
                scope.spawn(move || {
                    send_loop(socks, per_thread_rate, config.duration, config.payload)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 1)))
            .fold((0, 0), |(s, e), (s2, e2)| (s + s2, e + e2))
    });
    Ok(GenReport {
        sent: totals.0,
        errors: totals.1,
        elapsed_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
    })
}

/// One thread's loop: round robin over its sockets, `rate` datagrams per second (0: no pacing).
fn send_loop(sockets: &[UdpSocket], rate: f64, duration: Duration, payload: usize) -> (u64, u64) {
    let mut buf = vec![0u8; payload];
    let (mut sent, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let mut next = 0;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        if rate > 0.0 {
            let due = (elapsed.as_secs_f64() * rate) as u64;
            if sent + errors >= due {
                let ahead = (sent + errors + 1 - due) as f64 / rate;
                if ahead > 0.000_2 {
                    thread::sleep(Duration::from_secs_f64(ahead.min(0.001)));
                } else {
                    thread::yield_now();
                }
                continue;
            }
        }
        for _ in 0..BURST {
            let socket = &sockets[next];
            next = (next + 1) % sockets.len();
            buf[..8].copy_from_slice(&(sent + errors).to_be_bytes());
            match socket.send(&buf) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
    }
    (sent, errors)
}

/// How a sink knows the traffic is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkConfig {
    /// Where to receive (`0.0.0.0:PORT` takes a VIP on `lo` as well).
    pub listen: SocketAddr,
    /// Receiving sockets (and threads), bound with `SO_REUSEPORT`.
    pub threads: usize,
    /// Stop once nothing arrived for this long after the first datagram.
    pub idle: Duration,
    /// Stop after this long in any case.
    pub max: Duration,
}

/// Binds the sink's sockets; [`sink_on`] receives on them. Separate so a caller knows the
/// sink is ready before traffic starts. With port 0, all sockets share the port the first got.
pub fn sink_bind(config: &SinkConfig) -> Result<Vec<UdpSocket>, LabError> {
    let mut listen = config.listen;
    let mut sockets = Vec::new();
    for _ in 0..config.threads.max(1) {
        let context = || format!("binding the UDP sink on {listen}");
        let socket = Socket::new(
            Domain::for_address(listen),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(|e| LabError::io(context(), e))?;
        socket
            .set_reuse_port(true)
            .map_err(|e| LabError::io(context(), e))?;
        // Best effort: a smaller buffer only makes the sink drop sooner.
        let _ = socket.set_recv_buffer_size(SINK_BUFFER);
        socket
            .bind(&listen.into())
            .map_err(|e| LabError::io(context(), e))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| LabError::io(context(), e))?;
        let socket: UdpSocket = socket.into();
        listen = socket
            .local_addr()
            .map_err(|e| LabError::io(context(), e))?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Counts datagrams on `sockets` until they have been quiet for `config.idle` after the first,
/// or `config.max` has passed.
pub fn sink_on(sockets: &[UdpSocket], config: &SinkConfig) -> SinkReport {
    let start = Instant::now();
    // Milliseconds from `start` to the last datagram on any socket, plus one; 0 before any.
    let last = AtomicU64::new(0);
    let idle_ms = u64::try_from(config.idle.as_millis()).unwrap_or(u64::MAX);
    let since_start = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let per_socket: Vec<(u64, u64, HashMap<SocketAddr, u64>)> = thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .iter()
            .map(|socket| {
                let (last, since_start) = (&last, &since_start);
                scope.spawn(move || {
                    let mut buf = [0u8; 2048];
                    let (mut received, mut errors) = (0u64, 0u64);
                    let mut sources: HashMap<SocketAddr, u64> = HashMap::new();
                    loop {
                        match socket.recv_from(&mut buf) {
                            Ok((_, from)) => {
                                received += 1;
                                *sources.entry(from).or_insert(0) += 1;
                                last.store(since_start() + 1, Ordering::Relaxed);
                                continue;
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => errors += 1,
                        }
                        let now = since_start();
                        let last = last.load(Ordering::Relaxed);
                        if start.elapsed() >= config.max || (last > 0 && now + 1 >= last + idle_ms)
                        {
                            break;
                        }
                    }
                    (received, errors, sources)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut report = SinkReport::default();
    let mut sources: HashMap<SocketAddr, u64> = HashMap::new();
    for (received, errors, s) in per_socket {
        report.received += received;
        report.errors += errors;
        for (from, n) in s {
            *sources.entry(from).or_insert(0) += n;
        }
    }
    report.sources = sources.len() as u64;
    report
}

/// Binds a sink and counts until the traffic is over.
pub fn sink(config: &SinkConfig) -> Result<SinkReport, LabError> {
    let sockets = sink_bind(config)?;
    Ok(sink_on(&sockets, config))
}

/// Sends one datagram to `target` from each of `count` flows: source ports 10000 to 59999 of
/// the first address of `sources`, then of the next, and so on; `rate` flows per second at
/// most (0: no limit). Returns how many were sent.
pub fn open_flows(
    target: SocketAddr,
    sources: &[IpAddr],
    count: usize,
    rate: u64,
) -> Result<u64, LabError> {
    const FIRST_PORT: usize = 10_000;
    const PORTS: usize = 50_000;
    if count > sources.len() * PORTS {
        return Err(LabError::Invalid {
            what: "flow count",
            value: count.to_string(),
            reason: "each source address gives 50000 flows; add source addresses",
        });
    }
    let start = Instant::now();
    let mut sent = 0;
    let payload = [0u8; 16];
    for i in 0..count {
        if rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
        }
        let source = SocketAddr::new(sources[i / PORTS], (FIRST_PORT + i % PORTS) as u16);
        let socket = UdpSocket::bind(source)
            .map_err(|e| LabError::io(format!("binding flow source {source}"), e))?;
        if socket.send_to(&payload, target).is_ok() {
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_and_sink_round_trip_on_loopback() {
        let config = SinkConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            threads: 1,
            idle: Duration::from_millis(300),
            max: Duration::from_secs(20),
        };
        let sockets = sink_bind(&config).expect("sink binds");
        let target = sockets[0].local_addr().expect("bound");
        let report = thread::scope(|scope| {
            let sink = scope.spawn(|| sink_on(&sockets, &config));
            let sent = generate(&GenConfig {
                target,
                rate: 10_000,
                duration: Duration::from_millis(200),
                flows: 8,
                threads: 2,
                payload: 64,
            })
            .expect("generator runs");
            (sent, sink.join().expect("sink thread"))
        });
        let (sent, received) = report;
        println!(
            "sent {sent:?} at {:.0}/s, received {received:?}",
            sent.rate()
        );
        assert!(sent.sent > 100, "the generator sent: {sent:?}");
        assert_eq!(sent.errors, 0);
        // 2000 datagrams paced at 10k/s fit the sink's buffer even if it never ran: none is lost.
        assert_eq!(received.received, sent.sent, "sink counted every datagram");
        assert_eq!(received.sources, 8, "one source per flow");
        assert_eq!(
            SinkReport::from_json(&received.to_json()).expect("parses"),
            received
        );
        assert_eq!(GenReport::from_json(&sent.to_json()).expect("parses"), sent);
    }

    #[test]
    fn flows_come_from_distinct_ports() {
        let config = SinkConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            threads: 2,
            idle: Duration::from_millis(300),
            max: Duration::from_secs(20),
        };
        let sockets = sink_bind(&config).expect("sink binds");
        let target = sockets[0].local_addr().expect("bound");
        let (sent, received) = thread::scope(|scope| {
            let sink = scope.spawn(|| sink_on(&sockets, &config));
            let sent = open_flows(target, &["127.0.0.1".parse().expect("ip")], 500, 0)
                .expect("flows open");
            (sent, sink.join().expect("sink thread"))
        });
        assert_eq!(sent, 500);
        assert_eq!(received.received, 500);
        assert_eq!(received.sources, 500);
        assert!(open_flows(target, &[], 1, 0).is_err(), "no source address");
    }
}
