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
    /// A field refused: `reason` is a key of the message catalogue (`err-…`, see
    /// `locales/*/errors.ftl`) — or, for a text that comes from elsewhere (a parser), that text.
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, reason.into(), Vec::new())])
    }

    /// A field refused with values in the message (`{ $max }` …).
    pub fn invalid_with(
        field: impl Into<Cow<'static, str>>,
        key: &'static str,
        args: Vec<(&'static str, String)>,
    ) -> Self {
        Error::Invalid(vec![FieldError::new(field, key.to_string(), args)])
    }

    /// Turns unique-constraint violations into a `Conflict` naming `field`.
    pub fn unique_as(field: &'static str) -> impl Fn(sqlx::Error) -> Error {
        move |e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict { field },
            _ => Error::Db(e),
        }
    }
}

/// One field that failed validation: which, why and how to fix it. It carries the message's
/// catalogue key and arguments, so each screen shows it in its own language
/// ([`FieldError::message`]); `reason` is the English text (the API's default).
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub reason: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub key: Option<String>,
    #[serde(skip)]
    #[schemars(skip)]
    pub args: Vec<(&'static str, String)>,
}

impl FieldError {
    /// `reason`: a catalogue key (`err-…`) or a text of its own.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        reason: String,
        args: Vec<(&'static str, String)>,
    ) -> FieldError {
        let field = field.into();
        if reason.starts_with("err-") && crate::i18n::has(&reason) {
            let english = render(crate::domain::Lang::En, &reason, &args);
            FieldError {
                field,
                reason: english,
                key: Some(reason),
                args,
            }
        } else {
            FieldError {
                field,
                reason,
                key: None,
                args,
            }
        }
    }

    /// The message in `lang`.
    pub fn message(&self, lang: crate::domain::Lang) -> String {
        match &self.key {
            Some(k) => render(lang, k, &self.args),
            None => self.reason.clone(),
        }
    }
}

fn render(lang: crate::domain::Lang, key: &str, args: &[(&'static str, String)]) -> String {
    let args: Vec<(&str, crate::i18n::Arg<'_>)> = args
        .iter()
        .map(|(k, v)| (*k, crate::i18n::Arg::Str(v.as_str())))
        .collect();
    crate::i18n::tr_args(lang, key, &args)
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
                self.0
                    .push(FieldError::new("input", other.to_string(), Vec::new()));
                None
            }
        }
    }
    /// Records a refused field; `reason` is a catalogue key (`err-…`) or a text of its own.
    pub fn push(&mut self, field: impl Into<Cow<'static, str>>, reason: impl Into<String>) {
        self.0
            .push(FieldError::new(field, reason.into(), Vec::new()));
    }

    /// Records a refused field with values in the message.
    pub fn push_with(
        &mut self,
        field: impl Into<Cow<'static, str>>,
        key: &'static str,
        args: Vec<(&'static str, String)>,
    ) {
        self.0.push(FieldError::new(field, key.to_string(), args));
    }
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}
