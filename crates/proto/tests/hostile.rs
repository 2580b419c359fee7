//! Hostile input: decode and open must return, never panic, whatever the bytes.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot build its input should fail loudly"
)]

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use tether_proto::codec::{HEADER_LEN, decode, decode_counted, encode};
use tether_proto::*;

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<prop::sample::Index>(), vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation, fix_length: bool) {
    match m {
        Mutation::Flip(..) | Mutation::Delete(..) | Mutation::Truncate(_) if bytes.is_empty() => {}
        Mutation::Flip(i, x) => {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        Mutation::Insert(i, b) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i.index(bytes.len());
            bytes.drain(at..(at + n).min(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
    // Keeping the total length right lets mutations reach past the header check.
    if fix_length && bytes.len() >= HEADER_LEN {
        let total = u32::try_from(bytes.len()).unwrap().to_be_bytes();
        bytes[2..6].copy_from_slice(&total);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn decode_returns_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_returns_on_arbitrary_segments_behind_a_valid_header(
        kind in 1u8..=6,
        body in vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![PROTOCOL_VERSION, kind, 0, 0, 0, 0];
        bytes.extend_from_slice(&body);
        let total = u32::try_from(bytes.len()).unwrap().to_be_bytes();
        bytes[2..6].copy_from_slice(&total);
        let _ = decode_counted(&bytes);
    }

    #[test]
    fn decode_returns_on_mutated_messages(
        message in common::message(),
        mutations in vec(mutation(), 1..4),
        fix_length in any::<bool>(),
    ) {
        let mut bytes = encode(&message);
        for m in &mutations {
            apply(&mut bytes, m, fix_length);
        }
        if let Ok(decoded) = decode(&bytes) {
            // Whatever decodes must encode again without trouble.
            let _ = encode(&decoded);
        }
    }

    #[test]
    fn open_returns_on_mutated_sealed_messages(
        message in common::message(),
        mutations in vec(mutation(), 1..4),
        fix_length in any::<bool>(),
    ) {
        let auth = AuthConfig {
            keys: vec![Key { id: 1, secret: vec![7; 32] }],
            send_key: Some(1),
            require: false,
        };
        let mut bytes = Codec::new(auth.clone(), 0).seal(&message);
        for m in &mutations {
            apply(&mut bytes, m, fix_length);
        }
        let mut rx = Codec::new(auth, 0);
        let _ = rx.open(&bytes);
        let c = rx.counters();
        prop_assert_eq!(c.accepted + c.malformed + c.auth_failed + c.replayed, 1);
    }
}
