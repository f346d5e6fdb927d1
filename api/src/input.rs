//! Request fields that are checked by the handler, not by the JSON parser, so that every
//! bad value is answered 422 naming its field (poem-openapi's own parse errors name no
//! field, and its `String` takes `123` for `"123"`).
//!
//! A body field of type [`In<K>`] takes any JSON at parse time and carries its
//! [`Kind`]'s schema into the spec (type, length, range, enum, format), so a client that
//! reads the spec knows the limits. The handler turns it into a checked value with
//! [`In::get`] (required) or [`opt`] (optional), each naming the field in its 422.
//! The checks themselves are the domain's (`common::text`, `common::ids`, …).

use crate::error::ApiError;
use common::ids::Region;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::marker::PhantomData;

/// What a field holds: its schema and its check.
pub trait Kind: Send + Sync + 'static {
    /// The checked value.
    type Out;
    /// A name for the schema (unique per distinct schema).
    fn name() -> Cow<'static, str>;
    fn schema() -> MetaSchemaRef;
    /// Registers referenced schemas.
    fn register(_registry: &mut Registry) {}
    /// Checks a present, non-null value; the message reads after the field's name.
    fn parse(value: Value) -> Result<Self::Out, String>;
}

/// A body field of kind `K`, parsed leniently and checked by the handler.
pub struct In<K> {
    value: Option<Value>,
    kind: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for In<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Field values may be secrets (passwords, refresh tokens): never printed.
        f.write_str("In(…)")
    }
}

impl<K: Kind> In<K> {
    /// The checked value of a required field; absent or null → 422 naming `field`.
    pub fn get(self, field: &str) -> Result<K::Out, ApiError> {
        match self.value {
            None | Some(Value::Null) => Err(ApiError::field(field, "is required")),
            Some(v) => K::parse(v).map_err(|m| ApiError::field(field, m)),
        }
    }
}

/// The checked value of an optional field (absent or null → `None`).
pub fn opt<K: Kind>(input: Option<In<K>>, field: &str) -> Result<Option<K::Out>, ApiError> {
    match input {
        None => Ok(None),
        Some(i) if matches!(i.value, None | Some(Value::Null)) => Ok(None),
        Some(i) => i.get(field).map(Some),
    }
}

impl<K: Kind> Type for In<K> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Value;
    type RawElementValueType = Value;

    fn name() -> Cow<'static, str> {
        K::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        K::schema()
    }

    fn register(registry: &mut Registry) {
        K::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Value> {
        self.value.as_ref()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(self.value.iter())
    }
}

impl<K: Kind> ParseFromJSON for In<K> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Self {
            value,
            kind: PhantomData,
        })
    }
}

impl<K: Kind> ToJSON for In<K> {
    fn to_json(&self) -> Option<Value> {
        self.value.clone()
    }
}

/// Characters no field takes: C0 and C1 controls, line separators, bidirectional controls.
const NO_CONTROLS: &str = r"\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069";
/// What [`NO_CONTROLS`] leaves out for text that may span lines: tab, LF and CR stay.
const NO_CONTROLS_BUT_LINES: &str =
    r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069";
/// Characters that show nothing.
const INVISIBLE: &str = r"\s\u200B-\u200F\u2060-\u2064\uFEFF";

fn inline(schema: MetaSchema) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(schema))
}

fn string_schema(min: usize, max: usize) -> MetaSchema {
    MetaSchema {
        min_length: (min > 0).then_some(min),
        max_length: Some(max),
        ..MetaSchema::new("string")
    }
}

fn as_string(value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!("must be a string, not {}", json_kind(&other))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A display name of at most `MAX` characters ([`common::text::name`]).
pub struct Name<const MAX: usize>;

impl<const MAX: usize> Kind for Name<MAX> {
    type Out = String;
    fn name() -> Cow<'static, str> {
        format!("name_{MAX}").into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            description: Some(
                "Shown to people: trimmed and Unicode-normalised (NFC); one line, at least one visible character, no control or bidirectional control characters.",
            ),
            pattern: Some(format!(
                "^[^{NO_CONTROLS}]*[^{NO_CONTROLS}{INVISIBLE}][^{NO_CONTROLS}]*$"
            )),
            ..string_schema(1, MAX)
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        common::text::name(&as_string(value)?, MAX).map_err(|e| e.to_string())
    }
}

/// An identifier of another system, at most `MAX` characters, no white space.
pub struct Ident<const MAX: usize>;

impl<const MAX: usize> Kind for Ident<MAX> {
    type Out = String;
    fn name() -> Cow<'static, str> {
        format!("identifier_{MAX}").into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            pattern: Some(format!("^\\s*[^{NO_CONTROLS}{INVISIBLE}]+\\s*$")),
            ..string_schema(1, MAX)
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        common::text::identifier(&as_string(value)?, MAX).map_err(|e| e.to_string())
    }
}

/// Text that may span lines, at most `MAX` characters.
pub struct LongText<const MAX: usize>;

impl<const MAX: usize> Kind for LongText<MAX> {
    type Out = String;
    fn name() -> Cow<'static, str> {
        format!("text_{MAX}").into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            pattern: Some(format!("^[^{NO_CONTROLS_BUT_LINES}]*$")),
            ..string_schema(0, MAX)
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        common::text::long_text(&as_string(value)?, MAX).map_err(|e| e.to_string())
    }
}

/// A required, non-blank text of at most `MAX` characters with no control characters,
/// kept as given (a secret, a password).
pub struct Opaque<const MIN: usize, const MAX: usize>;

impl<const MIN: usize, const MAX: usize> Kind for Opaque<MIN, MAX> {
    type Out = String;
    fn name() -> Cow<'static, str> {
        format!("opaque_{MIN}_{MAX}").into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            format: Some("password"),
            pattern: Some(format!("^[^{NO_CONTROLS}]*\\S[^{NO_CONTROLS}]*$")),
            ..string_schema(MIN.max(1), MAX)
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        let s = as_string(value)?;
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let n = s.chars().count();
        if n < MIN {
            return Err(format!("must be at least {MIN} characters"));
        }
        if n > MAX {
            return Err(format!("must be at most {MAX} characters"));
        }
        Ok(s)
    }
}

/// An email address, lowercased.
pub struct Email;

impl Kind for Email {
    type Out = String;
    fn name() -> Cow<'static, str> {
        "email".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            format: Some("email"),
            ..string_schema(3, 254)
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        common::repo::users::normalize_email(&as_string(value)?)
    }
}

/// An Amazon Ads region.
pub struct RegionKind;

impl Kind for RegionKind {
    type Out = Region;
    fn name() -> Cow<'static, str> {
        "region".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            enum_items: Region::ALL
                .iter()
                .map(|r| Value::from(r.as_str()))
                .collect(),
            ..MetaSchema::new("string")
        })
    }
    fn parse(value: Value) -> Result<Region, String> {
        let s = as_string(value)?;
        s.trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a region: expected NA, EU or FE"))
    }
}

/// A whole number in `MIN..=MAX`.
pub struct Int<const MIN: i64, const MAX: i64>;

impl<const MIN: i64, const MAX: i64> Kind for Int<MIN, MAX> {
    type Out = i32;
    fn name() -> Cow<'static, str> {
        format!("int_{MIN}_{MAX}").into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            minimum: Some(MIN as f64),
            maximum: Some(MAX as f64),
            ..MetaSchema::new_with_format("integer", "int32")
        })
    }
    fn parse(value: Value) -> Result<i32, String> {
        let range = || format!("must be a whole number from {MIN} to {MAX}");
        let n = value.as_i64().ok_or_else(range)?;
        if !(MIN..=MAX).contains(&n) {
            return Err(range());
        }
        i32::try_from(n).map_err(|_| range())
    }
}

/// An IANA time zone name.
pub struct TimeZone;

impl Kind for TimeZone {
    type Out = chrono_tz::Tz;
    fn name() -> Cow<'static, str> {
        "time_zone".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            description: Some("An IANA time zone name, such as `UTC` or `America/New_York`."),
            example: Some(Value::from("America/New_York")),
            ..string_schema(1, 64)
        })
    }
    fn parse(value: Value) -> Result<chrono_tz::Tz, String> {
        let s = as_string(value)?;
        let v = s.trim();
        v.parse()
            .map_err(|_| format!("`{v}` is not an IANA time zone such as UTC or America/New_York"))
    }
}

/// AMC's local time, `yyyy-MM-ddTHH:mm:ss` (checked with its window).
pub struct LocalTime;

impl Kind for LocalTime {
    type Out = String;
    fn name() -> Cow<'static, str> {
        "local_time".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            description: Some(
                "A local time `yyyy-MM-ddTHH:mm:ss` (no offset) read in the window's zone, from 2000-01-01T00:00:00 to 2100-01-01T00:00:00, that exists in that zone.",
            ),
            pattern: Some(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?$".into()),
            example: Some(Value::from("2026-01-01T00:00:00")),
            ..MetaSchema::new("string")
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        as_string(value)
    }
}

/// A calendar date, `YYYY-MM-DD`, from 2000-01-01 to 2100-01-01.
pub struct Date;

impl Kind for Date {
    type Out = chrono::NaiveDate;
    fn name() -> Cow<'static, str> {
        "date".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            example: Some(Value::from("2026-01-05")),
            ..MetaSchema::new_with_format("string", "date")
        })
    }
    fn parse(value: Value) -> Result<chrono::NaiveDate, String> {
        let s = as_string(value)?;
        let d: chrono::NaiveDate = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a date such as 2026-01-05"))?;
        let (lo, hi) = (
            common::time_window::EARLIEST.date(),
            common::time_window::LATEST.date(),
        );
        if !(lo..=hi).contains(&d) {
            return Err(format!("must be from {lo} to {hi}"));
        }
        Ok(d)
    }
}

/// A webhook URL: `http(s)://…`, at most 2,048 characters (checked against the
/// deployment by the handler: `https` in production, private addresses).
pub struct WebhookUrl;

impl Kind for WebhookUrl {
    type Out = String;
    fn name() -> Cow<'static, str> {
        "webhook_url".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            format: Some("uri"),
            pattern: Some("^https?://".into()),
            example: Some(Value::from("https://hooks.example.com/amc")),
            ..string_schema(8, 2048)
        })
    }
    fn parse(value: Value) -> Result<String, String> {
        let s = as_string(value)?;
        if s.chars().count() > 2048 {
            return Err("must be at most 2048 characters".into());
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(s.trim().to_owned())
    }
}

/// Event types an endpoint subscribes to: a non-empty list of CONTRACT's types, all but
/// the four non-terminal `execution.*` ones.
pub struct EventTypes;

impl Kind for EventTypes {
    type Out = Vec<common::event::EventType>;
    fn name() -> Cow<'static, str> {
        "event_types".into()
    }
    fn schema() -> MetaSchemaRef {
        use common::event::EventType;
        let names: Vec<Value> = EventType::ALL
            .iter()
            .filter(|t| t.is_subscribable())
            .map(|t| Value::from(t.as_str()))
            .collect();
        inline(MetaSchema {
            items: Some(Box::new(inline(MetaSchema {
                enum_items: names,
                ..MetaSchema::new("string")
            }))),
            min_items: Some(1),
            max_items: Some(EventType::ALL.len()),
            unique_items: Some(true),
            ..MetaSchema::new("array")
        })
    }
    fn parse(value: Value) -> Result<Self::Out, String> {
        use common::event::EventType;
        let Value::Array(items) = value else {
            return Err(format!("must be an array, not {}", json_kind(&value)));
        };
        if items.is_empty() {
            return Err("must name at least one event type".into());
        }
        let mut out: Vec<EventType> = Vec::new();
        for item in items {
            let name = as_string(item)?;
            let t: EventType = name
                .parse()
                .map_err(|_| format!("`{name}` is not an event type"))?;
            if !t.is_subscribable() {
                return Err(format!(
                    "`{name}` cannot be subscribed to (only terminal execution events and the others)"
                ));
            }
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(out)
    }
}

/// Tags: at most 20 distinct labels of 1 to 50 characters each (trimmed, one line).
pub struct Tags;

/// The most tags a resource carries.
pub const MAX_TAGS: usize = 20;

impl Kind for Tags {
    type Out = Vec<String>;
    fn name() -> Cow<'static, str> {
        "tags".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            items: Some(Box::new(Name::<50>::schema())),
            max_items: Some(MAX_TAGS),
            ..MetaSchema::new("array")
        })
    }
    fn parse(value: Value) -> Result<Vec<String>, String> {
        let Value::Array(items) = value else {
            return Err(format!("must be an array, not {}", json_kind(&value)));
        };
        let mut out: Vec<String> = Vec::new();
        for item in items {
            let tag = Name::<50>::parse(item).map_err(|e| format!("each tag {e}"))?;
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        if out.len() > MAX_TAGS {
            return Err(format!("must hold at most {MAX_TAGS} tags"));
        }
        Ok(out)
    }
}

/// A UUID.
pub struct Id;

impl Kind for Id {
    type Out = uuid::Uuid;
    fn name() -> Cow<'static, str> {
        "id".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema::new_with_format("string", "uuid"))
    }
    fn parse(value: Value) -> Result<uuid::Uuid, String> {
        let s = as_string(value)?;
        uuid::Uuid::parse_str(s.trim()).map_err(|_| format!("`{s}` is not a UUID"))
    }
}

/// A JSON object of named values (parameters), every key and string storable.
pub struct JsonObject;

impl Kind for JsonObject {
    type Out = Map<String, Value>;
    fn name() -> Cow<'static, str> {
        "json_object".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            additional_properties: Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema::ANY)))),
            ..MetaSchema::new("object")
        })
    }
    fn parse(value: Value) -> Result<Map<String, Value>, String> {
        let Value::Object(map) = value else {
            return Err(format!("must be an object, not {}", json_kind(&value)));
        };
        let map = Value::Object(map);
        common::text::check_json(&map).map_err(|e| {
            let at = if e.path.is_empty() {
                String::new()
            } else {
                format!(" (at `{}`)", e.path.escape_default())
            };
            format!("{}{at}", e.error)
        })?;
        match map {
            Value::Object(m) => Ok(m),
            _ => Err("must be an object".into()),
        }
    }
}

/// A nested object whose own fields are [`In`] fields.
pub struct Obj<T>(PhantomData<fn() -> T>);

impl<T: ParseFromJSON + Send + Sync + 'static> Kind for Obj<T> {
    type Out = T;
    fn name() -> Cow<'static, str> {
        T::name()
    }
    fn schema() -> MetaSchemaRef {
        T::schema_ref()
    }
    fn register(registry: &mut Registry) {
        T::register(registry);
    }
    fn parse(value: Value) -> Result<T, String> {
        if !value.is_object() {
            return Err(format!("must be an object, not {}", json_kind(&value)));
        }
        T::parse_from_json(Some(value)).map_err(|e| e.into_message())
    }
}

/// A list of objects whose own fields are [`In`] fields, 1 to `MAX` of them (the schema
/// says so; the domain checks the count and names it). The handler checks each item with
/// [`item`], naming its fields under `field[i]`.
pub struct ObjList<T, const MAX: usize>(PhantomData<fn() -> T>);

impl<T: ParseFromJSON + Send + Sync + 'static, const MAX: usize> Kind for ObjList<T, MAX> {
    type Out = Vec<Value>;
    fn name() -> Cow<'static, str> {
        format!("{}_list_{MAX}", T::name()).into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            items: Some(Box::new(T::schema_ref())),
            min_items: Some(1),
            max_items: Some(MAX),
            ..MetaSchema::new("array")
        })
    }
    fn register(registry: &mut Registry) {
        T::register(registry);
    }
    fn parse(value: Value) -> Result<Vec<Value>, String> {
        match value {
            Value::Array(items) => Ok(items),
            other => Err(format!("must be an array, not {}", json_kind(&other))),
        }
    }
}

/// One item of an [`ObjList`], checked as an [`Obj`]; a bad one → 422 naming `field`
/// (`instances[3]`).
pub fn item<T: ParseFromJSON + Send + Sync + 'static>(
    value: Value,
    field: &str,
) -> Result<T, ApiError> {
    <Obj<T> as Kind>::parse(value).map_err(|m| ApiError::field(field, m))
}

/// A response field that may be `null`: always present, marked `nullable` in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nullable<T>(pub Option<T>);

impl<T> From<Option<T>> for Nullable<T> {
    fn from(v: Option<T>) -> Self {
        Self(v)
    }
}

impl<T: Type> Type for Nullable<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("nullable_{}", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        match T::schema_ref() {
            MetaSchemaRef::Inline(schema) => inline(MetaSchema {
                nullable: true,
                ..*schema
            }),
            reference => inline(MetaSchema {
                all_of: vec![reference],
                nullable: true,
                ..MetaSchema::ANY
            }),
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(Type::as_raw_value)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(v) => v.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<Value> {
        Some(
            self.0
                .as_ref()
                .and_then(ToJSON::to_json)
                .unwrap_or(Value::Null),
        )
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None | Some(Value::Null) => Ok(Self(None)),
            v => Ok(Self(Some(
                T::parse_from_json(v).map_err(poem_openapi::types::ParseError::propagate)?,
            ))),
        }
    }
}

/// A `PATCH` field that may be cleared with `null`: absent, `null` and a value are three
/// different requests (`Option<In<K>>` cannot tell the first two apart).
pub struct Clearable<K>(In<K>);

impl<K> std::fmt::Debug for Clearable<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clearable(…)")
    }
}

impl<K: Kind> Clearable<K> {
    /// Absent → `None`, `null` → `Some(None)`, a value → `Some(Some(checked))`.
    pub fn get(self, field: &str) -> Result<Option<Option<K::Out>>, ApiError> {
        match self.0.value {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(_) => self.0.get(field).map(|v| Some(Some(v))),
        }
    }
}

impl<K: Kind> Type for Clearable<K> {
    const IS_REQUIRED: bool = false;
    type RawValueType = Value;
    type RawElementValueType = Value;

    fn name() -> Cow<'static, str> {
        format!("clearable_{}", K::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        match K::schema() {
            MetaSchemaRef::Inline(schema) => inline(MetaSchema {
                nullable: true,
                ..*schema
            }),
            reference => inline(MetaSchema {
                all_of: vec![reference],
                nullable: true,
                ..MetaSchema::ANY
            }),
        }
    }

    fn register(registry: &mut Registry) {
        K::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Value> {
        self.0.value.as_ref()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(self.0.value.iter())
    }
}

impl<K: Kind> ParseFromJSON for Clearable<K> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Self(In {
            value,
            kind: PhantomData,
        }))
    }
}

impl<K: Kind> ToJSON for Clearable<K> {
    fn to_json(&self) -> Option<Value> {
        self.0.value.clone()
    }
}

/// `true` or `false`.
pub struct Bool;

impl Kind for Bool {
    type Out = bool;
    fn name() -> Cow<'static, str> {
        "bool".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema::new("boolean"))
    }
    fn parse(value: Value) -> Result<bool, String> {
        value
            .as_bool()
            .ok_or_else(|| format!("must be true or false, not {}", json_kind(&value)))
    }
}

/// An instant in RFC 3339 (`2027-03-28T01:00:00Z`, or with an offset).
pub struct Instant;

impl Kind for Instant {
    type Out = chrono::DateTime<chrono::Utc>;
    fn name() -> Cow<'static, str> {
        "instant".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema::new_with_format("string", "date-time"))
    }
    fn parse(value: Value) -> Result<Self::Out, String> {
        let s = as_string(value)?;
        parse_instant(&s)
    }
}

/// An RFC 3339 instant from 2000-01-01 to 2100-01-01 (the range windows take).
pub fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s.trim())
        .map_err(|_| format!("`{s}` is not an RFC 3339 instant such as 2027-03-28T01:00:00Z"))?
        .with_timezone(&chrono::Utc);
    instant_in_range(t)
}

/// An instant from 2000-01-01 to 2100-01-01 (what the database and AMC hold).
pub fn instant_in_range(
    t: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let (lo, hi) = (
        chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").map(|d| d.to_utc()),
        chrono::DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z").map(|d| d.to_utc()),
    );
    if let (Ok(lo), Ok(hi)) = (lo, hi)
        && !(lo..hi).contains(&t)
    {
        return Err("must be from 2000-01-01 to 2100-01-01".into());
    }
    Ok(t)
}

/// A cron rule: 5 fields, 6 with seconds first, or `@hourly`, `@daily`, `@weekly`,
/// `@monthly`.
pub struct Cron;

impl Kind for Cron {
    type Out = common::schedule::CronRule;
    fn name() -> Cow<'static, str> {
        "cron".into()
    }
    fn schema() -> MetaSchemaRef {
        inline(MetaSchema {
            description: Some(
                "5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @daily, @weekly, @monthly; read in the schedule's time zone.",
            ),
            example: Some(Value::from("0 6 * * *")),
            ..string_schema(1, 200)
        })
    }
    fn parse(value: Value) -> Result<Self::Out, String> {
        let s = as_string(value)?;
        if s.chars().count() > 200 {
            return Err("must be at most 200 characters".into());
        }
        common::schedule::CronRule::parse(&s)
    }
}

/// A field whose schema is a text enum's (`overlap`), checked against its values.
pub struct Choice<E>(PhantomData<fn() -> E>);

impl<E> Kind for Choice<E>
where
    E: std::str::FromStr + poem_openapi::types::Type + Send + Sync + 'static,
{
    type Out = E;
    fn name() -> Cow<'static, str> {
        E::name()
    }
    fn schema() -> MetaSchemaRef {
        E::schema_ref()
    }
    fn register(registry: &mut Registry) {
        E::register(registry);
    }
    fn parse(value: Value) -> Result<E, String> {
        let s = as_string(value)?;
        s.trim().parse().map_err(|_| {
            let names: Vec<String> = choices::<E>();
            format!("`{s}` is not one of {}", names.join(", "))
        })
    }
}

/// The values of a text enum's schema.
fn choices<E: poem_openapi::types::Type>() -> Vec<String> {
    let mut registry = Registry::new();
    E::register(&mut registry);
    let schema = match E::schema_ref() {
        MetaSchemaRef::Inline(s) => Some(*s),
        MetaSchemaRef::Reference(name) => registry.schemas.remove(&name),
    };
    schema
        .map(|s| {
            s.enum_items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A request body that may be left out (then `None`); when sent it is JSON.
pub struct OptionalJson<T>(pub Option<T>);

impl<'a, T: ParseFromJSON + Send> poem_openapi::ApiExtractor<'a> for OptionalJson<T> {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: "application/json; charset=utf-8",
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a poem::Request,
        body: &mut poem::RequestBody,
        _param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let empty = request.content_type().is_none()
            && request
                .headers()
                .get(poem::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v.trim() == "0");
        if empty {
            return Ok(Self(None));
        }
        let poem_openapi::payload::Json(v) =
            <poem_openapi::payload::Json<T> as poem_openapi::ApiExtractor>::from_request(
                request,
                body,
                Default::default(),
            )
            .await?;
        Ok(Self(Some(v)))
    }
}

fn object_schema(
    description: &'static str,
    properties: Vec<(&'static str, MetaSchemaRef)>,
) -> MetaSchemaRef {
    inline(MetaSchema {
        description: Some(description),
        properties,
        ..MetaSchema::new("object")
    })
}

fn enum_schema(values: &[&str]) -> MetaSchemaRef {
    inline(MetaSchema {
        enum_items: values.iter().map(|v| Value::from(*v)).collect(),
        ..MetaSchema::new("string")
    })
}

fn days_schema() -> MetaSchemaRef {
    inline(MetaSchema {
        minimum: Some(0.0),
        maximum: Some(f64::from(common::schedule::window::MAX_DAYS)),
        ..MetaSchema::new_with_format("integer", "int32")
    })
}

/// A schedule's time window rule (checked by the handler, which names the bad field
/// below `time_window`).
pub struct WindowSpec;

impl Kind for WindowSpec {
    type Out = Value;
    fn name() -> Cow<'static, str> {
        "window_rule".into()
    }
    fn schema() -> MetaSchemaRef {
        object_schema(
            "Resolved at each fire from its local date D: `rolling` [D−lag_days−days, D−lag_days); `previous_day` [D−lag_days−1, D−lag_days); `previous_week` the last full week starting on `week_starts` (default monday) ending at or before D−lag_days; `previous_month` the last full calendar month ending at or before D−lag_days.",
            vec![
                (
                    "kind",
                    enum_schema(&["rolling", "previous_day", "previous_week", "previous_month"]),
                ),
                ("days", days_schema()),
                ("lag_days", days_schema()),
                ("week_starts", common::schedule::WeekStart::schema_ref()),
            ],
        )
    }
    fn parse(value: Value) -> Result<Value, String> {
        if !value.is_object() {
            return Err(format!("must be an object, not {}", json_kind(&value)));
        }
        Ok(value)
    }
}

/// A schedule's catch-up policy, `{"policy","window"}` (checked by the handler).
pub struct CatchUpSpec;

impl Kind for CatchUpSpec {
    type Out = Value;
    fn name() -> Cow<'static, str> {
        "catch_up".into()
    }
    fn schema() -> MetaSchemaRef {
        object_schema(
            "What happens to ticks that came due while no scheduler ran: `none` fires none, `latest` (default) the last one, `all` every one, within `window` (a duration such as `24h`, at most `31d`; default `24h`). Every tick not fired is recorded `missed`.",
            vec![
                ("policy", common::schedule::CatchUpPolicy::schema_ref()),
                (
                    "window",
                    inline(MetaSchema {
                        example: Some(Value::from("24h")),
                        ..string_schema(1, 32)
                    }),
                ),
            ],
        )
    }
    fn parse(value: Value) -> Result<Value, String> {
        if !value.is_object() {
            return Err(format!("must be an object, not {}", json_kind(&value)));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field<K: Kind>(v: Value) -> Result<K::Out, String> {
        let i = In::<K>::parse_from_json(Some(v)).map_err(|e| e.into_message())?;
        i.get("f").map_err(|e| e.to_string())
    }

    #[test]
    fn wrong_types_are_named_not_coerced() {
        assert!(field::<Opaque<8, 64>>(json!(123456789)).is_err());
        assert!(field::<Name<10>>(json!(true)).is_err());
        assert_eq!(field::<Int<1, 10>>(json!(3)).unwrap(), 3);
        assert!(field::<Int<1, 10>>(json!(3.5)).is_err());
        assert!(field::<Int<1, 10>>(json!("3")).is_err());
        assert!(field::<Int<1, 10>>(json!(0)).is_err());
        assert!(field::<RegionKind>(json!("XX")).is_err());
        let missing = In::<Name<10>>::parse_from_json(None).unwrap().get("name");
        assert!(missing.unwrap_err().to_string().starts_with("name:"));
    }

    #[test]
    fn json_objects_refuse_nul() {
        assert!(field::<JsonObject>(json!({"a": "x\u{0}"})).is_err());
        assert!(field::<JsonObject>(json!([1])).is_err());
        assert!(field::<JsonObject>(json!({"a": [1, {"b": "c"}]})).is_ok());
    }

    #[test]
    fn nullable_fields_are_present_and_marked() {
        assert_eq!(Nullable::<String>(None).to_json(), Some(Value::Null));
        match Nullable::<String>::schema_ref() {
            MetaSchemaRef::Inline(s) => assert!(s.nullable),
            other => panic!("{other:?}"),
        }
    }
}
