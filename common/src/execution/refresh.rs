//! "Refresh status now": a user's running runs (one, or all of them) get their next AMC
//! status check brought forward to now. The caller enqueues the checks at once, each due
//! at the instant written here; the delayed check each run had drops when its turn comes
//! (its `due` no longer matches the row), so no run is checked twice by this.

use super::{Status, now_micros};
use crate::ids::{ExecutionId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};

/// A run whose check is now due at `due`.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Refreshed {
    pub id: ExecutionId,
    pub due: DateTime<Utc>,
}

/// Brings forward the status check of the user's running runs, or of the one run `only`
/// (if running). A run whose check is already due (or under way) is left as it is and not
/// answered: its check needs no new job.
pub async fn refresh_checks<C: ConnectionTrait>(
    db: &C,
    user: UserId,
    only: Option<ExecutionId>,
) -> Result<Vec<Refreshed>, DbErr> {
    let at = now_micros();
    let mut sql = "UPDATE executions SET next_check_at = $2, updated_at = now() \
         WHERE user_id = $1 AND status = $3 AND (next_check_at IS NULL OR next_check_at > $2)"
        .to_string();
    let mut values = vec![user.into(), at.into(), Status::Running.into()];
    if let Some(id) = only {
        values.push(id.into());
        sql.push_str(" AND id = $4");
    }
    sql.push_str(" RETURNING id, next_check_at AS due");
    Refreshed::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .all(db)
    .await
}
