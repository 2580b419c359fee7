//! Namespaces for the packet-path tests: a guard that deletes what it created, even when the
//! test fails, and a way to run code inside a namespace.
//!
//! Names carry the test's tag and the process id, so tests run in parallel and a crashed run
//! never collides with the next one.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the helpers"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use tether_runtime::sys;

/// Network namespaces created for one test, deleted on drop.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// A lab whose names start with `tag` (two letters) and end with the process id.
    pub fn new(tag: &str) -> Self {
        Self {
            tag: format!("{tag}{}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// A name unique to this lab (for namespaces and interfaces: at most 15 bytes).
    pub fn name(&self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.tag);
        assert!(name.len() <= 15, "interface name {name} too long");
        name
    }

    /// Creates namespace `suffix` with `lo` up and returns its name.
    pub fn netns(&mut self, suffix: &str) -> String {
        let name = self.name(suffix);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        name
    }
}

/// Connects `a` and `b` with a veth pair `a_if`/`b_if`, addresses them and brings them up.
pub fn veth(a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
    run(
        "ip",
        &[
            "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ],
    );
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        run("ip", &["-n", ns, "addr", "add", addr, "dev", ifname]);
        run("ip", &["-n", ns, "link", "set", ifname, "up"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The NAT topology: client `c` (10.74.1.2) — host `h` (10.74.1.1 | 10.74.2.1) — backend `b`
/// (10.74.2.2), with default routes through the host. Returns the three namespaces and the
/// host's two interfaces (client side first).
pub fn nat_topology(lab: &mut Lab) -> (String, String, String, Vec<String>) {
    let client = lab.netns("c");
    let host = lab.netns("h");
    let backend = lab.netns("b");
    let (c_if, hc_if, hb_if, b_if) = (lab.name("c"), lab.name("hc"), lab.name("hb"), lab.name("b"));
    veth(
        &client,
        &c_if,
        "10.74.1.2/24",
        &host,
        &hc_if,
        "10.74.1.1/24",
    );
    veth(
        &host,
        &hb_if,
        "10.74.2.1/24",
        &backend,
        &b_if,
        "10.74.2.2/24",
    );
    run(
        "ip",
        &["-n", &client, "route", "add", "default", "via", "10.74.1.1"],
    );
    run(
        "ip",
        &[
            "-n",
            &backend,
            "route",
            "add",
            "default",
            "via",
            "10.74.2.1",
        ],
    );
    (client, host, backend, vec![hc_if, hb_if])
}

/// Runs a command and panics with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("run a command");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `args` inside namespace `ns` and returns standard output.
pub fn ns_exec(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&run("ip", &all).stdout).into_owned()
}

/// Runs `f` on a thread that first enters namespace `ns`, and returns its result.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from(format!("/run/netns/{ns}"));
    std::thread::spawn(move || {
        sys::enter_netns(&path).expect("enter the test namespace");
        f()
    })
    .join()
    .expect("the namespace thread panicked")
}

/// Starts `f` on a thread inside namespace `ns` and returns its handle.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = PathBuf::from(format!("/run/netns/{ns}"));
    std::thread::spawn(move || {
        sys::enter_netns(&path).expect("enter the test namespace");
        f()
    })
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Builders for the service messages a test plays manager with.
pub mod manager {
    use std::net::{IpAddr, SocketAddr, UdpSocket};

    use tether_proto::codec::encode;
    use tether_proto::{
        Actions, Envelope, FixedAffinity, FixedUpdate, Message, NatAction, UNSPECIFIED_V4,
        WildcardAffinity, WildcardUpdate,
    };
    use tether_wire::AffinityKey;

    /// A wildcard for `protocol` from `src`/`src_bits`:`src_port` to `dst`/`dst_bits`:`dst_port`
    /// that drops what it matches (no interest criteria, forward address unspecified).
    pub fn wildcard(
        protocol: u8,
        (src, src_bits, src_port): (&str, u8, u16),
        (dst, dst_bits, dst_port): (&str, u8, u16),
    ) -> Message {
        let mask = |bits: u8| {
            IpAddr::from(
                u32::MAX
                    .checked_shl(32 - u32::from(bits))
                    .unwrap_or(0)
                    .to_be_bytes(),
            )
        };
        Message::WildcardUpdate(WildcardUpdate {
            affinity: WildcardAffinity {
                protocol,
                src: src.parse().expect("a test address"),
                src_mask: mask(src_bits),
                src_port,
                dst: dst.parse().expect("a test address"),
                dst_mask: mask(dst_bits),
                dst_port,
                dispatch: false,
                information: false,
                forward: UNSPECIFIED_V4,
                ttl: 60,
            },
            actions: Actions::default(),
            action_list: Vec::new(),
            service_precedence: None,
            backup_precedence: None,
            envelope: Envelope::default(),
        })
    }

    /// A fixed affinity for UDP `src` → `dst` that NATs to `nat_src`/`nat_dst` (unspecified
    /// or port 0 keep a field) and forwards towards `forward`.
    pub fn fixed_udp(src: &str, dst: &str, nat_src: &str, nat_dst: &str, forward: &str) -> Message {
        let (src, dst): (SocketAddr, SocketAddr) = (
            src.parse().expect("a test address"),
            dst.parse().expect("a test address"),
        );
        let (nat_src, nat_dst): (SocketAddr, SocketAddr) = (
            nat_src.parse().expect("a test address"),
            nat_dst.parse().expect("a test address"),
        );
        Message::FixedUpdate(FixedUpdate {
            affinity: FixedAffinity {
                key: AffinityKey {
                    protocol: 17,
                    src: src.ip(),
                    src_port: src.port(),
                    dst: dst.ip(),
                    dst_port: dst.port(),
                },
                dispatch: false,
                information: false,
                forward: forward.parse().expect("a test address"),
                ttl: 60,
            },
            actions: Actions {
                nat: Some(NatAction {
                    src: nat_src.ip(),
                    src_port: nat_src.port(),
                    dst: nat_dst.ip(),
                    dst_port: nat_dst.port(),
                }),
                ..Actions::default()
            },
            service_precedence: None,
            backup_precedence: None,
            envelope: Envelope::default(),
            packet: None,
        })
    }

    /// Sends `messages`, unsigned, from `socket` to the worker at `to`.
    pub fn send(socket: &UdpSocket, to: &str, messages: &[Message]) {
        for m in messages {
            socket
                .send_to(&encode(m), to)
                .expect("send a service message");
        }
    }
}

/// Polls `check` every 50 ms for up to `secs` seconds.
pub fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}
