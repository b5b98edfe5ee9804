//! Static commands: the command line parsed by clap, turned into API
//! requests, answered, printed. Plugin commands are in `plugin_cmd`.
//!
//! - `usage`: clap errors and help (exit 2 for a wrong command line);
//! - `request`: a static command → its API request;
//! - `human` / `json`: the reply printed for a person or for a script;
//! - `daemon`, `watch`, `demo`: the long-running and guided commands.

mod config_show;
mod daemon;
mod demo;
mod human;
pub(crate) mod json;
mod plugin_new;
mod plugin_show;
mod request;
mod sync;
mod token;
mod usage;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result};

use lattice_host::api::Request;

use crate::app::{Cli, Cmd, Global, MeshCmd, PluginCmd, StoreCmd};
use crate::backend::Backend;
use crate::plugin_cmd::{self, Catalog, Schema};

pub use token::parse_duration;
pub use usage::{clap_error, clap_exit, print_help_with_plugins};

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

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = cli.global;
    let (dir, _) = crate::config::data_dir(g.data_dir.as_deref())?;
    let Some(cmd) = cli.cmd else {
        print_help_with_plugins(&g);
        return Ok(ExitCode::SUCCESS);
    };
    match cmd {
        Cmd::Daemon { args } => daemon::run(&dir, &args, g.json),
        Cmd::Config(c) => config_show::run(c, &g),
        Cmd::Demo => demo::run(&g),
        Cmd::Bench {
            irc: true,
            irc_clients,
            ..
        } => crate::bench::irc::bench(irc_clients, &crate::bench::Report { json: g.json })
            .map(|()| ExitCode::SUCCESS),
        Cmd::Bench {
            http: true,
            subscribers,
            ..
        } => crate::bench::web::bench(
            subscribers.max(1),
            200,
            &crate::bench::Report { json: g.json },
        )
        .map(|()| ExitCode::SUCCESS),
        Cmd::Bench { posts, .. } => {
            crate::bench::api::bench(posts, &crate::bench::Report { json: g.json })
                .map(|()| ExitCode::SUCCESS)
        }
        Cmd::Watch { store } => watch::run(&dir, store.get(), g.json),
        Cmd::Token(t) => token::run(&dir, t, g.json),
        Cmd::Completions { .. } | Cmd::Man { .. } if g.json => {
            usage!(
                "completions and man pages are text for a shell or for man; there is no --json form"
            )
        }
        Cmd::Completions { shell } => crate::shell::completions(shell),
        Cmd::Man { dir } => crate::shell::man(dir.as_deref()),
        Cmd::Plugin(PluginCmd::New {
            name,
            dir,
            sdk_path,
            sdk_git,
            sdk_rev,
        }) => plugin_new::run(
            plugin_new::NewPlugin {
                name: &name,
                dir: dir.as_deref(),
                sdk: match (sdk_path, sdk_git) {
                    (Some(p), _) => plugin_new::SdkSource::Path(p),
                    (None, Some(url)) => plugin_new::SdkSource::Git { url, rev: sdk_rev },
                    (None, None) => plugin_new::SdkSource::BuiltFrom,
                },
            },
            g.json,
        ),
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

/// Sends a static command's request and prints the reply.
fn static_command(b: &mut Backend, cmd: Cmd, json: bool) -> Result<()> {
    let streamed = match &cmd {
        Cmd::Store(StoreCmd::Sync { store }) if !json => Some(Request::StoreSync {
            store: store.get(),
            progress: true,
        }),
        Cmd::Mesh(MeshCmd::Join { token }) if !json => Some(Request::MeshJoin {
            token: token.clone(),
            progress: true,
        }),
        _ => None,
    };
    if let Some(req) = streamed
        && let Some(resp) = sync::with_progress(b, req)?
    {
        return human::print(b, &cmd, resp);
    }
    let resp = b.call(request::request(&cmd)?)?;
    let refused = plugin_show::refusal(&resp);
    if json {
        json::print(b, &cmd, &resp)?;
    } else {
        human::print(b, &cmd, resp)?;
    }
    refused.map_or(Ok(()), Err)
}

/// The schema of the plugin with this hash, for decoding a store's ops.
fn store_schema(b: &mut Backend, plugin_hash: &str) -> Result<Option<Schema>> {
    Catalog::fetch(b)?
        .plugin_by_hash(plugin_hash)
        .map(Schema::of)
        .transpose()
}

/// A flag the first SIGINT or SIGTERM sets, so a long-running command
/// stops cleanly; a second one, while it is stopping, exits at once with
/// 130 (the user asked twice).
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(stop)
}
