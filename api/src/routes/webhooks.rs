//! `/webhooks`: a user's endpoints (CONTRACT § Webhooks): create (the `whsec_` secret is
//! shown once), list, get, change, delete, rotate the secret, send a test, read the
//! delivery log with every attempt, and recover failed and skipped deliveries. Workers
//! deliver; these handlers only record and read.

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Bool, EventTypes, In, Instant, LongText, Nullable, WebhookUrl, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::event::{DeliveryStatus, EventType};
use common::ids::{DeliveryId, EndpointId, UserId};
use common::webhook::address::{check_destination, check_url};
use common::webhook::delivery::{self, AttemptRow, AttemptTrigger, DeliveryRow};
use common::webhook::endpoint::{self, EndpointError, EndpointPatch, EndpointRow, EndpointSpec};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// A new endpoint.
#[derive(Debug, Object)]
pub struct CreateEndpoint {
    /// Where deliveries are POSTed (`https` in production).
    pub url: In<WebhookUrl>,
    /// The event types it receives.
    pub event_types: In<EventTypes>,
    pub description: Option<In<LongText<500>>>,
    /// Default `true`.
    pub enabled: Option<In<Bool>>,
}

/// A change of an endpoint: fields sent replace the stored ones; `enabled: true` also
/// clears why it was disabled (its skipped deliveries stay skipped: `recover` them).
#[derive(Debug, Object)]
pub struct UpdateEndpoint {
    pub url: Option<In<WebhookUrl>>,
    pub event_types: Option<In<EventTypes>>,
    /// `null` clears it.
    pub description: MaybeUndefined<In<LongText<500>>>,
    pub enabled: Option<In<Bool>>,
}

/// An endpoint.
#[derive(Debug, Object)]
pub struct EndpointBody {
    pub id: Uuid,
    pub url: String,
    pub description: Nullable<String>,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// Why it is disabled (by hand, or by the rule: failing for `AMP_WEBHOOK_DISABLE_AFTER`
    /// with no success).
    pub disabled_reason: Nullable<String>,
    /// Since when every attempt has failed (null after a success).
    pub failing_since: Nullable<DateTime<Utc>>,
    pub last_success_at: Nullable<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for EndpointBody {
    fn from(e: EndpointRow) -> Self {
        let event_types = e.types();
        Self {
            id: e.id.0,
            url: e.url,
            description: e.description.into(),
            event_types,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.into(),
            failing_since: e.failing_since.into(),
            last_success_at: e.last_success_at.into(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new endpoint with its secret (shown this once).
#[derive(Debug, Object)]
pub struct CreatedEndpointBody {
    pub id: Uuid,
    /// The signing secret, `whsec_…` (Standard Webhooks). Keep it: it is not shown again.
    pub secret: String,
    pub url: String,
    pub description: Nullable<String>,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A page of the user's endpoints, newest first.
#[derive(Debug, Object)]
pub struct EndpointList {
    pub items: Vec<EndpointBody>,
    pub next_cursor: Nullable<String>,
}

/// A new secret.
#[derive(Debug, Object)]
pub struct SecretBody {
    /// The new secret; deliveries carry signatures of both the old and the new one for
    /// 24 h.
    pub secret: String,
}

/// A test delivery on its way.
#[derive(Debug, Object)]
pub struct TestBody {
    pub event_id: Uuid,
    pub delivery_id: Uuid,
}

/// One delivery of an event to the endpoint.
#[derive(Debug, Object)]
pub struct DeliveryBody {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made (a recovery starts again from 0).
    pub attempts: i32,
    pub last_status_code: Nullable<i32>,
    /// Why the last attempt got no answer (timeout, refused address, …).
    pub last_error: Nullable<String>,
    pub last_attempt_at: Nullable<DateTime<Utc>>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Nullable<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryBody {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id.0,
            event_id: d.event_id.0,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code.into(),
            last_error: d.last_error.into(),
            last_attempt_at: d.last_attempt_at.into(),
            next_attempt_at: d.next_attempt_at.into(),
            created_at: d.created_at,
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Object)]
pub struct DeliveryList {
    pub items: Vec<DeliveryBody>,
    pub next_cursor: Nullable<String>,
}

/// One attempt.
#[derive(Debug, Object)]
pub struct AttemptBody {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status code (null: no answer).
    pub status_code: Nullable<i32>,
    /// Up to 4 KB of the receiver's answer.
    pub response_body: Nullable<String>,
    pub error: Nullable<String>,
    pub duration_ms: i32,
    /// `scheduled` (the retry schedule) or `manual` (recover, test).
    pub trigger: AttemptTrigger,
}

impl From<AttemptRow> for AttemptBody {
    fn from(a: AttemptRow) -> Self {
        Self {
            attempted_at: a.attempted_at,
            status_code: a.status_code.into(),
            response_body: a.response_body.into(),
            error: a.error.into(),
            duration_ms: a.duration_ms,
            trigger: a.trigger,
        }
    }
}

/// A delivery with every attempt, oldest first.
#[derive(Debug, Object)]
pub struct DeliveryDetail {
    #[oai(flatten)]
    pub delivery: DeliveryBody,
    pub attempt_log: Vec<AttemptBody>,
}

/// What to recover.
#[derive(Debug, Object)]
pub struct RecoverBody {
    /// Deliveries created since this instant (RFC 3339); as far back as events are kept
    /// (`AMP_EVENT_RETENTION`).
    pub since: In<Instant>,
}

/// How many deliveries were reopened.
#[derive(Debug, Object)]
pub struct RecoveredBody {
    pub recovered: u64,
}

#[derive(ApiResponse)]
pub enum CreatedEndpoint {
    /// The endpoint, with its secret (shown this once).
    #[oai(status = 201)]
    Created(Json<CreatedEndpointBody>),
}

#[derive(ApiResponse)]
pub enum EndpointResponse {
    /// The endpoint.
    #[oai(status = 200)]
    Ok(Json<EndpointBody>),
}

#[derive(ApiResponse)]
pub enum EndpointListResponse {
    /// The user's endpoints, newest first.
    #[oai(status = 200)]
    Ok(Json<EndpointList>),
}

#[derive(ApiResponse)]
pub enum DeletedEndpoint {
    /// Deleted, with its deliveries.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum SecretResponse {
    /// The new secret.
    #[oai(status = 200)]
    Ok(Json<SecretBody>),
}

#[derive(ApiResponse)]
pub enum TestResponse {
    /// A `webhook.test` event is on its way to this endpoint alone.
    #[oai(status = 202)]
    Accepted(Json<TestBody>),
}

#[derive(ApiResponse)]
pub enum DeliveryListResponse {
    /// The delivery log.
    #[oai(status = 200)]
    Ok(Json<DeliveryList>),
}

#[derive(ApiResponse)]
pub enum DeliveryResponse {
    /// The delivery with its attempts.
    #[oai(status = 200)]
    Ok(Json<DeliveryDetail>),
}

#[derive(ApiResponse)]
pub enum RecoverResponse {
    /// Reopened: each is delivered again (same `webhook-id`, a fresh timestamp).
    #[oai(status = 202)]
    Accepted(Json<RecoveredBody>),
}

/// Webhook endpoints.
pub struct WebhooksApi {
    pub state: Arc<AppState>,
}

fn endpoint_error(e: EndpointError) -> ApiError {
    match e {
        EndpointError::NotFound => ApiError::not_found("webhook endpoint"),
        EndpointError::Db(e) => ApiError::internal(e),
    }
}

impl WebhooksApi {
    /// Checks a URL as this deployment allows (see `common::webhook::address`).
    async fn check_url(&self, text: &str) -> Result<String, ApiError> {
        let config = &self.state.config;
        let url = check_url(text, config.is_production()).map_err(|m| ApiError::field("url", m))?;
        check_destination(&url, config.webhook_allow_private)
            .await
            .map_err(|m| ApiError::field("url", m))?;
        Ok(url.to_string())
    }

    async fn owned(&self, user: UserId, id: Uuid) -> Result<EndpointRow, ApiError> {
        endpoint::get(&self.state.db, user, EndpointId(id))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))
    }

    fn open_cursor(
        &self,
        scope: &[u8],
        cursor: Option<String>,
    ) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
        page::open_key(&self.state.cursors, scope, cursor)
    }
}

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Add an endpoint. Its secret is in this answer only.
    #[oai(path = "/webhooks", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateEndpoint>,
    ) -> Result<CreatedEndpoint, Errors<{ AUTH | BODY }>> {
        let b = body.0;
        let url = self.check_url(&b.url.get("url")?).await?;
        let spec = EndpointSpec {
            url,
            event_types: b.event_types.get("event_types")?,
            description: opt(b.description, "description")?,
            enabled: opt(b.enabled, "enabled")?.unwrap_or(true),
        };
        let (row, secret) =
            endpoint::create(&self.state.db, &self.state.cipher, auth.0.user_id, &spec)
                .await
                .map_err(endpoint_error)?;
        let event_types = row.types();
        Ok(CreatedEndpoint::Created(Json(CreatedEndpointBody {
            id: row.id.0,
            secret: secret.text(),
            url: row.url,
            description: row.description.into(),
            event_types,
            enabled: row.enabled,
            created_at: row.created_at,
        })))
    }

    /// The user's endpoints, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(path = "/webhooks", method = "get", operation_id = "listWebhooks")]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
    ) -> Result<EndpointListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let scope = page::scope(b"webhooks", user.0);
        let after = self.open_cursor(&scope, paging.0.cursor)?;
        let limit = page::limit(paging.0.limit);
        let mut rows = endpoint::list(
            &self.state.db,
            user,
            after.map(|(t, id)| (t, EndpointId(id))),
            limit + 1,
        )
        .await
        .map_err(ApiError::internal)?;
        let next = page::next_cursor(&mut rows, limit, |r| {
            self.state.cursors.sign_key(&scope, r.created_at, r.id.0)
        });
        Ok(EndpointListResponse::Ok(Json(EndpointList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One endpoint.
    #[oai(path = "/webhooks/:id", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<EndpointResponse, Errors<{ AUTH | E404 | E422 }>> {
        Ok(EndpointResponse::Ok(Json(
            self.owned(auth.0.user_id, id.0).await?.into(),
        )))
    }

    /// Change an endpoint (url, event types, description, enabled).
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        operation_id = "updateWebhook"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateEndpoint>,
    ) -> Result<EndpointResponse, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let url = match opt(b.url, "url")? {
            Some(u) => Some(self.check_url(&u).await?),
            None => None,
        };
        let patch = EndpointPatch {
            url,
            event_types: opt(b.event_types, "event_types")?,
            description: match b.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d.get("description")?)),
            },
            enabled: opt(b.enabled, "enabled")?,
        };
        let row = endpoint::update(&self.state.db, auth.0.user_id, EndpointId(id.0), patch)
            .await
            .map_err(endpoint_error)?;
        Ok(EndpointResponse::Ok(Json(row.into())))
    }

    /// Delete an endpoint and its deliveries.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<DeletedEndpoint, Errors<{ AUTH | E404 | E422 }>> {
        if !endpoint::delete(&self.state.db, auth.0.user_id, EndpointId(id.0))
            .await
            .map_err(ApiError::internal)?
        {
            return Err(ApiError::not_found("webhook endpoint").into());
        }
        Ok(DeletedEndpoint::NoContent)
    }

    /// A new secret; for 24 h deliveries carry signatures of both the old and the new one
    /// (space-separated in `webhook-signature`).
    #[oai(
        path = "/webhooks/:id/rotate-secret",
        method = "post",
        operation_id = "rotateWebhookSecret"
    )]
    async fn rotate_secret(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<SecretResponse, Errors<{ AUTH | E404 | E422 }>> {
        let secret = endpoint::rotate_secret(
            &self.state.db,
            &self.state.cipher,
            auth.0.user_id,
            EndpointId(id.0),
        )
        .await
        .map_err(endpoint_error)?;
        Ok(SecretResponse::Ok(Json(SecretBody {
            secret: secret.text(),
        })))
    }

    /// Send a `webhook.test` event to this endpoint alone.
    #[oai(
        path = "/webhooks/:id/test",
        method = "post",
        operation_id = "testWebhook"
    )]
    async fn test(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<TestResponse, Errors<{ AUTH | E404 | E422 }>> {
        let (event, delivery) =
            delivery::send_test(&self.state.db, auth.0.user_id, EndpointId(id.0))
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
        Ok(TestResponse::Accepted(Json(TestBody {
            event_id: event.0,
            delivery_id: delivery.0,
        })))
    }

    /// The delivery log, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        paging: Params<Page<500>>,
    ) -> Result<DeliveryListResponse, Errors<{ AUTH | E404 | E422 }>> {
        let user = auth.0.user_id;
        self.owned(user, id.0).await?;
        let scope = page::scope(b"deliveries", id.0);
        let after = self.open_cursor(&scope, paging.0.cursor)?;
        let limit = page::limit(paging.0.limit);
        let mut rows = delivery::list(
            &self.state.db,
            user,
            EndpointId(id.0),
            after.map(|(t, d)| (t, DeliveryId(d))),
            limit + 1,
        )
        .await
        .map_err(ApiError::internal)?;
        let next = page::next_cursor(&mut rows, limit, |r| {
            self.state.cursors.sign_key(&scope, r.created_at, r.id.0)
        });
        Ok(DeliveryListResponse::Ok(Json(DeliveryList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One delivery with every attempt: status code, up to 4 KB of the answer, duration,
    /// and whether the schedule or a person asked for it.
    #[oai(
        path = "/webhooks/:id/deliveries/:delivery_id",
        method = "get",
        operation_id = "getWebhookDelivery"
    )]
    async fn delivery(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        delivery_id: Path<Uuid>,
    ) -> Result<DeliveryResponse, Errors<{ AUTH | E404 | E422 }>> {
        let (d, attempts) = delivery::with_attempts(
            &self.state.db,
            auth.0.user_id,
            EndpointId(id.0),
            DeliveryId(delivery_id.0),
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
        Ok(DeliveryResponse::Ok(Json(DeliveryDetail {
            delivery: d.into(),
            attempt_log: attempts.into_iter().map(Into::into).collect(),
        })))
    }

    /// Deliver again every failed or skipped delivery of this endpoint since `since` (as
    /// far back as events are kept), each with a fresh budget of attempts, the same
    /// `webhook-id` and a fresh timestamp.
    #[oai(
        path = "/webhooks/:id/recover",
        method = "post",
        operation_id = "recoverWebhookDeliveries"
    )]
    async fn recover(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<RecoverBody>,
    ) -> Result<RecoverResponse, Errors<{ AUTH | BODY | E404 }>> {
        let since = body.0.since.get("since")?;
        let n = delivery::recover(&self.state.db, auth.0.user_id, EndpointId(id.0), since)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
        Ok(RecoverResponse::Accepted(Json(RecoveredBody {
            recovered: n,
        })))
    }
}
