//! Property test: the wildcard table picks the same affinity as a naive reference model that
//! works on address octets and compares precedence field by field.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

use proptest::prelude::*;
use tether_proto::{Actions, SearchOrder, ServicePrecedence, Timestamp, WildcardAffinity};
use tether_wire::AffinityKey;

use super::wildcard::{Pattern, WildcardTable};
use super::{Affinity, Behaviour, Rank};

/// One update as the model sees it.
#[derive(Clone, Debug)]
struct Install {
    manager: SocketAddr,
    wildcard: WildcardAffinity,
    service: Option<ServicePrecedence>,
    backup: Option<u16>,
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn masked_equal(a: IpAddr, b: IpAddr, mask: IpAddr) -> bool {
    a.is_ipv6() == b.is_ipv6()
        && octets(a)
            .iter()
            .zip(octets(b))
            .zip(octets(mask))
            .all(|((x, y), m)| x & m == y & m)
}

fn model_matches(w: &WildcardAffinity, k: &AffinityKey) -> bool {
    masked_equal(k.src, w.src, w.src_mask)
        && masked_equal(k.dst, w.dst, w.dst_mask)
        && (w.protocol == 0 || w.protocol == k.protocol)
        && (w.src_port == 0 || w.src_port == k.src_port)
        && (w.dst_port == 0 || w.dst_port == k.dst_port)
}

fn same_wildcard(a: &WildcardAffinity, b: &WildcardAffinity) -> bool {
    let masked = |x: IpAddr, m: IpAddr| -> Vec<u8> {
        octets(x)
            .iter()
            .zip(octets(m))
            .map(|(x, m)| x & m)
            .collect()
    };
    a.protocol == b.protocol
        && a.src_port == b.src_port
        && a.dst_port == b.dst_port
        && a.src_mask == b.src_mask
        && a.dst_mask == b.dst_mask
        && masked(a.src, a.src_mask) == masked(b.src, b.src_mask)
        && masked(a.dst, a.dst_mask) == masked(b.dst, b.dst_mask)
}

/// Effective priority per docs/affinities.md, written out long-hand.
fn priority(service: Option<ServicePrecedence>) -> u32 {
    match service {
        None => 0,
        Some(s) if s.search_order == SearchOrder::HigherFirst => u32::from(s.value),
        Some(s) => 65535 - u32::from(s.value),
    }
}

/// The model: installs in order (a refresh replaces the entry but keeps its place), then the
/// best match by priority, backup precedence, and place. Returns the index of the winner's
/// first install.
fn model_best(installs: &[Install], key: &AffinityKey) -> Option<usize> {
    let mut live: Vec<(usize, Install)> = Vec::new();
    for (i, inst) in installs.iter().enumerate() {
        match live
            .iter_mut()
            .find(|(_, l)| l.manager == inst.manager && same_wildcard(&l.wildcard, &inst.wildcard))
        {
            Some((_, l)) => *l = inst.clone(),
            None => live.push((i, inst.clone())),
        }
    }
    let mut best: Option<&(usize, Install)> = None;
    for cand in live.iter().filter(|(_, l)| model_matches(&l.wildcard, key)) {
        let better = match best {
            None => true,
            Some(b) => {
                let (pc, pb) = (priority(cand.1.service), priority(b.1.service));
                let (bc, bb) = (cand.1.backup.unwrap_or(0), b.1.backup.unwrap_or(0));
                pc > pb || (pc == pb && (bc < bb || (bc == bb && cand.0 < b.0)))
            }
        };
        if better {
            best = Some(cand);
        }
    }
    best.map(|(i, _)| *i)
}

fn v4_prefix(len: u8) -> IpAddr {
    let bits = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    IpAddr::V4(Ipv4Addr::from(bits))
}

fn v6_prefix(len: u8) -> IpAddr {
    let bits = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    IpAddr::V6(Ipv6Addr::from(bits))
}

/// Addresses from a small pool so that random keys hit random wildcards often.
fn address(v6: bool, pick: u8) -> IpAddr {
    let pick = pick % 8;
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            u16::from(pick >> 2),
            0,
            0,
            0,
            u16::from(pick),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, pick >> 2, 0, pick))
    }
}

fn mask(v6: bool, len: u8) -> IpAddr {
    // Prefixes plus the occasional non-contiguous mask, which the seed does not forbid.
    match (v6, len) {
        (false, 33..) => IpAddr::V4(Ipv4Addr::new(255, 0, 255, 0)),
        (true, 129..) => IpAddr::V6(Ipv6Addr::new(0xffff, 0, 0xffff, 0, 0, 0, 0xffff, 0)),
        (false, l) => v4_prefix(l),
        (true, l) => v6_prefix(l),
    }
}

fn install_strategy(v6: bool) -> impl Strategy<Value = Install> {
    let max_len: u8 = if v6 { 129 } else { 33 };
    (
        (0u8..3, any::<u8>(), 0..=max_len, any::<u8>(), 0..=max_len),
        (
            prop::sample::select(vec![0u8, 6, 17]),
            prop::sample::select(vec![0u16, 80, 443]),
        ),
        prop::option::of((any::<bool>(), 0u16..4)),
        prop::option::of(0u16..3),
    )
        .prop_map(
            move |((m, s, sl, d, dl), (protocol, port), service, backup)| Install {
                manager: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, m)), 7000),
                wildcard: WildcardAffinity {
                    protocol,
                    src: address(v6, s),
                    src_mask: mask(v6, sl),
                    src_port: 0,
                    dst: address(v6, d),
                    dst_mask: mask(v6, dl),
                    dst_port: port,
                    dispatch: false,
                    information: false,
                    forward: tether_proto::UNSPECIFIED_V4,
                    ttl: 30,
                },
                service: service.map(|(higher, value)| ServicePrecedence {
                    search_order: if higher {
                        SearchOrder::HigherFirst
                    } else {
                        SearchOrder::LowerFirst
                    },
                    value: if higher { value } else { 65535 - value },
                }),
                backup,
            },
        )
}

fn key_strategy(v6: bool) -> impl Strategy<Value = AffinityKey> {
    (
        any::<u8>(),
        any::<u8>(),
        prop::sample::select(vec![6u8, 17]),
        prop::sample::select(vec![80u16, 443, 8080]),
    )
        .prop_map(move |(s, d, protocol, dst_port)| AffinityKey {
            protocol,
            src: address(v6, s),
            src_port: 40000,
            dst: address(v6, d),
            dst_port,
        })
}

fn case() -> impl Strategy<Value = (Vec<Install>, Vec<AffinityKey>)> {
    any::<bool>().prop_flat_map(|v6| {
        (
            prop::collection::vec(install_strategy(v6), 0..12),
            prop::collection::vec(key_strategy(v6), 1..16),
        )
    })
}

proptest! {
    #[test]
    fn wildcard_choice_agrees_with_the_naive_model((installs, keys) in case()) {
        let mut table = WildcardTable::default();
        let expires = Timestamp::from_duration(Duration::from_secs(30));
        // Table ids are assigned per new wildcard; map them back to the install index.
        let mut first_install_of_id = Vec::new();
        for (i, inst) in installs.iter().enumerate() {
            let pattern = Pattern::new(&inst.wildcard).expect("one family");
            let behaviour = Behaviour::new(false, false, inst.wildcard.forward, &Actions::default(), None);
            let rank = Rank::new(inst.service, inst.backup, 0);
            let affinity = Affinity::new(inst.manager, rank, behaviour, expires);
            if table.upsert(pattern, inst.wildcard.clone(), affinity) == super::wildcard::Upsert::Inserted {
                first_install_of_id.push(i);
            }
        }
        for key in &keys {
            let got = table
                .best_mut(key, Timestamp::ZERO)
                .map(|(id, _)| first_install_of_id[usize::try_from(id).unwrap()]);
            prop_assert_eq!(got, model_best(&installs, key), "key {}", key);
            let supported = installs.iter().any(|i| model_matches(&i.wildcard, key));
            prop_assert_eq!(got.is_some(), supported);
        }
    }
}
