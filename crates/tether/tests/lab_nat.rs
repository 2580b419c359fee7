//! NAT mode over IPv4 and IPv6 with nginx backends, curl and wrk as clients.

mod netlab;

use netlab::{Testbed, VIP4, VIP6, service, spread};

/// `lo..=hi` holds `value`.
fn within(value: usize, lo: usize, hi: usize) -> bool {
    (lo..=hi).contains(&value)
}

#[test]
fn nat_ipv4_spreads_connections_by_weight_and_serves_wrk_without_errors() {
    let mut tb = Testbed::new("natv4", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    let services = service("web", VIP4, 80, "nat", "wrr", [1, 1, 1], false)
        + &service("weighted", VIP4, 81, "nat", "wrr", [1, 2, 3], false);
    tb.start_tether(&services);

    let bodies = tb.curl(&format!("http://{VIP4}/"), 300, &["--fail"]);
    assert_eq!(bodies.len(), 300, "every request answered 200");
    let counts = spread(&bodies);
    assert!(
        counts.iter().all(|c| within(*c, 85, 115)),
        "equal weights: {counts:?}"
    );

    let bodies = tb.curl(&format!("http://{VIP4}:81/"), 300, &["--fail"]);
    assert_eq!(bodies.len(), 300);
    let counts = spread(&bodies);
    // Shares of 1/6, 2/6 and 3/6, each within 10 % of itself.
    assert!(
        within(counts[0], 45, 55) && within(counts[1], 90, 110) && within(counts[2], 135, 165),
        "weights 1:2:3: {counts:?}"
    );

    let out = tb.client_run(&["wrk", "-t2", "-c50", "-d10s", &format!("http://{VIP4}/")]);
    assert!(out.contains("requests in"), "wrk ran: {out}");
    assert!(
        !out.contains("Socket errors"),
        "wrk saw socket errors: {out}"
    );
    assert!(!out.contains("Non-2xx"), "wrk saw non-2xx answers: {out}");
    eprintln!("wrk through Tether NAT:\n{out}");

    let status = tb.status_text();
    assert!(
        status.contains("web") && status.contains("b1"),
        "status table: {status}"
    );
    tb.stop_tether();
}

#[test]
fn nat_ipv6_serves_curl() {
    let mut tb = Testbed::new("natv6", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    tb.start_tether(&service("web6", VIP6, 80, "nat", "wrr", [1, 1, 1], true));
    let bodies = tb.curl(&format!("http://[{VIP6}]/"), 30, &["-6", "--fail"]);
    assert_eq!(spread(&bodies), [10, 10, 10], "round robin over IPv6");
    tb.stop_tether();
}
