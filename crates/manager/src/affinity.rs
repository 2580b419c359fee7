//! The affinities a load-balancing manager sends, exactly as `docs/affinities.md` describes
//! them: a forward wildcard per service, a return wildcard per backend of a NAT service, and a
//! forward and (NAT) return fixed affinity per flow.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tether_proto::{
    ActionListEntry, Actions, Envelope, FixedAffinity, FixedUpdate, Identity, InterestBits,
    InterestCriteria, NatAction, SegmentType, ServicePrecedence, WildcardAffinity, WildcardUpdate,
};
use tether_wire::AffinityKey;

use crate::config::{ForwardingMode, ManagerConfig, ServiceConfig};
use crate::prefix::Prefix;
use crate::service::Service;

/// What every affinity this manager sends has in common.
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    /// Where interest matches go.
    interest_to: SocketAddr,
    identity: Identity,
    service_precedence: Option<ServicePrecedence>,
    backup_precedence: u16,
    wildcard_ttl: u32,
    fixed_ttl: u32,
}

impl Stamp {
    pub(crate) fn new(config: &ManagerConfig) -> Self {
        Self {
            interest_to: config.addr,
            identity: Identity {
                addr: config.addr.ip(),
                name: config.name.clone(),
            },
            service_precedence: config.service_precedence,
            backup_precedence: config.backup_precedence,
            wildcard_ttl: config.wildcard_ttl,
            fixed_ttl: config.fixed_ttl,
        }
    }

    fn envelope(&self) -> Envelope {
        Envelope {
            identity: Some(self.identity.clone()),
            ..Envelope::default()
        }
    }

    fn interest(&self, mask: InterestBits, data: InterestBits) -> InterestCriteria {
        InterestCriteria {
            addr: self.interest_to.ip(),
            port: self.interest_to.port(),
            mask,
            data,
            copy: InterestBits::NONE,
            hold: InterestBits::NONE,
        }
    }

    /// The wildcards of `svc`: forward (with its consistent-hash action when agents place the
    /// service's flows), then one return wildcard per backend in NAT mode.
    pub(crate) fn wildcards(&self, svc: &Service) -> Vec<WildcardUpdate> {
        let service = &svc.config;
        let domain = Prefix::new(service.client_domain.0, service.client_domain.1);
        let vip = Prefix::host(service.vip);
        let proto = service.protocol.number();
        let mut out = vec![self.wildcard(
            service.mode,
            WildcardAffinity {
                protocol: proto,
                src: domain.network(),
                src_mask: domain.mask(),
                src_port: 0,
                dst: service.vip,
                dst_mask: vip.mask(),
                dst_port: service.port,
                dispatch: false,
                information: false,
                forward: unspecified_like(service.vip),
                ttl: self.wildcard_ttl,
            },
        )];
        // Optional in the action list: an agent that cannot place flows asks the manager.
        if let Some(action) = svc.consistent_hash(self.fixed_ttl) {
            out[0].actions.consistent_hash = Some(action);
            out[0].action_list.push(ActionListEntry {
                segment_type: SegmentType::ActionConsistentHash as u8,
                required: false,
            });
        }
        if service.mode == ForwardingMode::Nat {
            for backend in &service.backends {
                out.push(self.wildcard(
                    service.mode,
                    WildcardAffinity {
                        protocol: proto,
                        src: backend.addr,
                        src_mask: Prefix::host(backend.addr).mask(),
                        src_port: backend.port,
                        dst: domain.network(),
                        dst_mask: domain.mask(),
                        dst_port: 0,
                        dispatch: false,
                        information: false,
                        forward: unspecified_like(service.vip),
                        ttl: self.wildcard_ttl,
                    },
                ));
            }
        }
        out
    }

    fn wildcard(&self, mode: ForwardingMode, affinity: WildcardAffinity) -> WildcardUpdate {
        // The list warns an agent up front that this service's fixed affinities need these
        // actions; one that cannot do them denies the wildcard instead of failing per flow.
        let mut action_list = vec![ActionListEntry {
            segment_type: SegmentType::ActionInterestCriteria as u8,
            required: true,
        }];
        if mode == ForwardingMode::Nat {
            action_list.push(ActionListEntry {
                segment_type: SegmentType::ActionNat as u8,
                required: true,
            });
        }
        WildcardUpdate {
            affinity,
            actions: Actions {
                interest: Some(self.interest(InterestBits::ALL, InterestBits::ALL)),
                ..Actions::default()
            },
            action_list,
            service_precedence: self.service_precedence,
            backup_precedence: Some(self.backup_precedence),
            envelope: self.envelope(),
        }
    }

    /// The backup precedence every affinity carries.
    pub(crate) fn backup_precedence(&self) -> u16 {
        self.backup_precedence
    }

    /// The forward fixed affinity of flow `key` placed on `backend` of `service`.
    pub(crate) fn forward_fixed(
        &self,
        service: &ServiceConfig,
        backend: usize,
        key: AffinityKey,
        packet: Option<Vec<u8>>,
    ) -> FixedUpdate {
        let b = &service.backends[backend];
        let (dispatch, nat) = match service.mode {
            ForwardingMode::Nat => (
                false,
                Some(NatAction {
                    src: unspecified_like(b.addr),
                    src_port: 0,
                    dst: b.addr,
                    dst_port: b.port,
                }),
            ),
            ForwardingMode::Dsr => (true, None),
        };
        self.fixed(
            FixedAffinity {
                key,
                dispatch,
                information: false,
                forward: b.addr,
                ttl: self.fixed_ttl,
            },
            nat,
            // A SYN on a known flow is a retransmission or a new connection reusing the
            // client's port; only the manager can tell, so it gets the packet.
            self.interest(
                InterestBits::FIN | InterestBits::RST | InterestBits::SYN,
                InterestBits::SYN,
            ),
            packet,
        )
    }

    /// The return fixed affinity of a NAT flow: backend replies get the VIP as their source.
    pub(crate) fn return_fixed(
        &self,
        service: &ServiceConfig,
        return_key: AffinityKey,
        packet: Option<Vec<u8>>,
    ) -> FixedUpdate {
        self.fixed(
            FixedAffinity {
                key: return_key,
                dispatch: false,
                information: false,
                // Replies are routed by their destination, the client, which is also the
                // address their statistics belong to.
                forward: return_key.dst,
                ttl: self.fixed_ttl,
            },
            Some(NatAction {
                src: service.vip,
                src_port: service.port,
                dst: unspecified_like(service.vip),
                dst_port: 0,
            }),
            self.interest(InterestBits::FIN | InterestBits::RST, InterestBits::NONE),
            packet,
        )
    }

    fn fixed(
        &self,
        affinity: FixedAffinity,
        nat: Option<NatAction>,
        interest: InterestCriteria,
        packet: Option<Vec<u8>>,
    ) -> FixedUpdate {
        FixedUpdate {
            affinity,
            actions: Actions {
                nat,
                interest: Some(interest),
                ..Actions::default()
            },
            service_precedence: self.service_precedence,
            backup_precedence: Some(self.backup_precedence),
            envelope: self.envelope(),
            packet,
        }
    }
}

/// The unspecified address of `addr`'s family.
pub(crate) fn unspecified_like(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}
