//! Steering: taking the traffic the agent owns away from the kernel.
//!
//! The agent sees every frame of a data interface on its AF_PACKET ring, and the kernel gets
//! its own copy. For traffic a wildcard affinity describes, the kernel's copy must go: else the
//! host would answer a connection to a VIP it does not serve with a reset, or route a packet
//! the agent is already forwarding. An nftables `netdev` table with one ingress chain per data
//! interface drops exactly that traffic. Packet taps run before the netdev ingress hook, so
//! the ring has seen a frame before the rule drops it.
//!
//! ICMP errors (IPv4 types 3, 11, 12; ICMPv6 types 1 to 4) may concern a steered flow (the
//! "fragmentation needed" a backend's router sends for a NAT'd connection) or a connection
//! of the host itself. Telling them apart needs the embedded packet, which nftables cannot
//! match against the agent's affinities; so all ICMP errors of a family with wildcards are
//! dropped on data interfaces and go to the agent, and those the agent says are not ours are
//! re-injected into the kernel (by a raw IP socket), which then delivers or routes them as if
//! they had just arrived.
//!
//! The worker's own service messages (UDP to its control port) are accepted first, whatever
//! the wildcards say. Rulesets are applied with `nft -f -` in one transaction that deletes and
//! re-creates the table, off the packet path on a small thread ([`Steerer`]).

use core::fmt::Write as _;
use core::net::IpAddr;
use core::ops::RangeInclusive;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tether_proto::WildcardAffinity;

/// An nftables ruleset for one worker's table, ready for `nft -f -`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The complete `nft -f` input: re-creates the table, or only deletes it when empty.
    pub text: String,
    /// Rules in all chains together.
    pub rules: usize,
    /// Whether IPv4 ICMP errors are steered (and must be re-injected when not ours).
    pub icmp_v4: bool,
    /// Whether ICMPv6 errors are steered.
    pub icmp_v6: bool,
}

/// The ruleset that steers what `wildcards` describe on `interfaces`, leaving UDP to
/// `control_ports` (the workers' service messages) to the kernel.
pub fn ruleset<'a>(
    table: &str,
    interfaces: &[String],
    control_ports: RangeInclusive<u16>,
    local: &[IpAddr],
    wildcards: impl IntoIterator<Item = &'a WildcardAffinity>,
) -> Ruleset {
    let rules: BTreeSet<String> = wildcards.into_iter().map(wildcard_rule).collect();
    let mut out = format!("table netdev {table}\ndelete table netdev {table}\n");
    if rules.is_empty() || interfaces.is_empty() {
        return Ruleset {
            text: out,
            ..Ruleset::default()
        };
    }
    let icmp_v4 = rules.iter().any(|r| r.starts_with("meta protocol ip "));
    let icmp_v6 = rules.iter().any(|r| r.starts_with("meta protocol ip6 "));
    let ports = if control_ports.start() == control_ports.end() {
        control_ports.start().to_string()
    } else {
        format!("{}-{}", control_ports.start(), control_ports.end())
    };
    let mut head = vec![format!("udp dport {ports} accept")];
    // Traffic to the host itself stays the kernel's, even where a wildcard's range covers it.
    for (family, addrs) in [
        (
            "ip",
            local.iter().filter(|a| a.is_ipv4()).collect::<Vec<_>>(),
        ),
        (
            "ip6",
            local.iter().filter(|a| a.is_ipv6()).collect::<Vec<_>>(),
        ),
    ] {
        if !addrs.is_empty() {
            let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            head.push(format!(
                "meta protocol {family} {family} daddr {{ {} }} accept",
                list.join(", ")
            ));
        }
    }
    if icmp_v4 {
        head.push(
            "meta protocol ip icmp type { destination-unreachable, time-exceeded, \
             parameter-problem } counter drop"
                .to_owned(),
        );
    }
    if icmp_v6 {
        head.push(
            "meta protocol ip6 icmpv6 type { destination-unreachable, packet-too-big, \
             time-exceeded, parameter-problem } counter drop"
                .to_owned(),
        );
    }
    let _ = writeln!(out, "table netdev {table} {{");
    for (i, interface) in interfaces.iter().enumerate() {
        let _ = writeln!(out, "\tchain ingress_{i} {{");
        let _ = writeln!(
            out,
            "\t\ttype filter hook ingress device \"{interface}\" priority 0; policy accept;"
        );
        for rule in head.iter().chain(&rules) {
            let _ = writeln!(out, "\t\t{rule}");
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    Ruleset {
        text: out,
        rules: (head.len() + rules.len()) * interfaces.len(),
        icmp_v4,
        icmp_v6,
    }
}

/// Whether [`ruleset`] would steer IPv4 and IPv6 ICMP errors, for a worker that does not own the
/// table but must re-inject the errors it is given that are not its own.
pub fn icmp_steered<'a>(
    interfaces: &[String],
    wildcards: impl IntoIterator<Item = &'a WildcardAffinity>,
) -> (bool, bool) {
    if interfaces.is_empty() {
        return (false, false);
    }
    wildcards.into_iter().fold((false, false), |(v4, v6), w| {
        (v4 || w.dst.is_ipv4(), v6 || w.dst.is_ipv6())
    })
}

/// The host addresses whose traffic stays with the kernel: all of `host`, except those a
/// wildcard names exactly (a VIP configured on the node, so that clients can reach it on a
/// flat network, is still the agent's).
pub fn kernel_owned<'a>(
    host: &[IpAddr],
    wildcards: impl IntoIterator<Item = &'a WildcardAffinity>,
) -> Vec<IpAddr> {
    let exact: Vec<IpAddr> = wildcards
        .into_iter()
        .filter(|w| match w.dst_mask {
            IpAddr::V4(m) => m.to_bits() == u32::MAX,
            IpAddr::V6(m) => m.to_bits() == u128::MAX,
        })
        .map(|w| w.dst)
        .collect();
    host.iter()
        .copied()
        .filter(|a| !exact.contains(a))
        .collect()
}

/// The nftables rule dropping what one wildcard describes.
fn wildcard_rule(w: &WildcardAffinity) -> String {
    let ip = if w.dst.is_ipv4() { "ip" } else { "ip6" };
    let mut rule = format!("meta protocol {ip}");
    for (field, addr, mask) in [("saddr", w.src, w.src_mask), ("daddr", w.dst, w.dst_mask)] {
        if let Some(matcher) = address_match(addr, mask) {
            let _ = write!(rule, " {ip} {field} {matcher}");
        }
    }
    let ports = w.src_port != 0 || w.dst_port != 0;
    match (w.protocol, ports) {
        (0, false) => {}
        (0, true) => rule.push_str(" meta l4proto { tcp, udp }"),
        (6, _) => rule.push_str(" meta l4proto tcp"),
        (17, _) => rule.push_str(" meta l4proto udp"),
        (p, _) => {
            let _ = write!(rule, " meta l4proto {p}");
        }
    }
    if w.src_port != 0 {
        let _ = write!(rule, " th sport {}", w.src_port);
    }
    if w.dst_port != 0 {
        let _ = write!(rule, " th dport {}", w.dst_port);
    }
    rule.push_str(" counter drop");
    rule
}

/// `ADDR`, `PREFIX/LEN` or `& MASK == VALUE` for a masked address; `None` for "any".
fn address_match(addr: IpAddr, mask: IpAddr) -> Option<String> {
    let (addr, mask, width) = match (addr, mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => (u128::from(a.to_bits()), u128::from(m.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(m)) => (a.to_bits(), m.to_bits(), 128),
        // A mask of the other family: matched by nothing but the address family.
        _ => return None,
    };
    if mask == 0 {
        return None;
    }
    let value = addr & mask;
    let show = |bits: u128| -> String {
        if width == 32 {
            core::net::Ipv4Addr::from_bits(bits as u32).to_string()
        } else {
            core::net::Ipv6Addr::from_bits(bits).to_string()
        }
    };
    let ones = mask.count_ones();
    let full = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let prefix = full & !full.checked_shr(ones).unwrap_or(0);
    Some(if mask == full {
        show(value)
    } else if mask == prefix {
        format!("{}/{ones}", show(value))
    } else {
        format!("& {} == {}", show(mask), show(value))
    })
}

/// Why steering could not be changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SteeringError {
    /// `nft` could not be run at all.
    #[error("could not run `nft` for table {table}: {source}; install nftables and run as root")]
    Spawn {
        /// The table.
        table: String,
        /// The error starting it.
        #[source]
        source: std::io::Error,
    },
    /// `nft` rejected the ruleset.
    #[error("`nft -f -` failed for table {table}: {stderr}")]
    Rejected {
        /// The table.
        table: String,
        /// What nft said.
        stderr: String,
    },
}

/// Runs `nft -f -` with `text`.
pub fn apply(table: &str, text: &str) -> Result<(), SteeringError> {
    let spawn = |source| SteeringError::Spawn {
        table: table.to_owned(),
        source,
    };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).map_err(spawn)?;
    }
    let output = child.wait_with_output().map_err(spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(SteeringError::Rejected {
            table: table.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Removes `table` (family netdev) if it exists.
pub fn remove(table: &str) -> Result<(), SteeringError> {
    apply(table, &ruleset(table, &[], 0..=0, &[], []).text)
}

/// What the steering thread has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteeringStatus {
    /// Rules installed by the last successful apply.
    pub rules: usize,
    /// Applies that failed (each also logged).
    pub failures: u64,
}

/// Applies rulesets on a thread of its own, so `nft` never runs on the packet path. Only the
/// latest ruleset matters: a burst of changes is applied once.
#[derive(Debug)]
pub struct Steerer {
    table: String,
    last_sent: Ruleset,
    tx: Option<mpsc::Sender<Ruleset>>,
    status: Arc<Mutex<SteeringStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Steerer {
    /// Removes a stale `table` left by a crashed run, then starts the thread.
    pub fn start(table: &str) -> Result<Self, SteeringError> {
        remove(table)?;
        let (tx, rx) = mpsc::channel::<Ruleset>();
        let status = Arc::new(Mutex::new(SteeringStatus::default()));
        let shared = Arc::clone(&status);
        let name = table.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("steer-{table}"))
            .spawn(move || {
                while let Ok(mut next) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        next = newer;
                    }
                    let result = apply(&name, &next.text);
                    let mut status = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(()) => status.rules = next.rules,
                        Err(e) => {
                            status.failures += 1;
                            tracing::warn!(error = %e, "steering update failed; previous rules stay");
                        }
                    }
                }
            })
            .map_err(|source| SteeringError::Spawn {
                table: table.to_owned(),
                source,
            })?;
        Ok(Self {
            table: table.to_owned(),
            last_sent: ruleset(table, &[], 0..=0, &[], []),
            tx: Some(tx),
            status,
            thread: Some(thread),
        })
    }

    /// Asks for `next` to be installed, unless it is what was asked last.
    pub fn update(&mut self, next: Ruleset) {
        if next.text == self.last_sent.text {
            return;
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(next.clone());
        }
        self.last_sent = next;
    }

    /// The table this steerer owns.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Rules installed and failures so far.
    pub fn status(&self) -> SteeringStatus {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the thread after its pending apply and removes the table.
    pub fn stop(mut self) -> Result<(), SteeringError> {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        remove(&self.table)
    }
}

#[cfg(test)]
mod tests;
