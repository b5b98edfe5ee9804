//! `lattice store sync` and `lattice mesh join` through a daemon, with
//! their progress: a bar on a terminal, one plain line per session
//! otherwise (a log, a pipe). The daemon streams a `SyncProgress` frame per
//! (peer, store) session, then the result, which `human` prints as for any
//! command.

use std::io::IsTerminal as _;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use lattice_host::api::{Request, Response};

use crate::backend::Backend;
use crate::fail::Failure;

/// The final reply of `req` (sent with `progress: true`) with progress
/// shown, or `None` when there is no daemon to stream from (the caller asks
/// the plain way, which fails with the "needs the daemon" error).
pub fn with_progress(b: &mut Backend, req: Request) -> Result<Option<Response>> {
    let who = crate::plugin_cmd::readable(b);
    let Backend::Daemon(c) = b else {
        return Ok(None);
    };
    c.send(req)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("syncing [{bar:30}] {pos}/{len} {wide_msg}")
        {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    });
    let done = |bar: &Option<ProgressBar>| {
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
    };
    loop {
        match c.recv()?.resp {
            Response::SyncProgress {
                done: n,
                total,
                sync,
            } => {
                let line = format!(
                    "{} with {}{}",
                    sync.store,
                    who.author_hex(&sync.peer),
                    if sync.ok { "" } else { ": failed" }
                );
                match &bar {
                    Some(pb) => {
                        pb.set_length(total.into());
                        pb.set_position(n.into());
                        pb.set_message(line);
                    }
                    None => eprintln!("synced {line} ({n}/{total})"),
                }
            }
            Response::Error { message, kind } => {
                done(&bar);
                return Err(Failure::new(kind, message));
            }
            other => {
                done(&bar);
                return Ok(Some(other));
            }
        }
    }
}
