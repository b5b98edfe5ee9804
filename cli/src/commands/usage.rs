//! Clap's errors as one usage line (exit 2), and help that lists the
//! plugin commands of this node.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use super::prescan_globals;
use crate::app::{Cli, Global};
use crate::backend::Backend;
use crate::plugin_cmd::Catalog;

/// A clap error as one usage line (exit 2); help and version print in full
/// (exit 0). A command missing its subcommand prints its help on stderr and
/// exits 2, as clap does; with `--json` it is one JSON error instead.
pub fn clap_error(
    e: clap::Error,
    cmd: Option<&clap::Command>,
    rest: &[String],
    json: bool,
) -> Result<ExitCode> {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return Ok(ExitCode::SUCCESS);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand if !json => {
            let _ = e.print();
            return Ok(ExitCode::from(2));
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("invalid command line").trim();
    let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" lists them on
    // the indented lines below: keep them on the one line.
    if msg.ends_with(':') {
        let listed: Vec<&str> = rendered
            .lines()
            .skip_while(|l| l.trim() != first)
            .skip(1)
            .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        if !listed.is_empty() {
            msg.push(' ');
            msg.push_str(&listed.join(", "));
        }
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        msg = "a subcommand is required (see --help)".into();
    }
    if let Some(tip) = rendered
        .lines()
        .find(|l| l.trim_start().starts_with("tip:"))
    {
        msg.push_str(&format!(" ({})", tip.trim()));
    }
    if let Some(cmd) = cmd {
        match e.kind() {
            ErrorKind::InvalidSubcommand
            | ErrorKind::MissingSubcommand
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
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
    Err(crate::fail::usage(msg))
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
    clap_error(e, None, &[], prescan_globals(args).json)
}

pub fn print_help_with_plugins(global: &Global) {
    let mut cmd = Cli::command();
    let Ok((dir, _)) = crate::config::data_dir(global.data_dir.as_deref()) else {
        let _ = cmd.print_help();
        return;
    };
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
