//! Static commands and the glue around them (help, errors, daemon, watch,
//! demo, bench).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::CommandFactory;
use lattice_host::api::client::Client;
use lattice_host::api::server::Server;
use lattice_host::api::{Hex, Request, Response, service};
use lattice_host::node::network::NetOptions;
use lattice_host::node::{Node, resolve_data_dir};

use lattice_cli::dynamic::terminal_safe as safe;

use crate::app::{Cli, Cmd, Global, IrcArgs, MeshCmd, NodeCmd, PluginCmd, StoreCmd};
use crate::backend::Backend;
use crate::plugin_cmd::{self, Catalog, Schema};

/// Global flags are needed before clap runs (to find the data dir and set
/// up logging), and plugin commands accept them anywhere on the line.
pub fn prescan_globals(args: &[String]) -> Global {
    let mut g = Global::default();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--data-dir" {
            g.data_dir = it.next().map(PathBuf::from);
        } else if let Some(v) = a.strip_prefix("--data-dir=") {
            g.data_dir = Some(PathBuf::from(v));
        } else if a == "--json" {
            g.json = true;
        } else if a == "--verbose" {
            g.verbose += 1;
        } else if a.starts_with('-') && !a.starts_with("--") && a[1..].chars().all(|c| c == 'v') {
            g.verbose += (a.len() - 1) as u8;
        }
    }
    g
}

/// Prints a clap error as one line (help and version print in full).
pub fn clap_error(
    e: clap::Error,
    cmd: Option<&clap::Command>,
    rest: &[String],
) -> Result<ExitCode> {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return Ok(
                if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                },
            );
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let mut msg = lines
        .next()
        .unwrap_or("error: invalid command line")
        .trim()
        .to_string();
    if let Some(tip) = rendered
        .lines()
        .find(|l| l.trim_start().starts_with("tip:"))
    {
        msg.push_str(&format!(" ({})", tip.trim()));
    }
    if let Some(cmd) = cmd {
        match e.kind() {
            ErrorKind::InvalidSubcommand | ErrorKind::MissingSubcommand => {
                let names: Vec<&str> = cmd
                    .get_subcommands()
                    .map(|s| s.get_name())
                    .filter(|n| *n != "help")
                    .collect();
                msg.push_str(&format!("; valid methods: {}", names.join(", ")));
            }
            ErrorKind::UnknownArgument => {
                if let Some(sub) = rest.first().and_then(|m| cmd.find_subcommand(m)) {
                    let flags: Vec<String> = sub
                        .get_arguments()
                        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                        .filter(|l| {
                            !["--help", "--store", "--json", "--data-dir", "--verbose"]
                                .contains(&l.as_str())
                        })
                        .collect();
                    msg.push_str(&format!(
                        "; valid flags: {}",
                        if flags.is_empty() {
                            "(none)".into()
                        } else {
                            flags.join(" ")
                        }
                    ));
                }
            }
            _ => {}
        }
    }
    eprintln!("{msg}");
    Ok(ExitCode::from(1))
}

/// Words on the command line that are not flags (nor `--data-dir`'s value).
fn positional_words(args: &[String]) -> usize {
    let mut n = 0;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--data-dir" {
            it.next();
        } else if !a.starts_with('-') {
            n += 1;
        }
    }
    n
}

/// Top-level clap errors; top-level help also lists plugin commands.
pub fn clap_exit(e: clap::Error, args: &[String]) -> Result<ExitCode> {
    if e.kind() == clap::error::ErrorKind::DisplayHelp && positional_words(args) == 0 {
        print_help_with_plugins(&prescan_globals(args));
        return Ok(ExitCode::SUCCESS);
    }
    clap_error(e, None, &[])
}

fn print_help_with_plugins(global: &Global) {
    let mut cmd = Cli::command();
    let dir = resolve_data_dir(global.data_dir.as_deref());
    // Only look at a node that exists: help must not create a data dir.
    if dir.exists() {
        if let Ok(mut b) = Backend::open(&dir) {
            if let Ok(cat) = Catalog::fetch(&mut b) {
                for (name, about) in cat.commands() {
                    if cmd.find_subcommand(&name).is_none() {
                        cmd = cmd.subcommand(clap::Command::new(name).about(about));
                    }
                }
            }
        }
    }
    let _ = cmd.print_help();
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = cli.global;
    let dir = resolve_data_dir(g.data_dir.as_deref());
    let Some(cmd) = cli.cmd else {
        print_help_with_plugins(&g);
        return Ok(ExitCode::SUCCESS);
    };
    match cmd {
        Cmd::Daemon {
            listen,
            sync_interval,
            irc,
        } => daemon(&dir, listen, sync_interval, &irc),
        Cmd::Demo => demo(&g),
        Cmd::Bench {
            irc: true,
            irc_clients,
            ..
        } => crate::bench_irc::bench(irc_clients).map(|()| ExitCode::SUCCESS),
        Cmd::Bench { posts, .. } => bench(posts),
        Cmd::Watch { store } => watch(&dir, store, g.json),
        Cmd::Completions { shell } => crate::shell::completions(shell),
        Cmd::Man { dir } => crate::shell::man(dir.as_deref()),
        Cmd::Plugin_(args) => {
            if let Some(room) = crate::chat::wanted(&args) {
                return crate::chat::run(&dir, room);
            }
            let mut b = Backend::open(&dir)?;
            plugin_cmd::run(&mut b, args, &g)
        }
        other => {
            let mut b = Backend::open(&dir)?;
            static_command(&mut b, other, g.json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_json(resp: &Response) {
    outln!("{}", serde_json::to_string(resp).unwrap_or_default());
}

fn static_command(b: &mut Backend, cmd: Cmd, json: bool) -> Result<()> {
    let req = match &cmd {
        Cmd::Node(NodeCmd::Status) => Request::NodeStatus,
        Cmd::Mesh(MeshCmd::Create { name }) => Request::MeshCreate { name: name.clone() },
        Cmd::Mesh(MeshCmd::List) => Request::MeshList,
        Cmd::Mesh(MeshCmd::Use { mesh }) => Request::MeshUse { mesh: mesh.clone() },
        Cmd::Mesh(MeshCmd::Status { mesh }) => Request::MeshStatus { mesh: mesh.clone() },
        Cmd::Store(StoreCmd::Create { name, kind }) => store_create_request(name.clone(), kind)?,
        Cmd::Store(StoreCmd::List) => Request::StoreList,
        Cmd::Store(StoreCmd::Use { store }) => Request::StoreUse {
            store: store.clone(),
        },
        Cmd::Store(StoreCmd::Delete { store }) => Request::StoreDelete {
            store: store.clone(),
        },
        Cmd::Store(StoreCmd::Status { store }) | Cmd::Store(StoreCmd::Digest { store }) => {
            Request::StoreStatus {
                store: store.clone(),
            }
        }
        Cmd::Store(StoreCmd::Log { store, from, limit }) => Request::StoreLog {
            store: store.clone(),
            from: *from,
            limit: *limit,
        },
        Cmd::Mesh(MeshCmd::Invite { expires }) => Request::MeshInvite {
            expires_secs: *expires,
        },
        Cmd::Mesh(MeshCmd::Join { token }) => Request::MeshJoin {
            token: token.clone(),
        },
        Cmd::Mesh(MeshCmd::Peers) => Request::MeshPeers,
        Cmd::Mesh(MeshCmd::Leave { mesh }) => Request::MeshLeave { mesh: mesh.clone() },
        Cmd::Mesh(MeshCmd::Revoke { member }) => Request::MeshRevoke {
            member: member.clone(),
        },
        Cmd::Store(StoreCmd::Sync { store }) => Request::StoreSync {
            store: store.clone(),
        },
        Cmd::Store(StoreCmd::Verify { store }) => Request::StoreVerify {
            store: store.clone(),
        },
        Cmd::Plugin(PluginCmd::List) => Request::PluginList,
        Cmd::Plugin(PluginCmd::Inspect { path }) => Request::PluginInspect {
            wasm: Hex(read_wasm(path)?),
        },
        _ => unreachable!("handled by dispatch"),
    };
    let resp = b.call(req)?;
    if json {
        if let (Cmd::Store(StoreCmd::Log { .. }), Response::Log { store, entries }) = (&cmd, &resp)
        {
            let schema = store_schema(b, &store.plugin_hash)?;
            for e in entries {
                let op = schema
                    .as_ref()
                    .map(|s| s.render_op(&e.payload.0, true))
                    .unwrap_or_else(|| "null".into());
                outln!(
                    "{{\"seq\":{},\"id\":\"{}\",\"author\":\"{}\",\"hlc\":{},\"op\":{op},\"noop\":{}}}",
                    e.seq,
                    e.id,
                    e.author,
                    e.hlc,
                    serde_json::to_string(&e.noop).unwrap_or_default()
                );
            }
            return Ok(());
        }
        print_json(&resp);
        if let Response::Verified { report } = &resp {
            verify_verdict(report)?;
        }
        return Ok(());
    }
    match (&cmd, resp) {
        (
            _,
            Response::NodeStatus {
                author,
                data_dir,
                meshes,
                stores,
                daemon,
                current_mesh,
            },
        ) => {
            outln!("node       {author}");
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
                    "{} {:<12} last seen {seen:<10} {}",
                    p.id,
                    if p.connected {
                        "connected"
                    } else {
                        "disconnected"
                    },
                    p.addrs.join(",")
                );
                for (store, _, r) in p.syncs {
                    outln!("    {store:<16} {r}");
                }
            }
        }
        (_, Response::Left { mesh }) => {
            eprintln!("left mesh {mesh}: its stores no longer run here");
        }
        (_, Response::Deleted { store }) => {
            eprintln!("deleted store {store}: every member closes it and refuses its new entries");
        }
        (_, Response::Revoked { member }) => {
            outln!("{member}");
            eprintln!(
                "revoked: entries {member:.12}… writes from now on are refused by every member that has this"
            );
        }
        (_, Response::Synced { results }) => {
            if results.is_empty() {
                eprintln!("no reachable members to sync with");
            }
            let failed = results.iter().filter(|r| !r.ok).count();
            for r in &results {
                outln!(
                    "{:<16} {:.12}  {} {}",
                    r.store,
                    r.peer,
                    if r.ok { "ok   " } else { "error" },
                    r.detail
                );
            }
            if failed > 0 {
                bail!("{failed} of {} syncs failed", results.len());
            }
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
            if let Some(h) = &s.halted {
                outln!("HALTED        {h}");
            }
        }
        (_, Response::Log { store, entries }) => {
            let schema = store_schema(b, &store.plugin_hash)?;
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
                    &e.author[..8],
                    &e.id[..12],
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
        (_, Response::Plugin { plugin: p }) => {
            outln!("name      {}", safe(&p.name));
            outln!("version   {}", p.version);
            outln!("hash      {}", p.hash);
            outln!("size      {} bytes", p.size);
            outln!("api       lattice:plugin@{}", p.api_version);
            outln!("service   {}", p.service);
            outln!("op type   {}", p.op_type);
            for (m, q) in p.methods {
                outln!(
                    "  {:<14} {}",
                    lattice_cli::dynamic::kebab_case(&m),
                    if q { "query" } else { "command" }
                );
            }
        }
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
        (_, other) => bail!("unexpected reply: {other:?}"),
    }
    Ok(())
}

/// `store verify` fails (one stderr line, exit 1) when anything differs.
fn verify_verdict(r: &lattice_host::api::VerifyView) -> Result<()> {
    if r.problems.is_empty() {
        return Ok(());
    }
    bail!(
        "store `{}` failed verification: {} problem{} (listed above); its data is not served until a verify passes",
        r.store.name,
        r.problems.len(),
        if r.problems.len() == 1 { "" } else { "s" }
    )
}

/// The schema of the plugin with this hash, for decoding a store's ops.
fn store_schema(b: &mut Backend, plugin_hash: &str) -> Result<Option<Schema>> {
    Catalog::fetch(b)?
        .plugin_by_hash(plugin_hash)
        .map(Schema::of)
        .transpose()
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

fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(stop)
}

fn daemon(
    dir: &Path,
    listen: Option<std::net::SocketAddr>,
    sync_interval: u64,
    irc: &IrcArgs,
) -> Result<ExitCode> {
    let irc_config = irc_config(irc)?;
    let stop = stop_flag()?;
    let socket = Backend::socket_path(dir);
    if Client::connect(&socket).is_ok() {
        bail!("a lattice daemon is already serving {}", socket.display());
    }
    let node = Arc::new(
        Node::open(dir).with_context(|| format!("cannot open node in {}", dir.display()))?,
    );
    let server = Server::bind(node.clone(), &Backend::socket_path(dir))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let opts = NetOptions {
        listen,
        sync_interval: Duration::from_secs(sync_interval.max(1)),
    };
    node.start_network(&rt, opts)?;
    let addrs = node.network()?.net.addrs();
    eprintln!(
        "lattice daemon: node {} serving {}, listening on {}",
        node.author(),
        server.path().display(),
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    if let (Some(addr), Some(config)) = (irc.irc, irc_config) {
        let gw = lattice_irc::Gateway::start(node.clone(), rt.handle(), addr, config)?;
        eprintln!("lattice daemon: IRC gateway on {}", gw.local_addr());
    }
    // Housekeeping: stores declared by peers whose plugin we lack, the
    // peer address book for the next restart, and orphans past their TTL.
    // It also watches the kernel: if the commit thread died, the daemon must
    // not keep answering while refusing every write, so it stops and exits
    // non-zero with the reason.
    let n = node.clone();
    let s = stop.clone();
    let keeper = std::thread::spawn(move || -> Option<String> {
        let sweep_every = n.kernel().config().orphan_sweep_interval;
        // First sweep at start: orphans left from the last run are old news.
        let mut next_sweep = Instant::now();
        while !s.load(Ordering::Relaxed) {
            for _ in 0..20 {
                if s.load(Ordering::Relaxed) {
                    return None;
                }
                if let Err(e) = n.kernel().health() {
                    s.store(true, Ordering::Relaxed);
                    return Some(e.to_string());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Err(e) = n.fetch_missing_blobs() {
                tracing::warn!(error = %e, "fetching plugin blobs");
            }
            if let Err(e) = n.save_peers() {
                tracing::warn!(error = %e, "saving peers");
            }
            if Instant::now() >= next_sweep {
                next_sweep = Instant::now() + sweep_every;
                match n.kernel().sweep_orphans() {
                    Ok(0) => {}
                    Ok(k) => tracing::info!(dropped = k, "swept orphans past their TTL"),
                    Err(e) => tracing::warn!(error = %e, "sweeping orphans"),
                }
            }
        }
        None
    });
    eprintln!(
        "other lattice commands with the same data dir now go through this daemon; Ctrl-C stops it"
    );
    server.serve(stop);
    let died = keeper.join().ok().flatten();
    let _ = node.save_peers();
    if let Some(why) = died {
        bail!("lattice daemon: stopping: {why}");
    }
    eprintln!("lattice daemon: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The gateway's settings from the daemon's flags (`None` without `--irc`).
fn irc_config(a: &IrcArgs) -> Result<Option<lattice_irc::Config>> {
    if a.irc.is_none() {
        return Ok(None);
    }
    let mut config = lattice_irc::Config {
        server_name: a.irc_server_name.clone(),
        info: a.irc_info.clone(),
        password: a.irc_password.clone().filter(|p| !p.is_empty()),
        history: a.irc_history,
        max_clients: a.irc_max_clients.max(1),
        ..lattice_irc::Config::default()
    };
    // Every IRC user posts as this node: off loopback, only with a password.
    if let Some(addr) = a.irc
        && !addr.ip().is_loopback()
        && config.password.is_none()
    {
        bail!(
            "--irc {addr}: anyone who reaches it would post as this node; add --irc-password (or LATTICE_IRC_PASSWORD), or listen on 127.0.0.1"
        );
    }
    if config.server_name.is_empty() || config.server_name.contains([' ', ':', '!', '@']) {
        bail!(
            "--irc-server-name: `{}` is not a server name (no spaces, ':', '!' or '@')",
            config.server_name
        );
    }
    if let Some(path) = &a.irc_motd {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--irc-motd: cannot read {}", path.display()))?;
        config.motd = text.lines().map(str::to_string).collect();
    }
    for o in &a.irc_oper {
        let Some((name, pass)) = o
            .split_once(':')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            bail!("--irc-oper: expected NAME:PASSWORD, got `{o}`");
        };
        config.opers.push((name.to_string(), pass.to_string()));
    }
    Ok(Some(config))
}

fn watch(dir: &Path, store: Option<String>, json: bool) -> Result<ExitCode> {
    let stop = stop_flag()?;
    let mut b = Backend::open(dir)?;
    let cat = Catalog::fetch(&mut b)?;
    let print = |resp: Response| -> bool {
        if let Response::Event { store, entry } = resp {
            let schema = cat
                .plugin_by_hash(&store.plugin_hash)
                .and_then(|p| Schema::of(p).ok());
            let op = schema
                .map(|s| s.render_op(&entry.payload.0, json))
                .unwrap_or_default();
            if json {
                outln!(
                    "{{\"store\":\"{}\",\"id\":\"{}\",\"author\":\"{}\",\"seq\":{},\"op\":{op}}}",
                    store.name,
                    entry.id,
                    entry.author,
                    entry.seq
                );
            } else {
                outln!(
                    "{:<12} {} {:>5} {}",
                    store.name,
                    &entry.author[..8],
                    entry.seq,
                    op.replace('\n', " ")
                );
            }
        }
        !stop.load(Ordering::Relaxed)
    };
    match b {
        Backend::Daemon(mut c) => {
            c.send(Request::Watch { store })?;
            eprintln!("watching (Ctrl-C to stop)");
            loop {
                let f = c.recv()?;
                if let Response::Error { message } = f.resp {
                    bail!(message);
                }
                if !print(f.resp) {
                    break;
                }
            }
        }
        Backend::Local(node) => {
            // No daemon: serve the socket ourselves while watching, so other
            // commands can write meanwhile (they reach this process).
            let node: Arc<Node> = Arc::from(node);
            let server = Server::bind(node.clone(), &Backend::socket_path(dir))?;
            eprintln!(
                "watching (no daemon running: serving {} until Ctrl-C)",
                server.path().display()
            );
            let s = stop.clone();
            let t = std::thread::spawn(move || server.serve(s));
            service::watch(&node, store.as_deref(), print)?;
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
    }
    Ok(ExitCode::from(130))
}

/// Runs one CLI invocation in-process, echoing it like a shell transcript.
fn step(global: &Global, args: &[&str]) -> Result<()> {
    let mut line = String::from("lattice");
    for a in args {
        if a.contains(' ') {
            line.push_str(&format!(" \"{a}\""));
        } else {
            line.push_str(&format!(" {a}"));
        }
    }
    outln!("\n$ {line}");
    let mut full = vec!["lattice".to_string()];
    if let Some(d) = &global.data_dir {
        full.push("--data-dir".into());
        full.push(d.display().to_string());
    }
    full.extend(args.iter().map(|s| s.to_string()));
    let code = crate::run(full)?;
    if code != ExitCode::SUCCESS {
        bail!("`{line}` failed");
    }
    Ok(())
}

fn demo(global: &Global) -> Result<ExitCode> {
    let dir = resolve_data_dir(global.data_dir.as_deref());
    outln!("Lattice demo: a single node in {}", dir.display());
    let (has_mesh, stores) = {
        let mut b = Backend::open(&dir)?;
        let has_mesh =
            matches!(b.call(Request::MeshList)?, Response::Meshes { meshes } if !meshes.is_empty());
        let stores = match has_mesh.then(|| b.call(Request::StoreList)).transpose()? {
            Some(Response::Stores { stores }) => stores.into_iter().map(|s| s.name).collect(),
            _ => vec![],
        };
        (has_mesh, stores)
    };
    step(global, &["node", "status"])?;
    if !has_mesh {
        step(global, &["mesh", "create"])?;
    }
    if !stores.iter().any(|s| s == "general") {
        step(
            global,
            &["store", "create", "--type", "chat", "--name", "general"],
        )?;
    }
    if !stores.iter().any(|s| s == "settings") {
        step(
            global,
            &["store", "create", "--type", "kv", "--name", "settings"],
        )?;
    }
    step(
        global,
        &["general", "post", "--text", "hello from the Lattice demo"],
    )?;
    step(global, &["general", "set-topic", "--text", "demo room"])?;
    step(global, &["general", "messages", "--limit", "5"])?;
    step(
        global,
        &["settings", "put", "--key", "theme", "--value", "dark"],
    )?;
    step(global, &["settings", "get", "--key", "theme"])?;
    step(global, &["store", "log", "general"])?;
    step(global, &["store", "status", "general"])?;
    demo_mesh()?;
    outln!(
        "\nNext: `lattice general --help` lists the chat methods (from the plugin's descriptor);\n\
         `lattice daemon` in one terminal and `lattice watch` in another shows ops live;\n\
         `lattice store create --type path/to/plugin.wasm` runs your own CRDT (docs/plugin-guide.md)."
    );
    Ok(ExitCode::SUCCESS)
}

/// Part two of the demo: three daemons on this machine (throwaway data
/// dirs), joined by invite, writing concurrently, converging.
fn demo_mesh() -> Result<()> {
    outln!(
        "\n--- Replication: three nodes on this machine (temporary data dirs, loopback QUIC) ---"
    );
    let exe = std::env::current_exe()?;
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut daemons = Vec::new();
    for d in &dirs {
        daemons.push(
            std::process::Command::new(&exe)
                .args([
                    "--data-dir",
                    &d.path().display().to_string(),
                    "daemon",
                    "--sync-interval",
                    "1",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?,
        );
    }
    let result = (|| -> Result<()> {
        let mut clients = Vec::new();
        for d in &dirs {
            let sock = Backend::socket_path(d.path());
            let deadline = Instant::now() + Duration::from_secs(30);
            let c = loop {
                if let Ok(c) = Client::connect(&sock) {
                    break c;
                }
                if Instant::now() > deadline {
                    bail!("a demo daemon did not start");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            clients.push(c);
        }
        let g = |i: usize| Global {
            data_dir: Some(dirs[i].path().to_path_buf()),
            ..Global::default()
        };
        outln!(
            "(node1, node2, node3 each run `lattice daemon`; commands below go to them through their sockets)"
        );
        step(&g(0), &["mesh", "create"])?;
        step(
            &g(0),
            &["store", "create", "--type", "chat", "--name", "general"],
        )?;
        for i in 1..3 {
            let token = match clients[0].call(Request::MeshInvite { expires_secs: 600 })? {
                Response::Invite { token, .. } => token,
                Response::Error { message } => bail!(message),
                other => bail!("unexpected reply {other:?}"),
            };
            outln!(
                "\n[node1] $ lattice mesh invite\n{}…",
                &token[..40.min(token.len())]
            );
            outln!("[node{}]", i + 1);
            step(&g(i), &["mesh", "join", &token])?;
        }
        for (i, who) in ["node1", "node2", "node3"].iter().enumerate() {
            outln!("[{who}]");
            step(
                &g(i),
                &["general", "post", "--text", &format!("hello from {who}")],
            )?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let digests = loop {
            let mut ds = Vec::new();
            for c in clients.iter_mut() {
                match c.call(Request::StoreStatus {
                    store: Some("general".into()),
                })? {
                    Response::StoreStatus { status } => {
                        ds.push((status.entries, status.state_digest))
                    }
                    _ => ds.push((0, String::new())),
                }
            }
            if ds.iter().all(|d| d == &ds[0]) && ds[0].0 == 3 {
                break ds;
            }
            if Instant::now() > deadline {
                bail!("the demo nodes did not converge: {ds:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        outln!("\nconverged (gossip + sync):");
        for (i, (n, d)) in digests.iter().enumerate() {
            outln!(
                "  node{}  general: {n} entries, state digest {}",
                i + 1,
                &d[..32]
            );
        }
        outln!("[node3]");
        step(&g(2), &["general", "messages"])?;
        Ok(())
    })();
    for mut d in daemons {
        let _ = d.kill();
        let _ = d.wait();
    }
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Local API benchmark against a throwaway node served on its socket.
fn bench(posts: u32) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let node = Arc::new(Node::open(dir.path())?);
    let server = Server::bind(node.clone(), &Backend::socket_path(dir.path()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || server.serve(s));
    let mut c = Client::connect(&Backend::socket_path(dir.path()))?;
    let ok = |r: Response| -> Result<Response> {
        if let Response::Error { message } = r {
            Err(anyhow!(message))
        } else {
            Ok(r)
        }
    };
    ok(c.call(Request::MeshCreate { name: None })?)?;
    ok(c.call(Request::StoreCreate {
        name: Some("benchroom".into()),
        kind: Some("chat".into()),
        wasm: None,
    })?)?;
    let post = |text: &str| Request::Call {
        selector: "benchroom".into(),
        explicit: None,
        method: "Post".into(),
        request: Hex(encode_text_field(text)),
    };
    let query = Request::Call {
        selector: "benchroom".into(),
        explicit: None,
        method: "Topic".into(),
        request: Hex(vec![]),
    };
    for (label, req) in [
        ("query (chat topic)", query),
        ("command (chat post, durable)", post("latency")),
    ] {
        let mut lat = Vec::new();
        for _ in 0..300 {
            let t0 = Instant::now();
            ok(c.call(req.clone())?)?;
            lat.push(t0.elapsed());
        }
        lat.sort();
        outln!(
            "{label:<30} p50 {:>8.3} ms  p99 {:>8.3} ms",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        );
    }
    let window = 256u32;
    let t0 = Instant::now();
    let (mut sent, mut done) = (0u32, 0u32);
    while done < posts {
        while sent < posts && sent - done < window {
            c.send(post(&format!("message {sent}")))?;
            sent += 1;
        }
        ok(c.recv()?.resp)?;
        done += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    outln!(
        "{posts} pipelined chat posts via socket  {:.0} ops/s ({secs:.2} s, window {window})",
        posts as f64 / secs
    );
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    // Process start to first output, one-shot commands (no daemon; plugin artifacts cached).
    drop(c);
    let exe = std::env::current_exe()?;
    // A separate data dir: the node above is still shutting down its threads.
    let dir = tempfile::tempdir()?;
    {
        let n = Node::open(dir.path())?;
        n.mesh_create(None)?;
        n.store_create(
            Some("benchroom"),
            lattice_host::node::StoreType::Builtin("chat"),
        )?;
    }
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let out = std::process::Command::new(&exe)
            .args([
                "--data-dir",
                &dir.path().display().to_string(),
                "benchroom",
                "topic",
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "one-shot command failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lat.push(t0.elapsed());
    }
    lat.sort();
    outln!(
        "one-shot `lattice benchroom topic` (opens the node itself)  p50 {:.1} ms  p99 {:.1} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

/// The chat plugin's `PostRequest` (`string text = 1`), for the benchmark.
#[derive(Clone, PartialEq, prost::Message)]
struct PostRequest {
    #[prost(string, tag = "1")]
    text: String,
}

fn encode_text_field(text: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&PostRequest {
        text: text.to_string(),
    })
}
