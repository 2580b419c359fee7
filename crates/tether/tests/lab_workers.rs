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
