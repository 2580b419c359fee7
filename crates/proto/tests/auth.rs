//! Sealing and opening: signatures, keys, replay windows and the counters that record them.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot build its input should fail loudly"
)]

mod common;

use proptest::prelude::*;
use tether_proto::codec::{AuthConfigError, decode, encode};
use tether_proto::*;

const SECRET: &[u8] = b"a shared secret of 32 bytes!!!!!";

fn config(id: u32, secret: &[u8], require: bool) -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id,
            secret: secret.to_vec(),
        }],
        send_key: Some(id),
        require,
    }
}

fn sender() -> Codec {
    Codec::new(config(7, SECRET, true), 1000)
}

fn receiver() -> Codec {
    Codec::new(config(7, SECRET, true), 0)
}

fn update(ttl: u32) -> Message {
    Message::FixedUpdate(FixedUpdate {
        affinity: FixedAffinity {
            key: tether_wire::AffinityKey {
                protocol: 6,
                src: "10.0.0.1".parse().unwrap(),
                src_port: 40000,
                dst: "192.0.2.10".parse().unwrap(),
                dst_port: 80,
            },
            dispatch: false,
            information: false,
            forward: "10.1.0.5".parse().unwrap(),
            ttl,
        },
        actions: Actions::default(),
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
        packet: None,
    })
}

/// The sequence number of a sealed message (header 6, segment header 6, type 1, key id 4).
fn sequence_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes[17..25].try_into().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn opening_a_sealed_message_gives_it_back(message in common::message()) {
        let bytes = sender().seal(&message);
        prop_assert_eq!(receiver().open(&bytes), Ok(message.clone()));
        prop_assert_eq!(decode(&bytes), Ok(message));
    }

    #[test]
    fn any_flipped_byte_in_a_sealed_message_is_rejected(
        message in common::message().prop_filter("signed", |m| !matches!(m, Message::IpPacketOnly(_))),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = sender().seal(&message);
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        let mut rx = receiver();
        let result = rx.open(&bytes);
        prop_assert!(
            matches!(
                result,
                Err(Rejection::BadMac | Rejection::Malformed(_) | Rejection::UnknownKey(_) | Rejection::Unsigned)
            ),
            "byte {} flipped: {:?}", at, result
        );
        prop_assert_eq!(rx.counters().accepted, 0);
    }
}

#[test]
fn sequence_numbers_start_after_the_initial_one_and_increase() {
    let mut tx = sender();
    let seqs: Vec<u64> = (0..3).map(|_| sequence_of(&tx.seal(&update(30)))).collect();
    assert_eq!(seqs, vec![1001, 1002, 1003]);
}

#[test]
fn ip_packet_only_messages_are_never_signed_and_accepted_unsigned() {
    let message = Message::IpPacketOnly(vec![0x45, 0, 0, 20]);
    let bytes = sender().seal(&message);
    assert_eq!(bytes, encode(&message));
    assert_eq!(receiver().open(&bytes), Ok(message));
}

#[test]
fn a_replayed_message_is_rejected_and_counted() {
    let bytes = sender().seal(&update(30));
    let mut rx = receiver();
    assert!(rx.open(&bytes).is_ok());
    assert_eq!(rx.open(&bytes), Err(Rejection::Replayed(1001)));
    assert_eq!(rx.counters().replayed, 1);
    assert_eq!(rx.counters().accepted, 1);
}

#[test]
fn reordered_messages_inside_the_window_are_accepted_and_older_ones_rejected() {
    let mut tx = sender();
    let sealed: Vec<Vec<u8>> = (0..200).map(|i| tx.seal(&update(i))).collect();
    let mut rx = receiver();
    assert!(rx.open(&sealed[199]).is_ok());
    let oldest_in_window = 199 - (codec::REPLAY_WINDOW as usize - 1);
    for bytes in sealed[oldest_in_window..199].iter().rev() {
        assert!(rx.open(bytes).is_ok());
    }
    let too_old = &sealed[oldest_in_window - 1];
    assert_eq!(
        rx.open(too_old),
        Err(Rejection::Replayed(sequence_of(too_old)))
    );
    assert_eq!(rx.counters().accepted, codec::REPLAY_WINDOW);
    assert_eq!(rx.counters().replayed, 1);
}

#[test]
fn replay_windows_are_kept_per_sender_id() {
    // Two senders (different initial sequences, so different ids) may use the same numbers.
    let one = Codec::new(config(7, SECRET, true), 1000).seal(&update(30));
    let other = Codec::new(config(7, SECRET, true), 2_000_000).seal(&update(30));
    let mut rx = receiver();
    assert!(rx.open(&one).is_ok());
    assert!(rx.open(&other).is_ok());
    let mut again = Codec::new(config(7, SECRET, true), 1000);
    assert!(
        matches!(
            rx.open(&again.seal(&update(31))),
            Err(Rejection::Replayed(_))
        ),
        "the same sender id starts its numbers over: a replay"
    );
}

#[test]
fn a_restarted_sender_with_a_later_initial_sequence_is_accepted() {
    let mut rx = receiver();
    assert!(rx.open(&sender().seal(&update(30))).is_ok());
    let restarted = Codec::new(config(7, SECRET, true), 5000).seal(&update(30));
    assert!(rx.open(&restarted).is_ok());
}

#[test]
fn a_message_signed_with_the_wrong_secret_is_a_bad_mac_and_counted() {
    let bytes =
        Codec::new(config(7, b"another secret, also 32 bytes!!!", true), 0).seal(&update(30));
    let mut rx = receiver();
    assert_eq!(rx.open(&bytes), Err(Rejection::BadMac));
    assert_eq!(rx.counters().auth_failed, 1);
}

#[test]
fn a_bad_mac_does_not_advance_the_window() {
    let mut tx = sender();
    let first = tx.seal(&update(1));
    let mut forged = tx.seal(&update(2));
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut rx = receiver();
    assert_eq!(rx.open(&forged), Err(Rejection::BadMac));
    assert!(rx.open(&first).is_ok());
}

#[test]
fn a_known_key_must_verify_even_when_signatures_are_not_required() {
    let bytes =
        Codec::new(config(7, b"another secret, also 32 bytes!!!", false), 0).seal(&update(30));
    let mut rx = Codec::new(config(7, SECRET, false), 0);
    assert_eq!(rx.open(&bytes), Err(Rejection::BadMac));
}

#[test]
fn an_unknown_key_is_rejected_when_required_and_ignored_otherwise() {
    let bytes = Codec::new(config(9, SECRET, true), 0).seal(&update(30));
    let mut strict = receiver();
    assert_eq!(strict.open(&bytes), Err(Rejection::UnknownKey(9)));
    assert_eq!(strict.counters().auth_failed, 1);
    let mut lenient = Codec::new(config(7, SECRET, false), 0);
    assert_eq!(lenient.open(&bytes), Ok(update(30)));
}

#[test]
fn an_unsigned_message_is_rejected_when_required_and_accepted_otherwise() {
    let bytes = encode(&update(30));
    let mut strict = receiver();
    assert_eq!(strict.open(&bytes), Err(Rejection::Unsigned));
    assert_eq!(strict.counters().auth_failed, 1);
    let mut lenient = Codec::new(AuthConfig::default(), 0);
    assert_eq!(lenient.open(&bytes), Ok(update(30)));
    assert_eq!(lenient.counters().accepted, 1);
}

#[test]
fn a_codec_without_a_send_key_seals_unsigned() {
    let mut tx = Codec::new(AuthConfig::default(), 0);
    assert_eq!(tx.seal(&update(30)), encode(&update(30)));
}

#[test]
fn malformed_datagrams_and_skipped_segments_are_counted() {
    let mut rx = Codec::new(AuthConfig::default(), 0);
    assert!(matches!(rx.open(&[1, 2, 3]), Err(Rejection::Malformed(_))));
    let mut bytes = encode(&update(30));
    bytes.extend_from_slice(&[200, 0, 0, 0, 0, 0]);
    let total = u32::try_from(bytes.len()).unwrap().to_be_bytes();
    bytes[2..6].copy_from_slice(&total);
    assert_eq!(rx.open(&bytes), Ok(update(30)));
    let c = rx.counters();
    assert_eq!((c.malformed, c.accepted, c.skipped_optional), (1, 1, 1));
}

#[test]
fn rejections_have_stable_reasons_and_actionable_messages() {
    assert_eq!(Rejection::UnknownKey(9).reason(), "unknown_key");
    assert_eq!(
        Rejection::UnknownKey(9).to_string(),
        "message is signed with unknown key id 9; configure that key or fix the sender"
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let key = Key {
        id: 7,
        secret: SECRET.to_vec(),
    };
    assert_eq!(
        format!("{key:?}"),
        "Key { id: 7, secret: <32 bytes redacted> }"
    );
    let codec = sender();
    assert!(!format!("{codec:?}").contains("secret of"));
}

#[test]
fn validation_names_the_key_and_the_fix() {
    assert_eq!(config(7, SECRET, true).validate(), Ok(()));
    let mut c = config(7, b"short", true);
    assert_eq!(
        c.validate(),
        Err(AuthConfigError::ShortSecret { id: 7, len: 5 })
    );
    c.keys[0].secret = SECRET.to_vec();
    c.send_key = Some(8);
    assert_eq!(c.validate(), Err(AuthConfigError::SendKeyMissing(8)));
    c.keys.push(c.keys[0].clone());
    assert_eq!(c.validate(), Err(AuthConfigError::DuplicateKeyId(7)));
}
