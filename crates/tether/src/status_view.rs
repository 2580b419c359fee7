//! `tether status`: the status report as tables a person reads.

use core::fmt::Write;
use std::collections::BTreeMap;

use crate::report::{AgentReport, FailoverReport, ManagerReport, StatusReport};

/// A text table: a header row and rows, numbers right-aligned.
struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.header[c].len()])
                    .max()
                    .unwrap_or_default()
            })
            .collect();
        let numeric: Vec<bool> = (0..self.header.len())
            .map(|c| {
                !self.rows.is_empty()
                    && self
                        .rows
                        .iter()
                        .all(|r| r[c].chars().all(|ch| ch.is_ascii_digit()))
            })
            .collect();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for cells in [&header].into_iter().chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                if numeric[c] {
                    line.extend(core::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(core::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// Renders `report` as the tables `tether status` prints.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}  (tether {}, roles: {})",
        report.node,
        report.version,
        if report.roles.is_empty() {
            "none".into()
        } else {
            report.roles.join(", ")
        }
    );
    if let Some(manager) = &report.manager {
        manager_tables(manager, &mut out);
    }
    if let Some(agent) = &report.agent {
        agent_tables(agent, &mut out);
    }
    out
}

fn manager_tables(m: &ManagerReport, out: &mut String) {
    let _ = writeln!(
        out,
        "\nMANAGER  role {} (backup precedence {}), {} flows{}",
        m.role,
        m.backup_precedence,
        m.flows,
        if m.shut_down { ", shut down" } else { "" }
    );
    let mut services = Table::new(&[
        "SERVICE",
        "VIP",
        "PROTO",
        "MODE",
        "SCHEDULER",
        "UP",
        "FLOWS",
    ]);
    let mut backends = Table::new(&[
        "SERVICE", "BACKEND", "ADDRESS", "WEIGHT", "ADMIN", "HEALTH", "ELIGIBLE", "FLOWS",
    ]);
    for s in &m.services {
        let up = s.backends.iter().filter(|b| b.eligible).count();
        services.row(vec![
            s.name.clone(),
            socket(&s.vip.to_string(), s.port),
            s.protocol.clone(),
            s.mode.clone(),
            s.scheduler.clone(),
            format!("{up}/{}", s.backends.len()),
            s.backends
                .iter()
                .map(|b| b.active_flows)
                .sum::<u64>()
                .to_string(),
        ]);
        for b in &s.backends {
            backends.row(vec![
                s.name.clone(),
                b.name.clone(),
                socket(&b.address.to_string(), b.port),
                b.weight.to_string(),
                b.admin.clone(),
                if b.healthy { "up" } else { "down" }.into(),
                if b.eligible { "yes" } else { "no" }.into(),
                b.active_flows.to_string(),
            ]);
        }
    }
    out.push('\n');
    services.render(out);
    out.push('\n');
    backends.render(out);
    let c = &m.counters;
    let mut counters = Table::new(&["MANAGER COUNTER", "VALUE"]);
    for (name, value) in [
        ("datagrams received", c.datagrams),
        ("interest matches", c.interest_matches),
        ("flows created", c.flows_created),
        ("flows closed", c.flows_closed),
        ("flows expired", c.flows_expired),
        ("flow reports", c.flow_reports),
        ("flows reported", c.flows_reported),
        ("flows recovered", c.flows_recovered),
        ("fixed updates sent", c.fixed_updates_sent),
        ("wildcard updates sent", c.wildcard_updates_sent),
        ("packets returned", c.ip_packets_returned),
    ] {
        counters.row(vec![name.into(), value.to_string()]);
    }
    labelled_rows(&mut counters, "dropped", &c.dropped);
    labelled_rows(&mut counters, "rejected", &c.rejected);
    labelled_rows(&mut counters, "denies from", &m.denies);
    out.push('\n');
    counters.render(out);
    if !m.failover.peers.is_empty() {
        failover_block(&m.failover, out);
    }
}

fn failover_block(f: &FailoverReport, out: &mut String) {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
    let _ = writeln!(
        out,
        "\nFAILOVER  {}{}, takeovers {}, reclaims {}, last detection {}, last takeover {}",
        f.role,
        if f.ready { "" } else { " (not ready)" },
        f.takeovers,
        f.reclaims,
        ms(f.detection_ms),
        ms(f.takeover_ms),
    );
    let mut peers = Table::new(&["PEER", "LIVE", "ROLE", "PRECEDENCE", "HEARD", "LAG"]);
    for p in &f.peers {
        peers.row(vec![
            p.address.to_string(),
            if p.live { "yes" } else { "no" }.into(),
            format!("{}{}", p.role, if p.ready { "" } else { " (not ready)" }),
            p.backup_precedence
                .map_or_else(|| "-".into(), |b| b.to_string()),
            p.last_heard_ms_ago
                .map_or_else(|| "never".into(), |ms| format!("{ms:.0} ms ago")),
            p.lag.to_string(),
        ]);
    }
    out.push('\n');
    peers.render(out);
}

fn agent_tables(a: &AgentReport, out: &mut String) {
    let _ = writeln!(
        out,
        "\nAGENT  {} fixed / {} wildcard affinities, {} held packets, {} steering rules",
        a.fixed_affinities, a.wildcard_affinities, a.held_packets, a.steering_rules
    );
    let mut counters = Table::new(&["AGENT COUNTER", "VALUE"]);
    for (name, value) in [
        ("packets received", a.rx_packets),
        ("bytes received", a.rx_bytes),
        ("packets sent", a.tx_packets),
        ("bytes sent", a.tx_bytes),
        ("forwarded", a.forwarded),
        ("not ours (kernel)", a.not_ours),
        ("to manager", a.to_manager),
        ("held", a.held),
        ("interest matches", a.interest_matches),
        ("placed locally", a.placed_locally),
        ("flow reports", a.flow_reports),
        ("messages in", a.messages_in),
        ("messages out", a.messages_out),
    ] {
        counters.row(vec![name.into(), value.to_string()]);
    }
    labelled_rows(&mut counters, "dropped", &a.drops);
    labelled_rows(&mut counters, "rejected", &a.rejected);
    out.push('\n');
    counters.render(out);
}

/// One row per non-zero label, like `dropped: no_backend`.
fn labelled_rows(table: &mut Table, prefix: &str, counts: &BTreeMap<String, u64>) {
    for (label, n) in counts.iter().filter(|(_, n)| **n > 0) {
        table.row(vec![format!("{prefix}: {label}"), n.to_string()]);
    }
}

fn socket(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}
