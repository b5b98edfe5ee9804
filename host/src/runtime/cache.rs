//! On-disk cache of compiled plugin artifacts.
//!
//! Compiling a component takes 100–200 ms; loading a precompiled artifact
//! takes well under a millisecond. Artifacts are machine code that wasmtime
//! maps and runs without validation (`Component::deserialize` is `unsafe`),
//! so only files this module wrote are ever loaded, and each carries a
//! blake3 checksum of its bytes that is verified first: a truncated or
//! bit-flipped file is deleted and the plugin recompiled, never executed.
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
}

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
        std::fs::create_dir_all(&dir)?;
        Ok(CompileCache {
            dir,
            fingerprint: hex(&engine_fingerprint(engine)[..16]),
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
        let Some(artifact) = verify(&bytes) else {
            tracing::warn!(path = %path.display(), "cached plugin artifact is corrupt (checksum mismatch); recompiling");
            let _ = std::fs::remove_file(&path);
            return Err(());
        };
        // SAFETY: `artifact` is a file this cache wrote (its checksum
        // matches), produced by `Component::serialize` on an engine with the
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
                if let Err(e) = store_atomically(&path, &artifact) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write plugin compile cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize compiled plugin"),
        }
    }
}

/// `artifact ‖ blake3(artifact)` → `Some(artifact)` if the checksum matches.
fn verify(file: &[u8]) -> Option<&[u8]> {
    if file.len() < 32 {
        return None;
    }
    let (artifact, sum) = file.split_at(file.len() - 32);
    (blake3::hash(artifact).as_bytes() == sum).then_some(artifact)
}

/// Write to a temporary file in the same directory, then rename: readers
/// never see a half-written artifact, and concurrent writers race harmlessly.
fn store_atomically(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
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
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(artifact)?;
        f.write_all(blake3::hash(artifact).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_detects_corruption() {
        let mut file = b"some artifact bytes".to_vec();
        file.extend_from_slice(blake3::hash(b"some artifact bytes").as_bytes());
        assert_eq!(verify(&file), Some(&b"some artifact bytes"[..]));
        file[3] ^= 1;
        assert_eq!(verify(&file), None);
        assert_eq!(verify(b"short"), None);
    }
}
