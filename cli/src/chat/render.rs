//! Drawing one frame from the [`App`]: rooms and members on the left, the
//! room's messages, a notice line and the composer. Every string from a
//! peer was made terminal-safe before it got here; ratatui then places
//! each cell itself, so nothing a peer wrote is ever sent as raw bytes.

use std::sync::OnceLock;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::input::COMMANDS;
use super::pb;
use super::state::{App, Member};
use super::time;
use lattice_cli::dynamic::terminal_safe;

const SIDEBAR: u16 = 26;

pub fn draw(f: &mut Frame, app: &App) {
    let [main, notice, composer] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(f.area());
    let [side, pane] =
        Layout::horizontal([Constraint::Length(SIDEBAR), Constraint::Min(10)]).areas(main);
    let rooms_h = (app.rooms.len() as u16 + 2).clamp(3, side.height / 2);
    let [rooms, members] =
        Layout::vertical([Constraint::Length(rooms_h), Constraint::Min(3)]).areas(side);
    draw_rooms(f, app, rooms);
    draw_members(f, app, members);
    draw_messages(f, app, pane);
    draw_notice(f, app, notice);
    draw_composer(f, app, composer);
    if app.help {
        draw_help(f, f.area());
    }
}

fn no_color() -> bool {
    static NO: OnceLock<bool> = OnceLock::new();
    *NO.get_or_init(|| std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()))
}

fn fg(c: Color) -> Style {
    if no_color() {
        Style::default()
    } else {
        Style::default().fg(c)
    }
}

fn dim() -> Style {
    Style::default().add_modifier(Modifier::DIM)
}

/// The same member always gets the same colour, so a conversation can be
/// followed by colour alone.
fn name_style(author: &[u8]) -> Style {
    const PALETTE: [Color; 8] = [
        Color::Cyan,
        Color::Green,
        Color::Yellow,
        Color::Magenta,
        Color::Blue,
        Color::LightRed,
        Color::LightGreen,
        Color::LightCyan,
    ];
    let h = author
        .iter()
        .fold(0usize, |h, b| h.wrapping_mul(31) ^ *b as usize);
    fg(PALETTE[h % PALETTE.len()]).add_modifier(Modifier::BOLD)
}

fn draw_rooms(f: &mut Frame, app: &App, area: Rect) {
    let lines: Vec<Line> = app
        .rooms
        .iter()
        .map(|r| {
            let current = app.current.as_deref() == Some(&r.id);
            let mark = if current { "> " } else { "  " };
            let mut spans = vec![Span::raw(mark), Span::raw(format!("#{}", r.name))];
            if r.unread > 0 {
                spans.push(Span::styled(format!(" ({})", r.unread), fg(Color::Yellow)));
            }
            let line = Line::from(spans);
            if current {
                line.style(Style::default().add_modifier(Modifier::BOLD))
            } else {
                line
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Rooms ")),
        area,
    );
}

fn presence_mark(m: &Member) -> &'static str {
    match m.presence.online {
        Some(true) => "● ",
        Some(false) => "○ ",
        None => "  ",
    }
}

fn draw_members(f: &mut Frame, app: &App, area: Rect) {
    let inner = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .members
        .iter()
        .map(|m| {
            let seen = match m.presence.last_seen_ms {
                Some(ms) => time::ago_ms(ms),
                None => "-".into(),
            };
            let mark = presence_mark(m);
            let you = if m.key == app.me { " (you)" } else { "" };
            let room = inner.saturating_sub(seen.len() + 1 + mark.chars().count() + you.len());
            let name: String = m.name.chars().take(room).collect();
            let pad = inner.saturating_sub(
                mark.chars().count() + name.chars().count() + you.len() + seen.len(),
            );
            let style = if m.gone {
                dim()
            } else {
                name_style(&hex::decode(&m.key).unwrap_or_default())
            };
            Line::from(vec![
                Span::raw(mark),
                Span::styled(name, style),
                Span::styled(you, dim()),
                Span::raw(" ".repeat(pad)),
                Span::styled(seen, dim()),
            ])
        })
        .collect();
    // "In sync N/M": the other active members whose last beacon
    // carried our log of this room.
    let others: Vec<&Member> = app
        .members
        .iter()
        .filter(|m| !m.gone && m.key != app.me)
        .collect();
    let title = if others.iter().any(|m| m.presence.online.is_some()) {
        let synced = others
            .iter()
            .filter(|m| m.presence.in_sync == Some(true))
            .count();
        format!(" Members · in sync {synced}/{} ", others.len())
    } else {
        " Members · last seen ".to_string()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn pane_title(app: &App) -> String {
    let Some(room) = app.room() else {
        return " no room ".into();
    };
    if let Some(t) = &app.thread {
        let n = app.number(&t.root).unwrap_or_default();
        return format!(" #{} · thread #{n} (Esc: back) ", room.name);
    }
    if app.topic.is_empty() {
        format!(" #{} ", room.name)
    } else {
        format!(" #{} — {} ", room.name, app.topic.replace('\n', " "))
    }
}

fn draw_messages(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(pane_title(app));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = inner.width as usize;
    let height = inner.height as usize;
    let mut rows: Vec<Line> = Vec::new();
    if app.current.is_none() {
        rows.push(Line::styled(
            if app.rooms.is_empty() {
                "This mesh has no chat rooms yet: /join #name creates one."
            } else {
                "No room open: /join #name, or Tab for the next room."
            },
            dim(),
        ));
    } else if app.shown().is_empty() {
        rows.push(Line::styled(
            "No messages yet: type one and press Enter.",
            dim(),
        ));
    }
    for m in app.shown() {
        rows.extend(message_rows(app, m, width));
    }
    let scroll = app.scroll.min(rows.len().saturating_sub(height));
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    // Newest at the bottom, next to the composer, as in any chat.
    let mut visible: Vec<Line> = vec![Line::raw(""); height.saturating_sub(end - start)];
    visible.extend(rows.drain(start..end));
    f.render_widget(Paragraph::new(visible), inner);
}

/// One message as wrapped rows: number, time, sender and text, then a row
/// of reactions if it has any.
fn message_rows(app: &App, m: &pb::Message, width: usize) -> Vec<Line<'static>> {
    let n = app.number(&m.id).unwrap_or_default();
    let mut spans = vec![
        Span::styled(format!("{n:>3} "), dim()),
        Span::styled(format!("{} ", time::stamp(m.hlc)), dim()),
        Span::styled(app.sender(m), name_style(&m.author)),
    ];
    if !m.reply_to.is_empty() {
        let to = app
            .number(&m.reply_to)
            .map_or_else(|| "?".to_string(), |n| n.to_string());
        spans.push(Span::styled(format!(" ↳ #{to}"), fg(Color::Blue)));
    }
    spans.push(Span::raw(": "));
    if m.deleted {
        spans.push(Span::styled(
            "(deleted)",
            dim().add_modifier(Modifier::ITALIC),
        ));
    } else {
        spans.push(Span::raw(terminal_safe(&m.text)));
        if m.edited {
            spans.push(Span::styled(" (edited)", dim()));
        }
    }
    if m.replies > 0 {
        let s = if m.replies == 1 { "reply" } else { "replies" };
        spans.push(Span::styled(
            format!("  [{} {s}]", m.replies),
            fg(Color::Blue),
        ));
    }
    let mut rows = wrap(spans, width, 4);
    if !m.reactions.is_empty() {
        let mut r = vec![Span::raw("    ")];
        for x in &m.reactions {
            let mine = x.authors.iter().any(|a| app.is_me(a));
            let style = if mine {
                fg(Color::Yellow)
            } else {
                Style::default()
            };
            r.push(Span::styled(
                format!("{} {}", terminal_safe(&x.emoji), x.authors.len()),
                style,
            ));
            r.push(Span::raw("  "));
        }
        rows.extend(wrap(r, width, 4));
    }
    rows
}

/// Breaks styled text into rows of at most `width` cells, at the last
/// space when there is one, continuing under an indent; `\n` breaks too.
fn wrap(spans: Vec<Span<'static>>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 8);
    let mut rows: Vec<Line<'static>> = Vec::new();
    // Cells of the row being built: (char, style, width).
    let mut row: Vec<(char, Style, usize)> = Vec::new();
    let mut used = 0;
    let flush = |row: &mut Vec<(char, Style, usize)>, rows: &mut Vec<Line<'static>>| {
        let mut line: Vec<Span<'static>> = Vec::new();
        let mut buf = String::new();
        let mut style = None;
        for (c, s, _) in row.drain(..) {
            if style.is_some_and(|st| st != s) {
                line.push(Span::styled(std::mem::take(&mut buf), style.unwrap()));
            }
            style = Some(s);
            buf.push(c);
        }
        if let Some(s) = style {
            line.push(Span::styled(buf, s));
        }
        rows.push(Line::from(line));
    };
    let start_row = |row: &mut Vec<(char, Style, usize)>| {
        row.extend(std::iter::repeat_n((' ', Style::default(), 1), indent));
        indent
    };
    for span in spans {
        let style = span.style;
        for c in span.content.chars() {
            if c == '\n' {
                flush(&mut row, &mut rows);
                used = start_row(&mut row);
                continue;
            }
            let mut b = [0u8; 4];
            let w = Span::raw(&*c.encode_utf8(&mut b)).width();
            if used + w > width {
                // Carry the last partial word over, if the row has a space to break at.
                let cut = row
                    .iter()
                    .rposition(|(ch, ..)| *ch == ' ')
                    .filter(|&i| i > indent);
                let carry: Vec<_> = match cut {
                    Some(i) => {
                        let carry = row.drain(i + 1..).collect();
                        row.truncate(i);
                        carry
                    }
                    None => Vec::new(),
                };
                flush(&mut row, &mut rows);
                used = start_row(&mut row);
                used += carry.iter().map(|x| x.2).sum::<usize>();
                row.extend(carry);
                if c == ' ' {
                    continue;
                }
            }
            row.push((c, style, w));
            used += w;
        }
    }
    if !row.is_empty() {
        flush(&mut row, &mut rows);
    }
    rows
}

fn draw_notice(f: &mut Frame, app: &App, area: Rect) {
    let line = match &app.notice {
        Some(n) if n.error => Line::styled(format!(" ! {}", n.text), fg(Color::Red)),
        Some(n) => Line::raw(format!(" {}", n.text)),
        None => Line::styled(
            " Enter: post · /help · Tab: next room · PgUp/PgDn: scroll · Ctrl-C: quit",
            dim(),
        ),
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_composer(f: &mut Frame, app: &App, area: Rect) {
    let title = match (app.room(), &app.thread) {
        (Some(r), Some(t)) => format!(
            " #{} · replying to #{} ",
            r.name,
            app.number(&t.root).unwrap_or_default()
        ),
        (Some(r), None) => format!(" #{} ", r.name),
        (None, _) => " no room ".into(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let text: Vec<char> = app.composer.text().chars().collect();
    let cursor = app.composer.cursor();
    let w = (inner.width as usize).saturating_sub(1).max(1);
    // Scroll the line sideways so the cursor stays in view.
    let first = cursor.saturating_sub(w);
    let shown: String = text[first..].iter().take(w + 1).collect();
    f.render_widget(Paragraph::new(terminal_safe(&shown)), inner);
    let before: String = text[first..cursor].iter().collect();
    let x = inner.x + Span::raw(before).width() as u16;
    if !app.help {
        f.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
    }
}

fn draw_help(f: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = vec![Line::raw("")];
    for (_, usage, what) in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {usage:<20}"),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(*what),
        ]));
    }
    lines.push(Line::raw(""));
    for (keys, what) in [
        (
            "Enter",
            "post the line (//text posts a line starting with /)",
        ),
        (
            "Tab, Shift-Tab",
            "next, previous room (also Ctrl-N, Ctrl-P)",
        ),
        ("PgUp, PgDn", "scroll messages"),
        ("Up, Down", "lines sent before"),
        ("Esc", "close this help or the thread"),
        ("Ctrl-C", "quit"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {keys:<20}"),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(what),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("  Any key closes this help.", dim()));
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 96.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Help ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rows: &[Line]) -> Vec<String> {
        rows.iter().map(|l| l.to_string()).collect()
    }

    /// The chat plugin refuses control characters, but a modified client
    /// can write anything into a message; it must reach the screen inert.
    #[test]
    fn peer_text_is_spelled_out() {
        let app = App::empty("00".repeat(32));
        let m = pb::Message {
            id: vec![1; 32],
            author: vec![2; 32],
            hlc: 1 << 40,
            text: "a\u{1b}[2J\u{1b}]0;owned\u{7}b\u{202e}".into(),
            nick: "n\u{1b}[31m".into(),
            reactions: vec![pb::Reaction {
                emoji: "\u{9b}x".into(),
                authors: vec![vec![2; 32]],
            }],
            ..Default::default()
        };
        let rows = text(&message_rows(&app, &m, 200));
        let all = rows.join("\n");
        assert!(!all.chars().any(|c| c.is_control() && c != '\n'), "{all:?}");
        assert!(
            all.contains("a\\u{1b}[2J\\u{1b}]0;owned\\u{7}b\\u{202e}"),
            "{all}"
        );
        assert!(all.contains("n\\u{1b}[31m"), "{all}");
        assert!(all.contains("\\u{9b}x 1"), "{all}");
    }

    #[test]
    fn wraps_at_spaces_under_an_indent() {
        let rows = wrap(vec![Span::raw("aaaa bbbb cccc dddd")], 12, 2);
        assert_eq!(text(&rows), ["aaaa bbbb", "  cccc dddd"]);
        let rows = wrap(vec![Span::raw("x\ny")], 20, 2);
        assert_eq!(text(&rows), ["x", "  y"]);
        let rows = wrap(vec![Span::raw("abcdefghijklmnop")], 10, 2);
        assert!(rows.iter().all(|r| r.width() <= 10), "{:?}", text(&rows));
    }
}
