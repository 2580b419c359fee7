//! Forged, unsigned and replayed service messages are dropped and counted, never acted on.

mod common;

use core::net::SocketAddr;
use core::time::Duration;

use common::*;
use tether_agent::Verdict;
use tether_manager::{Decisions, SchedulerKind};
use tether_proto::codec::encode;
use tether_proto::{
    Actions, AuthConfig, Codec, Envelope, Key, Message, WildcardAffinity, WildcardUpdate,
};

/// A wildcard that would swallow every packet an agent sees, if an agent believed it.
fn hijack() -> Message {
    Message::WildcardUpdate(WildcardUpdate {
        affinity: WildcardAffinity {
            protocol: 0,
            src: ip("0.0.0.0"),
            src_mask: ip("0.0.0.0"),
            src_port: 0,
            dst: ip("0.0.0.0"),
            dst_mask: ip("0.0.0.0"),
            dst_port: 0,
            dispatch: false,
            information: false,
            forward: ip("0.0.0.0"),
            ttl: 300,
        },
        actions: Actions::default(),
        action_list: Vec::new(),
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
    })
}

#[test]
fn a_message_signed_with_the_wrong_key_is_dropped_and_counted() {
    let (mut world, _, a1, _) = world(vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        SchedulerKind::MAGLEV,
    )]);
    let wildcards = world.agent(a1).sm.wildcard_affinities().count();
    let mut forger = Codec::new(
        AuthConfig {
            keys: vec![Key {
                id: 1,
                secret: b"not-the-cluster-secret-at-all!!".to_vec(),
            }],
            send_key: Some(1),
            require: true,
        },
        5_000_000,
    );
    world.inject_datagram(sa(MANAGER), sa(AGENT1), forger.seal(&hijack()));
    world.inject_datagram(sa(MANAGER), sa(AGENT1), encode(&hijack()));
    world.settle(Duration::from_secs(1));

    let stats = world.agent(a1).sm.stats().clone();
    assert_eq!(stats.rejected.get("bad_mac"), 1, "forged message counted");
    assert_eq!(
        stats.rejected.get("unsigned"),
        1,
        "unsigned message counted"
    );
    assert_eq!(
        world.agent(a1).sm.wildcard_affinities().count(),
        wildcards,
        "nothing installed"
    );

    // Traffic the forged wildcard would have swallowed still goes where it should.
    let stray = Segment::new(
        SocketAddr::new(ip(CLIENT4), 1234),
        SocketAddr::new(ip("203.0.113.9"), 22),
    );
    assert_eq!(world.inject_frame(a1, stray.frame()), Verdict::NotOurs);
}

#[test]
fn replayed_messages_are_dropped_and_counted_by_agents_and_managers() {
    // The manager places the flow, so a fixed update crosses the network to be replayed.
    let mut web = service("web", VIP4, &BACKENDS4, SchedulerKind::MAGLEV);
    web.decisions = Decisions::Manager;
    let (mut world, m, a1, _) = world(vec![web]);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let syn = Segment {
        syn: true,
        ..Segment::new(SocketAddr::new(ip(CLIENT4), 42_000), vip)
    };
    assert_eq!(world.inject_frame(a1, syn.frame()), Verdict::ToManager);
    world.settle(Duration::from_secs(1));
    assert_eq!(world.take_emitted(a1).len(), 1);

    // Capture what crossed the network and play it again.
    let to_agent = world
        .delivered()
        .iter()
        .rfind(|d| d.from == sa(MANAGER) && d.to == sa(AGENT1))
        .expect("the manager answered agent 1")
        .clone();
    let to_manager = world
        .delivered()
        .iter()
        .rfind(|d| d.from == sa(AGENT1) && d.to == sa(MANAGER))
        .expect("agent 1 asked the manager")
        .clone();
    world.inject_datagram(to_agent.from, to_agent.to, to_agent.payload);
    world.inject_datagram(to_manager.from, to_manager.to, to_manager.payload);
    world.settle(Duration::from_secs(1));

    assert_eq!(world.agent(a1).sm.stats().rejected.get("replayed"), 1);
    assert!(
        world.take_emitted(a1).is_empty(),
        "the replayed packet was not sent again"
    );
    let counters = world.manager(m).sm.status().counters;
    assert_eq!(counters.rejected.get("replayed").copied(), Some(1));
    assert_eq!(counters.flows_created, 1);
}

#[test]
fn every_message_on_the_network_is_signed() {
    let (mut world, _, a1, _) = world(vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        SchedulerKind::MAGLEV,
    )]);
    let syn = Segment {
        syn: true,
        ..Segment::new(
            SocketAddr::new(ip(CLIENT4), 42_001),
            SocketAddr::new(ip(VIP4), 80),
        )
    };
    world.inject_frame(a1, syn.frame());
    world.settle(Duration::from_secs(1));
    // One verifier per receiver: a multicast wildcard reaches each agent with one sequence number.
    let mut verifiers = std::collections::BTreeMap::new();
    for datagram in world.delivered() {
        let verifier = verifiers
            .entry(datagram.to)
            .or_insert_with(|| Codec::new(auth(), 0));
        let message = verifier.open(&datagram.payload);
        assert!(
            message.is_ok(),
            "{message:?}: every message verifies with the cluster key"
        );
    }
    assert!(
        world.delivered().len() >= 4,
        "wildcards, interest match and fixed updates crossed"
    );
}
