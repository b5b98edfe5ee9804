//! The daemon's local API as its socket reads it: a byte stream cut into
//! frames by the server's `read_frame` (4-byte length, 32 MiB limit), each
//! frame's JSON decoded as a `RequestFrame` exactly as the server does (and
//! as a `ResponseFrame`, the client's side). Never panics; a frame that
//! decodes re-encodes to JSON that decodes again and encodes identically
//! (binary fields as hex, 64-bit integers as strings, nothing lost).
#![no_main]

use std::io::Cursor;

use lattice_fuzz::seed;
use lattice_host::api::server::read_frame;
use lattice_host::api::{Hex, Request, RequestFrame, Response, ResponseFrame};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let json = serde_json::to_vec(&v).expect("a decoded frame encodes");
    let again: T = serde_json::from_slice(&json).expect("an encoded frame decodes");
    assert_eq!(
        serde_json::to_vec(&again).unwrap(),
        json,
        "encoding is stable after one pass"
    );
}

fn seeds() -> Vec<Vec<u8>> {
    let reqs = [
        Request::NodeStatus,
        Request::MeshCreate {
            name: Some("home".into()),
        },
        Request::StoreCreate {
            name: Some("notes".into()),
            kind: None,
            wasm: Some(Hex(b"\0asm\x0d\0\x01\0".to_vec())),
        },
        Request::StoreLog {
            store: Some("notes".into()),
            from: u64::MAX,
            limit: 20,
        },
        Request::Call {
            selector: "kv".into(),
            explicit: None,
            method: "Put".into(),
            request: Hex(vec![10, 1, 97, 18, 1, 98]),
        },
        Request::MeshInvite {
            expires_secs: 600,
            mesh: None,
        },
        Request::StoreSync {
            store: None,
            progress: true,
        },
    ];
    let mut stream = Vec::new();
    let mut out = Vec::new();
    for (id, req) in reqs.into_iter().enumerate() {
        let body = serde_json::to_vec(&RequestFrame { id: id as u64, req }).unwrap();
        let mut one = (body.len() as u32).to_be_bytes().to_vec();
        one.extend_from_slice(&body);
        stream.extend_from_slice(&one);
        out.push(one);
    }
    out.push(stream);
    let resp = serde_json::to_vec(&ResponseFrame {
        id: 9,
        resp: Response::error("no such store"),
    })
    .unwrap();
    let mut one = (resp.len() as u32).to_be_bytes().to_vec();
    one.extend_from_slice(&resp);
    out.push(one);
    out
}

fuzz_target!(init: seed(seeds), |data: &[u8]| {
    let mut r = Cursor::new(data);
    while let Ok(Some(body)) = read_frame(&mut r) {
        round_trip::<RequestFrame>(&body);
        round_trip::<ResponseFrame>(&body);
    }
});
