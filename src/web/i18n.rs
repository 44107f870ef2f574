//! Japanese first, English available: the console language comes from the `lang` cookie
//! (set by the switch in the header); patient pages use the person's language.
use axum::{extract::FromRequestParts, http::request::Parts};
use axum_extra::extract::CookieJar;
use mimamori_core::domain::Lang;

/// The console language of this request.
#[derive(Debug, Clone, Copy)]
pub struct UiLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for UiLang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_request_parts(parts, state).await?;
        let lang = match jar.get("lang").map(|c| c.value()) {
            Some("en") => Lang::En,
            _ => Lang::Ja,
        };
        Ok(UiLang(lang))
    }
}

pub use mimamori_core::i18n::{Arg, count, tr, tr_args};

tokio::task_local! {
    /// The language of the request being handled (set by [`super::lang_layer`]).
    pub static REQUEST_LANG: Lang;
}

/// The current request's language (Japanese outside a request).
pub fn current() -> Lang {
    REQUEST_LANG.try_with(|l| *l).unwrap_or(Lang::Ja)
}
