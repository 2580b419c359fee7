//! Manager failover on virtual time: a primary and its backups replicate flows, the primary
//! dies, one backup takes over, and every connection alive at the failover keeps its backend.
//! After every step, no flow is held by two managers with different backends.

mod common;

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;

use common::*;
use tether_manager::{Decisions, ManagerConfig, SchedulerKind};
use tether_proto::Role;
use tether_sim::{AgentId, Faults, ManagerId, World};
use tether_wire::AffinityKey;

const BACKUP: &str = "10.0.0.3:7000";
const BACKUP2: &str = "10.0.0.4:7000";
/// Detection bound with the defaults: two missed 100 ms heartbeats, 50 ms of grace, and the
/// heartbeat interval the death may fall into.
const DETECTION_BOUND: Duration = Duration::from_millis(350);

/// The configurations of managers at `addrs` with backup precedences 1, 2, ..., each the peer
/// of all others.
fn configs(addrs: &[&str], decisions: Decisions) -> Vec<ManagerConfig> {
    let services = vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        match decisions {
            // Round robin, not a hash: a backup scheduling a flow afresh would pick another
            // backend, so keeping it proves the replicated store is used.
            Decisions::Manager => SchedulerKind::WeightedRoundRobin,
            // Agents place flows by the Maglev table and report them; a lost report is made
            // good by the same table when the flow's next packet reaches a manager.
            Decisions::Local => SchedulerKind::MAGLEV,
        },
    )];
    addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let mut config = manager_config(services.clone());
            config.name = format!("mgr-{i}");
            config.addr = sa(addr);
            config.backup_precedence = u16::try_from(i + 1).expect("few managers");
            config.peers = addrs.iter().filter(|a| *a != addr).map(|a| sa(a)).collect();
            config
        })
        .collect()
}

/// Managers at `addrs` (see [`configs`]) and two agents, settled.
fn cluster(
    seed: u64,
    faults: Faults,
    addrs: &[&str],
    decisions: Decisions,
) -> (World, Vec<ManagerId>, [AgentId; 2]) {
    // The first announcements go out on a clean network: a lost one leaves an agent with only
    // the backup's wildcard until the next refresh, which is a different story from failover.
    let mut world = World::new(seed, Faults::default());
    let managers = configs(addrs, decisions)
        .into_iter()
        .map(|config| world.add_manager(config).expect("valid manager config"))
        .collect();
    let a1 = world.add_agent(sa(AGENT1), agent_config("agent-1", AGENT1), &[sa(GROUP)]);
    let a2 = world.add_agent(sa(AGENT2), agent_config("agent-2", AGENT2), &[sa(GROUP)]);
    world.run_for(Duration::from_millis(10));
    world.net.set_faults(faults);
    world.run_for(Duration::from_secs(1));
    (world, managers, [a1, a2])
}

fn role(world: &mut World, m: ManagerId) -> Role {
    world.manager(m).sm.status().failover.role
}

fn key(port: u16) -> AffinityKey {
    AffinityKey {
        protocol: 6,
        src: ip(CLIENT4),
        src_port: port,
        dst: ip(VIP4),
        dst_port: 80,
    }
}

/// No flow is held by two managers with different backends.
fn check_one_backend(world: &mut World, managers: &[ManagerId], keys: &[AffinityKey]) {
    for k in keys {
        let backends: Vec<String> = managers
            .iter()
            .filter_map(|&m| world.manager(m).sm.flow(k).map(|f| f.backend))
            .collect();
        assert!(
            backends.windows(2).all(|w| w[0] == w[1]),
            "flow {k} on two backends: {backends:?} at {:?}",
            world.now()
        );
    }
}

/// Runs `d` in 5 ms steps, checking the invariant after each.
fn run_checked(world: &mut World, managers: &[ManagerId], keys: &[AffinityKey], d: Duration) {
    let end = world.now() + d;
    while world.now() < end {
        world.run_for(Duration::from_millis(5));
        check_one_backend(world, managers, keys);
    }
}

/// The destination of the packets `agent` emitted so far (the last one), if any.
fn emitted_dst(world: &mut World, agent: AgentId) -> Option<[u8; 4]> {
    let out = world.take_emitted(agent);
    out.last()
        .map(|e| e.packet[16..20].try_into().expect("IPv4 header"))
}

/// Sends `segment` through `agent` until a packet comes out (lossy networks lose interest
/// matches and answers), at most `tries` times; the backend it went to.
fn deliver(
    world: &mut World,
    managers: &[ManagerId],
    keys: &[AffinityKey],
    agent: AgentId,
    segment: &Segment<'_>,
    tries: usize,
) -> Option<[u8; 4]> {
    for _ in 0..tries {
        // Whatever the verdict (sent on, punted, or dropped while the agents' tables are in
        // flux), the client retransmits until a packet comes out.
        world.inject_frame(agent, segment.frame());
        if let Some(dst) = emitted_dst(world, agent) {
            return Some(dst);
        }
        run_checked(world, managers, keys, Duration::from_millis(100));
        if let Some(dst) = emitted_dst(world, agent) {
            return Some(dst);
        }
    }
    None
}

/// A lossy, reordering, duplicating network: 0.2-5 ms latency, 2 % of datagrams lost and 2 %
/// delivered twice.
fn lossy() -> Faults {
    Faults {
        min_latency: Duration::from_micros(200),
        max_latency: Duration::from_millis(5),
        drop: 0.02,
        duplicate: 0.02,
    }
}

/// What one failover run measured.
struct Measured {
    detection: Duration,
    restored: Duration,
    /// Flows the backup placed again by the table (their reports were lost).
    recovered: u64,
}

/// Six connections across two agents, the primary killed `kill_offset` into a heartbeat
/// interval, and every connection checked on the backup.
fn failover_run(
    seed: u64,
    faults: Faults,
    kill_offset: Duration,
    decisions: Decisions,
) -> Measured {
    // An agent's flow report is not sent again if the network loses it.
    let reports_arrive = decisions == Decisions::Manager || faults.drop == 0.0;
    let (mut world, ms, agents) = cluster(seed, faults, &[MANAGER, BACKUP], decisions);
    let (primary, backup) = (ms[0], ms[1]);
    assert_eq!(role(&mut world, primary), Role::Active);
    assert_eq!(role(&mut world, backup), Role::Standby);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let mut keys = Vec::new();
    let mut backends = BTreeMap::new();
    for i in 0..6u16 {
        let port = 40_000 + i;
        keys.push(key(port));
        let client = SocketAddr::new(ip(CLIENT4), port);
        let syn = Segment {
            syn: true,
            ..Segment::new(client, vip)
        };
        let agent = agents[usize::from(i % 2)];
        let Some(dst) = deliver(&mut world, &ms, &keys, agent, &syn, 10) else {
            panic!(
                "SYN {port} not served (seed {seed}): {:?} {:?}",
                world.manager(primary).sm.status(),
                world.agent(agent).sm.stats()
            );
        };
        backends.insert(port, dst);
    }
    let distinct: std::collections::BTreeSet<_> = backends.values().collect();
    assert!(distinct.len() > 1, "the scheduler spread the connections");
    // Replication (and any resend it needs) completes within a few heartbeats.
    run_checked(&mut world, &ms, &keys, Duration::from_millis(500));
    let replicated = world.manager(backup).sm.status().flows;
    // Every flow the primary holds is replicated; with local decisions the primary holds
    // only the flows whose reports arrived (a lost one is not sent again).
    let stored = world.manager(primary).sm.status().flows;
    assert_eq!(
        replicated, stored,
        "every stored flow replicated (seed {seed})"
    );
    if reports_arrive {
        assert_eq!(stored, 6, "every flow stored (seed {seed})");
    }
    if decisions == Decisions::Local {
        let placed: u64 = agents
            .iter()
            .map(|&a| world.agent(a).sm.stats().placed_locally)
            .sum();
        assert_eq!(
            placed, 6,
            "the agents placed every flow themselves (seed {seed})"
        );
    }

    run_checked(&mut world, &ms, &keys, kill_offset);
    let killed = world.now();
    world.kill_manager(primary);
    while role(&mut world, backup) == Role::Standby {
        assert!(
            world.now().saturating_since(killed) <= DETECTION_BOUND,
            "no takeover within {DETECTION_BOUND:?}"
        );
        world.run_for(Duration::from_millis(1));
        check_one_backend(&mut world, &ms, &keys);
    }
    let status = world.manager(backup).sm.status().failover;
    let detection = status
        .detected_at
        .expect("takeover recorded")
        .saturating_since(killed);
    assert_eq!(status.takeovers, 1);
    // The cancels reach the agents; the primary's fixed affinities are gone.
    run_checked(&mut world, &ms, &keys, Duration::from_millis(50));

    // Later packets of every connection reach the same backend, now through the backup.
    for i in 0..6u16 {
        let port = 40_000 + i;
        let client = SocketAddr::new(ip(CLIENT4), port);
        let data = Segment {
            seq: 2,
            ack: Some(1),
            payload: b"after",
            ..Segment::new(client, vip)
        };
        let agent = agents[usize::from(i % 2)];
        let dst = deliver(&mut world, &ms, &keys, agent, &data, 20);
        assert_eq!(
            dst,
            Some(backends[&port]),
            "connection {port} kept its backend (seed {seed}): {:?}",
            world.manager(backup).sm.status().counters
        );
    }
    // Every takeover round has run.
    run_checked(&mut world, &ms, &keys, Duration::from_millis(300));
    let restored = world
        .manager(backup)
        .sm
        .status()
        .failover
        .took_over_at
        .expect("the backup served a flow")
        .saturating_since(killed);
    for agent in agents {
        let primary_addr = sa(MANAGER);
        let left = world
            .agent(agent)
            .sm
            .fixed_affinities()
            .filter(|f| f.manager == primary_addr)
            .count();
        assert_eq!(
            left,
            0,
            "the dead primary's fixed affinities were cancelled (seed {seed}): {:?}",
            world.agent(agent).sm.stats(),
        );
    }

    // A new connection is served by the backup.
    keys.push(key(41_000));
    let syn = Segment {
        syn: true,
        ..Segment::new(SocketAddr::new(ip(CLIENT4), 41_000), vip)
    };
    assert!(deliver(&mut world, &ms, &keys, agents[0], &syn, 10).is_some());
    run_checked(&mut world, &ms, &keys, Duration::from_secs(1));
    assert!(!reports_arrive || world.manager(backup).sm.flow(&key(41_000)).is_some());
    assert_eq!(role(&mut world, backup), Role::Active);
    Measured {
        detection,
        restored,
        recovered: world.manager(backup).sm.status().counters.flows_recovered,
    }
}

#[test]
fn the_backup_takes_over_and_every_connection_keeps_its_backend() {
    let m = failover_run(
        11,
        Faults::default(),
        Duration::from_millis(37),
        Decisions::Manager,
    );
    assert!(m.detection <= DETECTION_BOUND, "{:?}", m.detection);
    println!(
        "detection {:?}, first existing flow served {:?} after the kill",
        m.detection, m.restored
    );
}

#[test]
fn failover_survives_a_lossy_reordering_network_over_many_schedules() {
    let mut detections: Vec<Duration> = (0..50u64)
        .map(|seed| {
            let offset = Duration::from_millis(seed * 37 % 100);
            failover_run(seed, lossy(), offset, Decisions::Manager).detection
        })
        .collect();
    detections.sort();
    println!(
        "detection over 50 lossy schedules: min {:?}, median {:?}, max {:?}",
        detections[0], detections[25], detections[49]
    );
    assert!(detections[25] <= Duration::from_millis(300));
}

#[test]
fn with_two_backups_exactly_one_takes_over() {
    let (mut world, ms, _) = cluster(
        5,
        Faults::default(),
        &[MANAGER, BACKUP, BACKUP2],
        Decisions::Manager,
    );
    assert_eq!(role(&mut world, ms[0]), Role::Active);
    world.kill_manager(ms[0]);
    for _ in 0..400 {
        world.run_for(Duration::from_millis(5));
        let active = [ms[1], ms[2]]
            .into_iter()
            .filter(|&m| role(&mut world, m) == Role::Active)
            .count();
        assert!(active <= 1, "split brain at {:?}", world.now());
    }
    assert_eq!(role(&mut world, ms[1]), Role::Active, "the better backup");
    assert_eq!(role(&mut world, ms[2]), Role::Standby);
    assert_eq!(
        world.manager(ms[2]).sm.status().failover.takeovers,
        0,
        "the worse backup never took over"
    );
}

/// Sends a data segment of every connection through its agent and checks it reaches the
/// backend it had.
fn check_connections(
    world: &mut World,
    managers: &[ManagerId],
    keys: &[AffinityKey],
    agents: [AgentId; 2],
    backends: &BTreeMap<u16, [u8; 4]>,
    when: &str,
) {
    let vip = SocketAddr::new(ip(VIP4), 80);
    for (i, (&port, &backend)) in backends.iter().enumerate() {
        let client = SocketAddr::new(ip(CLIENT4), port);
        let data = Segment {
            seq: 2,
            ack: Some(1),
            payload: b"data",
            ..Segment::new(client, vip)
        };
        let dst = deliver(world, managers, keys, agents[i % 2], &data, 20);
        assert_eq!(
            dst,
            Some(backend),
            "connection {port} kept its backend {when} at {:?}",
            world.now()
        );
    }
}

/// Opens connection `port` through `agent`; its backend.
fn connect(
    world: &mut World,
    managers: &[ManagerId],
    keys: &mut Vec<AffinityKey>,
    agent: AgentId,
    port: u16,
) -> [u8; 4] {
    keys.push(key(port));
    let vip = SocketAddr::new(ip(VIP4), 80);
    let syn = Segment {
        syn: true,
        ..Segment::new(SocketAddr::new(ip(CLIENT4), port), vip)
    };
    deliver(world, managers, keys, agent, &syn, 20)
        .unwrap_or_else(|| panic!("SYN {port} not served at {:?}", world.now()))
}

/// Opens a connection from each client port of `ports`, alternating between the agents, and
/// records its backend.
fn connect_ports(
    world: &mut World,
    managers: &[ManagerId],
    keys: &mut Vec<AffinityKey>,
    agents: [AgentId; 2],
    backends: &mut BTreeMap<u16, [u8; 4]>,
    ports: core::ops::Range<u16>,
) {
    for port in ports {
        let dst = connect(world, managers, keys, agents[usize::from(port % 2)], port);
        backends.insert(port, dst);
    }
}

/// Runs until `done` holds, checking the invariant every 5 ms; panics after `limit`.
fn run_until(
    world: &mut World,
    managers: &[ManagerId],
    keys: &[AffinityKey],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&mut World) -> bool,
) -> Duration {
    let start = world.now();
    while !done(world) {
        assert!(
            world.now().saturating_since(start) <= limit,
            "{what}: not within {limit:?}"
        );
        run_checked(world, managers, keys, Duration::from_millis(5));
    }
    world.now().saturating_since(start)
}

/// What one death-and-return run measured.
struct Returned {
    /// From the restart to the returned primary active again.
    reclaim: Duration,
}

/// The primary dies, the backup takes over and places more flows, the primary restarts,
/// pulls the store, takes its role back, and then the backup dies: every connection keeps its
/// backend throughout, and no flow is ever held on two backends.
fn death_and_return_run(seed: u64, faults: Faults, decisions: Decisions) -> Returned {
    // An agent's flow report is not sent again if the network loses it.
    let reports_arrive = decisions == Decisions::Manager || faults.drop == 0.0;
    let addrs = [MANAGER, BACKUP];
    let (mut world, ms, agents) = cluster(seed, faults, &addrs, decisions);
    let (primary, backup) = (ms[0], ms[1]);
    let mut keys = Vec::new();
    let mut backends = BTreeMap::new();
    connect_ports(
        &mut world,
        &ms,
        &mut keys,
        agents,
        &mut backends,
        40_000..40_006,
    );
    run_checked(&mut world, &ms, &keys, Duration::from_millis(500));

    let offset = Duration::from_millis(seed * 29 % 100);
    run_checked(&mut world, &ms, &keys, offset);
    world.kill_manager(primary);
    run_until(&mut world, &ms, &keys, DETECTION_BOUND, "takeover", |w| {
        role(w, backup) == Role::Active
    });
    check_connections(
        &mut world,
        &ms,
        &keys,
        agents,
        &backends,
        "after the takeover",
    );
    // Flows the backup places alone, which only a snapshot can give the primary.
    connect_ports(
        &mut world,
        &ms,
        &mut keys,
        agents,
        &mut backends,
        42_000..42_004,
    );

    world
        .restart_manager(primary, configs(&addrs, decisions).remove(0))
        .expect("valid config");
    let reclaim = run_until(
        &mut world,
        &ms,
        &keys,
        Duration::from_secs(5),
        "reclaim",
        |w| role(w, primary) == Role::Active && role(w, backup) == Role::Standby,
    );
    let status = world.manager(primary).sm.status().failover;
    assert!(status.ready, "active only once ready");
    assert_eq!(status.reclaims, 1, "{status:?}");
    assert!(status.snapshots_received >= 1, "{status:?}");
    assert_eq!(
        status.takeovers, 0,
        "it took its role back, not over: {status:?}"
    );
    for port in backends.keys() {
        // A flow whose report was lost is known to no manager until its next packet reaches
        // one.
        assert!(
            !reports_arrive || world.manager(primary).sm.flow(&key(*port)).is_some(),
            "the returned primary holds flow {port} (seed {seed})"
        );
    }
    check_connections(
        &mut world,
        &ms,
        &keys,
        agents,
        &backends,
        "after the return",
    );

    // The backup dies: the primary's own store carries every connection.
    run_checked(&mut world, &ms, &keys, Duration::from_millis(300));
    world.kill_manager(backup);
    run_checked(&mut world, &ms, &keys, Duration::from_millis(500));
    assert_eq!(role(&mut world, primary), Role::Active);
    check_connections(
        &mut world,
        &ms,
        &keys,
        agents,
        &backends,
        "after the backup died",
    );
    connect(&mut world, &ms, &mut keys, agents[0], 43_000);
    Returned { reclaim }
}

#[test]
fn a_returning_primary_pulls_the_store_and_takes_its_role_back() {
    let r = death_and_return_run(3, Faults::default(), Decisions::Manager);
    println!(
        "returned primary active again {:?} after its restart",
        r.reclaim
    );
}

#[test]
fn death_and_return_over_many_lossy_schedules() {
    let mut reclaims: Vec<Duration> = (0..30u64)
        .map(|seed| death_and_return_run(100 + seed, lossy(), Decisions::Manager).reclaim)
        .collect();
    reclaims.sort();
    println!(
        "restart -> active again over 30 lossy schedules: min {:?}, median {:?}, max {:?}",
        reclaims[0], reclaims[15], reclaims[29]
    );
}

/// Agents place the flows themselves and report them; the same failovers over lossy networks
/// keep every connection on its backend (a lost report is made good by the table).
#[test]
fn local_decisions_survive_failover_and_return_over_many_lossy_schedules() {
    failover_run(
        11,
        Faults::default(),
        Duration::from_millis(37),
        Decisions::Local,
    );
    death_and_return_run(3, Faults::default(), Decisions::Local);
    let mut recovered = 0;
    for seed in 0..20u64 {
        let offset = Duration::from_millis(seed * 37 % 100);
        recovered += failover_run(seed, lossy(), offset, Decisions::Local).recovered;
        death_and_return_run(200 + seed, lossy(), Decisions::Local);
    }
    println!("flows placed again by the table after lost reports: {recovered}");
    // The schedules do lose reports, and the connections above kept their backends anyway.
    assert!(recovered > 0, "no lost report was exercised");
}

#[test]
fn a_manager_that_cannot_pull_the_store_stays_standby() {
    let addrs = [MANAGER, BACKUP];
    let decisions = Decisions::Manager;
    let (mut world, ms, agents) = cluster(8, Faults::default(), &addrs, decisions);
    let (primary, backup) = (ms[0], ms[1]);
    let mut keys = Vec::new();
    connect(&mut world, &ms, &mut keys, agents[0], 40_000);
    world.kill_manager(primary);
    run_until(&mut world, &ms, &keys, DETECTION_BOUND, "takeover", |w| {
        role(w, backup) == Role::Active
    });
    // Snapshots from the backup never arrive; heartbeats do.
    world.net.drop_kind(tether_proto::MessageType::Snapshot);
    world
        .restart_manager(primary, configs(&addrs, decisions).remove(0))
        .expect("valid config");
    run_checked(&mut world, &ms, &keys, Duration::from_secs(2));
    let status = world.manager(primary).sm.status().failover;
    assert_eq!(status.role, Role::Standby, "{status:?}");
    assert!(!status.ready);
    assert_eq!(role(&mut world, backup), Role::Active);
    assert!(
        world.manager(backup).sm.status().failover.snapshots_sent >= 2,
        "the backup sends the store again while the peer is not ready"
    );
    assert_eq!(
        world
            .manager(primary)
            .sm
            .status()
            .counters
            .wildcard_updates_sent,
        0,
        "a manager pulling the store announces nothing"
    );
}
