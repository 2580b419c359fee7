//! Network-namespace topologies that clean up after themselves.
//!
//! A [`Lab`] owns namespaces ([`Host`]s) joined by veth pairs and bridges. Nothing is created in
//! the caller's namespace, so lab traffic never leaves the lab. Dropping the `Lab` kills every
//! process left in its namespaces and deletes them, the veths going with them, also while a
//! panicking test unwinds.
//!
//! Names are `t{tag}-{pid}-{n}-{host}`: unique per process and per `Lab`, so tests run in
//! parallel, and parseable, so [`Lab::cleanup_stale`] can find namespaces of crashed runs.
//! Addresses belong to their namespaces, so parallel labs may reuse the same ranges.

mod host;
mod process;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

pub use host::{Host, Transport};
pub use process::Process;

use crate::LabError;
use crate::command::{checked, output, signal};

/// Numbers the labs of this process so each gets its own namespace names.
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Interface index of the first veth end; lower indexes are left to the kernel.
const FIRST_VETH_INDEX: u32 = 1000;

/// Longest tag kept in namespace names; longer tags are cut.
const MAX_TAG: usize = 16;

/// A set of namespaces and links, all removed when it is dropped.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Mutex<Vec<String>>,
    next_link: AtomicU32,
}

/// Addresses and MTU of a new veth pair.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkSpec<'a> {
    /// Addresses (`10.0.0.1/24`, `fd00::1/64`) for the first host's end.
    pub a_addrs: &'a [&'a str],
    /// Addresses for the second host's end.
    pub b_addrs: &'a [&'a str],
    /// MTU of both ends; the kernel default (1500) when `None`.
    pub mtu: Option<u32>,
}

/// The interface names of a veth pair, one in each host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The end in the first host.
    pub a_dev: String,
    /// The end in the second host.
    pub b_dev: String,
}

/// A bridge inside one host: a shared segment for several hosts.
#[derive(Clone, Debug)]
pub struct Bridge {
    host: Host,
    name: String,
}

impl Lab {
    /// Starts an empty lab whose names carry `tag` (letters and digits kept, cut to 16).
    pub fn new(tag: &str) -> Result<Lab, LabError> {
        let tag = sanitize_tag(tag);
        if tag.is_empty() {
            return Err(LabError::Invalid {
                what: "lab tag",
                value: tag,
                reason: "needs at least one ASCII letter or digit",
            });
        }
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        Ok(Lab {
            prefix: format!("t{tag}-{}-{n}", std::process::id()),
            namespaces: Mutex::new(Vec::new()),
            next_link: AtomicU32::new(0),
        })
    }

    /// The prefix shared by every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The names of the namespaces made so far.
    pub fn namespaces(&self) -> Vec<String> {
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Creates a host: a namespace with `lo` up, IPv6 on, DAD and `rp_filter` off.
    pub fn host(&self, name: &str) -> Result<Host, LabError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(LabError::Invalid {
                what: "host name",
                value: name.to_owned(),
                reason: "use ASCII letters, digits and `_`",
            });
        }
        let ns = format!("{}-{name}", self.prefix);
        checked("ip", &["netns", "add", &ns])?;
        // Recorded before configuring, so a failure below still gets the namespace deleted.
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ns.clone());
        let host = Host::new(ns);
        host.ip(&["link", "set", "lo", "up"])?;
        // Defaults apply to interfaces made later, so they are set before any link exists.
        host.sysctls(&[
            ("net.ipv6.conf.all.disable_ipv6", "0"),
            ("net.ipv6.conf.default.disable_ipv6", "0"),
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ])?;
        Ok(host)
    }

    /// Joins two hosts with a veth pair, addresses both ends and brings them up.
    pub fn link(&self, a: &Host, b: &Host, spec: LinkSpec<'_>) -> Result<Link, LabError> {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        if id > 0xffff {
            return Err(LabError::Invalid {
                what: "link count",
                value: id.to_string(),
                reason: "a lab holds at most 65536 veth pairs",
            });
        }
        let link = Link {
            a_dev: format!("v{id:04x}a"),
            b_dev: format!("v{id:04x}b"),
        };
        // Explicit, distinct ifindexes: in fresh namespaces both ends would get the same one,
        // and the kernel then defers the carrier-on of the end that came up first by up to a
        // second, dropping its first packets. Auto-allocated indexes skip these.
        let a_index = (FIRST_VETH_INDEX + 2 * id).to_string();
        let b_index = (FIRST_VETH_INDEX + 2 * id + 1).to_string();
        // Made inside `a` with its peer placed straight into `b`: nothing touches our namespace.
        a.ip(&[
            "link",
            "add",
            &link.a_dev,
            "index",
            &a_index,
            "type",
            "veth",
            "peer",
            "name",
            &link.b_dev,
            "netns",
            b.name(),
            "index",
            &b_index,
        ])?;
        for (host, dev, addrs) in [
            (a, &link.a_dev, spec.a_addrs),
            (b, &link.b_dev, spec.b_addrs),
        ] {
            if let Some(mtu) = spec.mtu {
                host.set_mtu(dev, mtu)?;
            }
            for cidr in addrs {
                host.add_addr(dev, cidr)?;
            }
            host.link_up(dev)?;
        }
        Ok(link)
    }

    /// Creates a bridge named `name` inside `host`; it comes up with its first port.
    pub fn bridge(&self, host: &Host, name: &str) -> Result<Bridge, LabError> {
        host::check_dev(name)?;
        // Snooping off: with no querier in the lab it would only get in the way of NDP.
        host.ip(&["link", "add", name, "type", "bridge", "mcast_snooping", "0"])?;
        Ok(Bridge {
            host: host.clone(),
            name: name.to_owned(),
        })
    }

    /// Links `host` to `bridge` with a veth pair; returns the device on `host`'s side.
    pub fn join(&self, bridge: &Bridge, host: &Host, addrs: &[&str]) -> Result<String, LabError> {
        let link = self.link(
            &bridge.host,
            host,
            LinkSpec {
                a_addrs: &[],
                b_addrs: addrs,
                mtu: None,
            },
        )?;
        bridge.attach(&link.a_dev)?;
        Ok(link.b_dev)
    }

    /// Removes namespaces named `t{tag}-{pid}-…` whose tag starts with `tag_prefix` and whose
    /// process is gone; returns their names. An empty prefix matches every lab's namespaces.
    pub fn cleanup_stale(tag_prefix: &str) -> Result<Vec<String>, LabError> {
        let tag_prefix = sanitize_tag(tag_prefix);
        let list = checked("ip", &["netns", "list"])?;
        let mut removed = Vec::new();
        for line in String::from_utf8_lossy(&list.stdout).lines() {
            let Some(ns) = line.split_whitespace().next() else {
                continue;
            };
            let Some((tag, pid)) = parse_name(ns) else {
                continue;
            };
            if tag.starts_with(&tag_prefix) && !Path::new(&format!("/proc/{pid}")).exists() {
                kill_all(ns);
                checked("ip", &["netns", "del", ns])?;
                removed.push(ns.to_owned());
            }
        }
        Ok(removed)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let namespaces = std::mem::take(
            self.namespaces
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for ns in &namespaces {
            kill_all(ns);
        }
        for ns in &namespaces {
            if let Err(e) = checked("ip", &["netns", "del", ns]) {
                eprintln!("tether-lab: leaving namespace {ns} behind: {e}");
            }
        }
    }
}

impl Bridge {
    /// The bridge's interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host the bridge lives in.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Enslaves `dev`, an interface of the bridge's host, to the bridge, and brings it up.
    pub fn attach(&self, dev: &str) -> Result<(), LabError> {
        self.host
            .ip(&["link", "set", "dev", dev, "master", &self.name])?;
        // A bridge brought up with a port already has carrier when it opens; one that gains
        // carrier later has it applied up to a second late, dropping its first packets.
        self.host.link_up(&self.name)
    }
}

/// Keeps the ASCII letters and digits of a tag, lower-cased and cut to [`MAX_TAG`].
fn sanitize_tag(tag: &str) -> String {
    tag.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(MAX_TAG)
        .collect()
}

/// Splits a lab namespace name `t{tag}-{pid}-{n}-{host}` into its tag and pid.
fn parse_name(ns: &str) -> Option<(&str, u32)> {
    let mut parts = ns.strip_prefix('t')?.splitn(4, '-');
    let tag = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?;
    Some((tag, pid))
}

/// Kills every process in namespace `ns` and waits briefly for them to go.
fn kill_all(ns: &str) {
    for _ in 0..40 {
        let pids: Vec<u32> = match output("ip", &["netns", "pids", ns]) {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
            Err(_) => return,
        };
        if pids.is_empty() {
            return;
        }
        // A process may exit between listing and signalling; the next round sees the rest.
        let _ = signal("KILL", &pids);
        thread::sleep(Duration::from_millis(25));
    }
    eprintln!("tether-lab: processes in namespace {ns} survived SIGKILL");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_tag_and_pid() {
        assert_eq!(parse_name("tstream-4242-3-client"), Some(("stream", 4242)));
        assert_eq!(parse_name("tstream-4242-client"), None);
        assert_eq!(parse_name("other-ns"), None);
    }

    #[test]
    fn tags_keep_only_letters_and_digits() {
        assert_eq!(sanitize_tag("My-Test_1"), "mytest1");
        assert_eq!(sanitize_tag("a_very_long_tag_name_indeed").len(), MAX_TAG);
    }
}
