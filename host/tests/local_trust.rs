//! Local trust, ssh style: a data dir, key or log that is not the user's own
//! or that others can write is refused; everything the node creates is
//! private. Runs as any user; the ownership cases need root (CI runs as
//! root) to hand a file to another uid.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use lattice_host::node::{Node, NodeError, StoreType, TrustError};

const COUNTER: &str = env!("LATTICE_PLUGIN_COUNTER_WASM");
const OTHER_UID: u32 = 4242;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Hands `p` to another uid; false when this process may not (not root).
fn give_away(p: &Path) -> bool {
    match std::os::unix::fs::chown(p, Some(OTHER_UID), None) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("not root: ownership cases covered by the unit test only");
            false
        }
        Err(e) => panic!("chown: {e}"),
    }
}

fn take_back(p: &Path) {
    std::os::unix::fs::chown(p, Some(current_uid()), None).unwrap();
}

fn current_uid() -> u32 {
    // The owner of a file this process just created is its effective uid.
    let d = tempfile::tempdir().unwrap();
    std::fs::metadata(d.path()).unwrap().uid()
}

fn open_err(dir: &Path) -> NodeError {
    match Node::open(dir) {
        Ok(_) => panic!("{} was accepted", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn a_new_node_creates_everything_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/nested/node");
    {
        let node = Node::open(&dir).unwrap();
        node.mesh_create(None).unwrap();
        let wasm = std::fs::read(COUNTER).unwrap();
        node.store_create(Some("c"), StoreType::Wasm(&wasm))
            .unwrap();
    }
    assert_eq!(mode(&dir), 0o700);
    for sub in ["plugins", "cache"] {
        assert_eq!(mode(&dir.join(sub)), 0o700, "{sub}");
    }
    for f in ["node.key", "lattice.redb", "cache/mac.key"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    let mut files = 0;
    for sub in ["plugins", "cache"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            files += 1;
        }
    }
    assert!(files >= 3, "a blob, a key and artifacts: {files}");
    // And it opens again.
    Node::open(&dir).unwrap();
}

#[test]
fn loose_or_foreign_data_dirs_and_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    Node::open(&dir).unwrap().mesh_create(None).unwrap();
    Node::open(&dir).unwrap();

    for (path, loose, writable) in [
        (dir.clone(), 0o777, true),
        (dir.clone(), 0o770, true),
        (dir.join("node.key"), 0o644, false),
        (dir.join("node.key"), 0o620, true),
        (dir.join("lattice.redb"), 0o666, true),
        (dir.join("cache"), 0o777, true),
        (dir.join("plugins"), 0o757, true),
    ] {
        let before = mode(&path);
        chmod(&path, loose);
        let err = open_err(&dir);
        match (&err, writable) {
            (NodeError::Trust(TrustError::Writable { path: p, mode }), true)
            | (NodeError::Trust(TrustError::Readable { path: p, mode }), false) => {
                assert_eq!(p, &path);
                assert_eq!(*mode, loose);
            }
            _ => panic!("{}: {loose:o}: unexpected {err}", path.display()),
        }
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        chmod(&path, before);
        Node::open(&dir).unwrap();
    }

    for path in [dir.clone(), dir.join("node.key"), dir.join("lattice.redb")] {
        if !give_away(&path) {
            return;
        }
        let err = open_err(&dir);
        assert!(
            matches!(&err, NodeError::Trust(TrustError::NotOwned { owner: OTHER_UID, path: p, .. }) if *p == path),
            "{err}"
        );
        take_back(&path);
        Node::open(&dir).unwrap();
    }
}

#[test]
fn the_compile_cache_key_must_be_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    Node::open(&dir).unwrap().mesh_create(None).unwrap();
    let key = dir.join("cache/mac.key");
    chmod(&key, 0o644);
    let err = open_err(&dir).to_string();
    assert!(err.contains("mac.key") && err.contains("refusing"), "{err}");
    chmod(&key, 0o600);
    Node::open(&dir).unwrap();
    if give_away(&key) {
        let err = open_err(&dir).to_string();
        assert!(err.contains("owner uid 4242"), "{err}");
        take_back(&key);
        Node::open(&dir).unwrap();
    }
}
