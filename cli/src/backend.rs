//! Where requests go: a running daemon (over its socket), or, with no
//! daemon, a node this process opens itself. Both answer through the same
//! `service::handle`, so behaviour is identical.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use lattice_host::api::client::Client;
use lattice_host::api::{Request, Response, service};
use lattice_host::node::{Node, NodeError, SOCKET_FILE};

use crate::fail::{ErrorKind, Failure};

/// How long a one-shot command waits for another process to release the
/// data dir before giving up (`LATTICE_LOCK_WAIT_MS` overrides it).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// First and largest pause between attempts to open a busy data dir.
const RETRY_FIRST: Duration = Duration::from_millis(2);
const RETRY_MAX: Duration = Duration::from_millis(100);

pub enum Backend {
    Daemon(Client),
    Local(Box<Node>),
}

impl Backend {
    /// The daemon if one answers, else the node opened in this process.
    ///
    /// Without a daemon, concurrent one-shot commands take turns: redb's
    /// file lock admits one opener at a time, and a command that finds the
    /// data dir locked retries (backing off from 2 ms to 100 ms) until the
    /// lock is free or [`LOCK_WAIT`] has passed, then fails with one line
    /// naming the wait. The lock is a non-blocking `flock` taken inside redb,
    /// so there is nothing to block on: polling with backoff is the wait. A
    /// daemon that starts meanwhile is found by the next attempt.
    pub fn open(data_dir: &Path) -> Result<Backend> {
        let socket = data_dir.join(SOCKET_FILE);
        let wait = lock_wait();
        let deadline = Instant::now() + wait;
        let mut pause = RETRY_FIRST;
        loop {
            if let Ok(c) = Client::connect(&socket) {
                return Ok(Backend::Daemon(c));
            }
            match Node::open(data_dir) {
                Ok(node) => return Ok(Backend::Local(Box::new(node))),
                Err(NodeError::Busy(_)) if Instant::now() < deadline => {
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(RETRY_MAX);
                }
                Err(NodeError::Busy(path)) => {
                    return Err(Failure::new(
                        ErrorKind::Busy,
                        format!(
                            "the data dir {} stayed in use by another lattice process for {:.1} s (a long command, or a daemon not answering on its socket); try again, or stop that process",
                            path.display(),
                            wait.as_secs_f64()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(Failure::new(
                        e.kind(),
                        format!("cannot open node in {}: {e}", data_dir.display()),
                    ));
                }
            }
        }
    }

    /// One request; an error response becomes an `Err` with its message.
    pub fn call(&mut self, req: Request) -> Result<Response> {
        let resp = match self {
            Backend::Daemon(c) => c.call(req).context("daemon connection")?,
            Backend::Local(n) => service::handle(n, req, false),
        };
        if let Response::Error { message, kind } = resp {
            return Err(Failure::new(kind, message));
        }
        Ok(resp)
    }

    pub fn socket_path(data_dir: &Path) -> PathBuf {
        data_dir.join(SOCKET_FILE)
    }
}

fn lock_wait() -> Duration {
    std::env::var("LATTICE_LOCK_WAIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(LOCK_WAIT)
}
