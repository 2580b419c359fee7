//! Namespace topologies: reachability over veths, routers and bridges, VIPs on `lo`, and
//! clean-up. These need root.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot build its topology should fail loudly"
)]

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use tether_lab::StopFlag;
use tether_lab::netns::{Host, Lab, LinkSpec, Process, Transport};
use tether_lab::stream::{self, StreamClientConfig, StreamReport};

/// Names the traffic program [`traffic_program`] runs when this binary is started inside a
/// namespace.
const PROGRAM: &str = "TETHER_LAB_TEST_PROGRAM";

/// Not a test: the namespace tests start this test binary inside a namespace to run one
/// traffic program there, as the `tether lab …` subcommands will.
#[test]
#[ignore = "started by the namespace tests inside a namespace"]
fn traffic_program() {
    let Ok(program) = std::env::var(PROGRAM) else {
        return;
    };
    match program.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["stream-server", listen, name] => {
            stream::serve(listen.parse().unwrap(), name, &StopFlag::new()).unwrap();
        }
        ["stream-client", target, streams, bytes] => {
            let mut config = StreamClientConfig::new(target.parse().unwrap());
            config.streams = streams.parse().unwrap();
            config.bytes_per_stream = bytes.parse().unwrap();
            println!("REPORT {}", stream::run(&config).to_json());
        }
        _ => panic!("unknown traffic program `{program}`"),
    }
}

/// Starts [`traffic_program`] inside `host`.
fn start_program(host: &Host, program: &str) -> Process {
    let exe = std::env::current_exe().unwrap();
    host.spawn(&[
        "env",
        &format!("{PROGRAM}={program}"),
        exe.to_str().unwrap(),
        "--exact",
        "traffic_program",
        "--ignored",
        "--nocapture",
    ])
    .unwrap()
}

/// Runs a stream client program inside `host` to completion and reads its report.
fn stream_client(host: &Host, target: &str, streams: u32, bytes: u64) -> StreamReport {
    let mut client = start_program(host, &format!("stream-client {target} {streams} {bytes}"));
    let status = client.wait_timeout(Duration::from_mins(1)).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{}", client.stderr());
    let stdout = client.stdout();
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    StreamReport::from_json(json).unwrap()
}

fn reaches(from: &Host, to: &str) -> bool {
    let out = from
        .output(&["ping", "-c1", "-W1", to])
        .expect("ping is installed (iputils-ping)");
    out.status.success()
}

fn ip(addr: &str) -> IpAddr {
    addr.parse().unwrap()
}

fn lab_namespaces_left(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(&format!("{prefix}-")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn veth_pair_carries_ipv4_and_ipv6() {
    let lab = Lab::new("veth").unwrap();
    let a = lab.host("a").unwrap();
    let b = lab.host("b").unwrap();
    let link = lab
        .link(
            &a,
            &b,
            LinkSpec {
                a_addrs: &["10.9.0.1/24", "fd09::1/64"],
                b_addrs: &["10.9.0.2/24", "fd09::2/64"],
                mtu: Some(1400),
            },
        )
        .unwrap();
    assert!(link.a_dev.len() <= 15 && link.b_dev.len() <= 15);
    assert!(reaches(&a, "10.9.0.2"));
    assert!(reaches(&b, "fd09::1"));
    let shown = b.ip(&["link", "show", "dev", &link.b_dev]).unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("mtu 1400"));
    assert!(a.netns_path().exists());
}

#[test]
fn host_routed_through_a_router_reaches_the_far_side() {
    let lab = Lab::new("route").unwrap();
    let client = lab.host("client").unwrap();
    let router = lab.host("router").unwrap();
    let server = lab.host("server").unwrap();
    router.enable_forwarding().unwrap();
    lab.link(
        &client,
        &router,
        LinkSpec {
            a_addrs: &["10.1.0.2/24", "fd01::2/64"],
            b_addrs: &["10.1.0.1/24", "fd01::1/64"],
            mtu: None,
        },
    )
    .unwrap();
    let far = lab
        .link(
            &router,
            &server,
            LinkSpec {
                a_addrs: &["10.2.0.1/24", "fd02::1/64"],
                b_addrs: &["10.2.0.2/24", "fd02::2/64"],
                mtu: None,
            },
        )
        .unwrap();
    assert!(!reaches(&client, "10.2.0.2"), "no route yet");
    client.default_route(ip("10.1.0.1")).unwrap();
    client.default_route(ip("fd01::1")).unwrap();
    server
        .route("10.1.0.0/24", Some(ip("10.2.0.1")), Some(&far.b_dev))
        .unwrap();
    server
        .route("fd01::/64", Some(ip("fd02::1")), None)
        .unwrap();
    assert!(reaches(&client, "10.2.0.2"));
    assert!(reaches(&client, "fd02::2"));
}

#[test]
fn vip_on_lo_answers_without_claiming_it_by_arp() {
    let lab = Lab::new("vip").unwrap();
    let client = lab.host("client").unwrap();
    let backend = lab.host("backend").unwrap();
    lab.link(
        &client,
        &backend,
        LinkSpec {
            a_addrs: &["10.3.0.1/24", "fd03::1/64"],
            b_addrs: &["10.3.0.2/24", "fd03::2/64"],
            mtu: None,
        },
    )
    .unwrap();
    backend.add_vip_on_lo(ip("192.0.2.10")).unwrap();
    backend.add_vip_on_lo(ip("2001:db8::10")).unwrap();
    client
        .route("192.0.2.10/32", Some(ip("10.3.0.2")), None)
        .unwrap();
    client
        .route("2001:db8::10/128", Some(ip("fd03::2")), None)
        .unwrap();
    assert!(reaches(&client, "192.0.2.10"));
    assert!(reaches(&client, "2001:db8::10"));
    let arp_ignore = backend
        .exec(&["sysctl", "-n", "net.ipv4.conf.all.arp_ignore"])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&arp_ignore.stdout).trim(), "1");
}

#[test]
fn bridge_joins_three_hosts_on_one_segment() {
    let lab = Lab::new("bridge").unwrap();
    let switch = lab.host("switch").unwrap();
    let bridge = lab.bridge(&switch, "br0").unwrap();
    let hosts: Vec<Host> = (1..=3)
        .map(|i| {
            let host = lab.host(&format!("h{i}")).unwrap();
            let v4 = format!("10.4.0.{i}/24");
            let v6 = format!("fd04::{i}/64");
            lab.join(&bridge, &host, &[&v4, &v6]).unwrap();
            host
        })
        .collect();
    assert_eq!(bridge.name(), "br0");
    switch.add_addr("br0", "10.4.0.254/24").unwrap();
    assert!(reaches(&switch, "10.4.0.1"), "the bridge's own address");
    for (i, from) in hosts.iter().enumerate() {
        for j in 1..=3 {
            if j != i + 1 {
                assert!(reaches(from, &format!("10.4.0.{j}")), "h{} -> h{j}", i + 1);
                assert!(
                    reaches(from, &format!("fd04::{j}")),
                    "h{} -> h{j} v6",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn dropping_the_lab_removes_its_namespaces_and_processes() {
    let lab = Lab::new("drop").unwrap();
    let a = lab.host("a").unwrap();
    let b = lab.host("b").unwrap();
    let mut sleeper = a.spawn(&["sleep", "600"]).unwrap();
    // Started outside any guard of ours: only the lab's clean-up can end it.
    let orphan = b
        .output(&["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"])
        .unwrap();
    let orphan: u32 = String::from_utf8_lossy(&orphan.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sleeper.try_wait().unwrap(), None);
    let prefix = lab.prefix().to_owned();
    assert_eq!(lab_namespaces_left(&prefix).len(), 2);
    drop(lab);
    assert!(lab_namespaces_left(&prefix).is_empty());
    assert!(
        sleeper
            .wait_timeout(Duration::from_secs(5))
            .unwrap()
            .is_some()
    );
    let orphan_state = std::fs::read_to_string(format!("/proc/{orphan}/stat")).unwrap_or_default();
    assert!(
        orphan_state.is_empty() || orphan_state.contains(") Z "),
        "orphan {orphan} still runs: {orphan_state}"
    );
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::new("panic").unwrap();
        lab.host("a").unwrap();
        panic!("{}", lab.prefix());
    });
    let prefix = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(lab_namespaces_left(&prefix).is_empty());
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed_and_live_ones_kept() {
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = format!("tstalecheck-{}-0-a", gone.id());
    let status = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(status.success());
    let live = Lab::new("stalecheck").unwrap();
    live.host("a").unwrap();
    let removed = Lab::cleanup_stale("stalecheck").unwrap();
    assert_eq!(removed, vec![stale.clone()]);
    assert!(lab_namespaces_left(&stale).is_empty());
    assert_eq!(lab_namespaces_left(live.prefix()).len(), 1);
}

#[test]
fn a_spawned_process_reports_its_output_and_stops_on_signal() {
    let lab = Lab::new("proc").unwrap();
    let a = lab.host("a").unwrap();
    let mut echo = a.spawn(&["sh", "-c", "echo out; echo err >&2"]).unwrap();
    let status = echo.wait_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(status.success());
    assert_eq!(echo.stdout(), "out\n");
    assert_eq!(echo.stderr(), "err\n");
    let mut sleeper = a.spawn(&["sleep", "600"]).unwrap();
    sleeper.kill("KILL").unwrap();
    assert!(
        sleeper
            .wait_timeout(Duration::from_secs(5))
            .unwrap()
            .is_some()
    );
    let err = a
        .exec(&["ip", "link", "set", "nosuchdev", "up"])
        .unwrap_err();
    assert!(err.to_string().contains("nosuchdev"), "{err}");
}

#[test]
fn streams_between_namespaces_complete_over_ipv4_and_ipv6() {
    let lab = Lab::new("streams").unwrap();
    let client = lab.host("client").unwrap();
    let server = lab.host("server").unwrap();
    lab.link(
        &client,
        &server,
        LinkSpec {
            a_addrs: &["10.5.0.1/24", "fd05::1/64"],
            b_addrs: &["10.5.0.2/24", "fd05::2/64"],
            mtu: None,
        },
    )
    .unwrap();
    let _server = start_program(&server, "stream-server [::]:7000 backend1");
    server
        .wait_listening(Transport::Tcp, 7000, Duration::from_secs(10))
        .unwrap();
    for target in ["10.5.0.2:7000", "[fd05::2]:7000"] {
        let report = stream_client(&client, target, 4, 1 << 20);
        assert!(report.all_complete(), "{report}");
        assert_eq!(report.servers().get("backend1"), Some(&4), "{report}");
        assert_eq!(report.bytes_verified(), 4 << 20);
    }
}
