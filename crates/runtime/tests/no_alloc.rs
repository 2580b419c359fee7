//! The established-flow fast path allocates nothing and takes no lock.
//!
//! A packet of a flow with a fixed affinity is parsed, matched, NATed (addresses, ports,
//! incremental checksums, TTL) and forwarded by [`tether_agent::Agent::handle_frame`]. This
//! test runs such packets (TCP and UDP, IPv4 and IPv6, client to backend and back) through an
//! agent under a counting global allocator, armed only on this thread and only around the
//! measured loop, and requires zero allocations. (It lives in the runtime crate because the
//! allocator implements the unsafe `GlobalAlloc`, and unsafe code lives in `tether_runtime::sys`.)
//!
//! No lock: an agent is a plain single-threaded state machine. `handle_frame` takes
//! `&mut self`, so the borrow checker already guarantees exclusive access, and the runtime
//! gives each worker thread its own agent (`crates/runtime/src/agent_worker`); nothing is
//! shared between workers on the packet path. [`no_lock_or_atomic_in_the_agent_or_wire_code`]
//! keeps it that way: the agent and wire crates name no `Mutex`, `RwLock`, atomic or other
//! synchronisation type at all.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "../../agent/tests/common/mod.rs"]
mod common;

use std::path::Path;

use tether_agent::Verdict;
use tether_proto::Timestamp;
use tether_runtime::sys::{CountingAllocator, allocations_in};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Packets run per case in the measured loop.
const PACKETS: usize = 10_000;

#[test]
fn the_counter_sees_an_allocation() {
    // Without this, a counter that never counts would pass the test below.
    let n = allocations_in(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert_eq!(n, 1);
}

#[test]
fn established_flows_are_forwarded_without_allocating() {
    let (mut agent, mut cases) = common::established::setup();
    let now = Timestamp::ZERO;
    // Warm up: every map and buffer on the path has seen each flow.
    for case in &mut cases {
        for _ in 0..100 {
            case.run(&mut agent, now);
        }
    }
    let forwarded_before = agent.stats().forwarded;
    let mut report = Vec::new();
    for case in &mut cases {
        let mut wrong = 0usize;
        let n = allocations_in(|| {
            for _ in 0..PACKETS {
                let verdict = case.run(&mut agent, now);
                if !matches!(verdict, Verdict::Forward(r) if r.next_hop == case.next_hop) {
                    wrong += 1;
                }
            }
        });
        assert_eq!(
            wrong, 0,
            "{}: packets not forwarded to the backend",
            case.name
        );
        println!("{:<16} {PACKETS} packets, {n} allocations", case.name);
        report.push((case.name.clone(), n));
    }
    assert_eq!(
        agent.stats().forwarded - forwarded_before,
        (PACKETS * cases.len()) as u64
    );
    let allocating: Vec<_> = report.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        allocating.is_empty(),
        "the established-flow path allocates: {allocating:?}"
    );
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_lock_or_atomic_in_the_agent_or_wire_code() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    sources(&crates.join("agent/src"), &mut files);
    sources(&crates.join("wire/src"), &mut files);
    assert!(files.len() > 10, "source files not found: {files:?}");
    let banned = [
        "Mutex", "RwLock", "Condvar", "Atomic", "Barrier", "OnceLock", "LazyLock", "RefCell",
        "Rc<", "Arc<",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, line) in text.lines().enumerate() {
            for word in banned {
                if line.contains(word) {
                    found.push(format!("{}:{}: {word}", file.display(), i + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "synchronisation on the packet path: {found:#?}"
    );
}
