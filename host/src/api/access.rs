//! Who may send which request through a token-guarded face (the HTTP API).
//!
//! The Unix socket needs no tokens: only the data dir's owner can open it.
//! Anything reachable over TCP carries a bearer token instead, and every
//! request it sends is checked here, in the host, against the token's row
//! in the host-owned token table, before [`super::service`] sees it:
//!
//! - a read-only token sends only reads: node, mesh and store status, logs,
//!   watches, and plugin methods marked `NO_SIDE_EFFECTS`;
//! - a token limited to one store reaches that store only, and nothing
//!   mesh-wide (members, peers, invites, other stores);
//! - token management is never allowed through a token: it stays with the
//!   data dir's owner, on the command line.
//!
//! A request that names a store is rewritten to name it by uuid, so the
//! store checked is the store served even if a name changes hands between
//! the check and the call.

use super::Request;
use crate::node::{Node, NodeError, StoreHandle, TokenInfo};
use crate::runtime::MethodInfo;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No token, or not a valid one: HTTP 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid token asking for more than it grants: HTTP 403.
    #[error("{0}")]
    Forbidden(String),
    /// The request names something that does not resolve (no such store).
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// A request the token may send, with what it resolved to.
pub struct Allowed {
    /// The request to serve: stores named by uuid.
    pub req: Request,
    /// The store it acts on, if it acts on one.
    pub store: Option<StoreHandle>,
    /// The plugin method, for a `Call`.
    pub method: Option<MethodInfo>,
}

/// The token an `Authorization` header value carries, checked.
pub fn authenticate(node: &Node, header: Option<&str>) -> Result<TokenInfo, AccessError> {
    let Some(h) = header else {
        return Err(AccessError::Unauthenticated(
            "missing Authorization: Bearer <token> (make one with `lattice token create`)".into(),
        ));
    };
    let token = h
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| {
            AccessError::Unauthenticated("Authorization must be `Bearer <token>`".into())
        })?;
    node.token_check(token)
        .map_err(|e| AccessError::Unauthenticated(e.to_string()))
}

/// Reads that touch no store and that any full token may send.
fn node_read(req: &Request) -> bool {
    matches!(
        req,
        Request::NodeStatus
            | Request::NodeName { name: None }
            | Request::MeshList
            | Request::MeshStatus { .. }
            | Request::StoreList
            | Request::Catalog
            | Request::PluginList
            | Request::MeshPeers
    )
}

/// Checks `req` against `token`'s scope.
pub fn authorize(node: &Node, token: &TokenInfo, req: Request) -> Result<Allowed, AccessError> {
    let read_only = token.record.read_only;
    let scoped = token.store_id();
    let forbid = |why: &str| Err(AccessError::Forbidden(format!("token {}: {why}", token.id)));
    let done = |req| {
        Ok(Allowed {
            req,
            store: None,
            method: None,
        })
    };
    match req {
        Request::TokenCreate { .. } | Request::TokenList | Request::TokenRevoke { .. } => {
            forbid("tokens are managed with `lattice token` on the node itself")
        }
        // Both a store-limited token's client and the browser UI need to
        // know who they talk to and what the store's schema is; the HTTP
        // face filters the catalog down to the token's store.
        Request::NodeStatus | Request::Catalog => done(req),
        r if node_read(&r) => match scoped {
            None => done(r),
            Some(_) => forbid("limited to one store; mesh-wide reads are out of its scope"),
        },
        Request::StoreStatus { store } => {
            let h = in_scope(node, token, store.as_deref())?;
            with_store(Request::StoreStatus { store: uuid(&h) }, h)
        }
        Request::StoreLog { store, from, limit } => {
            let h = in_scope(node, token, store.as_deref())?;
            let req = Request::StoreLog {
                store: uuid(&h),
                from,
                limit,
            };
            with_store(req, h)
        }
        Request::StoreForks { store } => {
            let h = in_scope(node, token, store.as_deref())?;
            with_store(Request::StoreForks { store: uuid(&h) }, h)
        }
        Request::Presence { store } => {
            let h = in_scope(node, token, store.as_deref())?;
            with_store(Request::Presence { store: uuid(&h) }, h)
        }
        Request::Watch { store: None } if scoped.is_none() => done(Request::Watch { store: None }),
        Request::Watch { store } => {
            // A store-limited token watching "everything" watches its store.
            let sel = store.or_else(|| token.record.store.clone());
            let h = in_scope(node, token, sel.as_deref())?;
            with_store(Request::Watch { store: uuid(&h) }, h)
        }
        Request::StoreSync {
            store: Some(s),
            progress,
        } => {
            if read_only {
                return forbid("read-only: it may not start a sync");
            }
            let h = in_scope(node, token, Some(&s))?;
            let req = Request::StoreSync {
                store: uuid(&h),
                progress,
            };
            with_store(req, h)
        }
        Request::StoreVerify { store: Some(s) } => {
            if read_only {
                return forbid("read-only: verify records its verdict");
            }
            let h = in_scope(node, token, Some(&s))?;
            with_store(Request::StoreVerify { store: uuid(&h) }, h)
        }
        Request::Call {
            selector,
            explicit,
            method,
            request,
        } => {
            let h = node.resolve(&selector, explicit.as_deref())?;
            check_store(token, &h)?;
            let Some(m) = h.plugin.info().method(&method).cloned() else {
                return Err(NodeError::UnknownMethod {
                    store: h.name.clone(),
                    method,
                    valid: h
                        .plugin
                        .info()
                        .methods
                        .iter()
                        .map(|m| m.name.clone())
                        .collect(),
                }
                .into());
            };
            if read_only && !m.is_query {
                return forbid(&format!(
                    "read-only: `{}` is a command (it writes an op)",
                    m.name
                ));
            }
            Ok(Allowed {
                req: Request::Call {
                    selector: h.id.to_uuid(),
                    explicit: Some(h.id.to_uuid()),
                    method,
                    request,
                },
                store: Some(h),
                method: Some(m),
            })
        }
        // Everything else changes the node or the mesh: only a full,
        // read-write token.
        _ if read_only => forbid("read-only: it may not change the node or the mesh"),
        _ if scoped.is_some() => {
            forbid("limited to one store; it may not change the node or the mesh")
        }
        other => done(other),
    }
}

fn uuid(h: &StoreHandle) -> Option<String> {
    Some(h.id.to_uuid())
}

fn with_store(req: Request, h: StoreHandle) -> Result<Allowed, AccessError> {
    Ok(Allowed {
        req,
        store: Some(h),
        method: None,
    })
}

/// Resolves an optional store argument as the service would (a name, a
/// uuid, else the default store), then checks it against the token.
fn in_scope(node: &Node, token: &TokenInfo, sel: Option<&str>) -> Result<StoreHandle, AccessError> {
    let h = match (sel, &token.record.store) {
        (Some(s), _) => node.resolve(s, None)?,
        // A store-limited token's default store is its own.
        (None, Some(own)) => node.resolve(own, None)?,
        (None, None) => node.default_store()?,
    };
    check_store(token, &h)?;
    Ok(h)
}

fn check_store(token: &TokenInfo, h: &StoreHandle) -> Result<(), AccessError> {
    match token.store_id() {
        Some(own) if own != h.id => Err(AccessError::Forbidden(format!(
            "token {}: limited to store `{}`, not `{}`",
            token.id,
            token.record.store_name.as_deref().unwrap_or("?"),
            h.name
        ))),
        _ => Ok(()),
    }
}
