//! Local decisions, the manager's side (`docs/affinities.md`, "Local decisions"): agents place
//! new flows of a service by its Maglev table and report them; the manager stores, renews and
//! replicates those flows as if it had placed them, and places a packet of an unknown flow of
//! such a service by the same table, so a report lost with a failed manager costs nothing.

use tether_proto::{FlowEvent, FlowReport, Timestamp};
use tether_wire::AffinityKey;

use crate::Manager;

impl Manager {
    /// Acts on the events of a flow report, in order.
    pub(crate) fn on_flow_report(&mut self, now: Timestamp, report: FlowReport) {
        self.counters.flow_reports += 1;
        for event in report.events {
            match event {
                FlowEvent::Placed { key, backend, port } => {
                    self.on_placed(now, key, backend, port);
                }
                FlowEvent::Closed { key } => {
                    if self.flows.get(&key).is_some() {
                        self.close_flow(now, &key);
                    } else {
                        self.counters.dropped.unknown_flow += 1;
                    }
                }
            }
        }
    }

    /// Stores a flow an agent placed on `addr:port` (or placed again: a SYN on its 5-tuple).
    fn on_placed(&mut self, now: Timestamp, key: AffinityKey, addr: core::net::IpAddr, port: u16) {
        let Some(s) = self.services.iter().position(|svc| svc.is_forward(&key)) else {
            self.counters.dropped.no_service += 1;
            return;
        };
        let Some(b) = self.services[s].backend_at(addr, port) else {
            self.counters.dropped.bad_report += 1;
            return;
        };
        self.counters.flows_reported += 1;
        let existing = self
            .flows
            .get(&key)
            .map(|f| (f.service, f.backend, f.closing_since.is_some()));
        match existing {
            // A retransmitted SYN: same backend, still open.
            Some((fs, fb, false)) if (fs, fb) == (s, b) => {}
            _ => {
                if let Some((fs, fb, closing)) = existing {
                    self.flows.remove(&key);
                    if closing {
                        self.counters.flows_reused += 1;
                    } else {
                        self.services[fs].active[fb] -= 1;
                    }
                }
                self.store_flow(now, s, b, key);
            }
        }
        self.flows.fixed_sent(now, &key);
        self.replicate(now, &key);
        self.served(now);
    }

    /// For a reply of an unknown flow: the service with local decisions, backend and forward
    /// key it belongs to, when that service's table places the forward key on the replying
    /// backend (so the agent that placed the flow chose it).
    pub(crate) fn recoverable_return(
        &self,
        key: &AffinityKey,
    ) -> Option<(usize, usize, AffinityKey)> {
        self.services.iter().enumerate().find_map(|(s, svc)| {
            if !svc.local() || !svc.is_return(key) {
                return None;
            }
            let b = svc.backend_at(key.src, key.src_port)?;
            let forward = AffinityKey {
                protocol: key.protocol,
                src: key.dst,
                src_port: key.dst_port,
                dst: svc.config.vip,
                dst_port: svc.config.port,
            };
            (svc.placement(&forward) == Some(b)).then_some((s, b, forward))
        })
    }
}
