//! Malformed frames sent with a raw socket are dropped and counted by reason in `/metrics`
//! while traffic keeps flowing; service messages signed with a wrong key are counted too.

mod netlab;

use std::fmt::Write as _;

use netlab::{ADMIN, Testbed, VIP4, service, spread};
use tether_proto::{
    Actions, AuthConfig, Codec, Envelope, Key, Message, WildcardAffinity, WildcardUpdate,
};

/// Python that sends the hex frames given as arguments out of `dev` with an AF_PACKET socket.
const SEND_FRAMES: &str = "import socket,sys\n\
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
s.bind((sys.argv[1],0))\n\
[s.send(bytes.fromhex(h)) for h in sys.argv[2:]]\n";

fn mac(tb: &Testbed, dev: &str) -> String {
    let out = tb
        .lb
        .exec(&["cat", &format!("/sys/class/net/{dev}/address")])
        .expect("mac");
    String::from_utf8_lossy(&out.stdout).trim().replace(':', "")
}

/// An IPv4 TCP frame to the VIP, with the fields a test breaks given as hex.
fn frame(dst_mac: &str, ip: &str) -> String {
    format!("{dst_mac}0200000000010800{ip}")
}

fn ipv4_header_checksum(header: &mut [u8]) {
    header[10] = 0;
    header[11] = 0;
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let csum = !(sum as u16);
    header[10..12].copy_from_slice(&csum.to_be_bytes());
}

/// A hex IPv4 packet client → VIP:80 with `ihl`, total length, TCP data offset and options.
fn packet(ihl: u8, total_len: Option<u16>, data_offset: u8, options: &[u8], cut: usize) -> String {
    let opt_words = usize::from(ihl.saturating_sub(5)) * 4;
    let mut ip = vec![
        0x40 | ihl,
        0,
        0,
        0,
        0x12,
        0x34,
        0x40,
        0,
        64,
        6,
        0,
        0,
        10,
        9,
        1,
        2,
        10,
        9,
        100,
        10,
    ];
    ip.extend(
        options
            .iter()
            .copied()
            .chain(std::iter::repeat(1))
            .take(opt_words),
    );
    let tcp = [
        0x9c,
        0x40,
        0,
        80,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        data_offset << 4,
        0x02,
        0xff,
        0xff,
        0,
        0,
        0,
        0,
    ];
    let len = ip.len() + tcp.len() - cut;
    let total = total_len.unwrap_or(len as u16);
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let header_len = ip.len().min(usize::from(ihl) * 4).max(20);
    ipv4_header_checksum(&mut ip[..header_len]);
    let mut bytes = ip;
    bytes.extend_from_slice(&tcp);
    bytes.truncate(bytes.len() - cut);
    hex(&bytes)
}

/// Lowercase hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn metric(metrics: &str, name: &str, reason: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("reason=\"{reason}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn malformed_frames_and_forged_messages_are_dropped_and_counted() {
    let mut tb = Testbed::new("badin", None);
    for k in 1..=3 {
        tb.start_nginx(k, &[]);
    }
    tb.start_tether(&service("web", VIP4, 80, "nat", "wrr", [1, 1, 1], false));
    let client_dev = tb.client_run(&["ip", "-o", "link", "show", "type", "veth"]);
    let client_dev = client_dev
        .split(':')
        .nth(1)
        .expect("veth")
        .trim()
        .split('@')
        .next()
        .expect("name")
        .to_owned();
    let lb_mac = mac(&tb, &tb.lb_ifaces[0].clone());

    let bad = [
        ("bad_ihl", packet(4, None, 5, &[], 0)),
        ("bad_total_length", packet(5, Some(400), 5, &[], 0)),
        ("bad_data_offset", packet(5, None, 3, &[], 0)),
        ("truncated_tcp", packet(5, None, 5, &[], 10)),
        (
            "bad_options",
            packet(7, None, 5, &[0x44, 0x00, 0, 0, 0, 0, 0, 0], 0),
        ),
    ];
    let frames: Vec<String> = bad.iter().map(|(_, p)| frame(&lb_mac, p)).collect();
    for _ in 0..3 {
        let mut args = vec!["python3", "-c", SEND_FRAMES, client_dev.as_str()];
        args.extend(frames.iter().map(String::as_str));
        tb.client_run(&args);
    }

    // A wildcard signed with a key the cluster does not have, sent to the agent's socket.
    let mut forger = Codec::new(
        AuthConfig {
            keys: vec![Key {
                id: 1,
                secret: b"certainly-not-the-cluster-key!!!".to_vec(),
            }],
            send_key: Some(1),
            require: true,
        },
        1,
    );
    let any = "0.0.0.0".parse().expect("ip");
    let forged = forger.seal(&Message::WildcardUpdate(WildcardUpdate {
        affinity: WildcardAffinity {
            protocol: 0,
            src: any,
            src_mask: any,
            src_port: 0,
            dst: any,
            dst_mask: any,
            dst_port: 0,
            dispatch: false,
            information: false,
            forward: any,
            ttl: 300,
        },
        actions: Actions::default(),
        action_list: Vec::new(),
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
    }));
    let hex = hex(&forged);
    let send = format!(
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(bytes.fromhex('{hex}'), ('127.0.0.1', 7400))"
    );
    tb.lb
        .exec(&["python3", "-c", &send])
        .expect("forged message sent");

    // Traffic keeps flowing.
    assert_eq!(
        spread(&tb.curl(&format!("http://{VIP4}/"), 3, &["--fail"])),
        [1, 1, 1]
    );

    // The agent publishes its counters a few times a second; give the last ones time to show.
    let counted = |metrics: &str| {
        bad.iter()
            .all(|(reason, _)| metric(metrics, "tether_agent_dropped_packets_total", reason) >= 3)
            && metric(metrics, "tether_agent_rejected_messages_total", "bad_mac") == 1
    };
    let mut metrics = String::new();
    for _ in 0..40 {
        let out = tb
            .lb
            .exec(&["curl", "-sS", "--fail", &format!("http://{ADMIN}/metrics")])
            .expect("metrics");
        metrics = String::from_utf8_lossy(&out.stdout).into_owned();
        if counted(&metrics) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        counted(&metrics),
        "every malformed frame counted by reason, the forged message as bad_mac:\n{metrics}"
    );
    tb.stop_tether();
}
