//! Health checks of backends: one tokio task per backend of every service that has a check,
//! probing every interval and reporting only the transitions that flap damping lets through.
//!
//! ```text
//!  every interval ─► probe (TCP connect / HTTP GET, within timeout) ─► Damping (rise, fall)
//!                                                     transition ─► log + HealthEvent ─► driver
//! ```

mod damping;
mod probe;

use core::net::SocketAddr;
use core::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::manager_driver::{HealthCheck, HealthCheckKind};

pub use damping::Damping;
pub use probe::{Failure, Pass, probe};

/// A backend a checker watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Service name.
    pub service: String,
    /// Backend name within the service.
    pub backend: String,
    /// Address and port checked.
    pub addr: SocketAddr,
}

/// A change of a backend's health, for the manager driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// Service name.
    pub service: String,
    /// Backend name within the service.
    pub backend: String,
    /// Whether the backend is now up.
    pub up: bool,
    /// What the check that decided it saw ("connection refused", "HTTP 200").
    pub reason: String,
}

/// Checks `target` every `check.interval`, starting now, and sends each transition to
/// `events`; returns when `events` is closed.
pub async fn run_checker(target: Target, check: HealthCheck, events: mpsc::Sender<HealthEvent>) {
    let mut damping = Damping::new(check.rise, check.fall);
    // `interval` panics on a zero period; configurations are validated before this, and a
    // direct caller gets a busy check rather than a panic.
    let mut ticks = tokio::time::interval(check.interval.max(Duration::from_millis(1)));
    // A check slower than the interval delays the next one instead of firing a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = probe(&check.kind, target.addr, check.timeout).await;
        let reason = match &result {
            Ok(pass) => pass.to_string(),
            Err(failure) => failure.to_string(),
        };
        tracing::debug!(
            service = %target.service,
            backend = %target.backend,
            addr = %target.addr,
            %reason,
            "health check"
        );
        let Some(up) = damping.record(result.is_ok()) else {
            continue;
        };
        if up {
            tracing::info!(
                service = %target.service,
                backend = %target.backend,
                addr = %target.addr,
                %reason,
                "backend is up after {} passing checks",
                check.rise.max(1)
            );
        } else {
            tracing::info!(
                service = %target.service,
                backend = %target.backend,
                addr = %target.addr,
                %reason,
                "backend is down after {} failed checks",
                check.fall.max(1)
            );
        }
        let event = HealthEvent {
            service: target.service.clone(),
            backend: target.backend.clone(),
            up,
            reason,
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// What is wrong with a health check, in words that name the field and the fix.
pub(crate) fn problem(check: &HealthCheck) -> Option<String> {
    if check.interval.is_zero() {
        return Some("interval is 0; set how often to check, for example 2s".into());
    }
    if check.timeout.is_zero() {
        return Some("timeout is 0; set how long a check may take, for example 1s".into());
    }
    if check.rise == 0 {
        return Some(
            "rise is 0; set how many passing checks bring a backend up, at least 1".into(),
        );
    }
    if check.fall == 0 {
        return Some(
            "fall is 0; set how many failed checks take a backend down, at least 1".into(),
        );
    }
    match &check.kind {
        HealthCheckKind::Http { expect_class, .. } if !(1..=5).contains(expect_class) => Some(
            format!("expect_class is {expect_class}; use 1 to 5 (2 means any 2xx status)"),
        ),
        HealthCheckKind::Http { path, .. }
            if !path.starts_with('/')
                || path.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Some(format!(
                "path {path:?} is not a request path; start it with / and leave out spaces and \
                 control characters"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: HealthCheckKind) -> HealthCheck {
        HealthCheck {
            kind,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
        }
    }

    fn http(path: &str, expect_class: u16) -> HealthCheckKind {
        HealthCheckKind::Http {
            path: path.into(),
            expect_class,
        }
    }

    #[test]
    fn sound_checks_have_no_problem() {
        assert_eq!(problem(&check(HealthCheckKind::Tcp)), None);
        assert_eq!(problem(&check(http("/healthz?full=1", 2))), None);
    }

    #[test]
    fn each_unusable_field_is_named() {
        let cases: [(&str, HealthCheck); 6] = [
            (
                "interval",
                HealthCheck {
                    interval: Duration::ZERO,
                    ..check(HealthCheckKind::Tcp)
                },
            ),
            (
                "timeout",
                HealthCheck {
                    timeout: Duration::ZERO,
                    ..check(HealthCheckKind::Tcp)
                },
            ),
            (
                "rise",
                HealthCheck {
                    rise: 0,
                    ..check(HealthCheckKind::Tcp)
                },
            ),
            (
                "fall",
                HealthCheck {
                    fall: 0,
                    ..check(HealthCheckKind::Tcp)
                },
            ),
            ("expect_class", check(http("/", 6))),
            ("path", check(http("/a b\r\nX-Injected: 1", 2))),
        ];
        for (field, check) in cases {
            let problem = problem(&check).expect(field);
            assert!(problem.contains(field), "{problem}");
        }
    }
}
