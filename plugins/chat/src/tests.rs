use super::*;
use lattice_plugin_sdk::Context;
use lattice_plugin_sdk::prost::Message as _;
use lattice_plugin_sdk::testing::{self, commit, ctx, id, op};

fn payload(a: Action) -> Vec<u8> {
    ChatOp { action: Some(a) }.encode_to_vec()
}

fn post_op(text: &str) -> Vec<u8> {
    payload(Action::Post(PostRequest {
        text: text.into(),
        ..Default::default()
    }))
}

fn reply_op(to: u8, text: &str) -> Vec<u8> {
    payload(Action::Reply(ReplyRequest {
        to: id(to),
        text: text.into(),
        ..Default::default()
    }))
}

fn react_op(to: u8, emoji: &str) -> Vec<u8> {
    payload(Action::React(ReactRequest {
        to: id(to),
        emoji: emoji.into(),
    }))
}

fn unreact_op(to: u8, emoji: &str, tags: &[u8]) -> Vec<u8> {
    payload(Action::Unreact(UnreactOp {
        to: id(to),
        emoji: emoji.into(),
        tags: tags.iter().map(|t| id(*t)).collect(),
    }))
}

fn edit_op(msg: u8, text: &str) -> Vec<u8> {
    payload(Action::Edit(EditRequest {
        id: id(msg),
        text: text.into(),
    }))
}

fn messages(after: u64, limit: u32) -> Vec<Message> {
    testing::query::<Chat, MessagesReply>("Messages", &MessagesRequest { after, limit })
        .unwrap()
        .messages
}

fn texts(ms: &[Message]) -> Vec<&str> {
    ms.iter().map(|m| m.text.as_str()).collect()
}

fn message(n: u8) -> Message {
    testing::query::<Chat, ThreadReply>("Thread", &ThreadRequest { id: id(n) })
        .unwrap()
        .root
        .unwrap()
}

fn post(c: &Context, n: u8, deps: &[u8], text: &str) -> Result<Op, String> {
    let req = PostRequest {
        text: text.into(),
        ..Default::default()
    };
    commit::<Chat>(c, n, deps, "Post", &req)
}

#[test]
fn messages_threads_and_members_converge_in_every_order() {
    let ops = [
        op(1, 1, 10, &[], post_op("hello")),
        op(2, 2, 10, &[], post_op("hi")),
        op(3, 2, 20, &[1], reply_op(1, "welcome")),
        op(4, 3, 30, &[3], reply_op(3, "deeper")),
        op(
            5,
            3,
            15,
            &[],
            payload(Action::SetTopic(SetTopicRequest { text: "t1".into() })),
        ),
        op(
            6,
            1,
            16,
            &[],
            payload(Action::SetTopic(SetTopicRequest { text: "t2".into() })),
        ),
    ];
    testing::assert_converges::<Chat>(&Default::default(), &ops);
    assert!(testing::orders_checked() > 10);

    assert_eq!(texts(&messages(0, 0)), ["hello", "hi", "welcome", "deeper"]);
    assert_eq!(texts(&messages(10, 0)), ["welcome", "deeper"]);
    assert_eq!(texts(&messages(0, 2)), ["welcome", "deeper"]);

    let t: ThreadReply = testing::query::<Chat, _>("Thread", &ThreadRequest { id: id(1) }).unwrap();
    assert_eq!(t.root.as_ref().unwrap().replies, 1);
    assert_eq!(texts(&t.replies), ["welcome", "deeper"]);
    assert_eq!(t.replies[1].reply_to, id(3));

    let topic: TopicReply = testing::query::<Chat, _>("Topic", &TopicRequest {}).unwrap();
    assert_eq!((topic.text.as_str(), topic.hlc), ("t2", 16));

    let m: MembersReply = testing::query::<Chat, _>("Members", &MembersRequest {}).unwrap();
    let seen: Vec<_> = m
        .members
        .iter()
        .map(|m| (m.author.clone(), m.last_seen_hlc))
        .collect();
    assert_eq!(seen, [(id(1), 16), (id(2), 20), (id(3), 30)]);
}

#[test]
fn reactions_are_an_add_wins_set() {
    // 10: A reacts; 11: B reacts; 12: A takes back what it saw (10);
    // 13: A reacts again concurrently with 12 (a forged or second-device
    // op): the add wins. B's reaction is untouched by A's unreact.
    let ops = [
        op(1, 1, 1, &[], post_op("m")),
        op(10, 1, 10, &[1], react_op(1, "👍")),
        op(11, 2, 11, &[1], react_op(1, "👍")),
        op(12, 1, 12, &[10], unreact_op(1, "👍", &[10])),
        op(13, 1, 12, &[10], react_op(1, "👍")),
        op(14, 2, 13, &[1], react_op(1, "🎉")),
    ];
    testing::assert_converges::<Chat>(&Default::default(), &ops);
    let r = message(1).reactions;
    assert_eq!(r.len(), 2);
    // Grouped by emoji in byte order (🎉 is U+1F389, 👍 U+1F44D).
    assert_eq!(
        (r[0].emoji.as_str(), r[0].authors.clone()),
        ("🎉", vec![id(2)])
    );
    assert_eq!(
        (r[1].emoji.as_str(), r[1].authors.clone()),
        ("👍", vec![id(1), id(2)])
    );

    // Without the concurrent re-react, A's reaction is gone.
    testing::assert_converges::<Chat>(&Default::default(), &ops[..4]);
    assert_eq!(message(1).reactions[0].authors, [id(2)]);
}

#[test]
fn unreact_names_the_tags_it_saw_and_only_its_own() {
    testing::reset();
    let (a, b) = (ctx(1, 1), ctx(2, 2));
    post(&a, 1, &[], "m").unwrap();
    let react = ReactRequest {
        to: id(1),
        emoji: "👍".into(),
    };
    commit::<Chat>(&ctx(1, 3), 2, &[1], "React", &react).unwrap();
    commit::<Chat>(&b, 3, &[1], "React", &react).unwrap();
    let un = UnreactRequest {
        to: id(1),
        emoji: "👍".into(),
    };
    let op = commit::<Chat>(&ctx(1, 4), 4, &[2, 3], "Unreact", &un).unwrap();
    let Some(Action::Unreact(u)) = op.decode::<ChatOp>().unwrap().action else {
        panic!("not an unreact");
    };
    assert_eq!(u.tags, [id(2)]);
    assert_eq!(message(1).reactions[0].authors, [id(2)]);
    let err = commit::<Chat>(&ctx(1, 5), 5, &[4], "Unreact", &un).unwrap_err();
    assert!(err.contains("not reacted"), "{err}");
}

#[test]
fn concurrent_edits_pick_the_highest_clock_and_others_edits_are_ignored() {
    let ops = [
        op(1, 1, 10, &[], post_op("original")),
        op(2, 1, 20, &[1], edit_op(1, "edit at 20")),
        op(3, 1, 30, &[1], edit_op(1, "edit at 30")),
        // Forged: not the author's message. Stored, never shown.
        op(4, 2, 40, &[1], edit_op(1, "hijacked")),
    ];
    testing::assert_converges::<Chat>(&Default::default(), &ops);
    let m = message(1);
    assert_eq!(m.text, "edit at 30");
    assert!(m.edited);

    // An edit that arrives before its message (no causal link): same state.
    let early = [
        op(5, 3, 5, &[], edit_op(6, "new")),
        op(6, 3, 4, &[], post_op("old")),
    ];
    testing::assert_converges::<Chat>(&Default::default(), &early);
    assert_eq!(message(6).text, "new");
}

#[test]
fn only_the_author_may_edit_or_delete_and_delete_wins() {
    testing::reset();
    let a = ctx(1, 10);
    post(&a, 1, &[], "mine").unwrap();
    let edit = EditRequest {
        id: id(1),
        text: "changed".into(),
    };
    let err = commit::<Chat>(&ctx(2, 11), 2, &[1], "Edit", &edit).unwrap_err();
    assert!(err.contains("your own"), "{err}");
    let del = DeleteRequest { id: id(1) };
    assert!(commit::<Chat>(&ctx(2, 11), 2, &[1], "Delete", &del).is_err());

    commit::<Chat>(&ctx(1, 12), 3, &[1], "Edit", &edit).unwrap();
    assert_eq!(message(1).text, "changed");
    // A forged delete by someone else does nothing visible.
    testing::apply::<Chat>(&op(9, 2, 13, &[3], payload(Action::Delete(del.clone()))));
    assert!(!message(1).deleted);

    commit::<Chat>(&ctx(1, 14), 4, &[3], "Delete", &del).unwrap();
    let m = message(1);
    assert!(m.deleted && m.text.is_empty());
    // A late edit (concurrent with the delete) cannot resurrect it.
    testing::apply::<Chat>(&op(5, 1, 15, &[3], edit_op(1, "back")));
    assert!(message(1).text.is_empty());
    let err = commit::<Chat>(&ctx(1, 16), 6, &[4], "Edit", &edit).unwrap_err();
    assert!(err.contains("deleted"), "{err}");
    let reply = ReplyRequest {
        to: id(1),
        text: "x".into(),
        ..Default::default()
    };
    assert!(commit::<Chat>(&ctx(2, 16), 7, &[4], "Reply", &reply).is_err());
}

#[test]
fn moderation_normalizes_strips_and_filters_in_prepare_only() {
    testing::reset();
    let a = ctx(1, 10);
    // NFC: e + COMBINING ACUTE -> é; control characters dropped; trimmed.
    let op = post(&a, 1, &[], "  cafe\u{301}\u{7}\u{1b}[31m ok\nline2 \t").unwrap();
    assert_eq!(message(1).text, "café[31m ok\nline2");
    assert_eq!(
        op.decode::<ChatOp>().unwrap().action,
        Some(Action::Post(PostRequest {
            text: "café[31m ok\nline2".into(),
            nick: String::new(),
        }))
    );
    for empty in ["", "   ", "\u{7}\u{0}"] {
        assert_eq!(post(&a, 2, &[], empty).unwrap_err(), "the text is empty");
    }

    let set = SetFilterRequest {
        words: vec!["Darn".into(), " HECK ".into(), "".into()],
    };
    commit::<Chat>(&ctx(2, 11), 3, &[1], "SetFilter", &set).unwrap();
    let f: FilterReply = testing::query::<Chat, _>("Filter", &FilterRequest {}).unwrap();
    assert_eq!(f.words, ["darn", "heck"]);
    let err = post(&a, 4, &[3], "oh DARN!").unwrap_err();
    assert_eq!(err, "`darn` is not allowed in this room");
    assert!(post(&a, 4, &[3], "what the heck").is_err());
    // Whole words only.
    post(&a, 4, &[3], "darned hecking").unwrap();
    let edit = EditRequest {
        id: id(1),
        text: "heck".into(),
    };
    assert!(commit::<Chat>(&ctx(1, 12), 5, &[4], "Edit", &edit).is_err());
    let topic = SetTopicRequest {
        text: "heck".into(),
    };
    assert!(commit::<Chat>(&ctx(1, 12), 5, &[4], "SetTopic", &topic).is_err());
    // The filter never rewrites what was logged before it.
    let old = messages(0, 0);
    assert_eq!(texts(&old), ["café[31m ok\nline2", "darned hecking"]);

    let bad = SetFilterRequest {
        words: vec!["two words".into()],
    };
    assert!(commit::<Chat>(&ctx(1, 13), 6, &[4], "SetFilter", &bad).is_err());
}

#[test]
fn reacting_to_a_missing_message_or_with_a_bad_emoji_is_refused() {
    testing::reset();
    post(&ctx(1, 1), 1, &[], "m").unwrap();
    for (to, emoji) in [(id(9), "👍"), (id(1), ""), (id(1), "a b"), (id(1), "\u{0}")] {
        let r = ReactRequest {
            to,
            emoji: emoji.into(),
        };
        assert!(
            testing::prepare::<Chat>(&ctx(1, 2), "React", &r).is_err(),
            "{emoji:?}"
        );
    }
    // Forged ops with malformed fields are no-ops (apart from membership).
    let before = testing::snapshot();
    testing::apply::<Chat>(&op(2, 1, 1, &[], react_op(1, "a\0b")));
    testing::apply::<Chat>(&op(
        3,
        1,
        1,
        &[],
        payload(Action::Delete(DeleteRequest { id: vec![1] })),
    ));
    testing::apply::<Chat>(&op(4, 1, 1, &[], vec![0xff, 0xfe]));
    assert_eq!(testing::snapshot(), before);
}

#[test]
fn a_nick_is_kept_with_its_message_and_a_forging_one_is_refused() {
    testing::reset();
    let a = ctx(1, 10);
    let req = PostRequest {
        text: "hi".into(),
        nick: " alice[m] ".into(),
    };
    commit::<Chat>(&a, 1, &[], "Post", &req).unwrap();
    assert_eq!(message(1).nick, "alice[m]");
    for bad in [
        "bob!x@y",
        "a b",
        "\u{202e}evil",
        "x\u{1b}[1m",
        ":srv",
        &"n".repeat(33),
    ] {
        let req = PostRequest {
            text: "hi".into(),
            nick: bad.into(),
        };
        assert!(
            commit::<Chat>(&a, 2, &[1], "Post", &req).is_err(),
            "{bad:?} was accepted"
        );
    }
}
