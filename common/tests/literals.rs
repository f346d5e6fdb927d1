//! No status, region, event type or queue name is spelled as a string outside the type
//! that defines it: every other module goes through the type (`ExecutionStatus::Running`,
//! `Region::NA`, `EventType::SchedulePaused`, `PollJob::QUEUE`), so renaming one is a
//! compile error, not a silent mismatch.
//!
//! The scan reads the services' own source (not tests: those assert on the wire format,
//! the contract itself) for Rust string literals and SQL literals (`'…'`) equal to a name.

use std::path::{Path, PathBuf};

/// Each family of names, and where it may be spelled (path prefixes from the workspace).
fn families() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            "execution status",
            vec![
                "queued",
                "submitting",
                "running",
                "fetching",
                "succeeded",
                "failed",
                "cancelled",
            ],
            // A webhook delivery's, a collection's and a window's states share spellings.
            vec![
                "common/src/execution/",
                "common/src/event/delivery.rs",
                "common/src/collection/row.rs",
            ],
        ),
        (
            "connection status",
            vec!["active", "reauth_required"],
            // `ErrorCode::ReauthRequired` and `WindowStatus::Active` share spellings.
            vec![
                "common/src/connection/",
                "common/src/execution/status.rs",
                "common/src/collection/row.rs",
            ],
        ),
        ("region", vec!["NA", "EU", "FE"], vec!["common/src/ids.rs"]),
        (
            "event type",
            vec![
                "execution.queued",
                "execution.submitting",
                "execution.running",
                "execution.fetching",
                "execution.succeeded",
                "execution.failed",
                "execution.cancelled",
                "schedule.paused",
                "collection.completed",
                "collection.failed",
                "collection.cancelled",
                "batch.completed",
                "connection.reauth_required",
                "webhook.endpoint_disabled",
                "webhook.test",
            ],
            vec!["common/src/event/"],
        ),
        (
            "queue name",
            vec![
                "execution.submit",
                "execution.poll",
                "execution.fetch",
                "execution.cancel",
                "instance.admit",
                "webhook.deliver",
            ],
            vec!["common/src/jobs.rs"],
        ),
    ]
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

#[test]
fn no_name_is_spelled_outside_its_type() {
    let mut offences = Vec::new();
    for (rel, code) in production_sources(&SCANNED) {
        for (family, names, homes) in families() {
            if homes.iter().any(|h| rel.starts_with(h)) {
                continue;
            }
            for name in names {
                for spelled in [format!("\"{name}\""), format!("'{name}'")] {
                    if code.contains(&spelled) {
                        offences.push(format!("{rel}: {family} {spelled}"));
                    }
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "names spelled outside their type:\n{}",
        offences.join("\n")
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
}
