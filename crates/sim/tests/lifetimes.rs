//! Time to live as the seed has it: agents forget affinities on time, managers refresh
//! wildcards before they lapse and outlive the agents' copies of fixed affinities.

mod common;

use core::net::SocketAddr;
use core::time::Duration;

use common::*;
use tether_agent::Verdict;
use tether_manager::{Decisions, SchedulerKind};
use tether_sim::{AgentId, World};
use tether_wire::AffinityKey;

fn fixed_count(world: &mut World, agent: AgentId) -> usize {
    world.agent(agent).sm.fixed_affinities().count()
}

fn wildcard_count(world: &mut World, agent: AgentId) -> usize {
    world.agent(agent).sm.wildcard_affinities().count()
}

#[test]
fn fixed_affinity_expires_on_time_and_the_manager_renews_it_with_the_same_backend() {
    let (mut world, m, a1, _) = world(vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        SchedulerKind::WeightedRoundRobin,
    )]);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let client = SocketAddr::new(ip(CLIENT4), 41_000);
    let syn = Segment {
        syn: true,
        ..Segment::new(client, vip)
    };
    assert_eq!(world.inject_frame(a1, syn.frame()), Verdict::ToManager);
    world.settle(Duration::from_secs(1));
    let first = world.take_emitted(a1).remove(0).packet;
    assert_eq!(
        fixed_count(&mut world, a1),
        2,
        "forward and return affinities installed"
    );

    let key = AffinityKey {
        protocol: 6,
        src: client.ip(),
        src_port: 41_000,
        dst: vip.ip(),
        dst_port: 80,
    };
    let flow = world.manager(m).sm.flow(&key).expect("flow stored");
    assert!(
        flow.expires >= flow.last_fixed + Duration::from_secs(u64::from(FIXED_TTL) + 2),
        "the manager keeps the flow longer than any agent keeps its copy"
    );

    // Still there one second before the time to live ends ...
    world.run_for(Duration::from_secs(u64::from(FIXED_TTL) - 1));
    assert_eq!(fixed_count(&mut world, a1), 2);
    // ... and gone within a second after it (the seed allows two).
    world.run_for(Duration::from_secs(2));
    assert_eq!(fixed_count(&mut world, a1), 0, "fixed affinities expired");

    // The next packet asks again; the manager still knows the flow and renews the same affinity.
    let ack = Segment {
        seq: 2,
        ack: Some(1),
        ..Segment::new(client, vip)
    };
    assert_eq!(world.inject_frame(a1, ack.frame()), Verdict::ToManager);
    world.settle(Duration::from_secs(1));
    let renewed = world.take_emitted(a1).remove(0).packet;
    assert_eq!(
        renewed[16..20],
        first[16..20],
        "renewed affinity keeps the backend"
    );
    assert_eq!(fixed_count(&mut world, a1), 2);
    assert_eq!(world.manager(m).sm.status().counters.flows_created, 1);
}

#[test]
fn wildcards_are_refreshed_while_the_manager_lives_and_lapse_after_it_dies() {
    // Manager decisions, so a SYN shows whether the wildcard is there by going to the manager
    // (with local decisions the agent would place it by the wildcard's table, dead manager or
    // not, until the wildcard lapses).
    let mut web = service("web", VIP4, &BACKENDS4, SchedulerKind::MAGLEV);
    web.decisions = Decisions::Manager;
    let (mut world, m, a1, a2) = world(vec![web]);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let wildcards = wildcard_count(&mut world, a1);
    assert!(
        wildcards == 1 + BACKENDS4.len(),
        "forward wildcard and one return wildcard per backend"
    );

    world.run_for(Duration::from_secs(3 * u64::from(WILDCARD_TTL)));
    assert_eq!(
        wildcard_count(&mut world, a1),
        wildcards,
        "refreshed before every deadline"
    );
    assert_eq!(wildcard_count(&mut world, a2), wildcards);

    // Refreshes come every third of the time to live, so after a crash the wildcards live on
    // for at least two thirds of it and at most all of it (plus the agent's one second).
    world.kill_manager(m);
    world.run_for(Duration::from_secs(u64::from(WILDCARD_TTL) * 2 / 3 - 1));
    assert_eq!(wildcard_count(&mut world, a1), wildcards);
    let syn = Segment {
        syn: true,
        ..Segment::new(SocketAddr::new(ip(CLIENT4), 41_001), vip)
    };
    assert_eq!(world.inject_frame(a1, syn.frame()), Verdict::ToManager);
    world.run_for(Duration::from_secs(u64::from(WILDCARD_TTL) / 3 + 2));
    assert_eq!(wildcard_count(&mut world, a1), 0, "wildcards lapsed");
    assert_eq!(
        world.inject_frame(a1, syn.frame()),
        Verdict::NotOurs,
        "host routes it again"
    );
}

#[test]
fn shutdown_withdraws_wildcards_and_their_fixed_affinities_at_once() {
    let (mut world, m, a1, _) = world(vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        SchedulerKind::MAGLEV,
    )]);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let syn = Segment {
        syn: true,
        ..Segment::new(SocketAddr::new(ip(CLIENT4), 41_002), vip)
    };
    world.inject_frame(a1, syn.frame());
    world.settle(Duration::from_secs(1));
    assert_eq!(fixed_count(&mut world, a1), 2);

    let now = world.now();
    world.manager(m).sm.shutdown(now);
    world.settle(Duration::from_secs(1));
    assert_eq!(wildcard_count(&mut world, a1), 0, "TTL 0 deletes wildcards");
    assert_eq!(
        fixed_count(&mut world, a1),
        0,
        "and the fixed affinities they supported"
    );
}
