//! Direct server return: backends hold the VIP on `lo` and answer clients over their own path;
//! a capture on the Tether node sees requests go out and no reply come back through it.

mod netlab;

use std::time::Duration;

use netlab::{CLIENT4, Testbed, VIP4, service, spread};

#[test]
fn dsr_replies_bypass_the_tether_node() {
    let mut tb = Testbed::new("dsr", None);
    tb.start_dsr_backends();
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
