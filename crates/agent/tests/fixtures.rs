//! Runs every packet fixture in `tests/fixtures/`: installs its affinities through real
//! encoded messages, feeds its frames, and checks the verdict, the frame byte for byte, and
//! the counters.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::fmt::Write as _;
use std::path::Path;

use tether_agent::{Agent, AgentStats, Verdict};
use tether_proto::Timestamp;

/// A fixture file, parsed.
#[derive(Debug, Default)]
struct Fixture {
    setup: Vec<String>,
    before: Vec<Vec<u8>>,
    verdict: String,
    counters: Vec<(String, u64)>,
    input: Vec<u8>,
    output: Option<Vec<u8>>,
}

fn parse(text: &str) -> Fixture {
    let mut f = Fixture::default();
    let mut block: Option<(&str, String)> = None;
    let finish = |f: &mut Fixture, block: Option<(&str, String)>| {
        if let Some((name, hex)) = block {
            let bytes = common::from_hex(&hex);
            match name {
                "before" => f.before.push(bytes),
                "in" => f.input = bytes,
                "out" => f.output = Some(bytes),
                _ => unreachable!(),
            }
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("setup:") {
            finish(&mut f, block.take());
            f.setup.push(rest.trim().to_string());
        } else if let Some(rest) = trimmed.strip_prefix("verdict:") {
            finish(&mut f, block.take());
            f.verdict = rest.trim().to_string();
        } else if let Some(rest) = trimmed.strip_prefix("counter:") {
            finish(&mut f, block.take());
            let (name, value) = rest.trim().rsplit_once(' ').expect("counter NAME VALUE");
            f.counters
                .push((name.to_string(), value.parse().expect("counter value")));
        } else if let Some(name) = ["before:", "in:", "out:"].iter().find(|n| trimmed == **n) {
            finish(&mut f, block.take());
            block = Some((name.trim_end_matches(':'), String::new()));
        } else if let Some((_, hex)) = block.as_mut() {
            hex.push_str(line);
            hex.push('\n');
        } else {
            assert!(
                trimmed.is_empty() || trimmed.starts_with('#'),
                "stray line {line:?}"
            );
        }
    }
    finish(&mut f, block.take());
    f
}

fn render(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Forward(route) if route.dispatched => {
            format!("forward {} dispatched", route.next_hop)
        }
        Verdict::Forward(route) => format!("forward {}", route.next_hop),
        Verdict::Drop(reason) => format!("drop {}", reason.reason()),
        Verdict::ToManager => "to_manager".into(),
        Verdict::Held => "held".into(),
        Verdict::NotOurs => "not_ours".into(),
    }
}

fn counter(stats: &AgentStats, name: &str) -> u64 {
    if let Some(reason) = name.strip_prefix("drops.") {
        return stats.drops.get(reason);
    }
    match name {
        "forwarded" => stats.forwarded,
        "not_ours" => stats.not_ours,
        "to_manager" => stats.to_manager,
        "held" => stats.held,
        "frames_in" => stats.frames_in,
        other => panic!("unknown counter {other}"),
    }
}

fn run(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let f = parse(&text);
    let mut agent: Agent = common::agent();
    let now = Timestamp::ZERO;
    for line in &f.setup {
        common::install(&mut agent, now, line);
    }
    let installed = agent.stats();
    if installed.denies_sent + installed.fixed_discarded_no_wildcard + installed.invalid_updates > 0
        || installed.rejected.total() > 0
    {
        return Err(format!("set-up was not accepted: {installed:?}"));
    }
    for frame in &f.before {
        agent.handle_frame(now, &mut frame.clone());
    }
    let mut frame = f.input.clone();
    let verdict = render(&agent.handle_frame(now, &mut frame));
    let mut problems = String::new();
    if verdict != f.verdict {
        writeln!(problems, "verdict: got `{verdict}`, want `{}`", f.verdict).unwrap();
    }
    if let Some(want) = f.output.as_ref().filter(|want| frame != **want) {
        writeln!(
            problems,
            "frame differs:\n got:\n{}want:\n{}",
            common::to_hex(&frame),
            common::to_hex(want)
        )
        .unwrap();
    }
    for (name, want) in &f.counters {
        let got = counter(agent.stats(), name);
        if got != *want {
            writeln!(problems, "counter {name}: got {got}, want {want}").unwrap();
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[test]
fn every_fixture_gives_its_verdict_frame_and_counters() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 25,
        "expected the full fixture set, found {}",
        paths.len()
    );
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| run(p).err().map(|e| format!("{}:\n{e}", p.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
