//! Next-hop resolution against the kernel's routing and neighbour tables.

mod packet_support;

use std::net::IpAddr;
use std::time::Duration;

use packet_support::{Lab, in_netns, run};
use tether_agent::Route;
use tether_proto::Timestamp;
use tether_runtime::neigh::{Resolution, Resolver};
use tether_runtime::netlink::Netlink;

fn route(addr: &str) -> Route {
    Route {
        next_hop: addr.parse().expect("a test address"),
        dispatched: false,
    }
}

#[test]
fn resolver_finds_the_peer_mac_directly_and_through_a_gateway() {
    let mut lab = Lab::new("nb");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.72.0.1/24", &b, &b_if, "10.72.0.2/24");
    run(
        "ip",
        &["-n", &a, "route", "add", "192.0.2.0/24", "via", "10.72.0.2"],
    );

    let b_if2 = b_if.clone();
    let peer_mac = in_netns(&b, move || {
        Netlink::open()
            .unwrap()
            .link_by_name(&b_if2)
            .unwrap()
            .unwrap()
            .mac
    });
    let (direct, routed, gateway, unroutable, a_link) = in_netns(&a, move || {
        let mut nl = Netlink::open().unwrap();
        let a_link = nl.link_by_name(&a_if).unwrap().unwrap();
        let gateway = nl.route("192.0.2.7".parse().unwrap()).unwrap().unwrap();
        let mut resolver = Resolver::new().unwrap();
        let mut now = Timestamp::ZERO;
        let mut wait_ready = |r: Route| {
            for _ in 0..200 {
                match resolver.resolve(now, r) {
                    Resolution::Ready(hop) => return Some(hop),
                    Resolution::Pending => {}
                    Resolution::NoRoute => return None,
                }
                std::thread::sleep(Duration::from_millis(5));
                now += Duration::from_millis(5);
            }
            None
        };
        let direct = wait_ready(route("10.72.0.2"));
        let routed = wait_ready(route("192.0.2.7"));
        let unroutable = resolver.resolve(now, route("203.0.113.9"));
        (direct, routed, gateway, unroutable, a_link)
    });
    let direct = direct.expect("the peer on the veth resolves");
    assert_eq!(Some(direct.dst_mac), peer_mac);
    assert_eq!(Some(direct.src_mac), a_link.mac);
    assert_eq!((direct.ifindex, direct.mtu), (a_link.index, 1500));
    assert_eq!(
        routed,
        Some(direct),
        "a routed address resolves to its gateway's MAC"
    );
    assert_eq!(
        gateway.gateway,
        Some("10.72.0.2".parse::<IpAddr>().unwrap())
    );
    assert_eq!(gateway.oif, a_link.index);
    assert_eq!(unroutable, Resolution::NoRoute);
}
