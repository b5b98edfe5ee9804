//! A member forks a chat room with a modified client (two posts signed at
//! one seq, one shown to each of two nodes) and honest members keep posting
//! on top of whichever branch they saw. Once entries and fork proofs have
//! been carried everywhere, in any order, every node holds the same log and
//! computes the same state with the real chat plugin: the forker's posts
//! from the fork on are void, everyone else's stand.

mod support;

use lattice_host::node::{Node, StoreType};
use lattice_kernel::{SignedEntry, StoreId};
use support::*;

fn chat_store(n: &Node, name: &str) -> StoreId {
    n.store_create(Some(name), StoreType::Builtin("chat"))
        .expect("create")
        .id
}

/// What sync's hello does with proofs: each node imports the others'.
fn exchange_proofs(nodes: &[&Node], store: &StoreId) {
    for from in nodes {
        for f in from.kernel().forks(store).expect("forks") {
            for to in nodes {
                to.kernel()
                    .add_fork_evidence(f.entries.clone())
                    .expect("a valid proof");
            }
        }
    }
}

fn texts(n: &Node, store: &str) -> Vec<String> {
    let h = n.resolve(store, Some(store)).expect("store");
    let req = request(&h, "Messages", &[]);
    let out = n.call(&h, "Messages", &req).expect("messages");
    // The reply's texts, in order: enough to compare nodes by.
    String::from_utf8_lossy(&out.reply)
        .split(|c: char| c.is_control())
        .filter(|s| s.starts_with("post:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_forked_room_converges_on_every_node_in_any_delivery_order() {
    for order in 0..3 {
        let (f, mut others, _) = mesh(2);
        let (x, b) = (others.remove(0), others.remove(0));
        let room = chat_store(&f, "general");
        carry(&f, &x);
        carry(&f, &b);
        post(&x, "general", "post: before the fork");
        carry(&x, &f);
        carry(&x, &b);
        // X's modified client: a post that F sees, and another entry at the
        // same seq that B sees.
        let to_f = post(&x, "general", "post: to F");
        let forge = Forger {
            id: x.kernel().identity(),
        };
        // Same op, same position, a later HLC: a distinct entry even when
        // both are signed in one millisecond.
        let to_b: SignedEntry = forge.next_above(&b, room, to_f.payload.clone(), to_f.hlc);
        assert_eq!((to_b.seq, to_b.author), (to_f.seq, to_f.author));
        assert_ne!(to_b.id, to_f.id);
        deliver(&f, vec![to_f.clone()]);
        deliver(&b, vec![to_b.clone()]);
        // Honest posts on top of each branch.
        post(&f, "general", "post: F after the fork");
        post(&b, "general", "post: B after the fork");
        // Carry everything everywhere, in an order that differs per round.
        let nodes: Vec<&Node> = match order {
            0 => vec![&f, &b, &x],
            1 => vec![&b, &x, &f],
            _ => vec![&x, &f, &b],
        };
        for _ in 0..2 {
            for from in &nodes {
                for to in &nodes {
                    if !std::ptr::eq(*from, *to) {
                        carry(from, to);
                    }
                }
            }
            exchange_proofs(&nodes, &room);
        }
        let d: Vec<_> = nodes.iter().map(|n| digests(n, &room)).collect();
        assert!(
            d.iter().all(|x| x.0 == d[0].0 && x.1 == d[0].1),
            "order {order}: log and state digests differ: {d:?}"
        );
        for n in &nodes {
            assert_eq!(
                n.kernel().fork_seq(&room, &x.author()).unwrap(),
                Some(to_f.seq),
                "order {order}"
            );
            let t = texts(n, "general");
            assert!(t.iter().any(|m| m.contains("before the fork")), "{t:?}");
            assert!(t.iter().any(|m| m.contains("F after the fork")), "{t:?}");
            assert!(t.iter().any(|m| m.contains("B after the fork")), "{t:?}");
            assert!(!t.iter().any(|m| m.contains("to F")), "void: {t:?}");
        }
    }
}

/// A member cannot fill a store with proofs about made-up authors: a proof
/// is held to the rule entries are, and the store refuses strangers.
#[test]
fn proofs_about_strangers_are_refused() {
    let (f, _, _) = mesh(0);
    let room = chat_store(&f, "general");
    let stranger = lattice_kernel::Identity::generate();
    let forge = Forger { id: &stranger };
    let a = forge.next(&f, room, b"one".to_vec());
    let b = forge.next(&f, room, b"two".to_vec());
    assert_eq!((a.seq, b.seq), (1, 1));
    let err = f
        .kernel()
        .add_fork_evidence(vec![a, b])
        .expect_err("a stranger's fork is not this store's business");
    assert!(
        matches!(
            err,
            lattice_kernel::KernelError::ForkEvidence(lattice_kernel::ForkEvidenceError::Refused(
                _
            ))
        ),
        "{err}"
    );
    assert!(f.kernel().forks(&room).unwrap().is_empty());
}
