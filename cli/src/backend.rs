//! Where requests go: a running daemon (over its socket), or, with no
//! daemon, a node this process opens itself. Both answer through the same
//! `service::handle`, so behaviour is identical.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use lattice_host::api::client::Client;
use lattice_host::api::{Request, Response, service};
use lattice_host::node::{Node, SOCKET_FILE};

pub enum Backend {
    Daemon(Client),
    Local(Box<Node>),
}

impl Backend {
    pub fn open(data_dir: &Path) -> Result<Backend> {
        let socket = data_dir.join(SOCKET_FILE);
        if let Ok(c) = Client::connect(&socket) {
            return Ok(Backend::Daemon(c));
        }
        let node = Node::open(data_dir)
            .with_context(|| format!("cannot open node in {}", data_dir.display()))?;
        Ok(Backend::Local(Box::new(node)))
    }

    /// One request; an error response becomes an `Err` with its message.
    pub fn call(&mut self, req: Request) -> Result<Response> {
        let resp = match self {
            Backend::Daemon(c) => c.call(req).context("daemon connection")?,
            Backend::Local(n) => service::handle(n, req, false),
        };
        if let Response::Error { message } = resp {
            bail!(message);
        }
        Ok(resp)
    }

    pub fn socket_path(data_dir: &Path) -> PathBuf {
        data_dir.join(SOCKET_FILE)
    }
}
