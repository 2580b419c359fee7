//! Configuration parsing and validation: good files load, and every error names its field.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use core::time::Duration;
use std::path::{Path, PathBuf};

use tether::config::{self, ConfigErrors};
use tether_manager::{AdminState, ForwardingMode, SchedulerKind};
use tether_runtime::manager_driver::HealthCheckKind;

const BASE: &str = r#"
[node]
name = "lb1"

[auth]
key = [{ id = 7, secret = "00112233445566778899aabbccddeeff" }]

[agent]
interfaces = ["eth0"]
listen = "10.0.0.1:7400"

[manager]
listen = "10.0.0.1:7401"

[[service]]
name = "web"
vip = "10.0.0.100"
port = 80

[[service.backend]]
name = "a"
address = "10.0.1.1"
port = 8080

[[service]]
name = "dns"
vip = "10.0.0.53"
port = 53
protocol = "udp"
mode = "dsr"

[[service.backend]]
name = "d1"
address = "10.0.1.2"
"#;

fn parse(text: &str) -> Result<config::Config, ConfigErrors> {
    config::parse(text, Path::new("/etc/tether/test.toml"))
}

/// The errors of `text`, which must fail.
fn errors(text: &str) -> Vec<(String, String)> {
    let e = parse(text).expect_err("config must be refused");
    e.errors.into_iter().map(|e| (e.path, e.message)).collect()
}

/// Asserts that `BASE` with `from` replaced by `to` fails at `path` with a message containing
/// `needle`.
fn refused(from: &str, to: &str, path: &str, needle: &str) {
    assert!(BASE.contains(from), "{from:?} is not in BASE");
    let errors = errors(&BASE.replacen(from, to, 1));
    assert!(
        errors.iter().any(|(p, m)| p == path && m.contains(needle)),
        "expected {path}: ...{needle}... in {errors:#?}"
    );
}

#[test]
fn a_full_config_maps_onto_the_runtime_configs() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.roles(), ["manager", "agent"]);
    assert_eq!(c.service_count(), 2);
    assert_eq!(c.admin.to_string(), "127.0.0.1:9090");
    let m = c.manager.unwrap();
    assert_eq!(m.manager.announce, ["10.0.0.1:7400".parse().unwrap()]);
    assert_eq!(m.manager.wildcard_ttl, 30);
    assert_eq!(m.manager.auth.send_key, Some(7));
    assert!(m.manager.auth.require);
    let web = &m.manager.services[0];
    assert_eq!(web.scheduler, SchedulerKind::MAGLEV);
    assert_eq!(web.client_domain, ("0.0.0.0".parse().unwrap(), 0));
    assert_eq!(web.backends[0].state, AdminState::Enabled);
    let dns = &m.manager.services[1];
    assert_eq!(dns.mode, ForwardingMode::Dsr);
    assert_eq!(
        dns.backends[0].port, 53,
        "a backend port defaults to the service port"
    );
    let (a, workers) = c.agent.unwrap();
    assert_eq!(workers, 1);
    assert_eq!(a.interfaces, ["eth0"]);
    assert_eq!(a.agent.name, "lb1");
    assert_eq!(a.steering_table, "tether");
}

#[test]
fn http_health_checks_carry_path_and_status_class() {
    let text = BASE.replacen(
        "[[service.backend]]\nname = \"a\"",
        "[service.health]\nkind = \"http\"\npath = \"/healthz\"\nexpect = \"3xx\"\n\
         interval = \"500ms\"\ntimeout = \"200ms\"\n\n[[service.backend]]\nname = \"a\"",
        1,
    );
    let health = parse(&text).unwrap().manager.unwrap().health;
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].0, "web");
    assert_eq!(
        health[0].1.kind,
        HealthCheckKind::Http {
            path: "/healthz".into(),
            expect_class: 3
        }
    );
    assert_eq!((health[0].1.rise, health[0].1.fall), (2, 3));
}

#[test]
fn a_bad_backend_address_names_its_path_and_an_example() {
    refused(
        "address = \"10.0.1.2\"",
        "address = \"10.0.1\"",
        "service[1].backend[0].address",
        "expected an IPv4 or IPv6 address like 10.0.0.1",
    );
}

#[test]
fn errors_carry_file_line_and_column() {
    let e = parse(&BASE.replacen("port = 8080", "port = \"8080\"", 1)).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with("/etc/tether/test.toml:23:8: service[0].backend[0].port: invalid type"),
        "{shown}"
    );
}

#[test]
fn unknown_fields_are_refused_with_the_known_ones() {
    refused(
        "port = 8080",
        "prot = 8080",
        "service[0].backend[0].prot",
        "expected one of",
    );
    refused(
        "[manager]",
        "[manager]\nttl = 3",
        "manager.ttl",
        "unknown field",
    );
}

#[test]
fn missing_fields_name_their_table() {
    refused(
        "vip = \"10.0.0.100\"\n",
        "",
        "service[0]",
        "missing field `vip`",
    );
}

#[test]
fn enum_values_list_the_choices() {
    refused(
        "protocol = \"udp\"",
        "protocol = \"sctp\"",
        "service[1].protocol",
        "`tcp` or `udp`",
    );
    refused(
        "mode = \"dsr\"",
        "mode = \"tunnel\"",
        "service[1].mode",
        "`nat` or `dsr`",
    );
}

#[test]
fn a_config_without_roles_is_refused() {
    let text = "[node]\nname = \"x\"\n[auth]\nrequire = false\n";
    let errors = errors(text);
    assert!(errors[0].1.contains("no role is configured"), "{errors:?}");
}

#[test]
fn services_need_a_manager() {
    let text = BASE.replacen("[manager]\nlisten = \"10.0.0.1:7401\"", "", 1);
    assert!(
        errors(&text)
            .iter()
            .any(|(p, m)| p == "service" && m.contains("[manager]"))
    );
}

#[test]
fn required_auth_needs_a_key() {
    refused(
        "key = [{ id = 7, secret = \"00112233445566778899aabbccddeeff\" }]",
        "",
        "auth",
        "no key is configured",
    );
    refused(
        "secret = \"0011",
        "secret = \"zz11",
        "auth.key[0].secret",
        "is not hex",
    );
    refused(
        "secret = \"00112233445566778899aabbccddeeff\"",
        "secret = \"0011\"",
        "auth.key",
        "use at least 16 random bytes",
    );
}

#[test]
fn a_missing_key_file_says_how_to_make_one() {
    let text = BASE.replacen("key = [", "key_file = \"nope.key\"\nkeyx = [", 1);
    refused(
        "key = [{ id = 7, secret = \"00112233445566778899aabbccddeeff\" }]",
        "key_file = \"does-not-exist.key\"",
        "auth.key_file",
        "openssl rand -hex 32",
    );
    assert!(parse(&text).is_err());
}

#[test]
fn vip_and_backends_must_share_a_family() {
    refused(
        "address = \"10.0.1.1\"",
        "address = \"2001:db8::1\"",
        "service[0].backend[0].address",
        "VIP's family",
    );
}

#[test]
fn dsr_backends_keep_the_service_port() {
    refused(
        "address = \"10.0.1.2\"",
        "address = \"10.0.1.2\"\nport = 5353",
        "service[1].backend[0].port",
        "DSR cannot rewrite ports",
    );
}

#[test]
fn duplicate_names_point_at_the_second_one() {
    refused(
        "name = \"dns\"",
        "name = \"web\"",
        "service[1].name",
        "used twice",
    );
    let text = BASE.replacen(
        "[[service]]\nname = \"dns\"",
        "[[service.backend]]\nname = \"a\"\naddress = \"10.0.1.9\"\n\n[[service]]\nname = \"dns\"",
        1,
    );
    assert!(
        errors(&text)
            .iter()
            .any(|(p, m)| p == "service[0].backend[1].name" && m.contains("used twice"))
    );
}

#[test]
fn zero_weights_and_bad_domains_are_refused_by_field() {
    refused(
        "port = 8080",
        "port = 8080\nweight = 0",
        "service[0].backend[0].weight",
        "weight is 0",
    );
    refused(
        "port = 80\n",
        "port = 80\nclient_domain = \"10.1.2.3/8\"\n",
        "service[0].client_domain",
        "write it as 10.0.0.0/8",
    );
}

#[test]
fn health_checks_are_checked() {
    let with_health = |health: &str| {
        BASE.replacen(
            "[[service.backend]]\nname = \"a\"",
            &format!("[service.health]\n{health}\n\n[[service.backend]]\nname = \"a\""),
            1,
        )
    };
    for (health, path, needle) in [
        ("rise = 0", "service[0].health.rise", "at least 1"),
        (
            "timeout = \"5s\"",
            "service[0].health.timeout",
            "at most the interval",
        ),
        (
            "kind = \"http\"\nexpect = \"200\"",
            "service[0].health.expect",
            "status class",
        ),
        (
            "kind = \"http\"\npath = \"health\"",
            "service[0].health.path",
            "like \"/healthz\"",
        ),
        (
            "path = \"/\"",
            "service[0].health.path",
            "only to kind = \"http\"",
        ),
        ("interval = \"soon\"", "service[0].health.interval", ""),
    ] {
        let errors = errors(&with_health(health));
        assert!(
            errors.iter().any(|(p, m)| p == path && m.contains(needle)),
            "{health}: expected {path}: {needle} in {errors:#?}"
        );
    }
}

#[test]
fn udp_services_cannot_have_connect_checks() {
    refused(
        "[[service.backend]]\nname = \"d1\"",
        "[service.health]\nkind = \"tcp\"\n\n[[service.backend]]\nname = \"d1\"",
        "service[1].health.kind",
        "the service is UDP",
    );
}

#[test]
fn agent_and_manager_need_their_own_ports() {
    refused(
        "listen = \"10.0.0.1:7401\"",
        "listen = \"10.0.0.1:7400\"",
        "manager.listen",
        "its own port",
    );
    refused(
        "listen = \"10.0.0.1:7400\"",
        "listen = \"10.0.0.1:7400\"\nmulticast_group = \"10.0.0.9:7400\"",
        "agent.multicast_group",
        "not a multicast address",
    );
    refused(
        "interfaces = [\"eth0\"]",
        "interfaces = []",
        "agent.interfaces",
        "is empty",
    );
    refused(
        "interfaces = [\"eth0\"]",
        "interfaces = [\"eth0\"]\nworkers = 17",
        "agent.workers",
        "run 1 to 16",
    );
    refused(
        "interfaces = [\"eth0\"]",
        "interfaces = [\"eth0\"]\nworkers = 2",
        "manager.listen",
        "address of an agent worker",
    );
}

#[test]
fn ttls_are_whole_seconds() {
    refused(
        "[manager]",
        "[manager]\nwildcard_ttl = \"1500ms\"",
        "manager.wildcard_ttl",
        "whole number of seconds",
    );
}

#[test]
fn failover_settings_reach_the_manager() {
    let text = BASE.replacen(
        "[manager]",
        "[manager]\npeers = [\"10.0.0.2:7401\", \"10.0.0.3:7401\"]\nheartbeat_interval = \"50ms\"\n\
         heartbeat_misses = 3\nbackup_precedence = 1",
        1,
    );
    let m = parse(&text).unwrap().manager.unwrap().manager;
    assert_eq!(
        m.peers,
        [
            "10.0.0.2:7401".parse().unwrap(),
            "10.0.0.3:7401".parse().unwrap()
        ]
    );
    assert_eq!(m.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(m.heartbeat_misses, 3);
    assert_eq!(m.backup_precedence, 1);
    let m = parse(BASE).unwrap().manager.unwrap().manager;
    assert!(m.peers.is_empty());
    assert_eq!(m.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(m.heartbeat_misses, 2);
}

#[test]
fn bad_peers_are_refused_by_index() {
    for (peers, index, needle) in [
        (
            "[\"10.0.0.2\"]",
            "manager.peers",
            "expected an address and port like",
        ),
        (
            "[\"[2001:db8::2]:7401\"]",
            "manager.peers[0]",
            "not of the address family",
        ),
        (
            "[\"10.0.0.1:7401\"]",
            "manager.peers[0]",
            "this manager's own manager.listen",
        ),
        (
            "[\"10.0.0.2:7401\", \"10.0.0.2:7401\"]",
            "manager.peers[1]",
            "listed twice",
        ),
        (
            "[\"0.0.0.0:7401\"]",
            "manager.peers[0]",
            "not a unicast address",
        ),
        (
            "[\"239.1.1.1:7401\"]",
            "manager.peers[0]",
            "not a unicast address",
        ),
    ] {
        refused(
            "[manager]",
            &format!("[manager]\npeers = {peers}"),
            index,
            needle,
        );
    }
}

#[test]
fn heartbeat_settings_have_bounds() {
    for (setting, path, needle) in [
        (
            "heartbeat_interval = \"5ms\"",
            "manager.heartbeat_interval",
            "from 10ms to 10s",
        ),
        (
            "heartbeat_interval = \"11s\"",
            "manager.heartbeat_interval",
            "from 10ms to 10s",
        ),
        (
            "heartbeat_interval = \"soon\"",
            "manager.heartbeat_interval",
            "",
        ),
        (
            "heartbeat_misses = 0",
            "manager.heartbeat_misses",
            "use 1 to 100",
        ),
        (
            "heartbeat_misses = 101",
            "manager.heartbeat_misses",
            "use 1 to 100",
        ),
        ("heartbeat_misses = -1", "manager.heartbeat_misses", ""),
    ] {
        refused("[manager]", &format!("[manager]\n{setting}"), path, needle);
    }
    for setting in [
        "heartbeat_interval = \"10ms\"",
        "heartbeat_interval = \"10s\"",
        "heartbeat_misses = 1",
        "heartbeat_misses = 100",
    ] {
        let text = BASE.replacen("[manager]", &format!("[manager]\n{setting}"), 1);
        assert!(parse(&text).is_ok(), "{setting} is refused");
    }
}

#[test]
fn a_bad_peer_error_shows_the_line_of_the_entry() {
    let text = BASE.replacen(
        "[manager]",
        "[manager]\npeers = [\n  \"10.0.0.2:7401\",\n  \"10.0.0.2:7401\",\n]",
        1,
    );
    let shown = parse(&text).unwrap_err().to_string();
    assert!(
        shown.starts_with(
            "/etc/tether/test.toml:15:3: manager.peers[1]: 10.0.0.2:7401 is listed twice"
        ),
        "{shown}"
    );
}

#[test]
fn several_errors_are_reported_together() {
    let text = BASE
        .replacen("interfaces = [\"eth0\"]", "interfaces = []", 1)
        .replacen("name = \"lb1\"", "name = \"\"", 1);
    let paths: Vec<String> = errors(&text).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["node.name", "agent.interfaces"]);
}

#[test]
fn every_example_passes_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = config::load(&path) {
                panic!("{e}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "found only {checked} examples in {}",
        dir.display()
    );
}

#[test]
fn a_key_file_with_an_odd_secret_names_the_line() {
    let dir = std::env::temp_dir().join(format!("tether-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("k.key"), "# comment\n1 0011223\n").unwrap();
    let text = BASE.replacen(
        "key = [{ id = 7, secret = \"00112233445566778899aabbccddeeff\" }]",
        "key_file = \"k.key\"",
        1,
    );
    let e = config::parse(&text, &dir.join("t.toml")).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.errors[0].path, "auth.key_file");
    assert!(
        e.errors[0]
            .message
            .contains("k.key line 2: the secret is not hex with two digits per byte (7 digits)"),
        "{}",
        e.errors[0].message
    );
}

#[test]
fn several_workers_are_all_announced_to_by_default() {
    let text = BASE
        .replacen(
            "interfaces = [\"eth0\"]",
            "interfaces = [\"eth0\"]\nworkers = 3",
            1,
        )
        .replacen(
            "listen = \"10.0.0.1:7401\"",
            "listen = \"10.0.0.1:7410\"",
            1,
        );
    let c = parse(&text).unwrap();
    let (_, workers) = c.agent.unwrap();
    assert_eq!(workers, 3);
    let announce: Vec<String> = c
        .manager
        .unwrap()
        .manager
        .announce
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        announce,
        ["10.0.0.1:7400", "10.0.0.1:7401", "10.0.0.1:7402"]
    );
}
