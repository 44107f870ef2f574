use std::borrow::Cow;

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the core layer. Messages of the 4xx-like variants are safe to show to the
/// user: they name a field and how to fix it, never personal data.
#[derive(Debug, Error)]
pub enum Error {
    /// Input that cannot be accepted; one entry per offending field.
    #[error("invalid input: {}", .0.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("{field} already exists")]
    Conflict { field: &'static str },
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("provider error: {0}")]
    Provider(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError {
            field: field.into(),
            reason: reason.into(),
        }])
    }

    /// Turns unique-constraint violations into a `Conflict` naming `field`.
    pub fn unique_as(field: &'static str) -> impl Fn(sqlx::Error) -> Error {
        move |e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict { field },
            _ => Error::Db(e),
        }
    }
}

/// One field that failed validation: which, why and how to fix it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub reason: String,
}

/// Collects field errors so a form reports every problem at once.
#[derive(Default)]
pub struct Collect(pub Vec<FieldError>);

impl Collect {
    /// Keeps the value, or records the error and returns `None`.
    pub fn take<T>(&mut self, r: Result<T, Error>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Error::Invalid(mut f)) => {
                self.0.append(&mut f);
                None
            }
            Err(other) => {
                self.0.push(FieldError {
                    field: "input".into(),
                    reason: other.to_string(),
                });
                None
            }
        }
    }
    pub fn push(&mut self, field: impl Into<Cow<'static, str>>, reason: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}
