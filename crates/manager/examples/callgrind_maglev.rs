//! Runs `N` Maglev lookups (flow hash and table slot, 100 backends over 65537 slots, as in
//! `benches/maglev.rs`) inside [`measured`], for instruction counts under callgrind
//! (`scripts/callgrind`).
//!
//! ```text
//! callgrind_maglev maglev_lookup N
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use tether_manager::DEFAULT_TABLE_SIZE;
use tether_manager::scheduler::{BackendSpec, Maglev, flow_hash};
use tether_wire::AffinityKey;

/// Runs `step` `n` times; the only function callgrind counts.
#[inline(never)]
fn measured<F: FnMut()>(n: u64, mut step: F) {
    for _ in 0..n {
        step();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        println!("maglev_lookup");
        return ExitCode::SUCCESS;
    }
    let (Some("maglev_lookup"), Some(n)) = (
        args.first().map(String::as_str),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: callgrind_maglev maglev_lookup N | callgrind_maglev --list");
        return ExitCode::from(2);
    };
    let names: Vec<String> = (0..100).map(|i| format!("backend-{i}")).collect();
    let specs: Vec<BackendSpec<'_>> = names
        .iter()
        .map(|name| BackendSpec { name, weight: 1 })
        .collect();
    let table = Maglev::new(DEFAULT_TABLE_SIZE, &specs);
    let mut key = AffinityKey {
        protocol: 6,
        src: [192, 0, 2, 1].into(),
        src_port: 0,
        dst: [198, 51, 100, 1].into(),
        dst_port: 443,
    };
    measured(n, || {
        key.src_port = key.src_port.wrapping_add(1);
        black_box(table.lookup(flow_hash(black_box(&key))));
    });
    ExitCode::SUCCESS
}
