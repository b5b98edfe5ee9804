//! A static command becomes one API request; files it names (a plugin
//! .wasm) are read here, on the CLI's side of the socket.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use lattice_host::api::{Hex, Request};

use crate::app::{Cmd, MeshCmd, NodeCmd, PluginCmd, StoreCmd};

/// The request a static command sends.
pub fn request(cmd: &Cmd) -> Result<Request> {
    Ok(match cmd {
        Cmd::Node(NodeCmd::Status) => Request::NodeStatus,
        Cmd::Node(NodeCmd::Name { name }) => Request::NodeName { name: name.clone() },
        Cmd::Mesh(MeshCmd::Create { name }) => Request::MeshCreate { name: name.clone() },
        Cmd::Mesh(MeshCmd::List) => Request::MeshList,
        Cmd::Mesh(MeshCmd::Use { mesh }) => Request::MeshUse {
            mesh: required(mesh.get(), "mesh use", "MESH")?,
        },
        Cmd::Mesh(MeshCmd::Status { mesh }) => Request::MeshStatus { mesh: mesh.get() },
        Cmd::Store(StoreCmd::Create { name, kind }) => store_create_request(name.clone(), kind)?,
        Cmd::Store(StoreCmd::List) => Request::StoreList,
        Cmd::Store(StoreCmd::Use { store }) => Request::StoreUse {
            store: required(store.get(), "store use", "STORE")?,
        },
        Cmd::Store(StoreCmd::Delete { store }) => Request::StoreDelete {
            store: required(store.get(), "store delete", "STORE")?,
        },
        Cmd::Store(StoreCmd::Upgrade { store, kind }) => {
            let store = required(store.get(), "store upgrade", "STORE")?;
            match store_create_request(None, kind)? {
                Request::StoreCreate { kind, wasm, .. } => {
                    Request::StoreUpgrade { store, kind, wasm }
                }
                _ => unreachable!("store_create_request builds a StoreCreate"),
            }
        }
        Cmd::Store(StoreCmd::Status { store }) | Cmd::Store(StoreCmd::Digest { store }) => {
            Request::StoreStatus { store: store.get() }
        }
        Cmd::Store(StoreCmd::Log { store, from, limit }) => Request::StoreLog {
            store: store.get(),
            from: *from,
            limit: *limit,
        },
        Cmd::Mesh(MeshCmd::Invite { expires, mesh }) => Request::MeshInvite {
            expires_secs: *expires,
            mesh: mesh.clone(),
        },
        Cmd::Mesh(MeshCmd::Join { token }) => Request::MeshJoin {
            token: token.clone(),
            progress: false,
        },
        Cmd::Mesh(MeshCmd::Peers) => Request::MeshPeers,
        Cmd::Mesh(MeshCmd::Leave { mesh }) => Request::MeshLeave {
            mesh: required(mesh.get(), "mesh leave", "MESH")?,
        },
        Cmd::Mesh(MeshCmd::Revoke { member, mesh }) => Request::MeshRevoke {
            member: member.clone(),
            mesh: mesh.clone(),
        },
        Cmd::Store(StoreCmd::Sync { store }) => Request::StoreSync {
            store: store.get(),
            progress: false,
        },
        Cmd::Store(StoreCmd::Verify { store }) => Request::StoreVerify { store: store.get() },
        Cmd::Store(StoreCmd::Forks { store }) => Request::StoreForks { store: store.get() },
        Cmd::Plugin(PluginCmd::List) => Request::PluginList,
        Cmd::Plugin(PluginCmd::Inspect { path }) => Request::PluginInspect {
            wasm: Hex(read_wasm(path)?),
        },
        Cmd::Plugin(PluginCmd::Check { path }) => Request::PluginCheck {
            wasm: Hex(read_wasm(path)?),
        },
        _ => unreachable!("handled by dispatch"),
    })
}

/// A selector the command cannot do without (`store delete` must never
/// guess which store).
fn required(sel: Option<String>, cmd: &str, what: &str) -> Result<String> {
    match sel {
        Some(s) => Ok(s),
        None => usage!(
            "`lattice {cmd}` needs {what} (positional or --{})",
            what.to_lowercase()
        ),
    }
}

/// Largest plugin file the CLI will read (the node enforces its own cap).
const MAX_PLUGIN_FILE: u64 = 16 << 20;

fn read_wasm(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read plugin file {}", path.display()))?;
    if meta.len() > MAX_PLUGIN_FILE {
        bail!(
            "plugin file {} is {} bytes; the limit is {MAX_PLUGIN_FILE}",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read plugin file {}", path.display()))
}

fn store_create_request(name: Option<String>, kind: &str) -> Result<Request> {
    let path = Path::new(kind);
    if kind.ends_with(".wasm") || kind.contains('/') || path.is_file() {
        return Ok(Request::StoreCreate {
            name,
            kind: None,
            wasm: Some(Hex(read_wasm(path)?)),
        });
    }
    Ok(Request::StoreCreate {
        name,
        kind: Some(kind.to_string()),
        wasm: None,
    })
}
