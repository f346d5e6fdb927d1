//! Safe `{{param}}` rendering of workflow SQL into the one line AMC accepts.
//!
//! Rendering works on the query's tokens ([`lex`]): the template is split into white
//! space, comments, string literals, quoted identifiers, words, numbers, punctuation and
//! placeholders, and the output is built token by token. A value is never scanned again,
//! so a value holding `{{x}}` stays literal text, and nothing a value holds can change the
//! tokens around it:
//! - in code, a value is written as an SQL literal. Strings are quoted with `'` doubled,
//!   numbers keep their JSON text, booleans become `TRUE` / `FALSE`, a list of scalars
//!   becomes `lit, lit, …` (for `IN ({{ids}})`). Where the literal's first or last
//!   character could join its neighbour into another token (`100-{{d}}` with `-5` would
//!   read `100--5`, a comment; `x{{n}}` would read as one word; `'a'{{s}}` as one
//!   string), a space separates them;
//! - inside a quoted literal or identifier (`'{{start}}'`): the bare text, with that
//!   quote character doubled, so it cannot close the quotes; lists are refused there;
//! - inside a comment: nothing; the comment stays as written. A name that appears only in
//!   comments may be given a value (it is not unknown) but needs none.
//!
//! The output is one line: `--` comments are dropped by the tokenizer (each becomes a
//! space, never a line cut), `/* … */` comments are kept as written (on one line; markers
//! such as hints stay), white space runs become one space, line breaks inside literals
//! and block comments become spaces, and trailing `;` go. Block comments nest; a comment
//! nested in another is written with its markers split (`/ * `, `* / `), so that AMC
//! finds the comment's end where the renderer did whether or not its dialect nests
//! comments. Strings holding a backslash or a control character are refused: backslash
//! escaping differs between SQL dialects.

mod lex;

use lex::Kind;
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

/// The `{{ name }}` occurrences inside a quoted token's or comment's text: `(start, end,
/// name)` byte ranges within `text`.
fn inner_placeholders(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = text[i..].find("{{") {
        let at = i + p;
        match lex::placeholder_end(text, at) {
            Some(end) => {
                let name = text[at + 2..end - 2].trim();
                out.push((at, end, name));
                i = end;
            }
            None => i = at + 1,
        }
    }
    out
}

fn is_quoted(kind: Kind) -> bool {
    matches!(kind, Kind::Str | Kind::DoubleQuoted | Kind::Backtick)
}

fn is_comment(kind: Kind) -> bool {
    matches!(kind, Kind::LineComment | Kind::BlockComment)
}

/// Every placeholder name with whether it stands in a comment only.
fn names(sql: &str) -> (Vec<String>, Vec<String>) {
    let (mut required, mut in_comments): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let add = |list: &mut Vec<String>, n: &str| {
        if !list.iter().any(|x| x == n) {
            list.push(n.to_owned());
        }
    };
    for t in lex::tokens(sql) {
        if let Some(n) = t.placeholder_name() {
            add(&mut required, n);
        } else if is_quoted(t.kind) {
            for (_, _, n) in inner_placeholders(t.text) {
                add(&mut required, n);
            }
        } else if is_comment(t.kind) {
            for (_, _, n) in inner_placeholders(t.text) {
                add(&mut in_comments, n);
            }
        }
    }
    in_comments.retain(|n| !required.contains(n));
    (required, in_comments)
}

/// Names of the `{{ name }}` placeholders a run must give values for (in code or inside
/// quotes; not those in comments), unique, in order of first appearance.
pub fn placeholders(sql: &str) -> Vec<String> {
    names(sql).0
}

/// Whether `name` may be given a value: a placeholder anywhere, comments included.
pub fn is_known_name(sql: &str, name: &str) -> bool {
    let (required, in_comments) = names(sql);
    required.iter().chain(&in_comments).any(|n| n == name)
}

/// The rendered query as it is built: one line, a space wherever the template had space
/// or a comment, and wherever a value's text would join its neighbour.
#[derive(Default)]
struct Line {
    text: String,
    space: bool,
    after_value: bool,
}

impl Line {
    fn push(&mut self, piece: &str, is_value: bool) {
        let Some(first) = piece.chars().next() else {
            return;
        };
        if let Some(last) = self.text.chars().next_back() {
            let joins = (is_value || self.after_value) && lex::would_join(last, first);
            if self.space || joins {
                self.text.push(' ');
            }
        }
        self.space = false;
        self.text.push_str(piece);
        self.after_value = is_value;
    }

    fn finish(mut self) -> String {
        loop {
            let trimmed = self.text.trim_end();
            match trimmed.strip_suffix(';') {
                Some(rest) => self.text = rest.to_owned(),
                None => return trimmed.to_owned(),
            }
        }
    }
}

/// The text with each line break or tab as a space.
fn flatten(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Renders the template to the one line AMC is sent (see the module docs). Every
/// placeholder outside comments needs a value, and every value a placeholder.
pub fn render(sql: &str, params: &Map<String, Value>) -> Result<String, RenderError> {
    let (required, in_comments) = names(sql);
    if let Some(missing) = required.iter().find(|n| !params.contains_key(n.as_str())) {
        return Err(RenderError::Missing(missing.clone()));
    }
    if let Some(unknown) = params
        .keys()
        .find(|k| !required.contains(k) && !in_comments.contains(k))
    {
        return Err(RenderError::Unknown(unknown.clone()));
    }
    let value = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| RenderError::Missing(name.to_owned()))
    };
    let mut line = Line::default();
    for t in lex::tokens(sql) {
        match t.kind {
            Kind::Space | Kind::LineComment => line.space = true,
            Kind::BlockComment => line.push(&flatten(&lex::unnested(t.text)), false),
            Kind::Placeholder => {
                let name = t.placeholder_name().unwrap_or_default();
                line.push(&literal(name, value(name)?)?, true);
            }
            Kind::Str | Kind::DoubleQuoted | Kind::Backtick => {
                let quote = t.text.chars().next().unwrap_or('\'');
                let mut text = String::with_capacity(t.text.len());
                let mut last = 0;
                for (start, end, name) in inner_placeholders(t.text) {
                    text.push_str(&t.text[last..start]);
                    text.push_str(&inside_quotes(name, value(name)?, quote)?);
                    last = end;
                }
                text.push_str(&t.text[last..]);
                line.push(&flatten(&text), false);
            }
            Kind::Word | Kind::Number | Kind::Punct => line.push(t.text, false),
        }
    }
    Ok(line.finish())
}

fn invalid(name: &str, reason: impl Into<String>) -> RenderError {
    RenderError::InvalidValue {
        name: name.to_owned(),
        reason: reason.into(),
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

#[cfg(test)]
mod tests;
