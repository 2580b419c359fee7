//! The manager driver on loopback: signed wildcard announcements to a unicast "agent", their
//! withdrawal at shutdown, administrative and health changes seen in the status, and start-up
//! errors that name what to fix.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use tether_manager::{
    AdminState, BackendConfig, ConfigError, ControlError, Decisions, ForwardingMode, ManagerConfig,
    ManagerStatus, Protocol, SchedulerKind, ServiceConfig,
};
use tether_proto::{AuthConfig, Codec, Key, Message, WildcardAffinity};
use tether_runtime::manager_driver::{
    DriverError, HealthCheck, HealthCheckKind, ManagerDriver, ManagerDriverConfig,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// How long a test waits for what should take a fraction of it; machines are shared and slow.
const PATIENCE: Duration = Duration::from_secs(10);

fn auth(secret: &[u8]) -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id: 7,
            secret: secret.to_vec(),
        }],
        send_key: Some(7),
        require: true,
    }
}

const SECRET: &[u8] = b"a test secret of 32 bytes, fine.";

fn ip(s: &str) -> core::net::IpAddr {
    s.parse().expect("test addresses are valid")
}

fn sock(s: &str) -> SocketAddr {
    s.parse().expect("test addresses are valid")
}

fn backend(name: &str, addr: SocketAddr) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        addr: addr.ip(),
        port: addr.port(),
        weight: 1,
        state: AdminState::Enabled,
    }
}

/// One NAT service over `backends`, announced to `announce` every third of a second.
fn config(announce: SocketAddr, backends: &[SocketAddr]) -> ManagerConfig {
    ManagerConfig {
        name: "mgr-test".into(),
        addr: sock("127.0.0.1:0"),
        auth: auth(SECRET),
        initial_sequence: 1000,
        announce: vec![announce],
        wildcard_ttl: 1,
        fixed_ttl: 60,
        sticky: Duration::from_secs(10),
        service_precedence: None,
        backup_precedence: 0,
        services: vec![ServiceConfig {
            name: "web".into(),
            vip: ip("198.51.100.1"),
            port: 80,
            protocol: Protocol::Tcp,
            client_domain: (ip("0.0.0.0"), 0),
            scheduler: SchedulerKind::WeightedRoundRobin,
            mode: ForwardingMode::Nat,
            decisions: Decisions::Manager,
            backends: backends
                .iter()
                .enumerate()
                .map(|(i, &addr)| backend(&format!("b{}", i + 1), addr))
                .collect(),
        }],
        peers: Vec::new(),
        heartbeat_interval: tether_manager::DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_misses: tether_manager::DEFAULT_HEARTBEAT_MISSES,
    }
}

fn backend_addrs() -> [SocketAddr; 2] {
    [sock("127.0.0.1:8081"), sock("127.0.0.1:8082")]
}

async fn spawn(manager: ManagerConfig) -> ManagerDriver {
    ManagerDriver::spawn(ManagerDriverConfig {
        manager,
        health: Vec::new(),
    })
    .await
    .expect("the test configuration is valid")
}

/// Polls the status until `cond` holds.
async fn eventually(
    driver: &ManagerDriver,
    what: &str,
    cond: impl Fn(&ManagerStatus) -> bool,
) -> ManagerStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = driver.status();
        if cond(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status:#?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// The next wildcard update the agent socket receives, opened with `codec`.
async fn next_wildcard(agent: &UdpSocket, codec: &mut Codec) -> WildcardAffinity {
    let mut buf = vec![0; 65_535];
    let (len, _) = timeout(PATIENCE, agent.recv_from(&mut buf))
        .await
        .expect("no announcement in time")
        .expect("receive on loopback");
    match codec.open(&buf[..len]) {
        Ok(Message::WildcardUpdate(update)) => update.affinity,
        other => panic!("expected a signed wildcard update, got {other:?}"),
    }
}

/// The wildcard without its TTL, to compare announcements and withdrawals.
fn untimed(mut w: WildcardAffinity) -> WildcardAffinity {
    w.ttl = 0;
    w
}

#[tokio::test]
async fn announces_signed_wildcards_refreshes_them_and_withdraws_them_on_shutdown() {
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let driver = spawn(config(agent.local_addr().unwrap(), &backend_addrs())).await;
    let mut codec = Codec::new(auth(SECRET), 0);

    // One forward wildcard and one return wildcard per backend (NAT), each announced at start
    // and refreshed every ttl / 3: wait until every one has arrived twice.
    let expected = 1 + backend_addrs().len();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut announced = BTreeSet::new();
    while seen.len() < expected || seen.values().any(|&n| n < 2) {
        let w = next_wildcard(&agent, &mut codec).await;
        assert_eq!(w.ttl, 1, "announced with the configured TTL");
        *seen.entry(format!("{:?}", untimed(w.clone()))).or_default() += 1;
        announced.insert(format!("{:?}", untimed(w)));
        assert!(
            announced.len() <= expected,
            "unexpected wildcard: {announced:#?}"
        );
    }

    driver.shutdown().await.unwrap();
    // Shutdown returns once the withdrawals are written; refreshes sent before may come first.
    let mut withdrawn = BTreeSet::new();
    while withdrawn.len() < expected {
        let w = next_wildcard(&agent, &mut codec).await;
        if w.ttl == 0 {
            withdrawn.insert(format!("{w:?}"));
        }
    }
    assert_eq!(withdrawn, announced);
}

#[tokio::test]
async fn announcements_do_not_open_with_another_key() {
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let driver = spawn(config(agent.local_addr().unwrap(), &backend_addrs())).await;
    let mut wrong = Codec::new(auth(b"another secret, also 32 bytes.."), 0);
    let mut buf = vec![0; 65_535];
    let (len, _) = timeout(PATIENCE, agent.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(wrong.open(&buf[..len]).is_err());
    driver.shutdown().await.unwrap();
}

#[tokio::test]
async fn datagrams_reach_the_manager_and_bad_ones_are_counted() {
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let driver = spawn(config(agent.local_addr().unwrap(), &backend_addrs())).await;
    agent
        .send_to(b"not a service message", driver.local_addr())
        .await
        .unwrap();
    let status = eventually(&driver, "the datagram counted", |s| {
        s.counters.datagrams == 1
    })
    .await;
    assert_eq!(status.counters.rejected.get("malformed"), Some(&1));
    driver.shutdown().await.unwrap();
}

#[tokio::test]
async fn drain_shows_in_status_and_unknown_names_are_refused() {
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let driver = spawn(config(agent.local_addr().unwrap(), &backend_addrs())).await;
    let b1 = &driver.status().services[0].backends[0];
    assert_eq!((b1.admin, b1.eligible), (AdminState::Enabled, true));

    driver
        .set_backend_state("web", "b1", AdminState::Draining)
        .await
        .unwrap();
    // The status is published before the call returns.
    let status = driver.status();
    let b1 = &status.services[0].backends[0];
    assert_eq!((b1.admin, b1.eligible), (AdminState::Draining, false));
    assert!(b1.changed_at.is_some_and(|t| t <= driver.now()));
    assert!(status.services[0].backends[1].eligible);

    assert_eq!(
        driver
            .set_backend_state("web", "b9", AdminState::Disabled)
            .await,
        Err(ControlError::UnknownBackend {
            service: "web".into(),
            backend: "b9".into(),
        })
    );
    assert_eq!(
        driver
            .set_backend_state("mail", "b1", AdminState::Disabled)
            .await,
        Err(ControlError::UnknownService("mail".into()))
    );
    driver.shutdown().await.unwrap();
}

/// Accepts and drops connections until the task is aborted, which closes the listener.
fn serve_tcp(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await.expect("accept on loopback");
        }
    })
}

fn healthy(status: &ManagerStatus, backend: usize) -> bool {
    status.services[0].backends[backend].healthy
}

#[tokio::test]
async fn a_failing_health_check_takes_the_backend_out_until_it_passes_again() {
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = [first.local_addr().unwrap(), second.local_addr().unwrap()];
    let (first, _second) = (serve_tcp(first), serve_tcp(second));
    let check = HealthCheck {
        kind: HealthCheckKind::Tcp,
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 2,
    };
    let driver = ManagerDriver::spawn(ManagerDriverConfig {
        manager: config(agent.local_addr().unwrap(), &addrs),
        health: vec![("web".into(), check)],
    })
    .await
    .unwrap();
    assert!(healthy(&driver.status(), 0), "backends start up");

    first.abort();
    let _ = first.await;
    let status = eventually(&driver, "b1 down", |s| !healthy(s, 0)).await;
    assert!(!status.services[0].backends[0].eligible);
    assert!(healthy(&status, 1));

    let _first = serve_tcp(TcpListener::bind(addrs[0]).await.unwrap());
    eventually(&driver, "b1 up again", |s| healthy(s, 0)).await;
    driver.shutdown().await.unwrap();
}

async fn spawn_error(manager: ManagerConfig, health: Vec<(String, HealthCheck)>) -> DriverError {
    ManagerDriver::spawn(ManagerDriverConfig { manager, health })
        .await
        .expect_err("spawn should refuse this configuration")
}

#[tokio::test]
async fn start_up_errors_name_what_to_fix() {
    let announce: SocketAddr = sock("127.0.0.1:9");
    let good = config(announce, &backend_addrs());
    let tcp = HealthCheck {
        kind: HealthCheckKind::Tcp,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 3,
    };

    let no_announce = ManagerConfig {
        announce: Vec::new(),
        ..good.clone()
    };
    assert!(matches!(
        spawn_error(no_announce, Vec::new()).await,
        DriverError::Config(ConfigError::NoAnnounceAddress)
    ));

    let error = spawn_error(good.clone(), vec![("mail".into(), tcp.clone())]).await;
    assert!(
        matches!(&error, DriverError::HealthCheck { service, .. } if service == "mail"),
        "{error}"
    );

    let never_rises = HealthCheck { rise: 0, ..tcp };
    let error = spawn_error(good.clone(), vec![("web".into(), never_rises)]).await;
    assert!(error.to_string().contains("rise is 0"), "{error}");

    let v6 = ManagerConfig {
        announce: vec![sock("[ff02::1]:4000")],
        ..good.clone()
    };
    assert!(matches!(
        spawn_error(v6, Vec::new()).await,
        DriverError::AnnounceFamily { .. }
    ));

    // 192.0.2.0/24 is for documentation, so no test machine has it.
    let elsewhere = ManagerConfig {
        addr: sock("192.0.2.1:4000"),
        ..good
    };
    let error = spawn_error(elsewhere, Vec::new()).await;
    assert!(
        matches!(&error, DriverError::Socket { action: "bind", .. }),
        "{error}"
    );
    assert!(error.to_string().contains("192.0.2.1:4000"), "{error}");
}

#[tokio::test]
async fn a_multicast_group_among_the_announce_addresses_is_accepted() {
    let mut manager = config(sock("239.255.7.7:4000"), &backend_addrs());
    manager.announce.push(sock("127.0.0.1:9"));
    let driver = spawn(manager).await;
    assert!(driver.status().counters.wildcard_updates_sent > 0);
    driver.shutdown().await.unwrap();
}
