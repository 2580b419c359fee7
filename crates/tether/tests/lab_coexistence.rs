//! Traffic the wildcards do not describe stays with the kernel while Tether runs, and nothing
//! of Tether is left on the host after it exits.

mod netlab;

use std::time::Duration;

use netlab::{TETHER, Testbed, VIP4, service, spread};
use tether_lab::netns::Transport;

#[test]
fn host_traffic_keeps_working_and_tether_leaves_nothing_behind() {
    let mut tb = Testbed::new("coexist", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    let own = tb
        .lb
        .spawn(&[
            TETHER,
            "lab",
            "http-server",
            "--listen",
            "10.9.1.1:8000",
            "--name",
            "lb-itself",
        ])
        .expect("a service of the node's own");
    tb.lb
        .wait_listening(Transport::Tcp, 8000, Duration::from_secs(5))
        .expect("listens");
    tb.start_tether(&service("web", VIP4, 80, "nat", "wrr", [1, 1, 1], false));

    let ping = tb
        .client
        .exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.9.1.1"])
        .expect("ping runs");
    assert!(
        ping.status.success(),
        "ping to the Tether node: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let body = tb.client_run(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "5",
        "http://10.9.1.1:8000/",
    ]);
    assert!(
        body.contains("lb-itself"),
        "the node's own TCP service answers: {body}"
    );
    // Routed traffic between client and a backend's own address is not the VIP's: the kernel forwards it.
    let direct = tb.client_run(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "5",
        "http://10.9.11.2:8080/",
    ]);
    assert_eq!(direct.trim(), "b1");
    assert_eq!(
        spread(&tb.curl(&format!("http://{VIP4}/"), 3, &["--fail"])),
        [1, 1, 1]
    );

    let tables =
        String::from_utf8_lossy(&tb.lb.exec(&["nft", "list", "tables"]).expect("nft").stdout)
            .into_owned();
    assert!(
        tables.contains("netdev"),
        "Tether steers with a netdev table while it runs: {tables}"
    );
    tb.stop_tether();

    let tables =
        String::from_utf8_lossy(&tb.lb.exec(&["nft", "list", "ruleset"]).expect("nft").stdout)
            .into_owned();
    assert!(
        tables.trim().is_empty(),
        "no nftables rules left after exit:\n{tables}"
    );
    let sockets = String::from_utf8_lossy(
        &tb.lb
            .exec(&["ss", "-Hanu", "sport", "=", ":7400"])
            .expect("ss")
            .stdout,
    )
    .into_owned();
    assert!(
        sockets.trim().is_empty(),
        "no service-message socket left: {sockets}"
    );
    let body = tb.client_run(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "5",
        "http://10.9.1.1:8000/",
    ]);
    assert!(body.contains("lb-itself"));
    drop(own);
}
