//! Unit and property tests of the renderer.

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
    let sql = "SELECT {{b}}, {{ a }}, {{\tb }} FROM t WHERE x = {{_c9}} AND {{9x}} {{ a b }} {x}";
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
fn placeholders_inside_comments_are_not_rendered() {
    assert_eq!(
        render_v("SELECT 1 -- {{v}}\n", json!("a")).unwrap(),
        "SELECT 1"
    );
    assert_eq!(
        render_v("SELECT 1 /* {{v}} */ + 2", json!("*/ DROP /*")).unwrap(),
        "SELECT 1 /* {{v}} */ + 2"
    );
    // Known, so not `unknown`, but not required either.
    assert_eq!(
        render("SELECT 1 -- {{v}}", &Map::new()).unwrap(),
        "SELECT 1"
    );
    assert!(placeholders("SELECT 1 -- {{v}}").is_empty());
    assert!(is_known_name("SELECT 1 -- {{v}}", "v"));
    assert!(!is_known_name("SELECT 1 -- {{v}}", "w"));
}

#[test]
fn nested_block_comments_are_one_comment() {
    let sql = "SELECT 1 /* a /* {{v}} */ '{{v}}' */ + {{w}}";
    assert_eq!(placeholders(sql), vec!["w"]);
    assert!(is_known_name(sql, "v"));
    assert_eq!(
        render(sql, &params(json!({"w": 2}))).unwrap(),
        "SELECT 1 /* a / *  {{v}} * /  '{{v}}' */ + 2"
    );
    // A comment without one nested in it is written as it was.
    assert_eq!(
        one_line("SELECT /*+ BROADCAST(t) */ 1 /* a * / b */"),
        "SELECT /*+ BROADCAST(t) */ 1 /* a * / b */"
    );
}

/// Whether AMC's dialect nests block comments or not (it does not say), it reads the
/// rendered query as the renderer did: the same comments, the same tokens, and a value
/// placed in what the renderer took for code or for a string stays there.
#[test]
fn comments_end_in_the_same_place_whether_or_not_a_dialect_nests_them() {
    use sqlparser::dialect::AnsiDialect;
    let hostile = "*/ OR 1=1 --";
    for (sql, value, read) in [
        (
            "SELECT 1 /* /* */ x = ' */ FROM t WHERE n = '{{v}}'",
            json!(" OR 1=1 --"),
            "SELECT 1 FROM t WHERE n = ' OR 1=1 --'",
        ),
        (
            "SELECT 1 /* a /* b */ c */ FROM t WHERE n = {{v}}",
            json!(hostile),
            "SELECT 1 FROM t WHERE n = '*/ OR 1=1 --'",
        ),
        (
            "SELECT /*/* x */*/ {{v}} FROM t",
            json!(-5),
            "SELECT -5 FROM t",
        ),
        (
            "SELECT 1 /* x /*/ y */ */ FROM t WHERE n = '{{v}}'",
            json!(hostile),
            "SELECT 1 FROM t WHERE n = '*/ OR 1=1 --'",
        ),
    ] {
        let out = render_v(sql, value).unwrap();
        let tokens = |nests: bool| {
            let t = if nests {
                Tokenizer::new(&GenericDialect {}, &out).tokenize()
            } else {
                Tokenizer::new(&AnsiDialect {}, &out).tokenize()
            };
            t.unwrap_or_else(|e| panic!("{sql} -> {out}: {e}"))
        };
        assert_eq!(tokens(true), tokens(false), "{sql} -> {out}");
        assert_eq!(comments_in(&out).len(), 1, "{sql} -> {out}");
        assert_eq!(significant(&out), significant(read), "{sql} -> {out}");
    }
}

fn one_line(sql: &str) -> String {
    render(sql, &Map::new()).unwrap()
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
    assert_eq!(one_line("SELECT a/* c */b"), "SELECT a/* c */b");
    assert_eq!(one_line("  SELECT 1 ; ; "), "SELECT 1");
    assert_eq!(one_line("SELECT 1--x\n+2"), "SELECT 1 +2");
    assert_eq!(one_line("SELECT ';'"), "SELECT ';'");
    assert_eq!(one_line("SELECT a.b, f(x)::int"), "SELECT a.b, f(x)::int");
    assert_eq!(one_line(""), "");
}

#[test]
fn a_negative_value_never_opens_a_comment() {
    let p = params(json!({"discount": -5, "adv": "Acme"}));
    assert_eq!(
        render(
            "SELECT * FROM t WHERE spend > 100-{{discount}} AND advertiser = {{adv}}",
            &p
        )
        .unwrap(),
        "SELECT * FROM t WHERE spend > 100- -5 AND advertiser = 'Acme'"
    );
    let p = params(json!({"days": -5}));
    assert_eq!(
        render("SELECT DATEADD(day, -{{days}}, d)\nFROM t", &p).unwrap(),
        "SELECT DATEADD(day, - -5, d) FROM t"
    );
    assert_eq!(
        render_v("SELECT 1/{{v}}", json!(-2)).unwrap(),
        "SELECT 1/ -2"
    );
}

/// The comments an independent tokenizer reads in `sql`.
fn comments_in(sql: &str) -> Vec<Token> {
    use sqlparser::tokenizer::Whitespace;
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter(|t| {
            matches!(
                t,
                Token::Whitespace(
                    Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)
                )
            )
        })
        .collect()
}

/// The two queries the bug was found with, kept as they were: `100-{{discount}}` with
/// `-5` once rendered `100--5`, a comment, and flattening to one line then cut the
/// advertiser filter; `-{{days}}` was cut the same way.
#[test]
fn regression_a_negative_value_keeps_the_rest_of_the_query() {
    let out = render(
        "SELECT x FROM t WHERE spend > 100-{{discount}} AND advertiser = {{adv}}",
        &params(json!({"discount": -5, "adv": "Acme"})),
    )
    .unwrap();
    assert!(out.contains("advertiser = 'Acme'"), "{out}");
    assert!(comments_in(&out).is_empty(), "{out}");
    assert_eq!(
        significant(&out),
        significant("SELECT x FROM t WHERE spend > 100 - -5 AND advertiser = 'Acme'"),
        "{out}"
    );

    let out = render(
        "SELECT DATEADD(day, -{{days}}, d) FROM t",
        &params(json!({"days": -5})),
    )
    .unwrap();
    assert!(out.contains(", d) FROM t"), "{out}");
    assert!(comments_in(&out).is_empty(), "{out}");
    assert_eq!(
        significant(&out),
        significant("SELECT DATEADD(day, - -5, d) FROM t"),
        "{out}"
    );
}

#[test]
fn values_are_kept_apart_from_their_neighbours() {
    assert_eq!(render_v("SELECT x{{v}}", json!(5)).unwrap(), "SELECT x 5");
    assert_eq!(render_v("SELECT 1.{{v}}", json!(5)).unwrap(), "SELECT 1. 5");
    assert_eq!(render_v("SELECT {{v}}e3", json!(5)).unwrap(), "SELECT 5 e3");
    assert_eq!(
        render_v("SELECT 'a'{{v}}", json!("b")).unwrap(),
        "SELECT 'a' 'b'"
    );
    assert_eq!(
        render_v("SELECT N{{v}}", json!("b")).unwrap(),
        "SELECT N 'b'"
    );
    assert_eq!(
        render_v("SELECT x<{{v}}", json!(-1)).unwrap(),
        "SELECT x< -1"
    );
    assert_eq!(
        render("SELECT {{a}}{{b}}", &params(json!({"a": "x", "b": "y"}))).unwrap(),
        "SELECT 'x' 'y'"
    );
    // Where nothing can join, nothing is added.
    assert_eq!(
        render_v("WHERE id IN ({{v}})", json!([1, 2])).unwrap(),
        "WHERE id IN (1, 2)"
    );
    assert_eq!(render_v("f(-{{v}})", json!(3)).unwrap(), "f(-3)");
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
        [Token::Word(w), rest @ ..] if w.quote_style.is_none() && w.keyword == Keyword::TRUE => {
            (json!(true), rest)
        }
        [Token::Word(w), rest @ ..] if w.quote_style.is_none() && w.keyword == Keyword::FALSE => {
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

// ---- values among neighbours --------------------------------------------------------

/// What can stand right before a placeholder.
const BEFORE: &[&str] = &[
    "SELECT 100-",
    "SELECT 100 - ",
    "SELECT 1/",
    "SELECT 2*",
    "SELECT x",
    "SELECT x.",
    "SELECT 'a'",
    "SELECT \"c\"",
    "SELECT N",
    "SELECT (",
    "SELECT x<",
    "SELECT x!",
    "SELECT x =",
    "SELECT -- c\n",
    "SELECT /* c */",
    "SELECT a,\n",
    "SELECT DATEADD(day, -",
    "SELECT /* a /* b */ c */",
];

/// What can stand right after it.
const AFTER: &[&str] = &[
    " FROM t",
    "x FROM t",
    "e3 FROM t",
    ".5 FROM t",
    "'b' FROM t",
    "\"d\" FROM t",
    "-- c\nFROM t",
    "/* c */FROM t",
    "\n-- cut here\nAND y FROM t",
    "-1 FROM t",
    "*2 FROM t",
    "/2 FROM t",
    ") FROM t",
    ", d) FROM t",
    "/* x /* y */ z */FROM t",
    "",
];

/// The tokens an independent tokenizer reads, white space and comments dropped.
fn significant(sql: &str) -> Vec<Token> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect()
}

/// Reads the value's literals (one, or a comma-separated list) from the front of `tokens`.
fn read_value<'a>(value: &Value, tokens: &'a [Token]) -> Result<&'a [Token], String> {
    let items = match value {
        Value::Array(items) => items.clone(),
        scalar => vec![scalar.clone()],
    };
    let mut rest = tokens;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            match rest {
                [Token::Comma, r @ ..] => rest = r,
                other => return Err(format!("expected a comma, found {other:?}")),
            }
        }
        let (read, r) = read_literal(rest);
        if !same(&read, item) {
            return Err(format!("read {read} for {item}"));
        }
        rest = r;
    }
    Ok(rest)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 1..4).prop_map(Value::Array),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Whatever stands around a placeholder and whatever its value, the tokens outside
    /// the placeholder are the template's, and the value reads back as exactly its
    /// literals.
    #[test]
    fn a_value_never_changes_the_tokens_around_it(
        before in prop::sample::select(BEFORE),
        after in prop::sample::select(AFTER),
        v in value(),
    ) {
        let template = format!("{before}{{{{v}}}}{after}");
        let out = render_v(&template, v.clone()).unwrap();
        let got = significant(&out);
        let head = significant(before);
        let tail = significant(after);
        prop_assert!(got.len() >= head.len() + tail.len(), "{template} -> {out}");
        prop_assert_eq!(&got[..head.len()], &head[..], "{} -> {}", template, out);
        let rest = read_value(&v, &got[head.len()..])
            .map_err(|e| TestCaseError::fail(format!("{template} -> {out}: {e}")))?;
        prop_assert_eq!(rest, &tail[..], "{} -> {}", template, out);
        prop_assert!(!out.contains('\n'), "{out}");
    }
}
