//! Rules for text that clients send: which characters are refused, and which
//! are taken out because they make text display as something it is not.
//!
//! Shared so that a title, a filename and an email follow one rule.

use crate::ApiError;

/// Bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069): they reorder what follows them on screen, so a name can read
/// as something else (`evil\u{202e}fdp.exe` shows as `evilexe.pdf`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Bidi controls and the invisible format characters around them (zero-width
/// spaces and joiners, LRM/RLM, the byte order mark): nothing a name shows.
pub fn is_invisible_format(c: char) -> bool {
    is_bidi_control(c) || matches!(c, '\u{200b}'..='\u{200f}' | '\u{feff}')
}

/// `text` without the characters `remove` picks.
pub fn without(text: &str, remove: impl Fn(char) -> bool) -> String {
    text.chars().filter(|c| !remove(*c)).collect()
}

/// Whether text may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// No control character at all.
    Single,
    /// Line breaks (`\n`, `\r\n`) and tabs allowed, no other control character.
    Multi,
}

/// BAD_USER_INPUT naming `field` when `text` holds a control character
/// (`char::is_control`: C0 with NUL, DEL, C1) that `lines` does not allow;
/// `what` names the text in the message ("title"). Postgres cannot store NUL,
/// and the others rewrite terminals and logs.
pub fn refuse_controls(field: &str, what: &str, text: &str, lines: Lines) -> Result<(), ApiError> {
    match lines {
        Lines::Single if text.chars().any(char::is_control) => {
            Err(ApiError::invalid(field, format!("{what} must not contain control characters")))
        }
        Lines::Multi if has_control_besides_line_breaks(text) => Err(ApiError::invalid(
            field,
            format!("{what} must not contain control characters other than line breaks and tabs"),
        )),
        _ => Ok(()),
    }
}

fn has_control_besides_line_breaks(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = match c {
            '\n' | '\t' => true,
            // Only as the first half of CRLF: a lone CR rewrites a terminal line.
            '\r' => chars.next_if_eq(&'\n').is_some(),
            _ => !c.is_control(),
        };
        if !allowed {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_text_refuses_every_control_character() {
        for bad in ["a\u{0}b", "tab\there", "new\nline", "del\u{7f}", "c1\u{85}", "esc\u{1b}[31m"] {
            let err = refuse_controls("input.title", "title", bad, Lines::Single).unwrap_err();
            assert_eq!(err.code().as_str(), "BAD_USER_INPUT", "{bad:?}");
        }
        assert!(refuse_controls("input.title", "title", "Café 日本 👨‍👩‍👧", Lines::Single).is_ok());
    }

    #[test]
    fn multi_line_text_keeps_line_breaks_and_tabs_only() {
        assert!(refuse_controls("d", "description", "one\ntwo\r\n\tthree", Lines::Multi).is_ok());
        for bad in ["nul\u{0}", "lone\rcr", "cr at the end\r", "bell\u{7}", "c1\u{9b}"] {
            assert!(refuse_controls("d", "description", bad, Lines::Multi).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bidi_controls_are_a_subset_of_invisible_format_characters() {
        let stripped = without("evil\u{202e}fdp.exe\u{2066}x\u{2069}", is_bidi_control);
        assert_eq!(stripped, "evilfdp.exex");
        assert!(!is_bidi_control('\u{200d}'), "the zero-width joiner builds emoji sequences");
        assert!(is_invisible_format('\u{200d}') && is_invisible_format('\u{202e}') && is_invisible_format('\u{feff}'));
    }
}
