//! A complete `lattice:plugin@0.1.0` plugin written with std. Linking std on
//! wasm32-wasip2 pulls in wasi-libc, whose `wasi:cli`/`wasi:io`/`wasi:clocks`
//! imports the host must refuse at load (naming the import). Reading the
//! clock in `prepare` is exactly the nondeterminism that rule prevents.

// The generated `scan` import wrappers take many raw canonical-ABI arguments.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "state-machine",
});

struct Probe;

impl Guest for Probe {
    fn describe() -> Info {
        Info {
            name: "wasi-probe".to_string(),
            version: "0.0.0".to_string(),
            descriptor_set: Vec::new(),
            service: "none".to_string(),
            op_type: "none".to_string(),
            state_version: 1,
        }
    }

    fn prepare(_ctx: Context, _method: String, _request: Vec<u8>) -> Result<Vec<u8>, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(now.to_le_bytes().to_vec())
    }

    fn apply(op: Op) {
        println!("applying op of {} bytes", op.payload.len());
    }

    fn query(_method: String, _request: Vec<u8>) -> Result<Vec<u8>, String> {
        Err(format!("{:?}", std::env::args().collect::<Vec<_>>()))
    }
}

export!(Probe);
