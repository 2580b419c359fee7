//! Manager failover under chaos (root: builds network namespaces). An agent-only Tether node,
//! two or three manager-only hosts beside it (`netlab/failover.rs`); managers are killed with
//! SIGKILL while long checksummed streams and new connections run through the VIP.
//!
//! Timings are printed, never asserted (the machine is shared).
#![allow(
    clippy::disallowed_types,
    reason = "tests measure real processes on the wall clock"
)]

#[path = "netlab/failover.rs"]
mod failover;
mod netlab;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use failover::{Capture, Cluster, STREAM_PORT, Settings, manager_addr, role_of, udp_payload};
use serde_json::Value;
use tether_lab::bench::parse::parse_wrk;
use tether_lab::stream::{ServeReport, StreamReport};
use tether_lab::topology::manager4;
use tether_proto::MessageType;

use netlab::{TETHER, VIP4};

/// The chaos tests run one at a time: each loads both cores, and heartbeats starved of CPU
/// would make managers fail over on their own.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Polls `mK`'s role every `every` until it is active; how long that took from `since`.
fn wait_active(cluster: &Cluster, k: usize, since: Instant, every: Duration) -> Duration {
    loop {
        if cluster.role(k).as_deref() == Some("active") {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "m{k} did not become active within 5 s\n{}",
            cluster.diagnostics()
        );
        std::thread::sleep(every);
    }
}

/// A manager's `failover` figure in milliseconds, printed as such or as `-`.
fn ms(failover: Option<&Value>, field: &str) -> String {
    failover
        .and_then(|f| f.get(field))
        .and_then(Value::as_f64)
        .map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"))
}

/// A counter of a manager's `failover` status; a missing field is a renamed field, so it fails
/// the test rather than reading as 0.
fn counter(failover: &Value, field: &str) -> u64 {
    failover
        .get(field)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {field:?} in {failover}"))
}

/// Restarts `mK` (the better manager) and waits until it has pulled the store, reports ready
/// and has taken the active role back from `other`; returns how long that took and its
/// `failover` status then.
fn restart_and_reclaim(cluster: &mut Cluster, k: usize, other: usize) -> (Duration, Value) {
    let start = Instant::now();
    cluster.start_manager(k);
    cluster.wait_for(
        &format!("restarted m{k} ready and active again, m{other} standby"),
        Duration::from_secs(20),
        |c| {
            c.ready(k)
                && c.role(k).as_deref() == Some("active")
                && c.role(other).as_deref() == Some("standby")
        },
    );
    (start.elapsed(), cluster.failover(k).unwrap_or_default())
}

/// Checks every stream of `report` was served completely by exactly one backend, the one the
/// client saw; returns the problems found.
fn check_served(report: &StreamReport, served: &[ServeReport], bytes: u64) -> Vec<String> {
    let mut problems = Vec::new();
    for stream in &report.streams {
        let Some(local) = stream.local else {
            problems.push(format!("stream {} never connected: {stream:?}", stream.id));
            continue;
        };
        let records: Vec<(&str, &tether_lab::stream::ConnectionRecord)> = served
            .iter()
            .flat_map(|s| {
                s.connections
                    .iter()
                    .filter(|c| c.peer == local)
                    .map(|c| (s.name.as_str(), c))
            })
            .collect();
        match records.as_slice() {
            [(name, record)] => {
                if Some(*name) != stream.server.as_deref() {
                    problems.push(format!(
                        "stream {} ({local}) saw {:?} but was served by {name}",
                        stream.id, stream.server
                    ));
                }
                if !record.complete || record.bytes_verified != bytes || record.bytes_sent != bytes
                {
                    problems.push(format!(
                        "stream {} ({local}) incomplete on {name}: {record:?}",
                        stream.id
                    ));
                }
            }
            other => problems.push(format!(
                "stream {} ({local}) has {} server-side connections: {other:?}",
                stream.id,
                other.len()
            )),
        }
    }
    problems
}

#[test]
fn killing_the_primary_mid_stream_loses_nothing() {
    kill_mid_stream("fokill", Settings::managers(2));
}

/// The same with agents placing new flows themselves (Maglev, `decisions = "local"`): flows
/// whose reports died with the primary are placed again by the same table.
#[test]
fn killing_the_primary_mid_stream_with_local_decisions_loses_nothing() {
    kill_mid_stream(
        "folocal",
        Settings {
            scheduler: "maglev",
            ..Settings::managers(2)
        },
    );
}

/// 200 checksummed streams and wrk through a two-manager cluster; the primary is killed
/// mid-stream, restarted, and the backup killed.
fn kill_mid_stream(tag: &str, settings: Settings) {
    const STREAMS: u32 = 200;
    const RATE: u64 = 40_000;
    const SECONDS: u64 = 20;
    const BYTES: u64 = RATE * SECONDS;
    let _serial = serial();
    let mut cluster = Cluster::start(tag, settings);
    let rst_file = cluster.dir().join("rst.pcap");
    let capture = Capture::start(
        &cluster.client,
        &cluster.client_iface,
        // RSTs and FINs from the VIP, and anything from a backend's own address: a backend's
        // packet that reaches the client untranslated makes the client reset the backend's
        // connection. The FINs tell a reset from the answer to a duplicate ACK of a connection
        // that closed cleanly.
        &format!(
            "tcp and ((tcp[tcpflags] & (tcp-rst|tcp-fin) != 0 and src host {VIP4}) \
             or src net 10.9.11.0/24 or src net 10.9.12.0/24 or src net 10.9.13.0/24)"
        ),
        &rst_file,
    );
    let start = Instant::now();
    let start_unix = failover::unix_now();
    let mut client = cluster
        .client
        .spawn(&[
            TETHER,
            "lab",
            "stream-client",
            "--target",
            &format!("{VIP4}:{STREAM_PORT}"),
            "--streams",
            &STREAMS.to_string(),
            "--bytes",
            &BYTES.to_string(),
            "--rate",
            &RATE.to_string(),
            "--stall-timeout-ms",
            "15000",
            "--connect-timeout-ms",
            "10000",
            "--json",
        ])
        .expect("stream client starts");
    let mut wrk = cluster
        .client
        .spawn(&[
            "wrk",
            "-t1",
            "-c2",
            &format!("-d{}s", SECONDS - 2),
            "--timeout",
            "10s",
            "-H",
            "Connection: close",
            &format!("http://{VIP4}/"),
        ])
        .expect("wrk starts");

    std::thread::sleep(Duration::from_secs(4).saturating_sub(start.elapsed()));
    let before = cluster.failover(1).unwrap_or_default();
    let killed = Instant::now();
    cluster.kill_manager(1);
    println!(
        "m1 killed {:.3} s into the run",
        start.elapsed().as_secs_f64()
    );
    let detected = wait_active(&cluster, 2, killed, Duration::from_millis(10));
    let b = cluster.failover(2);
    println!(
        "detection: {:.1} ms (kill -> backup active, polled); m2 detection_ms {}, takeover_ms {}; \
         m1 had sent {} records",
        detected.as_secs_f64() * 1000.0,
        ms(b.as_ref(), "detection_ms"),
        ms(b.as_ref(), "takeover_ms"),
        counter(&before, "records_sent"),
    );
    // 30 new connections; a failure is kept for the end, so the streams still run to their end.
    let mut curl_failures = Vec::new();
    let mut new_connections = |cluster: &Cluster, when: &str| match cluster.try_curl(30) {
        Ok(bodies) => println!("{when}: 30 new connections served {:?}", spread(&bodies)),
        Err(e) => curl_failures.push(format!(
            "{when} ({:.1} s into the run): {e}",
            start.elapsed().as_secs_f64()
        )),
    };
    new_connections(&cluster, "after takeover");

    let (reclaim, fo) = restart_and_reclaim(&mut cluster, 1, 2);
    assert_eq!(
        (counter(&fo, "snapshots_received"), counter(&fo, "reclaims")),
        (1, 1),
        "restarted m1 pulled the store and reclaimed the active role (snapshots_received, \
         reclaims)\n{}",
        cluster.diagnostics()
    );
    println!(
        "m1 restarted, pulled the store and took the active role back in {:.1} s ({:.1} s into \
         the run)",
        reclaim.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    // The streams run on m1's affinities for a while before m2, now standby, dies too.
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill_manager(2);
    println!("m2 killed at {:.1} s", start.elapsed().as_secs_f64());
    new_connections(&cluster, "after m2's death");

    let finished = client
        .wait_timeout(Duration::from_secs(SECONDS + 60))
        .expect("wait for the stream client");
    let wrk_done = wrk
        .wait_timeout(Duration::from_secs(30))
        .expect("wait for wrk");
    let (captured, tcpdump_said) = capture.stop();
    let from_vip = format!("{VIP4}:");
    let (from_vip, untranslated): (Vec<_>, Vec<_>) = captured
        .iter()
        .map(|(at, frame)| (at - start_unix, describe_tcp(frame), tcp_facts(frame)))
        .partition(|(_, line, _)| line.starts_with(&from_vip));
    // Where each connection's FIN from the VIP ends in sequence space, with its client port
    // (wrk reuses client ports, so a port has several connections over the run).
    let fin_ends: BTreeSet<(u16, u32)> = from_vip
        .iter()
        .filter_map(|(_, _, f)| *f)
        .filter(|f| f.flags & 0x01 != 0)
        .map(|f| (f.dst_port, f.seq.wrapping_add(f.payload).wrapping_add(1)))
        .collect();
    // A backend answers an ACK for a connection it has fully closed with an RST whose sequence
    // number is that ACK's: past its own FIN. Such an RST follows a spurious retransmission of
    // the FIN (a tail loss probe 10 ms after it, when the client's ACK is late) and resets
    // nothing; any other RST from the VIP breaks a connection.
    let (after_close, rsts): (Vec<_>, Vec<_>) = from_vip
        .into_iter()
        .filter_map(|(at, line, f)| f.filter(|f| f.flags & 0x04 != 0).map(|f| (at, line, f)))
        .partition(|(_, _, f)| fin_ends.contains(&(f.dst_port, f.seq)));
    let rsts: Vec<(f64, String)> = rsts.into_iter().map(|(at, l, _)| (at, l)).collect();
    let untranslated: Vec<(f64, String)> =
        untranslated.into_iter().map(|(at, l, _)| (at, l)).collect();
    let served = cluster.stop_stream_servers();
    assert!(finished.is_some(), "the stream client did not finish");
    assert!(wrk_done.is_some(), "wrk did not finish");
    let diagnostics = cluster.diagnostics();

    let report = StreamReport::from_json(client.stdout().trim()).unwrap_or_else(|e| {
        panic!(
            "stream client report: {e}\n{}{}\n{diagnostics}",
            client.stdout(),
            client.stderr()
        )
    });
    let wrk_out = wrk.stdout();
    let wrk_result = parse_wrk(&wrk_out)
        .unwrap_or_else(|e| panic!("wrk output: {e}\n{wrk_out}\n{}", wrk.stderr()));
    let problems = check_served(&report, &served, BYTES);
    let mut summary = String::new();
    let _ = writeln!(summary, "streams: {report}");
    let _ = writeln!(
        summary,
        "servers: {}",
        served
            .iter()
            .map(|s| format!(
                "{} {} connections ({} complete)",
                s.name, s.summary.connections, s.summary.complete
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        summary,
        "client capture: {} RSTs from the VIP ({} more answered a duplicate ACK after the \
         connection had closed cleanly), {} packets from backend addresses (untranslated) \
         (tcpdump: {})",
        rsts.len(),
        after_close.len(),
        untranslated.len(),
        tcpdump_said.trim().replace('\n', "; ")
    );
    for (at, line) in rsts.iter().take(10).chain(untranslated.iter().take(10)) {
        let _ = writeln!(summary, "  {at:.3} s into the run: {line}");
    }
    let _ = writeln!(
        summary,
        "server-side check: {} streams not served completely by exactly the backend the client \
         saw{}",
        problems.len(),
        problems
            .first()
            .map_or_else(String::new, |p| format!(", e.g. {p}"))
    );
    let _ = writeln!(summary, "curl batches: {curl_failures:?}");
    let agent = cluster.agent_status().unwrap_or_default();
    let placed_locally = agent["agent"]["placed_locally"].as_u64().unwrap_or(0);
    let recovered: u64 = (1..=2)
        .filter_map(|k| cluster.status(k))
        .map(|st| {
            st["manager"]["counters"]["flows_recovered"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    let _ = writeln!(
        summary,
        "agent placed {placed_locally} flows itself ({} flow reports); managers recovered \
         {recovered} flows by the table",
        agent["agent"]["flow_reports"].as_u64().unwrap_or(0)
    );
    let _ = writeln!(
        summary,
        "wrk: {} requests, {} non-2xx, {} socket errors",
        wrk_result.requests, wrk_result.bad_responses, wrk_result.socket_errors
    );
    println!("{summary}");

    let failures: Vec<String> = report
        .failures()
        .iter()
        .take(10)
        .map(|s| format!("{s:?}"))
        .collect();
    assert!(
        report.all_complete()
            && report.streams.len() == STREAMS as usize
            && report.streams.iter().all(|s| s.bytes_verified == BYTES),
        "not every stream completed verified:\n{summary}first failures: {failures:#?}\n{diagnostics}"
    );
    assert!(
        rsts.is_empty() && untranslated.is_empty(),
        "{} RSTs from the VIP and {} untranslated backend packets reached the client\n\
         {summary}\n{diagnostics}",
        rsts.len(),
        untranslated.len()
    );
    assert!(
        problems.is_empty(),
        "streams not served completely by exactly the backend the client saw:\n{:#?}\n{summary}",
        &problems[..problems.len().min(10)]
    );
    assert!(
        curl_failures.is_empty(),
        "new connections failed: {curl_failures:#?}\n{summary}\n{diagnostics}"
    );
    assert!(
        wrk_result.requests > 0 && wrk_result.bad_responses == 0 && wrk_result.socket_errors == 0,
        "new connections failed during failover:\n{wrk_out}\n{}\n{diagnostics}",
        wrk.stderr()
    );
    assert_eq!(
        placed_locally > 0,
        settings.scheduler == "maglev",
        "local decisions are used exactly with maglev:\n{summary}"
    );
}

/// `src:port > dst:port flags` of an Ethernet + IPv4 + TCP frame.
fn describe_tcp(frame: &[u8]) -> String {
    let Some(ip) = frame.get(14..) else {
        return format!("{frame:02x?}");
    };
    let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
    match (ip.get(12..20), ip.get(ihl..ihl + 14)) {
        (Some(a), Some(tcp)) => format!(
            "{}.{}.{}.{}:{} > {}.{}.{}.{}:{} flags {:#04x}",
            a[0],
            a[1],
            a[2],
            a[3],
            u16::from_be_bytes([tcp[0], tcp[1]]),
            a[4],
            a[5],
            a[6],
            a[7],
            u16::from_be_bytes([tcp[2], tcp[3]]),
            tcp[13]
        ),
        _ => format!("{frame:02x?}"),
    }
}

/// The TCP header fields of a captured Ethernet/IPv4 frame that tell a reset from a close.
#[derive(Clone, Copy, Debug)]
struct TcpFacts {
    dst_port: u16,
    seq: u32,
    flags: u8,
    payload: u32,
}

fn tcp_facts(frame: &[u8]) -> Option<TcpFacts> {
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let tcp = ip.get(ihl..)?;
    let data_offset = usize::from(tcp.get(12)? >> 4) * 4;
    Some(TcpFacts {
        dst_port: u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]),
        seq: u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?),
        flags: *tcp.get(13)?,
        payload: u32::try_from(total.checked_sub(ihl + data_offset)?).ok()?,
    })
}

fn spread(bodies: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for b in bodies {
        *counts.entry(b.as_str()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn detection_time_over_repeated_kills() {
    const ROUNDS: usize = 10;
    let _serial = serial();
    let mut cluster = Cluster::start("fodetect", Settings::managers(2));
    let mut figures = Vec::new();
    for round in 1..=ROUNDS {
        let killed = Instant::now();
        cluster.kill_manager(1);
        let detected = wait_active(&cluster, 2, killed, Duration::from_millis(5));
        let fo = cluster.failover(2);
        println!(
            "round {round}: kill -> m2 active {:.1} ms (polled); m2 detection_ms {}, takeover_ms {}",
            detected.as_secs_f64() * 1000.0,
            ms(fo.as_ref(), "detection_ms"),
            ms(fo.as_ref(), "takeover_ms"),
        );
        figures.push(detected.as_secs_f64() * 1000.0);
        let (back, fo) = restart_and_reclaim(&mut cluster, 1, 2);
        println!(
            "round {round}: m1 restarted, ready and active again in {:.0} ms (snapshots_received \
             {}, reclaims {}, takeovers {})",
            back.as_secs_f64() * 1000.0,
            counter(&fo, "snapshots_received"),
            counter(&fo, "reclaims"),
            counter(&fo, "takeovers")
        );
        let roles = cluster.roles();
        assert_eq!(
            roles
                .iter()
                .filter(|r| r.as_deref() == Some("active"))
                .count(),
            1,
            "round {round}: exactly one manager is active afterwards: {roles:?}\n{}",
            cluster.diagnostics()
        );
    }
    figures.sort_by(f64::total_cmp);
    println!(
        "failover detection: {ROUNDS} kills, kill -> backup active (polled every 5 ms): median \
         {:.1} ms, min {:.1} ms, max {:.1} ms; all {:?}",
        figures[ROUNDS / 2],
        figures[0],
        figures[ROUNDS - 1],
        figures.iter().map(|f| f.round()).collect::<Vec<_>>()
    );
}

#[test]
fn two_backups_exactly_one_takes_over() {
    let _serial = serial();
    let mut cluster = Cluster::start("fothree", Settings::managers(3));
    let takeovers = |c: &Cluster| -> Vec<u64> {
        [2, 3]
            .iter()
            .map(|&k| counter(&c.failover(k).unwrap_or_default(), "takeovers"))
            .collect()
    };
    let before = takeovers(&cluster);
    let killed = Instant::now();
    cluster.kill_manager(1);
    let first = loop {
        let (r2, r3) = (cluster.role(2), cluster.role(3));
        match (r2.as_deref(), r3.as_deref()) {
            (Some("active"), Some("active")) => {
                panic!("m2 and m3 both active\n{}", cluster.diagnostics())
            }
            (Some("active"), _) => break 2,
            (_, Some("active")) => break 3,
            _ => {}
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "no backup became active within 5 s\n{}",
            cluster.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    println!(
        "kill m1 -> m{first} active: {:.1} ms (polled)",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(
        first,
        2,
        "the better backup takes over\n{}",
        cluster.diagnostics()
    );
    let watch = Instant::now();
    let mut polls = 0;
    while watch.elapsed() < Duration::from_secs(3) {
        let roles = [cluster.role(2), cluster.role(3)];
        assert_eq!(
            roles,
            [Some("active".to_owned()), Some("standby".to_owned())],
            "after {polls} polls: m2 alone active\n{}",
            cluster.diagnostics()
        );
        polls += 1;
    }
    // A takeover by m3 between two polls would still show in its counter.
    let after = takeovers(&cluster);
    println!(
        "{polls} polls over 3 s: m2 active, m3 standby; takeovers (m2, m3) {before:?} before \
         the kill, {after:?} after"
    );
    assert_eq!(
        [after[0] - before[0], after[1] - before[1]],
        [1, 0],
        "since the kill, m2 took over once and m3 never did (new takeovers of m2, m3)\n{}",
        cluster.diagnostics()
    );
    let bodies = cluster.curl(20);
    println!("20 new connections served {:?}", spread(&bodies));
}

/// The first replicate message (type 7) among `frames`, with its source.
/// The type of a service message (its header's second byte).
fn message_type(payload: &[u8]) -> Option<MessageType> {
    payload.get(1).copied().and_then(MessageType::from_u8)
}

fn first_replicate(frames: &[(f64, Vec<u8>)]) -> Option<(std::net::SocketAddrV4, Vec<u8>)> {
    frames.iter().find_map(|(_, f)| {
        let (source, payload) = udp_payload(f)?;
        (message_type(payload) == Some(MessageType::Replicate)).then(|| (source, payload.to_vec()))
    })
}

/// Flips the first byte of the MAC in the message's security segment (type 6, MAC at body
/// offset 21; protocol.md); `None` if it has none.
fn flip_mac(message: &[u8]) -> Option<Vec<u8>> {
    let mut forged = message.to_vec();
    let mut at = 6;
    while at + 6 <= message.len() {
        let len = u32::from_be_bytes([
            message[at + 2],
            message[at + 3],
            message[at + 4],
            message[at + 5],
        ]) as usize;
        if message[at] == 6 {
            *forged.get_mut(at + 6 + 21)? ^= 0x01;
            return Some(forged);
        }
        at += 6 + len;
    }
    None
}

/// Sends `payload` as one UDP datagram from `host` with source port `port` (its source address
/// is the host's own on the route to `to`) through a raw socket, so it leaves with the address
/// and port of the manager already bound there.
fn send_udp_from(cluster: &Cluster, host: usize, port: u16, to: &str, payload: &[u8]) {
    let hex = payload.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    let script = "import socket, struct, sys\n\
                  p = bytes.fromhex(sys.argv[1])\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)\n\
                  h = struct.pack('!HHHH', int(sys.argv[2]), int(sys.argv[4]), 8 + len(p), 0)\n\
                  s.sendto(h + p, (sys.argv[3], 0))\n";
    let (ip, dport) = to.split_once(':').expect("address with port");
    let out = cluster.managers[host - 1]
        .output(&["python3", "-c", script, &hex, &port.to_string(), ip, dport])
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "sending the datagram: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rejected(cluster: &Cluster, k: usize, reason: &str) -> u64 {
    cluster
        .status(k)
        .and_then(|s| {
            s.pointer("/manager/counters/rejected")
                .and_then(|r| r.get(reason))
                .and_then(Value::as_u64)
        })
        .unwrap_or(0)
}

fn records_stored(cluster: &Cluster, k: usize) -> u64 {
    counter(&cluster.failover(k).unwrap_or_default(), "records_stored")
}

/// Captures on `m2`'s link what `m1`'s service socket sends there (replication, heartbeats).
fn capture_from_m1(cluster: &Cluster) -> Capture {
    Capture::start(
        &cluster.managers[1],
        &cluster.manager_ifaces[1],
        &format!(
            "udp and src host {} and dst port {}",
            manager4(1),
            failover::MANAGER_PORT
        ),
        &cluster.dir().join("replication.pcap"),
    )
}

#[test]
fn forged_and_replayed_replication_is_rejected_and_counted() {
    let _serial = serial();
    let cluster = Cluster::start("foforge", Settings::managers(2));
    let capture = capture_from_m1(&cluster);
    cluster.curl(10);
    cluster.wait_for("m2 storing m1's records", Duration::from_secs(10), |c| {
        records_stored(c, 2) > 0
    });
    let (frames, tcpdump_said) = capture.stop();
    let (source, message) = first_replicate(&frames).unwrap_or_else(|| {
        panic!(
            "no replicate message among {} datagrams from m1 (tcpdump: {tcpdump_said})\n{}",
            frames.len(),
            cluster.diagnostics()
        )
    });
    assert_eq!(
        source.to_string(),
        manager_addr(1),
        "captured from m1's socket"
    );
    let forged = flip_mac(&message).expect("the replicate message is signed");

    // Let replication of the connections above settle, so any change is ours.
    let mut stored = records_stored(&cluster, 2);
    cluster.wait_for(
        "m2's stored records to settle",
        Duration::from_secs(10),
        |c| {
            std::thread::sleep(Duration::from_millis(500));
            let now = records_stored(c, 2);
            std::mem::replace(&mut stored, now) == now
        },
    );
    let (replayed, bad_mac) = (
        rejected(&cluster, 2, "replayed"),
        rejected(&cluster, 2, "bad_mac"),
    );
    send_udp_from(
        &cluster,
        1,
        failover::MANAGER_PORT,
        &manager_addr(2),
        &message,
    );
    send_udp_from(
        &cluster,
        1,
        failover::MANAGER_PORT,
        &manager_addr(2),
        &forged,
    );
    // The same message from another source port: a replay window kept by source address would
    // take it for a new sender; the signed sender id does not.
    send_udp_from(&cluster, 1, 7999, &manager_addr(2), &message);
    cluster.wait_for(
        "m2 to count both replays and the forged message",
        Duration::from_secs(5),
        |c| rejected(c, 2, "replayed") >= replayed + 2 && rejected(c, 2, "bad_mac") > bad_mac,
    );
    std::thread::sleep(Duration::from_millis(300));
    let after = records_stored(&cluster, 2);
    println!(
        "m2: replayed {replayed} -> {}, bad_mac {bad_mac} -> {}, records_stored {stored} -> \
         {after} (replicate message of {} bytes)",
        rejected(&cluster, 2, "replayed"),
        rejected(&cluster, 2, "bad_mac"),
        message.len()
    );
    assert_eq!(
        after,
        stored,
        "m2 stored records from the replayed or forged message\n{}",
        cluster.diagnostics()
    );
    assert_eq!(
        role_of(&cluster.failover(2).unwrap_or_default()).as_deref(),
        Some("standby")
    );
    cluster.curl(5);
}

/// What one load run cost the managers.
struct Cost {
    connections: u64,
    seconds: f64,
    /// CPU time of each manager during the run, `m1` first.
    cpu: Vec<Duration>,
    /// Flows `m1` created (new connections, including ones reusing a closed flow's port).
    created: u64,
    records: u64,
    /// UDP payload bytes from `m1` to `m2` by message type (replicate, heartbeat).
    replicate_bytes: u64,
    replicate_datagrams: u64,
    heartbeat_bytes: u64,
}

/// `m1`'s `flows_created` counter.
fn flows_created(cluster: &Cluster) -> u64 {
    let status = cluster.status(1).expect("m1 answers");
    counter(&status["manager"]["counters"], "flows_created")
}

/// Short connections (wrk, `Connection: close`) through the VIP for 10 s with `managers`
/// managers; what the managers spent on them.
fn load_run(tag: &str, managers: usize) -> Cost {
    const SECONDS: u64 = 10;
    let cluster = Cluster::start(tag, Settings::managers(managers));
    let capture = (managers > 1).then(|| capture_from_m1(&cluster));
    let records_before = counter(&cluster.failover(1).unwrap_or_default(), "records_sent");
    let created_before = flows_created(&cluster);
    let cpu_before: Vec<Duration> = (1..=managers).map(|k| cluster.manager_cpu(k)).collect();
    let started = Instant::now();
    let run = cluster
        .client
        .output(&[
            "wrk",
            "-t1",
            "-c4",
            &format!("-d{SECONDS}s"),
            "-H",
            "Connection: close",
            &format!("http://{VIP4}/"),
        ])
        .expect("wrk runs");
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let seconds = started.elapsed().as_secs_f64();
    let cpu: Vec<Duration> = (1..=managers)
        .map(|k| cluster.manager_cpu(k).saturating_sub(cpu_before[k - 1]))
        .collect();
    // Records of the last flows' closes may still be in flight.
    std::thread::sleep(Duration::from_millis(300));
    let records =
        counter(&cluster.failover(1).unwrap_or_default(), "records_sent") - records_before;
    let created = flows_created(&cluster) - created_before;
    let wrk = parse_wrk(&out).unwrap_or_else(|e| panic!("wrk output: {e}\n{out}"));
    assert!(
        wrk.requests > 0 && wrk.socket_errors == 0 && wrk.bad_responses == 0,
        "wrk through the VIP: {out}\n{}",
        cluster.diagnostics()
    );
    let (mut replicate_bytes, mut replicate_datagrams, mut heartbeat_bytes) = (0, 0, 0);
    if let Some(capture) = capture {
        for (_, frame) in capture.stop().0 {
            let Some((_, payload)) = udp_payload(&frame) else {
                continue;
            };
            match message_type(payload) {
                Some(MessageType::Replicate) => {
                    replicate_bytes += payload.len() as u64;
                    replicate_datagrams += 1;
                }
                Some(MessageType::Heartbeat) => heartbeat_bytes += payload.len() as u64,
                _ => {}
            }
        }
    }
    Cost {
        connections: wrk.requests,
        seconds,
        cpu,
        created,
        records,
        replicate_bytes,
        replicate_datagrams,
        heartbeat_bytes,
    }
}

/// Measures what replication costs per new flow (docs/failover.md): the same load with one
/// manager alone and with a backup. Figures are printed; only their existence is asserted.
#[test]
fn replication_overhead_per_new_flow() {
    let _serial = serial();
    let alone = load_run("forepl1", 1);
    let paired = load_run("forepl2", 2);
    let per_flow = |d: Duration, c: &Cost| d.as_secs_f64() * 1e6 / c.connections as f64;
    println!(
        "replication overhead: alone {} new connections in {:.1} s ({:.0}/s), active manager \
         {:.1} µs CPU per new flow; with a backup {} in {:.1} s ({:.0}/s), active manager {:.1} µs, \
         backup {:.1} µs CPU per new flow; {:.2} records, {:.1} replication bytes ({:.3} \
         datagrams) per new flow; heartbeats {} bytes in the run",
        alone.connections,
        alone.seconds,
        alone.connections as f64 / alone.seconds,
        per_flow(alone.cpu[0], &alone),
        paired.connections,
        paired.seconds,
        paired.connections as f64 / paired.seconds,
        per_flow(paired.cpu[0], &paired),
        per_flow(paired.cpu[1], &paired),
        paired.records as f64 / paired.connections as f64,
        paired.replicate_bytes as f64 / paired.connections as f64,
        paired.replicate_datagrams as f64 / paired.connections as f64,
        paired.heartbeat_bytes,
    );
    // A flow is replicated when placed and when it closes; wrk's last 4 connections may still
    // be open when it stops.
    assert!(
        paired.created >= paired.connections && paired.records + 4 >= 2 * paired.created,
        "every new flow is replicated when placed and when closed: {} records for {} flows \
         ({} connections)",
        paired.records,
        paired.created,
        paired.connections
    );
    assert!(paired.replicate_bytes > 0 && alone.records == 0);
}
