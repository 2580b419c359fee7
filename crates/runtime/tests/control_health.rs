//! Health checkers against local servers: HTTP status classes and TCP connects, with flap
//! damping deciding when a backend goes down and comes back.

use core::net::SocketAddr;
use core::time::Duration;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use tether_runtime::health::{HealthEvent, Target, run_checker};
use tether_runtime::manager_driver::{HealthCheck, HealthCheckKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

const INTERVAL: Duration = Duration::from_millis(20);
/// How long a test waits for what should take a fraction of it; machines are shared and slow.
const PATIENCE: Duration = Duration::from_secs(10);

fn check(kind: HealthCheckKind, rise: u32, fall: u32) -> HealthCheck {
    HealthCheck {
        kind,
        interval: INTERVAL,
        timeout: Duration::from_secs(1),
        rise,
        fall,
    }
}

fn target(addr: SocketAddr) -> Target {
    Target {
        service: "web".into(),
        backend: "b1".into(),
        addr,
    }
}

/// Starts a checker; its task ends with the test's runtime.
fn start(addr: SocketAddr, check: HealthCheck) -> mpsc::Receiver<HealthEvent> {
    let (events, rx) = mpsc::channel(8);
    tokio::spawn(run_checker(target(addr), check, events));
    rx
}

async fn next_event(events: &mut mpsc::Receiver<HealthEvent>) -> HealthEvent {
    timeout(PATIENCE, events.recv())
        .await
        .expect("no health transition in time")
        .expect("checker stopped")
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(5)).await;
    }
}

/// An HTTP server that answers every request with the status it is set to, then closes.
struct HttpServer {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    /// Each request as received, with the status it got.
    log: Arc<Mutex<Vec<(String, u16)>>>,
}

impl HttpServer {
    async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback has free ports");
        let server = Self {
            addr: listener
                .local_addr()
                .expect("a bound listener has an address"),
            status: Arc::new(AtomicU16::new(status)),
            log: Arc::default(),
        };
        let (status, log) = (server.status.clone(), server.log.clone());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.expect("accept on loopback");
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let code = status.load(Ordering::SeqCst);
                // Logged before answering, so the log holds every answer the checker saw.
                log.lock()
                    .expect("no test thread panics holding the log")
                    .push((String::from_utf8_lossy(&request).into_owned(), code));
                let response = format!(
                    "HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        server
    }

    fn served(&self, code: u16) -> usize {
        self.log
            .lock()
            .expect("no test thread panics holding the log")
            .iter()
            .filter(|(_, c)| *c == code)
            .count()
    }
}

#[tokio::test]
async fn http_backend_goes_down_after_fall_failures_and_returns_after_rise_successes() {
    let server = HttpServer::start(200).await;
    let kind = HealthCheckKind::Http {
        path: "/healthz".into(),
        expect_class: 2,
    };
    let mut events = start(server.addr, check(kind, 2, 3));

    wait_until("a few passing checks", || server.served(200) >= 3).await;
    assert!(
        events.try_recv().is_err(),
        "a passing backend that starts up stays quiet"
    );

    server.status.store(503, Ordering::SeqCst);
    let down = next_event(&mut events).await;
    assert_eq!(
        down,
        HealthEvent {
            service: "web".into(),
            backend: "b1".into(),
            up: false,
            reason: "HTTP 503".into(),
        }
    );
    assert!(server.served(503) >= 3, "down before `fall` failures");

    let passes_before = server.served(200);
    server.status.store(200, Ordering::SeqCst);
    let up = next_event(&mut events).await;
    assert!(up.up);
    assert_eq!(up.reason, "HTTP 200");
    assert!(
        server.served(200) - passes_before >= 2,
        "up before `rise` successes"
    );

    let (request, _) = server.log.lock().unwrap()[0].clone();
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nHost: {}\r\n", server.addr)),
        "{request}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
}

#[tokio::test]
async fn an_unexpected_status_class_fails_the_check() {
    let server = HttpServer::start(301).await;
    let kind = HealthCheckKind::Http {
        path: "/".into(),
        expect_class: 2,
    };
    let mut events = start(server.addr, check(kind, 1, 1));
    let down = next_event(&mut events).await;
    assert!(!down.up);
    assert_eq!(down.reason, "HTTP 301");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds connections without a word.
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            held.push(listener.accept().await.unwrap());
        }
    });
    let kind = HealthCheckKind::Http {
        path: "/".into(),
        expect_class: 2,
    };
    let check = HealthCheck {
        timeout: Duration::from_millis(100),
        ..check(kind, 1, 1)
    };
    let down = next_event(&mut start(addr, check)).await;
    assert!(!down.up);
    assert_eq!(down.reason, "timeout after 100ms");
}

/// Accepts and drops connections until the task is aborted, which closes the listener.
fn serve_tcp(listener: TcpListener, accepted: Arc<AtomicU16>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await.expect("accept on loopback");
            accepted.fetch_add(1, Ordering::SeqCst);
        }
    })
}

#[tokio::test]
async fn tcp_backend_goes_down_when_its_listener_closes_and_returns_when_it_listens_again() {
    let (rise, fall) = (3, 2);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU16::new(0));
    let server = serve_tcp(listener, accepted.clone());
    let mut events = start(addr, check(HealthCheckKind::Tcp, rise, fall));

    wait_until("a few passing checks", || {
        accepted.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert!(events.try_recv().is_err());

    server.abort();
    let _ = server.await;
    let closed = Instant::now();
    let down = next_event(&mut events).await;
    assert!(!down.up);
    assert_eq!(down.reason, "connection refused");
    // The bound the operator is promised, with room for a loaded machine.
    let bound = INTERVAL * fall + Duration::from_secs(5);
    assert!(
        closed.elapsed() < bound,
        "down after {:?}",
        closed.elapsed()
    );

    accepted.store(0, Ordering::SeqCst);
    let _server = serve_tcp(TcpListener::bind(addr).await.unwrap(), accepted.clone());
    let up = next_event(&mut events).await;
    assert!(up.up);
    assert_eq!(up.reason, "connected");
    // A connect completes in the kernel before the server task accepts it, so the last
    // passing check may not be counted yet.
    assert!(
        accepted.load(Ordering::SeqCst) >= u16::try_from(rise - 1).unwrap(),
        "up before `rise` successes"
    );
}
