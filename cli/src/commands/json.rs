//! `--json` for the static commands: JSON lines on stdout, one object per
//! result (a list prints one line per item, so `jq` and `while read` see
//! records, not one big array). Field names are the API's; 64-bit integers
//! are strings (see `lattice_host::api::json64`). docs/cli.md is the contract.

use anyhow::Result;
use lattice_host::api::Response;
use serde_json::{Value, json};

use super::human::{sync_verdict, verify_verdict};
use super::store_schema;
use crate::app::{Cmd, StoreCmd};
use crate::backend::Backend;

/// The lines `resp` prints under `--json`.
fn lines(resp: &Response) -> Vec<Value> {
    let one = |v: Value| vec![v];
    let each = |items: Vec<Value>| items;
    match resp {
        Response::Ok => one(json!({ "ok": true })),
        Response::NodeStatus {
            author,
            data_dir,
            meshes,
            stores,
            daemon,
            current_mesh,
            name,
            runtime,
        } => one(json!({
            "node": author,
            "name": name,
            "data_dir": data_dir,
            "daemon": daemon,
            "meshes": meshes,
            "stores": stores,
            "current_mesh": current_mesh,
            "runtime": val(runtime),
        })),
        Response::NodeName {
            name,
            meshes,
            failed,
        } => one(json!({
            "name": name,
            "meshes": meshes,
            "failed": failed
                .iter()
                .map(|(mesh, error)| json!({ "mesh": mesh, "error": error }))
                .collect::<Vec<_>>(),
        })),
        Response::Mesh { mesh } => one(val(mesh)),
        Response::Meshes { meshes } => each(meshes.iter().map(val).collect()),
        Response::MeshStatus {
            mesh,
            members,
            stores,
        } => one(json!({
            "mesh": val(mesh),
            "members": members
                .iter()
                .map(|(id, name, status)| json!({ "id": id, "name": name, "status": status }))
                .collect::<Vec<_>>(),
            "stores": stores.iter().map(val).collect::<Vec<_>>(),
        })),
        Response::Store { store } => one(val(store)),
        Response::Stores { stores } => each(stores.iter().map(val).collect()),
        Response::StoreStatus { status } => one(val(status)),
        Response::Plugins { plugins } => each(plugins.iter().map(|p| plugin(val(p))).collect()),
        Response::Plugin { plugin: p } => one(plugin(val(p))),
        Response::PluginCheck { report } => one(val(report)),
        Response::Invite { token, expires_ms } => one(json!({
            "token": token,
            "expires_ms": expires_ms.to_string(),
            "expires": crate::chat::time::rfc3339_utc(*expires_ms),
        })),
        Response::Peers { peers } => each(peers.iter().map(val).collect()),
        Response::Presence { store, members } => one(json!({
            "store": val(store),
            "members": members.iter().map(val).collect::<Vec<_>>(),
        })),
        Response::Revoked { member } => one(json!({ "revoked": member })),
        Response::Deleted { store } => one(json!({ "deleted": store })),
        Response::Upgraded { store, upgrade } => one(json!({ "store": store, "upgrade": upgrade })),
        Response::Left { mesh } => one(json!({ "left": mesh })),
        Response::Synced { results } => each(results.iter().map(val).collect()),
        Response::Verified { report } => one(val(report)),
        Response::Forks { store, forks } => each(
            forks
                .iter()
                .map(|f| {
                    let mut v = val(f);
                    v["store"] = json!(store.name);
                    v
                })
                .collect(),
        ),
        other => one(serde_json::to_value(other).unwrap_or(Value::Null)),
    }
}

/// One log entry, its op decoded by the store's plugin (`null` when the
/// plugin is not here or the op does not decode): the line `store log` and
/// `watch` print.
pub fn entry(
    store: &str,
    e: &lattice_host::api::EntryView,
    schema: Option<&crate::plugin_cmd::Schema>,
) -> Value {
    let op = schema
        .and_then(|s| serde_json::from_str(&s.render_op(&e.payload.0, true)).ok())
        .unwrap_or(Value::Null);
    json!({
        "store": store,
        "seq": e.seq.to_string(),
        "id": e.id,
        "author": e.author,
        "hlc": e.hlc.to_string(),
        "op": op,
        "noop": e.noop,
    })
}

/// A plugin without its descriptor bytes: they are for building commands
/// (`Catalog`), 45 KB of hex that no reader of `plugin list` wants.
fn plugin(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("descriptor_set");
    }
    v
}

fn val<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

/// `--json` output of a static command (docs/cli.md): the response as
/// JSON lines; a store's log with each op decoded; a failed sync or verify
/// still exits 1 after its lines.
pub fn print(b: &mut Backend, cmd: &Cmd, resp: &Response) -> Result<()> {
    match (cmd, resp) {
        (Cmd::Store(StoreCmd::Log { .. }), Response::Log { store, entries }) => {
            let schema = store_schema(b, &store.plugin_hash)?;
            for e in entries {
                outln!("{}", entry(&store.name, e, schema.as_ref()));
            }
        }
        (Cmd::Store(StoreCmd::Digest { .. }), Response::StoreStatus { status }) => outln!(
            "{}",
            serde_json::json!({
                "store": status.store.name,
                "log_digest": status.log_digest,
                "state_digest": status.state_digest,
            })
        ),
        _ => {
            for line in lines(resp) {
                outln!("{line}");
            }
        }
    }
    match resp {
        Response::Verified { report } => verify_verdict(report),
        Response::Synced { results } => sync_verdict(results),
        _ => Ok(()),
    }
}
