//! The examples in `docs/protocol.md` are the encoder's output, byte for byte.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot build its input should fail loudly"
)]

use tether_proto::codec::encode;
use tether_proto::*;
use tether_wire::AffinityKey;

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The bytes of the hex block that follows `<!-- example: {name} -->` in the document;
/// everything after `#` on a line is commentary.
fn example(name: &str) -> Vec<u8> {
    let marker = format!("<!-- example: {name} -->");
    let after = DOC
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no {marker}"))
        .1;
    let block = after
        .split_once("```text\n")
        .unwrap()
        .1
        .split_once("```")
        .unwrap()
        .0;
    let digits: String = block
        .lines()
        .map(|l| l.split_once('#').map_or(l, |(hex, _)| hex))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// The example key: id 7, secret of 32 ASCII bytes.
fn example_auth() -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id: 7,
            secret: b"tether-example-secret-32-bytes!!".to_vec(),
        }],
        send_key: Some(7),
        require: true,
    }
}

/// The forward wildcard of a TCP service on 192.0.2.10:80 (docs/affinities.md).
fn wildcard_update() -> Message {
    Message::WildcardUpdate(WildcardUpdate {
        affinity: WildcardAffinity {
            protocol: 6,
            src: "0.0.0.0".parse().unwrap(),
            src_mask: "0.0.0.0".parse().unwrap(),
            src_port: 0,
            dst: "192.0.2.10".parse().unwrap(),
            dst_mask: "255.255.255.255".parse().unwrap(),
            dst_port: 80,
            dispatch: false,
            information: false,
            forward: "0.0.0.0".parse().unwrap(),
            ttl: 30,
        },
        actions: Actions {
            interest: Some(InterestCriteria {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
                mask: InterestBits::ALL,
                data: InterestBits::ALL,
                copy: InterestBits::NONE,
                hold: InterestBits::NONE,
            }),
            ..Actions::default()
        },
        action_list: Vec::new(),
        service_precedence: Some(ServicePrecedence {
            search_order: SearchOrder::HigherFirst,
            value: 100,
        }),
        backup_precedence: None,
        envelope: Envelope {
            identity: Some(Identity {
                addr: "10.0.0.2".parse().unwrap(),
                name: "mgr-a".into(),
            }),
            ..Envelope::default()
        },
    })
}

/// An agent reporting a FIN on an IPv6 flow.
fn interest_match() -> Message {
    Message::InterestMatch(InterestMatch {
        kind: MatchKind::Fixed,
        identifier: AffinityIdentifier {
            key: AffinityKey {
                protocol: 6,
                src: "2001:db8::10".parse().unwrap(),
                src_port: 50000,
                dst: "2001:db8::1".parse().unwrap(),
                dst_port: 443,
            },
            dispatch: false,
            information: true,
            matched: InterestBits::FIN,
        },
        envelope: Envelope {
            agent_data: Some(vec![0, 0, 0, 42]),
            ..Envelope::default()
        },
        packet: None,
    })
}

#[test]
fn the_signed_example_is_what_seal_produces() {
    let bytes = Codec::new(example_auth(), 41).seal(&wildcard_update());
    assert_eq!(example("signed wildcard update"), bytes);
}

#[test]
fn the_signed_example_opens() {
    let mut rx = Codec::new(example_auth(), 0);
    assert_eq!(
        rx.open(&example("signed wildcard update")),
        Ok(wildcard_update())
    );
}

#[test]
fn the_unsigned_example_is_what_encode_produces() {
    assert_eq!(
        example("unsigned interest match"),
        encode(&interest_match())
    );
}
