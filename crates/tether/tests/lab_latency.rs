//! Latency through the agent in NAT mode: TCP connect times of new connections (curl), and
//! keep-alive and connection-per-request HTTP (wrk). The figures are printed, never asserted
//! (the machine is shared); the test fails only if requests fail.

mod netlab;

use netlab::{Testbed, VIP4, service};

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    values[i]
}

/// Runs wrk from the client and returns its report, checked for errors.
fn wrk(tb: &Testbed, args: &[&str]) -> String {
    let url = format!("http://{VIP4}/");
    let mut all = vec!["wrk", "--latency"];
    all.extend_from_slice(args);
    all.push(&url);
    let out = tb.client_run(&all);
    assert!(out.contains("requests in"), "wrk ran: {out}");
    assert!(!out.contains("Non-2xx"), "wrk saw non-2xx answers: {out}");
    assert!(
        !out.contains("Socket errors"),
        "wrk saw socket errors: {out}"
    );
    out
}

/// wrk's `Requests/sec` and its 50 % and 99 % latency lines.
fn wrk_summary(out: &str) -> String {
    out.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Requests/sec") || l.starts_with("50%") || l.starts_with("99%")
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn nat_latency_of_connects_and_requests_is_printed() {
    let mut tb = Testbed::new("lat", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    tb.start_tether(&service("web", VIP4, 80, "nat", "wrr", [1, 1, 1], false));

    // New connections one after another: each is a new flow (SYN to the manager) and waits
    // for every hop of the handshake on the agent's rings.
    let mut connect = Vec::new();
    let mut total = Vec::new();
    for _ in 0..4 {
        let url = format!("http://{VIP4}/");
        let mut args = vec![
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "-H",
            "Connection: close",
            "-w",
            "time %{time_connect} %{time_total}\\n",
        ];
        args.extend(std::iter::repeat_n(url.as_str(), 50));
        let out = tb.client_run(&args);
        // Each response body (`bK`) is followed by its timing line.
        for line in out.lines().filter_map(|l| l.strip_prefix("time ")) {
            let mut fields = line.split_whitespace().map(str::parse::<f64>);
            match (fields.next(), fields.next()) {
                (Some(Ok(c)), Some(Ok(t))) => {
                    connect.push(c * 1000.0);
                    total.push(t * 1000.0);
                }
                _ => panic!("unexpected curl output {line:?}"),
            }
        }
    }
    assert_eq!(connect.len(), 200, "every request answered");
    connect.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    eprintln!(
        "curl x200 through the VIP: connect p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms; \
         request p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms",
        quantile(&connect, 0.5),
        quantile(&connect, 0.9),
        quantile(&connect, 0.99),
        quantile(&total, 0.5),
        quantile(&total, 0.9),
        quantile(&total, 0.99),
    );

    let one = wrk(&tb, &["-t1", "-c1", "-d5s"]);
    eprintln!("wrk keep-alive, 1 connection: {}", wrk_summary(&one));
    let fifty = wrk(&tb, &["-t2", "-c50", "-d5s"]);
    eprintln!("wrk keep-alive, 50 connections: {}", wrk_summary(&fifty));
    let close = wrk(&tb, &["-t2", "-c10", "-d5s", "-H", "Connection: close"]);
    eprintln!(
        "wrk connection per request, 10 connections: {}",
        wrk_summary(&close)
    );
    // The snapshot is published every 250 ms.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let status = tb.status();
    eprintln!(
        "agent: {} frames received, {} sent, drops {}",
        status.pointer("/agent/rx_packets").unwrap_or_default(),
        status.pointer("/agent/tx_packets").unwrap_or_default(),
        status.pointer("/agent/drops").unwrap_or_default(),
    );
    tb.stop_tether();
}
