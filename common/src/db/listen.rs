//! `LISTEN` on a channel with a dedicated connection that comes back after a loss:
//! every notification wakes a [`Notify`], and so does each (re)connection, since
//! notifications may have gone unheard meanwhile.

use sea_orm::sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Wakes `wake` on every notification of `channel` until the task is dropped or aborted,
/// reconnecting with back-off (100 ms doubling to 5 s). `what` names the channel's
/// purpose in log lines.
pub async fn wake_on_notify(
    database_url: String,
    channel: &'static str,
    what: &'static str,
    wake: Arc<Notify>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut l = PgListener::connect(&database_url).await?;
            l.listen(channel).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, channel, "cannot LISTEN for {what}; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        wake.notify_one();
        while let Ok(Some(_)) = listener.try_recv().await {
            wake.notify_one();
        }
        tracing::warn!(
            channel,
            "the LISTEN connection for {what} was lost; reconnecting"
        );
    }
}
