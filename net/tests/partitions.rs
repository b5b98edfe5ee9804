//! Three nodes on loopback, seeded random partitions: each round some pairs
//! can talk and others cannot, every node writes, and a hostile author
//! forks its chain (one branch to each side). After the partitions heal,
//! every node holds the same fork verdict and the same applied entries
//! (every honest entry, the forker's below its fork), whatever the seed; the
//! seed is printed so a failure replays. The whole logs meet too (one log
//! digest): the forker's void branches travel by reconciliation over ids.

mod common;

use common::*;
use lattice_kernel::{EntryId, Identity, StoreId};

/// xorshift64*: a seeded sequence, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn run(seed: u64) {
    let nodes = [
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
    ];
    let s = StoreId::random();
    mesh(&[&nodes[0], &nodes[1], &nodes[2]], s);
    let mut rng = Rng(seed | 1);
    let x = Identity::generate();
    // X's chain as each node was shown it: (seq, prev) per node.
    let mut x_tip = [(0u64, EntryId::ZERO); 3];
    let mut x_tag = 0u64;
    for round in 0..8 {
        // Writes: every node, a few entries.
        for n in &nodes {
            n.write(s, 1 + rng.below(4) as usize, 24);
        }
        // The hostile author: one entry shown to one node, or (from round
        // 3) a different entry at the same position shown to each node.
        let to = rng.below(3) as usize;
        let targets: Vec<usize> = if round >= 3 { vec![0, 1, 2] } else { vec![to] };
        let base = x_tip[to];
        for t in targets {
            x_tag += 1;
            let e = forged(&x, s, base.0 + 1, base.1, &x_tag.to_be_bytes());
            let r = nodes[t].kernel.ingest(&[e.to_wire()]).unwrap();
            if !r.committed.is_empty() {
                x_tip[t] = (e.seq, e.id);
            }
        }
        // A random partition: each pair talks this round with p = 1/2.
        for (i, j) in [(0usize, 1usize), (0, 2), (1, 2)] {
            if rng.below(2) == 0 {
                let _ = nodes[i].net.sync_store(nodes[j].id(), s).await;
            }
        }
    }
    // Heal: everyone talks to everyone until nothing moves.
    for _ in 0..4 {
        for (i, j) in [(0usize, 1usize), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)] {
            nodes[i].net.sync_store(nodes[j].id(), s).await.unwrap();
        }
    }
    let verdict: Vec<_> = nodes
        .iter()
        .map(|n| n.kernel.fork_seq(&s, &x.author()).unwrap())
        .collect();
    assert!(
        verdict.iter().all(|v| *v == verdict[0]) && verdict[0].is_some(),
        "seed {seed}: fork verdicts differ: {verdict:?}"
    );
    let logs: Vec<_> = nodes
        .iter()
        .map(|n| n.kernel.status(&s).unwrap().digest)
        .collect();
    assert!(
        logs.iter().all(|d| *d == logs[0]),
        "seed {seed}: log digests differ: {logs:?}"
    );
    // What each node applies: its logged entries that are not void.
    let applied: Vec<Vec<EntryId>> = nodes
        .iter()
        .map(|n| {
            let mut ids: Vec<EntryId> = n
                .kernel
                .log(&s, 0, usize::MAX)
                .unwrap()
                .into_iter()
                .filter(|e| !n.kernel.is_void(&s, &e.id).unwrap())
                .map(|e| e.id)
                .collect();
            ids.sort();
            ids
        })
        .collect();
    assert!(
        applied.iter().all(|a| *a == applied[0]),
        "seed {seed}: applied sets differ: {:?}",
        applied.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // Every honest entry reached every node (none waits as an orphan).
    let honest: usize = nodes
        .iter()
        .map(|n| {
            n.kernel
                .log(&s, 0, usize::MAX)
                .unwrap()
                .iter()
                .filter(|e| e.author == n.id())
                .count()
        })
        .sum();
    let everywhere = applied[0]
        .iter()
        .filter(|id| {
            nodes.iter().any(|n| {
                n.kernel
                    .get(id)
                    .unwrap()
                    .is_some_and(|e| e.author != x.author())
            })
        })
        .count();
    assert_eq!(
        everywhere, honest,
        "seed {seed}: an honest entry is missing somewhere"
    );
    for n in nodes {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_partitions_with_a_forker_heal_to_one_state() {
    init_tracing();
    for seed in [1u64, 7, 42, 1234, 0x5eed] {
        eprintln!("seed {seed}");
        run(seed).await;
    }
}
