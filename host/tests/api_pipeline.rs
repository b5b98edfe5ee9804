//! The daemon socket under pipelining: commands are prepared by a few
//! workers and answered by a finisher once durable. Every request must get
//! exactly one answer with its own id, errors included, and every answered
//! post must be in the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lattice_host::api::client::Client;
use lattice_host::api::server::Server;
use lattice_host::api::{Hex, Request, Response};
use lattice_host::node::Node;

/// A chat `PostRequest { text }` (field 1, length-delimited).
fn post_body(text: &str) -> Vec<u8> {
    let mut v = vec![0x0a, text.len() as u8];
    v.extend_from_slice(text.as_bytes());
    v
}

fn call(method: &str, request: Vec<u8>) -> Request {
    Request::Call {
        selector: "room".into(),
        explicit: None,
        method: method.into(),
        request: Hex(request),
    }
}

#[test]
fn pipelined_commands_each_get_one_durable_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let sock = dir.path().join("api.sock");
    let server = Server::bind(node.clone(), &sock).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let serving = std::thread::spawn(move || server.serve(s));
    let mut c = Client::connect(&sock).unwrap();
    assert!(!matches!(
        c.call(Request::MeshCreate { name: None }).unwrap(),
        Response::Error { .. }
    ));
    assert!(!matches!(
        c.call(Request::StoreCreate {
            name: Some("room".into()),
            kind: Some("chat".into()),
            wasm: None,
        })
        .unwrap(),
        Response::Error { .. }
    ));

    // Posts, with a query and a failing command mixed in.
    const POSTS: usize = 600;
    let mut sent = BTreeMap::new();
    for i in 0..POSTS {
        let id = c.send(call("Post", post_body(&format!("m{i}")))).unwrap();
        sent.insert(id, "post");
        if i % 100 == 50 {
            sent.insert(c.send(call("Topic", vec![])).unwrap(), "query");
            sent.insert(c.send(call("NoSuchMethod", vec![])).unwrap(), "bad");
        }
    }
    let mut seqs = Vec::new();
    let mut answered = BTreeMap::new();
    while answered.len() < sent.len() {
        let f = c.recv().unwrap();
        let kind = sent
            .get(&f.id)
            .copied()
            .expect("an answer to a request we sent");
        assert!(
            answered.insert(f.id, ()).is_none(),
            "request {} answered twice",
            f.id
        );
        match (kind, f.resp) {
            ("post", Response::Called { entry: Some(e), .. }) => seqs.push(e.seq),
            ("query", Response::Called { entry: None, .. }) => {}
            ("bad", Response::Error { message, .. }) => {
                assert!(message.contains("NoSuchMethod"), "{message}")
            }
            (k, r) => panic!("{k} got {r:?}"),
        }
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), POSTS, "every post logged once");

    // What was answered is durable: reopen and count.
    stop.store(true, Ordering::Relaxed);
    drop(c);
    serving.join().unwrap();
    drop(node);
    let node = Node::open(dir.path()).unwrap();
    let h = node.resolve("room", None).unwrap();
    let status = node.store_status(&h).unwrap();
    assert_eq!(status.log.entries as usize, POSTS);
}
