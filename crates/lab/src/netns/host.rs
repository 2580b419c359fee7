//! One host of a lab: a network namespace and the commands that configure and use it.
#![expect(
    clippy::disallowed_types,
    reason = "the lab waits on real programs, so it needs the wall clock"
)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::LabError;
use crate::command::{checked, describe, output};
use crate::netns::Process;

/// Longest interface name Linux accepts (IFNAMSIZ less the terminating NUL).
const MAX_DEV: usize = 15;

/// A network namespace of a [`Lab`](crate::netns::Lab); cheap to clone, owned by the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    name: String,
}

/// A transport protocol, for waiting on sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A listening TCP socket.
    Tcp,
    /// A bound UDP socket.
    Udp,
}

impl Host {
    pub(crate) fn new(name: String) -> Host {
        Host { name }
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's file, for tools that enter namespaces by path.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `ip -n NS ARGS…` and fails with its stderr if it fails.
    pub fn ip(&self, args: &[&str]) -> Result<Output, LabError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        checked("ip", &full)
    }

    /// Runs a program inside the namespace and fails with its stderr if it exits unsuccessfully.
    pub fn exec(&self, args: &[&str]) -> Result<Output, LabError> {
        checked("ip", &self.exec_args(args))
    }

    /// Runs a program inside the namespace and returns its output whatever its exit status.
    pub fn output(&self, args: &[&str]) -> Result<Output, LabError> {
        output("ip", &self.exec_args(args))
    }

    /// Starts a program inside the namespace; it is stopped when the [`Process`] drops.
    pub fn spawn(&self, args: &[&str]) -> Result<Process, LabError> {
        let full = self.exec_args(args);
        let command = describe("ip", &full);
        let child = Command::new("ip")
            .args(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn {
                command: command.clone(),
                source,
            })?;
        Ok(Process::new(child, command))
    }

    /// Sets one sysctl inside the namespace, e.g. `("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), LabError> {
        self.sysctls(&[(key, value)])
    }

    /// Sets several sysctls inside the namespace with one command.
    pub fn sysctls(&self, settings: &[(&str, &str)]) -> Result<(), LabError> {
        let assignments: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["sysctl", "-q", "-w"];
        args.extend(assignments.iter().map(String::as_str));
        self.exec(&args).map(drop)
    }

    /// Turns IPv4 and IPv6 forwarding on, making the host a router.
    pub fn enable_forwarding(&self) -> Result<(), LabError> {
        self.sysctls(&[
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
        ])
    }

    /// Adds an address (`10.0.0.1/24`, `fd00::1/64`) to `dev`; IPv6 skips duplicate detection.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<(), LabError> {
        check_dev(dev)?;
        let (addr, _) = parse_cidr(cidr)?;
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if addr.is_ipv6() {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Sets a route to `dest` (a prefix or `default`) through `via` and/or out of `dev`.
    pub fn route(
        &self,
        dest: &str,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<(), LabError> {
        let is_v6 = match (dest, via) {
            ("default", Some(via)) => via.is_ipv6(),
            ("default", None) => {
                return Err(LabError::Invalid {
                    what: "route",
                    value: dest.to_owned(),
                    reason: "a default route needs a gateway (`via`)",
                });
            }
            _ => parse_cidr(dest)?.0.is_ipv6(),
        };
        let via = via.map(|v| v.to_string());
        let mut args = vec![if is_v6 { "-6" } else { "-4" }, "route", "replace", dest];
        if let Some(via) = &via {
            args.extend(["via", via.as_str()]);
        }
        if let Some(dev) = dev {
            check_dev(dev)?;
            args.extend(["dev", dev]);
        }
        self.ip(&args).map(drop)
    }

    /// Sets the default route of `via`'s family (IPv4 or IPv6).
    pub fn default_route(&self, via: IpAddr) -> Result<(), LabError> {
        self.route("default", Some(via), None)
    }

    /// Puts a virtual IP on `lo` for direct server return, and stops the host answering ARP
    /// for it on other interfaces (`arp_ignore=1`, `arp_announce=2`).
    pub fn add_vip_on_lo(&self, vip: IpAddr) -> Result<(), LabError> {
        let cidr = match vip {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => format!("{v6}/128"),
        };
        self.sysctls(&[
            ("net.ipv4.conf.all.arp_ignore", "1"),
            ("net.ipv4.conf.default.arp_ignore", "1"),
            ("net.ipv4.conf.all.arp_announce", "2"),
            ("net.ipv4.conf.default.arp_announce", "2"),
        ])?;
        self.add_addr("lo", &cidr)
    }

    /// Sets the MTU of `dev`.
    pub fn set_mtu(&self, dev: &str, mtu: u32) -> Result<(), LabError> {
        check_dev(dev)?;
        self.ip(&["link", "set", "dev", dev, "mtu", &mtu.to_string()])
            .map(drop)
    }

    /// Brings `dev` up.
    pub fn link_up(&self, dev: &str) -> Result<(), LabError> {
        check_dev(dev)?;
        self.ip(&["link", "set", "dev", dev, "up"]).map(drop)
    }

    /// Brings `dev` down, e.g. to cut a path in a failure test.
    pub fn link_down(&self, dev: &str) -> Result<(), LabError> {
        check_dev(dev)?;
        self.ip(&["link", "set", "dev", dev, "down"]).map(drop)
    }

    /// Waits until some socket in the namespace listens on (TCP) or is bound to (UDP) `port`.
    pub fn wait_listening(
        &self,
        transport: Transport,
        port: u16,
        timeout: Duration,
    ) -> Result<(), LabError> {
        let flags = match transport {
            Transport::Tcp => "-Hltn",
            Transport::Udp => "-Hlun",
        };
        let filter = format!(":{port}");
        let start = Instant::now();
        loop {
            let out = self.exec(&["ss", flags, "sport", "=", &filter])?;
            if !out.stdout.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(LabError::Timeout {
                    what: format!("{transport:?} port {port} in {}", self.name),
                    waited: timeout,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn exec_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        full
    }
}

/// Rejects interface names Linux would refuse, before a command fails less clearly.
pub(crate) fn check_dev(dev: &str) -> Result<(), LabError> {
    if dev.is_empty()
        || dev.len() > MAX_DEV
        || dev
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(LabError::Invalid {
            what: "interface name",
            value: dev.to_owned(),
            reason: "use 1 to 15 bytes without `/`, `:` or spaces",
        });
    }
    Ok(())
}

/// Parses `ADDR/PREFIX`, checking the prefix length against the address family.
fn parse_cidr(cidr: &str) -> Result<(IpAddr, u8), LabError> {
    let invalid = |reason| LabError::Invalid {
        what: "address prefix",
        value: cidr.to_owned(),
        reason,
    };
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| invalid("write ADDR/LEN, e.g. 10.0.0.1/24 or fd00::1/64"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| invalid("the address is not IPv4 or IPv6"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| invalid("the prefix length is not a number"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(invalid("the prefix length is too long for the family"));
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_against_their_family() {
        assert!(parse_cidr("10.0.0.1/24").is_ok());
        assert!(parse_cidr("fd00::1/128").is_ok());
        assert!(parse_cidr("10.0.0.1/33").is_err());
        assert!(parse_cidr("10.0.0.1").is_err());
        assert!(parse_cidr("host/24").is_err());
    }

    #[test]
    fn interface_names_longer_than_the_kernel_allows_are_refused() {
        assert!(check_dev("v00ffa").is_ok());
        assert!(check_dev("a-name-too-long-x").is_err());
        assert!(check_dev("").is_err());
    }
}
