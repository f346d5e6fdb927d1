//! `/events`: the user's event feed in commit order (CONTRACT § Webhooks), as pages
//! (`GET /events`), live as Server-Sent Events (`GET /events/stream`), and the single-use
//! tickets that authenticate a browser's `EventSource` (which cannot send a header).
//! The feed itself is `common::event::feed`; these handlers parse, authorise and sign.

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, E422, E503};
use crate::error::{ApiError, Errors};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::event::EventType;
use common::event::feed::{self, FeedEvent, FeedPosition, FeedQuery, Follow};
use common::ids::{EventId, UserId};
use futures::StreamExt;
use futures::stream::BoxStream;
use poem::Request;
use poem::web::sse::Event;
use poem_openapi::auth::ApiKey;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a stream ticket may wait for its use.
pub const TICKET_TTL_SECS: u64 = 60;
/// A comment line goes out this often on a quiet stream (proxies close idle connections).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event.
#[derive(Debug, Clone, Object)]
pub struct EventBody {
    /// The event's id (also the SSE `id:`, and the `Last-Event-ID` to resume after it).
    pub id: Uuid,
    #[oai(rename = "type")]
    pub event_type: EventType,
    /// When the change was recorded (not the feed's order: that is commit order).
    pub created_at: DateTime<Utc>,
    /// The subject (an execution, a schedule, …) as its own `GET` showed it then.
    pub data: Value,
}

impl From<FeedEvent> for EventBody {
    fn from(e: FeedEvent) -> Self {
        Self {
            id: e.id.0,
            event_type: e.event_type,
            created_at: e.created_at,
            data: e.data,
        }
    }
}

/// A page of the feed, oldest first.
#[derive(Debug, Object)]
pub struct EventPage {
    pub items: Vec<EventBody>,
    /// Always present: pass it as `after` for what comes next. With nothing newer it names
    /// the same position, so a client polls with it.
    pub next_cursor: String,
}

/// A single-use ticket for `GET /events/stream?ticket=`.
#[derive(Debug, Object)]
pub struct StreamTicket {
    pub ticket: String,
    /// Seconds left to use it.
    pub expires_in: u64,
}

#[derive(ApiResponse)]
pub enum EventPageResponse {
    /// The user's next events (empty: nothing newer yet).
    #[oai(status = 200)]
    Ok(Json<EventPage>),
}

#[derive(ApiResponse)]
pub enum StreamResponse {
    /// Server-Sent Events, one per event: `id:` the event's id, `event:` its type, `data:`
    /// the event as `GET /events` shows it. A comment line every 15 s keeps it open.
    #[oai(status = 200)]
    Ok(EventStream<BoxStream<'static, EventBody>>),
}

#[derive(ApiResponse)]
pub enum TicketResponse {
    /// The ticket: valid once, for 60 seconds.
    #[oai(status = 201)]
    Created(Json<StreamTicket>),
}

/// A single-use ticket from `POST /events/stream-tickets`, in the query (`?ticket=`).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "ticket",
    key_in = "query",
    checker = "check_ticket"
)]
pub struct TicketAuth(pub UserId);

/// The stream's callers: a bearer token, or a ticket.
#[derive(SecurityScheme)]
pub enum StreamAuth {
    Bearer(BearerAuth),
    Ticket(TicketAuth),
}

impl StreamAuth {
    fn user(&self) -> UserId {
        match self {
            StreamAuth::Bearer(b) => b.0.user_id,
            StreamAuth::Ticket(t) => t.0,
        }
    }
}

fn ticket_key(prefix: &str, ticket: &str) -> String {
    format!(
        "{prefix}:ticket:{}",
        common::crypto::sha256_hex(ticket.as_bytes())
    )
}

fn redis_down(e: redis::RedisError) -> ApiError {
    tracing::warn!(error = %e, "the stream ticket store (Redis) did not answer");
    ApiError::Unavailable("stream tickets are unavailable right now; try again shortly".into())
}

/// Consumes the ticket (GETDEL): its user, once.
async fn check_ticket(req: &Request, key: ApiKey) -> poem::Result<UserId> {
    let state = req.data::<Arc<AppState>>().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("AppState is not attached to the route"))
    })?;
    let mut redis = state.redis.clone();
    let user: Option<String> = redis::cmd("GETDEL")
        .arg(ticket_key(&state.config.redis_prefix, &key.key))
        .query_async(&mut redis)
        .await
        .map_err(redis_down)?;
    user.and_then(|u| Uuid::parse_str(&u).ok())
        .map(UserId)
        .ok_or_else(|| {
            ApiError::unauthorized("the stream ticket is unknown, used or expired").into()
        })
}

/// The event types of a `types` parameter (empty: every type).
fn types_of(types: Query<Vec<EventType>>) -> Vec<EventType> {
    let mut t = types.0;
    t.sort();
    t.dedup();
    t
}

/// Event endpoints.
pub struct EventsApi {
    pub state: Arc<AppState>,
}

impl EventsApi {
    fn cursor_scope(user: UserId) -> Vec<u8> {
        let mut scope = b"events".to_vec();
        scope.extend_from_slice(user.0.as_bytes());
        scope
    }

    fn open_after(&self, user: UserId, after: Option<String>) -> Result<FeedPosition, ApiError> {
        match after.as_deref().filter(|c| !c.is_empty()) {
            None => Ok(FeedPosition::START),
            Some(c) => self
                .state
                .cursors
                .open(&Self::cursor_scope(user), c)
                .and_then(|p| FeedPosition::from_bytes(&p))
                .ok_or_else(|| {
                    ApiError::field("after", "is not a cursor returned by this endpoint")
                }),
        }
    }

    /// Where a stream starts: after `Last-Event-ID` (the header wins over the query, as a
    /// reconnecting `EventSource` sends the header beside its original URL), else now.
    async fn stream_start(
        &self,
        user: UserId,
        header: Option<Uuid>,
        query: Option<Uuid>,
    ) -> Result<FeedPosition, ApiError> {
        let db = &self.state.db;
        let (id, field) = match (header, query) {
            (Some(id), _) => (id, "Last-Event-ID"),
            (None, Some(id)) => (id, "last_event_id"),
            (None, None) => return feed::horizon(db).await.map_err(ApiError::internal),
        };
        feed::position_of(db, user, EventId(id))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::field(
                    field,
                    "is not the id of one of your events (or it was pruned)",
                )
            })
    }
}

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// The user's events in commit order, oldest first (`after` a `next_cursor`; absent:
    /// from the oldest event kept). `types` filters, comma-separated. A feed: `next_cursor`
    /// is always present, and an empty page means nothing newer yet. An event appears once
    /// every transaction older than its own has ended, so a cursor never passes one that
    /// could still appear.
    #[oai(path = "/events", method = "get", operation_id = "listEvents")]
    async fn list(
        &self,
        auth: BearerAuth,
        after: Query<Option<String>>,
        #[oai(explode = false, default)] types: Query<Vec<EventType>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))] limit: Query<Option<u32>>,
    ) -> Result<EventPageResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let q = FeedQuery {
            user,
            after: self.open_after(user, after.0)?,
            types: types_of(types),
            limit: u64::from(limit.0.unwrap_or(50)),
        };
        let events = feed::page(&self.state.db, &q)
            .await
            .map_err(ApiError::internal)?;
        let last = events.last().map_or(q.after, |e| e.position);
        Ok(EventPageResponse::Ok(Json(EventPage {
            items: events.into_iter().map(Into::into).collect(),
            next_cursor: self
                .state
                .cursors
                .sign(&Self::cursor_scope(user), &last.to_bytes()),
        })))
    }

    /// The user's events live, as Server-Sent Events, in the feed's order. Without
    /// `Last-Event-ID` (header, or `last_event_id`) it starts now; with it, right after that
    /// event, nothing missed and nothing repeated. Authenticated by a bearer token or a
    /// `ticket` from `POST /events/stream-tickets` (for `EventSource`).
    #[oai(path = "/events/stream", method = "get", operation_id = "streamEvents")]
    async fn stream(
        &self,
        auth: StreamAuth,
        #[oai(name = "Last-Event-ID")] last_event_id_header: Header<Option<Uuid>>,
        last_event_id: Query<Option<Uuid>>,
        #[oai(explode = false, default)] types: Query<Vec<EventType>>,
    ) -> Result<StreamResponse, Errors<{ AUTH | E422 | E503 }>> {
        let user = auth.user();
        let after = self
            .stream_start(user, last_event_id_header.0, last_event_id.0)
            .await?;
        let follow = Follow {
            user,
            after,
            types: types_of(types),
        };
        let events = feed::follow(self.state.db.clone(), follow, self.state.feed.subscribe())
            .map(EventBody::from)
            .boxed();
        Ok(StreamResponse::Ok(
            EventStream::new(events)
                .keep_alive(KEEP_ALIVE)
                .to_event(|e| {
                    Event::message(e.to_json_string())
                        .id(e.id.to_string())
                        .event_type(e.event_type.as_str())
                }),
        ))
    }

    /// A single-use ticket (60 s) for `GET /events/stream?ticket=`, for clients that cannot
    /// send `Authorization` (a browser's `EventSource`).
    #[oai(
        path = "/events/stream-tickets",
        method = "post",
        operation_id = "createStreamTicket"
    )]
    async fn ticket(&self, auth: BearerAuth) -> Result<TicketResponse, Errors<{ AUTH | E503 }>> {
        let ticket = common::crypto::random_token(32);
        let mut redis = self.state.redis.clone();
        let () = redis::cmd("SET")
            .arg(ticket_key(&self.state.config.redis_prefix, &ticket))
            .arg(auth.0.user_id.to_string())
            .arg("EX")
            .arg(TICKET_TTL_SECS)
            .query_async(&mut redis)
            .await
            .map_err(redis_down)?;
        Ok(TicketResponse::Created(Json(StreamTicket {
            ticket,
            expires_in: TICKET_TTL_SECS,
        })))
    }
}
