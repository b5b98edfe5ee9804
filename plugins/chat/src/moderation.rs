//! Text moderation, run by `prepare` only: what gets logged is already
//! clean, and `apply` never second-guesses a logged op (it must be total).

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use unicode_normalization::UnicodeNormalization;

/// Longest message text, in bytes after cleaning.
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest emoji (a few code points with modifiers and joiners).
pub const MAX_EMOJI: usize = 64;

/// NFC-normalizes, drops control characters (newlines excepted: messages
/// may span lines), trims, and refuses empty text, overlong text, and text
/// containing a word of the room's filter.
pub fn clean_text(text: &str, filter: &BTreeSet<String>) -> Result<String, String> {
    // NFC first, so "e" + U+0301 and "é" are the same text and the same word.
    let text: String = text
        .nfc()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Err("the text is empty".into());
    }
    if text.len() > MAX_TEXT {
        return Err(format!("the text is longer than {MAX_TEXT} bytes"));
    }
    if let Some(word) = words(text).find(|w| filter.contains(w)) {
        return Err(format!("`{word}` is not allowed in this room"));
    }
    Ok(text.into())
}

/// The text's words, lowercased: maximal runs of letters and digits, so a
/// filter word matches only whole words ("ass" does not match "class").
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(lowercase)
}

fn lowercase(word: &str) -> String {
    word.chars().flat_map(char::to_lowercase).collect()
}

/// An emoji: NFC, no control characters or spaces, at most [`MAX_EMOJI`] bytes.
pub fn clean_emoji(emoji: &str) -> Result<String, String> {
    let emoji: String = emoji.trim().nfc().collect();
    if emoji.is_empty() {
        return Err("the emoji is empty".into());
    }
    if emoji.len() > MAX_EMOJI {
        return Err(format!("the emoji is longer than {MAX_EMOJI} bytes"));
    }
    if emoji.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the emoji contains spaces or control characters".into());
    }
    Ok(emoji)
}

/// Longest display name.
pub const MAX_NICK: usize = 32;

/// A sender's display name: empty, or letters, digits and the punctuation
/// IRC allows in nicks. Readers put it in front of the text and in IRC
/// prefixes (`nick!user@host`), so spaces, controls, bidi overrides, `!`, `@`
/// and `:` would let a sender forge how a line reads.
pub fn clean_nick(nick: &str) -> Result<String, String> {
    let nick: String = nick.trim().nfc().collect();
    if nick.len() > MAX_NICK {
        return Err(format!("the nick is longer than {MAX_NICK} bytes"));
    }
    if let Some(c) = nick
        .chars()
        .find(|c| !(c.is_alphanumeric() || "-_[]\\`^{}|.".contains(*c)))
    {
        return Err(format!("the nick contains {c:?}"));
    }
    Ok(nick)
}

/// Filter words as stored: NFC, lowercase, each one word, sorted, unique.
pub fn clean_filter(words: &[String]) -> Result<Vec<String>, String> {
    let mut out = BTreeSet::new();
    for w in words {
        let w: String = lowercase(&w.trim().nfc().collect::<String>());
        if w.is_empty() {
            continue;
        }
        if !w.chars().all(char::is_alphanumeric) {
            return Err(format!("`{w}` is not a single word"));
        }
        out.insert(w);
    }
    Ok(out.into_iter().collect())
}
