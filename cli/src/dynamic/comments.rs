//! Proto comments, read from the descriptor's `source_code_info`.
//!
//! Plugins are expected to embed their descriptor set with source info so that `--help` can
//! show the comments; without it every lookup here returns `None` and the help falls back to
//! type information only.

use prost_reflect::FileDescriptor;

/// The comment attached to the element at `path` in `file`: the leading comment, else the
/// trailing one, cleaned up (see [`clean`]). `None` when there is none or it is blank.
pub(crate) fn comment(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let raw = location
        .leading_comments
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(location.trailing_comments.as_deref())?;
    let text = clean(raw);
    (!text.is_empty()).then_some(text)
}

/// The first paragraph of the comment at `path`, on one line: for listings
/// such as `plugin inspect`.
pub fn summary_at(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    comment(file, path).map(|c| summary(&c))
}

/// Normalizes a raw proto comment: removes the single space `//` comments keep after the
/// slashes, trailing spaces and leading/trailing blank lines. Inner blank lines (paragraph
/// breaks) and deeper indentation are kept. (The compiler already strips the `*` margin of
/// block comments.)
pub(crate) fn clean(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(|line| {
            let line = line.trim_end();
            line.strip_prefix(' ').unwrap_or(line)
        })
        .collect();
    let start = lines.iter().position(|l| !l.trim().is_empty());
    let end = lines.iter().rposition(|l| !l.trim().is_empty());
    match (start, end) {
        (Some(s), Some(e)) => lines[s..=e].join("\n"),
        _ => String::new(),
    }
}

/// The first paragraph of a comment joined into one line: the short help shown by `-h` and in
/// subcommand lists, where clap expects a single line.
pub(crate) fn summary(text: &str) -> String {
    text.split("\n\n")
        .next()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_line_comments() {
        assert_eq!(
            clean(" Post a message.\n\n Second paragraph.\n"),
            "Post a message.\n\nSecond paragraph."
        );
        assert_eq!(clean("  indented code\n"), " indented code");
    }

    #[test]
    fn clean_keeps_bullets_and_drops_blank_edges() {
        assert_eq!(clean("\n * one\n * two\n "), "* one\n* two");
        assert_eq!(clean("\n   \n"), "");
    }

    #[test]
    fn summary_is_first_paragraph_on_one_line() {
        assert_eq!(summary("One\ntwo.\n\nThree."), "One two.");
        assert_eq!(summary(""), "");
    }
}
