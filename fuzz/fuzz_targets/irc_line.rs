//! The IRC gateway's line parser, on whatever a client sends between two
//! line ends: never panics; a parsed line has a command and at most 15
//! parameters, of which only the last may be empty, hold a space or start
//! with `:`; and formatting a parsed line gives a line that parses to the
//! same message. The name checks and the mask matcher run on the same
//! bytes (they see client-chosen nicks, channels and masks).
#![no_main]

use lattice_fuzz::seed;
use lattice_irc::line::{MAX_LINE, format, mask_match, parse, valid_channel, valid_nick};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<&'static [u8]> {
    vec![
        b"NICK alice",
        b"USER alice 0 * :Alice A",
        b"PASS s3cret",
        b"JOIN #general,#random",
        b"PRIVMSG #general :hello there: a colon",
        b"@time=2024-01-01T00:00:00Z;msgid=x :alice!a@h PRIVMSG #c :tagged",
        b"TOPIC #general :new topic",
        b"PING :irc.lattice",
        b"WHO #general",
        b"MODE #general +b *!*@127.0.0.1",
        b"X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
        b"QUIT :bye",
    ]
}

fuzz_target!(init: seed(seeds), |data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(m) = parse(line) {
        assert!(!m.command.is_empty());
        assert!(m.params.len() <= 15);
        if let Some((_, middle)) = m.params.split_last() {
            for p in middle {
                assert!(!p.is_empty() && !p.contains(' ') && !p.starts_with(':'), "{p:?}");
            }
        }
        // What we send never carries a line end or NUL, and a command is
        // a word or a numeric (one starting with `@` or `:` reads as tags
        // or a prefix, by the grammar).
        let plain = !line.contains(['\r', '\n', '\0']);
        let word = m.command.starts_with(|c: char| c.is_ascii_alphanumeric());
        let out = format("", &m.command, &m.params, false);
        assert!(out.len() <= MAX_LINE - 2);
        // Formatting adds at most one byte (a `:`), so a line this short
        // is never truncated.
        if plain && word && line.len() + 1 < MAX_LINE - 2 {
            assert_eq!(parse(&out), Some(m), "{out:?}");
        }
    }
    let (mask, text) = line.split_at(line.floor_char_boundary(line.len() / 2));
    let _ = mask_match(mask, text);
    let _ = valid_nick(line, 32);
    let _ = valid_channel(line, 64);
});
