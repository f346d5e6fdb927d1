//! Query parameters taken as one handler argument, each still its own parameter in the
//! spec and on the wire: a page's `cursor` and `limit` ([`Page`]), a list's filters
//! ([`query_group!`]). An operation names the group (`page: Params<Page<500>>`), so no
//! handler takes a long list of arguments, and the spec is what it would be with one
//! argument per parameter.
//!
//! poem-openapi writes one spec parameter per handler argument. A group's argument is
//! written as a marker parameter carrying the group's parameters, and [`Grouped`], around
//! the whole API, puts them in the marker's place. Each parameter is read, and its errors
//! are worded, by poem-openapi's own `Query` extractor, so a bad value gets the same 422
//! naming the parameter as before.

use futures::future::BoxFuture;
use poem::Request;
use poem::web::RequestBody;
use poem_openapi::error::ParseParamError;
use poem_openapi::param::Query;
use poem_openapi::registry::{
    MetaApi, MetaOperationParam, MetaParamIn, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::ParseFromParameter;
use poem_openapi::validation::{Maximum, Minimum, Validator, ValidatorMeta};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, OpenApi};
use std::collections::HashMap;
use std::fmt::Display;

/// The marker schema's type: never in a served spec ([`Grouped`] replaces it).
const MARKER: &str = "x-query-group";

/// A group of query parameters read together.
pub trait QueryGroup: Sized + Send {
    /// Each parameter's name and schema, in the spec's order.
    fn params() -> Vec<(&'static str, MetaSchemaRef)>;

    /// Registers the schemas the parameters refer to.
    fn register(registry: &mut Registry);

    /// Reads the group from the request's query string.
    fn parse(req: &Request) -> impl Future<Output = poem::Result<Self>> + Send;
}

/// A handler argument reading the group `T` (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params<T>(pub T);

impl<'a, T: QueryGroup> ApiExtractor<'a> for Params<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Query)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(MetaSchemaRef::Inline(Box::new(MetaSchema {
            properties: T::params(),
            ..MetaSchema::new(MARKER)
        })))
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        T::parse(req).await.map(Params)
    }
}

/// One query parameter, read as poem-openapi reads a `Query<T>` argument (`default`: the
/// value when it is absent).
pub fn query<'a, T>(
    req: &'a Request,
    name: &'static str,
    default: Option<fn() -> T>,
) -> BoxFuture<'a, poem::Result<T>>
where
    T: ParseFromParameter + Send + 'a,
{
    let opts = ExtractParamOptions {
        name,
        default_value: default,
        ..ExtractParamOptions::default()
    };
    Box::pin(async move {
        let mut body = RequestBody::default();
        let q = <Query<T> as ApiExtractor<'a>>::from_request(req, &mut body, opts).await?;
        Ok(q.0)
    })
}

/// The schema of a parameter of type `T`, as a `Query<T>` argument has it.
pub fn schema<T: ParseFromParameter>() -> MetaSchemaRef {
    <Query<T> as ApiExtractor>::param_schema_ref().expect("a query parameter has a schema")
}

/// Checks `value` against a validator as an operation's `#[oai(validator(…))]` does,
/// with the same error naming the parameter.
fn check<T, V: Validator<T> + Display>(name: &'static str, value: &T, v: V) -> poem::Result<()> {
    if v.check(value) {
        Ok(())
    } else {
        Err(ParseParamError {
            name,
            reason: format!("verification failed. {v}"),
        }
        .into())
    }
}

/// A page of a list: `cursor` (opaque; empty or absent for the first page) and `limit`
/// (1 to `MAX`; absent: the endpoint's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page<const MAX: u32> {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl<const MAX: u32> Page<MAX> {
    fn bounds() -> (Minimum, Maximum) {
        (
            Minimum::new(1.0, false),
            Maximum::new(f64::from(MAX), false),
        )
    }
}

impl<const MAX: u32> QueryGroup for Page<MAX> {
    fn params() -> Vec<(&'static str, MetaSchemaRef)> {
        let (min, max) = Self::bounds();
        let mut limit = MetaSchema::ANY;
        min.update_meta(&mut limit);
        max.update_meta(&mut limit);
        vec![
            ("cursor", schema::<Option<String>>()),
            ("limit", schema::<Option<u32>>().merge(limit)),
        ]
    }

    fn register(_registry: &mut Registry) {}

    async fn parse(req: &Request) -> poem::Result<Self> {
        let cursor = query::<Option<String>>(req, "cursor", None).await?;
        let limit = query::<Option<u32>>(req, "limit", None).await?;
        if let Some(n) = &limit {
            let (min, max) = Self::bounds();
            check("limit", n, min)?;
            check("limit", n, max)?;
        }
        Ok(Self { cursor, limit })
    }
}

/// A struct of query parameters, each field one parameter (its name the field's), read
/// with [`query`]; `#[default]` on a field makes it take `Default::default()` when absent
/// (and says so in the spec).
#[macro_export]
macro_rules! query_group {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$default:ident])? $field:ident : $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( pub $field: $ty ),+
        }

        impl $crate::params::QueryGroup for $name {
            fn params() -> Vec<(&'static str, poem_openapi::registry::MetaSchemaRef)> {
                vec![$((
                    stringify!($field),
                    $crate::query_group!(@schema $ty $(, $default)?),
                )),+]
            }

            fn register(registry: &mut poem_openapi::registry::Registry) {
                $( <poem_openapi::param::Query<$ty> as poem_openapi::ApiExtractor>::register(registry); )+
            }

            async fn parse(req: &poem::Request) -> poem::Result<Self> {
                Ok(Self {
                    $( $field: $crate::params::query::<$ty>(
                        req,
                        stringify!($field),
                        $crate::query_group!(@default $ty $(, $default)?),
                    ).await? ),+
                })
            }
        }
    };
    (@schema $ty:ty) => { $crate::params::schema::<$ty>() };
    (@schema $ty:ty, default) => {
        $crate::params::schema::<$ty>().merge(poem_openapi::registry::MetaSchema {
            default: Some(poem_openapi::types::ToJSON::to_json(&<$ty>::default()).unwrap_or_default()),
            ..poem_openapi::registry::MetaSchema::ANY
        })
    };
    (@default $ty:ty) => { None };
    (@default $ty:ty, default) => { Some(<$ty>::default as fn() -> $ty) };
}

/// The API with every group's marker parameter replaced by the group's parameters.
pub struct Grouped<T>(pub T);

impl<T: OpenApi> OpenApi for Grouped<T> {
    fn meta() -> Vec<MetaApi> {
        let mut apis = T::meta();
        for op in apis
            .iter_mut()
            .flat_map(|api| api.paths.iter_mut())
            .flat_map(|path| path.operations.iter_mut())
        {
            op.params = std::mem::take(&mut op.params)
                .into_iter()
                .flat_map(expand)
                .collect();
        }
        apis
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(
        self,
        route_table: &mut HashMap<
            String,
            HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>,
        >,
    ) {
        self.0.add_routes(route_table);
    }
}

/// A group's marker parameter as its parameters; any other parameter as it is.
fn expand(param: MetaOperationParam) -> Vec<MetaOperationParam> {
    match param.schema {
        MetaSchemaRef::Inline(schema) if schema.ty == MARKER => schema
            .properties
            .into_iter()
            .map(|(name, schema)| MetaOperationParam {
                name: name.to_owned(),
                schema,
                in_type: MetaParamIn::Query,
                description: None,
                required: false,
                deprecated: false,
                explode: true,
                style: None,
            })
            .collect(),
        _ => vec![param],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::{Endpoint, IntoEndpoint};
    use poem_openapi::OpenApiService;
    use poem_openapi::payload::PlainText;

    crate::query_group! {
        /// Two filters, one defaulted.
        pub struct Filters {
            name: Option<String>,
            #[default] tags: Vec<String>,
        }
    }

    struct Probe;

    #[poem_openapi::OpenApi]
    impl Probe {
        /// Echoes what it read.
        #[oai(path = "/probe", method = "get")]
        async fn probe(
            &self,
            page: Params<Page<500>>,
            filters: Params<Filters>,
        ) -> PlainText<String> {
            PlainText(format!("{:?} {:?}", page.0, filters.0))
        }
    }

    fn service() -> OpenApiService<Grouped<Probe>, ()> {
        OpenApiService::new(Grouped(Probe), "probe", "1")
    }

    async fn get(query: &str) -> (u16, String) {
        let ep = service().into_endpoint();
        let req = Request::builder()
            .uri(format!("/probe?{query}").parse().unwrap())
            .finish();
        let mut resp = ep.get_response(req).await;
        let body = resp.take_body().into_string().await.unwrap();
        (resp.status().as_u16(), body)
    }

    #[tokio::test]
    async fn each_parameter_of_a_group_is_read_and_checked() {
        assert_eq!(
            get("cursor=abc&limit=20&name=a&tags=x&tags=y").await,
            (
                200,
                r#"Page { cursor: Some("abc"), limit: Some(20) } Filters { name: Some("a"), tags: ["x", "y"] }"#.into()
            )
        );
        assert_eq!(
            get("").await,
            (
                200,
                "Page { cursor: None, limit: None } Filters { name: None, tags: [] }".into()
            )
        );
        for (bad, reason) in [
            (
                "limit=0",
                "verification failed. minimum(1, exclusive: false)",
            ),
            (
                "limit=501",
                "verification failed. maximum(500, exclusive: false)",
            ),
        ] {
            let (status, body) = get(bad).await;
            assert_eq!(status, 400, "{bad}");
            assert!(
                body.contains("`limit`") && body.contains(reason),
                "{bad}: {body}"
            );
        }
        let (status, body) = get("limit=x").await;
        assert_eq!(status, 400);
        assert!(body.contains("`limit`"), "{body}");
    }

    #[test]
    fn the_spec_lists_each_parameter_of_a_group() {
        let spec: serde_json::Value = serde_json::from_str(&service().spec()).unwrap();
        let params = &spec["paths"]["/probe"]["get"]["parameters"];
        let names: Vec<_> = params
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["cursor", "limit", "name", "tags"]);
        assert_eq!(params[1]["schema"]["maximum"], 500.0);
        assert_eq!(params[1]["schema"]["minimum"], 1.0);
        assert_eq!(params[3]["schema"]["default"], serde_json::json!([]));
        assert!(
            params
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["in"] == "query")
        );
        assert!(!spec.to_string().contains(MARKER));
    }
}
