//! Keys and the composer line, and what a typed line means: plain text is
//! posted, a line starting with `/` is a command (`//` posts a literal `/`).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the event loop does after a key.
#[derive(Debug, PartialEq)]
pub enum Action {
    None,
    Quit,
    /// A finished line (Enter).
    Line(String),
    NextRoom,
    PrevRoom,
    /// Rows to scroll up (negative: down, towards the newest).
    Scroll(isize),
    /// Esc: close the help or the open thread.
    Back,
}

/// The line being typed. The cursor counts characters, not bytes, so
/// editing in the middle of non-ASCII text stays on character boundaries.
#[derive(Default)]
pub struct Composer {
    text: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while walking back through sent lines (Up/Down).
    recall: Option<usize>,
}

impl Composer {
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// Characters left of the cursor.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn set(&mut self, s: &str) {
        self.text = s.chars().collect();
        self.cursor = self.text.len();
    }

    fn take(&mut self) -> String {
        let s = self.text();
        if !s.trim().is_empty() && self.history.last() != Some(&s) {
            self.history.push(s.clone());
        }
        self.text.clear();
        self.cursor = 0;
        self.recall = None;
        s
    }

    fn recall(&mut self, back: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        self.recall = match (self.recall, back) {
            (None, true) => Some(last),
            (None, false) => None,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i < last => Some(i + 1),
            (Some(_), false) => None,
        };
        let line = self
            .recall
            .map(|i| self.history[i].clone())
            .unwrap_or_default();
        self.set(&line);
    }

    fn delete_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.text[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && self.text[start - 1] != ' ' {
            start -= 1;
        }
        self.text.drain(start..self.cursor);
        self.cursor = start;
    }
}

/// One key press. While the help is open any key closes it.
pub fn on_key(c: &mut Composer, help_open: bool, key: KeyEvent) -> Action {
    if help_open {
        return Action::Back;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => return Action::Quit,
        KeyCode::Char('d') if ctrl && c.text.is_empty() => return Action::Quit,
        KeyCode::Char('u') if ctrl => {
            c.text.drain(..c.cursor);
            c.cursor = 0;
        }
        KeyCode::Char('k') if ctrl => c.text.truncate(c.cursor),
        KeyCode::Char('w') if ctrl => c.delete_word(),
        KeyCode::Char('a') if ctrl => c.cursor = 0,
        KeyCode::Char('e') if ctrl => c.cursor = c.text.len(),
        KeyCode::Char('n') if ctrl => return Action::NextRoom,
        KeyCode::Char('p') if ctrl => return Action::PrevRoom,
        KeyCode::Char(_) if ctrl => {}
        KeyCode::Char(ch) => {
            c.text.insert(c.cursor, ch);
            c.cursor += 1;
        }
        KeyCode::Enter => {
            let line = c.take();
            if !line.trim().is_empty() {
                return Action::Line(line);
            }
        }
        KeyCode::Backspace if c.cursor > 0 => {
            c.cursor -= 1;
            c.text.remove(c.cursor);
        }
        KeyCode::Delete if c.cursor < c.text.len() => {
            c.text.remove(c.cursor);
        }
        KeyCode::Left => c.cursor = c.cursor.saturating_sub(1),
        KeyCode::Right => c.cursor = (c.cursor + 1).min(c.text.len()),
        KeyCode::Home => c.cursor = 0,
        KeyCode::End => c.cursor = c.text.len(),
        KeyCode::Up => c.recall(true),
        KeyCode::Down => c.recall(false),
        KeyCode::PageUp => return Action::Scroll(10),
        KeyCode::PageDown => return Action::Scroll(-10),
        KeyCode::Tab => return Action::NextRoom,
        KeyCode::BackTab => return Action::PrevRoom,
        KeyCode::Esc => return Action::Back,
        _ => {}
    }
    Action::None
}

/// A typed line, understood.
#[derive(Debug, PartialEq)]
pub enum Command {
    Post(String),
    Join(String),
    List,
    Reply {
        to: String,
        text: String,
    },
    /// `to` none: the newest message shown.
    React {
        to: Option<String>,
        emoji: String,
    },
    Unreact {
        to: String,
        emoji: String,
    },
    /// None: show the topic.
    Topic(Option<String>),
    Edit {
        to: String,
        text: String,
    },
    Delete(String),
    Thread(String),
    Back,
    Messages(Option<u32>),
    Help,
    Quit,
}

/// `(name, usage, what it does)` for `/help`, in the order shown.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "join",
        "/join #room",
        "switch to a room (creates it if the mesh has none by that name)",
    ),
    ("list", "/list", "the mesh's rooms, with unread counts"),
    (
        "reply",
        "/reply N text",
        "reply to message N (the number left of it)",
    ),
    (
        "react",
        "/react [N] emoji",
        "react to message N (default: the newest)",
    ),
    ("unreact", "/unreact N emoji", "take your reaction back"),
    (
        "topic",
        "/topic [text]",
        "set the room's topic (no text: show it)",
    ),
    ("edit", "/edit N text", "change the text of your message N"),
    ("delete", "/delete N", "delete your message N"),
    (
        "thread",
        "/thread N",
        "message N with its replies; lines typed there reply to it (Esc: back)",
    ),
    (
        "messages",
        "/messages [count]",
        "how many recent messages to load",
    ),
    ("help", "/help", "this list"),
    ("quit", "/quit", "leave (also Ctrl-C)"),
];

pub fn parse(line: &str) -> Result<Command, String> {
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Post(line.to_string()));
    };
    if rest.starts_with('/') {
        return Ok(Command::Post(rest.to_string()));
    }
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    let usage = || {
        let u = COMMANDS
            .iter()
            .find(|(n, ..)| *n == name)
            .map_or("", |(_, u, _)| *u);
        format!("usage: {u}")
    };
    // `N rest-of-line`, both present.
    let numbered = || -> Result<(String, String), String> {
        match args.split_once(char::is_whitespace) {
            Some((n, t)) if !t.trim().is_empty() => Ok((n.to_string(), t.trim().to_string())),
            _ => Err(usage()),
        }
    };
    let word = |s: &str| -> Result<String, String> {
        if s.is_empty() || s.contains(char::is_whitespace) {
            Err(usage())
        } else {
            Ok(s.to_string())
        }
    };
    Ok(match name {
        "join" | "j" => Command::Join(word(args.trim_start_matches('#'))?),
        "list" => Command::List,
        "reply" => {
            let (to, text) = numbered()?;
            Command::Reply { to, text }
        }
        "react" => match args.split_once(char::is_whitespace) {
            Some((n, e)) => Command::React {
                to: Some(n.to_string()),
                emoji: word(e.trim())?,
            },
            None => Command::React {
                to: None,
                emoji: word(args)?,
            },
        },
        "unreact" => {
            let (to, emoji) = numbered()?;
            Command::Unreact {
                to,
                emoji: word(&emoji)?,
            }
        }
        "topic" => Command::Topic((!args.is_empty()).then(|| args.to_string())),
        "edit" => {
            let (to, text) = numbered()?;
            Command::Edit { to, text }
        }
        "delete" => Command::Delete(word(args)?),
        "thread" => Command::Thread(word(args)?),
        "back" => Command::Back,
        "messages" => Command::Messages(match args {
            "" => None,
            n => Some(n.parse().map_err(|_| usage())?),
        }),
        "help" | "?" => Command::Help,
        "quit" | "exit" | "q" => Command::Quit,
        _ => return Err(format!("unknown command /{name}; /help lists them")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_commands() {
        assert_eq!(parse("hi there"), Ok(Command::Post("hi there".into())));
        assert_eq!(
            parse("//not a command"),
            Ok(Command::Post("/not a command".into()))
        );
        assert_eq!(parse("/join #dev"), Ok(Command::Join("dev".into())));
        assert_eq!(
            parse("/reply 3 sure, why not"),
            Ok(Command::Reply {
                to: "3".into(),
                text: "sure, why not".into()
            })
        );
        assert_eq!(
            parse("/react 👍"),
            Ok(Command::React {
                to: None,
                emoji: "👍".into()
            })
        );
        assert_eq!(
            parse("/react 2 🎉"),
            Ok(Command::React {
                to: Some("2".into()),
                emoji: "🎉".into()
            })
        );
        assert_eq!(parse("/topic"), Ok(Command::Topic(None)));
        assert_eq!(parse("/topic a b"), Ok(Command::Topic(Some("a b".into()))));
        assert_eq!(parse("/reply 3"), Err("usage: /reply N text".into()));
        assert_eq!(parse("/join"), Err("usage: /join #room".into()));
        assert!(
            parse("/frob")
                .unwrap_err()
                .contains("unknown command /frob")
        );
    }

    #[test]
    fn composer_edits_by_character() {
        let mut c = Composer::default();
        for ch in "héllo".chars() {
            on_key(&mut c, false, KeyEvent::from(KeyCode::Char(ch)));
        }
        on_key(&mut c, false, KeyEvent::from(KeyCode::Left));
        on_key(&mut c, false, KeyEvent::from(KeyCode::Backspace));
        assert_eq!(c.text(), "hélo");
        assert_eq!(c.cursor(), 3);
        assert_eq!(
            on_key(&mut c, false, KeyEvent::from(KeyCode::Enter)),
            Action::Line("hélo".into())
        );
        assert_eq!(c.text(), "");
        on_key(&mut c, false, KeyEvent::from(KeyCode::Up));
        assert_eq!(c.text(), "hélo", "Up recalls the line sent");
    }
}
