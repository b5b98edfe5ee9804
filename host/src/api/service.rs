//! Request → response over a [`Node`]. Blocking: servers call it from a
//! blocking thread.

use lattice_kernel::SignedEntry;

use super::*;
use crate::node::{Node, NodeError, StoreHandle, StoreType};
use crate::runtime::{Plugin, builtin};

pub fn store_info(h: &StoreHandle) -> StoreInfo {
    let info = h.plugin.info();
    StoreInfo {
        id: h.id.to_uuid(),
        name: h.name.clone(),
        type_name: info.name.clone(),
        kind: h.kind.clone(),
        plugin_version: info.version.clone(),
        plugin_hash: hex::encode(info.hash),
    }
}

pub fn plugin_view(p: &Plugin, builtin: bool) -> PluginView {
    let i = p.info();
    PluginView {
        name: i.name.clone(),
        version: i.version.clone(),
        hash: hex::encode(i.hash),
        size: u32::try_from(i.size).unwrap_or(u32::MAX),
        api_version: i.api_version.to_string(),
        state_version: i.state_version,
        service: i.service.full_name().to_string(),
        op_type: i.op_type.full_name().to_string(),
        builtin,
        methods: i
            .methods
            .iter()
            .map(|m| (m.name.clone(), m.is_query))
            .collect(),
        descriptor_set: Hex(i.descriptor_set.clone()),
    }
}

/// The shipped plugins, then every other plugin `stores` run (once each).
fn plugin_views(node: &Node, stores: &[StoreHandle]) -> Result<Vec<PluginView>, NodeError> {
    let mut plugins = Vec::new();
    for (name, _) in builtin::BUILTIN {
        plugins.push(plugin_view(&*node.registry().load_kind(name)?, true));
    }
    for s in stores {
        let hash = hex::encode(s.plugin.info().hash);
        if !plugins.iter().any(|p: &PluginView| p.hash == hash) {
            plugins.push(plugin_view(&s.plugin, false));
        }
    }
    Ok(plugins)
}

pub fn entry_view(e: &SignedEntry, noop: Option<String>) -> EntryView {
    EntryView {
        id: e.id.to_hex(),
        store: e.store.to_uuid(),
        author: e.author.to_hex(),
        seq: e.seq,
        hlc: e.hlc,
        deps: e.deps.len() as u32,
        payload: Hex(e.payload.clone()),
        noop,
    }
}

fn mesh_info(node: &Node, m: &crate::node::MeshRecord) -> MeshInfo {
    let current = node
        .current_mesh()
        .map(|c| c.root == m.root)
        .unwrap_or(false);
    MeshInfo {
        id: m.root.to_uuid(),
        name: m.name.clone(),
        founder: m.founder.to_hex(),
        current,
    }
}

/// Resolves an optional store argument: a name/uuid, else the default
/// store (the only one, or the one `store use` picked).
fn pick_store(node: &Node, sel: Option<&str>) -> Result<StoreHandle, NodeError> {
    match sel {
        Some(s) => node.resolve(s, None),
        None => node.default_store(),
    }
}

/// Answers one request. `daemon` says whether a daemon is serving it.
/// A request begun by [`begin`]: answered, or a command whose op is in the
/// kernel's group commit.
pub enum Begun {
    Done(Response),
    Pending(Finish),
}

/// The rest of a begun command: waits for its commit, then answers.
pub type Finish = Box<dyn FnOnce() -> Response + Send>;

/// Start serving `req`: a store command returns once its op is queued for
/// commit (the caller finishes it off its worker thread); everything else
/// is answered at once, as [`handle`] would.
pub fn begin(node: &Node, req: Request, daemon: bool) -> Begun {
    let Request::Call {
        selector,
        explicit,
        method,
        request,
    } = req
    else {
        return Begun::Done(handle(node, req, daemon));
    };
    match start_call(node, &selector, explicit.as_deref(), &method, &request.0) {
        Err(e) => Begun::Done(Response::node_error(&e)),
        Ok((h, crate::node::CallPending::Done(out))) => Begun::Done(called(&h, out)),
        Ok((h, pending)) => Begun::Pending(Box::new(move || match pending.wait() {
            Ok(out) => called(&h, out),
            Err(e) => Response::node_error(&e),
        })),
    }
}

/// Resolve the store, check it, and prepare (and for a command, submit)
/// the call.
fn start_call(
    node: &Node,
    selector: &str,
    explicit: Option<&str>,
    method: &str,
    request: &[u8],
) -> Result<(StoreHandle, crate::node::CallPending), NodeError> {
    let h = node.resolve(selector, explicit)?;
    node.check_verified(&h)?;
    let pending = node.call_async(&h, method, request)?;
    Ok((h, pending))
}

fn called(h: &StoreHandle, out: crate::node::CallOutcome) -> Response {
    Response::Called {
        store: store_info(h),
        entry: out.entry.as_ref().map(|e| entry_view(e, None)),
        reply: Hex(out.reply),
    }
}

pub fn handle(node: &Node, req: Request, daemon: bool) -> Response {
    match handle_inner(node, req, daemon) {
        Ok(r) => r,
        Err(e) => Response::node_error(&e),
    }
}

fn handle_inner(node: &Node, req: Request, daemon: bool) -> Result<Response, NodeError> {
    Ok(match req {
        Request::NodeStatus => {
            let meshes = node.meshes();
            let stores = node
                .registry()
                .stores()
                .into_iter()
                .filter(|s| !s.is_root())
                .count() as u32;
            Response::NodeStatus {
                author: node.author().to_hex(),
                data_dir: node.data_dir().path().display().to_string(),
                meshes: meshes.len() as u32,
                stores,
                daemon,
                current_mesh: node.current_mesh().ok().map(|m| m.name),
                name: node.node_name()?,
                runtime: node.runtime_stats()?,
            }
        }
        Request::NodeName { name: None } => Response::NodeName {
            name: node.node_name()?,
            meshes: vec![],
            failed: vec![],
        },
        Request::NodeName { name: Some(name) } => {
            let r = node.set_node_name(&name)?;
            Response::NodeName {
                name: r.name,
                meshes: r.meshes.into_iter().map(|m| m.name).collect(),
                failed: r
                    .failed
                    .into_iter()
                    .map(|(m, e)| (m.name, e.to_string()))
                    .collect(),
            }
        }
        Request::MeshCreate { name } => {
            let m = node.mesh_create(name.as_deref())?;
            Response::Mesh {
                mesh: mesh_info(node, &m),
            }
        }
        Request::MeshList => Response::Meshes {
            meshes: node.meshes().iter().map(|m| mesh_info(node, m)).collect(),
        },
        Request::MeshUse { mesh } => {
            let m = node.mesh_use(&mesh)?;
            Response::Mesh {
                mesh: mesh_info(node, &m),
            }
        }
        Request::MeshStatus { mesh } => {
            let s = node.mesh_status(mesh.as_deref())?;
            // A member proven to have forked any store of the mesh (the
            // root included) is marked, beside its membership status.
            let mut forked: Vec<String> = Vec::new();
            for store in std::iter::once(&s.record.root).chain(s.stores.iter().map(|h| &h.id)) {
                for f in node.kernel().fork_verdicts(store)? {
                    forked.push(f.author.to_hex());
                }
            }
            let members = s
                .members
                .into_iter()
                .map(|(pk, name, status)| {
                    let status = if forked.contains(&pk) {
                        format!("{status},forked")
                    } else {
                        status
                    };
                    (pk, name, status)
                })
                .collect();
            Response::MeshStatus {
                mesh: mesh_info(node, &s.record),
                members,
                stores: s.stores.iter().map(store_info).collect(),
            }
        }
        Request::StoreCreate { name, kind, wasm } => {
            let ty = match (&kind, &wasm) {
                (_, Some(w)) => StoreType::Wasm(&w.0),
                (Some(k), None) => StoreType::Builtin(k),
                (None, None) => return Err(NodeError::UnknownType(String::new())),
            };
            let h = node.store_create(name.as_deref(), ty)?;
            Response::Store {
                store: store_info(&h),
            }
        }
        Request::StoreList => {
            let mesh = node.current_mesh()?;
            Response::Stores {
                stores: node.stores_of(&mesh.root).iter().map(store_info).collect(),
            }
        }
        Request::StoreUse { store } => Response::Store {
            store: store_info(&node.store_use(&store)?),
        },
        Request::StoreStatus { store } => {
            let h = pick_store(node, store.as_deref())?;
            let s = node.store_status(&h)?;
            Response::StoreStatus {
                status: StoreStatusView {
                    store: store_info(&h),
                    entries: s.log.entries,
                    heads: s.log.heads.iter().map(|h| h.to_hex()).collect(),
                    log_digest: s.log.digest.to_hex(),
                    state_digest: hex::encode(s.state_digest),
                    noops: s.noops,
                    voided: s.log.voided,
                    halted: s.halted.clone(),
                    sync: sync_summary(node, &h),
                    forks: fork_views(node, &h)?,
                    state_version: h.plugin.info().state_version,
                    profile: h.pinned_profile(),
                    epoch: h.pin.as_ref().map_or(0, |p| p.epoch.number),
                },
            }
        }
        Request::StoreLog { store, from, limit } => {
            let h = pick_store(node, store.as_deref())?;
            let entries = node.store_log(&h, from, limit.min(10_000) as usize)?;
            Response::Log {
                store: store_info(&h),
                entries: entries
                    .iter()
                    .map(|(e, r)| entry_view(e, r.clone()))
                    .collect(),
            }
        }
        Request::Catalog => {
            let mesh = node.current_mesh().ok();
            let stores = match &mesh {
                Some(m) => node.stores_of(&m.root),
                None => vec![],
            };
            let plugins = plugin_views(node, &stores)?;
            let stores = stores
                .iter()
                .map(|s| {
                    let selected = node
                        .resolve(&s.type_name(), None)
                        .map(|r| r.id == s.id)
                        .unwrap_or(false);
                    CatalogStore {
                        store: store_info(s),
                        selected,
                    }
                })
                .collect();
            Response::Catalog { stores, plugins }
        }
        Request::Call {
            selector,
            explicit,
            method,
            request,
        } => {
            let (h, pending) =
                start_call(node, &selector, explicit.as_deref(), &method, &request.0)?;
            called(&h, pending.wait()?)
        }
        Request::Watch { .. } => {
            return Err(NodeError::RootSchema("watch is a streaming request".into()));
        }
        Request::PluginList => Response::Plugins {
            plugins: plugin_views(node, &node.registry().stores())?,
        },
        Request::MeshInvite { expires_secs, mesh } => {
            let (token, expires_ms) = node.invite(
                std::time::Duration::from_secs(expires_secs),
                mesh.as_deref(),
            )?;
            Response::Invite { token, expires_ms }
        }
        Request::MeshJoin { token, .. } => mesh_join(node, &token, &mut |_| {})?,
        Request::Presence { store } => {
            let h = pick_store(node, store.as_deref())?;
            let members = node
                .presence(&h)?
                .into_iter()
                .map(|m| PresenceView {
                    id: m.author.to_hex(),
                    name: m.name,
                    me: m.me,
                    online: m.online,
                    last_seen_ms: m.last_seen_ms,
                    in_sync: m.in_sync,
                })
                .collect();
            Response::Presence {
                store: store_info(&h),
                members,
            }
        }
        Request::MeshPeers => Response::Peers {
            peers: node
                .peers()?
                .into_iter()
                .map(|p| PeerView {
                    id: p.id.to_hex(),
                    addrs: p.addrs.iter().map(|a| a.to_string()).collect(),
                    connected: p.connected,
                    last_seen_ms: p.last_seen_ms,
                    syncs: p
                        .syncs
                        .iter()
                        .map(|s| {
                            let name = node
                                .registry()
                                .get(&s.store)
                                .map(|h| h.name)
                                .unwrap_or_else(|| s.store.to_uuid());
                            let r = match &s.result {
                                Ok(st) if st.diverged => DIVERGED.to_string(),
                                Ok(st) => format!("ok: sent {} received {}", st.sent, st.received),
                                Err(e) => format!("error: {e}"),
                            };
                            PeerSync {
                                store: name,
                                at_ms: s.at_ms,
                                result: r,
                            }
                        })
                        .collect(),
                })
                .collect(),
        },
        Request::MeshLeave { mesh } => Response::Left {
            mesh: node.mesh_leave(&mesh)?.name,
        },
        Request::StoreDelete { store } => Response::Deleted {
            store: node.store_delete(&store)?,
        },
        Request::StoreUpgrade { store, kind, wasm } => {
            let ty = match (&kind, &wasm) {
                (_, Some(w)) => StoreType::Wasm(&w.0),
                (Some(k), None) => StoreType::Builtin(k),
                (None, None) => return Err(NodeError::UnknownType(String::new())),
            };
            let r = node.store_upgrade(&store, ty)?;
            let h = pick_store(node, Some(&r.store))?;
            Response::Upgraded {
                store: store_info(&h),
                upgrade: UpgradeView {
                    from: r.from,
                    to: r.to,
                    from_version: r.from_version,
                    to_version: r.to_version,
                    profile: r.profile,
                    rows: r.rows,
                },
            }
        }
        Request::MeshRevoke { member, mesh } => Response::Revoked {
            member: node.revoke(&member, mesh.as_deref())?,
        },
        Request::StoreSync { store, .. } => store_sync(node, store.as_deref(), &mut |_| {})?,
        Request::StoreForks { store } => {
            let h = pick_store(node, store.as_deref())?;
            Response::Forks {
                store: store_info(&h),
                forks: fork_views(node, &h)?,
            }
        }
        Request::StoreVerify { store } => {
            let h = pick_store(node, store.as_deref())?;
            let v = node.store_verify(&h)?;
            Response::Verified {
                report: VerifyView {
                    store: store_info(&h),
                    entries_checked: v.log.entries_checked,
                    entries_recorded: v.log.recorded_count,
                    log_digest_recorded: v.log.recorded_digest.to_hex(),
                    log_digest_recomputed: v.log.recomputed_digest.to_hex(),
                    state_pairs: v.state_pairs,
                    state_digest_recorded: hex::encode(v.state_recorded),
                    state_digest_recomputed: hex::encode(v.state_recomputed),
                    problems: v.problems(),
                },
            }
        }
        Request::PluginCheck { wasm } => Response::PluginCheck {
            report: node.registry().runtime().check(&wasm.0),
        },
        Request::TokenCreate {
            store,
            read_only,
            expires_secs,
            login,
        } => {
            let (info, secret) = node.token_create(
                store.as_deref(),
                read_only,
                expires_secs.map(|s| s.saturating_mul(1000)),
                login,
            )?;
            Response::Token {
                token: token_view(&info),
                secret,
            }
        }
        Request::TokenList => Response::Tokens {
            tokens: node.token_list()?.iter().map(token_view).collect(),
        },
        Request::TokenRevoke { id } => Response::TokenRevoked {
            token: token_view(&node.token_revoke(&id)?),
        },
        Request::PluginInspect { wasm } => {
            let p = node.registry().runtime().load(&wasm.0)?;
            Response::Plugin {
                plugin: plugin_view(&p, false),
            }
        }
    })
}

pub fn token_view(t: &crate::node::TokenInfo) -> TokenView {
    TokenView {
        id: t.id.clone(),
        store: t.record.store_name.clone(),
        store_id: t.record.store.clone(),
        read_only: t.record.read_only,
        login: t.record.login,
        created_ms: t.record.created_ms,
        expires_ms: t.record.expires_ms,
    }
}

/// Streams committed entries of `store` (or of every store) to `send` until
/// it returns false; `Response::Ok` is a heartbeat, the first one sent as
/// soon as the subscription is in place.
pub fn watch(
    node: &Node,
    store: Option<&str>,
    mut send: impl FnMut(Response) -> bool,
) -> Result<(), NodeError> {
    let filter = match store {
        Some(s) => Some(node.resolve(s, None)?.id),
        None => None,
    };
    let rx = node.watch();
    // A first heartbeat once subscribed: from here on nothing committed is
    // missed, so a client may now start what it wants to watch.
    if !send(Response::Ok) {
        return Ok(());
    }
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(500)) {
            Ok(e) => {
                if filter.is_some_and(|f| f != e.store) {
                    continue;
                }
                let Some(h) = node.registry().get(&e.store) else {
                    continue;
                };
                if h.is_root() && filter.is_none() {
                    continue;
                }
                if !send(Response::Event {
                    store: store_info(&h),
                    entry: entry_view(&e, None),
                }) {
                    return Ok(());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Heartbeat so a vanished client is noticed.
                if !send(Response::Ok) {
                    return Ok(());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// A request that reports progress as it goes (`progress: true` on
/// `StoreSync` or `MeshJoin`): runs it, handing each `SyncProgress` to
/// `progress`, and returns the final answer. `None` for any other request.
pub fn with_progress(
    node: &Node,
    req: &Request,
    progress: &mut dyn FnMut(Response),
) -> Option<Response> {
    let r = match req {
        Request::StoreSync {
            store,
            progress: true,
        } => store_sync(node, store.as_deref(), progress),
        Request::MeshJoin {
            token,
            progress: true,
        } => mesh_join(node, token, progress),
        _ => return None,
    };
    Some(r.unwrap_or_else(|e| Response::node_error(&e)))
}

/// `mesh join`, with a `SyncProgress` per session of its catch-up.
pub fn mesh_join(
    node: &Node,
    token: &str,
    progress: &mut dyn FnMut(Response),
) -> Result<Response, NodeError> {
    let m = node.join_with(token, &mut |done, total, r| {
        progress(Response::SyncProgress {
            done,
            total,
            sync: sync_view(node, r),
        })
    })?;
    Ok(Response::Mesh {
        mesh: mesh_info(node, &m),
    })
}

/// One sync session as the API shows it.
fn sync_view(node: &Node, (p, s, r): &crate::node::network::SyncResult) -> SyncView {
    SyncView {
        peer: p.to_hex(),
        store: node
            .registry()
            .get(s)
            .map(|h| h.name)
            .unwrap_or_else(|| s.to_uuid()),
        ok: r.as_ref().is_ok_and(|st| !st.diverged),
        detail: match r {
            Ok(st) if st.diverged => DIVERGED.to_string(),
            Ok(st) => format!(
                "sent {} received {} in {} round trips, {} bytes",
                st.sent, st.received, st.round_trips, st.bytes
            ),
            Err(e) => e.clone(),
        },
    }
}

/// `store sync`: every (peer, store) session, with a `SyncProgress`
/// response to `progress` after each; returns the final `Synced`.
pub fn store_sync(
    node: &Node,
    store: Option<&str>,
    progress: &mut dyn FnMut(Response),
) -> Result<Response, NodeError> {
    let only = match store {
        Some(s) => Some(node.resolve(s, None)?.id),
        None => None,
    };
    let results = node.sync_now(only, &mut |done, total, r| {
        progress(Response::SyncProgress {
            done,
            total,
            sync: sync_view(node, r),
        })
    })?;
    Ok(Response::Synced {
        results: results.iter().map(|r| sync_view(node, r)).collect(),
    })
}

/// A sync whose peer held our log but computed another state.
const DIVERGED: &str =
    "DIVERGED: the peer holds the same log as this node but computed a different state";

/// Per forked author, the lowest proven fork seq (the verdict every member
/// with the proof reaches) and the entries of that proof.
fn fork_views(node: &Node, h: &StoreHandle) -> Result<Vec<ForkView>, NodeError> {
    Ok(node
        .kernel()
        .fork_verdicts(&h.id)?
        .into_iter()
        .map(|f| ForkView {
            author: f.author.to_hex(),
            seq: f.seq,
            entries: f.entries.iter().map(|e| e.id.to_hex()).collect(),
        })
        .collect())
}

/// "in sync with N of M members" for a store, from the network's last
/// syncs. Both counts are over the same set, the store's mesh's active
/// members other than this node, so N never exceeds M (a revoked peer's last
/// good sync is history, not replication).
fn sync_summary(node: &Node, h: &StoreHandle) -> Option<String> {
    let peers = node.peers().ok()?;
    let me = node.author().to_hex();
    let members: Vec<String> = node
        .members(&h.mesh)
        .ok()?
        .into_iter()
        .filter(|(pk, _, st)| st == "active" && *pk != me)
        .map(|(pk, _, _)| pk)
        .collect();
    let (mut ok, mut split) = (0, 0);
    let mut last = 0u64;
    for p in peers.iter().filter(|p| members.contains(&p.id.to_hex())) {
        if let Some(s) = p.syncs.iter().find(|s| s.store == h.id) {
            match &s.result {
                Ok(st) if st.diverged => split += 1,
                Ok(_) => ok += 1,
                Err(_) => {}
            }
            last = last.max(s.at_ms);
        }
    }
    let m = members.len();
    if m == 0 {
        return Some("no other members".to_string());
    }
    let ago = if last == 0 {
        "never synced".to_string()
    } else {
        format!(
            "last sync {} s ago",
            lattice_kernel::now_ms().saturating_sub(last) / 1000
        )
    };
    let summary = format!(
        "in sync with {ok} of {m} member{} ({ago})",
        if m == 1 { "" } else { "s" }
    );
    Some(if split > 0 {
        format!("DIVERGED from {split} member(s): same log, different state; {summary}")
    } else {
        summary
    })
}
