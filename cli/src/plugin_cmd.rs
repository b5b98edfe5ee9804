//! Plugin commands: `lattice TYPE-OR-STORE METHOD --field value`. The
//! command tree for the named store's plugin is built from its descriptor,
//! the request is encoded with prost-reflect, and the reply is decoded and
//! printed the same way.

use anyhow::{Context as _, Result, anyhow, bail};
use lattice_cli::dynamic;
use lattice_host::api::{CatalogStore, Hex, PluginView, Request, Response};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ServiceDescriptor};

use crate::app::Global;
use crate::backend::Backend;

/// Flags every plugin command accepts besides its request fields.
pub struct Catalog {
    pub stores: Vec<CatalogStore>,
    pub plugins: Vec<PluginView>,
}

impl Catalog {
    pub fn fetch(b: &mut Backend) -> Result<Catalog> {
        match b.call(Request::Catalog)? {
            Response::Catalog { stores, plugins } => Ok(Catalog { stores, plugins }),
            other => bail!("unexpected reply to catalog: {other:?}"),
        }
    }

    pub fn plugin_by_hash(&self, hash: &str) -> Option<&PluginView> {
        self.plugins.iter().find(|p| p.hash == hash)
    }

    /// The plugin a selector (store name, uuid, or type name) runs.
    pub fn plugin_for(&self, selector: &str) -> Option<&PluginView> {
        if let Some(s) = self
            .stores
            .iter()
            .find(|s| s.store.name == selector || s.store.id == selector)
        {
            return self.plugin_by_hash(&s.store.plugin_hash);
        }
        let selected = self
            .stores
            .iter()
            .find(|s| s.store.type_name == selector && s.selected);
        if let Some(s) = selected {
            return self.plugin_by_hash(&s.store.plugin_hash);
        }
        self.plugins.iter().find(|p| p.name == selector)
    }

    /// Every name a plugin command can start with, with a one-line about.
    pub fn commands(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for p in &self.plugins {
            let n = self
                .stores
                .iter()
                .filter(|s| s.store.plugin_hash == p.hash)
                .count();
            if !p.builtin && n == 0 {
                continue;
            }
            out.push((
                p.name.clone(),
                format!(
                    "{} plugin v{} ({n} store{})",
                    p.name,
                    p.version,
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
        for s in &self.stores {
            if out.iter().all(|(n, _)| *n != s.store.name) {
                out.push((
                    s.store.name.clone(),
                    format!("store `{}` ({})", s.store.name, s.store.type_name),
                ));
            }
        }
        out
    }
}

pub struct Schema {
    pub service: ServiceDescriptor,
    pub op_type: MessageDescriptor,
}

impl Schema {
    pub fn of(p: &PluginView) -> Result<Schema> {
        let pool = lattice_host::runtime::decode_descriptor_set(&p.descriptor_set.0)
            .map_err(|e| anyhow!("plugin descriptor set: {e}"))?;
        let service = pool
            .get_service_by_name(&p.service)
            .ok_or_else(|| anyhow!("descriptor lacks {}", p.service))?;
        let op_type = pool
            .get_message_by_name(&p.op_type)
            .ok_or_else(|| anyhow!("descriptor lacks {}", p.op_type))?;
        Ok(Schema { service, op_type })
    }

    /// One op payload as a line of text (or JSON).
    pub fn render_op(&self, payload: &[u8], json: bool) -> String {
        match DynamicMessage::decode(self.op_type.clone(), payload) {
            Ok(m) if json => dynamic::render_json(&m),
            Ok(m) => dynamic::render_op(&m),
            Err(_) => format!("<undecodable op, {} bytes>", payload.len()),
        }
    }
}

/// Runs `args` = [selector, method, flags...].
pub fn run(b: &mut Backend, args: Vec<String>, global: &Global) -> Result<std::process::ExitCode> {
    let selector = args.first().cloned().unwrap_or_default();
    let catalog = Catalog::fetch(b)?;
    let Some(plugin) = catalog.plugin_for(&selector) else {
        let valid: Vec<String> = catalog.commands().into_iter().map(|(n, _)| n).collect();
        usage!(
            "unknown command `{selector}`; commands: node, mesh, store, plugin, token, config, watch, daemon, demo, bench, completions, man{}{}",
            if valid.is_empty() {
                ""
            } else {
                "; plugin commands: "
            },
            valid.join(", ")
        );
    };
    let schema = Schema::of(plugin)?;
    let cmd = standalone(&selector, &schema);
    let matches = match cmd.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return crate::commands::clap_error(e, Some(&cmd), &args[1..], global.json),
    };
    let (cli_name, sub) = matches.subcommand().expect("subcommand_required");
    let method = dynamic::method_by_cli_name(&schema.service, cli_name)
        .ok_or_else(|| anyhow!("unknown method {cli_name}"))?;
    // A flag value that does not parse is a usage error, like clap's own.
    let mut request =
        dynamic::parse_request(&method, sub).map_err(|e| crate::fail::usage(format!("{e:#}")))?;
    let json = global.json || matches.get_flag("json");
    let explicit = matches.get_one::<String>("store").cloned();
    resolve_id_prefixes(b, explicit.as_deref().unwrap_or(&selector), &mut request)?;
    let resp = b.call(Request::Call {
        selector: selector.clone(),
        explicit,
        method: method.name().to_string(),
        request: Hex(request.encode_to_vec()),
    })?;
    let Response::Called {
        store,
        entry,
        reply,
    } = resp
    else {
        bail!("unexpected reply to a call")
    };
    let msg = DynamicMessage::decode(method.output(), reply.0.as_slice())
        .context("decoding the reply")?;
    if let Some(e) = entry {
        // A command's reply (lattice:plugin@0.2.0) comes after the entry id;
        // an all-defaults reply (every 0.1.0 plugin's) prints nothing more.
        if json {
            let reply: serde_json::Value =
                serde_json::from_str(&dynamic::render_json(&msg)).unwrap_or_default();
            outln!(
                "{}",
                serde_json::json!({ "store": store.name, "entry": e.id, "seq": e.seq.to_string(), "hlc": e.hlc.to_string(), "reply": reply })
            );
        } else {
            outln!("hex:{}", e.id);
            if !reply.0.is_empty() {
                let text = dynamic::render_text_with(&msg, &readable(b));
                outln!("{}", text.trim_end());
            }
            eprintln!(
                "committed to `{}` as entry {} (seq {})",
                store.name,
                &e.id[..16],
                e.seq
            );
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    // A room's members: the plugin knows who wrote; presence (gossip, not
    // the log) knows who is online now and who holds our log.
    let presence = (plugin.name == "chat" && method.name() == "Members")
        .then(|| presence(b, &store.name))
        .flatten();
    let text = if json {
        match &presence {
            Some(p) => {
                let mut v: serde_json::Value =
                    serde_json::from_str(&dynamic::render_json(&msg)).unwrap_or_default();
                v["presence"] = serde_json::to_value(p).unwrap_or_default();
                v.to_string()
            }
            None => dynamic::render_json(&msg),
        }
    } else {
        let mut t = dynamic::render_text_with(&msg, &readable(b));
        if let Some(p) = &presence {
            t.push_str(&presence_text(p));
        }
        t
    };
    if !text.is_empty() {
        outln!("{}", text.trim_end());
    } else if !json {
        eprintln!("(empty)");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The command tree of `lattice SELECTOR …` as a subcommand of `lattice`
/// (see [`dynamic::plugin_command`]).
pub fn command(selector: &str, schema: &Schema) -> clap::Command {
    dynamic::plugin_command(selector, &schema.service)
}

/// [`command`] parsed on its own, so it also takes the global flags.
fn standalone(selector: &str, schema: &Schema) -> clap::Command {
    dynamic::standalone_command(selector, &schema.service)
}

/// Member names and local times for the text output.
pub fn readable(b: &mut Backend) -> dynamic::Readable {
    let mut names = std::collections::HashMap::new();
    if let Ok(Response::MeshStatus { members, .. }) = b.call(Request::MeshStatus { mesh: None }) {
        for (id, name, _status) in members {
            if let Ok(key) = hex::decode(&id) {
                names.insert(key, name);
            }
        }
    }
    dynamic::Readable {
        names,
        time: Some(crate::chat::time::stamp),
    }
}

/// Replaces short hex prefixes (`ab12`, `hex:ab12`) in fields that name
/// entries (`id`, `to`, `*_id`, …) by the one entry id of the store that
/// starts with them, as git does with commits; none or several is an error
/// naming the prefix.
fn resolve_id_prefixes(b: &mut Backend, store: &str, request: &mut DynamicMessage) -> Result<()> {
    use prost_reflect::{ReflectMessage, Value};
    let fields: Vec<_> = request
        .descriptor()
        .fields()
        .filter(|f| dynamic::is_entry_ref(f) && request.has_field(f))
        .collect();
    let mut ids: Option<Vec<String>> = None;
    for field in fields {
        let value = request.get_field(&field).into_owned();
        let resolve_one =
            |v: &Value, ids: &mut Option<Vec<String>>, b: &mut Backend| -> Result<Value> {
                let Some(prefix) = v
                    .as_bytes()
                    .and_then(|raw| std::str::from_utf8(raw).ok())
                    .and_then(dynamic::id_prefix)
                else {
                    return Ok(v.clone());
                };
                if ids.is_none() {
                    *ids = Some(entry_ids(b, store)?);
                }
                let all = ids.as_deref().unwrap_or_default();
                let hits: Vec<&String> = all.iter().filter(|id| id.starts_with(&prefix)).collect();
                match hits.as_slice() {
                    [one] => Ok(Value::Bytes(hex::decode(one)?.into())),
                    [] => bail!(
                        "--{}: no entry of `{store}` has an id starting with {prefix}",
                        dynamic::kebab_case(field.name())
                    ),
                    many => bail!(
                        "--{}: {prefix} is ambiguous in `{store}`: {}",
                        dynamic::kebab_case(field.name()),
                        many.iter()
                            .take(5)
                            .map(|id| &id[..16])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            };
        let new = match &value {
            Value::List(items) => Value::List(
                items
                    .iter()
                    .map(|v| resolve_one(v, &mut ids, b))
                    .collect::<Result<_>>()?,
            ),
            one => resolve_one(one, &mut ids, b)?,
        };
        request.set_field(&field, new);
    }
    Ok(())
}

/// Every entry id of `store`, hex, paging through its log.
fn entry_ids(b: &mut Backend, store: &str) -> Result<Vec<String>> {
    const PAGE: u32 = 10_000;
    let mut out = Vec::new();
    loop {
        let resp = b.call(Request::StoreLog {
            store: Some(store.to_string()),
            from: out.len() as u64,
            limit: PAGE,
        })?;
        let Response::Log { entries, .. } = resp else {
            bail!("cannot read the log of `{store}` to resolve an id prefix");
        };
        let n = entries.len();
        out.extend(entries.into_iter().map(|e| e.id));
        if n < PAGE as usize {
            return Ok(out);
        }
    }
}

fn presence(b: &mut Backend, store: &str) -> Option<Vec<lattice_host::api::PresenceView>> {
    match b.call(Request::Presence {
        store: Some(store.to_string()),
    }) {
        Ok(Response::Presence { members, .. }) => Some(members),
        _ => None,
    }
}

/// `in sync with N of M members`, then a line per member.
fn presence_text(members: &[lattice_host::api::PresenceView]) -> String {
    let others: Vec<_> = members.iter().filter(|m| !m.me).collect();
    let synced = others.iter().filter(|m| m.in_sync == Some(true)).count();
    let mut out = format!(
        "\n\npresence: in sync with {synced} of {} members\n",
        others.len()
    );
    for m in members {
        let name = dynamic::terminal_safe(&m.name);
        let short = m.id.get(..8).unwrap_or(&m.id);
        let state = match (m.me, m.online, m.last_seen_ms) {
            (true, _, _) => "this node".to_string(),
            (false, true, _) => "online".to_string(),
            (false, false, Some(ms)) => format!(
                "offline, last seen {}",
                crate::chat::time::stamp(ms << lattice_kernel::COUNTER_BITS)
            ),
            (false, false, None) => "not seen since the daemon started".to_string(),
        };
        let sync = match (m.me, m.in_sync) {
            (true, _) => "",
            (false, Some(true)) => ", in sync",
            (false, Some(false)) => ", not in sync",
            (false, None) => "",
        };
        out.push_str(&format!("  {name} ({short}): {state}{sync}\n"));
    }
    out.trim_end().to_string()
}
