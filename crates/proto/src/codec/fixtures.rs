//! Byte fixtures: every segment's exact encoding, and every way decoding refuses bytes.

use core::net::IpAddr;

use tether_wire::AffinityKey;

use super::{DecodeError, decode, decode_counted, encode};
use crate::model::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key_v4() -> AffinityKey {
    AffinityKey {
        protocol: 6,
        src: ip("10.0.0.1"),
        src_port: 40000,
        dst: ip("192.0.2.10"),
        dst_port: 80,
    }
}

fn fixed_affinity() -> FixedAffinity {
    FixedAffinity {
        key: key_v4(),
        dispatch: true,
        information: false,
        forward: ip("10.1.0.5"),
        ttl: 30,
    }
}

fn fixed_update() -> FixedUpdate {
    FixedUpdate {
        affinity: fixed_affinity(),
        actions: Actions::default(),
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
        packet: None,
    }
}

fn wildcard_affinity() -> WildcardAffinity {
    WildcardAffinity {
        protocol: 17,
        src: ip("0.0.0.0"),
        src_mask: ip("0.0.0.0"),
        src_port: 0,
        dst: ip("192.0.2.10"),
        dst_mask: ip("255.255.255.255"),
        dst_port: 53,
        dispatch: false,
        information: true,
        forward: ip("0.0.0.0"),
        ttl: 0x0102_0304,
    }
}

fn wildcard_update() -> WildcardUpdate {
    WildcardUpdate {
        affinity: wildcard_affinity(),
        actions: Actions::default(),
        action_list: Vec::new(),
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
    }
}

fn interest_match() -> InterestMatch {
    InterestMatch {
        kind: MatchKind::Fixed,
        identifier: AffinityIdentifier {
            key: AffinityKey {
                protocol: 6,
                src: ip("2001:db8::1"),
                src_port: 443,
                dst: ip("2001:db8::2"),
                dst_port: 50000,
            },
            dispatch: false,
            information: true,
            matched: InterestBits::FIN | InterestBits::ACK,
        },
        envelope: Envelope::default(),
        packet: None,
    }
}

/// The encoded segment (header and body) of type `kind` in `bytes`.
fn segment(bytes: &[u8], kind: SegmentType) -> Vec<u8> {
    let mut at = super::HEADER_LEN;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
        let end = at + super::SEGMENT_HEADER_LEN + len;
        if bytes[at] == kind as u8 {
            return bytes[at..end].to_vec();
        }
        at = end;
    }
    panic!("no {kind} in {bytes:02x?}");
}

/// Parses spaced hex.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Checks that `message` round-trips and that its `kind` segment is `expected`.
fn assert_segment(message: &Message, kind: SegmentType, expected: &str) {
    let bytes = encode(message);
    assert_eq!(segment(&bytes, kind), hex(expected), "{kind}");
    assert_eq!(decode(&bytes).as_ref(), Ok(message));
}

#[test]
fn the_header_is_version_type_and_total_length() {
    let bytes = encode(&Message::IpPacketOnly(vec![0x45, 0x00]));
    assert_eq!(bytes, hex("01 06 0000000e  0f 80 00000002 45 00"));
}

#[test]
fn wildcard_affinity_segment_layout() {
    assert_segment(
        &Message::WildcardUpdate(wildcard_update()),
        SegmentType::WildcardAffinity,
        "01 80 00000023  11 02 0000 0035 01020304
         04 00000000  04 00000000  04 c000020a  04 ffffffff  04 00000000",
    );
}

#[test]
fn fixed_affinity_segment_layout_with_ipv6_key() {
    let mut m = fixed_update();
    m.affinity.key = interest_match().identifier.key;
    m.affinity.forward = ip("::");
    assert_segment(
        &Message::FixedUpdate(m),
        SegmentType::FixedAffinity,
        "02 80 0000003d  06 01 01bb c350 0000001e
         06 20010db8000000000000000000000001
         06 20010db8000000000000000000000002
         06 00000000000000000000000000000000",
    );
}

#[test]
fn affinity_identifier_segment_layout() {
    assert_segment(
        &Message::InterestMatch(interest_match()),
        SegmentType::AffinityIdentifier,
        "03 80 0000002a  06 02 01bb c350 0011
         06 20010db8000000000000000000000001
         06 20010db8000000000000000000000002",
    );
}

#[test]
fn precedence_segment_layouts() {
    let mut m = fixed_update();
    m.service_precedence = Some(ServicePrecedence {
        search_order: SearchOrder::LowerFirst,
        value: 0x1234,
    });
    m.backup_precedence = Some(7);
    let m = Message::FixedUpdate(m);
    assert_segment(&m, SegmentType::ServicePrecedence, "04 00 00000003 01 1234");
    assert_segment(&m, SegmentType::BackupPrecedence, "05 00 00000002 0007");
}

#[test]
fn envelope_segment_layouts() {
    let mut m = interest_match();
    m.envelope = Envelope {
        identity: Some(Identity {
            addr: ip("10.9.8.7"),
            name: "agent-1".into(),
        }),
        manager_data: Some(vec![0xaa, 0xbb]),
        agent_data: Some(vec![]),
        unsupported_required: vec![],
    };
    m.packet = Some(vec![0x60, 0, 0, 0]);
    let m = Message::InterestMatch(m);
    assert_segment(
        &m,
        SegmentType::IdentityInfo,
        "09 00 0000000c 04 0a090807 6167656e742d31",
    );
    assert_segment(&m, SegmentType::ManagerInterestData, "07 00 00000002 aa bb");
    assert_segment(&m, SegmentType::AgentInterestData, "08 00 00000000");
    assert_segment(&m, SegmentType::IpPacket, "0f 80 00000004 60000000");
}

#[test]
fn action_segment_layouts() {
    let mut m = wildcard_update();
    m.actions = Actions {
        nat: Some(NatAction {
            src: ip("0.0.0.0"),
            src_port: 0,
            dst: ip("10.1.0.5"),
            dst_port: 8080,
        }),
        sequence_adjust: Some(SequenceAdjust {
            seq_delta: 1,
            initial_seq: 2,
            ack_delta: 0xffff_ffff,
            initial_ack: 4,
        }),
        interest: Some(InterestCriteria {
            addr: ip("10.0.0.100"),
            port: 7001,
            mask: InterestBits::ALL,
            data: InterestBits::SYN,
            copy: InterestBits::NONE,
            hold: InterestBits::FRAGMENT,
        }),
        advertise: Some(AdvertiseAction {
            addr: ip("192.0.2.10"),
            prefix_len: 32,
        }),
        consistent_hash: None,
    };
    m.action_list = vec![
        ActionListEntry {
            segment_type: SegmentType::ActionNat as u8,
            required: true,
        },
        ActionListEntry {
            segment_type: 200,
            required: false,
        },
    ];
    let m = Message::WildcardUpdate(m);
    assert_segment(
        &m,
        SegmentType::ActionNat,
        "0a 80 0000000e 0000 1f90 04 00000000 04 0a010005",
    );
    assert_segment(
        &m,
        SegmentType::ActionAdvertise,
        "0b 80 00000006 20 04 c000020a",
    );
    assert_segment(
        &m,
        SegmentType::ActionSequenceAdjust,
        "0c 80 00000010 00000001 00000002 ffffffff 00000004",
    );
    assert_segment(
        &m,
        SegmentType::ActionInterestCriteria,
        "0d 80 0000000f 1b59 8000 0002 0000 0100 04 0a000064",
    );
    assert_segment(&m, SegmentType::ActionList, "0e 00 00000004 0a 80 c8 00");
}

const KEY_V4: &str = "06 9c40 0050 04 0a000001 04 c000020a";

fn consistent_hash() -> ConsistentHash {
    ConsistentHash {
        dispatch: false,
        fixed_ttl: 30,
        table_size: 13,
        backends: vec![HashBackend {
            addr: ip("10.1.0.5"),
            port: 8080,
            weight: 2,
            eligible: true,
            permutation: crate::maglev::Permutation { offset: 3, skip: 5 },
        }],
    }
}

#[test]
fn consistent_hash_action_layout() {
    let mut m = wildcard_update();
    m.actions.consistent_hash = Some(consistent_hash());
    assert_segment(
        &Message::WildcardUpdate(m),
        SegmentType::ActionConsistentHash,
        "13 00 00000021 00 00 0001 0000000d 0000001e \
         01 00 1f90 00000002 00000003 00000005 04 0a010005",
    );
}

#[test]
fn flow_report_layout() {
    let m = Message::FlowReport(FlowReport {
        events: vec![
            FlowEvent::Placed {
                key: key_v4(),
                backend: ip("10.1.0.5"),
                port: 8080,
            },
            FlowEvent::Closed { key: key_v4() },
        ],
    });
    assert_segment(
        &m,
        SegmentType::FlowReport,
        &format!("14 80 00000029 0002 01 {KEY_V4} 1f90 04 0a010005 02 {KEY_V4}"),
    );
    // What a sender sizes its batches by: a sealed report adds the security segment.
    let FlowReport { events } = match &m {
        Message::FlowReport(r) => r.clone(),
        _ => unreachable!(),
    };
    assert_eq!(FlowReport::event_len(&events[0]), 23);
    assert_eq!(FlowReport::event_len(&events[1]), 16);
    assert_eq!(encode(&m).len() + 6 + 53, FlowReport::OVERHEAD + 23 + 16);
}

#[test]
fn consistent_hash_tables_an_agent_could_not_build_are_refused() {
    let action = |size: &str, backend: &str| {
        format!("01 01 00000000 13 00 00000021 00 00 0001 {size} 0000001e {backend}")
    };
    let good_backend = "01 00 1f90 00000002 00000003 00000005 04 0a010005";
    let problem = |e: DecodeError| match e {
        DecodeError::BadConsistentHash { offset, .. } => offset,
        other => panic!("not a consistent-hash error: {other:?}"),
    };
    // 12 is not a prime; 1 slot is not above the backend count; 1048583 is too large.
    for size in ["0000000c", "00000001", "00100007"] {
        assert_eq!(problem(refuse(&action(size, good_backend))), 16);
    }
    for backend in [
        "01 00 1f90 00000000 00000003 00000005 04 0a010005",
        "01 00 1f90 00000002 0000000d 00000005 04 0a010005",
        "01 00 1f90 00000002 00000003 00000000 04 0a010005",
        "01 00 1f90 00000002 00000003 0000000d 04 0a010005",
    ] {
        assert_eq!(problem(refuse(&action("0000000d", backend))), 24);
    }
    assert_eq!(
        problem(refuse(
            "01 01 00000000 13 00 0000000c 00 00 0000 0000000d 0000001e"
        )),
        14
    );
}

#[test]
fn unknown_flow_events_are_refused() {
    assert_eq!(
        refuse("01 0a 00000000 14 80 00000003 0001 03"),
        DecodeError::BadFlowEvent {
            found: 3,
            offset: 14
        }
    );
}

#[test]
fn unknown_optional_segment_is_skipped_and_counted() {
    let mut bytes = encode(&Message::FixedUpdate(fixed_update()));
    bytes.extend_from_slice(&hex("c8 00 00000003 010203"));
    fix_length(&mut bytes);
    let decoded = decode_counted(&bytes).unwrap();
    assert_eq!(decoded.message, Message::FixedUpdate(fixed_update()));
    assert_eq!(decoded.skipped_optional, 1);
}

#[test]
fn unknown_required_segment_is_listed_once_for_a_deny() {
    let mut bytes = encode(&Message::FixedUpdate(fixed_update()));
    bytes.extend_from_slice(&hex("c8 80 00000000  c8 80 00000001 ff"));
    fix_length(&mut bytes);
    let Ok(Message::FixedUpdate(m)) = decode(&bytes) else {
        panic!("not a fixed update");
    };
    assert_eq!(m.envelope.unsupported_required, vec![0xc8]);
}

#[test]
fn advertise_in_a_fixed_update_is_an_unsupported_required_segment() {
    let mut m = fixed_update();
    m.actions.advertise = Some(AdvertiseAction {
        addr: ip("192.0.2.10"),
        prefix_len: 32,
    });
    let Ok(Message::FixedUpdate(decoded)) = decode(&encode(&Message::FixedUpdate(m))) else {
        panic!("not a fixed update");
    };
    assert_eq!(decoded.actions.advertise, None);
    assert_eq!(
        decoded.envelope.unsupported_required,
        vec![SegmentType::ActionAdvertise as u8]
    );
}

#[test]
fn known_segment_not_allowed_and_optional_is_skipped() {
    let mut bytes = encode(&Message::InterestMatch(interest_match()));
    bytes.extend_from_slice(&hex("05 00 00000002 0007"));
    fix_length(&mut bytes);
    let decoded = decode_counted(&bytes).unwrap();
    assert_eq!(decoded.message, Message::InterestMatch(interest_match()));
    assert_eq!(decoded.skipped_optional, 1);
}

fn fix_length(bytes: &mut [u8]) {
    let len = u32::try_from(bytes.len()).unwrap().to_be_bytes();
    bytes[2..6].copy_from_slice(&len);
}

/// Decodes spaced hex (with the total length filled in) and returns the error.
fn refuse(s: &str) -> DecodeError {
    let mut bytes = hex(s);
    if bytes.len() >= 6 {
        fix_length(&mut bytes);
    }
    decode(&bytes).unwrap_err()
}

const FIXED: &str = "02 80 00000019 06 00 0001 0002 0000001e 04 0a000001 04 0a000002 04 00000000";

#[test]
fn header_errors_name_the_problem() {
    assert_eq!(
        refuse("01 06 0000"),
        DecodeError::TruncatedHeader { len: 4 }
    );
    assert_eq!(
        refuse("02 06 00000000"),
        DecodeError::UnsupportedVersion { found: 2 }
    );
    assert_eq!(
        refuse("01 0b 00000000"),
        DecodeError::UnknownMessageType { found: 11 }
    );
    assert_eq!(
        decode(&hex("01 06 000000ff 0f 80 00000000")),
        Err(DecodeError::LengthMismatch {
            declared: 255,
            actual: 12
        })
    );
}

#[test]
fn segment_framing_errors_name_the_offset() {
    assert_eq!(
        refuse("01 06 00000000 0f 80 0000"),
        DecodeError::TruncatedSegmentHeader {
            offset: 6,
            remaining: 4
        }
    );
    assert_eq!(
        refuse("01 06 00000000 0f 80 00000005 0102"),
        DecodeError::SegmentPastEnd {
            segment: 15,
            offset: 6,
            len: 5,
            remaining: 2
        }
    );
}

#[test]
fn field_errors_name_segment_field_and_offset() {
    assert_eq!(
        refuse("01 02 00000000 02 80 00000003 06 00 00"),
        DecodeError::TruncatedField {
            segment: SegmentType::FixedAffinity,
            field: "source port",
            offset: 14
        }
    );
    assert_eq!(
        refuse(&format!("01 02 00000000 {FIXED} ff").replace("00000019", "0000001a")),
        DecodeError::TrailingBytes {
            segment: SegmentType::FixedAffinity,
            extra: 1,
            offset: 37
        }
    );
    assert_eq!(
        refuse(&format!(
            "01 02 00000000 {}",
            FIXED.replace("04 0a000001", "05 0a000001")
        )),
        DecodeError::BadAddressFamily {
            segment: SegmentType::FixedAffinity,
            field: "source address",
            found: 5,
            offset: 22
        }
    );
    assert_eq!(
        refuse(&format!("01 02 00000000 {FIXED} 04 00 00000003 02 0001")),
        DecodeError::BadSearchOrder {
            found: 2,
            offset: 43
        }
    );
    assert_eq!(
        refuse("01 01 00000000 0b 80 00000006 21 04 c000020a"),
        DecodeError::PrefixTooLong {
            prefix_len: 33,
            max: 32,
            offset: 12
        }
    );
    assert_eq!(
        refuse("01 03 00000000 0e 00 00000003 0a 80 0b"),
        DecodeError::RaggedActionList { len: 3, offset: 12 }
    );
    assert_eq!(
        refuse("01 03 00000000 0e 00 00000000 09 00 00000006 04 0a000001 ff"),
        DecodeError::InvalidName { offset: 23 }
    );
}

#[test]
fn security_segment_errors() {
    let security = "06 00 0000002d 01 00000007 0000000000000001 \
         0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        refuse(&format!("01 06 00000000 0f 80 00000000 {security}")),
        DecodeError::MisplacedSecurity { offset: 12 }
    );
    assert_eq!(
        refuse(&format!(
            "01 06 00000000 {}",
            security.replacen("01 00000007", "02 00000007", 1)
        )),
        DecodeError::UnsupportedSecurity { found: 2 }
    );
    assert_eq!(
        refuse("01 06 00000000 06 00 00000001 01"),
        DecodeError::TruncatedField {
            segment: SegmentType::Security,
            field: "key id",
            offset: 13
        }
    );
}

#[test]
fn message_structure_errors() {
    assert_eq!(
        refuse(&format!("01 02 00000000 {FIXED} {FIXED}")),
        DecodeError::DuplicateSegment {
            segment: SegmentType::FixedAffinity,
            offset: 37
        }
    );
    let wildcard = hex_of(&encode(&Message::WildcardUpdate(wildcard_update())));
    let wildcard_segment = &wildcard[6 * 3..];
    assert_eq!(
        refuse(&format!(
            "01 03 00000000 0e 00 00000000 {FIXED} {wildcard_segment}"
        )),
        DecodeError::ConflictingAffinities
    );
    assert_eq!(
        refuse("01 03 00000000"),
        DecodeError::MissingSegment {
            message: MessageType::AffinityUpdateDeny,
            segment: SegmentType::ActionList
        }
    );
    assert_eq!(
        refuse("01 06 00000000 0f 80 00000000 c8 80 00000000"),
        DecodeError::UnsupportedRequired { segment: 0xc8 }
    );
}

fn hex_of(bytes: &[u8]) -> String {
    use core::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x} ");
        s
    })
}

#[test]
fn every_error_is_a_sentence_with_a_stable_reason() {
    let e = refuse("01 06 00000000 0f 80 00000005 0102");
    assert_eq!(
        e.to_string(),
        "segment type 15 at offset 6 declares a 5-byte body but only 2 bytes follow its header"
    );
    assert_eq!(e.reason(), "segment_past_end");
    let e = DecodeError::MissingSegment {
        message: MessageType::AffinityUpdateFixed,
        segment: SegmentType::FixedAffinity,
    };
    assert_eq!(
        e.to_string(),
        "affinity update-fixed affinity (type 2) message has no fixed affinity segment (type 2), \
         which it requires"
    );
}
