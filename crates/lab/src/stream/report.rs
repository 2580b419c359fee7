//! What a stream client found: one result per stream, as JSON for scripts and one line for
//! people.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::LabError;

/// How one stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StreamOutcome {
    /// Every byte both ways arrived, verified, and both sides closed cleanly.
    Complete,
    /// The connection was reset (or the socket broke) before the stream finished.
    Reset,
    /// The peer closed the connection before sending every byte.
    ShortRead,
    /// A received byte differed from the sequence at this stream offset.
    Corrupt {
        /// Offset of the first wrong byte in the direction it was received.
        offset: u64,
    },
    /// No byte moved for longer than the stall timeout.
    Stalled,
    /// The connection could not be opened.
    ConnectFailed,
    /// Another socket error ended the stream; the result's `detail` says which.
    Failed,
}

/// The fate of one stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResult {
    /// The stream's number within its run.
    pub id: u32,
    /// How it ended.
    pub outcome: StreamOutcome,
    /// The error behind a failed outcome, for people.
    pub detail: Option<String>,
    /// The client's address of the connection, once connected.
    pub local: Option<SocketAddr>,
    /// The address the client connected to.
    pub remote: SocketAddr,
    /// The name the answering server announced.
    pub server: Option<String>,
    /// Payload bytes the client sent.
    pub bytes_sent: u64,
    /// Payload bytes the client received.
    pub bytes_received: u64,
    /// Received payload bytes that matched the sequence.
    pub bytes_verified: u64,
    /// Time from the connection attempt to the end of the stream, in milliseconds.
    pub elapsed_ms: u64,
}

/// Everything one run of the stream client found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamReport {
    /// The address the streams were opened to.
    pub target: SocketAddr,
    /// One result per stream, in id order.
    pub streams: Vec<StreamResult>,
    /// Time from the first connection attempt to the end of the last stream, in milliseconds.
    pub elapsed_ms: u64,
}

impl StreamReport {
    /// Whether every stream completed intact.
    pub fn all_complete(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.outcome == StreamOutcome::Complete)
    }

    /// How many streams ended with an outcome for which `which` is true.
    pub fn count(&self, which: impl Fn(&StreamOutcome) -> bool) -> usize {
        self.streams.iter().filter(|s| which(&s.outcome)).count()
    }

    /// The streams that did not complete.
    pub fn failures(&self) -> Vec<&StreamResult> {
        self.streams
            .iter()
            .filter(|s| s.outcome != StreamOutcome::Complete)
            .collect()
    }

    /// How many streams each server answered.
    pub fn servers(&self) -> BTreeMap<String, usize> {
        let mut servers = BTreeMap::new();
        for name in self.streams.iter().filter_map(|s| s.server.clone()) {
            *servers.entry(name).or_insert(0) += 1;
        }
        servers
    }

    /// Verified bytes over all streams.
    pub fn bytes_verified(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes_verified).sum()
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a stream report has only plain fields")
    }

    /// Reads a report printed by [`StreamReport::to_json`].
    pub fn from_json(json: &str) -> Result<StreamReport, LabError> {
        serde_json::from_str(json).map_err(|e| LabError::Protocol {
            peer: "stream client output".to_owned(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Display for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let complete = self.count(|o| *o == StreamOutcome::Complete);
        write!(
            f,
            "{complete}/{} streams to {} complete ({} reset, {} short, {} corrupt, {} stalled, \
             {} connect failed, {} failed); {} bytes verified in {:.1} s",
            self.streams.len(),
            self.target,
            self.count(|o| *o == StreamOutcome::Reset),
            self.count(|o| *o == StreamOutcome::ShortRead),
            self.count(|o| matches!(o, StreamOutcome::Corrupt { .. })),
            self.count(|o| *o == StreamOutcome::Stalled),
            self.count(|o| *o == StreamOutcome::ConnectFailed),
            self.count(|o| *o == StreamOutcome::Failed),
            self.bytes_verified(),
            self.elapsed_ms as f64 / 1000.0,
        )?;
        let servers = self.servers();
        if !servers.is_empty() {
            f.write_str("; servers")?;
            for (name, n) in servers {
                write!(f, " {name}={n}")?;
            }
        }
        Ok(())
    }
}
