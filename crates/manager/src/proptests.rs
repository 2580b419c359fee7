//! Properties over random inputs: scheduler shares, Maglev stability, and the flow store's
//! bookkeeping under any sequence of events.

use core::time::Duration;

use proptest::prelude::*;
use tether_proto::{AffinityIdentifier, Envelope, InterestBits, InterestMatch, MatchKind, Message};

use super::tests::{AGENT, config, service};
use super::*;
use crate::scheduler::BackendSpec;
use crate::scheduler::Maglev;

fn specs<'a>(names: &'a [String], weights: &[u32]) -> Vec<BackendSpec<'a>> {
    names
        .iter()
        .zip(weights)
        .map(|(name, &weight)| BackendSpec { name, weight })
        .collect()
}

proptest! {
    #[test]
    fn smooth_round_robin_gives_exact_shares_per_cycle(
        weights in prop::collection::vec(1u32..=10, 1..8),
    ) {
        let names: Vec<String> = (0..weights.len()).map(|i| i.to_string()).collect();
        let mut s = scheduler::Scheduler::new(SchedulerKind::WeightedRoundRobin, &specs(&names, &weights));
        let total: u32 = weights.iter().sum();
        let mut counts = vec![0u32; weights.len()];
        let key = tests_key(0);
        for _ in 0..total * 3 {
            counts[s.pick(&key, &[]).unwrap()] += 1;
        }
        let expected: Vec<u32> = weights.iter().map(|w| w * 3).collect();
        prop_assert_eq!(counts, expected);
    }

    #[test]
    fn maglev_keeps_eligible_slots_and_forgets_history(
        weights in prop::collection::vec(1u32..=4, 2..24),
        masks in prop::collection::vec(any::<u32>(), 2),
    ) {
        let n = weights.len();
        let names: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
        let specs = specs(&names, &weights);
        let mask = |bits: u32| -> Vec<bool> { (0..n).map(|i| bits >> (i % 32) & 1 == 1).collect() };
        let (first, target) = (mask(masks[0]), mask(masks[1]));

        let base = Maglev::new(1_009, &specs);
        let mut direct = base.clone();
        direct.set_eligible(&target);
        let mut detour = base.clone();
        detour.set_eligible(&first);
        detour.set_eligible(&target);
        prop_assert!(direct.slots().eq(detour.slots()));
        for (before, after) in base.slots().zip(direct.slots()) {
            let before = before.unwrap();
            if target[before] {
                prop_assert_eq!(after, Some(before));
            } else if target.iter().any(|&e| e) {
                prop_assert!(after.is_some_and(|a| target[a]));
            } else {
                prop_assert_eq!(after, None);
            }
        }
    }

    #[test]
    fn flow_bookkeeping_holds_under_any_events(
        events in prop::collection::vec((0u8..6, 0u16..8, 0u64..30), 1..60),
    ) {
        let mut m = Manager::new(
            config(vec![service(ForwardingMode::Nat, SchedulerKind::WeightedLeastConnections)]),
            Timestamp::ZERO,
        )
        .unwrap();
        let mut now = Timestamp::ZERO;
        let hold = Duration::from_mins(1) + flows::AGENT_SLACK;
        for (kind, port, step) in events {
            now += Duration::from_secs(step);
            let key = tests_key(port);
            match kind {
                0 | 1 => m.on_packet(now, AGENT.parse().unwrap(), PacketFacts { key, starts_flow: kind == 0, ends_flow: kind == 1 && port % 2 == 1 }, vec![]),
                2 => m.handle_message(now, AGENT.parse().unwrap(), Message::InterestMatch(InterestMatch {
                    kind: MatchKind::Fixed,
                    identifier: AffinityIdentifier { key, dispatch: false, information: false, matched: InterestBits::FIN },
                    envelope: Envelope::default(),
                    packet: None,
                })),
                3 => m.set_backend_health(now, "web", ["a", "b", "c"][usize::from(port % 3)], port % 2 == 0).unwrap(),
                4 => m.set_backend_state(now, "web", ["a", "b", "c"][usize::from(port % 3)], AdminState::Draining).unwrap(),
                _ => m.handle_timeout(now),
            }
            while m.poll_message().is_some() {}
            let mut open = [0u64; 3];
            let mut stored = 0;
            for p in 0..8 {
                if let Some(flow) = m.flow(&tests_key(p)) {
                    stored += 1;
                    prop_assert!(flow.expires >= flow.last_fixed + hold);
                    if !flow.closing {
                        open[usize::from(flow.backend.as_bytes()[0] - b'a')] += 1;
                    }
                }
            }
            let status = m.status();
            prop_assert_eq!(status.flows, stored);
            let active: Vec<u64> = status.services[0].backends.iter().map(|b| b.active_flows).collect();
            prop_assert_eq!(active, open.to_vec());
        }
    }
}

fn tests_key(port: u16) -> AffinityKey {
    AffinityKey {
        protocol: 6,
        src: [203, 0, 113, 7].into(),
        src_port: 1000 + port,
        dst: [198, 51, 100, 1].into(),
        dst_port: 80,
    }
}
