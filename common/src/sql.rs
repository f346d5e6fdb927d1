//! Safe `{{param}}` rendering of workflow SQL, and flattening SQL to the single line AMC
//! accepts.
//!
//! Rendering is single pass: the template is split into lexical segments (code, `'…'`
//! string literals, `"…"` / `` `…` `` quoted identifiers, `-- …` and `/* … */` comments)
//! and each placeholder is replaced by text built from its value. A value is never scanned
//! again, so a value holding `{{x}}` stays literal text.
//!
//! How a value is written depends on where its placeholder stands:
//! - in code (and in a `--` comment): as an SQL literal. Strings are quoted with `'`
//!   doubled, numbers keep their JSON text, booleans become `TRUE` / `FALSE`, a list of
//!   scalars becomes `lit, lit, …` (for `IN ({{ids}})`);
//! - inside a quoted literal or identifier (`'{{start}}'`): the bare text, with that
//!   quote character doubled, so it cannot close the quotes; lists are refused there;
//! - inside a `/* … */` comment: as in code, but a value that would open or close a
//!   comment is refused.
//!
//! Strings holding a backslash or a control character are always refused: AMC SQL must be
//! one line, and backslash escaping differs between SQL dialects.
//!
//! Typical use: `one_line(&render(sql, params)?)` (render first, so that a placeholder
//! that only appears in a comment still counts as declared).

use serde_json::{Map, Value};

/// Why a template could not be rendered. Each variant names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A placeholder has no value.
    #[error("missing value for parameter `{0}`")]
    Missing(String),
    /// A value was given for a name that is not a placeholder of the SQL.
    #[error("unknown parameter `{0}`: the SQL has no {{{{{0}}}}} placeholder")]
    Unknown(String),
    /// The value cannot be written safely at its placeholder.
    #[error("invalid value for parameter `{name}`: {reason}")]
    InvalidValue { name: String, reason: String },
}

/// The lexical context a piece of SQL sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Code,
    Single,
    Double,
    Backtick,
    LineComment,
    BlockComment,
}

/// A run of SQL in one context; quoted and comment segments include their delimiters.
#[derive(Debug)]
struct Segment<'a> {
    ctx: Ctx,
    text: &'a str,
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

/// Splits SQL into segments. Delimiters are ASCII, so every split is a char boundary.
/// Block comments do not nest.
fn segments(sql: &str) -> Vec<Segment<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut code_start) = (0, 0);
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let (ctx, end) = match b[i] {
            b'\'' => (Ctx::Single, quoted_end(b, i, b'\'')),
            b'"' => (Ctx::Double, quoted_end(b, i, b'"')),
            b'`' => (Ctx::Backtick, quoted_end(b, i, b'`')),
            b'-' if next == Some(b'-') => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .map_or(b.len(), |p| i + p);
                (Ctx::LineComment, end)
            }
            b'/' if next == Some(b'*') => {
                let end = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                (Ctx::BlockComment, end)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if code_start < i {
            out.push(Segment {
                ctx: Ctx::Code,
                text: &sql[code_start..i],
            });
        }
        out.push(Segment {
            ctx,
            text: &sql[i..end],
        });
        i = end;
        code_start = end;
    }
    if code_start < b.len() {
        out.push(Segment {
            ctx: Ctx::Code,
            text: &sql[code_start..],
        });
    }
    out
}

/// One `{{ name }}` occurrence: byte range in its text and the name.
struct Found<'a> {
    start: usize,
    end: usize,
    name: &'a str,
}

fn skip_ws(text: &str, mut i: usize) -> usize {
    while let Some(c) = text[i..].chars().next() {
        if !c.is_whitespace() {
            break;
        }
        i += c.len_utf8();
    }
    i
}

/// Parses a placeholder starting at `start` (which holds `{{`).
fn placeholder_at(text: &str, start: usize) -> Option<Found<'_>> {
    let b = text.as_bytes();
    let name_start = skip_ws(text, start + 2);
    let first = *b.get(name_start)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut name_end = name_start + 1;
    while b
        .get(name_end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        name_end += 1;
    }
    let close = skip_ws(text, name_end);
    text[close..].starts_with("}}").then(|| Found {
        start,
        end: close + 2,
        name: &text[name_start..name_end],
    })
}

fn find_placeholders(text: &str) -> Vec<Found<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = text[i..].find("{{") {
        let at = i + p;
        match placeholder_at(text, at) {
            Some(f) => {
                i = f.end;
                out.push(f);
            }
            None => i = at + 1,
        }
    }
    out
}

/// Names of the `{{ name }}` placeholders (wherever they stand), unique, in order of
/// first appearance.
pub fn placeholders(sql: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for seg in segments(sql) {
        for f in find_placeholders(seg.text) {
            if !names.iter().any(|n| n == f.name) {
                names.push(f.name.to_owned());
            }
        }
    }
    names
}

/// Replaces every placeholder by its value (see the module docs for the rules). Every
/// placeholder needs a value and every value a placeholder.
pub fn render(sql: &str, params: &Map<String, Value>) -> Result<String, RenderError> {
    let names = placeholders(sql);
    if let Some(missing) = names.iter().find(|n| !params.contains_key(n.as_str())) {
        return Err(RenderError::Missing(missing.clone()));
    }
    if let Some(unknown) = params.keys().find(|k| !names.contains(k)) {
        return Err(RenderError::Unknown(unknown.clone()));
    }
    let mut out = String::with_capacity(sql.len());
    for seg in segments(sql) {
        let mut last = 0;
        for f in find_placeholders(seg.text) {
            out.push_str(&seg.text[last..f.start]);
            let value = params
                .get(f.name)
                .ok_or_else(|| RenderError::Missing(f.name.to_owned()))?;
            out.push_str(&render_in(seg.ctx, f.name, value)?);
            last = f.end;
        }
        out.push_str(&seg.text[last..]);
    }
    Ok(out)
}

fn invalid(name: &str, reason: impl Into<String>) -> RenderError {
    RenderError::InvalidValue {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn render_in(ctx: Ctx, name: &str, value: &Value) -> Result<String, RenderError> {
    match ctx {
        Ctx::Code | Ctx::LineComment => literal(name, value),
        Ctx::BlockComment => {
            let text = literal(name, value)?;
            if text.contains("*/") || text.contains("/*") {
                return Err(invalid(
                    name,
                    "the value would open or close the enclosing /* */ comment",
                ));
            }
            Ok(text)
        }
        Ctx::Single => inside_quotes(name, value, '\''),
        Ctx::Double => inside_quotes(name, value, '"'),
        Ctx::Backtick => inside_quotes(name, value, '`'),
    }
}

/// The bare text of a scalar placed inside quotes, with that quote character doubled.
fn inside_quotes(name: &str, value: &Value, quote: char) -> Result<String, RenderError> {
    let text = match value {
        Value::String(s) => {
            check_string(name, s)?;
            s.clone()
        }
        Value::Array(_) => return Err(invalid(name, "a list cannot be placed inside quotes")),
        other => literal(name, other)?,
    };
    Ok(text.replace(quote, &format!("{quote}{quote}")))
}

fn check_string(name: &str, s: &str) -> Result<(), RenderError> {
    if s.contains('\\') {
        return Err(invalid(name, "backslashes are not allowed in values"));
    }
    if s.chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(invalid(
            name,
            "control characters (newline, tab, NUL …) are not allowed in values",
        ));
    }
    Ok(())
}

fn number_text(name: &str, n: &serde_json::Number) -> Result<String, RenderError> {
    if n.is_i64() || n.is_u64() {
        return Ok(n.to_string());
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => {
            // `Display` for f64 never uses an exponent and reads back exactly.
            let mut s = format!("{f}");
            if !s.contains('.') {
                s.push_str(".0");
            }
            Ok(s)
        }
        _ => Err(invalid(name, "numbers must be finite")),
    }
}

fn scalar_literal(name: &str, value: &Value) -> Result<String, RenderError> {
    match value {
        Value::String(s) => {
            check_string(name, s)?;
            Ok(format!("'{}'", s.replace('\'', "''")))
        }
        Value::Number(n) => number_text(name, n),
        Value::Bool(true) => Ok("TRUE".to_owned()),
        Value::Bool(false) => Ok("FALSE".to_owned()),
        Value::Null => Err(invalid(name, "null is not allowed: give a value")),
        Value::Array(_) | Value::Object(_) => Err(invalid(
            name,
            "expected a string, number, boolean or list of those",
        )),
    }
}

/// The SQL literal for a value in code position.
fn literal(name: &str, value: &Value) -> Result<String, RenderError> {
    let Value::Array(items) = value else {
        return scalar_literal(name, value);
    };
    if items.is_empty() {
        return Err(invalid(
            name,
            "an empty list cannot be rendered (IN () is not valid SQL)",
        ));
    }
    let parts = items
        .iter()
        .map(|item| match item {
            Value::Array(_) | Value::Object(_) | Value::Null => Err(invalid(
                name,
                "lists may hold only strings, numbers and booleans",
            )),
            scalar => scalar_literal(name, scalar),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join(", "))
}

/// Flattens SQL to one line: drops `-- …` comments outside literals, turns newlines, tabs
/// and CRs into spaces, collapses whitespace runs outside literals, trims, and drops
/// trailing `;`. Block comments are kept (on one line). Inside literals each newline, tab
/// or CR becomes one space (AMC refuses newlines anywhere in the query).
pub fn one_line(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    for seg in segments(sql) {
        match seg.ctx {
            Ctx::LineComment => pending_space = true,
            Ctx::Code => {
                for c in seg.text.chars() {
                    if c.is_whitespace() {
                        pending_space = true;
                    } else {
                        if pending_space && !out.is_empty() {
                            out.push(' ');
                        }
                        pending_space = false;
                        out.push(c);
                    }
                }
            }
            _ => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.extend(seg.text.chars().map(|c| {
                    if matches!(c, '\n' | '\r' | '\t') {
                        ' '
                    } else {
                        c
                    }
                }));
            }
        }
    }
    while let Some(rest) = out.strip_suffix(';') {
        out = rest.trim_end().to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer};

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn render_v(sql: &str, v: Value) -> Result<String, RenderError> {
        render(sql, &params(json!({ "v": v })))
    }

    #[test]
    fn placeholders_unique_in_order_with_whitespace() {
        let sql =
            "SELECT {{b}}, {{ a }}, {{\tb }} FROM t WHERE x = {{_c9}} AND {{9x}} {{ a b }} {x}";
        assert_eq!(placeholders(sql), vec!["b", "a", "_c9"]);
        assert_eq!(placeholders("{{{x}}}"), vec!["x"]);
        assert!(placeholders("no params {{}} { {x} }").is_empty());
    }

    #[test]
    fn renders_scalars() {
        assert_eq!(
            render_v("SELECT {{v}}", json!("it's")).unwrap(),
            "SELECT 'it''s'"
        );
        assert_eq!(render_v("SELECT {{v}}", json!(42)).unwrap(), "SELECT 42");
        assert_eq!(render_v("SELECT {{v}}", json!(-7)).unwrap(), "SELECT -7");
        assert_eq!(
            render_v("SELECT {{v}}", json!(u64::MAX)).unwrap(),
            format!("SELECT {}", u64::MAX)
        );
        assert_eq!(render_v("SELECT {{v}}", json!(1.5)).unwrap(), "SELECT 1.5");
        assert_eq!(render_v("SELECT {{v}}", json!(2.0)).unwrap(), "SELECT 2.0");
        assert_eq!(
            render_v("SELECT {{v}}", json!(1e-7)).unwrap(),
            "SELECT 0.0000001"
        );
        assert_eq!(
            render_v("SELECT {{v}}", json!(true)).unwrap(),
            "SELECT TRUE"
        );
        assert_eq!(
            render_v("SELECT {{v}}", json!(false)).unwrap(),
            "SELECT FALSE"
        );
        assert_eq!(
            render_v("SELECT {{ v }}", json!("é😀")).unwrap(),
            "SELECT 'é😀'"
        );
    }

    #[test]
    fn renders_lists() {
        let out = render_v("WHERE id IN ({{v}})", json!(["a'b", 1, true])).unwrap();
        assert_eq!(out, "WHERE id IN ('a''b', 1, TRUE)");
        for bad in [json!([]), json!([[1]]), json!([{"a": 1}]), json!([null])] {
            assert!(matches!(
                render_v("IN ({{v}})", bad),
                Err(RenderError::InvalidValue { ref name, .. }) if name == "v"
            ));
        }
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            json!(null),
            json!({"a": 1}),
            json!("a\\b"),
            json!("a\nb"),
            json!("a\tb"),
            json!("a\rb"),
            json!("a\u{0}b"),
            json!("a\u{2028}b"),
        ] {
            let err = render_v("SELECT {{v}}", bad.clone()).unwrap_err();
            assert!(
                matches!(err, RenderError::InvalidValue { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("`v`"), "{err}");
        }
    }

    #[test]
    fn missing_and_unknown_name_the_parameter() {
        let err = render("SELECT {{a}}, {{b}}", &params(json!({"a": 1}))).unwrap_err();
        assert_eq!(err, RenderError::Missing("b".into()));
        assert!(err.to_string().contains("`b`"));
        let err = render("SELECT {{a}}", &params(json!({"a": 1, "z": 2}))).unwrap_err();
        assert_eq!(err, RenderError::Unknown("z".into()));
        assert!(err.to_string().contains("`z`"), "{err}");
        assert!(err.to_string().contains("{{z}}"), "{err}");
        assert_eq!(render("SELECT 1", &Map::new()).unwrap(), "SELECT 1");
    }

    #[test]
    fn repeated_placeholder_renders_everywhere() {
        let out = render("{{a}} + {{ a }}", &params(json!({"a": 3}))).unwrap();
        assert_eq!(out, "3 + 3");
    }

    #[test]
    fn single_pass_never_rerenders_values() {
        let out = render(
            "SELECT {{v}}, {{w}}",
            &params(json!({"v": "{{w}}", "w": 1})),
        )
        .unwrap();
        assert_eq!(out, "SELECT '{{w}}', 1");
    }

    #[test]
    fn placeholders_inside_quotes_get_bare_escaped_text() {
        assert_eq!(
            render_v("WHERE d >= '{{v}}'", json!("2024-01-01")).unwrap(),
            "WHERE d >= '2024-01-01'"
        );
        assert_eq!(
            render_v("WHERE n = '{{v}}'", json!("x' OR 1=1 --")).unwrap(),
            "WHERE n = 'x'' OR 1=1 --'"
        );
        assert_eq!(
            render_v("SELECT \"{{v}}\"", json!("a\"b")).unwrap(),
            "SELECT \"a\"\"b\""
        );
        assert_eq!(
            render_v("SELECT `{{v}}`", json!("a`b")).unwrap(),
            "SELECT `a``b`"
        );
        assert_eq!(render_v("SELECT '{{v}}'", json!(5)).unwrap(), "SELECT '5'");
        assert!(render_v("SELECT '{{v}}'", json!([1])).is_err());
        assert!(render_v("SELECT '{{v}}'", json!("a\\")).is_err());
    }

    #[test]
    fn placeholders_inside_comments() {
        assert_eq!(
            render_v("SELECT 1 -- {{v}}\n", json!("a")).unwrap(),
            "SELECT 1 -- 'a'\n"
        );
        assert_eq!(
            render_v("SELECT 1 /* {{v}} */", json!("a")).unwrap(),
            "SELECT 1 /* 'a' */"
        );
        assert!(render_v("SELECT 1 /* {{v}} */", json!("*/ DROP /*")).is_err());
        assert!(render_v("SELECT 1 /* {{v}} */", json!("/*")).is_err());
    }

    #[test]
    fn one_line_rules() {
        assert_eq!(
            one_line("SELECT a,\n\tb\r\nFROM t;\n"),
            "SELECT a, b FROM t"
        );
        assert_eq!(
            one_line("SELECT a -- the a\nFROM t -- end"),
            "SELECT a FROM t"
        );
        assert_eq!(
            one_line("SELECT '-- not a comment' AS x"),
            "SELECT '-- not a comment' AS x"
        );
        assert_eq!(
            one_line("SELECT \"a -- b\" FROM t"),
            "SELECT \"a -- b\" FROM t"
        );
        assert_eq!(
            one_line("SELECT 'a  b', 'it''s  --x'"),
            "SELECT 'a  b', 'it''s  --x'"
        );
        assert_eq!(one_line("SELECT 'l1\nl2'"), "SELECT 'l1 l2'");
        assert_eq!(
            one_line("SELECT /* keep\n -- me */ 1"),
            "SELECT /* keep  -- me */ 1"
        );
        assert_eq!(one_line("  SELECT 1 ; ; "), "SELECT 1");
        assert_eq!(one_line("SELECT 1--x\n+2"), "SELECT 1 +2");
        assert_eq!(one_line("SELECT ';'"), "SELECT ';'");
        assert_eq!(one_line(""), "");
    }

    // ---- property tests -------------------------------------------------------------

    /// The tokens between `SELECT` and `FROM` of `render("SELECT {{v}} FROM t", …)`,
    /// whitespace dropped.
    fn middle_tokens(rendered: &str) -> Vec<Token> {
        let tokens = Tokenizer::new(&GenericDialect {}, rendered)
            .tokenize()
            .expect("rendered SQL tokenizes");
        let words: Vec<Token> = tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect();
        let is_kw = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
        assert!(is_kw(&words[0], Keyword::SELECT), "{rendered}");
        let n = words.len();
        assert!(is_kw(&words[n - 2], Keyword::FROM), "{rendered}");
        assert!(
            matches!(&words[n - 1], Token::Word(w) if w.value == "t"),
            "{rendered}"
        );
        words[1..n - 2].to_vec()
    }

    /// Reads one literal from the front of `tokens` (a signed number is `-` + number),
    /// returning it as a JSON value and the rest.
    fn read_literal(tokens: &[Token]) -> (Value, &[Token]) {
        match tokens {
            [Token::SingleQuotedString(s), rest @ ..] => (json!(s), rest),
            [Token::Minus, Token::Number(n, false), rest @ ..] => {
                (number_value(&format!("-{n}")), rest)
            }
            [Token::Number(n, false), rest @ ..] => (number_value(n), rest),
            [Token::Word(w), rest @ ..]
                if w.quote_style.is_none() && w.keyword == Keyword::TRUE =>
            {
                (json!(true), rest)
            }
            [Token::Word(w), rest @ ..]
                if w.quote_style.is_none() && w.keyword == Keyword::FALSE =>
            {
                (json!(false), rest)
            }
            other => panic!("not a literal: {other:?}"),
        }
    }

    fn number_value(text: &str) -> Value {
        if let Ok(i) = text.parse::<i64>() {
            return json!(i);
        }
        json!(text.parse::<f64>().expect("number reads back"))
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                x.as_f64() == y.as_f64() && x.is_f64() == y.is_f64()
            }
            _ => a == b,
        }
    }

    fn safe_string() -> impl Strategy<Value = String> {
        let tricky = prop_oneof![
            Just('\''),
            Just('"'),
            Just('-'),
            Just('/'),
            Just('*'),
            Just('{'),
            Just('}'),
            Just('v'),
            Just(' '),
            Just(';'),
            Just('`'),
            Just('é'),
            Just('😀'),
            Just('$'),
            any::<char>(),
        ];
        prop::collection::vec(tricky, 0..40).prop_map(|cs| {
            cs.into_iter()
                .filter(|c| !c.is_control() && *c != '\\' && *c != '\u{2028}' && *c != '\u{2029}')
                .collect()
        })
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            safe_string().prop_map(Value::String),
            any::<i64>().prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    proptest! {
        #[test]
        fn scalar_renders_to_exactly_one_literal(v in scalar()) {
            let out = render_v("SELECT {{v}} FROM t", v.clone()).unwrap();
            let middle = middle_tokens(&out);
            let (read, rest) = read_literal(&middle);
            prop_assert!(rest.is_empty(), "{out}: extra tokens {rest:?}");
            prop_assert!(same(&read, &v), "{out}: read {read} for {v}");
        }

        #[test]
        fn list_renders_to_comma_separated_literals(items in prop::collection::vec(scalar(), 1..6)) {
            let out = render_v("SELECT {{v}} FROM t", Value::Array(items.clone())).unwrap();
            let middle = middle_tokens(&out);
            let mut rest: &[Token] = &middle;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    prop_assert_eq!(&rest[0], &Token::Comma, "{}", out);
                    rest = &rest[1..];
                }
                let (read, r) = read_literal(rest);
                prop_assert!(same(&read, item), "{out}: read {read} for {item}");
                rest = r;
            }
            prop_assert!(rest.is_empty(), "{out}: extra tokens {rest:?}");
        }

        #[test]
        fn string_inside_quotes_reads_back(s in safe_string()) {
            let out = render_v("SELECT '{{v}}' FROM t", json!(s)).unwrap();
            let middle = middle_tokens(&out);
            prop_assert_eq!(middle, vec![Token::SingleQuotedString(s)]);
        }

        #[test]
        fn values_are_never_rendered_again(s in safe_string()) {
            let injected = format!("{s}{{{{w}}}}{s}");
            let p = params(json!({"v": injected, "w": 1}));
            let out = render("SELECT {{v}}, {{w}} FROM t", &p).unwrap();
            let expected = format!("SELECT '{}', 1 FROM t", injected.replace('\'', "''"));
            prop_assert_eq!(out, expected);
        }
    }
}
