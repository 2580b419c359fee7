//! Path MTU discovery through NAT: a router on the backend side with a small-MTU link answers
//! the client's full-size segments with ICMP fragmentation-needed; Tether translates the
//! embedded header back to the VIP so the client's kernel lowers its path MTU, and a 4 MB
//! transfer each way completes with every byte verified.

mod netlab;

use std::time::Duration;

use netlab::{TETHER, Testbed, VIP4, backend4};
use tether_lab::netns::Transport;
use tether_lab::stream::StreamReport;

#[test]
fn large_transfer_through_a_small_mtu_link_completes() {
    let mut tb = Testbed::new("pmtu", Some(1280));
    let b1 = tb.backends[0].clone();
    let _server = b1
        .spawn(&[
            TETHER,
            "lab",
            "stream-server",
            "--listen",
            &format!("{}:9000", backend4(1)),
            "--name",
            "b1",
        ])
        .expect("stream server");
    b1.wait_listening(Transport::Tcp, 9000, Duration::from_secs(5))
        .expect("listens");
    tb.start_tether(&format!(
        "[[service]]\nname = \"bulk\"\nvip = \"{VIP4}\"\nport = 9000\nprotocol = \"tcp\"\nscheduler = \"wrr\"\nmode = \"nat\"\n\n\
         [[service.backend]]\nname = \"b1\"\naddress = \"{}\"\nport = 9000\n",
        backend4(1)
    ));

    let json = tb.client_run(&[
        TETHER,
        "lab",
        "stream-client",
        "--target",
        &format!("{VIP4}:9000"),
        "--streams",
        "1",
        "--bytes",
        "4000000",
        "--json",
    ]);
    let report = StreamReport::from_json(&json).expect("report");
    assert!(
        report.all_complete(),
        "transfer through the 1280-byte link: {json}"
    );
    let pmtu = tb.client_run(&["ip", "route", "get", VIP4]);
    assert!(
        pmtu.contains("mtu 1280"),
        "the client learned the path MTU from the translated ICMP: {pmtu}"
    );
    tb.stop_tether();
}
