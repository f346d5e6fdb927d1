//! One execution as `GET /executions/{id}` shows it: the row, why it waits (if queued),
//! and its audit trail.

use super::{ExecutionRow, TransitionRow, find_for_user, transitions, with_waiting};
use crate::ids::{ExecutionId, UserId};
use sea_orm::{DatabaseConnection, DbErr};

/// An execution with its waiting reason and transitions, oldest first.
#[derive(Debug, Clone)]
pub struct Detail {
    pub row: ExecutionRow,
    pub transitions: Vec<TransitionRow>,
}

/// The user's execution in full; `None` when it is not theirs or does not exist.
pub async fn detail(
    db: &DatabaseConnection,
    user: UserId,
    id: ExecutionId,
) -> Result<Option<Detail>, DbErr> {
    let Some(row) = find_for_user(db, user, id).await? else {
        return Ok(None);
    };
    let row = with_waiting(db, row).await?;
    let transitions = transitions(db, id).await?;
    Ok(Some(Detail { row, transitions }))
}
