//! Draining a backend lets its long-lived connections finish intact while new flows avoid it.

mod netlab;

use std::fmt::Write as _;

use std::time::Duration;

use netlab::{TETHER, Testbed, VIP4, backend4};
use tether_lab::netns::Transport;
use tether_lab::stream::StreamReport;

#[test]
fn draining_keeps_long_streams_intact_and_sends_new_flows_elsewhere() {
    let mut tb = Testbed::new("drain", None);
    let mut servers = Vec::new();
    for k in 1..=3 {
        let b = tb.backends[k - 1].clone();
        let listen = format!("{}:9000", backend4(k));
        servers.push(
            b.spawn(&[
                TETHER,
                "lab",
                "stream-server",
                "--listen",
                &listen,
                "--name",
                &format!("b{k}"),
            ])
            .expect("stream server"),
        );
        b.wait_listening(Transport::Tcp, 9000, Duration::from_secs(5))
            .expect("listens");
    }
    let mut services = String::from(
        "[[service]]\nname = \"streams\"\nvip = \"10.9.100.10\"\nport = 9000\nprotocol = \"tcp\"\nscheduler = \"wrr\"\nmode = \"nat\"\n\n",
    );
    for k in 1..=3 {
        let _ = write!(
            services,
            "[[service.backend]]\nname = \"b{k}\"\naddress = \"{}\"\nport = 9000\n\n",
            backend4(k)
        );
    }
    tb.start_tether(&services);
    let target = format!("{VIP4}:9000");

    // 20 streams of 2 MB each way at 200 kB/s: about ten seconds of life each.
    let mut long = tb
        .client
        .spawn(&[
            TETHER,
            "lab",
            "stream-client",
            "--target",
            &target,
            "--streams",
            "20",
            "--bytes",
            "2000000",
            "--rate",
            "200000",
            "--json",
        ])
        .expect("stream client");
    std::thread::sleep(Duration::from_secs(3));
    tb.backend("drain", "streams", "b2");

    let json = tb.client_run(&[
        TETHER,
        "lab",
        "stream-client",
        "--target",
        &target,
        "--streams",
        "9",
        "--bytes",
        "10000",
        "--json",
    ]);
    let fresh = StreamReport::from_json(&json).expect("report");
    assert!(fresh.all_complete(), "new streams: {json}");
    assert!(
        !fresh.servers().contains_key("b2"),
        "a new flow went to the draining backend: {:?}",
        fresh.servers()
    );

    let status = long.wait_timeout(Duration::from_mins(1)).expect("wait");
    assert!(
        status.is_some_and(|s| s.success()),
        "long streams finished: {}",
        long.stderr()
    );
    let report = StreamReport::from_json(&long.stdout()).expect("report");
    assert!(
        report.all_complete(),
        "every long stream intact: {:?}",
        report.failures()
    );
    let on_b2 = report.servers().get("b2").copied().unwrap_or(0);
    assert!(
        on_b2 >= 5,
        "some long streams lived on the drained backend: {:?}",
        report.servers()
    );
    eprintln!("{report}");
    tb.stop_tether();
}
