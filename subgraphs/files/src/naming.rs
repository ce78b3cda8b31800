//! Filenames are metadata only: refused when they hold control characters,
//! normalised to NFC, stripped of anything that could mean a path or display as
//! another name, and bounded to 1 to 255 bytes.

use kit::text;
use unicode_normalization::UnicodeNormalization;

pub const MAX_FILENAME_BYTES: usize = 255;

/// The stored form of a client's filename, or why there is none.
pub fn clean_filename(raw: &str) -> Result<String, &'static str> {
    if raw.chars().any(char::is_control) {
        return Err("a filename must not contain control characters");
    }
    let normalised: String = raw.nfc().collect();
    // Keep only the last path segment, whichever separator the client used.
    let last = normalised.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned = text::without(last, text::is_invisible_format);
    let cleaned = cleaned.trim().trim_start_matches('.').trim_start();
    if cleaned.is_empty() {
        return Err("a filename must have at least one visible character besides path separators and leading dots");
    }
    if cleaned.len() > MAX_FILENAME_BYTES {
        return Err("a filename must be at most 255 bytes");
    }
    Ok(cleaned.to_owned())
}

/// The filename's extension, lower-cased.
pub fn extension(filename: &str) -> Option<String> {
    let (_, ext) = filename.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_invisible_characters_and_leading_dots_go() {
        assert_eq!(clean_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_filename("C:\\Users\\me\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(clean_filename("..hidden").unwrap(), "hidden");
        assert_eq!(clean_filename("ab\u{200b}c\u{202e}.txt").unwrap(), "abc.txt");
        assert!(clean_filename("../..").is_err());
        assert!(clean_filename("").is_err());
        assert!(clean_filename(" . ").is_err());
    }

    #[test]
    fn control_characters_refuse_the_name() {
        for raw in ["a\u{0}b.txt", "a\nb.txt", "tab\t.txt", "del\u{7f}.txt", "c1\u{85}.txt", "dir\u{1b}/x.txt"] {
            assert_eq!(clean_filename(raw), Err("a filename must not contain control characters"), "{raw:?}");
        }
    }

    #[test]
    fn names_are_nfc_and_bounded_in_bytes() {
        let decomposed = "Cafe\u{301}.txt";
        assert_eq!(clean_filename(decomposed).unwrap(), "Café.txt");
        assert!(clean_filename(&"é".repeat(128)).is_err(), "256 bytes");
        assert_eq!(clean_filename(&"é".repeat(127)).unwrap().len(), 254);
        assert_eq!(clean_filename("日本語のファイル.pdf").unwrap(), "日本語のファイル.pdf");
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("a.CSV").as_deref(), Some("csv"));
        assert_eq!(extension("noext"), None);
    }
}
