//! The established-flow fast path allocates nothing and takes no lock.
//!
//! A packet of a flow with a fixed affinity is parsed, matched, NATed (addresses, ports,
//! incremental checksums, TTL) and forwarded by [`tether_agent::Agent::handle_frame`]. This
//! test runs such packets (TCP and UDP, IPv4 and IPv6, client to backend and back) through an
//! agent under a counting global allocator, armed only on this thread and only around the
//! measured loop, and requires zero allocations.
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

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use tether_agent::Verdict;
use tether_proto::Timestamp;

thread_local! {
    /// Whether this thread's allocations are being counted.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Allocations (alloc, alloc_zeroed, realloc) made by this thread while armed.
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations of threads that armed it.
struct Counting;

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left; it is not measured.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// The one unsafe item of the agent crate's tests: `GlobalAlloc` is an unsafe trait. Every
// method forwards to `System` with the caller's arguments, so `System`'s contract is the
// caller's.
#[expect(
    unsafe_code,
    reason = "a global allocator must implement the unsafe GlobalAlloc"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, which is `System`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`; forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations this thread makes while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    COUNT.with(|n| n.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}

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
