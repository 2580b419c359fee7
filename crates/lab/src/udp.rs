//! UDP echo that names its backend, and a client that checks each source port's flow stays
//! on one backend.
//!
//! The server answers each datagram with `NAME:` followed by the datagram. Bind it to the
//! address clients reach (the VIP, for direct server return), so replies leave from it.
#![expect(
    clippy::disallowed_types,
    reason = "the client gives up on lost datagrams by the wall clock"
)]

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::net::POLL;
use crate::{LabError, StopFlag};

/// Datagrams a client port keeps in flight before it waits for answers: small, so many ports
/// at once stay within the default receive buffer of one echo socket.
const WINDOW: usize = 4;

/// Stack size of client threads: they hold small buffers, and there may be hundreds.
const THREAD_STACK: usize = 256 * 1024;

/// Answers datagrams on `listen` as backend `name` until `stop` is set; returns how many.
pub fn echo_serve(listen: SocketAddr, name: &str, stop: &StopFlag) -> Result<u64, LabError> {
    let socket =
        UdpSocket::bind(listen).map_err(|e| LabError::io(format!("binding UDP {listen}"), e))?;
    echo_serve_on(&socket, name, stop)
}

/// Answers datagrams on a bound socket as backend `name` until `stop` is set; returns how many.
pub fn echo_serve_on(socket: &UdpSocket, name: &str, stop: &StopFlag) -> Result<u64, LabError> {
    if name.is_empty() || name.contains(':') {
        return Err(LabError::Invalid {
            what: "backend name",
            value: name.to_owned(),
            reason: "use a non-empty name without `:`, which ends the name in replies",
        });
    }
    let context = || {
        let at = socket
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        format!("UDP echo on {at}")
    };
    socket
        .set_read_timeout(Some(POLL))
        .map_err(|e| LabError::io(context(), e))?;
    let mut reply = format!("{name}:").into_bytes();
    let prefix = reply.len();
    let mut buf = vec![0u8; 65_536];
    let mut answered = 0;
    while !stop.is_stopped() {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                reply.truncate(prefix);
                reply.extend_from_slice(&buf[..n]);
                // A reply that cannot be sent is a lost datagram, which UDP allows.
                if socket.send_to(&reply, peer).is_ok() {
                    answered += 1;
                }
            }
            Err(e) if is_retryable(&e) => {}
            Err(e) => return Err(LabError::io(context(), e)),
        }
    }
    Ok(answered)
}

/// Errors after which a UDP socket still works: a timeout, or an ICMP error for an earlier
/// datagram.
fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
    )
}

/// What one client source port sent and got back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpPortResult {
    /// The client's address and source port, once bound.
    pub local: Option<SocketAddr>,
    /// Datagrams sent.
    pub sent: usize,
    /// Distinct datagrams answered with their own payload.
    pub answered: usize,
    /// Datagrams sent but not answered within the timeout.
    pub lost: usize,
    /// Answers per backend name.
    pub backends: BTreeMap<String, usize>,
    /// Replies that did not echo a datagram of this port, and send or receive errors.
    pub errors: usize,
    /// The last error, for people.
    pub detail: Option<String>,
}

/// Everything one run of the UDP client found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpReport {
    /// The address the datagrams were sent to.
    pub target: SocketAddr,
    /// One result per source port.
    pub ports: Vec<UdpPortResult>,
    /// Time the whole run took, in milliseconds.
    pub elapsed_ms: u64,
}

impl UdpReport {
    /// Datagrams sent over all ports.
    pub fn sent(&self) -> usize {
        self.ports.iter().map(|p| p.sent).sum()
    }

    /// Datagrams answered over all ports.
    pub fn answered(&self) -> usize {
        self.ports.iter().map(|p| p.answered).sum()
    }

    /// Whether every port that got answers got them all from one backend.
    pub fn each_port_on_one_backend(&self) -> bool {
        self.ports.iter().all(|p| p.backends.len() <= 1)
    }

    /// Answers per backend over all ports.
    pub fn backends(&self) -> BTreeMap<String, usize> {
        let mut total = BTreeMap::new();
        for (name, n) in self.ports.iter().flat_map(|p| &p.backends) {
            *total.entry(name.clone()).or_insert(0) += n;
        }
        total
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a UDP report has only plain fields")
    }

    /// Reads a report printed by [`UdpReport::to_json`].
    pub fn from_json(json: &str) -> Result<UdpReport, LabError> {
        serde_json::from_str(json).map_err(|e| LabError::Protocol {
            peer: "UDP client output".to_owned(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Display for UdpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = self.ports.iter().filter(|p| p.backends.len() == 1).count();
        write!(
            f,
            "{}/{} datagrams to {} answered ({} lost) from {} ports ({one} on one backend) in \
             {:.1} s; backends",
            self.answered(),
            self.sent(),
            self.target,
            self.ports.iter().map(|p| p.lost).sum::<usize>(),
            self.ports.len(),
            self.elapsed_ms as f64 / 1000.0,
        )?;
        for (name, n) in self.backends() {
            write!(f, " {name}={n}")?;
        }
        Ok(())
    }
}

/// Sends `datagrams_per_port` datagrams to `target` from each of `source_ports` sockets at
/// once. A datagram unanswered for `timeout` is lost; a port whose whole window of datagrams
/// sent since its last answer is lost gives up and leaves the rest unsent.
pub fn run_clients(
    target: SocketAddr,
    source_ports: usize,
    datagrams_per_port: usize,
    timeout: Duration,
) -> UdpReport {
    let start = Instant::now();
    let ports = thread::scope(|scope| {
        let handles: Vec<_> = (0..source_ports)
            .map(|port| {
                thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn_scoped(scope, move || {
                        run_port(target, port, datagrams_per_port, timeout)
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                let failed = |detail: String| UdpPortResult {
                    local: None,
                    sent: 0,
                    answered: 0,
                    lost: 0,
                    backends: BTreeMap::new(),
                    errors: 1,
                    detail: Some(detail),
                };
                match handle {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|_| failed("the port's thread panicked".to_owned())),
                    Err(e) => failed(format!("no thread for the port: {e}")),
                }
            })
            .collect()
    });
    UdpReport {
        target,
        ports,
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// One source port's flow: a window of datagrams in flight, each answer matched to its own.
fn run_port(target: SocketAddr, port: usize, count: usize, timeout: Duration) -> UdpPortResult {
    let mut result = UdpPortResult {
        local: None,
        sent: 0,
        answered: 0,
        lost: 0,
        backends: BTreeMap::new(),
        errors: 0,
        detail: None,
    };
    let socket = match open(target, timeout) {
        Ok(socket) => socket,
        Err(e) => {
            result.errors += 1;
            result.detail = Some(format!("opening a socket to {target}: {e}"));
            return result;
        }
    };
    result.local = socket.local_addr().ok();
    let mut seen = vec![false; count];
    let mut in_flight: VecDeque<(usize, Instant)> = VecDeque::with_capacity(WINDOW);
    let mut last_answer = Instant::now();
    // Datagrams lost since the last answer that were sent after it: a window of those means
    // the path is dead, not lossy.
    let mut silent_losses = 0;
    let mut buf = vec![0u8; 2048];
    loop {
        in_flight.retain(|&(seq, at)| {
            let expired = !seen[seq] && at.elapsed() >= timeout;
            if expired {
                result.lost += 1;
                silent_losses += usize::from(at >= last_answer);
            }
            !seen[seq] && !expired
        });
        if silent_losses >= WINDOW {
            result.lost += in_flight.len();
            result.detail = Some(format!(
                "{WINDOW} datagrams in a row unanswered for {timeout:?}; gave up"
            ));
            break;
        }
        if result.sent == count && in_flight.is_empty() {
            break;
        }
        while result.sent < count && in_flight.len() < WINDOW {
            if let Err(e) = socket.send(format!("tether-lab {port} {}", result.sent).as_bytes()) {
                result.errors += 1;
                result.detail = Some(format!("sending: {e}"));
            }
            in_flight.push_back((result.sent, Instant::now()));
            result.sent += 1;
        }
        match socket.recv(&mut buf) {
            Ok(n) => match answer_of(&buf[..n], port) {
                Some((name, seq)) if seq < result.sent && !seen[seq] => {
                    seen[seq] = true;
                    if !in_flight.iter().any(|&(s, _)| s == seq) {
                        // Written off as lost, then answered after all.
                        result.lost -= 1;
                    }
                    result.answered += 1;
                    *result.backends.entry(name).or_insert(0) += 1;
                    last_answer = Instant::now();
                    silent_losses = 0;
                }
                _ => {
                    result.errors += 1;
                    result.detail = Some("a reply that echoes no datagram of this port".into());
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                result.errors += 1;
                result.detail = Some(format!("receiving: {e}"));
                if e.kind() != io::ErrorKind::ConnectionRefused {
                    result.lost += in_flight.len();
                    break;
                }
            }
        }
    }
    result
}

/// A socket connected to `target`, so only its answers are received.
fn open(target: SocketAddr, timeout: Duration) -> io::Result<UdpSocket> {
    let any: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(timeout.min(POLL).max(Duration::from_millis(1))))?;
    Ok(socket)
}

/// Reads `NAME:tether-lab PORT SEQ` into the backend name and sequence number, if the reply
/// echoes a datagram of `port`.
fn answer_of(reply: &[u8], port: usize) -> Option<(String, usize)> {
    let reply = std::str::from_utf8(reply).ok()?;
    let (name, payload) = reply.split_once(':')?;
    let seq = payload
        .strip_prefix("tether-lab ")?
        .strip_prefix(&port.to_string())?
        .strip_prefix(' ')?
        .parse()
        .ok()?;
    Some((name.to_owned(), seq))
}
