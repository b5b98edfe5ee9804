//! The cheap first look at a plugin blob: is it a valid component, and are
//! its imports only `lattice:plugin` interfaces of one supported version?
//!
//! It runs before anything is compiled or stored, so a blob a peer or a user
//! hands us is refused with a typed [`LoadError`] for the price of a
//! validation pass (about a millisecond for a shipped plugin), not a
//! cranelift compile (100–200 ms). It is also what the `plugin_blob` fuzz
//! target drives, for the same reason.
//!
//! Screening is a necessary condition, never a sufficient one: it validates
//! with every wasm feature wasmparser knows, a superset of what the engine
//! enables, so it never refuses a blob the engine would take; the compile
//! and the import check on the compiled type ([`check_import_names`] again)
//! stay the final word.

use wasmparser::{
    ComponentTypeRef, Encoding, Parser, Payload, TypeBounds, Validator, WasmFeatures,
};

use super::error::LoadError;
use super::{SUPPORTED_API_VERSIONS, v0_1_0, v0_2_0};

/// Validates `wasm` as a component and checks its top-level imports; returns
/// the `lattice:plugin` version they name (the newest supported one for a
/// component that imports nothing).
pub fn screen(wasm: &[u8]) -> Result<&'static str, LoadError> {
    let invalid = |e: wasmparser::BinaryReaderError| LoadError::Invalid(e.to_string());
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(wasm)
        .map_err(invalid)?;
    let mut names = Vec::new();
    // Depth 1 is the blob itself; nested modules and components open their
    // own `Version` … `End` pair, and their imports are satisfied inside it.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(LoadError::Invalid(
                        "a core wasm module, not a component".into(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    // `(import "op" (type (eq …)))`: a name for a type the
                    // component defines itself (wit-component emits one per
                    // type its exports use). Nothing is asked of the host,
                    // and the engine does not list it among the imports.
                    if !matches!(import.ty, ComponentTypeRef::Type(TypeBounds::Eq(_))) {
                        names.push(import.name.name);
                    }
                }
            }
            _ => {}
        }
    }
    check_import_names(names)
}

/// Every import must be `lattice:plugin/<interface>@<version>` for one
/// supported version and an interface that version defines.
pub(crate) fn check_import_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<&'static str, LoadError> {
    let unsupported = |v: &str| LoadError::UnsupportedVersion {
        version: v.to_string(),
        supported: SUPPORTED_API_VERSIONS.join(", "),
    };
    let mut version: Option<&'static str> = None;
    for name in names {
        let forbidden = || LoadError::ForbiddenImport {
            name: name.to_string(),
        };
        let rest = name.strip_prefix("lattice:plugin/").ok_or_else(forbidden)?;
        let (_interface, v) = rest.split_once('@').ok_or_else(forbidden)?;
        let supported = SUPPORTED_API_VERSIONS.iter().copied().find(|s| *s == v);
        match (version, supported) {
            (Some(first), _) if first != v => {
                return Err(LoadError::MixedVersions {
                    first: first.to_string(),
                    second: v.to_string(),
                });
            }
            (_, None) => return Err(unsupported(v)),
            (_, Some(s)) => version = Some(s),
        }
        let allowed: &[&str] = match version {
            Some(v0_1_0::VERSION) => &[v0_1_0::TYPES_IMPORT, v0_1_0::STATE_IMPORT],
            Some(v0_2_0::VERSION) => &[v0_2_0::TYPES_IMPORT, v0_2_0::STATE_IMPORT],
            _ => &[],
        };
        if !allowed.contains(&name) {
            return Err(forbidden());
        }
    }
    Ok(version.unwrap_or(SUPPORTED_API_VERSIONS[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::builtin::BUILTIN;

    #[test]
    fn shipped_plugins_pass_and_hostile_blobs_get_typed_refusals() {
        let mut plugins: Vec<(&str, Vec<u8>)> =
            BUILTIN.iter().map(|(n, w)| (*n, w.to_vec())).collect();
        for path in [
            crate::artifacts::COUNTER,
            crate::artifacts::EVIL,
            crate::artifacts::PARTIAL,
        ] {
            plugins.push((path, std::fs::read(path).unwrap()));
        }
        for (name, wasm) in &plugins {
            if let Err(e) = screen(wasm) {
                panic!("{name}: {e}");
            }
        }
        let wasi = std::fs::read(crate::artifacts::WASI_IMPORT).unwrap();
        assert!(
            matches!(screen(&wasi), Err(LoadError::ForbiddenImport { name }) if name.starts_with("wasi:")),
        );
        let core = b"\0asm\x01\0\0\0";
        assert!(
            matches!(screen(core), Err(LoadError::Invalid(m)) if m.contains("core wasm module"))
        );
        assert!(matches!(screen(b"not wasm"), Err(LoadError::Invalid(_))));
        // A component that imports nothing gets the newest version.
        assert_eq!(
            screen(b"\0asm\x0d\0\x01\0").unwrap(),
            SUPPORTED_API_VERSIONS[0]
        );
    }

    #[test]
    fn import_names_follow_one_supported_version() {
        let ok = ["lattice:plugin/types@0.1.0", "lattice:plugin/state@0.1.0"];
        assert_eq!(check_import_names(ok).unwrap(), "0.1.0");
        let mixed = ["lattice:plugin/types@0.1.0", "lattice:plugin/state@0.2.0"];
        assert!(matches!(
            check_import_names(mixed),
            Err(LoadError::MixedVersions { .. })
        ));
        assert!(matches!(
            check_import_names(["lattice:plugin/state@9.9.9"]),
            Err(LoadError::UnsupportedVersion { .. })
        ));
        for bad in [
            "lattice:plugin/clock@0.2.0",
            "lattice:plugin/state",
            "wasi:io/streams@0.2.0",
        ] {
            assert!(
                matches!(
                    check_import_names([bad]),
                    Err(LoadError::ForbiddenImport { .. })
                ),
                "{bad}"
            );
        }
    }
}
