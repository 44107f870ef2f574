//! A running check's or import's progress page, kept up to date in place.
use super::*;

/// A run's progress: its count in a status line and a bar, brought up to date in place by
/// `/static/progress.js` (which moves on to the result when the run ends), and a link that
/// does the same by hand without JavaScript. Not a `<meta http-equiv="refresh">`: a page
/// that reloads itself on a timer moves a screen reader's user away mid-sentence (axe-core:
/// `meta-refresh`, WCAG 2.2.1).
pub(super) fn progress_page(
    lang: Lang,
    token: &str,
    status: maud::Markup,
    bar: maud::Markup,
) -> maud::Markup {
    html! {
        div data-poll {
            p role="status" { (status) }
            (bar)
        }
        p { a href=(format!("/imports/0?token={token}")) { (tr(lang, "import-refresh")) } }
        script src="/static/progress.js" {}
    }
}

/// `/static/progress.js`, for [`progress_page`].
const PROGRESS_SCRIPT: &str = r#"(function () {
  var box = document.querySelector('[data-poll]');
  if (!box) return;
  function poll() {
    fetch(location.href, { credentials: 'same-origin' }).then(function (r) {
      // The run ended (led on to its result), or the page is now another kind (a refused
      // file, a run no longer known): show that page.
      if (r.redirected) { location.assign(r.url); return null; }
      if (!r.ok) { location.reload(); return null; }
      return r.text();
    }).then(function (html) {
      if (html === null) return;
      var fresh = new DOMParser().parseFromString(html, 'text/html').querySelector('[data-poll]');
      if (!fresh) { location.reload(); return; }
      var now = box.querySelector('[role=status]'), then = fresh.querySelector('[role=status]');
      if (now && then && now.textContent !== then.textContent) now.textContent = then.textContent;
      var bar = box.querySelector('progress'), next = fresh.querySelector('progress');
      if (bar && next) {
        ['max', 'value'].forEach(function (a) {
          if (next.hasAttribute(a)) bar.setAttribute(a, next.getAttribute(a));
        });
      }
      setTimeout(poll, 2000);
    }).catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
"#;

pub(super) async fn progress_script() -> axum::response::Response {
    crate::web::layout::javascript(PROGRESS_SCRIPT)
}
