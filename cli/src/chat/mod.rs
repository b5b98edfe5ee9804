//! `lattice chat`: the interactive chat client, a terminal UI over the
//! current mesh's chat rooms.
//!
//! It is a client of the local API like every other command (daemon
//! socket, else the data dir opened in-process), so it sees what they see
//! and changes state only through the chat plugin's methods. Layout:
//! [`source`] (requests, live events) → [`state`] (what is shown) →
//! [`render`] (one frame); [`input`] turns keys into lines and lines into
//! commands, [`actions`] carries them out.

mod actions;
mod input;
mod render;
mod source;
mod state;
pub(crate) mod time;

/// The chat plugin's messages, generated from its `.proto`.
#[allow(dead_code)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/lattice.chat.rs"));
}

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use lattice_host::api::{Request, Response};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use actions::Outcome;
use input::Action;
use source::{Event, Source};
use state::App;

/// How often rooms and member names are re-read: root-store changes
/// (a room created or deleted elsewhere) are not among the watch events.
const MESH_REFRESH: Duration = Duration::from_secs(2);
/// Longest wait for a key before looking at live events again.
const TICK: Duration = Duration::from_millis(50);

/// The room to open when `args` (`chat …`, as the external subcommand
/// received them) ask for the interactive client: `chat`, `chat '#room'`,
/// `chat --room NAME`, with global flags anywhere. Anything else (`chat
/// post --text hi`, `chat --help`) is `None` and stays a plugin command.
pub fn wanted(args: &[String]) -> Option<Option<String>> {
    if args.first().map(String::as_str) != Some("chat") {
        return None;
    }
    let mut room = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data-dir" => {
                it.next()?;
            }
            "--room" | "--store" => room = Some(it.next()?.clone()),
            "--json" | "--verbose" => {}
            a if a.starts_with("--data-dir=") => {}
            a if a.starts_with("--room=") || a.starts_with("--store=") => {
                room = Some(a.split_once('=')?.1.to_string());
            }
            a if a.len() > 1 && a.starts_with('-') && a[1..].bytes().all(|b| b == b'v') => {}
            a if a.len() > 1 && a.starts_with('#') && room.is_none() => {
                room = Some(a[1..].to_string());
            }
            _ => return None,
        }
    }
    Some(room)
}

pub fn run(dir: &Path, room: Option<String>) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        usage!(
            "`lattice chat` is interactive and standard output is not a terminal; for scripts use `lattice chat messages` or `lattice chat post --text …`"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let mut source = Source::open(dir, stop.clone())?;
    let result = App::new(&mut source).and_then(|mut app| {
        let first = first_room(&mut app, &mut source, room.as_deref())?;
        if let Some(id) = first {
            app.switch(id);
        }
        app.load(&mut source)?;
        if source.serving {
            app.say("no daemon running: this client serves the node, so other commands still work");
        }
        ui(&mut app, &mut source, &stop)
    });
    source.close();
    result
}

/// `--room`/`#room` if given (which must exist), else the chat room
/// `lattice chat post` would write to, else the first.
fn first_room(app: &mut App, source: &mut Source, want: Option<&str>) -> Result<Option<String>> {
    if let Some(name) = want {
        let name = name.trim_start_matches('#');
        if let Some(r) = app.room_by_name(name) {
            return Ok(Some(r.id.clone()));
        }
        let names: Vec<String> = app.rooms.iter().map(|r| format!("#{}", r.name)).collect();
        bail!(
            "no chat room `{name}` in this mesh (rooms: {}); `/join #{name}` in the client creates it",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
    }
    if let Response::Catalog { stores, .. } = source.call(Request::Catalog)? {
        let selected = stores
            .iter()
            .find(|s| s.selected && s.store.type_name == "chat")
            .filter(|s| app.rooms.iter().any(|r| r.id == s.store.id));
        if let Some(s) = selected {
            return Ok(Some(s.store.id.clone()));
        }
    }
    Ok(app.rooms.first().map(|r| r.id.clone()))
}

/// The terminal in raw mode on the alternate screen for as long as this
/// lives. Dropping it restores the terminal, so every way out of [`ui`]
/// (a command, an error, a signal) leaves the shell as it was; ratatui's
/// panic hook covers a panic.
struct Screen {
    terminal: DefaultTerminal,
}

impl Screen {
    fn enter() -> Result<Screen> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                ratatui::restore();
                Err(e).context("setting up the terminal")
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

/// Terminal events from a thread of their own: when the terminal hangs
/// up (its tmux or ssh session ends), crossterm's `poll` can spin inside
/// itself on a descriptor that is always readable and never returns, so the
/// UI loop must not wait in it; it waits on this channel and checks the
/// terminal itself (`terminal_gone`). The thread dies with the process.
fn spawn_key_reader() -> std::sync::mpsc::Receiver<TermEvent> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

/// Whether the terminal on standard input has hung up.
fn terminal_gone() -> bool {
    let mut p = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout; nothing is read.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

fn ui(app: &mut App, source: &mut Source, stop: &AtomicBool) -> Result<ExitCode> {
    let mut screen = Screen::enter()?;
    let keys = spawn_key_reader();
    let mut last_refresh = Instant::now();
    let mut dirty = true;
    loop {
        if dirty {
            screen.terminal.draw(|f| render::draw(f, app))?;
            dirty = false;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(ExitCode::from(130));
        }
        if terminal_gone() {
            bail!("the terminal went away");
        }
        let ev = match keys.recv_timeout(TICK) {
            Ok(ev) => Some(ev),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the terminal went away")
            }
        };
        if let Some(ev) = ev {
            match ev {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                    dirty = true;
                    let action = input::on_key(&mut app.composer, app.help, k);
                    if on_action(app, source, action) == Outcome::Quit {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                TermEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
        loop {
            match source.events.try_recv() {
                Ok(Event::Entry(store)) => {
                    app.on_entry(&store);
                    dirty = true;
                }
                Ok(Event::Lost(why)) => bail!("live updates stopped: {why}"),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => bail!("live updates stopped"),
            }
        }
        if last_refresh.elapsed() >= MESH_REFRESH {
            last_refresh = Instant::now();
            if let Err(e) = app.refresh_mesh(source) {
                app.fail(format!("reading the mesh: {e}"));
            }
            // Also moves every "last seen" along.
            app.stale = true;
        }
        if app.stale {
            if let Err(e) = app.load(source) {
                app.fail(format!("reading the room: {e}"));
            }
            dirty = true;
        }
    }
}

fn on_action(app: &mut App, source: &mut Source, action: Action) -> Outcome {
    match action {
        Action::None => {}
        Action::Quit => return Outcome::Quit,
        Action::Line(line) => {
            if actions::line(app, source, &line) == Outcome::Quit {
                return Outcome::Quit;
            }
            app.stale = true;
        }
        Action::NextRoom | Action::PrevRoom if !app.rooms.is_empty() => {
            let n = app.rooms.len();
            let at = app
                .current
                .as_ref()
                .and_then(|c| app.rooms.iter().position(|r| &r.id == c));
            let next = match (at, action == Action::NextRoom) {
                (None, _) => 0,
                (Some(i), true) => (i + 1) % n,
                (Some(i), false) => (i + n - 1) % n,
            };
            let id = app.rooms[next].id.clone();
            app.switch(id);
            app.notice = None;
        }
        Action::NextRoom | Action::PrevRoom => {}
        Action::Scroll(n) => app.scroll = app.scroll.saturating_add_signed(n),
        Action::Back => {
            if app.help {
                app.help = false;
            } else if app.thread.take().is_some() {
                app.scroll = 0;
                app.stale = true;
            }
        }
    }
    Outcome::Continue
}

#[cfg(test)]
mod tests {
    use super::wanted;

    fn w(args: &[&str]) -> Option<Option<String>> {
        wanted(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn which_lines_open_the_client() {
        assert_eq!(w(&["chat"]), Some(None));
        assert_eq!(w(&["chat", "#dev"]), Some(Some("dev".into())));
        assert_eq!(w(&["chat", "--room", "dev"]), Some(Some("dev".into())));
        assert_eq!(w(&["chat", "--room=dev", "-v"]), Some(Some("dev".into())));
        assert_eq!(w(&["chat", "--data-dir", "/x"]), Some(None));
        assert_eq!(w(&["chat", "post", "--text", "hi"]), None);
        assert_eq!(w(&["chat", "--help"]), None);
        assert_eq!(w(&["chat", "--room"]), None);
        assert_eq!(w(&["general"]), None);
    }
}
