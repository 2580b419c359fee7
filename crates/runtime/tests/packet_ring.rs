//! AF_PACKET rings and transmit on a veth pair between two namespaces.

mod packet_support;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use packet_support::{Lab, contains, in_netns, spawn_in_netns};
use tether_runtime::netlink::Netlink;
use tether_runtime::sys::{PacketSocket, PollSet, RingConfig, TxBatch, TxSocket};
use tether_wire::checksum;

/// Ethernet + IPv4 + UDP with correct checksums.
fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    let ip_sum = checksum::ipv4_header(&f[14..34]);
    f[24..26].copy_from_slice(&ip_sum.to_be_bytes());
    let mut udp = Vec::new();
    udp.extend_from_slice(&4242u16.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let sum = checksum::udp_v4(src, dst, &udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

#[test]
fn ring_sees_frames_from_the_peer_and_transmitted_frames_reach_it() {
    let mut lab = Lab::new("rg");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.71.0.1/24", &b, &b_if, "10.71.0.2/24");

    let b_if2 = b_if.clone();
    let peer_mac = in_netns(&b, move || {
        Netlink::open()
            .unwrap()
            .link_by_name(&b_if2)
            .unwrap()
            .unwrap()
            .mac
            .unwrap()
    });
    // The peer listens before anything is sent.
    let listener = spawn_in_netns(&b, || {
        let socket = UdpSocket::bind("10.71.0.2:7777").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    });

    let b2 = b.clone();
    let (seen, sent) = in_netns(&a, move || {
        let link = Netlink::open()
            .unwrap()
            .link_by_name(&a_if)
            .unwrap()
            .unwrap();
        let mut ring = PacketSocket::open(link.index, &a_if, RingConfig::default(), None).unwrap();
        let sender = spawn_in_netns(&b2, || {
            let s = UdpSocket::bind("10.71.0.2:0").unwrap();
            for _ in 0..20 {
                s.send_to(b"ping-through-the-ring", "10.71.0.1:9999")
                    .unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut poll = PollSet::new([std::os::fd::AsFd::as_fd(&ring)]);
        let mut seen = 0;
        for _ in 0..100 {
            poll.wait(Some(Duration::from_millis(50))).unwrap();
            while let Some(frame) = ring.next_frame() {
                if contains(frame.data(), b"ping-through-the-ring") {
                    seen += 1;
                }
            }
            if seen > 0 {
                break;
            }
        }
        sender.join().unwrap();

        let tx = TxSocket::open().unwrap();
        let frame = udp_frame(
            peer_mac,
            link.mac.unwrap(),
            Ipv4Addr::new(10, 71, 0, 1),
            Ipv4Addr::new(10, 71, 0, 2),
            7777,
            b"sent-from-the-packet-socket",
        );
        tx.send(link.index, &frame).unwrap();
        (seen, frame.len())
    });
    assert!(seen > 0, "the ring saw no frame from the peer");
    assert!(sent > 0);
    let (payload, from) = listener.join().unwrap();
    assert_eq!(payload, b"sent-from-the-packet-socket");
    assert_eq!(from, "10.71.0.1:4242".parse().unwrap());
}

#[test]
fn a_batch_of_a_hundred_frames_reaches_the_peer() {
    const FRAMES: u16 = 100;
    let mut lab = Lab::new("bt");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.72.0.1/24", &b, &b_if, "10.72.0.2/24");
    let peer_mac = in_netns(&b, move || {
        Netlink::open()
            .unwrap()
            .link_by_name(&b_if)
            .unwrap()
            .unwrap()
            .mac
            .unwrap()
    });
    let listener = spawn_in_netns(&b, || {
        let socket = UdpSocket::bind("10.72.0.2:7777").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut buf = [0u8; 1500];
        while let Ok(n) = socket.recv(&mut buf) {
            seen.insert(buf[..n].to_vec());
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(100));
    let (sent, failed, batches) = in_netns(&a, move || {
        let link = Netlink::open()
            .unwrap()
            .link_by_name(&a_if)
            .unwrap()
            .unwrap();
        let tx = TxSocket::open().unwrap();
        let mut batch = TxBatch::new();
        let (mut sent, mut failed, mut batches) = (0, 0, 0);
        for i in 0..FRAMES {
            if batch.is_full() {
                tx.send_batch(&mut batch, |r| match r {
                    Ok(_) => sent += 1,
                    Err(_) => failed += 1,
                });
                batches += 1;
            }
            let frame = udp_frame(
                peer_mac,
                link.mac.unwrap(),
                Ipv4Addr::new(10, 72, 0, 1),
                Ipv4Addr::new(10, 72, 0, 2),
                7777,
                format!("frame {i}").as_bytes(),
            );
            batch.push(link.index, &frame).unwrap();
        }
        tx.send_batch(&mut batch, |r| match r {
            Ok(_) => sent += 1,
            Err(_) => failed += 1,
        });
        assert!(batch.is_empty());
        (sent, failed, batches + 1)
    });
    assert_eq!((sent, failed, batches), (usize::from(FRAMES), 0, 2));
    let seen = listener.join().unwrap();
    assert_eq!(seen.len(), usize::from(FRAMES), "every frame arrives once");
}

/// The payloads and wire lengths of the frames in `ring` that contain `marker`, in ring order,
/// and how many frames the ring held in all.
fn drain(ring: &mut PacketSocket, marker: &[u8]) -> (Vec<(Vec<u8>, u32, bool)>, usize) {
    let (mut ours, mut all) = (Vec::new(), 0);
    while let Some(frame) = ring.next_frame() {
        all += 1;
        if contains(frame.data(), marker) {
            ours.push((frame.data().to_vec(), frame.wire_len, frame.is_truncated()));
        }
    }
    (ours, all)
}

#[test]
fn a_frame_longer_than_its_slot_arrives_truncated_and_says_so() {
    let mut lab = Lab::new("tr");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.73.0.1/24", &b, &b_if, "10.73.0.2/24");
    let b2 = b.clone();
    let (short, long) = in_netns(&a, move || {
        let link = Netlink::open()
            .unwrap()
            .link_by_name(&a_if)
            .unwrap()
            .unwrap();
        // 512-byte slots: 446 bytes of frame fit behind the kernel's 66-byte header.
        let config = RingConfig {
            frame_size: 512,
            frame_count: 64,
        };
        let mut ring = PacketSocket::open(link.index, &a_if, config, None).unwrap();
        spawn_in_netns(&b2, || {
            let s = UdpSocket::bind("10.73.0.2:0").unwrap();
            let mut short = b"short-frame".to_vec();
            short.resize(100, b'.');
            s.send_to(&short, "10.73.0.1:9999").unwrap();
            let mut long = b"long-frame".to_vec();
            long.resize(1000, b'.');
            s.send_to(&long, "10.73.0.1:9999").unwrap();
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let (frames, _) = drain(&mut ring, b"-frame");
        let find = |marker: &[u8]| frames.iter().find(|f| contains(&f.0, marker)).cloned();
        (find(b"short-frame"), find(b"long-frame"))
    });
    let (data, wire_len, truncated) = short.expect("the short frame was seen");
    assert_eq!(
        (data.len(), wire_len, truncated),
        (14 + 20 + 8 + 100, 142, false)
    );
    let (data, wire_len, truncated) = long.expect("the long frame was seen (its beginning)");
    assert_eq!(
        (data.len(), wire_len, truncated),
        (512 - 66, 14 + 20 + 8 + 1000, true)
    );
}

#[test]
fn a_full_ring_keeps_frames_in_order_and_counts_the_rest_as_drops() {
    const SENT: u32 = 300;
    let mut lab = Lab::new("fl");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.75.0.1/24", &b, &b_if, "10.75.0.2/24");
    let b2 = b.clone();
    let (ours, all, capacity, drops) = in_netns(&a, move || {
        let link = Netlink::open()
            .unwrap()
            .link_by_name(&a_if)
            .unwrap()
            .unwrap();
        let config = RingConfig {
            frame_size: 2048,
            frame_count: 64,
        };
        let mut ring = PacketSocket::open(link.index, &a_if, config, None).unwrap();
        assert_eq!(ring.capacity(), 64);
        // Nobody reads while the peer sends more than the ring holds.
        spawn_in_netns(&b2, || {
            let s = UdpSocket::bind("10.75.0.2:0").unwrap();
            for i in 0..SENT {
                let mut payload = b"numbered ".to_vec();
                payload.extend_from_slice(&i.to_be_bytes());
                s.send_to(&payload, "10.75.0.1:9999").unwrap();
            }
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let (ours, all) = drain(&mut ring, b"numbered ");
        (ours, all, ring.capacity(), ring.take_drops())
    });
    assert_eq!(all, capacity, "the ring filled up");
    let numbers: Vec<u32> = ours
        .iter()
        .map(|(data, _, _)| {
            let n = &data[data.len() - 4..];
            u32::from_be_bytes([n[0], n[1], n[2], n[3]])
        })
        .collect();
    assert!(!numbers.is_empty());
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "frames come in ring order: {numbers:?}"
    );
    // Frames of other kinds (neighbour discovery) may take slots too; all our frames that
    // found none are counted.
    assert!(
        numbers.len() as u64 + drops >= u64::from(SENT),
        "{} frames read, {drops} drops counted, {SENT} sent",
        numbers.len()
    );
}
