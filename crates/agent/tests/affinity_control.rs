//! The agent's control side through its public API: affinity lifetimes and deletion, the
//! wildcard a fixed affinity needs, denies, authentication, precedence between managers.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::net::SocketAddr;

use common::{
    FIXED, MANAGER, WILDCARD, advance, agent, at, frame, has_fixed, install, ip, messages,
    setup_message,
};
use tether_agent::{Agent, AgentConfig, Verdict};
use tether_proto::{
    ActionListEntry, AuthConfig, Codec, DeniedAffinity, Key, Message, SegmentType, codec,
};

#[test]
fn fixed_affinity_expires_within_a_second_of_its_ttl_and_refresh_extends_it() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(&mut a, at(0.0), FIXED);
    assert!(has_fixed(&a));
    // Refreshed at 5 s: lives until 15 s.
    install(&mut a, at(5.0), FIXED);
    advance(&mut a, at(14.5));
    assert!(has_fixed(&a));
    assert!(matches!(
        a.handle_frame(at(14.5), &mut frame("ack", b"")),
        Verdict::Forward(_)
    ));
    let deadline = a.poll_timeout().expect("a deadline is scheduled");
    assert!(
        deadline <= at(16.0),
        "wake-up {deadline:?} is more than 1 s late"
    );
    advance(&mut a, at(15.0));
    assert!(!has_fixed(&a), "gone at its deadline");
    // The wildcard takes over: the packet goes to the manager again.
    assert_eq!(
        a.handle_frame(at(15.0), &mut frame("ack", b"")),
        Verdict::ToManager
    );
}

#[test]
fn an_expired_affinity_is_not_used_even_before_the_timer_runs() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(&mut a, at(0.0), FIXED);
    assert_eq!(
        a.handle_frame(at(10.0), &mut frame("ack", b"")),
        Verdict::ToManager
    );
}

#[test]
fn ttl_zero_deletes_fixed_and_wildcard_affinities() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(&mut a, at(0.0), FIXED);
    install(&mut a, at(1.0), &format!("{FIXED} ttl=0"));
    assert!(!has_fixed(&a));
    assert_eq!(a.stats().fixed_affinities, 0);
    install(&mut a, at(1.0), &format!("{WILDCARD} ttl=0"));
    assert_eq!(a.wildcard_affinities().count(), 0);
    assert_eq!(
        a.handle_frame(at(1.0), &mut frame("syn", b"")),
        Verdict::NotOurs
    );
}

#[test]
fn deleting_a_wildcard_deletes_the_fixed_affinities_it_alone_supported() {
    let mut a = agent();
    let port80 = WILDCARD;
    let subnet =
        "wildcard proto=tcp src=0.0.0.0/0 dst=192.0.2.0/24 dport=443 interest=all data=all";
    install(&mut a, at(0.0), port80);
    install(&mut a, at(0.0), subnet);
    install(&mut a, at(0.0), FIXED);
    install(
        &mut a,
        at(0.0),
        "fixed proto=tcp src=198.51.100.7 sport=40001 dst=192.0.2.10 dport=443 forward=10.1.0.5 ttl=60",
    );
    install(&mut a, at(1.0), &format!("{port80} ttl=0"));
    assert!(!has_fixed(&a), "the port-80 flow lost its only wildcard");
    assert_eq!(
        a.fixed_affinities().count(),
        1,
        "the port-443 flow keeps its own"
    );
    assert_eq!(a.stats().fixed_deleted_with_wildcard, 1);
    // Expiry does the same as deletion.
    advance(&mut a, at(31.0));
    assert_eq!(a.fixed_affinities().count(), 0);
    assert_eq!(a.stats().fixed_deleted_with_wildcard, 2);
}

#[test]
fn fixed_affinity_without_a_wildcard_of_its_manager_is_discarded_and_counted() {
    let mut a = agent();
    install(&mut a, at(0.0), FIXED);
    assert!(!has_fixed(&a));
    // Another manager's wildcard does not count.
    let other: SocketAddr = "10.9.0.2:7000".parse().unwrap();
    a.handle_datagram(at(0.0), other, &codec::encode(&setup_message(WILDCARD)));
    install(&mut a, at(0.0), FIXED);
    assert!(!has_fixed(&a));
    assert_eq!(a.stats().fixed_discarded_no_wildcard, 2);
}

#[test]
fn update_requiring_an_unsupported_action_is_denied_with_its_affinity_and_identity() {
    let mut a = agent();
    let Message::WildcardUpdate(mut update) = setup_message(WILDCARD) else {
        unreachable!()
    };
    update.action_list = vec![
        ActionListEntry {
            segment_type: SegmentType::ActionNat as u8,
            required: true,
        },
        ActionListEntry {
            segment_type: SegmentType::ActionAdvertise as u8,
            required: true,
        },
        ActionListEntry {
            segment_type: 200,
            required: false,
        },
    ];
    let affinity = update.affinity.clone();
    a.handle_datagram(
        at(0.0),
        MANAGER,
        &codec::encode(&Message::WildcardUpdate(update)),
    );
    assert_eq!(a.wildcard_affinities().count(), 0, "not applied");
    assert_eq!(a.stats().denies_sent, 1);
    let sent = messages(&mut a);
    let [(dest, Message::Deny(deny))] = sent.as_slice() else {
        panic!("one deny: {sent:?}")
    };
    assert_eq!(*dest, MANAGER);
    assert_eq!(
        deny.denied,
        vec![ActionListEntry {
            segment_type: SegmentType::ActionAdvertise as u8,
            required: true
        }]
    );
    assert_eq!(deny.affinity, Some(DeniedAffinity::Wildcard(affinity)));
    assert_eq!(
        deny.envelope.identity.as_ref().map(|i| i.name.as_str()),
        Some("agent-1")
    );
}

#[test]
fn fixed_update_carrying_an_action_the_agent_does_not_perform_is_denied() {
    let mut config = AgentConfig::new("agent-1", ip("10.9.0.100"));
    config.supported.sequence_adjust = false;
    let mut a = Agent::new(config, at(0.0));
    install(&mut a, at(0.0), WILDCARD);
    install(&mut a, at(0.0), &format!("{FIXED} seq=1,0,0,0"));
    assert!(!has_fixed(&a));
    let sent = messages(&mut a);
    let [(_, Message::Deny(deny))] = sent.as_slice() else {
        panic!("one deny: {sent:?}")
    };
    assert_eq!(
        deny.denied[0].segment_type,
        SegmentType::ActionSequenceAdjust as u8
    );
    assert!(matches!(deny.affinity, Some(DeniedAffinity::Fixed(_))));
}

/// `bytes` with one more segment of `segment_type` appended and the header's length fixed.
fn with_extra_segment(mut bytes: Vec<u8>, segment_type: u8, required: bool) -> Vec<u8> {
    // Segment header: type, flags (0x80 = Required), u32 body length; docs/protocol.md.
    bytes.extend_from_slice(&[segment_type, if required { 0x80 } else { 0 }, 0, 0, 0, 4]);
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let total = u32::try_from(bytes.len()).unwrap();
    bytes[2..6].copy_from_slice(&total.to_be_bytes());
    bytes
}

#[test]
fn update_with_an_unknown_required_segment_is_denied_naming_it() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    let fixed = codec::encode(&setup_message(FIXED));
    a.handle_datagram(at(0.0), MANAGER, &with_extra_segment(fixed, 0x63, true));
    assert!(
        !has_fixed(&a),
        "a message with a required segment it cannot process is not applied"
    );
    let sent = messages(&mut a);
    let [(to, Message::Deny(deny))] = sent.as_slice() else {
        panic!("one deny: {sent:?}")
    };
    assert_eq!(*to, MANAGER);
    assert_eq!(deny.denied.len(), 1);
    assert_eq!(
        deny.denied[0].segment_type, 0x63,
        "the deny names the segment"
    );
    assert!(matches!(deny.affinity, Some(DeniedAffinity::Fixed(_))));
}

#[test]
fn update_with_an_unknown_optional_segment_is_applied() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    let fixed = codec::encode(&setup_message(FIXED));
    a.handle_datagram(at(0.0), MANAGER, &with_extra_segment(fixed, 0x63, false));
    assert!(has_fixed(&a));
    assert!(messages(&mut a).is_empty(), "nothing to deny");
}

#[test]
fn unsigned_and_forged_messages_are_counted_and_ignored_when_auth_is_required() {
    let auth = AuthConfig {
        keys: vec![Key {
            id: 7,
            secret: b"0123456789abcdef0123".to_vec(),
        }],
        send_key: Some(7),
        require: true,
    };
    let mut config = AgentConfig::new("agent-1", ip("10.9.0.100"));
    config.auth = auth.clone();
    let mut a = Agent::new(config, at(0.0));
    let wildcard = setup_message(WILDCARD);

    a.handle_datagram(at(0.0), MANAGER, &codec::encode(&wildcard));
    let forger = AuthConfig {
        keys: vec![Key {
            id: 7,
            secret: b"not-the-right-secret".to_vec(),
        }],
        ..auth.clone()
    };
    a.handle_datagram(at(0.0), MANAGER, &Codec::new(forger, 0).seal(&wildcard));
    let stranger = AuthConfig {
        keys: vec![Key {
            id: 9,
            secret: b"0123456789abcdef0123".to_vec(),
        }],
        send_key: Some(9),
        require: true,
    };
    a.handle_datagram(at(0.0), MANAGER, &Codec::new(stranger, 0).seal(&wildcard));
    assert_eq!(a.wildcard_affinities().count(), 0);
    assert_eq!(a.stats().rejected.get("unsigned"), 1);
    assert_eq!(a.stats().rejected.get("bad_mac"), 1);
    assert_eq!(a.stats().rejected.get("unknown_key"), 1);
    assert_eq!(a.stats().messages_in, 0);

    let mut manager = Codec::new(auth, 0);
    let signed = manager.seal(&wildcard);
    a.handle_datagram(at(0.0), MANAGER, &signed);
    assert_eq!(a.wildcard_affinities().count(), 1);
    a.handle_datagram(at(0.0), MANAGER, &signed);
    assert_eq!(a.stats().rejected.get("replayed"), 1);
}

#[test]
fn a_backup_managers_affinity_takes_effect_only_when_the_primarys_is_gone() {
    let mut a = agent();
    let backup: SocketAddr = "10.9.0.2:7000".parse().unwrap();
    let send = |a: &mut Agent, from: SocketAddr, line: &str| {
        a.handle_datagram(at(0.0), from, &codec::encode(&setup_message(line)));
    };
    send(&mut a, backup, &format!("{WILDCARD} backup=2"));
    send(
        &mut a,
        backup,
        "fixed proto=tcp src=198.51.100.7 sport=40000 dst=192.0.2.10 dport=80 forward=10.1.0.6 dispatch backup=2",
    );
    send(&mut a, MANAGER, &format!("{WILDCARD} backup=1"));
    send(
        &mut a,
        MANAGER,
        "fixed proto=tcp src=198.51.100.7 sport=40000 dst=192.0.2.10 dport=80 forward=10.1.0.5 dispatch backup=1",
    );
    let next_hop = |a: &mut Agent| match a.handle_frame(at(0.0), &mut frame("ack", b"")) {
        Verdict::Forward(r) => r.next_hop,
        other => panic!("{other:?}"),
    };
    assert_eq!(next_hop(&mut a), ip("10.1.0.5"));
    send(
        &mut a,
        MANAGER,
        "fixed proto=tcp src=198.51.100.7 sport=40000 dst=192.0.2.10 dport=80 forward=10.1.0.5 dispatch ttl=0",
    );
    assert_eq!(next_hop(&mut a), ip("10.1.0.6"));
}

#[test]
fn a_taking_over_backup_cancels_the_dead_primarys_identical_affinities() {
    let mut a = agent();
    let backup: SocketAddr = "10.9.0.2:7000".parse().unwrap();
    let send = |a: &mut Agent, from: SocketAddr, line: &str| {
        a.handle_datagram(at(0.0), from, &codec::encode(&setup_message(line)));
    };
    let fixed = "fixed proto=tcp src=198.51.100.7 sport=40000 dst=192.0.2.10 dport=80 forward=10.1.0.5 dispatch";
    send(&mut a, MANAGER, &format!("{WILDCARD} backup=1"));
    send(&mut a, MANAGER, &format!("{fixed} backup=1"));
    send(&mut a, backup, &format!("{WILDCARD} backup=2"));
    // The backup cancels with its own, worse precedence: every copy ranked the same or better
    // goes, whoever installed it.
    send(&mut a, backup, &format!("{fixed} backup=2 ttl=0"));
    assert_eq!(a.fixed_affinities().count(), 0);
    send(&mut a, backup, &format!("{WILDCARD} backup=2 ttl=0"));
    assert_eq!(a.wildcard_affinities().count(), 0);
    send(&mut a, backup, &format!("{WILDCARD} backup=2"));
    let managers: Vec<_> = a.wildcard_affinities().map(|w| w.manager).collect();
    assert_eq!(managers, [backup]);
}
