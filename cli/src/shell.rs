//! What a shell and its manual need from `lattice`: completion scripts, the
//! run-time completer they call back into, man pages and the version line.
//!
//! Completion is dynamic (clap_complete's `CompleteEnv`): the script that
//! `lattice completions bash` prints holds no command names, it runs
//! `COMPLETE=bash lattice -- WORDS…` on every TAB. That way a store created
//! after the script was installed, or a plugin's new method, completes too.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::engine::{
    ArgValueCandidates, ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use lattice_host::api::client::Client;
use lattice_host::api::{MeshInfo, Request, Response};
use lattice_host::node::{LOG_FILE, Node, SOCKET_FILE, resolve_data_dir};

use crate::app::Cli;
use crate::backend::Backend;
use crate::plugin_cmd::{self, Catalog, Schema};

/// The environment variable the completion scripts set to ask for candidates.
const COMPLETE_VAR: &str = "COMPLETE";

/// A TAB must not hang the shell: past this, only static commands complete.
const NODE_WAIT: Duration = Duration::from_secs(2);

/// The shells `lattice completions` writes a script for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The `--version` text after the binary's name: a plugin author needs the
/// WIT worlds this host loads as much as the crate version.
pub fn version() -> String {
    let apis: Vec<String> = lattice_host::runtime::SUPPORTED_API_VERSIONS
        .iter()
        .map(|v| format!("lattice:plugin@{v}"))
        .collect();
    format!(
        "{} (plugin API {})",
        env!("CARGO_PKG_VERSION"),
        apis.join(", ")
    )
}

/// Answers a completion request from a script and exits; returns at once
/// when `COMPLETE` is not set. Runs before logging is set up, so nothing but
/// candidates reaches the terminal.
pub fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(completion_command)
        .var(COMPLETE_VAR)
        .complete();
}

/// `lattice completions SHELL`: the script that registers the completer.
pub fn completions(shell: Shell) -> Result<ExitCode> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    let mut buf = Vec::new();
    completer
        .write_registration(
            COMPLETE_VAR,
            "lattice",
            "lattice",
            &completer_path(),
            &mut buf,
        )
        .context("writing the completion script")?;
    std::io::stdout()
        .write_all(&buf)
        .context("writing the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// The program the script calls: as typed when it came from `$PATH` (so an
/// upgrade in place keeps working), else made absolute, as `CompleteEnv`
/// itself does for `COMPLETE=bash lattice`.
fn completer_path() -> String {
    let arg0 = PathBuf::from(
        std::env::args_os()
            .next()
            .unwrap_or_else(|| "lattice".into()),
    );
    if arg0.components().count() > 1 {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(arg0).to_string_lossy().into_owned();
        }
    }
    arg0.to_string_lossy().into_owned()
}

/// `lattice man`: lattice(1) on stdout, or one page per command in `dir`.
pub fn man(dir: Option<&Path>) -> Result<ExitCode> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .context("rendering the man page")?;
            std::io::stdout()
                .write_all(&buf)
                .context("writing the man page")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the node knows that a command line can name.
struct Known {
    catalog: Catalog,
    meshes: Vec<MeshInfo>,
}

/// The tree completion walks: the static commands with store and mesh names
/// as candidates, plus every plugin command the node offers. Without a node
/// (or one that does not answer in time) it is the static tree alone.
fn completion_command() -> clap::Command {
    let mut cmd = Cli::command().mut_subcommand("store", |s| {
        s.mut_subcommand("create", |c| c.mut_arg("kind", |a| a.add(plugin_types())))
    });
    // The script passes the line being completed after `--`.
    let words: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let global = crate::commands::prescan_globals(&words);
    let dir = resolve_data_dir(global.data_dir.as_deref());
    let Some(known) = ask_node(&dir) else {
        return cmd;
    };

    let stores: Vec<(String, String)> = known
        .catalog
        .stores
        .iter()
        .map(|s| (s.store.name.clone(), s.store.type_name.clone()))
        .collect();
    let meshes: Vec<(String, String)> = known
        .meshes
        .iter()
        .map(|m| (m.name.clone(), String::new()))
        .collect();
    // Positional and flag forms alike (`app::StoreSel`, `app::MeshSel`).
    for id in ["store", "store_flag"] {
        cmd = with_candidates(cmd, id, &stores);
    }
    for id in ["mesh", "mesh_flag"] {
        cmd = with_candidates(cmd, id, &meshes);
    }

    for (name, about) in known.catalog.commands() {
        if cmd.find_subcommand(&name).is_some() {
            continue;
        }
        let Some(plugin) = known.catalog.plugin_for(&name) else {
            continue;
        };
        let Ok(schema) = Schema::of(plugin) else {
            continue;
        };
        let same_type: Vec<(String, String)> = known
            .catalog
            .stores
            .iter()
            .filter(|s| s.store.plugin_hash == plugin.hash)
            .map(|s| (s.store.name.clone(), s.store.type_name.clone()))
            .collect();
        let sub = plugin_cmd::command(&name, &schema)
            .about(about)
            .mut_arg("store", |a| a.add(candidates(&same_type)));
        cmd = cmd.subcommand(sub);
    }
    cmd
}

/// Adds `names` as the candidates of every argument called `id`, at any depth.
fn with_candidates(mut cmd: clap::Command, id: &str, names: &[(String, String)]) -> clap::Command {
    if cmd.get_arguments().any(|a| a.get_id() == id) {
        cmd = cmd.mut_arg(id, |a| a.add(candidates(names)));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in subs {
        cmd = cmd.mut_subcommand(sub, |s| with_candidates(s, id, names));
    }
    cmd
}

/// `store create --type`: a shipped plugin's name, or a path to a `.wasm`.
fn plugin_types() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        let typed = current.to_string_lossy();
        let mut out: Vec<CompletionCandidate> = lattice_host::runtime::builtin::BUILTIN
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| name.starts_with(typed.as_ref()))
            .map(|name| CompletionCandidate::new(name).help(Some("shipped plugin".into())))
            .collect();
        out.extend(PathCompleter::file().complete(current));
        out
    })
}

fn candidates(names: &[(String, String)]) -> ArgValueCandidates {
    let names = names.to_vec();
    ArgValueCandidates::new(move || {
        names
            .iter()
            .map(|(name, help)| {
                CompletionCandidate::new(name).help((!help.is_empty()).then(|| help.clone().into()))
            })
            .collect::<Vec<_>>()
    })
}

/// The node's catalog and meshes, if a node lives in `dir` and answers in
/// time. Only an existing node is opened: completing must never create a
/// data dir, and a busy one is not waited for.
fn ask_node(dir: &Path) -> Option<Known> {
    let socket = dir.join(SOCKET_FILE);
    if !dir.join(LOG_FILE).exists() && !socket.exists() {
        return None;
    }
    let dir = dir.to_path_buf();
    let (tx, rx) = mpsc::channel();
    // A daemon that accepts but never answers would hang the TAB; the
    // thread is left behind on timeout and ends with the process.
    std::thread::spawn(move || {
        let backend = match Client::connect(&dir.join(SOCKET_FILE)) {
            Ok(c) => Backend::Daemon(c),
            Err(_) if dir.join(LOG_FILE).exists() => match Node::open(&dir) {
                Ok(n) => Backend::Local(Box::new(n)),
                Err(_) => return,
            },
            Err(_) => return,
        };
        let _ = tx.send(known(backend));
    });
    rx.recv_timeout(NODE_WAIT).ok().flatten()
}

fn known(mut b: Backend) -> Option<Known> {
    let catalog = Catalog::fetch(&mut b).ok()?;
    let meshes = match b.call(Request::MeshList) {
        Ok(Response::Meshes { meshes }) => meshes,
        _ => Vec::new(),
    };
    Some(Known { catalog, meshes })
}
