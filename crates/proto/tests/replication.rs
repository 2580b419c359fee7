//! Replication between managers: replicate and heartbeat messages are sealed like every other
//! message, and a batch's size is known before it is encoded.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot build its input should fail loudly"
)]

mod common;

use proptest::prelude::*;
use tether_proto::*;

fn auth() -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id: 3,
            secret: b"tether-replication-secret-32-byt".to_vec(),
        }],
        send_key: Some(3),
        require: true,
    }
}

proptest! {
    #[test]
    fn manager_to_manager_messages_share_the_codec_with_the_rest(m in common::message()) {
        let sealed = Codec::new(auth(), 0).seal(&m);
        prop_assert_eq!(Codec::new(auth(), 0).open(&sealed), Ok(m));
    }

    #[test]
    fn a_sealed_replicate_has_the_size_its_records_announce(m in common::replicate()) {
        let expected = Replicate::OVERHEAD
            + m.flows.iter().map(FlowRecord::encoded_len).sum::<usize>();
        let message = Message::Replicate(m);
        let sealed = Codec::new(auth(), 0).seal(&message);
        prop_assert_eq!(sealed.len(), expected);
        prop_assert_eq!(Codec::new(auth(), 0).open(&sealed), Ok(message));
    }

    #[test]
    fn a_sealed_snapshot_has_the_size_its_records_announce(m in common::snapshot()) {
        let expected = Snapshot::OVERHEAD
            + m.flows.iter().map(FlowRecord::encoded_len).sum::<usize>();
        let message = Message::Snapshot(m);
        let sealed = Codec::new(auth(), 0).seal(&message);
        prop_assert_eq!(sealed.len(), expected);
        prop_assert_eq!(Codec::new(auth(), 0).open(&sealed), Ok(message));
    }

    #[test]
    fn a_sealed_heartbeat_opens_and_a_forged_one_does_not(h in common::heartbeat()) {
        let message = Message::Heartbeat(h);
        let sealed = Codec::new(auth(), 0).seal(&message);
        let mut receiver = Codec::new(auth(), 0);
        prop_assert_eq!(receiver.open(&sealed), Ok(message));
        prop_assert!(receiver.open(&sealed).is_err(), "a replay is rejected");
        let mut forged = sealed;
        let last = forged.len() - 1;
        forged[last] ^= 1;
        prop_assert!(Codec::new(auth(), 0).open(&forged).is_err());
    }
}

#[test]
fn an_unknown_role_is_an_error_not_a_guess() {
    let mut bytes = codec::encode(&Message::Heartbeat(Heartbeat {
        backup_precedence: 1,
        role: Role::Active,
        replicated: 9,
        ready: true,
    }));
    // Header (6), segment header (6), precedence (2): the role byte.
    bytes[14] = 2;
    assert_eq!(
        codec::decode(&bytes).unwrap_err().reason(),
        "bad_role",
        "{bytes:02x?}"
    );
}
