//! A node with many stores: creation time, `Node::open` time and RSS, then a
//! write to the first and the last store. Release, by hand:
//!
//! ```text
//! cargo run --release -p lattice-host --example stores_scale -- 1000 10000
//! ```
//!
//! Stores are created with a non-durable kernel (creation speed is not the
//! point); the reopen and the final writes use the default durable one.

use std::path::Path;
use std::time::Instant;

use lattice_host::node::{Node, StoreType};
use lattice_kernel::KernelConfig;
use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};

/// Resident set size of this process, from /proc (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn put(node: &Node, h: &lattice_host::node::StoreHandle, key: &str) {
    let desc = h
        .plugin
        .info()
        .method("Put")
        .expect("kv has Put")
        .input
        .clone();
    let mut m = DynamicMessage::new(desc);
    m.set_field_by_name("key", Value::String(key.into()));
    m.set_field_by_name("value", Value::Bytes(b"v".to_vec().into()));
    node.call(h, "Put", &m.encode_to_vec()).expect("put");
}

/// Create `n` kv stores in a fresh node at `dir`; then measure the open in a
/// child process, so its RSS is the open's alone.
fn run(n: usize, dir: &Path) {
    let t = Instant::now();
    {
        let fast = KernelConfig {
            durable: false,
            ..KernelConfig::default()
        };
        let node = Node::open_with(dir, fast).expect("open");
        node.mesh_create(Some("scale")).expect("mesh");
        for i in 0..n {
            node.store_create(Some(&format!("s{i:05}")), StoreType::Builtin("kv"))
                .expect("store create");
        }
    }
    let created = t.elapsed();
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .arg("--open")
        .arg(dir)
        .arg(n.to_string())
        .output()
        .expect("run the open child");
    assert!(
        out.status.success(),
        "open child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{n:>6} stores: create {:>7.2} s | {}",
        created.as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// The child: open the node, check every store is there, write to the
/// first and the last, report.
fn open(dir: &Path, n: usize) {
    let rss_start = rss_mib();
    let t = Instant::now();
    let node = Node::open(dir).expect("reopen");
    let opened = t.elapsed();
    let rss_open = rss_mib();
    let mesh = node.current_mesh().expect("mesh").root;
    let mut stores = node.stores_of(&mesh);
    stores.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(stores.len(), n, "every store reopened");
    let t = Instant::now();
    put(&node, &stores[0], "first");
    put(&node, &stores[n - 1], "last");
    let writes = t.elapsed();
    println!(
        "open {:>8.1} ms | RSS at start {:>5.1} MiB, after open {:>6.1} MiB, after 2 writes {:>6.1} MiB | 2 durable writes {:>6.2} ms",
        opened.as_secs_f64() * 1e3,
        rss_start,
        rss_open,
        rss_mib(),
        writes.as_secs_f64() * 1e3,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--open") {
        let n = args.get(2).and_then(|a| a.parse().ok()).expect("count");
        return open(Path::new(&args[1]), n);
    }
    let counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() {
        vec![1000, 10_000]
    } else {
        counts
    };
    for n in counts {
        let dir = tempfile::tempdir().expect("tempdir");
        run(n, dir.path());
    }
}
