//! Deciding a file's content type from its first bytes, never from the client.

use crate::naming::extension;

/// How many leading bytes the decision looks at.
pub const SNIFF_BYTES: usize = 8192;

/// The content type of a file starting with `head`. `complete` says whether
/// `head` is the whole file.
pub fn content_type(head: &[u8], filename: &str, complete: bool) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    if !looks_like_text(head, complete) {
        return "application/octet-stream".to_owned();
    }
    let ext = extension(filename);
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    let json_shaped = matches!(first, Some(b'{' | b'['));
    let is_json = json_shaped
        && (ext.as_deref() == Some("json") || (complete && serde_json::from_slice::<serde_json::Value>(text).is_ok()));
    if is_json {
        "application/json".to_owned()
    } else if ext.as_deref() == Some("csv") {
        "text/csv".to_owned()
    } else {
        "text/plain".to_owned()
    }
}

/// UTF-8 without control characters other than tab, line breaks and form feed.
/// A multi-byte character cut by the end of an incomplete head is fine.
fn looks_like_text(head: &[u8], complete: bool) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if !complete && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).expect("valid up to here")
        }
        Err(_) => return false,
    };
    valid.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

/// Whether `mime` is on the allow-list (`type/*` entries accept a whole top-level type).
pub fn allowed(mime: &str, allow_list: &[String]) -> bool {
    allow_list.iter().any(|entry| match entry.strip_suffix("/*") {
        Some(top) => mime.split_once('/').is_some_and(|(t, _)| t == top),
        None => entry == mime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn binary_formats_by_magic_bytes_whatever_the_name() {
        assert_eq!(content_type(PNG, "photo.txt", false), "image/png");
        assert_eq!(content_type(b"%PDF-1.7\n", "x.png", false), "application/pdf");
        assert_eq!(
            content_type(b"MZ\x90\0\x03\0\0\0", "invoice.pdf", false),
            "application/vnd.microsoft.portable-executable"
        );
        assert_eq!(content_type(b"\0\x01\x02\x03", "a.txt", true), "application/octet-stream");
    }

    #[test]
    fn text_json_and_csv() {
        assert_eq!(content_type(b"hello\n", "a.bin", true), "text/plain");
        assert_eq!(content_type(b"", "empty.txt", true), "text/plain");
        assert_eq!(content_type(b"{\"a\": 1}", "data", true), "application/json");
        assert_eq!(content_type(b"[not json", "log.txt", true), "text/plain");
        assert_eq!(content_type(b"a,b\n1,2\n", "t.csv", true), "text/csv");
        assert_eq!(content_type("caf\u{e9}".as_bytes(), "a.txt", true), "text/plain");
        // A cut multi-byte character at the end of an incomplete head is still text.
        assert_eq!(content_type(&"é".as_bytes()[..1], "a.txt", false), "text/plain");
        assert_eq!(content_type(&"é".as_bytes()[..1], "a.txt", true), "application/octet-stream");
    }

    #[test]
    fn allow_list_with_wildcards() {
        let list = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(allowed("image/webp", &list));
        assert!(allowed("application/pdf", &list));
        assert!(!allowed("application/zip", &list));
        assert!(!allowed("imagery/x", &list));
    }
}
