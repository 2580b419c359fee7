//! Health checks take a stopped backend out of new flows within fall × interval + 1 s and bring
//! it back after `rise` successes; `tether status` shows it.
#![allow(
    clippy::disallowed_types,
    reason = "the test measures how long real health checks take"
)]

mod netlab;

use std::time::{Duration, Instant};

use netlab::{Testbed, VIP4, service, spread};
use serde_json::Value;

/// Whether the status JSON says backend `name` of service `web` is healthy.
fn healthy(status: &Value, name: &str) -> Option<bool> {
    let services = status.pointer("/manager/services")?.as_array()?;
    let web = services.iter().find(|s| s["name"] == "web")?;
    let backend = web["backends"]
        .as_array()?
        .iter()
        .find(|b| b["name"] == name)?;
    backend["healthy"].as_bool()
}

/// Polls until backend `name`'s health is `up`; the time it took.
fn wait_health(tb: &Testbed, name: &str, up: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if healthy(&tb.status(), name) == Some(up) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{name} not {} after {limit:?}: {}",
            if up { "up" } else { "down" },
            tb.status()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stopped_backend_leaves_new_flows_and_returns_after_rise_successes() {
    let mut tb = Testbed::new("health", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    // interval 500 ms, fall 2, rise 2 (see netlab::service).
    tb.start_tether(&service("web", VIP4, 80, "nat", "wrr", [1, 1, 1], false));
    assert_eq!(healthy(&tb.status(), "b2"), Some(true));

    tb.stop_nginx(2);
    let took = wait_health(&tb, "b2", false, Duration::from_secs(10));
    eprintln!("b2 marked down {took:?} after nginx stopped (bound: fall 2 x 500 ms + 1 s)");
    // The bound of the acceptance (fall × interval + 1 s = 2 s), plus up to 500 ms for this
    // poll's own `tether status` round trips and the agent's status publication period.
    assert!(
        took <= Duration::from_secs(2) + Duration::from_millis(500),
        "down detection took {took:?}"
    );
    let text = tb.status_text();
    assert!(
        text.contains("down"),
        "tether status shows the backend down:\n{text}"
    );
    let counts = spread(&tb.curl(&format!("http://{VIP4}/"), 40, &["--fail"]));
    assert_eq!(counts[1], 0, "no new flow goes to b2: {counts:?}");
    assert_eq!(counts[0] + counts[2], 40);

    tb.start_nginx(2, &[]);
    let took = wait_health(&tb, "b2", true, Duration::from_secs(10));
    eprintln!("b2 back up {took:?} after nginx restarted (rise 2 x 500 ms)");
    let counts = spread(&tb.curl(&format!("http://{VIP4}/"), 30, &["--fail"]));
    assert!(counts[1] > 0, "b2 takes new flows again: {counts:?}");
    tb.stop_tether();
}
