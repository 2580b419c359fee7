//! The admin HTTP API: `GET /status` (JSON), `GET /metrics` (Prometheus) and
//! `POST /backend/{service}/{backend}/{drain|enable|disable}`.

mod metrics;

use core::fmt;
use core::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tether_manager::{AdminState, ControlError};

use crate::report::{StatusReport, admin_name};

pub use metrics::render as render_metrics;

/// What the admin API reads from and acts on: the daemon, or a fake in tests.
pub trait Node: Send + Sync + 'static {
    /// The current status, from the roles' published snapshots (never from the packet path).
    fn status(&self) -> StatusReport;

    /// Changes a backend's administrative state on this node's manager.
    fn set_backend_state(
        &self,
        service: &str,
        backend: &str,
        state: AdminState,
    ) -> impl Future<Output = Result<(), ControlFailure>> + Send;
}

/// Why a backend state change was refused.
#[derive(Debug)]
pub enum ControlFailure {
    /// This node runs no manager.
    NoManager,
    /// The manager has no such service or backend.
    Unknown(ControlError),
}

impl fmt::Display for ControlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoManager => f.write_str(
                "this node runs no manager; send the request to the admin API of a node whose \
                 config has a [manager] section",
            ),
            Self::Unknown(e) => e.fmt(f),
        }
    }
}

/// The answer to a backend state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the change was made.
    pub ok: bool,
    /// The service named.
    pub service: String,
    /// The backend named.
    pub backend: String,
    /// The state asked for, when the action was understood.
    pub state: Option<String>,
    /// Why the change was refused.
    pub error: Option<String>,
}

/// The admin API's routes over `node`.
pub fn router<N: Node>(node: Arc<N>) -> Router {
    Router::new()
        .route("/status", get(status::<N>))
        .route("/metrics", get(metrics::<N>))
        .route(
            "/backend/{service}/{backend}/{action}",
            post(set_backend::<N>),
        )
        .with_state(node)
}

async fn status<N: Node>(State(node): State<Arc<N>>) -> Response {
    axum::Json(node.status()).into_response()
}

async fn metrics<N: Node>(State(node): State<Arc<N>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render_metrics(&node.status()),
    )
        .into_response()
}

async fn set_backend<N: Node>(
    State(node): State<Arc<N>>,
    Path((service, backend, action)): Path<(String, String, String)>,
) -> Response {
    let reply = |code: StatusCode, state: Option<AdminState>, error: Option<String>| {
        let body = ControlReply {
            ok: error.is_none(),
            service: service.clone(),
            backend: backend.clone(),
            state: state.map(|s| admin_name(s).to_owned()),
            error,
        };
        (code, axum::Json(body)).into_response()
    };
    let state = match action.as_str() {
        "drain" => AdminState::Draining,
        "enable" => AdminState::Enabled,
        "disable" => AdminState::Disabled,
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                None,
                Some(format!(
                    "unknown action \"{action}\"; use drain, enable or disable"
                )),
            );
        }
    };
    match node.set_backend_state(&service, &backend, state).await {
        Ok(()) => {
            tracing::info!(%service, %backend, state = admin_name(state), "backend state changed");
            reply(StatusCode::OK, Some(state), None)
        }
        Err(e @ ControlFailure::NoManager) => {
            reply(StatusCode::CONFLICT, Some(state), Some(e.to_string()))
        }
        Err(e @ ControlFailure::Unknown(_)) => {
            reply(StatusCode::NOT_FOUND, Some(state), Some(e.to_string()))
        }
    }
}
