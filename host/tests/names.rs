//! Node names: `Node::set_node_name` writes one root op per mesh and is
//! remembered for meshes to come; the root rules keep every node's name its
//! own, whatever a member's modified client signs.

mod support;

use lattice_host::node::{Node, NodeError, RootRuleError, author_label};
use lattice_kernel::{Outcome, ValidationError};
use support::*;

fn refused(o: &Outcome, want: &RootRuleError) {
    match o {
        Outcome::Rejected(ValidationError::Refused(msg)) => assert_eq!(msg, &want.to_string()),
        other => panic!("expected refusal `{want}`, got {other:?}"),
    }
}

/// The name `of` has in `on`'s copy of `mesh`'s members, if `of` is listed.
fn name_in(on: &Node, mesh: &lattice_kernel::StoreId, of: &Node) -> Option<String> {
    let me = of.author().to_hex();
    on.members(mesh)
        .expect("members")
        .into_iter()
        .find(|(pk, _, _)| *pk == me)
        .map(|(_, name, _)| name)
}

#[test]
fn renames_in_every_mesh_and_replicates() {
    let (f, mut others, rec) = mesh(1);
    let b = others.pop().unwrap();
    let own = b.mesh_create(Some("own")).expect("b founds a mesh");
    let r = b.set_node_name("bob").expect("rename");
    assert_eq!(r.name, "bob");
    let mut renamed: Vec<String> = r.meshes.iter().map(|m| m.name.clone()).collect();
    renamed.sort();
    assert_eq!(renamed, ["m", "own"]);
    assert!(r.failed.is_empty());
    assert_eq!(name_in(&b, &rec.root, &b).as_deref(), Some("bob"));
    assert_eq!(name_in(&b, &own.root, &b).as_deref(), Some("bob"));

    // Not at the founder until the entry travels; then there too.
    assert_ne!(name_in(&f, &rec.root, &b).as_deref(), Some("bob"));
    carry(&b, &f);
    assert_eq!(name_in(&f, &rec.root, &b).as_deref(), Some("bob"));
    let short = &b.author().to_hex()[..8];
    assert_eq!(
        f.author_label(&rec.root, &b.author()).unwrap(),
        format!("bob ({short})")
    );

    // A second rename wins over the first (last writer wins) everywhere.
    b.set_node_name("robert").expect("rename again");
    carry(&b, &f);
    assert_eq!(name_in(&f, &rec.root, &b).as_deref(), Some("robert"));

    // The name is a setting of the node: it survives a restart.
    let dir = b.dir;
    drop(b.node);
    let b = Node::open(dir.path()).expect("reopen");
    assert_eq!(b.node_name().unwrap(), "robert");
}

#[test]
fn meshes_created_later_get_the_saved_name() {
    let n = node();
    let r = n.set_node_name("carol").expect("rename with no mesh");
    assert!(r.meshes.is_empty() && r.failed.is_empty());
    let m = n.mesh_create(Some("later")).expect("mesh create");
    assert_eq!(name_in(&n, &m.root, &n).as_deref(), Some("carol"));
}

#[test]
fn names_the_root_rules_refuse_are_refused_before_writing() {
    let (f, _, rec) = mesh(0);
    f.set_node_name("fred").expect("rename");
    let entries = f.kernel().status(&rec.root).unwrap().entries;
    let long = "x".repeat(65);
    for bad in [
        "",
        long.as_str(),
        "evil\u{1b}[2J",
        "tab\there",
        "two\nlines",
        "nul\0",
    ] {
        match f.set_node_name(bad) {
            Err(e @ NodeError::BadNodeName(_)) => {
                let msg = e.to_string();
                assert!(msg.starts_with("invalid node name"), "{msg}");
                assert!(msg.contains("use 1 to 64 characters, no control characters"));
                assert!(
                    !msg.chars().any(char::is_control),
                    "raw control char: {msg:?}"
                );
            }
            other => panic!(
                "{bad:?}: expected BadNodeName, got {:?}",
                other.map(|r| r.name)
            ),
        }
    }
    assert_eq!(
        f.node_name().unwrap(),
        "fred",
        "a refused name is not saved"
    );
    assert_eq!(
        f.kernel().status(&rec.root).unwrap().entries,
        entries,
        "nor written"
    );
    // The limit counts characters, not bytes.
    f.set_node_name(&"é".repeat(64))
        .expect("64 two-byte characters");
}

/// A member's modified client signs name writes for other nodes: every
/// replica refuses them, and the names stay their owners'.
#[test]
fn forged_names_of_other_nodes_are_refused() {
    let (f, mut others, rec) = mesh(2);
    let c = others.pop().unwrap();
    let b = others.pop().unwrap();
    b.set_node_name("bob").unwrap();
    f.set_node_name("fred").unwrap();
    carry(&b, &f);
    carry(&f, &b);
    carry(&f, &c);
    assert_eq!(name_in(&c, &rec.root, &b).as_deref(), Some("bob"));

    let forge = Forger {
        id: c.kernel().identity(),
    };
    let (b_hex, f_hex, me) = (
        b.author().to_hex(),
        f.author().to_hex(),
        c.author().to_hex(),
    );
    let b_key = format!("/nodes/{b_hex}/name");
    let f_key = format!("/nodes/{f_hex}/name");
    let my_key = format!("/nodes/{me}/name");
    let (bk, fk, mk) = (b_key.as_str(), f_key.as_str(), my_key.as_str());
    type Puts<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(Puts, RootRuleError)> = vec![
        (
            vec![(bk, &b"bob (admin)"[..])],
            RootRuleError::NotOwner(b_key.clone()),
        ),
        (
            vec![(fk, &b"founder"[..])],
            RootRuleError::NotOwner(f_key.clone()),
        ),
        // Its own name alongside: the whole op is refused, not half of it.
        (
            vec![(mk, &b"carl"[..]), (bk, &b"carl too"[..])],
            RootRuleError::NotOwner(b_key.clone()),
        ),
        // Its own key, but a name no client would send.
        (
            vec![(mk, &b"\x1b]0;pwned\x07"[..])],
            RootRuleError::BadValue {
                key: my_key.clone(),
                why: "use 1 to 64 characters, no control characters",
            },
        ),
    ];
    for (puts, want) in &cases {
        for on in [&f, &b, &c] {
            let e = forge.root_op(on, rec.root, puts);
            refused(&submit(on, &e), want);
        }
    }
    for on in [&f, &b, &c] {
        assert_eq!(name_in(on, &rec.root, &b).as_deref(), Some("bob"));
        assert_eq!(name_in(on, &rec.root, &f).as_deref(), Some("fred"));
        assert_eq!(name_in(on, &rec.root, &c).as_deref(), Some(""));
    }
    // The same client naming itself is fine: the refusals above were about
    // whose key it wrote.
    let e = forge.root_op(&f, rec.root, &[(mk, b"carl")]);
    assert!(matches!(submit(&f, &e), Outcome::Committed));
    assert_eq!(name_in(&f, &rec.root, &c).as_deref(), Some("carl"));
}

#[test]
fn a_mesh_that_revoked_this_node_is_reported_and_the_others_renamed() {
    let (f, mut others, rec) = mesh(1);
    let b = others.pop().unwrap();
    let own = b.mesh_create(Some("own")).unwrap();
    f.revoke(&b.author().to_hex(), None).expect("revoke");
    carry(&f, &b);
    let before = b.kernel().status(&rec.root).unwrap().entries;
    let r = b.set_node_name("bob").expect("rename");
    assert_eq!(
        r.meshes.iter().map(|m| m.root).collect::<Vec<_>>(),
        [own.root]
    );
    assert_eq!(r.failed.len(), 1);
    let (m, why) = &r.failed[0];
    assert_eq!(m.root, rec.root);
    assert!(matches!(why, NodeError::NotMember(n) if n == "m"), "{why}");
    assert_eq!(
        b.kernel().status(&rec.root).unwrap().entries,
        before,
        "nothing logged in the mesh that revoked us"
    );
    assert_eq!(name_in(&b, &own.root, &b).as_deref(), Some("bob"));
}

#[test]
fn author_labels() {
    let (f, _, rec) = mesh(0);
    let stranger = node();
    let id = stranger.author();
    let short = id.to_hex()[..8].to_string();
    assert_eq!(f.author_label(&rec.root, &id).unwrap(), short);
    assert_eq!(author_label(None, &id), short);
    assert_eq!(author_label(Some(""), &id), short);
    assert_eq!(author_label(Some("ann"), &id), format!("ann ({short})"));
    f.set_node_name("fred").unwrap();
    assert_eq!(
        f.author_label(&rec.root, &f.author()).unwrap(),
        format!("fred ({})", &f.author().to_hex()[..8])
    );
}
