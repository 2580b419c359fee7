//! The admin API, served in-process over a fake node: status JSON, metrics, backend control.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::{Arc, Mutex};

use tether::admin::{ControlFailure, ControlReply, Node, router};
use tether::client::request;
use tether::report::{StatusReport, admin_name};
use tether_manager::{AdminState, ControlError};

/// A node whose status is a fixed document that backend changes edit.
struct FakeNode {
    report: Mutex<StatusReport>,
}

impl Node for FakeNode {
    fn status(&self) -> StatusReport {
        self.report.lock().unwrap().clone()
    }

    async fn set_backend_state(
        &self,
        service: &str,
        backend: &str,
        state: AdminState,
    ) -> Result<(), ControlFailure> {
        let mut report = self.report.lock().unwrap();
        let manager = report.manager.as_mut().ok_or(ControlFailure::NoManager)?;
        let s = manager
            .services
            .iter_mut()
            .find(|s| s.name == service)
            .ok_or_else(|| ControlFailure::Unknown(ControlError::UnknownService(service.into())))?;
        let b = s
            .backends
            .iter_mut()
            .find(|b| b.name == backend)
            .ok_or_else(|| {
                ControlFailure::Unknown(ControlError::UnknownBackend {
                    service: service.into(),
                    backend: backend.into(),
                })
            })?;
        b.admin = admin_name(state).into();
        Ok(())
    }
}

fn fixture() -> StatusReport {
    serde_json::from_str(include_str!("fixtures/status.json")).unwrap()
}

/// Serves the admin API for `report` on a loopback port and returns its address.
async fn serve(report: StatusReport) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let node = Arc::new(FakeNode {
        report: Mutex::new(report),
    });
    tokio::spawn(async move { axum::serve(listener, router(node)).await.unwrap() });
    addr
}

async fn call(admin: &str, method: &'static str, path: &str) -> (u16, String) {
    let (admin, path) = (admin.to_owned(), path.to_owned());
    let r = tokio::task::spawn_blocking(move || request(&admin, method, &path).unwrap())
        .await
        .unwrap();
    (r.status, r.body)
}

#[tokio::test]
async fn status_answers_the_nodes_report_as_json() {
    let admin = serve(fixture()).await;
    let (status, body) = call(&admin, "GET", "/status").await;
    assert_eq!(status, 200);
    let report: StatusReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report, fixture());
    let raw: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        raw["manager"]["services"][0]["backends"][1]["admin"],
        "draining"
    );
    assert_eq!(raw["agent"]["drops"]["truncated_tcp"], 3);
    let failover = &raw["manager"]["failover"];
    assert_eq!(failover["role"], "active");
    assert_eq!(failover["detection_ms"], 212.5);
    assert_eq!(failover["peers"][0]["address"], "10.0.0.2:7500");
    assert_eq!(failover["peers"][0]["live"], false);
}

#[tokio::test]
async fn metrics_name_every_family_with_units_and_labels() {
    let admin = serve(fixture()).await;
    let (status, body) = call(&admin, "GET", "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "tether_node_info{node=\"lb1\",version=\"0.1.0\",roles=\"manager,agent\"} 1",
        "tether_agent_received_packets_total 100000",
        "tether_agent_received_bytes_total 64000000",
        "tether_agent_sent_packets_total 99800",
        "tether_agent_sent_bytes_total 63900000",
        "tether_agent_forwarded_packets_total 99500",
        "tether_agent_punted_packets_total 290",
        "tether_agent_dropped_packets_total{reason=\"truncated_tcp\"} 3",
        "tether_agent_rejected_messages_total{reason=\"bad_mac\"} 2",
        "tether_agent_rejected_messages_total{reason=\"replayed\"} 0",
        "tether_agent_fixed_affinities 84",
        "tether_agent_wildcard_affinities 5",
        "tether_manager_active_flows 42",
        "tether_manager_new_flows_total 290",
        "tether_manager_interest_matches_total 300",
        "tether_manager_flow_reports_total 12",
        "tether_manager_reported_flows_total 240",
        "tether_manager_recovered_flows_total 1",
        "tether_agent_placed_locally_total 240",
        "tether_agent_flow_reports_total 12",
        "tether_manager_dropped_total{reason=\"no_backend\"} 2",
        "tether_manager_rejected_messages_total{reason=\"bad_mac\"} 5",
        "tether_manager_rejected_messages_total{reason=\"unknown_key\"} 0",
        "tether_backend_healthy{service=\"web\",backend=\"web3\"} 0",
        "tether_backend_healthy{service=\"web\",backend=\"web1\"} 1",
        "tether_backend_active_flows{service=\"web\",backend=\"web2\"} 15",
        "tether_backend_admin_state{service=\"web\",backend=\"web2\",state=\"draining\"} 1",
        "tether_manager_active 1",
        "tether_manager_ready 1",
        "tether_manager_takeovers_total 1",
        "tether_manager_reclaims_total 0",
        "tether_manager_last_detection_seconds 0.2125",
        "tether_manager_last_takeover_seconds 0.04825",
        "tether_manager_replication_records_total{outcome=\"sent\"} 40",
        "tether_manager_replication_records_total{outcome=\"stored\"} 310",
        "tether_manager_replication_records_total{outcome=\"refused\"} 2",
        "tether_manager_replication_records_total{outcome=\"conflicting\"} 1",
        "tether_manager_replication_gaps_total 3",
        "tether_manager_replication_resent_batches_total 4",
        "tether_manager_snapshots_total{direction=\"sent\"} 0",
        "tether_manager_snapshots_total{direction=\"received\"} 1",
        "tether_manager_peer_live{peer=\"10.0.0.2:7500\"} 0",
        "tether_manager_peer_live{peer=\"10.0.0.3:7500\"} 1",
        "tether_manager_peer_lag_batches{peer=\"10.0.0.2:7500\"} 7",
        "# EOF",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    assert!(body.contains("# UNIT tether_agent_received_bytes bytes"));
}

#[tokio::test]
async fn drain_and_enable_change_the_backend_state() {
    let admin = serve(fixture()).await;
    let (status, body) = call(&admin, "POST", "/backend/web/web1/drain").await;
    assert_eq!(status, 200, "{body}");
    let reply: ControlReply = serde_json::from_str(&body).unwrap();
    assert!(reply.ok);
    assert_eq!(reply.state.as_deref(), Some("draining"));
    let (_, body) = call(&admin, "GET", "/status").await;
    let report: StatusReport = serde_json::from_str(&body).unwrap();
    assert_eq!(
        report.manager.unwrap().services[0].backends[0].admin,
        "draining"
    );

    let (status, _) = call(&admin, "POST", "/backend/web/web1/enable").await;
    assert_eq!(status, 200);
    let (_, body) = call(&admin, "GET", "/metrics").await;
    assert!(body.contains(
        "tether_backend_admin_state{service=\"web\",backend=\"web1\",state=\"enabled\"} 1"
    ));
}

#[tokio::test]
async fn unknown_names_and_actions_answer_404_with_a_message() {
    let admin = serve(fixture()).await;
    for (path, needle) in [
        ("/backend/nope/web1/drain", "no service is named \"nope\""),
        ("/backend/web/nope/drain", "has no backend named \"nope\""),
        ("/backend/web/web1/explode", "use drain, enable or disable"),
    ] {
        let (status, body) = call(&admin, "POST", path).await;
        assert_eq!(status, 404, "{path}");
        let reply: ControlReply = serde_json::from_str(&body).unwrap();
        assert!(!reply.ok);
        assert!(reply.error.unwrap().contains(needle), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_node_without_a_manager_refuses_backend_changes() {
    let admin = serve(StatusReport {
        node: "agent-only".into(),
        ..StatusReport::default()
    })
    .await;
    let (status, body) = call(&admin, "POST", "/backend/web/web1/drain").await;
    assert_eq!(status, 409);
    assert!(body.contains("runs no manager"), "{body}");
}

#[tokio::test]
async fn tether_status_prints_tables_and_json_from_a_live_api() {
    let admin = serve(fixture()).await;
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(args)
            .output()
            .unwrap()
    };
    let a = admin.clone();
    let out = tokio::task::spawn_blocking(move || run(vec!["status".into(), "--admin".into(), a]))
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        include_str!("fixtures/status.txt")
    );
    let a = admin.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(vec!["status".into(), "--json".into(), "--admin".into(), a])
    })
    .await
    .unwrap();
    let report: StatusReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, fixture());
    let out = tokio::task::spawn_blocking(move || {
        run(vec![
            "backend".into(),
            "drain".into(),
            "web".into(),
            "nope".into(),
            "--admin".into(),
            admin,
        ])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no backend named \"nope\""));
}
