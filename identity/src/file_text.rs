//! The text form of a signed statement handed around as a file (a grant, a disk
//! approval): `#` comment lines for the people passing it on, then one line
//! `<tag> <base64url of the signed statement>`.
//!
//! Text, so it can be pasted into a chat or a config file. Only the tagged line
//! counts: the comments are not trusted by anyone. Each kind of file has its own
//! tag, so a file of one kind given where another is expected is named as what it
//! is rather than reported as unreadable.

use crate::grant::{DISK_APPROVAL_FILE_TAG, GRANT_FILE_TAG};

/// Every tag this crate writes.
const TAGS: &[&str] = &[GRANT_FILE_TAG, DISK_APPROVAL_FILE_TAG];

/// Why the tagged line could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// No line with the expected tag, nor with any other known tag.
    Missing,
    /// No line with the expected tag, but one with this other known tag.
    OtherKind(&'static str),
    /// The tagged line's payload is not base64url.
    Encoding,
}

/// The file text: `comments` (each line gets a `# `), then the tagged line.
pub(crate) fn write(comments: &[String], tag: &str, statement: &[u8]) -> String {
    let mut out = String::new();
    for c in comments {
        out.push_str("# ");
        out.push_str(c);
        out.push('\n');
    }
    out.push_str(tag);
    out.push(' ');
    out.push_str(&data_encoding::BASE64URL_NOPAD.encode(statement));
    out.push('\n');
    out
}

/// The comment line about an expiry in Unix seconds; `never` says what a
/// statement without one means for this kind of file.
pub(crate) fn expiry_comment(expires_at: Option<u64>, never: &str) -> String {
    match expires_at {
        Some(t) => format!("expires at {t} (Unix seconds)"),
        None => never.to_owned(),
    }
}

/// The first word of a trimmed line and the rest, if the word is `tag`.
fn payload_of<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    (word == tag).then(|| rest.trim())
}

/// The decoded payload of the first line tagged `tag`.
pub(crate) fn read(text: &str, tag: &str) -> Result<Vec<u8>, ReadError> {
    let lines = || text.lines().map(str::trim);
    let Some(payload) = lines().find_map(|l| payload_of(l, tag)) else {
        return Err(TAGS
            .iter()
            .filter(|t| **t != tag)
            .find(|t| lines().any(|l| payload_of(l, t).is_some()))
            .map_or(ReadError::Missing, |t| ReadError::OtherKind(t)));
    };
    data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .map_err(|_| ReadError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_text_reads_back_and_comments_do_not_count() {
        let text = write(
            &["what it is".into(), format!("{GRANT_FILE_TAG} AAAA")],
            DISK_APPROVAL_FILE_TAG,
            b"statement bytes",
        );
        assert!(text.starts_with("# what it is\n# "));
        assert_eq!(
            read(&text, DISK_APPROVAL_FILE_TAG).unwrap(),
            b"statement bytes"
        );
        // The grant tag inside a comment is not a grant line.
        assert_eq!(
            read(&text, GRANT_FILE_TAG),
            Err(ReadError::OtherKind(DISK_APPROVAL_FILE_TAG))
        );
    }

    #[test]
    fn the_tag_must_be_a_whole_word() {
        let text = format!("{GRANT_FILE_TAG}x AAAA\n");
        assert_eq!(read(&text, GRANT_FILE_TAG), Err(ReadError::Missing));
        let indented = format!("   {GRANT_FILE_TAG}\tAAAA  \n");
        assert_eq!(read(&indented, GRANT_FILE_TAG).unwrap(), [0, 0, 0]);
    }

    #[test]
    fn a_file_of_another_kind_is_named() {
        let approval = write(&[], DISK_APPROVAL_FILE_TAG, b"x");
        assert_eq!(
            read(&approval, GRANT_FILE_TAG),
            Err(ReadError::OtherKind(DISK_APPROVAL_FILE_TAG))
        );
        let grant = write(&[], GRANT_FILE_TAG, b"x");
        assert_eq!(
            read(&grant, DISK_APPROVAL_FILE_TAG),
            Err(ReadError::OtherKind(GRANT_FILE_TAG))
        );
        assert_eq!(read("hello\n", GRANT_FILE_TAG), Err(ReadError::Missing));
    }

    #[test]
    fn a_payload_that_is_not_base64url_is_an_encoding_error() {
        let text = format!("{GRANT_FILE_TAG} not+base64/\n");
        assert_eq!(read(&text, GRANT_FILE_TAG), Err(ReadError::Encoding));
        let empty = format!("{GRANT_FILE_TAG}\n");
        assert_eq!(read(&empty, GRANT_FILE_TAG).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn expiry_comments() {
        assert_eq!(
            expiry_comment(Some(5), "never"),
            "expires at 5 (Unix seconds)"
        );
        assert_eq!(expiry_comment(None, "never expires"), "never expires");
    }
}
