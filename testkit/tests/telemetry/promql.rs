//! The metric names the PromQL expressions of `ops/prometheus/alerts.yml` use.

use std::collections::BTreeSet;

/// PromQL words that are not metric names: aggregations, set and comparison operators,
/// modifiers.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Modifiers followed by a list of label names in parentheses.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The `expr` of every rule in an alerting-rules file (single-line, or a `|`/`>` block).
pub fn expressions(yaml: &str) -> Vec<String> {
    values_of(yaml, "expr")
}

/// Every value of `key` in a YAML text, at any depth (`key: value`, `- key: value`, quoted
/// or not, or a `|`/`>` block), without a YAML parser.
pub fn values_of(yaml: &str, key: &str) -> Vec<String> {
    let key = format!("{key}:");
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some(at) = line
            .find(&key)
            .filter(|&at| line[..at].chars().all(|c| c.is_whitespace() || c == '-'))
        else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let value = line[at + key.len()..].trim();
        if value.starts_with('|') || value.starts_with('>') {
            let mut block = Vec::new();
            while i < lines.len()
                && (lines[i].trim().is_empty()
                    || lines[i].len() - lines[i].trim_start().len() > indent)
            {
                block.push(lines[i].trim());
                i += 1;
            }
            out.push(block.join("\n").trim().to_owned());
        } else {
            out.push(value.trim_matches(['\'', '"']).to_owned());
        }
    }
    out
}

/// The metric names `expr` selects.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| -> usize {
        let mut j = from;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            match (quote, chars[j]) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), '\\') => j += 1,
                (None, '"' | '\'' | '`') => quote = Some(chars[j]),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_to(i + 1, '}');
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_to(i + 1, c);
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let called = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) && called {
                i = skip_to(next + 1, ')');
            } else if word == "offset" {
                // The duration after it.
                i = next;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else if !called && !KEYWORDS.contains(&word.as_str()) {
                out.insert(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_told_from_functions_labels_and_keywords() {
        let e = r#"sum by (operation) (rate(amc_requests_total{operation!="token",status=~"5..|error"}[5m]))
            / on() group_left sum without (instance) (rate(x:y_total[5m] offset 1h)) > 0.2
            or max(workers_alive) < 1e3 unless absent(up) and histogram_quantile(0.9, d_bucket) > bool 1"#;
        let names: Vec<String> = metric_names(e).into_iter().collect();
        assert_eq!(
            names,
            [
                "amc_requests_total",
                "d_bucket",
                "up",
                "workers_alive",
                "x:y_total"
            ]
        );
    }

    #[test]
    fn expressions_are_read_in_both_yaml_forms() {
        let y = "rules:\n  - alert: A\n    expr: max(a) > 1\n    for: 1m\n  - alert: B\n    expr: |\n      b\n        or c\n    for: 2m\n";
        assert_eq!(expressions(y), ["max(a) > 1", "b\nor c"]);
    }
}
