//! The daemon's web face: `lattice daemon --http 127.0.0.1:8384`.
//!
//! A JSON API over the same [`lattice_host::api::service`] the Unix socket
//! serves (nothing here decides what a request means), guarded by bearer
//! tokens ([`lattice_host::api::access`] decides what a token may send),
//! plus live ops as Server-Sent Events and a browser UI whose files are
//! compiled into the binary. docs/web.md is the contract.
//!
//! - `guard`: Host/Origin checks and security headers on every response;
//! - `error`: failures as `{"error", "kind"}` with an HTTP status;
//! - `api`: the routes, each one request through access → service;
//! - `proto`: plugin requests and replies as protobuf JSON, and schemas;
//! - `openapi`: an OpenAPI description generated from the descriptors;
//! - `events`: the SSE stream of committed ops;
//! - `assets`: the embedded UI;
//! - `client`: a small blocking HTTP client for benches and tests.

mod api;
mod assets;
pub mod client;
mod error;
mod events;
mod guard;
mod openapi;
mod proto;

use std::net::SocketAddr;
use std::sync::Arc;

use lattice_host::node::Node;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The running web face; dropping it (or [`Web::stop`]) stops serving.
pub struct Web {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Web {
    /// Binds `addr` and serves on `rt` until stopped.
    pub fn start(
        node: Arc<Node>,
        rt: &tokio::runtime::Handle,
        addr: SocketAddr,
    ) -> Result<Web, WebError> {
        let bind = |source| WebError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local = std_listener.local_addr().map_err(bind)?;
        let app = api::router(node);
        let task = rt.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "web: cannot register the listener");
                    return;
                }
            };
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "web: server stopped");
            }
        });
        Ok(Web { addr: local, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and drops every connection (open event streams end).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.task.abort();
    }
}
