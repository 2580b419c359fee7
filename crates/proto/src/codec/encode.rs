//! [`Message`] to bytes, segments in the canonical order of `docs/protocol.md`.

use core::net::IpAddr;

use crate::model::{
    ActionListEntry, Actions, AffinityIdentifier, DeniedAffinity, Envelope, FixedAffinity,
    FlowEvent, FlowRecord, Message, PROTOCOL_VERSION, Role, SearchOrder, SegmentType,
    WildcardAffinity,
};
use tether_wire::AffinityKey;

use super::decode::{
    AFFINITY_DISPATCH, AFFINITY_INFORMATION, EVENT_CLOSED, EVENT_PLACED, HASH_DISPATCH,
    HASH_ELIGIBLE, HEARTBEAT_READY, RECORD_CLOSING, RECORD_RETURN_KEY,
};
use super::wire::{
    FAMILY_V4, FAMILY_V6, FLAG_REQUIRED, MAC_LEN, MAC_OFFSET_IN_BODY, SECURITY_HMAC_SHA256,
    SEGMENT_HEADER_LEN,
};

/// Key id and sequence number of a security segment to write.
pub(super) struct SecurityFields {
    /// Key id.
    pub key_id: u32,
    /// Sequence number.
    pub sequence: u64,
    /// The sender's id.
    pub sender: u64,
}

/// Encodes `message`, with a security segment whose MAC is zero when `security` is given.
/// Returns the bytes and the offset of the MAC to fill in.
pub(super) fn message(
    message: &Message,
    security: Option<&SecurityFields>,
) -> (Vec<u8>, Option<usize>) {
    let mut w = Writer {
        buf: Vec::with_capacity(128),
    };
    w.buf
        .extend_from_slice(&[PROTOCOL_VERSION, message.message_type() as u8, 0, 0, 0, 0]);
    let mac_offset = security.map(|s| {
        let body = w.segment(SegmentType::Security, false);
        w.buf.push(SECURITY_HMAC_SHA256);
        w.buf.extend_from_slice(&s.key_id.to_be_bytes());
        w.buf.extend_from_slice(&s.sequence.to_be_bytes());
        w.buf.extend_from_slice(&s.sender.to_be_bytes());
        w.buf.extend_from_slice(&[0; MAC_LEN]);
        w.end(body);
        body + MAC_OFFSET_IN_BODY
    });
    match message {
        Message::WildcardUpdate(m) => {
            w.wildcard(&m.affinity);
            if !m.action_list.is_empty() {
                w.action_list(&m.action_list);
            }
            w.precedence(m.service_precedence, m.backup_precedence);
            w.envelope(&m.envelope);
            w.actions(&m.actions);
        }
        Message::FixedUpdate(m) => {
            w.fixed(&m.affinity);
            w.precedence(m.service_precedence, m.backup_precedence);
            w.actions(&m.actions);
            w.envelope(&m.envelope);
            w.packet(m.packet.as_deref());
        }
        Message::Deny(m) => {
            w.action_list(&m.denied);
            match &m.affinity {
                Some(DeniedAffinity::Wildcard(a)) => w.wildcard(a),
                Some(DeniedAffinity::Fixed(a)) => w.fixed(a),
                None => {}
            }
            w.envelope(&m.envelope);
        }
        Message::InterestMatch(m) => {
            w.identifier(&m.identifier);
            w.envelope(&m.envelope);
            w.packet(m.packet.as_deref());
        }
        Message::IpPacketOnly(packet) => w.packet(Some(packet)),
        Message::Replicate(m) => {
            let body = w.segment(SegmentType::Replication, true);
            w.buf.extend_from_slice(&m.stream_seq.to_be_bytes());
            w.records(&m.flows);
            w.end(body);
        }
        Message::Snapshot(m) => {
            let body = w.segment(SegmentType::Snapshot, true);
            w.u32(m.id);
            w.buf.extend_from_slice(&m.base_seq.to_be_bytes());
            w.u32(m.part);
            w.u32(m.parts);
            w.records(&m.flows);
            w.end(body);
        }
        Message::FlowReport(m) => {
            let body = w.segment(SegmentType::FlowReport, true);
            let count =
                u16::try_from(m.events.len()).expect("a datagram carries fewer than 65536 events");
            w.u16(count);
            for event in &m.events {
                match event {
                    FlowEvent::Placed { key, backend, port } => {
                        w.buf.push(EVENT_PLACED);
                        w.key(key);
                        w.u16(*port);
                        w.addr(*backend);
                    }
                    FlowEvent::Closed { key } => {
                        w.buf.push(EVENT_CLOSED);
                        w.key(key);
                    }
                }
            }
            w.end(body);
        }
        Message::Heartbeat(h) => {
            let body = w.segment(SegmentType::Heartbeat, true);
            w.u16(h.backup_precedence);
            w.buf.push(match h.role {
                Role::Standby => 0,
                Role::Active => 1,
            });
            w.buf.push(u8::from(h.ready) * HEARTBEAT_READY);
            w.buf.extend_from_slice(&h.replicated.to_be_bytes());
            w.end(body);
        }
    }
    let total = w.buf.len();
    w.patch_len(2, total);
    (w.buf, mac_offset)
}

/// Appends segments to a message buffer.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a segment; returns where its body starts, for [`Writer::end`].
    fn segment(&mut self, kind: SegmentType, required: bool) -> usize {
        let flags = if required { FLAG_REQUIRED } else { 0 };
        self.buf.extend_from_slice(&[kind as u8, flags, 0, 0, 0, 0]);
        self.buf.len()
    }

    /// Ends the segment whose body started at `body`, filling in its length.
    fn end(&mut self, body: usize) {
        let len = self.buf.len() - body;
        self.patch_len(body - SEGMENT_HEADER_LEN + 2, len);
    }

    /// Writes `len` as the u32 at `at`.
    fn patch_len(&mut self, at: usize, len: usize) {
        let len = u32::try_from(len).expect("a service message is shorter than 4 GiB");
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// A whole segment whose body is `body`.
    fn opaque(&mut self, kind: SegmentType, required: bool, body: &[u8]) {
        let start = self.segment(kind, required);
        self.buf.extend_from_slice(body);
        self.end(start);
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn addr(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => {
                self.buf.push(FAMILY_V4);
                self.buf.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                self.buf.push(FAMILY_V6);
                self.buf.extend_from_slice(&a.octets());
            }
        }
    }

    fn flags(&mut self, dispatch: bool, information: bool) {
        let mut flags = 0;
        if dispatch {
            flags |= AFFINITY_DISPATCH;
        }
        if information {
            flags |= AFFINITY_INFORMATION;
        }
        self.buf.push(flags);
    }

    fn wildcard(&mut self, a: &WildcardAffinity) {
        let body = self.segment(SegmentType::WildcardAffinity, true);
        self.buf.push(a.protocol);
        self.flags(a.dispatch, a.information);
        self.u16(a.src_port);
        self.u16(a.dst_port);
        self.u32(a.ttl);
        self.addr(a.src);
        self.addr(a.src_mask);
        self.addr(a.dst);
        self.addr(a.dst_mask);
        self.addr(a.forward);
        self.end(body);
    }

    fn fixed(&mut self, a: &FixedAffinity) {
        let body = self.segment(SegmentType::FixedAffinity, true);
        self.buf.push(a.key.protocol);
        self.flags(a.dispatch, a.information);
        self.u16(a.key.src_port);
        self.u16(a.key.dst_port);
        self.u32(a.ttl);
        self.addr(a.key.src);
        self.addr(a.key.dst);
        self.addr(a.forward);
        self.end(body);
    }

    fn identifier(&mut self, a: &AffinityIdentifier) {
        let body = self.segment(SegmentType::AffinityIdentifier, true);
        self.buf.push(a.key.protocol);
        self.flags(a.dispatch, a.information);
        self.u16(a.key.src_port);
        self.u16(a.key.dst_port);
        self.u16(a.matched.0);
        self.addr(a.key.src);
        self.addr(a.key.dst);
        self.end(body);
    }

    fn action_list(&mut self, entries: &[ActionListEntry]) {
        let body = self.segment(SegmentType::ActionList, false);
        for e in entries {
            let flags = if e.required { FLAG_REQUIRED } else { 0 };
            self.buf.extend_from_slice(&[e.segment_type, flags]);
        }
        self.end(body);
    }

    fn precedence(
        &mut self,
        service: Option<crate::model::ServicePrecedence>,
        backup: Option<u16>,
    ) {
        if let Some(p) = service {
            let body = self.segment(SegmentType::ServicePrecedence, false);
            self.buf.push(match p.search_order {
                SearchOrder::HigherFirst => 0,
                SearchOrder::LowerFirst => 1,
            });
            self.u16(p.value);
            self.end(body);
        }
        if let Some(v) = backup {
            self.opaque(SegmentType::BackupPrecedence, false, &v.to_be_bytes());
        }
    }

    fn envelope(&mut self, e: &Envelope) {
        if let Some(id) = &e.identity {
            let body = self.segment(SegmentType::IdentityInfo, false);
            self.addr(id.addr);
            self.buf.extend_from_slice(id.name.as_bytes());
            self.end(body);
        }
        if let Some(data) = &e.manager_data {
            self.opaque(SegmentType::ManagerInterestData, false, data);
        }
        if let Some(data) = &e.agent_data {
            self.opaque(SegmentType::AgentInterestData, false, data);
        }
    }

    fn actions(&mut self, a: &Actions) {
        if let Some(nat) = &a.nat {
            let body = self.segment(SegmentType::ActionNat, true);
            self.u16(nat.src_port);
            self.u16(nat.dst_port);
            self.addr(nat.src);
            self.addr(nat.dst);
            self.end(body);
        }
        if let Some(adv) = &a.advertise {
            let body = self.segment(SegmentType::ActionAdvertise, true);
            self.buf.push(adv.prefix_len);
            self.addr(adv.addr);
            self.end(body);
        }
        if let Some(s) = &a.sequence_adjust {
            let body = self.segment(SegmentType::ActionSequenceAdjust, true);
            self.u32(s.seq_delta);
            self.u32(s.initial_seq);
            self.u32(s.ack_delta);
            self.u32(s.initial_ack);
            self.end(body);
        }
        if let Some(i) = &a.interest {
            let body = self.segment(SegmentType::ActionInterestCriteria, true);
            self.u16(i.port);
            self.u16(i.mask.0);
            self.u16(i.data.0);
            self.u16(i.copy.0);
            self.u16(i.hold.0);
            self.addr(i.addr);
            self.end(body);
        }
        if let Some(c) = &a.consistent_hash {
            // Optional: an agent that does not know it sends new flows to the manager as before.
            let body = self.segment(SegmentType::ActionConsistentHash, false);
            self.buf.push(u8::from(c.dispatch) * HASH_DISPATCH);
            self.buf.push(0);
            let count = u16::try_from(c.backends.len()).expect("fewer than 65536 backends");
            self.u16(count);
            self.u32(c.table_size);
            self.u32(c.fixed_ttl);
            for b in &c.backends {
                self.buf.push(u8::from(b.eligible) * HASH_ELIGIBLE);
                self.buf.push(0);
                self.u16(b.port);
                self.u32(b.weight);
                self.u32(b.permutation.offset);
                self.u32(b.permutation.skip);
                self.addr(b.addr);
            }
            self.end(body);
        }
    }

    /// A record count and the flow records (replication and snapshot segments).
    fn records(&mut self, flows: &[FlowRecord]) {
        let count = u16::try_from(flows.len()).expect("a datagram carries fewer than 65536 flows");
        self.u16(count);
        for f in flows {
            let mut flags = 0;
            if f.closing {
                flags |= RECORD_CLOSING;
            }
            if f.return_key.is_some() {
                flags |= RECORD_RETURN_KEY;
            }
            self.buf.push(flags);
            self.u32(f.age);
            self.key(&f.key);
            if let Some(r) = &f.return_key {
                self.key(r);
            }
            self.name(&f.service);
            self.name(&f.backend);
        }
    }

    fn key(&mut self, k: &AffinityKey) {
        self.buf.push(k.protocol);
        self.u16(k.src_port);
        self.u16(k.dst_port);
        self.addr(k.src);
        self.addr(k.dst);
    }

    fn name(&mut self, name: &str) {
        let len = u16::try_from(name.len()).expect("a name is shorter than 64 KiB");
        self.u16(len);
        self.buf.extend_from_slice(name.as_bytes());
    }

    fn packet(&mut self, packet: Option<&[u8]>) {
        if let Some(p) = packet {
            self.opaque(SegmentType::IpPacket, true, p);
        }
    }
}
