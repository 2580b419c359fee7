//! Maglev table build and lookup times: 100 backends over the default 65537 slots.
#![expect(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tether_manager::DEFAULT_TABLE_SIZE;
use tether_manager::scheduler::{BackendSpec, Maglev, flow_hash};
use tether_wire::AffinityKey;

fn backends(names: &[String]) -> Vec<BackendSpec<'_>> {
    names
        .iter()
        .map(|name| BackendSpec { name, weight: 1 })
        .collect()
}

fn build(c: &mut Criterion) {
    let names: Vec<String> = (0..100).map(|i| format!("backend-{i}")).collect();
    let specs = backends(&names);
    c.bench_function("maglev_build_100_backends_65537", |b| {
        b.iter(|| Maglev::new(black_box(DEFAULT_TABLE_SIZE), black_box(&specs)));
    });
    let mut table = Maglev::new(DEFAULT_TABLE_SIZE, &specs);
    let mut eligible = vec![true; 100];
    c.bench_function("maglev_refill_one_of_100_down", |b| {
        b.iter(|| {
            eligible[42] = !eligible[42];
            table.set_eligible(black_box(&eligible));
        });
    });
}

fn lookup(c: &mut Criterion) {
    let names: Vec<String> = (0..100).map(|i| format!("backend-{i}")).collect();
    let table = Maglev::new(DEFAULT_TABLE_SIZE, &backends(&names));
    let mut key = AffinityKey {
        protocol: 6,
        src: [192, 0, 2, 1].into(),
        src_port: 0,
        dst: [198, 51, 100, 1].into(),
        dst_port: 443,
    };
    c.bench_function("maglev_lookup_hash_and_slot", |b| {
        b.iter(|| {
            key.src_port = key.src_port.wrapping_add(1);
            table.lookup(flow_hash(black_box(&key)))
        });
    });
}

criterion_group!(benches, build, lookup);
criterion_main!(benches);
