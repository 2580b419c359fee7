//! The standard topology of the demo, the integration tests and the benchmarks: one client
//! host, one Tether node, and backends behind it, optionally each behind a router whose link
//! to the backend has a small MTU, and optionally up to three manager hosts beside it.
//!
//! ```text
//!   client (10.9.1.2, fd09:1::2) ── lb ─┬─ b1 (10.9.11.2, fd09:11::2)
//!                                       ├─ b2 (10.9.12.2, fd09:12::2)
//!                                       └─ b3 (10.9.13.2, fd09:13::2)
//!   with a small backend MTU:     lb ── rK (10.9.3K.2) ══ bK
//!   with managers:   lb (10.9.20K.1) ── mK (10.9.20K.2), K = 1..3
//! ```
//! Each manager host has its own link to `lb` and its default route through it; `lb` forwards,
//! so managers reach each other through `lb`'s kernel routing and reach the agent at
//! [`node_mgmt4`]`(1)` (or any of `lb`'s addresses). The manager links are not data
//! interfaces: they are not in [`Topology::node_interfaces`].
//!
//! Addresses repeat between labs; their namespaces keep them apart.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::LabError;
use crate::netns::{Host, Lab, LinkSpec};

/// The virtual IPv4 address the topology's services use.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(10, 9, 100, 10);
/// The virtual IPv6 address the topology's services use.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd09, 0x100, 0, 0, 0, 0, 0, 0x10);
/// The client's IPv4 address.
pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 2);
/// The client's IPv6 address.
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd09, 1, 0, 0, 0, 0, 0, 2);
/// The Tether node's address on the client side.
pub const NODE4: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 1);

/// IPv4 address of backend `k` (1-based).
pub fn backend4(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 10 + k as u8, 2)
}

/// IPv6 address of backend `k` (1-based).
pub fn backend6(k: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd09, 0x10 + k as u16, 0, 0, 0, 0, 0, 2)
}

/// IPv4 address of manager host `k` (1-based): `10.9.20K.2`.
pub fn manager4(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 200 + k as u8, 2)
}

/// IPv4 address of the Tether node on its link to manager host `k` (1-based): `10.9.20K.1`.
pub fn node_mgmt4(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 200 + k as u8, 1)
}

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct TopologySpec {
    /// Number of backends (1 to 9).
    pub backends: usize,
    /// Put each backend behind a router whose link to it has this MTU.
    pub backend_mtu: Option<u32>,
    /// Number of manager hosts `m1`..`mK` beside the Tether node (0 to 3).
    pub managers: usize,
}

/// The hosts of a built topology.
#[derive(Debug)]
pub struct Topology {
    /// The client.
    pub client: Host,
    /// The Tether node (forwarding on, so traffic it does not own is routed by its kernel).
    pub node: Host,
    /// The backends, `b1` first.
    pub backends: Vec<Host>,
    /// The routers in front of the backends, when a small MTU was asked for.
    pub routers: Vec<Host>,
    /// The Tether node's interfaces: the client side first, then one per backend.
    pub node_interfaces: Vec<String>,
    /// The client's interface towards the Tether node.
    pub client_interface: String,
    /// The manager hosts, `m1` first.
    pub managers: Vec<Host>,
    /// Each manager host's interface towards the Tether node, `m1`'s first.
    pub manager_interfaces: Vec<String>,
    /// The Tether node's interfaces towards the manager hosts, `m1`'s first.
    pub node_manager_interfaces: Vec<String>,
}

/// Makes the kernel hand `dev` one segment per packet (`gso_max_segs 1`), so every frame on the
/// wire is at most one MTU, as on a link without segmentation offload: the agent forwards frames
/// as they are and never sees a 64 KB super-frame from a veth. (Receive offload is off on veth.)
pub fn disable_offloads(host: &Host, dev: &str) -> Result<(), LabError> {
    host.ip(&["link", "set", "dev", dev, "gso_max_segs", "1"])
        .map(drop)
}

fn ip(s: &str) -> Result<IpAddr, LabError> {
    s.parse().map_err(|_| LabError::Invalid {
        what: "address",
        value: s.to_owned(),
        reason: "not an IP address",
    })
}

impl Topology {
    /// Builds the topology inside `lab`.
    pub fn build(lab: &Lab, spec: TopologySpec) -> Result<Topology, LabError> {
        if !(1..=9).contains(&spec.backends) {
            return Err(LabError::Invalid {
                what: "backends",
                value: spec.backends.to_string(),
                reason: "the standard topology has 1 to 9 backends",
            });
        }
        if spec.managers > 3 {
            return Err(LabError::Invalid {
                what: "managers",
                value: spec.managers.to_string(),
                reason: "the standard topology has 0 to 3 manager hosts",
            });
        }
        let client = lab.host("client")?;
        let node = lab.host("lb")?;
        node.enable_forwarding()?;
        let up = lab.link(
            &client,
            &node,
            LinkSpec {
                a_addrs: &["10.9.1.2/24", "fd09:1::2/64"],
                b_addrs: &["10.9.1.1/24", "fd09:1::1/64"],
                mtu: None,
            },
        )?;
        client.default_route(ip("10.9.1.1")?)?;
        client.default_route(ip("fd09:1::1")?)?;
        disable_offloads(&client, &up.a_dev)?;
        disable_offloads(&node, &up.b_dev)?;
        let mut topology = Topology {
            client,
            node,
            backends: Vec::new(),
            routers: Vec::new(),
            node_interfaces: vec![up.b_dev],
            client_interface: up.a_dev,
            managers: Vec::new(),
            manager_interfaces: Vec::new(),
            node_manager_interfaces: Vec::new(),
        };
        for k in 1..=spec.backends {
            topology.add_backend(lab, k, spec.backend_mtu)?;
        }
        for k in 1..=spec.managers {
            topology.add_manager(lab, k)?;
        }
        Ok(topology)
    }

    fn add_manager(&mut self, lab: &Lab, k: usize) -> Result<(), LabError> {
        let m = lab.host(&format!("m{k}"))?;
        let link = lab.link(
            &self.node,
            &m,
            LinkSpec {
                a_addrs: &[&format!("{}/24", node_mgmt4(k))],
                b_addrs: &[&format!("{}/24", manager4(k))],
                mtu: None,
            },
        )?;
        m.default_route(IpAddr::V4(node_mgmt4(k)))?;
        self.managers.push(m);
        self.manager_interfaces.push(link.b_dev);
        self.node_manager_interfaces.push(link.a_dev);
        Ok(())
    }

    fn add_backend(&mut self, lab: &Lab, k: usize, mtu: Option<u32>) -> Result<(), LabError> {
        let b = lab.host(&format!("b{k}"))?;
        let gateway4 = format!("10.9.{}.1", 10 + k);
        let gateway6 = format!("fd09:{}::1", 10 + k);
        let addrs_a = [format!("{gateway4}/24"), format!("{gateway6}/64")];
        let addrs_b = [format!("{}/24", backend4(k)), format!("{}/64", backend6(k))];
        let addrs_a: Vec<&str> = addrs_a.iter().map(String::as_str).collect();
        let addrs_b: Vec<&str> = addrs_b.iter().map(String::as_str).collect();
        let backend_side = LinkSpec {
            a_addrs: &addrs_a,
            b_addrs: &addrs_b,
            mtu,
        };
        let node_dev = if mtu.is_some() {
            let r = lab.host(&format!("r{k}"))?;
            r.enable_forwarding()?;
            let r_addr = format!("10.9.{}.2", 30 + k);
            let uplink = lab.link(
                &self.node,
                &r,
                LinkSpec {
                    a_addrs: &[&format!("10.9.{}.1/24", 30 + k)],
                    b_addrs: &[&format!("{r_addr}/24")],
                    mtu: None,
                },
            )?;
            let down = lab.link(&r, &b, backend_side)?;
            r.default_route(ip(&format!("10.9.{}.1", 30 + k))?)?;
            self.node
                .route(&format!("10.9.{}.0/24", 10 + k), Some(ip(&r_addr)?), None)?;
            disable_offloads(&r, &uplink.b_dev)?;
            disable_offloads(&r, &down.a_dev)?;
            disable_offloads(&b, &down.b_dev)?;
            // A full-size MSS all the same, so clients send segments the small link cannot
            // carry and path MTU discovery has to work across the Tether node.
            b.ip(&[
                "route", "replace", "default", "via", &gateway4, "advmss", "1460",
            ])?;
            self.routers.push(r);
            uplink.a_dev
        } else {
            let link = lab.link(&self.node, &b, backend_side)?;
            b.default_route(ip(&gateway4)?)?;
            b.default_route(ip(&gateway6)?)?;
            disable_offloads(&b, &link.b_dev)?;
            link.a_dev
        };
        disable_offloads(&self.node, &node_dev)?;
        self.node_interfaces.push(node_dev);
        self.backends.push(b);
        Ok(())
    }
}
