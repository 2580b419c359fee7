//! Proptest strategies for every model type, shared by the integration tests.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tether_proto::*;
use tether_wire::AffinityKey;

/// IPv4 or IPv6 addresses, with the unspecified ones made likely.
pub fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        Just(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Just(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    ]
}

fn bits() -> impl Strategy<Value = InterestBits> {
    any::<u16>().prop_map(InterestBits)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

fn key() -> impl Strategy<Value = AffinityKey> {
    (any::<u8>(), ip(), any::<u16>(), ip(), any::<u16>()).prop_map(
        |(protocol, src, src_port, dst, dst_port)| AffinityKey {
            protocol,
            src,
            src_port,
            dst,
            dst_port,
        },
    )
}

fn fixed_affinity() -> impl Strategy<Value = FixedAffinity> {
    (key(), any::<bool>(), any::<bool>(), ip(), any::<u32>()).prop_map(
        |(key, dispatch, information, forward, ttl)| FixedAffinity {
            key,
            dispatch,
            information,
            forward,
            ttl,
        },
    )
}

fn wildcard_affinity() -> impl Strategy<Value = WildcardAffinity> {
    (
        (any::<u8>(), ip(), ip(), any::<u16>()),
        (ip(), ip(), any::<u16>()),
        (any::<bool>(), any::<bool>(), ip(), any::<u32>()),
    )
        .prop_map(
            |(
                (protocol, src, src_mask, src_port),
                (dst, dst_mask, dst_port),
                (dispatch, information, forward, ttl),
            )| WildcardAffinity {
                protocol,
                src,
                src_mask,
                src_port,
                dst,
                dst_mask,
                dst_port,
                dispatch,
                information,
                forward,
                ttl,
            },
        )
}

fn nat() -> impl Strategy<Value = NatAction> {
    (ip(), any::<u16>(), ip(), any::<u16>()).prop_map(|(src, src_port, dst, dst_port)| NatAction {
        src,
        src_port,
        dst,
        dst_port,
    })
}

fn sequence_adjust() -> impl Strategy<Value = SequenceAdjust> {
    any::<[u32; 4]>().prop_map(
        |[seq_delta, initial_seq, ack_delta, initial_ack]| SequenceAdjust {
            seq_delta,
            initial_seq,
            ack_delta,
            initial_ack,
        },
    )
}

fn interest() -> impl Strategy<Value = InterestCriteria> {
    (ip(), any::<u16>(), bits(), bits(), bits(), bits()).prop_map(
        |(addr, port, mask, data, copy, hold)| InterestCriteria {
            addr,
            port,
            mask,
            data,
            copy,
            hold,
        },
    )
}

fn advertise() -> impl Strategy<Value = AdvertiseAction> {
    ip().prop_flat_map(|addr| {
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        (0..=max).prop_map(move |prefix_len| AdvertiseAction { addr, prefix_len })
    })
}

/// Consistent-hash actions as a manager builds them (valid tables of small primes).
fn consistent_hash() -> impl Strategy<Value = ConsistentHash> {
    let sizes = prop_oneof![Just(13u32), Just(251), Just(65_537)];
    (sizes, any::<bool>(), any::<u32>()).prop_flat_map(|(table_size, dispatch, fixed_ttl)| {
        let backend = (
            ip(),
            any::<u16>(),
            1u32..=100,
            any::<bool>(),
            0..table_size,
            1..table_size,
        )
            .prop_map(|(addr, port, weight, eligible, offset, skip)| HashBackend {
                addr,
                port,
                weight,
                eligible,
                permutation: maglev::Permutation { offset, skip },
            });
        vec(backend, 1..6).prop_map(move |backends| ConsistentHash {
            dispatch,
            fixed_ttl,
            table_size,
            backends,
        })
    })
}

/// Actions; advertise and consistent hash only when `wildcard` (they belong to wildcard
/// updates).
fn actions(wildcard: bool) -> impl Strategy<Value = Actions> {
    let (advertise, consistent_hash) = if wildcard {
        (
            option::of(advertise()).boxed(),
            option::of(consistent_hash()).boxed(),
        )
    } else {
        (Just(None).boxed(), Just(None).boxed())
    };
    (
        option::of(nat()),
        option::of(sequence_adjust()),
        option::of(interest()),
        advertise,
        consistent_hash,
    )
        .prop_map(
            |(nat, sequence_adjust, interest, advertise, consistent_hash)| Actions {
                nat,
                sequence_adjust,
                interest,
                advertise,
                consistent_hash,
            },
        )
}

fn action_list() -> impl Strategy<Value = Vec<ActionListEntry>> {
    vec(
        (any::<u8>(), any::<bool>()).prop_map(|(segment_type, required)| ActionListEntry {
            segment_type,
            required,
        }),
        0..6,
    )
}

fn service_precedence() -> impl Strategy<Value = ServicePrecedence> {
    (any::<bool>(), any::<u16>()).prop_map(|(higher, value)| ServicePrecedence {
        search_order: if higher {
            SearchOrder::HigherFirst
        } else {
            SearchOrder::LowerFirst
        },
        value,
    })
}

/// Envelopes as a sender builds them (nothing unsupported).
fn envelope() -> impl Strategy<Value = Envelope> {
    (
        option::of((ip(), "\\PC{0,40}").prop_map(|(addr, name)| Identity { addr, name })),
        option::of(data()),
        option::of(data()),
    )
        .prop_map(|(identity, manager_data, agent_data)| Envelope {
            identity,
            manager_data,
            agent_data,
            unsupported_required: Vec::new(),
        })
}

/// Every message a sender can build.
pub fn message() -> impl Strategy<Value = Message> {
    let wildcard = (
        wildcard_affinity(),
        actions(true),
        action_list(),
        option::of(service_precedence()),
        option::of(any::<u16>()),
        envelope(),
    )
        .prop_map(
            |(affinity, actions, action_list, service_precedence, backup_precedence, envelope)| {
                Message::WildcardUpdate(WildcardUpdate {
                    affinity,
                    actions,
                    action_list,
                    service_precedence,
                    backup_precedence,
                    envelope,
                })
            },
        );
    let fixed = (
        fixed_affinity(),
        actions(false),
        option::of(service_precedence()),
        option::of(any::<u16>()),
        envelope(),
        option::of(data()),
    )
        .prop_map(
            |(affinity, actions, service_precedence, backup_precedence, envelope, packet)| {
                Message::FixedUpdate(FixedUpdate {
                    affinity,
                    actions,
                    service_precedence,
                    backup_precedence,
                    envelope,
                    packet,
                })
            },
        );
    let denied_affinity = prop_oneof![
        Just(None),
        wildcard_affinity().prop_map(|a| Some(DeniedAffinity::Wildcard(a))),
        fixed_affinity().prop_map(|a| Some(DeniedAffinity::Fixed(a))),
    ];
    let deny =
        (action_list(), denied_affinity, envelope()).prop_map(|(denied, affinity, envelope)| {
            Message::Deny(Deny {
                denied,
                affinity,
                envelope,
            })
        });
    let identifier = (key(), any::<bool>(), any::<bool>(), bits()).prop_map(
        |(key, dispatch, information, matched)| AffinityIdentifier {
            key,
            dispatch,
            information,
            matched,
        },
    );
    let interest_match = (any::<bool>(), identifier, envelope(), option::of(data())).prop_map(
        |(wildcard, identifier, envelope, packet)| {
            Message::InterestMatch(InterestMatch {
                kind: if wildcard {
                    MatchKind::Wildcard
                } else {
                    MatchKind::Fixed
                },
                identifier,
                envelope,
                packet,
            })
        },
    );
    prop_oneof![
        wildcard,
        fixed,
        deny,
        interest_match,
        data().prop_map(Message::IpPacketOnly),
        replicate().prop_map(Message::Replicate),
        heartbeat().prop_map(Message::Heartbeat),
        snapshot().prop_map(Message::Snapshot),
        flow_report().prop_map(Message::FlowReport),
    ]
}

/// A flow report of up to 8 events.
pub fn flow_report() -> impl Strategy<Value = FlowReport> {
    let event = prop_oneof![
        (key(), ip(), any::<u16>()).prop_map(|(key, backend, port)| FlowEvent::Placed {
            key,
            backend,
            port
        }),
        key().prop_map(|key| FlowEvent::Closed { key }),
    ];
    vec(event, 0..8).prop_map(|events| FlowReport { events })
}

/// A flow record with short names (some not ASCII).
pub fn flow_record() -> impl Strategy<Value = FlowRecord> {
    (
        key(),
        option::of(key()),
        "[a-zé0-9-]{0,12}",
        "[a-zé0-9-]{0,12}",
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(key, return_key, service, backend, age, closing)| FlowRecord {
                key,
                return_key,
                service,
                backend,
                age,
                closing,
            },
        )
}

/// A replicate message of up to 8 flows.
pub fn replicate() -> impl Strategy<Value = Replicate> {
    (any::<u64>(), vec(flow_record(), 0..8))
        .prop_map(|(stream_seq, flows)| Replicate { stream_seq, flows })
}

/// A snapshot part of up to 8 flows.
pub fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        vec(flow_record(), 0..8),
    )
        .prop_map(|(id, base_seq, part, parts, flows)| Snapshot {
            id,
            base_seq,
            part,
            parts,
            flows,
        })
}

/// Any heartbeat.
pub fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (any::<u16>(), any::<bool>(), any::<u64>(), any::<bool>()).prop_map(
        |(backup_precedence, active, replicated, ready)| Heartbeat {
            backup_precedence,
            role: if active { Role::Active } else { Role::Standby },
            replicated,
            ready,
        },
    )
}
