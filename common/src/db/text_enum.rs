//! [`text_enum!`](crate::text_enum): an enum stored as text. It is the one place where its
//! spellings exist: parsing, display, serde, and decoding and binding at the database edge
//! all go through it, so no status, region or kind is compared or built as a string
//! anywhere else.

/// A stored value that is not one of the enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// Counts token trees (for the length of `ALL`).
#[doc(hidden)]
#[macro_export]
macro_rules! count_tts {
    () => { 0usize };
    ($head:tt $($tail:tt)*) => { 1usize + $crate::count_tts!($($tail)*) };
}

/// Declares an enum stored as text: `as_str`, `ALL`, `FromStr`, `Display`, serde, and
/// sea-orm's `TryGetable` and `Value` conversions, from one list of spellings.
///
/// ```ignore
/// text_enum! {
///     /// What created an execution.
///     pub enum TriggeredBy("trigger") { Api = "api", Schedule = "schedule" }
/// }
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; $crate::count_tts!($($variant)+)] = [$($name::$variant),+];

            /// The stored (and API) spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::db::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err($crate::db::UnknownValue {
                        kind: $kind,
                        value: other.to_owned(),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl From<$name> for ::sea_orm::Value {
            fn from(v: $name) -> Self {
                ::sea_orm::Value::String(Some(v.as_str().to_owned()))
            }
        }

        impl ::sea_orm::sea_query::Nullable for $name {
            fn null() -> ::sea_orm::Value {
                ::sea_orm::Value::String(None)
            }
        }

        $crate::text_enum_openapi!($name, $kind);

        impl ::sea_orm::TryGetable for $name {
            fn try_get_by<I: ::sea_orm::ColIdx>(
                res: &::sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, ::sea_orm::TryGetError> {
                let text = <String as ::sea_orm::TryGetable>::try_get_by(res, index)?;
                text.parse().map_err(|e: $crate::db::UnknownValue| {
                    ::sea_orm::TryGetError::DbErr(::sea_orm::DbErr::Type(e.to_string()))
                })
            }
        }
    };
}

/// The spec impls of a [`text_enum!`]: a string schema with its spellings as `enum`.
#[cfg(feature = "openapi")]
#[doc(hidden)]
#[macro_export]
macro_rules! text_enum_openapi {
    ($name:ident, $kind:literal) => {
        impl $crate::__openapi::types::Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }

            fn schema_ref() -> $crate::__openapi::registry::MetaSchemaRef {
                $crate::__openapi::registry::MetaSchemaRef::Inline(Box::new(
                    $crate::__openapi::registry::MetaSchema {
                        enum_items: $name::ALL
                            .iter()
                            .map(|v| ::serde_json::Value::from(v.as_str()))
                            .collect(),
                        ..$crate::__openapi::registry::MetaSchema::new("string")
                    },
                ))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(::std::iter::once(self))
            }
        }

        impl $crate::__openapi::types::ToJSON for $name {
            fn to_json(&self) -> Option<::serde_json::Value> {
                Some(::serde_json::Value::from(self.as_str()))
            }
        }

        impl $crate::__openapi::types::ParseFromJSON for $name {
            fn parse_from_json(
                value: Option<::serde_json::Value>,
            ) -> $crate::__openapi::types::ParseResult<Self> {
                match value {
                    Some(::serde_json::Value::String(s)) => s
                        .parse()
                        .map_err($crate::__openapi::types::ParseError::custom),
                    other => Err($crate::__openapi::types::ParseError::expected_type(
                        other.unwrap_or_default(),
                    )),
                }
            }
        }

        impl $crate::__openapi::types::ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> $crate::__openapi::types::ParseResult<Self> {
                value
                    .parse()
                    .map_err($crate::__openapi::types::ParseError::custom)
            }
        }
    };
}

/// Without the `openapi` feature, a text enum has no spec impls.
#[cfg(not(feature = "openapi"))]
#[doc(hidden)]
#[macro_export]
macro_rules! text_enum_openapi {
    ($name:ident, $kind:literal) => {};
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        /// A test enum.
        pub enum Colour("colour") { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn spellings_round_trip() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), c);
        }
        let e = "green".parse::<Colour>().unwrap_err();
        assert_eq!(e.to_string(), "unknown colour `green`");
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
        assert_eq!(
            sea_orm::Value::from(Colour::Red),
            sea_orm::Value::String(Some("red".into()))
        );
    }
}
