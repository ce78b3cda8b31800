//! Filenames are metadata only: normalised to NFC, stripped of anything that
//! could mean a path or a control sequence, and bounded to 1 to 255 bytes.

use unicode_normalization::UnicodeNormalization;

pub const MAX_FILENAME_BYTES: usize = 255;

/// The stored form of a client's filename, or why there is none.
pub fn clean_filename(raw: &str) -> Result<String, &'static str> {
    let normalised: String = raw.nfc().collect();
    // Keep only the last path segment, whichever separator the client used.
    let last = normalised.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control() && !is_invisible_format(*c)).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim_start();
    if cleaned.is_empty() {
        return Err("a filename must have at least one visible character besides path separators and leading dots");
    }
    if cleaned.len() > MAX_FILENAME_BYTES {
        return Err("a filename must be at most 255 bytes");
    }
    Ok(cleaned.to_owned())
}

/// Bidirectional overrides and similar format characters that make a name
/// display as something else (`evil\u{202e}fdp.exe`).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
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
    fn path_parts_control_characters_and_leading_dots_go() {
        assert_eq!(clean_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_filename("C:\\Users\\me\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(clean_filename("..hidden").unwrap(), "hidden");
        assert_eq!(clean_filename("a\u{0}b\nc\u{202e}.txt").unwrap(), "abc.txt");
        assert!(clean_filename("../..").is_err());
        assert!(clean_filename("").is_err());
        assert!(clean_filename(" . ").is_err());
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
