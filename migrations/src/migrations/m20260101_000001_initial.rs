//! The initial migration: every table, foreign key, check, unique key and index of the
//! data model (DESIGN.md §3), written as plain SQL in `m20260101_000001_initial.sql`.

use sea_orm_migration::prelude::*;

/// The schema, one statement per `;`-terminated line group.
const UP_SQL: &str = include_str!("m20260101_000001_initial.sql");

/// Tables in reverse dependency order, for `down`.
const TABLES_REVERSED: &[&str] = &[
    "workers",
    "dead_jobs",
    "webhook_deliveries",
    "webhook_endpoints",
    "events",
    "collection_weeks",
    "execution_transitions",
    "executions",
    "collections",
    "schedules",
    "query_templates",
    "workflows",
    "amc_instances",
    "amc_accounts",
    "amazon_connections",
    "refresh_tokens",
    "api_keys",
    "users",
];

/// The initial schema.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Splits the schema file into statements: a statement ends with a line ending in `;`
/// outside a `$$`-quoted body (a function's). Comment lines (`--`) are dropped; the file
/// never puts a `;` inside a literal.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_body = false;
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.matches("$$").count() % 2 == 1 {
            in_body = !in_body;
        }
        if trimmed.ends_with(';') && !in_body {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// Runs every statement of a SQL script, in order.
pub(crate) async fn run_script(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for stmt in statements(sql) {
        db.execute_unprepared(&stmt).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, UP_SQL).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in TABLES_REVERSED {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS \"{table}\" CASCADE"))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_schema_into_statements() {
        let stmts = statements(UP_SQL);
        let creates = stmts
            .iter()
            .filter(|s| s.starts_with("CREATE TABLE"))
            .count();
        assert_eq!(creates, TABLES_REVERSED.len());
        assert!(stmts.iter().all(|s| !s.contains(';')));
        assert!(stmts.iter().all(|s| !s.starts_with("--")));
    }

    #[test]
    fn every_created_table_is_dropped_on_down() {
        for stmt in statements(UP_SQL) {
            if let Some(rest) = stmt.strip_prefix("CREATE TABLE ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                assert!(
                    TABLES_REVERSED.contains(&name),
                    "{name} not dropped by down"
                );
            }
        }
    }

    #[test]
    fn splitter_keeps_function_bodies_whole() {
        let sql = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    PERFORM 1;\n    RETURN NULL;\nEND $$;\nSELECT 2;\n";
        let s = statements(sql);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].ends_with("END $$"), "{s:?}");
        assert_eq!(s[1], "SELECT 2");
    }

    #[test]
    fn splitter_handles_multi_line_statements() {
        let sql = "-- c\nCREATE TABLE a (\n x int\n);\n\nCREATE INDEX i ON a (x)\n  WHERE x > 0;\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (\n x int\n)".to_owned(),
                "CREATE INDEX i ON a (x)\n  WHERE x > 0".to_owned()
            ]
        );
    }
}
