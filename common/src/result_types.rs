//! Typed results: each column of a stored result carries one type, inferred over every
//! cell of the whole result while it streams into the store (a few bytes of state per
//! column, whatever the row count), saved with the column names on the execution row, and
//! used to turn a page's cells into JSON values.
//!
//! The rules, per non-empty cell (empty cells never decide a type):
//! - `integer`: `-?(0|[1-9][0-9]*)` fitting a signed 64-bit integer;
//! - `decimal`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` with a point or an
//!   exponent, or an integer too large for 64 bits;
//! - `boolean`: `true` or `false`, any letter case;
//! - `date`: `YYYY-MM-DD`, a real calendar day;
//! - `timestamp`: a date, `T` or a space, `HH:MM:SS`, optionally `.` and 1 to 9 digits,
//!   optionally `Z`, ` UTC` or an offset `±HH:MM`/`±HHMM`;
//! - anything else is `string`.
//!
//! A column whose cells are all one type has that type; integers mixed with decimals make
//! `decimal`; any other mix (or a column with no non-empty cell) is `string`. Leading zeros
//! (`007`, `00.5`) make a string, so codes and zip codes keep their digits.
//!
//! As JSON: empty cells are `null`; integers are numbers (exact 64-bit values); booleans are
//! booleans; decimals are numbers when their value survives the round trip through an
//! IEEE-754 double (`0.1`, `12.50`), otherwise the string as stored
//! (`9007199254740993.5`, `1e400`); dates, timestamps and strings are strings.

use serde_json::{Map, Value};

crate::text_enum! {
    /// The type of a result column.
    pub enum ColumnType("column type") {
        Integer = "integer",
        Decimal = "decimal",
        Boolean = "boolean",
        Date = "date",
        Timestamp = "timestamp",
        String = "string",
    }
}

impl ColumnType {
    /// The type of one non-empty cell.
    pub fn of_cell(cell: &str) -> ColumnType {
        if is_plain_integer(cell) {
            return if cell.parse::<i64>().is_ok() {
                ColumnType::Integer
            } else {
                ColumnType::Decimal
            };
        }
        if is_decimal(cell) {
            ColumnType::Decimal
        } else if cell.eq_ignore_ascii_case("true") || cell.eq_ignore_ascii_case("false") {
            ColumnType::Boolean
        } else if is_date(cell) {
            ColumnType::Date
        } else if is_timestamp(cell) {
            ColumnType::Timestamp
        } else {
            ColumnType::String
        }
    }

    /// The type of a column holding cells of `self` and of `other`.
    fn join(self, other: ColumnType) -> ColumnType {
        use ColumnType::{Decimal, Integer};
        match (self, other) {
            (a, b) if a == b => a,
            (Integer, Decimal) | (Decimal, Integer) => Decimal,
            _ => ColumnType::String,
        }
    }

    /// A stored cell as JSON (see the module docs).
    pub fn to_json(self, cell: String) -> Value {
        if cell.is_empty() {
            return Value::Null;
        }
        match self {
            ColumnType::Integer => match cell.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(cell),
            },
            ColumnType::Decimal => match exact_double(&cell) {
                Some(n) => n,
                None => Value::String(cell),
            },
            ColumnType::Boolean if cell.eq_ignore_ascii_case("true") => Value::Bool(true),
            ColumnType::Boolean if cell.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => Value::String(cell),
        }
    }
}

/// `-?(0|[1-9][0-9]*)`.
fn is_plain_integer(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    !b.is_empty() && b.iter().all(u8::is_ascii_digit) && (b[0] != b'0' || b.len() == 1)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` with a point or an exponent.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) && (!int.starts_with('0') || int.len() == 1);
    let frac_ok = frac.is_none_or(digits);
    let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    int_ok && frac_ok && exp_ok && (frac.is_some() || exponent.is_some())
}

/// `YYYY-MM-DD`, a real day.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// A date, `T` or a space, `HH:MM:SS`, an optional fraction of 1 to 9 digits and an
/// optional zone (`Z`, ` UTC`, `±HH:MM`, `±HHMM`).
fn is_timestamp(s: &str) -> bool {
    if s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return false;
    }
    let (date, rest) = s.split_at(10);
    let b = rest.as_bytes();
    if !is_date(date) || !matches!(b[0], b'T' | b' ') {
        return false;
    }
    let time = &rest[1..9];
    let tb = time.as_bytes();
    let shape = tb[2] == b':'
        && tb[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| tb[i].is_ascii_digit());
    if !shape || chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").is_err() {
        return false;
    }
    let mut tail = &rest[9..];
    if let Some(f) = tail.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&n) {
            return false;
        }
        tail = &f[n..];
    }
    match tail.as_bytes() {
        [] | [b'Z'] => true,
        _ if tail == " UTC" => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && (*h1 - b'0') * 10 + (*h2 - b'0') <= 23
                && (*m1 - b'0') * 10 + (*m2 - b'0') <= 59
        }
        _ => false,
    }
}

/// `s` (a decimal) as a JSON number when the double nearest to it reads back as the same
/// value; `None` when a double would change it.
fn exact_double(s: &str) -> Option<Value> {
    let f: f64 = s.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let same = normalize(s)? == normalize(&format!("{f:e}"))?;
    same.then(|| serde_json::Number::from_f64(f).map(Value::Number))
        .flatten()
}

/// A decimal's value as (negative, significant digits, exponent of the point): `0.120`
/// and `1.2e-1` both give `(false, "12", 0)`; zero gives `(false, "", 0)`.
fn normalize(s: &str) -> Option<(bool, String, i64)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], s[at + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = int.chars().chain(frac.chars()).collect();
    let mut point = i64::try_from(int.len()).ok()?.checked_add(exponent)?;
    let trimmed = all.trim_start_matches('0');
    point = point.checked_sub(i64::try_from(all.len() - trimmed.len()).ok()?)?;
    let digits = trimmed.trim_end_matches('0');
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits.to_owned(), point))
}

/// Infers the column types of a result as its rows stream by.
#[derive(Debug, Clone, Default)]
pub struct TypeInference {
    /// Per column: the join of its non-empty cells so far (`None`: none seen yet).
    columns: Vec<Option<ColumnType>>,
}

impl TypeInference {
    /// Starts inferring `n` columns (the header's).
    pub fn new(n: usize) -> Self {
        Self {
            columns: vec![None; n],
        }
    }

    /// Takes one data row into account (cells past the header's columns are ignored).
    pub fn observe<S: AsRef<str>>(&mut self, row: &[S]) {
        for (seen, cell) in self.columns.iter_mut().zip(row) {
            let cell = cell.as_ref();
            if cell.is_empty() || *seen == Some(ColumnType::String) {
                continue;
            }
            let t = ColumnType::of_cell(cell);
            *seen = Some(seen.map_or(t, |s| s.join(t)));
        }
    }

    /// Each column's type (`string` for a column with no non-empty cell).
    pub fn types(&self) -> Vec<ColumnType> {
        self.columns
            .iter()
            .map(|t| t.unwrap_or(ColumnType::String))
            .collect()
    }
}

/// A result's columns as stored on the execution row (`result_columns`): objects
/// `{"name", "type"}` since types exist; a plain array of names from earlier builds.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumns {
    pub names: Vec<String>,
    /// `None` for a result stored before types existed (served as strings).
    pub types: Option<Vec<ColumnType>>,
}

impl ResultColumns {
    /// The stored form of typed columns.
    pub fn to_json(names: &[String], types: &[ColumnType]) -> Value {
        Value::Array(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let t = types.get(i).copied().unwrap_or(ColumnType::String);
                    let mut o = Map::new();
                    o.insert("name".into(), Value::String(name.clone()));
                    o.insert("type".into(), Value::String(t.as_str().into()));
                    Value::Object(o)
                })
                .collect(),
        )
    }

    /// Reads either stored form; anything unreadable gives no columns.
    pub fn from_json(stored: Option<&Value>) -> Self {
        let items = stored.and_then(Value::as_array).map(Vec::as_slice);
        let items = items.unwrap_or_default();
        let typed = items.iter().all(Value::is_object) && !items.is_empty();
        if !typed {
            return Self {
                names: items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                types: None,
            };
        }
        let mut names = Vec::with_capacity(items.len());
        let mut types = Vec::with_capacity(items.len());
        for item in items {
            names.push(item["name"].as_str().unwrap_or_default().to_owned());
            let t = item["type"].as_str().and_then(|t| t.parse().ok());
            types.push(t.unwrap_or(ColumnType::String));
        }
        Self {
            names,
            types: Some(types),
        }
    }

    /// Each column's type as clients see it (`string` for an untyped result).
    pub fn public_types(&self) -> Vec<ColumnType> {
        self.types
            .clone()
            .unwrap_or_else(|| vec![ColumnType::String; self.names.len()])
    }

    /// One stored row as JSON cells: typed (see the module docs), or strings as stored
    /// for an untyped result.
    pub fn row_json(&self, row: Vec<String>) -> Vec<Value> {
        match &self.types {
            None => row.into_iter().map(Value::String).collect(),
            Some(types) => row
                .into_iter()
                .enumerate()
                .map(|(i, cell)| {
                    types
                        .get(i)
                        .copied()
                        .unwrap_or(ColumnType::String)
                        .to_json(cell)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ColumnType::*;
    use super::*;
    use serde_json::json;

    fn infer(rows: &[&[&str]]) -> Vec<ColumnType> {
        let mut t = TypeInference::new(rows[0].len());
        for r in rows {
            t.observe(r);
        }
        t.types()
    }

    #[test]
    fn every_type_is_recognised() {
        for (cell, t) in [
            ("0", Integer),
            ("42", Integer),
            ("-17", Integer),
            ("9223372036854775807", Integer),
            ("-9223372036854775808", Integer),
            ("9223372036854775808", Decimal),
            ("0.1", Decimal),
            ("-12.50", Decimal),
            ("1e10", Decimal),
            ("2.5E-3", Decimal),
            ("true", Boolean),
            ("FALSE", Boolean),
            ("2024-02-29", Date),
            ("2024-01-31 23:59:59", Timestamp),
            ("2024-01-31T23:59:59", Timestamp),
            ("2024-01-31T23:59:59.123Z", Timestamp),
            ("2024-01-31 23:59:59.123456789 UTC", Timestamp),
            ("2024-01-31T23:59:59+05:30", Timestamp),
            ("2024-01-31T23:59:59-0800", Timestamp),
            ("campaign_1", String),
            ("007", String),
            ("00.5", String),
            (".5", String),
            ("5.", String),
            ("+5", String),
            ("1e", String),
            ("NaN", String),
            ("inf", String),
            ("yes", String),
            ("2023-02-29", String),
            ("2024-13-01", String),
            ("2024-1-01", String),
            ("2024-01-31 24:00:00", String),
            ("2024-01-31 23:59", String),
            ("2024-01-31T23:59:59.", String),
            ("2024-01-31T23:59:59.1234567890", String),
            ("2024-01-31T23:59:59+25:00", String),
            ("2024-01-31T23:59:59 PST", String),
            ("2024-01-31Té3:59:59", String),
            (" 42", String),
        ] {
            assert_eq!(ColumnType::of_cell(cell), t, "{cell:?}");
        }
    }

    #[test]
    fn columns_take_the_type_of_all_their_cells() {
        let rows: &[&[&str]] = &[
            &["1", "1", "true", "2024-01-01", "x", "1", "", "2024-01-01"],
            &[
                "2",
                "2.5",
                "false",
                "2024-01-02",
                "",
                "true",
                "",
                "2024-01-01 00:00:00",
            ],
            &["", "3", "", "", "7", "", "", ""],
        ];
        assert_eq!(
            infer(rows),
            vec![
                Integer, Decimal, Boolean, Date, String, String, String, String
            ]
        );
    }

    #[test]
    fn empty_cells_decide_nothing() {
        assert_eq!(
            infer(&[&["", ""], &["5", ""], &["", ""]]),
            vec![Integer, String]
        );
        // A short row leaves the missing cells empty; extra cells are ignored.
        assert_eq!(infer(&[&["1.5"], &["2", "x", "y"]]), vec![Decimal]);
        assert_eq!(TypeInference::new(2).types(), vec![String, String]);
    }

    #[test]
    fn a_string_stays_a_string() {
        assert_eq!(infer(&[&["a"], &["1"], &["2"]]), vec![String]);
        assert_eq!(infer(&[&["1"], &["true"], &["2"]]), vec![String]);
    }

    #[test]
    fn cells_become_json_values() {
        assert_eq!(Integer.to_json("42".into()), json!(42));
        assert_eq!(
            Integer.to_json("-9223372036854775808".into()),
            json!(i64::MIN)
        );
        assert_eq!(
            Integer.to_json("9007199254740993".into()).to_string(),
            "9007199254740993"
        );
        assert_eq!(Integer.to_json(std::string::String::new()), Value::Null);
        assert_eq!(Boolean.to_json("TRUE".into()), json!(true));
        assert_eq!(Boolean.to_json("false".into()), json!(false));
        assert_eq!(Date.to_json("2024-01-01".into()), json!("2024-01-01"));
        assert_eq!(
            Timestamp.to_json("2024-01-01 10:00:00".into()),
            json!("2024-01-01 10:00:00")
        );
        assert_eq!(String.to_json("007".into()), json!("007"));
        assert_eq!(String.to_json(std::string::String::new()), Value::Null);
    }

    #[test]
    fn decimals_are_numbers_only_while_a_double_keeps_them() {
        for (cell, out) in [
            ("0.1", json!(0.1)),
            ("12.50", json!(12.5)),
            ("-0.0", json!(-0.0)),
            ("1e10", json!(1e10)),
            ("2.5E-3", json!(0.0025)),
            ("3", json!(3.0)),
            ("123456789.123456", json!(123_456_789.123_456)),
            ("9007199254740992", json!(9_007_199_254_740_992.0)),
            ("9007199254740993", json!("9007199254740993")),
            ("9007199254740993.0", json!("9007199254740993.0")),
            (
                "0.1000000000000000055511151231257827",
                json!("0.1000000000000000055511151231257827"),
            ),
            ("12345678901234567890", json!("12345678901234567890")),
            ("1e400", json!("1e400")),
            ("1e-400", json!("1e-400")),
            ("1e99999999999999999999", json!("1e99999999999999999999")),
        ] {
            assert_eq!(Decimal.to_json(cell.into()), out, "{cell}");
        }
        assert_eq!(Decimal.to_json("0.1".into()).to_string(), "0.1");
    }

    #[test]
    fn stored_columns_round_trip_and_old_ones_stay_strings() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let stored = ResultColumns::to_json(&names, &[Integer, Boolean]);
        assert_eq!(
            stored,
            json!([{"name": "a", "type": "integer"}, {"name": "b", "type": "boolean"}])
        );
        let typed = ResultColumns::from_json(Some(&stored));
        assert_eq!(typed.names, names);
        assert_eq!(typed.types, Some(vec![Integer, Boolean]));
        assert_eq!(
            typed.row_json(vec!["1".into(), "".into()]),
            vec![json!(1), Value::Null]
        );

        let old = ResultColumns::from_json(Some(&json!(["a", "b"])));
        assert_eq!((old.names.clone(), old.types.clone()), (names, None));
        assert_eq!(old.public_types(), vec![String, String]);
        assert_eq!(
            old.row_json(vec!["1".into(), "".into()]),
            vec![json!("1"), json!("")]
        );
        let none = ResultColumns::from_json(None);
        assert!(none.names.is_empty() && none.types.is_none());
    }
}
