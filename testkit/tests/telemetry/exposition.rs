//! A strict parser of the OpenMetrics text exposition our processes serve: metadata before
//! samples, each family's samples together and named as its type allows, well-formed
//! labels and values, no sample twice, cumulative histogram buckets ending at `+Inf` equal
//! to `_count`, and `# EOF` last.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A metric family: its type and samples.
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub kind: String,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub families: HashMap<String, Family>,
}

impl Exposition {
    /// Every sample name the families may carry (`x_total` of a counter `x`, `x_bucket`,
    /// `x_sum`, `x_count` of a histogram …), with or without samples yet.
    pub fn names(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for (name, f) in &self.families {
            for suffix in suffixes(&f.kind) {
                out.insert(format!("{name}{suffix}"));
            }
        }
        out
    }

    /// The value of the sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples(name)
            .find(|s| s.labels == want)
            .map(|s| s.value)
    }

    /// Every sample called `name`.
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .values()
            .flat_map(|f| f.samples.iter())
            .filter(move |s| s.name == name)
    }

    /// The sum of the samples called `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
        "summary" => &["", "_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

const KINDS: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
    "unknown",
];

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    is_name(s) && !s.contains(':')
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => {
            Err(format!("`{s}` is not a number"))
        }
        _ => s.parse().map_err(|_| format!("`{s}` is not a number")),
    }
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((out, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("a label without `=`")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name `{name}`"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("a label value not in quotes")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("a bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("a newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if out.insert(name.to_owned(), value).is_some() {
            return Err(format!("label `{name}` twice"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by `,`".into());
        }
    }
}

/// The family a sample name belongs to, given the family being read.
fn owner<'a>(sample: &str, current: Option<(&'a str, &Family)>) -> Result<&'a str, String> {
    let (name, f) = current.ok_or_else(|| format!("sample `{sample}` before any # TYPE"))?;
    let ok = suffixes(&f.kind)
        .iter()
        .any(|suffix| sample.strip_suffix(suffix) == Some(name));
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "sample `{sample}` is not of the {} family `{name}` being read (families must not interleave)",
            f.kind
        ))
    }
}

/// Parses `text`, strictly.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    let mut eof = false;
    for (n, line) in text.split('\n').enumerate() {
        let at = |e: String| format!("line {}: {e}: `{line}`", n + 1);
        if eof {
            if line.is_empty() && n + 1 == text.split('\n').count() {
                continue;
            }
            return Err(at("text after # EOF".into()));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let rest = parts.next();
            if !is_name(name) {
                return Err(at(format!("bad metric name `{name}`")));
            }
            if order.last().map(String::as_str) != Some(name) {
                if families.contains_key(name) {
                    return Err(at(format!("family `{name}` declared twice")));
                }
                families.insert(name.to_owned(), Family::default());
                order.push(name.to_owned());
            }
            let f = families.get_mut(name).expect("just inserted");
            if !f.samples.is_empty() {
                return Err(at("metadata after samples".into()));
            }
            match (kw, rest) {
                ("TYPE", Some(kind)) if KINDS.contains(&kind) => f.kind = kind.to_owned(),
                ("HELP", help) => f.help = Some(help.unwrap_or("").to_owned()),
                ("UNIT", Some(_)) => {}
                _ => return Err(at("unknown metadata".into())),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(at("an empty line or a bad comment".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(at(format!("bad metric name `{name}`")));
        }
        let (lbls, rest) = labels(&line[name_end..]).map_err(at)?;
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?
            .split(' ');
        let value = number(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            number(ts).map_err(at)?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let current = order.last().map(|o| (o.as_str(), &families[o]));
        let family = owner(name, current).map_err(at)?.to_owned();
        let key = (name.to_owned(), lbls.clone().into_iter().collect());
        if !seen.insert(key) {
            return Err(at("the same sample twice".into()));
        }
        let f = families.get_mut(&family).expect("current family");
        if f.kind == "counter" && name.ends_with("_total") && (value.is_nan() || value < 0.0) {
            return Err(at("a negative counter".into()));
        }
        f.samples.push(Sample {
            name: name.to_owned(),
            labels: lbls,
            value,
        });
    }
    if !eof {
        return Err("no # EOF at the end".into());
    }
    for (name, f) in &families {
        if f.kind.is_empty() {
            return Err(format!("family `{name}` has no # TYPE"));
        }
        if f.kind == "histogram" {
            check_histogram(name, f)?;
        }
    }
    Ok(Exposition { families })
}

/// A series' labels (without `le`), in order.
type Key = Vec<(String, String)>;

/// Each series' buckets are cumulative and end at `+Inf`, which equals its `_count`.
fn check_histogram(name: &str, f: &Family) -> Result<(), String> {
    let mut series: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<Key, f64> = BTreeMap::new();
    for s in &f.samples {
        let mut key = s.labels.clone();
        if s.name.ends_with("_bucket") {
            let le = key
                .remove("le")
                .ok_or(format!("{name}: a bucket without le"))?;
            let le = number(&le)?;
            series
                .entry(key.into_iter().collect())
                .or_default()
                .push((le, s.value));
        } else if s.name.ends_with("_count") {
            counts.insert(key.into_iter().collect(), s.value);
        }
    }
    for (key, buckets) in &series {
        let ordered = buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        let last = buckets.last().ok_or(format!("{name}{key:?}: no bucket"))?;
        if !ordered || last.0 != f64::INFINITY || counts.get(key) != Some(&last.1) {
            return Err(format!(
                "{name}{key:?}: buckets {buckets:?} do not end at +Inf = _count"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP jobs Jobs run.\n# TYPE jobs counter\njobs_total{queue=\"a\",outcome=\"ok\"} 3\n# TYPE up gauge\nup 1\n# TYPE d histogram\nd_sum 1.5\nd_count 2\nd_bucket{le=\"0.5\"} 1\nd_bucket{le=\"+Inf\"} 2\n# EOF\n";

    #[test]
    fn a_good_exposition_parses() {
        let e = parse(GOOD).unwrap();
        assert_eq!(
            e.value("jobs_total", &[("queue", "a"), ("outcome", "ok")]),
            Some(3.0)
        );
        assert_eq!(e.value("up", &[]), Some(1.0));
        assert!(e.names().contains("d_bucket") && e.names().contains("jobs_total"));
        assert!(!e.names().contains("jobs"));
    }

    #[test]
    fn bad_expositions_are_refused() {
        for (bad, why) in [
            (GOOD.replace("# EOF\n", ""), "no EOF"),
            (GOOD.replace("up 1", "up one"), "a bad value"),
            (
                GOOD.replace("up 1", "down 1"),
                "a sample of no declared family",
            ),
            (GOOD.replace("queue=\"a\"", "queue=a"), "an unquoted label"),
            (
                GOOD.replace("d_count 2", "d_count 3"),
                "+Inf bucket not the count",
            ),
            (
                GOOD.replace("# TYPE up gauge\nup 1\n", "up 1\n"),
                "families interleave",
            ),
            (format!("{GOOD}x 1\n"), "text after EOF"),
            (GOOD.replace("up 1\n", "up 1\nup 2\n"), "a sample twice"),
            (GOOD.replace("counter", "countr"), "an unknown type"),
        ] {
            assert!(parse(&bad).is_err(), "{why}: {bad}");
        }
    }
}
