//! A tokenizer of AMC's SQL dialect, as far as rendering needs it: white space, `--` and
//! `/* */` comments, `'…'` strings, `"…"` and `` `…` `` quoted identifiers (a doubled
//! quote stays inside), words, numbers, `{{ name }}` placeholders, and single-character
//! punctuation. Every byte of the input belongs to exactly one token, so the tokens put
//! back together are the input.
//!
//! Block comments nest (`/* a /* b */ c */` is one comment), as in Spark SQL (since 3.0,
//! SPARK-28880), PostgreSQL and the SQL standard. AMC does not document whether its
//! dialect nests them, so the renderer writes a nested comment out with its inner markers
//! split ([`unnested`]): the comment then ends at the same place for a reader that nests
//! and for one that does not.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Space,
    LineComment,
    BlockComment,
    /// `'…'`; placeholders inside are substituted as bare text.
    Str,
    /// `"…"`.
    DoubleQuoted,
    /// `` `…` ``.
    Backtick,
    /// An identifier or keyword.
    Word,
    Number,
    /// `{{ name }}` in code.
    Placeholder,
    /// Any other character (operators, parentheses, commas, …), one at a time.
    Punct,
}

/// One token: its kind and its text (for a placeholder, the whole `{{ … }}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
}

impl<'a> Token<'a> {
    /// The name of a placeholder token.
    pub fn placeholder_name(&self) -> Option<&'a str> {
        (self.kind == Kind::Placeholder).then(|| {
            self.text
                .trim_start_matches('{')
                .trim_end_matches('}')
                .trim()
        })
    }
}

/// Index just past the quote closing the quoted run starting at `start` (a doubled quote
/// stays inside); the end of input when unterminated.
fn quoted_end(b: &[u8], start: usize, q: u8) -> usize {
    let mut j = start + 1;
    while j < b.len() {
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The end of a char run starting at `i` whose chars satisfy `f`.
fn run_end(s: &str, i: usize, f: impl Fn(char) -> bool) -> usize {
    s[i..]
        .char_indices()
        .find(|(_, c)| !f(*c))
        .map_or(s.len(), |(j, _)| i + j)
}

/// The end of a number starting at `i`: digits, a fraction, an exponent.
fn number_end(s: &str, i: usize) -> usize {
    let b = s.as_bytes();
    let mut j = i;
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    j = digits(j);
    if b.get(j) == Some(&b'.') {
        j = digits(j + 1);
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if b.get(k).is_some_and(u8::is_ascii_digit) {
            j = digits(k);
        }
    }
    j
}

/// Where a block comment starting at `i` (which holds `/*`) ends: just past the `*/`
/// closing it, nested comments counted; the end of input when unterminated.
fn block_comment_end(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            (b'/', b'*') => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j;
                }
            }
            _ => j += 1,
        }
    }
    b.len()
}

/// A block comment token's text with the markers of the comments nested in it written
/// `/ * ` and `* / `, so that it holds no `/*` or `*/` but its own opening and closing
/// ones. A comment with nothing nested in it comes back as it is.
pub(crate) fn unnested(comment: &str) -> String {
    let b = comment.as_bytes();
    let mut out = String::with_capacity(comment.len());
    let (mut depth, mut copied, mut j) = (0usize, 0, 0);
    while j + 1 < b.len() {
        let split = match (b[j], b[j + 1]) {
            (b'/', b'*') => {
                depth += 1;
                (depth > 1).then_some("/ * ")
            }
            (b'*', b'/') => {
                depth = depth.saturating_sub(1);
                (depth > 0).then_some("* / ")
            }
            _ => {
                j += 1;
                continue;
            }
        };
        if let Some(split) = split {
            out.push_str(&comment[copied..j]);
            out.push_str(split);
            copied = j + 2;
        }
        j += 2;
    }
    out.push_str(&comment[copied..]);
    out
}

/// The end of a `{{ name }}` placeholder starting at `i` (which holds `{{`), if it is one.
pub(crate) fn placeholder_end(s: &str, i: usize) -> Option<usize> {
    if !s[i..].starts_with("{{") {
        return None;
    }
    let skip_ws = |j: usize| run_end(s, j, char::is_whitespace);
    let name_start = skip_ws(i + 2);
    let first = s[name_start..].chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let name_end = run_end(s, name_start, |c| c.is_ascii_alphanumeric() || c == '_');
    let close = skip_ws(name_end);
    s[close..].starts_with("}}").then_some(close + 2)
}

/// Splits SQL into tokens. Delimiters are ASCII, so every split is a char boundary.
pub(crate) fn tokens(sql: &str) -> Vec<Token<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < sql.len() {
        let c = sql[i..].chars().next().unwrap_or(' ');
        let next = b.get(i + 1).copied();
        let (kind, end) = match c {
            c if c.is_whitespace() => (Kind::Space, run_end(sql, i, char::is_whitespace)),
            '\'' => (Kind::Str, quoted_end(b, i, b'\'')),
            '"' => (Kind::DoubleQuoted, quoted_end(b, i, b'"')),
            '`' => (Kind::Backtick, quoted_end(b, i, b'`')),
            '-' if next == Some(b'-') => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .map_or(b.len(), |p| i + p);
                (Kind::LineComment, end)
            }
            '/' if next == Some(b'*') => (Kind::BlockComment, block_comment_end(b, i)),
            '{' => match placeholder_end(sql, i) {
                Some(end) => (Kind::Placeholder, end),
                None => (Kind::Punct, i + 1),
            },
            c if c.is_ascii_digit() => (Kind::Number, number_end(sql, i)),
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => (Kind::Number, number_end(sql, i)),
            c if is_word_start(c) => (Kind::Word, run_end(sql, i, is_word_char)),
            c => (Kind::Punct, i + c.len_utf8()),
        };
        out.push(Token {
            kind,
            text: &sql[i..end],
        });
        i = end;
    }
    out
}

/// Characters that other operator characters can join into one operator.
fn is_operator_char(c: char) -> bool {
    matches!(
        c,
        '+' | '-'
            | '*'
            | '/'
            | '<'
            | '>'
            | '='
            | '~'
            | '!'
            | '@'
            | '#'
            | '%'
            | '^'
            | '&'
            | '|'
            | '?'
            | ':'
    )
}

fn is_quote(c: char) -> bool {
    matches!(c, '\'' | '"' | '`')
}

/// Whether text ending in `a` followed directly by text starting with `b` could read as
/// different tokens than the two texts read alone: a word or number running on (`x5`,
/// `1.5`, `1e-5`), a comment opening (`--`, `/*`) or closing (`*/`), a string or quoted
/// name running on (`'a''b'`) or taking a prefix (`N'…'`, `E'…'`), operators fusing
/// (`<-`, `!-`), or a sign joining an exponent.
pub(crate) fn would_join(a: char, b: char) -> bool {
    let wordish = |c: char| is_word_char(c) || c == '.';
    (wordish(a) && wordish(b))
        || (is_quote(b) && (wordish(a) || a == b))
        || (is_quote(a) && (a == b || wordish(b)))
        || (is_operator_char(a) && is_operator_char(b))
        || (matches!(b, '-' | '+') && wordish(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str)> {
        tokens(sql).into_iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn tokens_cover_the_input() {
        for sql in [
            "SELECT a, 'it''s' AS \"q\"\"x\" FROM t -- c\nWHERE x >= 1.5e-3 /* b */ AND {{ p }}",
            "'unterminated",
            "/* open",
            "{ {x} } {{9}} {{_a1}}",
            "é😀 `b``t`",
        ] {
            let joined: String = tokens(sql).iter().map(|t| t.text).collect();
            assert_eq!(joined, sql);
        }
    }

    #[test]
    fn kinds_of_tokens() {
        use Kind::*;
        assert_eq!(
            kinds("a1 12.5e+3 .5 'x' -- y\n/*z*/{{ v }}-"),
            vec![
                (Word, "a1"),
                (Space, " "),
                (Number, "12.5e+3"),
                (Space, " "),
                (Number, ".5"),
                (Space, " "),
                (Str, "'x'"),
                (Space, " "),
                (LineComment, "-- y"),
                (Space, "\n"),
                (BlockComment, "/*z*/"),
                (Placeholder, "{{ v }}"),
                (Punct, "-"),
            ]
        );
        assert_eq!(tokens("{{ v }}")[0].placeholder_name(), Some("v"));
        assert_eq!(kinds("{{9x}}")[0], (Punct, "{"));
    }

    #[test]
    fn block_comments_nest() {
        use Kind::*;
        assert_eq!(
            kinds("/* a /* b */ c */x"),
            vec![(BlockComment, "/* a /* b */ c */"), (Word, "x")]
        );
        assert_eq!(
            kinds("/*/**/*/ /**/ /*/ x */"),
            vec![
                (BlockComment, "/*/**/*/"),
                (Space, " "),
                (BlockComment, "/**/"),
                (Space, " "),
                (BlockComment, "/*/ x */"),
            ]
        );
        // One level short: the rest of the input is the comment.
        assert_eq!(
            kinds("/* a /* b */ x"),
            vec![(BlockComment, "/* a /* b */ x")]
        );
        assert_eq!(
            kinds("/*+ BROADCAST(t) */ 1"),
            vec![
                (BlockComment, "/*+ BROADCAST(t) */"),
                (Space, " "),
                (Number, "1")
            ]
        );
    }

    #[test]
    fn unnested_comments_hold_only_their_own_markers() {
        for (comment, flat) in [
            ("/* plain * / text */", "/* plain * / text */"),
            ("/* a /* b */ c */", "/* a / *  b * /  c */"),
            ("/*/**/*/", "/*/ * * / */"),
            ("/* x /*/ y */ */", "/* x / * / y * /  */"),
            ("/* open /* b */ x", "/* open / *  b * /  x"),
        ] {
            assert_eq!(unnested(comment), flat, "{comment}");
            let inner = &flat[2..];
            let inner = inner.strip_suffix("*/").unwrap_or(inner);
            assert!(!inner.contains("/*") && !inner.contains("*/"), "{flat}");
        }
    }

    #[test]
    fn joins() {
        for (a, b) in [
            ('x', '5'),
            ('1', '.'),
            ('-', '-'),
            ('/', '*'),
            ('*', '/'),
            ('\'', '\''),
            ('N', '\''),
            ('<', '-'),
            ('e', '-'),
            ('"', 'x'),
        ] {
            assert!(would_join(a, b), "{a}{b}");
        }
        for (a, b) in [
            ('(', '-'),
            (',', '\''),
            ('=', '\''),
            ('5', ')'),
            ('\'', ','),
        ] {
            assert!(!would_join(a, b), "{a}{b}");
        }
    }
}
