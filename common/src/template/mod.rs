//! The query template library (the original system's): SQL with `{{placeholders}}`, a
//! JSON Schema of its parameters checked on every use, a category and tags, public
//! (readable and usable by every user, changed only by its owner) or private, and a
//! count of the workflows made from it.

pub mod schema;
mod store;

pub use schema::SchemaError;
pub use store::{
    NewTemplate, TemplateError, TemplateFilter, TemplatePatch, TemplateRow, TemplateUse, create,
    delete, get, list, update, use_template,
};
