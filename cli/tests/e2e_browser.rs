//! The browser UI in a real headless Chromium, driven over WebDriver
//! (chromedriver's W3C HTTP API, spoken with `lattice_web::client`): log in
//! with the one-time URL `token create --login` prints, post in a room,
//! see messages posted from the CLI and from another node of the mesh
//! arrive live (no reload), and see hostile text (`<img onerror>`,
//! `<script>`) shown as text, inert.
//! Without `chromium` and `chromedriver` on the PATH it prints that it
//! skipped (CI installs both, see .ci/run).

#[path = "support/mod.rs"]
mod common;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::*;
use lattice_web::client;
use serde_json::{Value, json};

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = client::request(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            b"",
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(chromium: &std::path::Path, chromedriver: &std::path::Path) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        eventually(30, "chromedriver to answer", || {
            client::request(addr, "GET", "/status", &[], b"")
                .is_ok_and(|r| r.json()["value"]["ready"] == true)
        });
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let r = client::request(
            addr,
            "POST",
            "/session",
            &[("Content-Type", "application/json")],
            caps.to_string().as_bytes(),
        )
        .unwrap();
        let v = r.json();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {}", r.text()))
            .to_string();
        Driver {
            child,
            addr,
            session,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let r = client::request(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
        let v = r.json();
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {}", r.text());
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` in the page and returns its result.
    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    fn element(&self, css: &str) -> String {
        let mut id = None;
        eventually(20, &format!("element {css}"), || {
            let r = client::request(
                self.addr,
                "POST",
                &format!("/session/{}/element", self.session),
                &[("Content-Type", "application/json")],
                json!({ "using": "css selector", "value": css })
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
            id = r.json()["value"]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v.as_str())
                .map(str::to_string);
            r.status == 200 && id.is_some()
        });
        id.unwrap()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        );
    }

    /// Clicks the element `css` selects now: the page re-renders a room on
    /// every live op, so a WebDriver element reference may go stale
    /// between finding it and clicking it; a query in the page cannot.
    fn click(&self, css: &str) {
        eventually(20, &format!("clickable {css}"), || {
            self.cmd(
                "POST",
                "/execute/sync",
                json!({
                    "script": "const e = document.querySelector(arguments[0]); if (!e) return false; e.click(); return true;",
                    "args": [css],
                }),
            ) == true
        });
    }

    /// The texts of the room's messages as the page shows them.
    fn messages(&self) -> Vec<String> {
        let v = self.js(
            "return [...document.querySelectorAll('#messages .text')].map(e => e.textContent);",
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[test]
fn the_browser_ui_logs_in_posts_and_renders_hostile_text_inert() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        eprintln!(
            "e2e_browser: skipped: chromium and chromedriver are not on the PATH (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let n = Node::new();
    n.setup();
    let daemon = n.daemon_with(&["--http", "127.0.0.1:0"]);
    let addr = daemon
        .ready
        .split_whitespace()
        .skip_while(|w| *w != "http")
        .nth(1)
        .unwrap()
        .to_string();
    let url = n
        .run(&["token", "create", "--login"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(url.starts_with(&format!("http://{addr}/#login=")), "{url}");
    let d = Driver::start(&chromium, &chromedriver);

    // Log in with the one-time URL: the page trades the code for a session
    // token and drops it from the address bar.
    d.goto(&url);
    d.element("#rooms button[data-store]");
    let href = d.js("return location.href;");
    assert!(!href.as_str().unwrap().contains("login="), "{href}");
    assert_eq!(
        d.js("return document.getElementById('room-title').textContent;"),
        "#general"
    );

    // Post from the browser; the CLI sees it.
    d.type_into("#composer-text", "hello from the browser");
    d.click("#composer-send");
    eventually(20, "the browser's post in the CLI", || {
        texts(&n).contains(&"hello from the browser".to_string())
    });
    eventually(10, "the browser's post on its page", || {
        d.messages().contains(&"hello from the browser".to_string())
    });

    // Hostile text posted elsewhere (the CLI) arrives live and stays text.
    d.js("window.__marker = 'no reload'; return null;");
    let hostile = [
        "<img src=x onerror=\"document.title='pwned-img'\">",
        "<script>document.title='pwned-script'</script>",
    ];
    for h in hostile {
        n.run(&["general", "post", "--text", h]).ok();
    }
    let start = Instant::now();
    eventually(20, "the CLI's posts on the page, live", || {
        let m = d.messages();
        hostile.iter().all(|h| m.contains(&h.to_string()))
    });
    eprintln!("live delivery to the page took {:?}", start.elapsed());
    assert_eq!(
        d.js("return window.__marker;"),
        "no reload",
        "the page reloaded"
    );
    let probe = d.js(
        "return { imgs: document.querySelectorAll('#messages img, #messages script, #messages b').length,
                  title: document.title };",
    );
    assert_eq!(probe["imgs"], 0, "hostile markup became elements: {probe}");
    assert_eq!(probe["title"], "Lattice", "a hostile script ran: {probe}");
    // A message posted on another node of the mesh arrives live as well.
    let other = Node::new();
    let _other_daemon = other.daemon();
    join(&n, &other);
    eventually(30, "the room on the other node", || {
        other
            .run(&["general", "post", "--text", "from the other node"])
            .code
            == 0
    });
    eventually(30, "the other node's post on the page, live", || {
        d.messages().contains(&"from the other node".to_string())
    });
    assert_eq!(
        d.js("return window.__marker;"),
        "no reload",
        "the page reloaded"
    );

    // A reaction and a thread reply from the page reach the CLI.
    d.click("#messages li:first-child .tools button:nth-of-type(1)");
    d.click("#messages li:first-child .thread-open");
    d.element("#thread-root .msg");
    d.type_into("#composer-text", "a reply in the thread");
    d.click("#composer-send");
    eventually(20, "the thread reply and the reaction in the CLI", || {
        let out = n
            .run(&["general", "messages", "--limit", "100", "--json"])
            .stdout;
        out.contains("a reply in the thread") && out.contains("👍")
    });

    // The store browser builds a form from the kv plugin's descriptor.
    d.click("#nav-stores");
    eventually(20, "the settings store in the list", || {
        d.js("const b = [...document.querySelectorAll('#store-list button')].find(b => b.textContent.startsWith('settings ')); if (!b) return false; b.click(); return true;") == true
    });
    d.element("form.method[data-method='Put'] input[name='key']");
    d.type_into("form.method[data-method='Put'] input[name='key']", "color");
    d.type_into(
        "form.method[data-method='Put'] input[name='value']",
        "Ymx1ZQ==",
    );
    d.click("form.method[data-method='Put'] button");
    eventually(20, "the form's put in the CLI", || {
        n.run(&["settings", "get", "--key", "color"])
            .stdout
            .contains("blue")
    });

    // The mesh view shows both members, the other node as a peer, and the
    // stores' digests.
    d.click("#nav-mesh");
    eventually(20, "members, peers and digests", || {
        let v = d.js("return [document.querySelectorAll('#members tr').length, document.querySelectorAll('#peers tr').length, document.querySelectorAll('#digests tr').length];");
        v[0].as_u64() == Some(2) && v[1].as_u64() >= Some(1) && v[2].as_u64() == Some(2)
    });
    drop(d);
    drop(daemon);
}
