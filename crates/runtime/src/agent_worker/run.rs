//! The worker thread's loop and its per-frame path.

use std::io;
use std::net::UdpSocket;
use std::sync::PoisonError;

use tether_agent::{OutPacket, Route, Verdict};
use tether_proto::Timestamp;

use super::{
    AgentSnapshot, Counters, HOLD_CAPACITY, HOLD_UNRESOLVED, PacketPath, RETRY_PERIOD,
    SNAPSHOT_PERIOD, Waiting, Worker, send_error_label, steered,
};
use crate::frame;
use crate::neigh::Resolution;
use crate::steering::{self, Steerer, SteeringError};
use crate::sys::{RxFrame, TxBatch, TxSocket};

/// Largest service message read (a UDP datagram).
const DATAGRAM_MAX: usize = 65_535;

impl Worker {
    /// Runs until the stop socket becomes readable, then removes the steering table.
    pub(super) fn run(mut self) -> Result<(), SteeringError> {
        let mut poll = self.poll_set();
        let mut buf = vec![0u8; DATAGRAM_MAX];
        let mut last_publish = Timestamp::ZERO;
        let mut last_expire = Timestamp::ZERO;
        // The host's addresses are known before the first frame, not a cache lifetime later.
        self.path.refresh_local_addresses();
        self.path.local.clone_from(&self.path.host_addresses);
        let mut last_addresses = self.clock.now();
        loop {
            let now = self.clock.now();
            let mut wait = SNAPSHOT_PERIOD;
            if let Some(deadline) = self.path.agent.poll_timeout() {
                wait = wait.min(deadline.saturating_since(now));
            }
            if !self.path.waiting.is_empty() {
                wait = wait.min(RETRY_PERIOD);
            }
            if let Err(e) = poll.wait(Some(wait)) {
                tracing::error!(error = %e, "agent worker cannot poll; stopping");
                break;
            }
            if poll.is_ready(0) {
                break;
            }
            let now = self.clock.now();
            for ring in &mut self.rings {
                // Every ready frame in ring order, each slot back to the kernel as soon as
                // the frame is handled (forwarded ones are copied into the batch); at most one
                // lap, so a flooded ring cannot starve the others, the timers and the service
                // messages.
                for _ in 0..ring.capacity() {
                    let Some(mut frame) = ring.next_frame() else {
                        break;
                    };
                    self.path.on_frame(now, &mut frame);
                }
            }
            self.path.send_batch();
            let mut control_changed = self.receive(now, &mut buf);
            if self.path.agent.poll_timeout().is_some_and(|t| t <= now) {
                self.path.agent.handle_timeout(now);
                control_changed = true;
            }
            self.path.flush(now, &self.sockets.unicast);
            self.path.send_batch();
            if now.saturating_since(last_addresses) >= crate::neigh::CACHE_TTL {
                control_changed |= self.path.refresh_local_addresses();
                last_addresses = now;
            }
            if control_changed {
                self.path.local = steering::kernel_owned(
                    &self.path.host_addresses,
                    self.path.agent.wildcard_affinities().map(|w| w.affinity),
                );
                let wildcards = self.path.agent.wildcard_affinities().map(|w| w.affinity);
                if let Some(steerer) = &mut self.steerer {
                    let rules = steering::ruleset(
                        steerer.table(),
                        &self.interfaces,
                        self.control_ports.clone(),
                        &self.path.local,
                        wildcards,
                    );
                    self.path.icmp_steered = (rules.icmp_v4, rules.icmp_v6);
                    steerer.update(rules);
                } else {
                    // The owner steers the same wildcards; ICMP errors it takes from the kernel
                    // may be hashed here and must be re-injected when not ours.
                    self.path.icmp_steered = steering::icmp_steered(&self.interfaces, wildcards);
                }
            }
            if now.saturating_since(last_expire) >= crate::neigh::CACHE_TTL {
                self.path.resolver.expire(now);
                last_expire = now;
            }
            if now.saturating_since(last_publish) >= SNAPSHOT_PERIOD {
                self.publish();
                last_publish = now;
            }
        }
        self.publish();
        self.steerer.map_or(Ok(()), Steerer::stop)
    }

    /// Reads every pending service message; says whether any arrived.
    fn receive(&mut self, now: Timestamp, buf: &mut [u8]) -> bool {
        let mut any = false;
        let sockets = [Some(&self.sockets.unicast), self.sockets.multicast.as_ref()];
        for socket in sockets.into_iter().flatten() {
            loop {
                match socket.recv_from(buf) {
                    Ok((n, from)) => {
                        let payload = buf.get(..n).unwrap_or_default();
                        self.path.agent.handle_datagram(now, from, payload);
                        any = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "service socket receive failed");
                        break;
                    }
                }
            }
        }
        any
    }

    fn publish(&mut self) {
        let counters = &mut self.path.counters;
        counters.ring_full += self
            .rings
            .iter()
            .map(crate::sys::PacketSocket::take_drops)
            .sum::<u64>();
        let mut runtime_drops: Vec<_> = counters.drops.iter().collect();
        if counters.ring_full > 0 {
            runtime_drops.push(("ring_full", counters.ring_full));
        }
        let stats = self.path.agent.stats().clone();
        let steering = self
            .steerer
            .as_ref()
            .map(Steerer::status)
            .unwrap_or_default();
        let snapshot = AgentSnapshot {
            fixed_affinities: stats.fixed_affinities,
            wildcard_affinities: stats.wildcard_affinities,
            codec: self.path.agent.codec_counters(),
            stats,
            rx_frames: counters.rx_frames,
            tx_frames: counters.tx_frames,
            rx_bytes: counters.rx_bytes,
            tx_bytes: counters.tx_bytes,
            runtime_drops,
            steering_rules: steering.rules,
            steering_failures: steering.failures,
            reinjected: counters.reinjected,
        };
        *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }
}

impl PacketPath {
    /// One received frame through the agent, and out.
    fn on_frame(&mut self, now: Timestamp, frame: &mut RxFrame<'_>) {
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += u64::from(frame.wire_len);
        if frame.is_truncated() {
            // Longer than a ring slot (`RingConfig::frame_size`); the kernel has its own copy.
            self.counters.drops.add("rx_truncated");
            return;
        }
        if frame.is_outgoing() {
            // Our own output (or the host's), seen again: forwarding it would loop.
            self.counters.drops.add("rx_outgoing");
            return;
        }
        if frame::destination(frame.data()).is_some_and(|dst| self.local.contains(&dst)) {
            // Addressed to this host: the kernel has its copy (steering accepts it first).
            self.counters.local += 1;
            return;
        }
        if frame.checksum_pending() {
            frame::complete_checksum(frame.data_mut());
        }
        match self.agent.handle_frame(now, frame.data_mut()) {
            Verdict::Forward(route) => match self.resolver.resolve(now, route) {
                Resolution::Ready(hop) => {
                    frame::readdress(frame.data_mut(), &hop);
                    enqueue(
                        &self.tx,
                        &mut self.batch,
                        &mut self.counters,
                        hop.ifindex,
                        frame.data(),
                    );
                }
                Resolution::Pending => {
                    self.wait(now + HOLD_UNRESOLVED, route, frame.data().to_vec());
                }
                Resolution::NoRoute => {
                    tracing::debug!(next_hop = %route.next_hop, "no route: frame dropped");
                    self.counters.drops.add("no_route");
                }
            },
            Verdict::NotOurs => {
                if self.icmp_steered != (false, false)
                    && let Some((version, ip)) = frame::icmp_error(frame.data())
                    && steered(self.icmp_steered, version)
                {
                    match self.reinject.send(ip) {
                        Ok(()) => self.counters.reinjected += 1,
                        Err(_) => self.counters.drops.add("reinject_failed"),
                    }
                }
            }
            Verdict::Drop(_) | Verdict::ToManager | Verdict::Held => {}
        }
    }

    /// Re-reads the host's addresses; says whether they changed.
    fn refresh_local_addresses(&mut self) -> bool {
        match self.resolver.local_addresses() {
            Ok(addrs) if addrs != self.host_addresses => {
                self.host_addresses = addrs;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the host's addresses; keeping the last list");
                false
            }
        }
    }

    /// Sends the agent's service messages and packets.
    fn flush(&mut self, now: Timestamp, unicast: &UdpSocket) {
        while let Some(transmit) = self.agent.poll_transmit() {
            if unicast.send_to(&transmit.payload, transmit.dest).is_err() {
                self.counters.drops.add("service_send_failed");
            }
        }
        while let Some(OutPacket { packet, route }) = self.agent.poll_packet() {
            let mut frame = Vec::with_capacity(packet.len() + 14);
            frame.extend_from_slice(&[0; 14]);
            frame.extend_from_slice(&packet);
            self.forward_owned(now, route, frame, now + HOLD_UNRESOLVED);
        }
        let mut retry = core::mem::take(&mut self.waiting);
        while let Some(waiting) = retry.pop_front() {
            if waiting.deadline <= now {
                self.counters.drops.add("unresolved_neighbour");
            } else {
                self.forward_owned(now, waiting.route, waiting.frame, waiting.deadline);
            }
        }
    }

    /// Sends a frame the worker owns (from `poll_packet` or the waiting queue); its Ethernet
    /// type is set from the IP version, its addresses from the next hop.
    fn forward_owned(&mut self, now: Timestamp, route: Route, frame: Vec<u8>, deadline: Timestamp) {
        match self.resolver.resolve(now, route) {
            Resolution::Ready(hop) => {
                let ip = frame.get(14..).unwrap_or_default();
                frame::encapsulate(&mut self.scratch, &hop, ip);
                enqueue(
                    &self.tx,
                    &mut self.batch,
                    &mut self.counters,
                    hop.ifindex,
                    &self.scratch,
                );
            }
            Resolution::Pending => self.wait(deadline, route, frame),
            Resolution::NoRoute => {
                tracing::debug!(next_hop = %route.next_hop, "no route: packet dropped");
                self.counters.drops.add("no_route");
            }
        }
    }

    /// Queues a frame until its next hop resolves or `deadline` passes.
    fn wait(&mut self, deadline: Timestamp, route: Route, frame: Vec<u8>) {
        if self.waiting.len() >= HOLD_CAPACITY {
            self.counters.drops.add("unresolved_neighbour");
            return;
        }
        self.waiting.push_back(Waiting {
            deadline,
            route,
            frame,
        });
    }

    /// Sends the frames queued so far.
    pub(super) fn send_batch(&mut self) {
        if !self.batch.is_empty() {
            let counters = &mut self.counters;
            self.tx
                .send_batch(&mut self.batch, |sent| count_send(counters, sent));
        }
    }
}

/// Queues a frame for the next batch, sending the batch first when it is full.
fn enqueue(
    tx: &TxSocket,
    batch: &mut TxBatch,
    counters: &mut Counters,
    ifindex: u32,
    frame: &[u8],
) {
    if batch.is_full() {
        tx.send_batch(batch, |sent| count_send(counters, sent));
    }
    if let Err(e) = batch.push(ifindex, frame) {
        counters.drops.add(send_error_label(&e));
    }
}

/// Counts one frame's transmit: its bytes, or the reason it was dropped.
fn count_send(counters: &mut Counters, sent: io::Result<usize>) {
    match sent {
        Ok(len) => {
            counters.tx_frames += 1;
            counters.tx_bytes += len as u64;
        }
        Err(e) => counters.drops.add(send_error_label(&e)),
    }
}
