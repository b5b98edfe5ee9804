//! `lattice demo`: a guided first session, run for real: the commands a
//! new user would type, on this node, then three daemons replicating.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lattice_host::api::client::Client;
use lattice_host::api::{Request, Response};

use crate::app::Global;
use crate::backend::Backend;

/// The demo's narration: for a person only. With `--json` the demo prints
/// each step as `{"step": "lattice …"}` followed by that command's own JSON.
macro_rules! say {
    ($json:expr, $($arg:tt)*) => {
        if !$json {
            outln!($($arg)*);
        }
    };
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
    if global.json {
        outln!("{}", serde_json::json!({ "step": line }));
    } else {
        outln!("\n$ {line}");
    }
    let mut full = vec!["lattice".to_string()];
    if global.json {
        full.push("--json".into());
    }
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

pub fn run(global: &Global) -> Result<ExitCode> {
    let json = global.json;
    let (dir, _) = crate::config::data_dir(global.data_dir.as_deref())?;
    say!(json, "Lattice demo: a single node in {}", dir.display());
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
    demo_mesh(json)?;
    say!(
        json,
        "\nNext: `lattice general --help` lists the chat methods (from the plugin's descriptor);\n\
         `lattice daemon` in one terminal and `lattice watch` in another shows ops live;\n\
         `lattice store create --type path/to/plugin.wasm` runs your own CRDT (docs/plugin-guide.md)."
    );
    Ok(ExitCode::SUCCESS)
}

/// Part two of the demo: three daemons on this machine (throwaway data
/// dirs), joined by invite, writing concurrently, converging.
fn demo_mesh(json: bool) -> Result<()> {
    say!(
        json,
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
            json,
            ..Global::default()
        };
        say!(
            json,
            "(node1, node2, node3 each run `lattice daemon`; commands below go to them through their sockets)"
        );
        step(&g(0), &["mesh", "create"])?;
        step(
            &g(0),
            &["store", "create", "--type", "chat", "--name", "general"],
        )?;
        for i in 1..3 {
            let token = match clients[0].call(Request::MeshInvite {
                expires_secs: 600,
                mesh: None,
            })? {
                Response::Invite { token, .. } => token,
                Response::Error { message, .. } => bail!(message),
                other => bail!("unexpected reply {other:?}"),
            };
            say!(
                json,
                "\n[node1] $ lattice mesh invite\n{}…",
                &token[..40.min(token.len())]
            );
            say!(json, "[node{}]", i + 1);
            step(&g(i), &["mesh", "join", &token])?;
        }
        for (i, who) in ["node1", "node2", "node3"].iter().enumerate() {
            say!(json, "[{who}]");
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
        if json {
            let nodes: Vec<_> = digests
                .iter()
                .enumerate()
                .map(|(i, (n, d))| {
                    serde_json::json!({ "node": format!("node{}", i + 1), "store": "general", "entries": n.to_string(), "state_digest": d })
                })
                .collect();
            outln!("{}", serde_json::json!({ "converged": nodes }));
        }
        say!(json, "\nconverged (gossip + sync):");
        for (i, (n, d)) in digests.iter().enumerate() {
            say!(
                json,
                "  node{}  general: {n} entries, state digest {}",
                i + 1,
                &d[..32]
            );
        }
        say!(json, "[node3]");
        step(&g(2), &["general", "messages"])?;
        Ok(())
    })();
    for mut d in daemons {
        let _ = d.kill();
        let _ = d.wait();
    }
    result
}
