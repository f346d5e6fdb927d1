//! The migrations, oldest first.

pub mod m20260101_000001_initial;
