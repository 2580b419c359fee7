//! Configuration errors name the service, backend or field at fault, and the fix.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use tether_manager::{
    AdminState, BackendConfig, ConfigError, Decisions, ForwardingMode, Manager, ManagerConfig,
    Protocol, SchedulerKind, ServiceConfig,
};
use tether_proto::codec::AuthConfigError;
use tether_proto::{AuthConfig, Key, Timestamp};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test addresses are valid")
}

fn backend(name: &str, addr: &str) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        addr: ip(addr),
        port: 8080,
        weight: 1,
        state: AdminState::Enabled,
    }
}

fn service(name: &str) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        vip: ip("198.51.100.1"),
        port: 80,
        protocol: Protocol::Tcp,
        client_domain: (ip("0.0.0.0"), 0),
        scheduler: SchedulerKind::MAGLEV,
        mode: ForwardingMode::Nat,
        decisions: Decisions::Manager,
        backends: vec![backend("a", "10.0.0.1"), backend("b", "10.0.0.2")],
    }
}

fn config() -> ManagerConfig {
    ManagerConfig {
        name: "mgr".into(),
        addr: "192.0.2.10:4000".parse().expect("valid"),
        auth: AuthConfig::default(),
        initial_sequence: 0,
        announce: vec!["239.1.1.1:4000".parse::<SocketAddr>().expect("valid")],
        wildcard_ttl: 30,
        fixed_ttl: 60,
        sticky: Duration::from_secs(10),
        service_precedence: None,
        backup_precedence: 0,
        services: vec![service("web")],
        peers: Vec::new(),
        heartbeat_interval: tether_manager::DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_misses: tether_manager::DEFAULT_HEARTBEAT_MISSES,
    }
}

/// A change that breaks the configuration.
type Change = fn(&mut ManagerConfig);

/// The error `change` causes, with its message.
fn error(change: impl FnOnce(&mut ManagerConfig)) -> (ConfigError, String) {
    let mut cfg = config();
    change(&mut cfg);
    let err = Manager::new(cfg, Timestamp::ZERO).expect_err("the change makes the config invalid");
    let text = err.to_string();
    (err, text)
}

#[test]
fn a_valid_configuration_starts() {
    assert!(Manager::new(config(), Timestamp::ZERO).is_ok());
}

#[test]
fn backend_errors_name_the_service_the_backend_and_the_fix() {
    let (err, text) = error(|c| c.services[0].backends[1].weight = 0);
    assert!(
        matches!(err, ConfigError::Backend { ref service, ref backend, .. }
        if service == "web" && backend == "b")
    );
    assert!(
        text.contains("weight is 0") && text.contains("draining or disabled"),
        "{text}"
    );

    let (_, text) = error(|c| c.services[0].backends[1].addr = ip("2001:db8::1"));
    assert!(
        text.contains("backend \"b\"") && text.contains("family"),
        "{text}"
    );

    let (_, text) = error(|c| c.services[0].backends[1].name = "a".into());
    assert!(
        text.contains("backend \"a\"") && text.contains("used twice"),
        "{text}"
    );

    let (_, text) = error(|c| c.services[0].backends[1].addr = ip("10.0.0.1"));
    assert!(text.contains("also backend \"a\""), "{text}");

    let (_, text) = error(|c| c.services[0].mode = ForwardingMode::Dsr);
    assert!(text.contains("set port = 80 or use mode = nat"), "{text}");
}

#[test]
fn service_errors_name_the_field_at_fault() {
    let cases: [(Change, &str); 7] = [
        (
            |c| c.services[0].client_domain = (ip("::"), 0),
            "client_domain",
        ),
        (
            |c| c.services[0].client_domain = (ip("10.1.0.0"), 8),
            "write it as 10.0.0.0/8",
        ),
        (
            |c| c.services[0].client_domain = (ip("10.0.0.0"), 33),
            "prefix length 33",
        ),
        (|c| c.services[0].port = 0, "port is 0"),
        (|c| c.services[0].vip = ip("0.0.0.0"), "vip is 0.0.0.0"),
        (|c| c.services[0].backends.clear(), "has no backends"),
        (
            |c| c.services[0].scheduler = SchedulerKind::Maglev { table_size: 65_536 },
            "table_size 65536 must be a prime",
        ),
    ];
    for (change, needle) in cases {
        let (err, text) = error(change);
        assert!(matches!(err, ConfigError::Service { ref service, .. } if service == "web"));
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
}

#[test]
fn manager_errors_name_the_field_at_fault() {
    assert_eq!(
        error(|c| c.wildcard_ttl = 0).0,
        ConfigError::ZeroTtl {
            field: "wildcard_ttl"
        }
    );
    assert_eq!(
        error(|c| c.fixed_ttl = 0).0,
        ConfigError::ZeroTtl { field: "fixed_ttl" }
    );
    assert_eq!(
        error(|c| c.announce.clear()).0,
        ConfigError::NoAnnounceAddress
    );
    assert_eq!(
        error(|c| c.auth.send_key = Some(7)).0,
        ConfigError::Auth(AuthConfigError::SendKeyMissing(7))
    );
    let short = Key {
        id: 1,
        secret: vec![0; 8],
    };
    assert_eq!(
        error(|c| c.auth.keys.push(short)).0,
        ConfigError::Auth(AuthConfigError::ShortSecret { id: 1, len: 8 })
    );
    assert_eq!(
        error(|c| c.name = "x".repeat(256)).0,
        ConfigError::NameTooLong(256)
    );
}

#[test]
fn services_that_would_claim_the_same_flows_are_refused() {
    let (err, _) = error(|c| c.services.push(service("web")));
    assert_eq!(err, ConfigError::DuplicateService("web".into()));

    let (err, text) = error(|c| {
        let mut other = service("web-eu");
        other.client_domain = (ip("10.0.0.0"), 8);
        other.backends = vec![backend("x", "10.9.0.1")];
        c.services.push(other);
    });
    assert!(matches!(err, ConfigError::OverlappingServices { .. }));
    assert!(text.contains("\"web\" and \"web-eu\""), "{text}");

    let (err, _) = error(|c| {
        let mut other = service("api");
        other.vip = ip("198.51.100.2");
        c.services.push(other);
    });
    assert!(matches!(
        err,
        ConfigError::SharedNatBackend { port: 8080, .. }
    ));

    // Disjoint client domains may share a VIP and backends.
    let mut cfg = config();
    cfg.services[0].client_domain = (ip("10.0.0.0"), 8);
    let mut other = service("web-eu");
    other.client_domain = (ip("11.0.0.0"), 8);
    cfg.services.push(other);
    assert!(Manager::new(cfg, Timestamp::ZERO).is_ok());
}
