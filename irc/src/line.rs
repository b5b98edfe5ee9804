//! IRC lines: parsing what clients send, formatting what we send, nick and
//! channel casefolding and wildcard masks.
//!
//! Hand-written rather than taken from `irc-proto`: the gateway must see the
//! raw bytes (a line that is not UTF-8 gets `FAIL … INVALID_UTF8`, not a
//! lossy decode), cap lines at 512 bytes itself, and keep going after any
//! malformed line; the grammar (RFC 1459 §2.3.1) is a few dozen lines.

/// Longest line we accept or send, CR LF included (RFC 1459 §2.3).
pub const MAX_LINE: usize = 512;
/// Most parameters in one line (RFC 1459 §2.3).
const MAX_PARAMS: usize = 15;

/// One parsed client line.
#[derive(Debug, PartialEq)]
pub struct Message<'a> {
    /// Upper-cased command or numeric.
    pub command: String,
    pub params: Vec<&'a str>,
}

/// Parses a line (without CR LF). Tags (`@…`) and a prefix are skipped: a
/// client's prefix is ignored, as RFC 2812 §2.3 allows. `None` for a line
/// with no command.
pub fn parse(line: &str) -> Option<Message<'_>> {
    let mut rest = line.trim_start_matches(' ');
    if rest.starts_with('@') {
        rest = rest.split_once(' ')?.1.trim_start_matches(' ');
    }
    if rest.starts_with(':') {
        rest = rest.split_once(' ')?.1.trim_start_matches(' ');
    }
    let (command, mut rest) = match rest.split_once(' ') {
        Some((c, r)) => (c, r),
        None => (rest, ""),
    };
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        if params.len() == MAX_PARAMS - 1 {
            params.push(rest);
            break;
        }
        match rest.split_once(' ') {
            Some((p, r)) => {
                params.push(p);
                rest = r;
            }
            None => {
                params.push(rest);
                break;
            }
        }
    }
    Some(Message {
        command: command.to_ascii_uppercase(),
        params,
    })
}

/// Formats a line. The last parameter is written as a trailing one (`:…`)
/// when it must be (empty, has a space, starts with `:`) or when `trailing`.
pub fn format(prefix: &str, command: &str, params: &[&str], trailing: bool) -> String {
    let mut out = String::with_capacity(64);
    if !prefix.is_empty() {
        out.push(':');
        out.push_str(prefix);
        out.push(' ');
    }
    out.push_str(command);
    for (i, p) in params.iter().enumerate() {
        out.push(' ');
        let last = i + 1 == params.len();
        if last && (trailing || p.is_empty() || p.contains(' ') || p.starts_with(':')) {
            out.push(':');
        }
        // A line end or NUL inside a parameter would start a line of the
        // sender's choosing: whatever produced it, it goes out as a space.
        out.extend(p.chars().map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        }));
    }
    truncate(&mut out, MAX_LINE - 2);
    out
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The case-insensitive form of a nick or channel name. We advertise
/// `CASEMAPPING=ascii`: only A–Z fold.
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Glob match with `*` and `?`, case-insensitive (ascii), as IRC masks are.
pub fn mask_match(mask: &str, text: &str) -> bool {
    let m: Vec<char> = fold(mask).chars().collect();
    let t: Vec<char> = fold(text).chars().collect();
    let (mut mi, mut ti) = (0, 0);
    let (mut star, mut back) = (None, 0);
    while ti < t.len() {
        if mi < m.len() && (m[mi] == '?' || m[mi] == t[ti]) {
            mi += 1;
            ti += 1;
        } else if mi < m.len() && m[mi] == '*' {
            star = Some(mi);
            mi += 1;
            back = ti;
        } else if let Some(s) = star {
            mi = s + 1;
            back += 1;
            ti = back;
        } else {
            return false;
        }
    }
    m[mi..].iter().all(|c| *c == '*')
}

/// Whether `nick` is a nick we hand out: RFC 2812 §2.3.1 letters, digits
/// and specials, not starting with a digit or `-`, at most `max` bytes.
pub fn valid_nick(nick: &str, max: usize) -> bool {
    let special = |c: char| "[]\\`_^{|}".contains(c);
    let mut chars = nick.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || special(c) => {}
        _ => return false,
    }
    nick.len() <= max && chars.all(|c| c.is_ascii_alphanumeric() || special(c) || c == '-')
}

/// Whether `name` is a channel name we accept: `#`, then 1 to `max - 1`
/// bytes with no space, comma, BEL or control character.
pub fn valid_channel(name: &str, max: usize) -> bool {
    name.len() > 1
        && name.len() <= max
        && name.starts_with('#')
        && !name[1..]
            .chars()
            .any(|c| c == ' ' || c == ',' || c == ':' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefix_tags_and_trailing() {
        let m = parse("@a=b :nick!u@h privmsg #chan :hello  there").unwrap();
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#chan", "hello  there"]);
        let m = parse("USER u 0  * :").unwrap();
        assert_eq!(m.params, ["u", "0", "*", ""]);
        assert_eq!(parse("   "), None);
        assert_eq!(parse(":only-prefix"), None);
        let many = parse("X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16").unwrap();
        assert_eq!(many.params.len(), 15);
        assert_eq!(many.params[14], "15 16");
    }

    #[test]
    fn formats_trailing_only_when_needed_and_caps_length() {
        assert_eq!(
            format("srv", "PONG", &["srv", "x"], false),
            ":srv PONG srv x"
        );
        assert_eq!(
            format("srv", "PONG", &["srv", ""], false),
            ":srv PONG srv :"
        );
        assert_eq!(format("", "PRIVMSG", &["#c", "hi"], true), "PRIVMSG #c :hi");
        assert_eq!(
            format("s", "NOTICE", &["x", "a\r\nQUIT :b\0"], true),
            ":s NOTICE x :a  QUIT :b "
        );
        let long = format("s", "NOTICE", &["x", &"é".repeat(600)], true);
        assert!(long.len() <= MAX_LINE - 2);
    }

    #[test]
    fn masks_and_names() {
        assert!(mask_match("coolni*", "coolNick"));
        assert!(mask_match("*!*@127.0.0.1", "a!b@127.0.0.1"));
        assert!(mask_match("a?c", "ABC"));
        assert!(!mask_match("a*d", "abc"));
        assert!(valid_nick("foo[m]", 32));
        assert!(!valid_nick("1foo", 32));
        assert!(!valid_nick("*", 32));
        assert!(!valid_nick("a b", 32));
        assert!(valid_channel("#chan", 64));
        assert!(!valid_channel("chan", 64));
        assert!(!valid_channel("#a,b", 64));
    }
}
