//! The gateway over real sockets on loopback and real nodes (kernel, redb,
//! the shipped chat plugin): what IRC users see, what the room keeps, and
//! what hostile clients and hostile peers get.

#[path = "../../host/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lattice_host::node::{Node, StoreType};
use lattice_irc::{Config, Gateway};
use lattice_kernel::Identity;
use prost_reflect::Value;
use support::{Forger, TestNode, deliver};

/// A plain IRC client: writes lines, reads lines with a deadline.
struct Client {
    rd: BufReader<TcpStream>,
    wr: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Client {
            rd: BufReader::new(s.try_clone().unwrap()),
            wr: s,
        }
    }

    fn register(addr: SocketAddr, nick: &str) -> Client {
        let mut c = Client::connect(addr);
        c.send(&format!("NICK {nick}"));
        c.send("USER u 0 * :Real Name");
        c.expect(|l| l.contains(" 376 ") || l.contains(" 422 "));
        c
    }

    fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).expect("write");
    }

    /// The next line, or `None` after 10 s (or at EOF).
    fn line(&mut self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = Vec::new();
        while Instant::now() < deadline {
            match self.rd.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) if buf.ends_with(b"\n") => {
                    let s = String::from_utf8_lossy(&buf);
                    return Some(s.trim_end_matches(['\r', '\n']).to_string());
                }
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Reads until a line satisfies `f`; returns it and what came before.
    fn expect(&mut self, f: impl Fn(&str) -> bool) -> (String, Vec<String>) {
        let mut before = Vec::new();
        loop {
            match self.line() {
                Some(l) if f(&l) => return (l, before),
                Some(l) => before.push(l),
                None => panic!("no matching line; got {before:#?}"),
            }
        }
    }

    /// Everything up to the reply to a PING we send now.
    fn sync(&mut self) -> Vec<String> {
        self.send("PING sync");
        self.expect(|l| l.contains("PONG") && l.ends_with("sync")).1
    }
}

struct Setup {
    node: Arc<Node>,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn gateway(node: TestNode, config: Config) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let TestNode { dir, node } = node;
    let node = Arc::new(node);
    let gw = Gateway::start(
        node.clone(),
        rt.handle(),
        "127.0.0.1:0".parse().unwrap(),
        config,
    )
    .expect("gateway starts");
    Setup {
        node,
        _dir: dir,
        addr: gw.local_addr(),
        _rt: rt,
    }
}

fn single() -> Setup {
    let n = support::node();
    n.mesh_create(Some("m")).unwrap();
    gateway(n, Config::default())
}

fn texts_and_nicks(node: &Node, store: &str) -> Vec<(String, String)> {
    let h = node.resolve(store, Some(store)).expect("room exists");
    let req = support::request(&h, "Messages", &[("limit", Value::U32(100))]);
    let out = node.call(&h, "Messages", &req).unwrap();
    let reply = prost_reflect::DynamicMessage::decode(
        h.plugin.info().method("Messages").unwrap().output.clone(),
        out.reply.as_slice(),
    )
    .unwrap();
    let list = reply.get_field_by_name("messages").unwrap();
    list.as_list()
        .unwrap()
        .iter()
        .map(|m| {
            let m = m.as_message().unwrap();
            let s = |f: &str| {
                m.get_field_by_name(f)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            (s("text"), s("nick"))
        })
        .collect()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn two_users_talk_and_the_room_keeps_what_they_said() {
    let s = single();
    let mut alice = Client::register(s.addr, "alice");
    let mut bob = Client::register(s.addr, "bob");
    alice.send("JOIN #Lobby");
    let (_, burst) = alice.expect(|l| l.contains(" 366 "));
    assert!(
        burst
            .iter()
            .any(|l| l.contains(" 353 alice = #Lobby :@alice")),
        "{burst:?}"
    );
    bob.send("JOIN #lobby");
    bob.expect(|l| l.contains(" 366 "));
    alice.expect(|l| l.starts_with(":bob!u@127.0.0.1 JOIN #Lobby"));

    alice.send("PRIVMSG #lobby :hello bob");
    let (got, _) = bob.expect(|l| l.contains("PRIVMSG"));
    assert_eq!(got, ":alice!u@127.0.0.1 PRIVMSG #Lobby :hello bob");
    // The sender gets no echo, as on any ircd.
    assert!(alice.sync().iter().all(|l| !l.contains("PRIVMSG")));

    // The channel is the chat store `lobby`: the op is signed by the node
    // and carries the nick.
    eventually("the post is durable", || {
        texts_and_nicks(&s.node, "lobby") == [("hello bob".to_string(), "alice".to_string())]
    });
    alice.send("TOPIC #lobby :plans");
    bob.expect(|l| l.ends_with("TOPIC #Lobby :plans"));
    let h = s.node.resolve("lobby", Some("lobby")).unwrap();
    eventually("the topic is durable", || {
        let out = s.node.call(&h, "Topic", &[]).unwrap();
        String::from_utf8_lossy(&out.reply).contains("plans")
    });
}

#[test]
fn a_post_from_the_cli_reaches_joined_users_and_history_replays_on_join() {
    let s = single();
    let mut alice = Client::register(s.addr, "alice");
    alice.send("JOIN #general");
    alice.expect(|l| l.contains(" 366 "));
    // `lattice general post --text …` on this node: no nick, the member name.
    support::post(&s.node, "general", "from the cli");
    let (got, _) = alice.expect(|l| l.contains("PRIVMSG"));
    let me = s.node.author().to_hex();
    assert!(
        got.starts_with(":")
            && got.contains(&format!("!{}@m PRIVMSG #general :from the cli", &me[..8])),
        "{got}"
    );
    alice.send("PRIVMSG #general :second");
    alice.sync();
    // History is what the room holds: wait until the post is durable.
    eventually("the second post is durable", || {
        texts_and_nicks(&s.node, "general").len() == 2
    });
    let mut carol = Client::register(s.addr, "carol");
    carol.send("JOIN #general");
    carol.expect(|l| l.contains(" 366 "));
    let replay: Vec<String> = carol
        .sync()
        .into_iter()
        .filter(|l| l.contains("PRIVMSG"))
        .collect();
    assert_eq!(replay.len(), 2, "{replay:?}");
    assert!(replay[0].ends_with("UTC] from the cli"), "{replay:?}");
    assert!(
        replay[1].starts_with(":alice!") && replay[1].ends_with("UTC] second"),
        "{replay:?}"
    );
}

/// A member's modified client signs chat ops no `prepare` ever saw: a nick
/// and text with CR LF and an IRC command in them. The gateway of another
/// member renders one harmless line; it never sends the injected command.
#[test]
fn a_forged_op_cannot_inject_irc_lines_or_spoof_a_prefix() {
    let (founder, mut members, rec) = support::mesh(1);
    let member = members.remove(0);
    let room = founder
        .store_create(Some("general"), StoreType::Builtin("chat"))
        .unwrap();
    support::carry(&founder, &member);
    let s = gateway(member, Config::default());
    let mut alice = Client::register(s.addr, "alice");
    alice.send("JOIN #general");
    alice.expect(|l| l.contains(" 366 "));

    // ChatOp { post: PostRequest { text = 1, nick = 2 } }, hand-encoded.
    let post = |text: &str, nick: &str| {
        let mut inner = Vec::new();
        prost::encoding::string::encode(1, &text.to_string(), &mut inner);
        prost::encoding::string::encode(2, &nick.to_string(), &mut inner);
        let mut op = Vec::new();
        prost::encoding::bytes::encode(1, &inner, &mut op);
        op
    };
    let post = post("hi\r\nKILL alice :bye\nsecond", "evil!root@server\r\nQUIT");
    let founder_id = Identity::load_or_create(founder.dir.path()).unwrap();
    let forged = Forger { id: &founder_id }.next(&founder, room.id, post);
    support::submit(&founder, &forged);
    deliver(&s.node, vec![forged]);
    let (first, _) = alice.expect(|l| l.contains("PRIVMSG"));
    let (second, _) = alice.expect(|l| l.contains("PRIVMSG"));
    let prefix = first.split(' ').next().unwrap();
    assert!(
        !prefix.contains("root@server") && prefix.matches('!').count() == 1,
        "{first}"
    );
    assert!(first.ends_with("PRIVMSG #general :hi"), "{first}");
    assert!(
        second.ends_with("PRIVMSG #general :KILL alice :bye"),
        "{second}"
    );
    let (third, _) = alice.expect(|l| l.contains("PRIVMSG"));
    assert!(third.ends_with("PRIVMSG #general :second"), "{third}");
    // Every line alice got is a PRIVMSG from the forged prefix or our PONG.
    for l in alice.sync() {
        panic!("unexpected line {l}");
    }

    // A CTCP request (DCC) in the text, and alice's own nick: the text
    // arrives without \x01, the sender as `alice|<node>`, not as alice.
    let mut inner = Vec::new();
    prost::encoding::string::encode(
        1,
        &"\u{1}DCC SEND x 1.2.3.4 5000 9\u{1}".to_string(),
        &mut inner,
    );
    prost::encoding::string::encode(2, &"alice".to_string(), &mut inner);
    let mut op = Vec::new();
    prost::encoding::bytes::encode(1, &inner, &mut op);
    let forged = Forger { id: &founder_id }.next(&founder, room.id, op);
    support::submit(&founder, &forged);
    deliver(&s.node, vec![forged]);
    let (got, _) = alice.expect(|l| l.contains("PRIVMSG"));
    assert!(!got.contains('\u{1}'), "{got:?}");
    assert!(got.starts_with(":alice|"), "{got}");
    let _ = rec;
}

#[test]
fn bad_lines_get_numerics_and_the_connection_goes_on() {
    let s = single();
    let mut c = Client::register(s.addr, "alice");
    // Longer than 512 bytes: refused whole, with 417.
    c.send(&format!("PRIVMSG alice :{}", "x".repeat(600)));
    c.expect(|l| l.contains(" 417 "));
    // Not UTF-8.
    c.send_raw(b"PRIVMSG alice :caf\xe9\r\n");
    c.expect(|l| l.contains("FAIL PRIVMSG INVALID_UTF8"));
    // Unknown commands, missing parameters, commands before registration.
    c.send("FROB");
    c.expect(|l| l.contains(" 421 alice FROB "));
    c.send("JOIN");
    c.expect(|l| l.contains(" 461 alice JOIN "));
    let mut early = Client::connect(s.addr);
    early.send("JOIN #x");
    early.expect(|l| l.contains(" 451 "));
    // Still served.
    c.send("PRIVMSG alice :ok");
    c.expect(|l| l.ends_with("PRIVMSG alice :ok"));
}

#[test]
fn a_client_that_never_reads_is_dropped_and_others_are_served() {
    let s = {
        let n = support::node();
        n.mesh_create(Some("m")).unwrap();
        gateway(
            n,
            Config {
                send_queue: 64,
                flood_burst: 1e9,
                ..Config::default()
            },
        )
    };
    let mut talker = Client::register(s.addr, "talker");
    let mut deaf = Client::register(s.addr, "deaf");
    // `deaf` stops reading; `talker` writes to it until its queue and
    // socket buffers are full and the gateway drops it.
    // NOTICE: no error replies to fill the talker's own queue once deaf is gone.
    let line = format!("NOTICE deaf :{}\r\n", "y".repeat(450));
    let mut dropped = false;
    for _ in 0..200 {
        talker.send_raw(line.repeat(500).as_bytes());
        talker.send("WHOIS deaf");
        let (end, before) = talker.expect(|l| l.contains(" 318 "));
        if before
            .iter()
            .chain([&end])
            .any(|l| l.contains(" 401 talker deaf "))
        {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the deaf client was never dropped");
    talker.send("PRIVMSG talker :still here");
    talker.expect(|l| l.ends_with("PRIVMSG talker :still here"));
    // Its socket is closed, not left half-open: reading drains to EOF.
    deaf.rd
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    deaf.rd.read_to_end(&mut rest).expect("the socket ends");
}

#[test]
fn connections_past_the_limit_are_refused_with_an_error() {
    let n = support::node();
    n.mesh_create(Some("m")).unwrap();
    let s = gateway(
        n,
        Config {
            max_clients: 2,
            ..Config::default()
        },
    );
    let _a = Client::register(s.addr, "a");
    let _b = Client::register(s.addr, "b");
    let mut c = Client::connect(s.addr);
    let (l, _) = c.expect(|l| l.starts_with("ERROR"));
    assert!(l.contains("too many connections"), "{l}");
}

#[test]
fn a_flooding_client_is_paced_not_dropped() {
    let s = single();
    let mut c = Client::register(s.addr, "fast");
    let start = Instant::now();
    for i in 0..100 {
        c.send(&format!("PING n{i}"));
    }
    c.expect(|l| l.ends_with("n99"));
    // 64 lines of burst, then 16 a second: 36 paced lines take ≥ 2 s.
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_client_cannot_create_rooms_without_limit() {
    let s = single();
    let mut c = Client::register(s.addr, "maker");
    // Each new room is a store every member replicates: 5 at once, then
    // one per 20 s.
    c.send("JOIN #r1,#r2,#r3,#r4,#r5,#r6");
    let (refused, _) = c.expect(|l| l.contains(" 479 "));
    assert!(
        refused.contains("#r6") && refused.contains("Too many new rooms"),
        "{refused}"
    );
    // Joining rooms that exist costs nothing.
    c.send("PART #r1");
    c.send("JOIN #r1");
    c.expect(|l| l.contains(" 366 maker #r1 "));
}

#[test]
fn operator_rules_hold_against_a_hostile_member() {
    let s = {
        let n = support::node();
        n.mesh_create(Some("m")).unwrap();
        gateway(
            n,
            Config {
                opers: vec![("root".into(), "s3cret".into())],
                ..Config::default()
            },
        )
    };
    let mut op = Client::register(s.addr, "op");
    let mut member = Client::register(s.addr, "member");
    let mut banned = Client::register(s.addr, "banned");
    op.send("JOIN #c");
    op.expect(|l| l.contains(" 366 "));
    member.send("JOIN #c");
    member.expect(|l| l.contains(" 366 "));
    // A mask with a space would shift the parameters of the echoed MODE.
    op.send("MODE #c +b :x y");
    op.expect(|l| l.contains(" 696 op #c b * "));
    op.send("MODE #c +b banned");
    op.expect(|l| l.contains("MODE #c +b banned!*@*"));
    // A plain member's invite does not get a banned user past +b.
    member.send("INVITE banned #c");
    member.expect(|l| l.contains(" 341 "));
    banned.send("JOIN #c");
    banned.expect(|l| l.contains(" 474 banned #c "));
    // OPER: one answer for a wrong name and a wrong password; the third
    // failure closes the connection.
    banned.send("OPER nobody x");
    banned.expect(|l| l.contains(" 464 "));
    banned.send("OPER root wrong");
    banned.expect(|l| l.contains(" 464 "));
    banned.send("OPER root wrong");
    let (l, _) = banned.expect(|l| l.starts_with("ERROR"));
    assert!(l.contains("Too many failed OPER attempts"), "{l}");
}
