//! A UDP echo service behind a VIP answers 10 000 datagrams from several client ports, and
//! each client port (flow) stays on one backend.

mod netlab;

use std::fmt::Write as _;

use netlab::{TETHER, Testbed, VIP4, backend4};
use tether_lab::netns::Transport;
use tether_lab::udp::UdpReport;

#[test]
fn udp_echo_answers_every_datagram_and_keeps_each_flow_on_one_backend() {
    let mut tb = Testbed::new("udp", None);
    let mut echoes = Vec::new();
    for k in 1..=3 {
        let b = tb.backends[k - 1].clone();
        let listen = format!("{}:5353", backend4(k));
        let p = b
            .spawn(&[
                TETHER,
                "lab",
                "udp-echo",
                "--listen",
                &listen,
                "--name",
                &format!("b{k}"),
            ])
            .expect("echo");
        b.wait_listening(Transport::Udp, 5353, std::time::Duration::from_secs(5))
            .expect("echo listens");
        echoes.push(p);
    }
    let mut services = String::from(
        "[[service]]\nname = \"echo\"\nvip = \"10.9.100.10\"\nport = 5353\nprotocol = \"udp\"\nscheduler = \"wrr\"\nmode = \"nat\"\n\n",
    );
    for k in 1..=3 {
        let _ = write!(
            services,
            "[[service.backend]]\nname = \"b{k}\"\naddress = \"{}\"\nport = 5353\n\n",
            backend4(k)
        );
    }
    tb.start_tether(&services);

    let json = tb.client_run(&[
        TETHER,
        "lab",
        "udp-client",
        "--target",
        &format!("{VIP4}:5353"),
        "--ports",
        "10",
        "--count",
        "1000",
        "--json",
    ]);
    let report = UdpReport::from_json(&json).expect("udp report");
    assert_eq!(report.sent(), 10_000);
    assert_eq!(report.answered(), 10_000, "every datagram answered: {json}");
    assert!(
        report.each_port_on_one_backend(),
        "a flow moved between backends: {json}"
    );
    assert_eq!(
        report.backends().len(),
        3,
        "ten flows spread over all three backends: {json}"
    );
    tb.stop_tether();
}
