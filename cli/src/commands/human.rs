//! A static command's reply as a person reads it: results on stdout, one
//! per line where a script might `cut` them, hints and sentences on stderr.
//! Names from the mesh are escaped for the terminal (`safe`).

use anyhow::{Result, bail};
use lattice_cli::dynamic::terminal_safe as safe;
use lattice_host::api::Response;

use super::store_schema;
use crate::app::{Cmd, MeshCmd, NodeCmd, StoreCmd};
use crate::backend::Backend;

/// A static command's reply for a person: results on stdout, hints on stderr.
pub fn print(b: &mut Backend, cmd: &Cmd, resp: Response) -> Result<()> {
    match (cmd, resp) {
        (
            _,
            Response::NodeStatus {
                author,
                data_dir,
                meshes,
                stores,
                daemon,
                current_mesh,
                name,
                runtime: rt,
            },
        ) => {
            outln!("node       {author}");
            outln!("name       {}", safe(&name));
            outln!("data dir   {data_dir}");
            outln!(
                "daemon     {}",
                if daemon {
                    "running"
                } else {
                    "not running (this command opened the data dir itself)"
                }
            );
            outln!(
                "meshes     {meshes}{}",
                current_mesh
                    .map(|m| format!(" (current: {m})"))
                    .unwrap_or_default()
            );
            outln!("stores     {stores}");
            if rt.online {
                outln!(
                    "network    {} connections ({} tracked, {} cached), {} incoming served",
                    rt.net.connections,
                    rt.net.tracked_connections,
                    rt.net.cached_connections,
                    rt.net.incoming
                );
                outln!(
                    "sessions   {} streams in, {} sessions out, {} syncs pending",
                    rt.net.streams_in,
                    rt.net.sessions_out,
                    rt.net.pending_syncs
                );
                outln!(
                    "gossip     {} topics in {} overlays, {} neighbours, {} known peers",
                    rt.net.gossip_topics,
                    rt.net.gossip_overlays,
                    rt.net.gossip_neighbors,
                    rt.net.known_peers
                );
                outln!("tasks      {}", rt.net.tasks);
            }
            outln!("orphans    {}", rt.orphans);
            outln!(
                "plugins    {} loaded, {}/{} instance slots in use",
                rt.plugins_loaded,
                rt.plugin_slots_used,
                rt.plugin_slots
            );
        }
        (
            Cmd::Node(NodeCmd::Name { name: set }),
            Response::NodeName {
                name,
                meshes,
                failed,
            },
        ) => {
            outln!("{}", safe(&name));
            for (mesh, why) in &failed {
                eprintln!("not renamed in mesh `{}`: {}", safe(mesh), safe(why));
            }
            if set.is_some() {
                let n = meshes.len();
                eprintln!(
                    "named this node `{}` in {n} mesh{}",
                    safe(&name),
                    if n == 1 { "" } else { "es" }
                );
            }
        }
        (Cmd::Mesh(MeshCmd::Create { .. }), Response::Mesh { mesh }) => {
            outln!("{}", mesh.id);
            eprintln!(
                "created mesh `{}`; next: `lattice store create --type chat --name general`",
                mesh.name
            );
        }
        (Cmd::Mesh(MeshCmd::Join { .. }), Response::Mesh { mesh }) => {
            outln!("{}", mesh.id);
            eprintln!(
                "joined mesh `{}`; `lattice store list` shows its stores",
                mesh.name
            );
        }
        (_, Response::Mesh { mesh }) => outln!("{} {}", mesh.id, safe(&mesh.name)),
        (_, Response::Invite { token, expires_ms }) => {
            outln!("{token}");
            let mins = expires_ms.saturating_sub(lattice_kernel::now_ms()) / 60_000;
            eprintln!(
                "one-time invite, valid for {mins} min: on the other node run `lattice mesh join TOKEN`"
            );
        }
        (_, Response::Peers { peers }) => {
            if peers.is_empty() {
                eprintln!("no known peers");
            }
            let who = crate::plugin_cmd::readable(b);
            for p in peers {
                let seen = p
                    .last_seen_ms
                    .map(|t| {
                        format!(
                            "{} s ago",
                            lattice_kernel::now_ms().saturating_sub(t) / 1000
                        )
                    })
                    .unwrap_or_else(|| "never".into());
                outln!(
                    "{:<28} {:<12} last seen {seen:<10} {}",
                    who.author_hex(&p.id),
                    if p.connected {
                        "connected"
                    } else {
                        "disconnected"
                    },
                    p.addrs.join(",")
                );
                for sync in p.syncs {
                    outln!("    {:<16} {}", sync.store, sync.result);
                }
            }
        }
        (_, Response::Left { mesh }) => {
            eprintln!("left mesh {mesh}: its stores no longer run here");
        }
        (_, Response::Upgraded { store, upgrade: u }) => {
            outln!(
                "upgraded store {}: plugin {} -> {} ({} v{}), state version {} -> {}, {} rows migrated, profile v{}",
                safe(&store.name),
                &u.from[..16],
                &u.to[..16],
                store.type_name,
                store.plugin_version,
                u.from_version,
                u.to_version,
                u.rows,
                u.profile
            );
        }
        (_, Response::Deleted { store }) => {
            eprintln!("deleted store {store}: every member closes it and refuses its new entries");
        }
        (_, Response::Revoked { member }) => {
            outln!("{member}");
            eprintln!(
                "revoked {}: every member refuses its new entries once this reaches them; what it wrote before stays",
                crate::plugin_cmd::readable(b).author_hex(&member)
            );
        }
        (_, Response::Synced { results }) => {
            if results.is_empty() {
                eprintln!("no reachable members to sync with");
            }
            let who = crate::plugin_cmd::readable(b);
            for r in &results {
                outln!(
                    "{:<16} {:<28} {} {}",
                    r.store,
                    who.author_hex(&r.peer),
                    if r.ok { "ok   " } else { "error" },
                    r.detail
                );
            }
            sync_verdict(&results)?;
        }
        (_, Response::Meshes { meshes }) => {
            if meshes.is_empty() {
                eprintln!("no meshes yet: `lattice mesh create`");
            }
            for m in meshes {
                outln!(
                    "{} {:<36} {}",
                    if m.current { "*" } else { " " },
                    m.id,
                    safe(&m.name)
                );
            }
        }
        (
            _,
            Response::MeshStatus {
                mesh,
                members,
                stores,
            },
        ) => {
            outln!("mesh     {} ({})", safe(&mesh.name), mesh.id);
            outln!("founder  {}", mesh.founder);
            outln!("members  {}", members.len());
            for (pk, name, status) in members {
                outln!("  {pk} {status:<8} {}", safe(&name));
            }
            outln!("stores   {}", stores.len());
            for s in stores {
                outln!("  {:<20} {:<8} {}", safe(&s.name), safe(&s.type_name), s.id);
            }
        }
        (Cmd::Store(StoreCmd::Create { .. }), Response::Store { store }) => {
            outln!("{}", store.id);
            eprintln!(
                "created {} store `{}`; try `lattice {} --help`",
                store.type_name, store.name, store.name
            );
        }
        (_, Response::Store { store }) => {
            outln!(
                "{} {} ({})",
                store.id,
                safe(&store.name),
                safe(&store.type_name)
            )
        }
        (_, Response::Stores { stores }) => {
            if stores.is_empty() {
                eprintln!("no stores yet: `lattice store create --type chat --name general`");
            }
            for s in stores {
                outln!(
                    "{:<20} {:<8} {} v{}",
                    s.name,
                    s.type_name,
                    s.id,
                    s.plugin_version
                );
            }
        }
        (Cmd::Store(StoreCmd::Digest { .. }), Response::StoreStatus { status }) => {
            outln!("log    {}", status.log_digest);
            outln!("state  {}", status.state_digest);
        }
        (_, Response::StoreStatus { status: s }) => {
            outln!("store         {} ({})", safe(&s.store.name), s.store.id);
            outln!(
                "plugin        {} v{} {}",
                s.store.type_name,
                s.store.plugin_version,
                s.store.plugin_hash
            );
            outln!(
                "state         version {}, profile v{}, {}",
                s.state_version,
                s.profile,
                match s.epoch {
                    0 => "never upgraded".to_string(),
                    n => format!("{n} upgrade(s) applied"),
                }
            );
            outln!("entries       {}", s.entries);
            outln!(
                "heads         {}",
                s.heads
                    .iter()
                    .map(|h| &h[..16])
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            outln!("log digest    {}", s.log_digest);
            outln!("state digest  {}", s.state_digest);
            if let Some(sync) = &s.sync {
                outln!("replication   {sync}");
            }
            if s.noops > 0 {
                outln!(
                    "no-op ops     {} (the plugin could not apply them; see `store log`)",
                    s.noops
                );
            }
            if s.voided > 0 {
                outln!(
                    "void entries  {} (a revoked member's, past its cut-off: kept, never applied)",
                    s.voided
                );
            }
            if !s.forks.is_empty() {
                let who = crate::plugin_cmd::readable(b);
                for f in &s.forks {
                    outln!(
                        "FORKED        {} signed two entries at seq {}: its entries from there on are void (`lattice store forks`)",
                        who.author_hex(&f.author),
                        f.seq
                    );
                }
            }
            if let Some(h) = &s.halted {
                outln!("HALTED        {h}");
            }
        }
        (_, Response::Log { store, entries }) => {
            let schema = store_schema(b, &store.plugin_hash)?;
            let who = crate::plugin_cmd::readable(b);
            for e in entries {
                let op = schema
                    .as_ref()
                    .map(|s| s.render_op(&e.payload.0, false))
                    .unwrap_or_default();
                let noop = e
                    .noop
                    .map(|r| format!("  [no-op: {r}]"))
                    .unwrap_or_default();
                outln!(
                    "{:>5} {} {} {}{noop}",
                    e.seq,
                    &e.id[..12],
                    who.author_hex(&e.author),
                    op.replace('\n', " ")
                );
            }
        }
        (_, Response::Plugins { plugins }) => {
            for p in plugins {
                let methods: Vec<String> = p
                    .methods
                    .iter()
                    .map(|(m, q)| if *q { format!("{m}?") } else { m.clone() })
                    .collect();
                outln!(
                    "{:<10} v{:<8} {} {:>7} B {}  {}",
                    p.name,
                    p.version,
                    &p.hash[..16],
                    p.size,
                    if p.builtin { "shipped " } else { "external" },
                    methods.join(" ")
                );
            }
        }
        (_, Response::Plugin { plugin: p }) => super::plugin_show::inspect(&p),
        (_, Response::PluginCheck { report }) => super::plugin_show::check(&report),
        (_, Response::Verified { report: r }) => {
            outln!("store         {} ({})", safe(&r.store.name), r.store.id);
            outln!(
                "entries       {} checked (hash against id, record header, signature); {} recorded",
                r.entries_checked,
                r.entries_recorded
            );
            let same = |a: &str, b: &str| {
                if a == b {
                    format!("{a} ok")
                } else {
                    format!("{a} recorded, {b} recomputed: MISMATCH")
                }
            };
            outln!(
                "log digest    {}",
                same(&r.log_digest_recorded, &r.log_digest_recomputed)
            );
            outln!("state         {} pairs hashed", r.state_pairs);
            outln!(
                "state digest  {}",
                same(&r.state_digest_recorded, &r.state_digest_recomputed)
            );
            for p in &r.problems {
                outln!("problem       {p}");
            }
            verify_verdict(&r)?;
        }
        (_, Response::Forks { store, forks }) => {
            if forks.is_empty() {
                eprintln!("no forks in `{}`", safe(&store.name));
            }
            let who = crate::plugin_cmd::readable(b);
            for f in forks {
                outln!(
                    "{}  seq {}  proof: {}",
                    who.author_hex(&f.author),
                    f.seq,
                    f.entries
                        .iter()
                        .map(|id| &id[..16])
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        (_, other) => bail!("unexpected reply: {other:?}"),
    }
    Ok(())
}

/// `store verify` fails (one stderr line, exit 1) when anything differs.
pub(super) fn verify_verdict(r: &lattice_host::api::VerifyView) -> Result<()> {
    if r.problems.is_empty() {
        return Ok(());
    }
    Err(crate::fail::Failure::new(
        crate::fail::ErrorKind::Integrity,
        format!(
            "store `{}` failed verification: {} problem{} (listed above); its data is not served until a verify passes",
            r.store.name,
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        ),
    ))
}

pub(super) fn sync_verdict(results: &[lattice_host::api::SyncView]) -> Result<()> {
    let failed = results.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        bail!("{failed} of {} syncs failed", results.len());
    }
    Ok(())
}
