//! Direct server return: backends hold the VIP on `lo` and answer clients over their own path;
//! a capture on the Tether node sees requests go out and no reply come back through it.

mod netlab;

use std::time::Duration;

use netlab::{CLIENT4, Testbed, VIP4, service, spread};
use tether_lab::netns::LinkSpec;

#[test]
fn dsr_replies_bypass_the_tether_node() {
    let mut tb = Testbed::new("dsr", None);
    for k in 1..=3 {
        let b = &tb.backends[k - 1];
        b.add_vip_on_lo(VIP4.parse().expect("vip"))
            .expect("VIP on lo");
        // A return path that does not cross the Tether node.
        let direct = tb
            .lab()
            .link(
                &tb.client,
                b,
                LinkSpec {
                    a_addrs: &[&format!("10.9.{}.1/24", 20 + k)],
                    b_addrs: &[&format!("10.9.{}.2/24", 20 + k)],
                    mtu: None,
                },
            )
            .expect("direct link");
        b.route(
            "10.9.1.0/24",
            Some(format!("10.9.{}.1", 20 + k).parse().expect("ip")),
            Some(&direct.b_dev),
        )
        .expect("return route");
        tb.start_nginx(k, &[&format!("{VIP4}:80")]);
    }
    tb.start_tether(&service("web", VIP4, 80, "dsr", "wrr", [1, 1, 1], false));

    let filter = format!(
        "tcp and ((dst host {VIP4} and dst port 80) or (src port 80 and dst host {CLIENT4}))"
    );
    let mut capture = tb
        .lb
        .spawn(&["tcpdump", "-i", "any", "-nn", "-l", "-q", &filter])
        .expect("tcpdump starts");
    std::thread::sleep(Duration::from_secs(1));
    let bodies = tb.curl(&format!("http://{VIP4}/"), 60, &["--fail"]);
    std::thread::sleep(Duration::from_millis(500));
    capture.kill("INT").expect("stop tcpdump");
    let _ = capture.wait_timeout(Duration::from_secs(5));
    let lines = capture.stdout();

    assert_eq!(spread(&bodies), [20, 20, 20], "round robin in DSR mode");
    let towards_vip = lines
        .lines()
        .filter(|l| l.contains(&format!("> {VIP4}.80")))
        .count();
    let back_to_client = lines
        .lines()
        .filter(|l| l.contains(&format!("> {CLIENT4}.")))
        .count();
    assert!(
        towards_vip >= 60 * 3,
        "the capture works: {towards_vip} packets towards the VIP"
    );
    assert_eq!(
        back_to_client, 0,
        "no backend-to-client packet crossed the Tether node:\n{lines}"
    );
    tb.stop_tether();
}
