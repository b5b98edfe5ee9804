//! Compiled plugin artifacts are native code run without validation: only
//! artifacts carrying this node's MAC are ever loaded. Planted files (any
//! content, including another plugin's genuine machine code with a correct
//! unkeyed checksum, or a MAC under another node's key) are recompiled over.

#[path = "runtime_common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{COUNTER, EVIL, wasm};
use lattice_host::runtime::{CacheOutcome, Runtime, RuntimeConfig};

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// The artifact file of the plugin `bytes` (its name starts with the wasm hash).
fn artifact(cache: &Path, bytes: &[u8]) -> PathBuf {
    let prefix = blake3::hash(bytes).to_hex().to_string();
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "cwasm")
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&prefix)
        })
        .expect("artifact written")
}

#[test]
fn planted_artifacts_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (counter, evil) = (wasm(COUNTER), wasm(EVIL));
    let rt = runtime(&cache);
    assert_eq!(
        rt.load(&counter).unwrap().cache_outcome(),
        CacheOutcome::Miss
    );
    assert_eq!(rt.load(&evil).unwrap().cache_outcome(), CacheOutcome::Miss);
    let counter_name = rt.load(&counter).unwrap().info().name.clone();
    let evil_file = std::fs::read(artifact(&cache, &evil)).unwrap();
    let evil_code = &evil_file[..evil_file.len() - 32];
    let target = artifact(&cache, &counter);

    // 1. Someone who can drop a file in cache/ but cannot read the key:
    //    genuine machine code (another plugin's), with the unkeyed checksum
    //    the old cache format accepted.
    let mut planted = evil_code.to_vec();
    planted.extend_from_slice(blake3::hash(evil_code).as_bytes());
    std::fs::write(&target, &planted).unwrap();
    let p = runtime(&cache).load(&counter).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Recovered);
    assert_eq!(p.info().name, counter_name, "the planted code ran");

    // 2. A MAC under another node's key (an artifact copied from elsewhere).
    let other = tempfile::tempdir().unwrap();
    let other_cache = other.path().join("cache");
    runtime(&other_cache).load(&evil).unwrap();
    let foreign = std::fs::read(artifact(&other_cache, &evil)).unwrap();
    std::fs::write(&target, &foreign).unwrap();
    let p = runtime(&cache).load(&counter).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Recovered);
    assert_eq!(p.info().name, counter_name);

    // 3. This node's own, genuine artifact of another plugin, renamed: the
    //    MAC covers the name too.
    std::fs::write(&target, &evil_file).unwrap();
    let p = runtime(&cache).load(&counter).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Recovered);
    assert_eq!(p.info().name, counter_name);

    // The rewritten artifact is this node's again: a hit.
    assert_eq!(
        runtime(&cache).load(&counter).unwrap().cache_outcome(),
        CacheOutcome::Hit
    );

    // A new key (the old one lost) invalidates every artifact: recompiled.
    std::fs::remove_file(cache.join("mac.key")).unwrap();
    assert_eq!(
        runtime(&cache).load(&counter).unwrap().cache_outcome(),
        CacheOutcome::Recovered
    );
}
