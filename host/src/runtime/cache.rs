//! On-disk cache of compiled plugin artifacts.
//!
//! Compiling a component takes 100–200 ms; loading a precompiled artifact
//! takes well under a millisecond. Artifacts are machine code that wasmtime
//! maps and runs without validation (`Component::deserialize` is `unsafe`),
//! so only files this node wrote are ever loaded: each ends with a keyed
//! blake3 MAC over its name and bytes, under a node-local secret
//! (`mac.key`, 32 random bytes, 0600, created on first use). A file planted
//! by anyone who cannot read that key, or a truncated or bit-flipped one,
//! fails the MAC and is deleted and recompiled, never executed. The cache
//! dir must be the user's own and not writable by others, and so must the
//! key, or the cache is refused.
//!
//! File name: `{blake3(wasm)}-{engine compatibility hash}.cwasm`, so a wasm
//! change, a wasmtime upgrade or an engine config change all miss the cache.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A `Hasher` feeding blake3, giving a stable 32-byte key for wasmtime's
/// `precompile_compatibility_hash` (std's `DefaultHasher` is not promised to
/// be stable across Rust releases).
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let h = self.0.finalize();
        u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    }
}

/// A stable fingerprint of the engine's compilation settings.
pub(crate) fn engine_fingerprint(engine: &Engine) -> [u8; 32] {
    let mut h = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    *h.0.finalize().as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) struct CompileCache {
    dir: PathBuf,
    fingerprint: String,
    key: [u8; 32],
}

/// The MAC key's file name inside the cache dir.
const KEY_FILE: &str = "mac.key";

/// How a component was obtained, for logs, metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache configured: compiled.
    Disabled,
    /// Loaded from a cached artifact.
    Hit,
    /// Not cached yet: compiled and stored.
    Miss,
    /// A cached artifact was corrupt: deleted, recompiled and stored again.
    Recovered,
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> std::io::Result<Self> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&dir)?;
        trust::check(&dir, 0o022)?;
        let key = trust::load_or_create_key(&dir.join(KEY_FILE))?;
        Ok(CompileCache {
            dir,
            fingerprint: hex(&engine_fingerprint(engine)[..16]),
            key,
        })
    }

    /// Path of the artifact for a wasm blob with hash `wasm_hash`.
    pub(crate) fn path_for(&self, wasm_hash: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hex(wasm_hash), self.fingerprint))
    }

    /// The cached component for `wasm_hash`: `Ok(Some)` on a hit, `Ok(None)`
    /// if absent, `Err(())` if a file was there but unusable (it has been
    /// deleted; the caller recompiles and stores again).
    pub(crate) fn lookup(
        &self,
        engine: &Engine,
        wasm_hash: &[u8; 32],
    ) -> Result<Option<Component>, ()> {
        let path = self.path_for(wasm_hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read cached plugin artifact; recompiling");
                let _ = std::fs::remove_file(&path);
                return Err(());
            }
        };
        let Some(artifact) = verify(&self.key, &path, &bytes) else {
            tracing::warn!(path = %path.display(), "cached plugin artifact fails its MAC (corrupt, or not written by this node); recompiling");
            let _ = std::fs::remove_file(&path);
            return Err(());
        };
        // SAFETY: `artifact` is a file this cache wrote (its MAC under the
        // node-local key matches), produced by `Component::serialize` on an engine with the
        // same compatibility fingerprint (it is part of the file name).
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached plugin artifact rejected by wasmtime; recompiling");
                let _ = std::fs::remove_file(&path);
                Err(())
            }
        }
    }

    /// Store a compiled (and already validated) component. Failure costs
    /// speed, not correctness, so it is logged, not returned.
    pub(crate) fn store(&self, component: &Component, wasm_hash: &[u8; 32]) {
        let path = self.path_for(wasm_hash);
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = store_atomically(&path, &artifact, &self.key) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write plugin compile cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize compiled plugin"),
        }
    }
}

/// The MAC of an artifact stored at `path`: keyed blake3 over the file name
/// (wasm hash and engine fingerprint) and the bytes, so an artifact is only
/// valid under the name it was written for.
fn mac(key: &[u8; 32], path: &Path, artifact: &[u8]) -> [u8; 32] {
    let name = path
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or_default();
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name);
    h.update(artifact);
    *h.finalize().as_bytes()
}

/// `artifact ‖ mac` → `Some(artifact)` if the MAC matches (constant time).
fn verify<'a>(key: &[u8; 32], path: &Path, file: &'a [u8]) -> Option<&'a [u8]> {
    if file.len() < 32 {
        return None;
    }
    let (artifact, tag) = file.split_at(file.len() - 32);
    let tag: [u8; 32] = tag.try_into().ok()?;
    (blake3::Hash::from(mac(key, path, artifact)) == blake3::Hash::from(tag)).then_some(artifact)
}

/// Write to a temporary file in the same directory, then rename: readers
/// never see a half-written artifact, and concurrent writers race harmlessly.
fn store_atomically(path: &Path, artifact: &[u8], key: &[u8; 32]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{seq}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = trust::create_private(&tmp)?;
        f.write_all(artifact)?;
        f.write_all(&mac(key, path, artifact))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Ownership and mode rules for the cache dir and its key (the runtime
/// knows nothing of the node's data dir, so it checks its own).
mod trust {
    use std::io::{Error, ErrorKind, Read, Write};
    use std::path::Path;

    #[cfg(unix)]
    fn euid() -> u32 {
        // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
        unsafe { libc::geteuid() }
    }

    /// `path` must be owned by this user with no bit of `forbidden` set.
    #[cfg(unix)]
    pub fn check(path: &Path, forbidden: u32) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        if m.uid() != euid() || m.mode() & forbidden != 0 {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{} (owner uid {}, mode {:o}) must be owned by uid {} and not accessible to others; refusing the plugin compile cache",
                    path.display(),
                    m.uid(),
                    m.mode() & 0o7777,
                    euid()
                ),
            ));
        }
        Ok(())
    }

    #[cfg(not(unix))]
    pub fn check(_path: &Path, _forbidden: u32) -> std::io::Result<()> {
        Ok(())
    }

    /// A new file, mode 0600, failing if one exists.
    pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        o.open(path)
    }

    fn read_key(path: &Path) -> std::io::Result<Option<[u8; 32]>> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        check(path, 0o077)?;
        let mut bytes = Vec::with_capacity(33);
        Read::take(&mut f, 33).read_to_end(&mut bytes)?;
        match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(k) => Ok(Some(k)),
            Err(_) => {
                tracing::warn!(path = %path.display(), "plugin cache key is corrupt; making a new one (artifacts will recompile)");
                std::fs::remove_file(path)?;
                Ok(None)
            }
        }
    }

    /// The node-local MAC key at `path`, created on first use. Written to a
    /// temporary file and hard-linked into place, so a concurrent process
    /// either wins (and both use its key) or loses; nobody reads half a key.
    pub fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
        if let Some(k) = read_key(path)? {
            return Ok(k);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::other(e.to_string()))?;
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            let mut f = create_private(&tmp)?;
            f.write_all(&key)?;
            f.sync_all()?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                Err(_) => std::fs::rename(&tmp, path),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        result?;
        read_key(path)?.ok_or_else(|| Error::other("plugin cache key vanished while being created"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_detects_corruption_foreign_keys_and_renames() {
        let key = [7u8; 32];
        let path = Path::new("/c/aa-ff.cwasm");
        let mut file = b"some artifact bytes".to_vec();
        file.extend_from_slice(&mac(&key, path, b"some artifact bytes"));
        assert_eq!(verify(&key, path, &file), Some(&b"some artifact bytes"[..]));
        // Another node's key, another name, the old unkeyed checksum.
        assert_eq!(verify(&[8u8; 32], path, &file), None);
        assert_eq!(verify(&key, Path::new("/c/bb-ff.cwasm"), &file), None);
        let mut plain = b"some artifact bytes".to_vec();
        plain.extend_from_slice(blake3::hash(b"some artifact bytes").as_bytes());
        assert_eq!(verify(&key, path, &plain), None);
        file[3] ^= 1;
        assert_eq!(verify(&key, path, &file), None);
        assert_eq!(verify(&key, path, b"short"), None);
    }
}
