//! Checked text from clients: names, identifiers, long text, and JSON values.
//!
//! Postgres refuses NUL in `text` and `jsonb`, so every stored string is checked here, at
//! the edge, and a bad one is answered with the field it came in (never a 500). Names are
//! what people read in lists: they are Unicode-normalised (NFC), trimmed, and must show at
//! least one visible character; control characters and the bidirectional controls that
//! can make text read differently than it is stored ("Trojan Source") are refused.

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// What is wrong with a piece of text (the message reads after the field's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters (NUL, escape, …)")]
    Control,
    #[error("must not contain line breaks or tabs")]
    LineBreak,
    #[error("must not contain bidirectional control characters (U+202A–U+202E, U+2066–U+2069)")]
    Bidi,
    #[error("must contain at least one visible character")]
    Invisible,
    #[error("must not contain white space")]
    Space,
    #[error("must be a string")]
    NotAString,
}

/// Bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: zero-width spaces and joiners, the word joiner, the
/// byte-order mark, and marks of direction.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{034F}'
        )
}

fn check_chars(s: &str, line_breaks: bool) -> Result<(), TextError> {
    for c in s.chars() {
        if c == '\0' {
            return Err(TextError::Control);
        }
        if matches!(c, '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}') {
            if !line_breaks {
                return Err(TextError::LineBreak);
            }
        } else if c.is_control() {
            return Err(TextError::Control);
        }
        if is_bidi_control(c) {
            return Err(TextError::Bidi);
        }
    }
    Ok(())
}

fn check_length(s: &str, max: usize) -> Result<(), TextError> {
    if s.chars().count() > max {
        return Err(TextError::TooLong(max));
    }
    Ok(())
}

/// A display name: NFC-normalised, trimmed, one line, at most `max` characters, with at
/// least one visible character.
pub fn name(raw: &str, max: usize) -> Result<String, TextError> {
    let s: String = raw.nfc().collect();
    let s = s.trim();
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    check_chars(s, false)?;
    if s.chars().all(is_invisible) {
        return Err(TextError::Invisible);
    }
    check_length(s, max)?;
    Ok(s.to_owned())
}

/// An identifier given to us by another system (AMC's instance id, an advertiser id, a
/// marketplace id): trimmed, non-empty, no white space or control characters.
pub fn identifier(raw: &str, max: usize) -> Result<String, TextError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    check_chars(s, false)?;
    if s.chars().any(is_invisible) {
        return Err(TextError::Space);
    }
    check_length(s, max)?;
    Ok(s.to_owned())
}

/// Free text that may span lines (a description, a query): no NUL or other control
/// characters but line breaks and tabs, no bidirectional controls, at most `max`
/// characters. Returned as given (a query's text is the user's).
pub fn long_text(raw: &str, max: usize) -> Result<String, TextError> {
    check_chars(raw, true)?;
    check_length(raw, max)?;
    Ok(raw.to_owned())
}

/// Where in a JSON value a string is bad: the path below the value (`a.b[2]`), empty for
/// the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonTextError {
    pub path: String,
    pub error: TextError,
}

/// Checks every key and string of a JSON value for characters Postgres cannot store
/// (NUL) and for other control characters in keys.
pub fn check_json(value: &Value) -> Result<(), JsonTextError> {
    fn walk(v: &Value, path: &mut String) -> Result<(), JsonTextError> {
        let fail = |path: &str, error| {
            Err(JsonTextError {
                path: path.to_owned(),
                error,
            })
        };
        match v {
            Value::String(s) if s.contains('\0') => fail(path, TextError::Control),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if k.chars().any(char::is_control) {
                        return fail(path, TextError::Control);
                    }
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_normalised_trimmed_and_visible() {
        // "é" as e + combining acute becomes one code point.
        assert_eq!(name("  Cafe\u{301} ", 10).unwrap(), "Caf\u{e9}");
        assert_eq!(name("", 10), Err(TextError::Empty));
        assert_eq!(name("   ", 10), Err(TextError::Empty));
        assert_eq!(name("\u{200B}\u{200D}", 10), Err(TextError::Invisible));
        assert_eq!(name("a\u{0}b", 10), Err(TextError::Control));
        assert_eq!(name("a\u{1b}[31m", 10), Err(TextError::Control));
        assert_eq!(name("a\nb", 10), Err(TextError::LineBreak));
        assert_eq!(name("abc\u{202E}fed", 10), Err(TextError::Bidi));
        assert_eq!(name("\u{2067}x", 10), Err(TextError::Bidi));
        assert_eq!(name("abcdefghijk", 10), Err(TextError::TooLong(10)));
        assert_eq!(name("日本語の名前", 10).unwrap(), "日本語の名前");
    }

    #[test]
    fn identifiers_have_no_space() {
        assert_eq!(identifier(" ENTITY1 ", 20).unwrap(), "ENTITY1");
        assert_eq!(identifier("a b", 20), Err(TextError::Space));
        assert_eq!(identifier("a\u{200B}b", 20), Err(TextError::Space));
        assert_eq!(identifier("a\u{0}", 20), Err(TextError::Control));
    }

    #[test]
    fn long_text_keeps_lines_but_not_controls() {
        let q = "SELECT a\n\tFROM t\r\n";
        assert_eq!(long_text(q, 100).unwrap(), q);
        assert_eq!(long_text("a\u{0}", 100), Err(TextError::Control));
        assert_eq!(long_text("a\u{7}", 100), Err(TextError::Control));
        assert_eq!(long_text("x\u{202D}", 100), Err(TextError::Bidi));
        assert_eq!(
            long_text(&"x".repeat(101), 100),
            Err(TextError::TooLong(100))
        );
    }

    #[test]
    fn json_strings_and_keys_are_checked_with_their_path() {
        assert!(check_json(&json!({"a": [1, "x", {"b": null}]})).is_ok());
        let e = check_json(&json!({"a": [1, {"b": "x\u{0}"}]})).unwrap_err();
        assert_eq!(e.path, "a[1].b");
        let e = check_json(&json!({"k\u{0}": 1})).unwrap_err();
        assert_eq!(e.path, "k\u{0}");
        assert_eq!(e.error, TextError::Control);
        assert!(check_json(&json!("x\u{0}")).is_err());
    }
}
