//! No status, region, event type or queue name is spelled as a string outside the type
//! that defines it: every other module goes through the type (`ExecutionStatus::Running`,
//! `Region::NA`, `EventType::SchedulePaused`, `PollJob::QUEUE`), so renaming one is a
//! compile error, not a silent mismatch.
//!
//! The scan reads the services' own source (not tests: those assert on the wire format,
//! the contract itself) for Rust string literals and SQL literals (`'…'`) equal to a name.
//! The names are every `text_enum!`'s `ALL` and `common::jobs::ALL_QUEUES`; a
//! `text_enum!` this file does not list fails the test. A name may be spelled in the file
//! that declares a type having it (shared spellings such as `failed` included), as a JSON
//! key, and where [`OTHER_MEANINGS`] says the word means something else.

use std::path::{Path, PathBuf};

/// A family of names: the values of one type, and where they may be spelled besides the
/// file that defines the type.
struct Family {
    /// The type (its last path segment: the name its `text_enum!` declares).
    name: &'static str,
    values: Vec<&'static str>,
    /// Path prefixes (from the workspace) that may spell them too.
    also: Vec<&'static str>,
}

/// The family of a [`common::text_enum!`] type, from its `ALL`.
macro_rules! family {
    ($ty:path $(, also: [$($also:literal),* $(,)?])?) => {{
        use $ty as T;
        Family {
            name: std::any::type_name::<T>().rsplit("::").next().expect("a name"),
            values: T::ALL.iter().map(|v| v.as_str()).collect(),
            also: vec![$($($also),*)?],
        }
    }};
}

/// Every family: each `text_enum!` in `common` (the test fails when one is missing here)
/// and the queue names.
fn families() -> Vec<Family> {
    vec![
        family!(common::execution::ExecutionStatus, also: ["common/src/execution/"]),
        family!(common::execution::TriggeredBy),
        family!(common::execution::ErrorCode),
        family!(common::execution::WaitingReason),
        family!(common::connection::ConnectionStatus, also: ["common/src/connection/"]),
        family!(common::ids::Region),
        family!(common::event::EventType, also: ["common/src/event/"]),
        family!(common::event::DeliveryStatus),
        family!(common::webhook::delivery::AttemptTrigger),
        family!(common::collection::CollectionStatus),
        family!(common::batch::BatchStatus),
        family!(common::collection::WindowStatus),
        family!(common::collection::ShownStatus),
        family!(common::collection::Granularity),
        family!(common::collection::WindowGranularity),
        family!(common::schedule::RunOutcome),
        family!(common::schedule::Overlap),
        family!(common::schedule::CatchUpPolicy),
        family!(common::schedule::WeekStart),
        family!(common::result_types::ColumnType),
        family!(common::repo::users::Role),
        family!(common::telemetry::metrics::JobOutcome),
        Family {
            name: "queue name",
            values: common::jobs::ALL_QUEUES.to_vec(),
            also: vec!["common/src/jobs.rs"],
        },
    ]
}

/// Words that are a family's value and mean something else where they are spelled: (file
/// or directory, the code around the word, what it means there). The code is taken out
/// before the scan, so the same word elsewhere in the file is still caught; an entry that
/// no longer matches fails [`every_other_meaning_is_still_there`].
const OTHER_MEANINGS: &[(&str, &str, &str)] = &[
    ("api/src/", "MetaSchema::new(\"string\")", "an OpenAPI type"),
    (
        "api/src/",
        "MetaSchema::new(\"boolean\")",
        "an OpenAPI type",
    ),
    (
        "api/src/input.rs",
        "(\"string\", \"date\")",
        "an OpenAPI type and format",
    ),
    (
        "api/src/",
        "MetaSchema::new_with_format(\"string\"",
        "an OpenAPI type",
    ),
    (
        "api/src/",
        "MetaSchema::new_with_format(\"integer\"",
        "an OpenAPI type",
    ),
    (
        "api/src/routes/executions.rs",
        "\"string\", \"binary\"",
        "an OpenAPI type",
    ),
    (
        "common/src/db/text_enum.rs",
        "MetaSchema::new(\"string\")",
        "an OpenAPI type",
    ),
    (
        "api/src/input.rs",
        "\"date\".into()",
        "the name of the date input type",
    ),
    (
        "api/src/error.rs",
        "unwrap_or(\"error\")",
        "the title of a status with no reason phrase",
    ),
    (
        "api/src/main.rs",
        "init(&config, \"api\")",
        "the service's name in telemetry",
    ),
    (
        "api/src/routes/",
        "not_found(\"schedule\")",
        "the resource a 404 names",
    ),
    (
        "api/src/routes/",
        "not_found(\"collection\")",
        "the resource a 404 names",
    ),
    (
        "api/src/routes/",
        "not_found(\"batch\")",
        "the resource a 404 names",
    ),
    ("api/src/routes/health.rs", "\"ok\"", "the health answer"),
    (
        "api/src/routes/instances.rs",
        "\"collection_reserve\"",
        "the request field",
    ),
    (
        "common/src/amc/error.rs",
        "\"error\"",
        "the key of LWA's error body",
    ),
    (
        "common/src/execution/admission.rs",
        "date_trunc('day'",
        "a date_trunc unit",
    ),
    (
        "common/src/schedule/fire.rs",
        "span.record(\"started\"",
        "a span field",
    ),
    (
        "common/src/telemetry/metrics/labels.rs",
        "write_str(\"error\")",
        "an AMC call with no answer",
    ),
    (
        "common/src/template/schema.rs",
        "\"string\"",
        "a JSON Schema type",
    ),
    (
        "common/src/template/schema.rs",
        "\"integer\"",
        "a JSON Schema type",
    ),
    (
        "common/src/template/schema.rs",
        "\"boolean\"",
        "a JSON Schema type",
    ),
    (
        "queue/src/stats.rs",
        "f['pending']",
        "a field of Redis's XINFO GROUPS answer",
    ),
    (
        "scheduler/src/reconcile.rs",
        "count(\"collection\"",
        "the kind of row re-pushed",
    ),
];

/// `code` without the words [`OTHER_MEANINGS`] allows in the file `rel`.
fn without_other_meanings(rel: &str, code: &str) -> String {
    OTHER_MEANINGS
        .iter()
        .filter(|(path, _, _)| rel.starts_with(path))
        .fold(code.to_owned(), |c, (_, snippet, _)| c.replace(snippet, ""))
}

/// Whether `code` holds `spelled` other than as a JSON key (`"missed": n` in a `json!`
/// names a field of a body, not a value).
fn spells(code: &str, spelled: &str) -> bool {
    code.match_indices(spelled).any(|(at, _)| {
        let after = code[at + spelled.len()..].trim_start();
        !(spelled.starts_with('"') && after.starts_with(':') && !after.starts_with("::"))
    })
}

/// The services' source directories.
const SCANNED: [&str; 5] = [
    "common/src",
    "api/src",
    "worker/src",
    "scheduler/src",
    "queue/src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file without its test module (by convention the last item of a file) and without
/// files that are test modules of their own.
fn production_code(path: &Path, text: &str) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name == "tests.rs" {
        return None;
    }
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    // Doc and line comments name things freely.
    Some(
        code.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The production code of every Rust file under `dirs`, by path from the workspace.
fn production_sources(dirs: &[&str]) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    files
        .iter()
        .filter_map(|path| {
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            let code = production_code(path, &std::fs::read_to_string(path).expect("read"))?;
            Some((rel, code))
        })
        .collect()
}

/// Where each `text_enum!` in `sources` is declared: (type name, file).
fn declared_text_enums(sources: &[(String, String)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (rel, code) in sources {
        for (at, _) in code.match_indices("text_enum! {") {
            let rest = &code[at..];
            let Some(e) = rest.find("enum ") else {
                continue;
            };
            let name: String = rest[e + 5..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((name, rel.clone()));
        }
    }
    found
}

/// Each spelled name outside the files allowed to spell it: the file declaring a type
/// whose values include it, or a family's `also` prefix. (A name several types share,
/// such as `failed`, may be spelled where any of them is declared.)
fn offences(sources: &[(String, String)], families: &[Family]) -> Vec<String> {
    let declared = declared_text_enums(sources);
    let home_of = |f: &Family| -> Vec<String> {
        let mut homes: Vec<String> = declared
            .iter()
            .filter(|(name, _)| name == f.name)
            .map(|(_, rel)| rel.clone())
            .collect();
        homes.extend(f.also.iter().map(|a| a.to_string()));
        homes
    };
    let homes: Vec<Vec<String>> = families.iter().map(home_of).collect();
    let may_spell = |rel: &str, value: &str| {
        families
            .iter()
            .zip(&homes)
            .filter(|(f, _)| f.values.contains(&value))
            .any(|(_, hs)| hs.iter().any(|h| rel.starts_with(h.as_str())))
    };
    let mut out = Vec::new();
    for (rel, code) in sources {
        let code = without_other_meanings(rel, code);
        for f in families {
            for value in &f.values {
                if may_spell(rel, value) {
                    continue;
                }
                for spelled in [format!("\"{value}\""), format!("'{value}'")] {
                    if spells(&code, &spelled) {
                        out.push(format!("{rel}: {} {spelled}", f.name));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn no_name_is_spelled_outside_its_type() {
    let found = offences(&production_sources(&SCANNED), &families());
    assert!(
        found.is_empty(),
        "names spelled outside their type:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_other_meaning_is_still_there() {
    let sources = production_sources(&SCANNED);
    let stale: Vec<String> = OTHER_MEANINGS
        .iter()
        .filter(|(path, snippet, _)| {
            !sources
                .iter()
                .any(|(rel, code)| rel.starts_with(path) && code.contains(snippet))
        })
        .map(|(path, snippet, _)| format!("{path}: {snippet}"))
        .collect();
    assert!(
        stale.is_empty(),
        "OTHER_MEANINGS entries that match nothing (remove them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_text_enum_is_a_family() {
    let families = families();
    let missing: Vec<String> = declared_text_enums(&production_sources(&SCANNED))
        .into_iter()
        .filter(|(name, _)| !families.iter().any(|f| f.name == name))
        .map(|(name, rel)| format!("{name} ({rel})"))
        .collect();
    assert!(
        missing.is_empty(),
        "text enums the literal check does not know (add them to `families`):\n{}",
        missing.join("\n")
    );
}

/// An error keeps its cause: a `DbErr::Custom` holds only a message, so a failure turned
/// into one loses its type and its `source()` chain. Give the error enum a variant with
/// `#[source]` (or `#[from]`) instead.
#[test]
fn no_error_is_flattened_into_a_custom_db_error() {
    let dirs: Vec<&str> = SCANNED.iter().copied().chain(["migrations/src"]).collect();
    let offences: Vec<String> = production_sources(&dirs)
        .into_iter()
        .filter(|(_, code)| code.contains("DbErr::Custom("))
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        offences.is_empty(),
        "DbErr::Custom( in:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_scan_would_see_a_spelled_name() {
    let code = production_code(
        Path::new("x.rs"),
        "fn f() { q(\"execution.poll\"); }\n#[cfg(test)]\nmod t { \"queued\" }",
    )
    .unwrap();
    assert!(code.contains("\"execution.poll\""));
    assert!(!code.contains("\"queued\""));

    let mut sources = production_sources(&SCANNED);
    let planted = [
        ("scheduler/src/planted.rs", "fires(\"skipped_overlap\", n);"),
        ("common/src/webhook/planted.rs", "WHERE status = 'pending'"),
        // A key of a JSON body, and a word allowed only in another file.
        (
            "common/src/schedule/key.rs",
            "json!({\"missed\": 0}); not_found(\"schedule\")",
        ),
        // `failed` is spelled where a type that has it is declared.
        ("common/src/collection/row.rs", "\"failed\""),
    ];
    sources.extend(planted.iter().map(|(r, c)| (r.to_string(), c.to_string())));
    let found = offences(&sources, &families());
    assert_eq!(
        found,
        [
            "common/src/schedule/key.rs: Granularity \"schedule\"",
            "common/src/schedule/key.rs: TriggeredBy \"schedule\"",
            "common/src/webhook/planted.rs: DeliveryStatus 'pending'",
            "common/src/webhook/planted.rs: WindowStatus 'pending'",
            "scheduler/src/planted.rs: RunOutcome \"skipped_overlap\"",
        ]
    );
}
