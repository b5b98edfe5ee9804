//! `lattice daemon`: the node in the foreground, serving its socket, the
//! network and optionally the IRC gateway, until SIGTERM or SIGINT.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use lattice_host::api::client::Client;
use lattice_host::api::server::Server;
use lattice_host::node::Node;
use lattice_host::node::network::NetOptions;

use super::stop_flag;
use crate::app::DaemonArgs;
use crate::backend::Backend;
use crate::config::DaemonSettings;

pub fn run(dir: &Path, args: &DaemonArgs, json: bool) -> Result<ExitCode> {
    let settings = DaemonSettings::resolve(args)?;
    let irc_config = irc_config(&settings)?;
    let (listen, sync_interval) = (settings.listen.value, settings.sync_interval.value);
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
    let addrs: Vec<String> = node
        .network()?
        .net
        .addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    eprintln!(
        "lattice daemon: node {} serving {}, listening on {}",
        node.author(),
        server.path().display(),
        addrs.join(",")
    );
    let mut irc_addr = None;
    if let (Some(addr), Some(config)) = (settings.irc.value, irc_config) {
        let gw = lattice_irc::Gateway::start(node.clone(), rt.handle(), addr, config)?;
        eprintln!("lattice daemon: IRC gateway on {}", gw.local_addr());
        irc_addr = Some(gw.local_addr());
    }
    let web = match settings.http.value {
        Some(addr) => {
            let w = lattice_web::Web::start(node.clone(), rt.handle(), addr)?;
            if !addr.ip().is_loopback() {
                eprintln!(
                    "lattice daemon: warning: HTTP on {addr} is plain HTTP, reachable beyond this machine; tokens travel in clear"
                );
            }
            eprintln!(
                "lattice daemon: HTTP API and browser UI on http://{}",
                w.local_addr()
            );
            // `token create --login` reads it to print a URL that reaches us.
            let _ = std::fs::write(
                dir.join(super::token::HTTP_ADDR_FILE),
                w.local_addr().to_string(),
            );
            Some(w)
        }
        None => None,
    };
    let http_addr = web.as_ref().map(|w| w.local_addr());
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
    // The ready line: everything above is serving. Scripts and service
    // managers wait for this one stdout line instead of polling the socket.
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "ready": true,
                "node": node.author().to_hex(),
                "socket": server.path().display().to_string(),
                "listen": addrs,
                "irc": irc_addr.map(|a| a.to_string()),
                "http": http_addr.map(|a| a.to_string()),
            })
        );
    } else {
        outln!(
            "ready {} {} {}{}{}",
            node.author().to_hex(),
            server.path().display(),
            addrs.join(","),
            irc_addr.map(|a| format!(" irc {a}")).unwrap_or_default(),
            http_addr.map(|a| format!(" http {a}")).unwrap_or_default()
        );
    }
    server.serve(stop);
    if let Some(w) = web {
        w.stop();
        let _ = std::fs::remove_file(dir.join(super::token::HTTP_ADDR_FILE));
    }
    let died = keeper.join().ok().flatten();
    let _ = node.save_peers();
    // Close the endpoint before the runtime goes: peers see a clean close,
    // and iroh has no dropped endpoint to complain about.
    node.stop_network();
    if let Some(why) = died {
        bail!("lattice daemon: stopping: {why}");
    }
    eprintln!("lattice daemon: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The gateway's settings from the daemon's flags (`None` without `--irc`).
fn irc_config(s: &DaemonSettings) -> Result<Option<lattice_irc::Config>> {
    let Some(addr) = s.irc.value else {
        return Ok(None);
    };
    let mut config = lattice_irc::Config {
        server_name: s.irc_server_name.value.clone(),
        info: s.irc_info.value.clone(),
        password: s.irc_password.value.clone(),
        history: s.irc_history.value,
        max_clients: s.irc_max_clients.value.max(1),
        ..lattice_irc::Config::default()
    };
    // Every IRC user posts as this node: off loopback, only with a password.
    if !addr.ip().is_loopback() && config.password.is_none() {
        usage!(
            "--irc {addr}: anyone who reaches it would post as this node; add --irc-password (or LATTICE_IRC_PASSWORD), or listen on 127.0.0.1"
        );
    }
    if config.server_name.is_empty() || config.server_name.contains([' ', ':', '!', '@']) {
        usage!(
            "--irc-server-name: `{}` is not a server name (no spaces, ':', '!' or '@')",
            config.server_name
        );
    }
    if let Some(path) = &s.irc_motd.value {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--irc-motd: cannot read {}", path.display()))?;
        config.motd = text.lines().map(str::to_string).collect();
    }
    for o in &s.irc_opers.value {
        let Some((name, pass)) = o
            .split_once(':')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            usage!("--irc-oper: expected NAME:PASSWORD, got `{o}`");
        };
        config.opers.push((name.to_string(), pass.to_string()));
    }
    Ok(Some(config))
}
