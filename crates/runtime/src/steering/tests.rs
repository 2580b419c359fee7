//! Golden rulesets.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tether_proto::{UNSPECIFIED_V4, WildcardAffinity};

use super::*;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn wildcard(
    protocol: u8,
    src: (IpAddr, IpAddr, u16),
    dst: (IpAddr, IpAddr, u16),
) -> WildcardAffinity {
    WildcardAffinity {
        protocol,
        src: src.0,
        src_mask: src.1,
        src_port: src.2,
        dst: dst.0,
        dst_mask: dst.1,
        dst_port: dst.2,
        dispatch: false,
        information: false,
        forward: UNSPECIFIED_V4,
        ttl: 30,
    }
}

const ANY4: (IpAddr, IpAddr, u16) = (UNSPECIFIED_V4, UNSPECIFIED_V4, 0);

#[test]
fn no_wildcards_only_delete_the_table() {
    let r = ruleset("tether", &["eth0".into()], 7000..=7000, &[], []);
    assert_eq!(r.text, "table netdev tether\ndelete table netdev tether\n");
    assert_eq!((r.rules, r.icmp_v4, r.icmp_v6), (0, false, false));
}

#[test]
fn a_vip_wildcard_steers_its_port_and_icmp_errors_on_every_interface() {
    let vip = wildcard(17, ANY4, (v4([10, 9, 0, 1]), v4([255; 4]), 53));
    let r = ruleset(
        "t1",
        &["eth0".into(), "eth1".into()],
        7000..=7000,
        &[],
        [&vip],
    );
    let chain = |i: usize, dev: &str| {
        format!(
            "\tchain ingress_{i} {{\n\
             \t\ttype filter hook ingress device \"{dev}\" priority 0; policy accept;\n\
             \t\tudp dport 7000 accept\n\
             \t\tmeta protocol ip icmp type {{ destination-unreachable, time-exceeded, parameter-problem }} counter drop\n\
             \t\tmeta protocol ip ip daddr 10.9.0.1 meta l4proto udp th dport 53 counter drop\n\
             \t}}\n"
        )
    };
    let expected = format!(
        "table netdev t1\ndelete table netdev t1\ntable netdev t1 {{\n{}{}}}\n",
        chain(0, "eth0"),
        chain(1, "eth1")
    );
    assert_eq!(r.text, expected);
    assert_eq!((r.rules, r.icmp_v4, r.icmp_v6), (6, true, false));
}

#[test]
fn traffic_to_the_hosts_own_addresses_is_accepted_before_any_drop() {
    let ret = wildcard(6, (v4([10, 9, 11, 2]), v4([255; 4]), 8080), ANY4);
    let local = [
        v4([10, 9, 11, 1]),
        v4([127, 0, 0, 1]),
        "fd09:11::1".parse().unwrap(),
    ];
    let r = ruleset("t", &["eth0".into()], 7000..=7000, &local, [&ret]);
    let lines: Vec<&str> = r.text.lines().map(str::trim).collect();
    let at = |needle: &str| lines.iter().position(|l| l.starts_with(needle)).unwrap();
    assert_eq!(
        lines[at("meta protocol ip ip daddr {")],
        "meta protocol ip ip daddr { 10.9.11.1, 127.0.0.1 } accept"
    );
    assert_eq!(
        lines[at("meta protocol ip6 ip6 daddr {")],
        "meta protocol ip6 ip6 daddr { fd09:11::1 } accept"
    );
    assert!(
        at("meta protocol ip ip daddr {") < at("meta protocol ip ip saddr 10.9.11.2"),
        "accept before drop"
    );
}

#[test]
fn masks_become_prefixes_or_bitwise_matches() {
    let w = wildcard(
        6,
        (v4([192, 168, 7, 9]), v4([255, 255, 255, 0]), 0),
        (v4([10, 1, 2, 3]), v4([255, 0, 255, 0]), 0),
    );
    assert_eq!(
        wildcard_rule(&w),
        "meta protocol ip ip saddr 192.168.0.0/24 ip daddr & 255.0.255.0 == 10.0.2.0 \
         meta l4proto tcp counter drop"
            .replace("192.168.0.0", "192.168.7.0")
    );
}

#[test]
fn a_return_wildcard_matches_source_address_and_port() {
    let w = wildcard(17, (v4([10, 0, 3, 2]), v4([255; 4]), 8080), ANY4);
    assert_eq!(
        wildcard_rule(&w),
        "meta protocol ip ip saddr 10.0.3.2 meta l4proto udp th sport 8080 counter drop"
    );
}

#[test]
fn any_protocol_with_ports_means_tcp_or_udp_and_no_ports_means_everything() {
    let with_port = wildcard(0, ANY4, (v4([10, 9, 0, 1]), v4([255; 4]), 80));
    assert_eq!(
        wildcard_rule(&with_port),
        "meta protocol ip ip daddr 10.9.0.1 meta l4proto { tcp, udp } th dport 80 counter drop"
    );
    let all = wildcard(0, ANY4, (v4([10, 9, 0, 1]), v4([255; 4]), 0));
    assert_eq!(
        wildcard_rule(&all),
        "meta protocol ip ip daddr 10.9.0.1 counter drop"
    );
    let icmp = wildcard(1, ANY4, ANY4);
    assert_eq!(
        wildcard_rule(&icmp),
        "meta protocol ip meta l4proto 1 counter drop"
    );
}

#[test]
fn ipv6_wildcards_steer_icmpv6_errors() {
    let vip: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let w = wildcard(
        6,
        (any6, any6, 0),
        (
            IpAddr::V6(vip),
            IpAddr::V6(Ipv6Addr::from_bits(u128::MAX)),
            443,
        ),
    );
    let r = ruleset("t6", &["eth0".into()], 7000..=7000, &[], [&w]);
    assert!(r.icmp_v6 && !r.icmp_v4);
    assert!(r.text.contains(
        "\t\tmeta protocol ip6 icmpv6 type { destination-unreachable, packet-too-big, \
         time-exceeded, parameter-problem } counter drop\n"
    ));
    assert!(r.text.contains(
        "\t\tmeta protocol ip6 ip6 daddr 2001:db8::1 meta l4proto tcp th dport 443 counter drop\n"
    ));
    let half = wildcard(
        6,
        (any6, IpAddr::V6(Ipv6Addr::from_bits(!0 << 64)), 0),
        (any6, any6, 0),
    );
    assert_eq!(
        address_match(w.dst, half.src_mask),
        Some("2001:db8::/64".to_owned())
    );
}

#[test]
fn identical_wildcards_of_two_managers_give_one_rule() {
    let a = wildcard(17, ANY4, (v4([10, 9, 0, 1]), v4([255; 4]), 53));
    let r = ruleset("t", &["eth0".into()], 7000..=7000, &[], [&a, &a.clone()]);
    assert_eq!(r.rules, 3);
}

#[test]
fn a_vip_on_the_host_stays_the_agents_while_other_host_addresses_are_the_kernels() {
    let vip = wildcard(6, ANY4, (v4([10, 73, 0, 1]), v4([255; 4]), 80));
    let ret = wildcard(6, (v4([10, 9, 11, 2]), v4([255; 4]), 8080), ANY4);
    let host = [v4([10, 73, 0, 1]), v4([10, 9, 11, 1]), v4([127, 0, 0, 1])];
    assert_eq!(
        kernel_owned(&host, [&vip, &ret]),
        vec![v4([10, 9, 11, 1]), v4([127, 0, 0, 1])]
    );
}
