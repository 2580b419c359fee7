//! Properties of encode and decode over every message a sender can build.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot build its input should fail loudly"
)]

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use tether_proto::SegmentType;
use tether_proto::codec::{self, DecodeError, FLAG_REQUIRED, HEADER_LEN, decode, encode};

/// `bytes` with a segment of `kind` inserted right after the header, lengths fixed up.
fn insert_after_header(bytes: &[u8], kind: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let (header, rest) = bytes.split_at(HEADER_LEN);
    let mut out = header.to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(rest);
    let total = u32::try_from(out.len()).unwrap().to_be_bytes();
    out[2..6].copy_from_slice(&total);
    out
}

/// Segment types this version does not know.
fn unknown_kind() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), 21u8..=255]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_an_encoded_message_gives_it_back(message in common::message()) {
        let bytes = encode(&message);
        prop_assert_eq!(decode(&bytes), Ok(message));
    }

    #[test]
    fn encoding_is_deterministic_and_length_prefixed(message in common::message()) {
        let bytes = encode(&message);
        prop_assert_eq!(&bytes, &encode(&message));
        prop_assert_eq!(u32::from_be_bytes(bytes[2..6].try_into().unwrap()) as usize, bytes.len());
        prop_assert_eq!(bytes[1], message.message_type() as u8);
    }

    #[test]
    fn an_unknown_optional_segment_is_skipped(
        message in common::message(),
        kind in unknown_kind(),
        flags in 0u8..FLAG_REQUIRED,
        body in vec(any::<u8>(), 0..32),
    ) {
        let bytes = insert_after_header(&encode(&message), kind, flags, &body);
        let decoded = codec::decode_counted(&bytes).unwrap();
        prop_assert_eq!(decoded.message, message);
        prop_assert_eq!(decoded.skipped_optional, 1);
    }

    #[test]
    fn an_unknown_required_segment_is_reported_for_a_deny(
        message in common::message(),
        kind in unknown_kind(),
        body in vec(any::<u8>(), 0..32),
    ) {
        let bytes = insert_after_header(&encode(&message), kind, FLAG_REQUIRED, &body);
        match decode(&bytes) {
            Ok(decoded) => {
                let envelope = decoded.envelope().unwrap();
                prop_assert_eq!(&envelope.unsupported_required, &vec![kind]);
            }
            Err(e) => {
                // Messages without an envelope have nowhere to report it: they are rejected.
                prop_assert!(message.envelope().is_none());
                prop_assert_eq!(e, DecodeError::UnsupportedRequired { segment: kind });
            }
        }
    }
}

#[test]
fn every_segment_type_has_a_name_and_round_trips_its_number() {
    for v in 1..=20u8 {
        let t = SegmentType::from_u8(v).unwrap();
        assert_eq!(t as u8, v);
        assert!(t.to_string().ends_with(&format!("(type {v})")));
    }
    assert_eq!(SegmentType::from_u8(21), None);
    assert_eq!(SegmentType::from_u8(0), None);
}
