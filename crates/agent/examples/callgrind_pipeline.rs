//! Runs one case of the agent's benchmarks `N` times inside [`measured`], for instruction
//! counts under callgrind (`scripts/callgrind` runs it with `--toggle-collect=*measured*` for
//! two values of `N` and divides the difference by the difference of `N`, so set-up and the
//! loop's fixed cost drop out).
//!
//! ```text
//! callgrind_pipeline CASE N
//! callgrind_pipeline --list
//! ```
//!
//! Cases: the eight `established_flow_nat` cases (`tcp_v4_forward`, ..., `udp_v6_return`),
//! `header_restore_only`, `new_flow_punt` and `new_flow_round_trip`, as in
//! `benches/pipeline.rs`.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark driver: a failure is a broken benchmark"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::process::ExitCode;

use tether_agent::Verdict;
use tether_proto::Timestamp;

use common::new_flow::NewFlows;

/// Runs `step` `n` times; the only function callgrind counts.
#[inline(never)]
fn measured<F: FnMut()>(n: u64, mut step: F) {
    for _ in 0..n {
        step();
    }
}

const OTHER_CASES: [&str; 3] = [
    "header_restore_only",
    "new_flow_punt",
    "new_flow_round_trip",
];

fn run(case: &str, n: u64) -> Result<(), String> {
    let now = Timestamp::ZERO;
    match case {
        "new_flow_punt" => {
            let mut pair = NewFlows::new();
            let template = pair.syn().to_vec();
            let mut frame = template.clone();
            let agent = &mut pair.agent;
            assert_eq!(agent.handle_frame(now, &mut frame), Verdict::ToManager);
            black_box(agent.poll_transmit());
            measured(n, || {
                frame.copy_from_slice(&template);
                black_box(agent.handle_frame(now, black_box(&mut frame)));
                black_box(agent.poll_transmit());
            });
        }
        "new_flow_round_trip" => {
            let mut pair = NewFlows::new();
            assert!(pair.round_trip().is_some(), "the first flow was not placed");
            measured(n, || {
                black_box(pair.round_trip());
            });
            let placed = pair.agent.fixed_affinities().count() as u64;
            // Each flow gets two: client to backend and the return direction.
            assert_eq!(
                placed,
                2 * (n + 1),
                "every new flow gets its fixed affinities"
            );
        }
        _ => {
            let (mut agent, mut cases) = common::established::setup();
            let restore_only = case == "header_restore_only";
            let name = if restore_only { "tcp_v4_forward" } else { case };
            let Some(c) = cases.iter_mut().find(|c| c.name == name) else {
                return Err(format!("unknown case {case:?}; --list names the cases"));
            };
            let forwarded = agent.stats().forwarded;
            if restore_only {
                measured(n, || {
                    c.restore();
                    black_box(&mut c.frame);
                });
            } else {
                measured(n, || {
                    c.restore();
                    black_box(agent.handle_frame(now, black_box(&mut c.frame)));
                });
                assert_eq!(
                    agent.stats().forwarded - forwarded,
                    n,
                    "every packet forwarded"
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        let (_, cases) = common::established::setup();
        for c in &cases {
            println!("{}", c.name);
        }
        for c in OTHER_CASES {
            println!("{c}");
        }
        return ExitCode::SUCCESS;
    }
    let (Some(case), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: callgrind_pipeline CASE N | callgrind_pipeline --list");
        return ExitCode::from(2);
    };
    match run(case, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callgrind_pipeline: {e}");
            ExitCode::from(2)
        }
    }
}
