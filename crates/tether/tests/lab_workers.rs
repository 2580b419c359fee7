//! Two agent workers on one node share the data interfaces through a PACKET_FANOUT group; the
//! manager announces to both, and connections through either are translated.

mod netlab;

use netlab::{Testbed, VIP4, service, spread};
use serde_json::Value;

#[test]
fn two_workers_share_the_traffic_and_serve_every_connection() {
    let mut tb = Testbed::new("workers", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    tb.start_tether_workers(&service("web", VIP4, 80, "nat", "wrr", [1, 1, 1], false), 2);
    let bodies = tb.curl(&format!("http://{VIP4}/"), 300, &["--fail"]);
    let counts = spread(&bodies);
    assert!(
        counts.iter().all(|c| (85..=115).contains(c)),
        "spread over the backends: {counts:?}"
    );
    let out = tb.client_run(&["wrk", "-t2", "-c50", "-d3s", &format!("http://{VIP4}/")]);
    assert!(
        !out.contains("Socket errors") && !out.contains("Non-2xx"),
        "wrk: {out}"
    );

    // Both workers received the wildcards (their affinity counts are summed in status).
    let status = tb.status();
    let wildcards = status
        .pointer("/agent/wildcard_affinities")
        .and_then(Value::as_u64);
    assert_eq!(
        wildcards,
        Some(2 * 4),
        "forward + three return wildcards, on each worker: {status}"
    );
    tb.stop_tether();
}

/// Transmitted packets of `dev` on `host` so far (`/sys/class/net`).
fn tx_packets(host: &tether_lab::netns::Host, dev: &str) -> u64 {
    let out = host
        .output(&[
            "cat",
            &format!("/sys/class/net/{dev}/statistics/tx_packets"),
        ])
        .expect("cat runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a packet count")
}

/// With several workers in one fanout group, a worker must not receive the frames the node
/// sends: in DSR mode a forwarded frame still goes to the VIP, so a worker that saw it would
/// forward it again, in a loop.
#[test]
fn two_workers_in_dsr_mode_forward_each_packet_once() {
    let mut tb = Testbed::new("workersdsr", None);
    tb.start_dsr_backends();
    tb.start_tether_workers(&service("web", VIP4, 80, "dsr", "wrr", [1, 1, 1], false), 2);
    let forwarded = |tb: &Testbed| {
        tb.status()
            .pointer("/agent/forwarded")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let (client_before, forwarded_before) =
        (tx_packets(&tb.client, &tb.client_iface()), forwarded(&tb));
    let bodies = tb.curl(&format!("http://{VIP4}/"), 60, &["--fail"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = tx_packets(&tb.client, &tb.client_iface()) - client_before;
    let through = forwarded(&tb) - forwarded_before;
    assert!(
        through <= sent,
        "the agent forwarded {through} packets of the {sent} the client sent: it forwarded its \
         own output again"
    );
    assert!(
        through >= 60 * 3,
        "every request crossed the agent: {through}"
    );
    assert_eq!(spread(&bodies), [20, 20, 20], "round robin in DSR mode");
    tb.stop_tether();
}
