//! The link form's screens: one per group of questions, "none of these" boxes, the error
//! summary, whose check-in it is and the centre's number on every screen.
use std::collections::BTreeMap;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::{Markup, html};
use mimamori_core::{
    FieldError,
    domain::Lang,
    flows::{Flow, QuestionKind},
    store::checkins::LinkContext,
};

use super::lang_of;
use crate::web::{i18n::tr, layout};

pub(super) const GROUPS: [(&str, &str); 3] = [
    ("vitals", "temperature-and-spo2"),
    ("symptoms", "symptoms"),
    ("urgent", "urgent-warning-signs-any-yes-phone-the"),
];

/// The screens of a flow: one per group of questions that it has, in a fixed order.
pub(super) fn screens(flow: &Flow) -> Vec<(&'static str, &'static str)> {
    GROUPS
        .iter()
        .copied()
        .filter(|(g, _)| flow.questions.iter().any(|q| q.group == *g))
        .collect()
}

/// The form field of a group's "none of these" box.
pub(super) fn none_key(group: &str) -> String {
    format!("none:{group}")
}

/// Groups with more than one yes/no question offer "none of these": every yes/no question
/// of the group is then stored as an explicit "no".
pub(super) fn offers_none(flow: &Flow, group: &str) -> bool {
    flow.questions
        .iter()
        .filter(|q| q.group == group && q.kind == QuestionKind::YesNo)
        .count()
        > 1
}

/// The words of the "none of these" box: for the urgent signs they say plainly that each
/// sign above was read and none applies (the box comes after the signs, not before).
pub(super) fn none_text(group: &str, lang: Lang) -> &'static str {
    if group == "urgent" {
        tr(lang, "i-have-none-of-the-signs-above-each-is")
    } else {
        tr(lang, "i-have-none-of-these-symptoms-today-each")
    }
}

/// Applies the "none of these" boxes: unanswered yes/no questions of such a group become
/// "no"; a "yes" next to a ticked box is a contradiction the person is asked to resolve.
pub(super) fn apply_none(flow: &Flow, lang: Lang, values: &mut Answers) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (group, _) in screens(flow) {
        let key = none_key(group);
        if values.get(&key).map(String::as_str) != Some("yes") {
            continue;
        }
        let yes_no = flow
            .questions
            .iter()
            .filter(|q| q.group == group && q.kind == QuestionKind::YesNo);
        if yes_no
            .clone()
            .any(|q| values.get(q.id.get_ref().as_str()).map(String::as_str) == Some("yes"))
        {
            errors.push(FieldError::new(
                key,
                tr(lang, "you-ticked-none-but-also-answered-yes-to").to_string(),
                Vec::new(),
            ));
            continue;
        }
        for q in yes_no {
            values.insert(q.id.get_ref().to_string(), "no".into());
        }
    }
    errors
}

/// What the person types, kept between screens: only the flow's own fields.
pub(super) type Answers = BTreeMap<String, String>;

pub(super) fn known_field(flow: &Flow, key: &str) -> bool {
    flow.questions.iter().any(|q| q.id.get_ref() == key)
        || screens(flow).iter().any(|(g, _)| none_key(g) == key)
}

/// The label an error summary links to for `field`.
pub(super) fn field_label<'a>(flow: &'a Flow, lang: Lang, field: &str) -> &'a str {
    match flow.questions.iter().find(|q| q.id.get_ref() == field) {
        Some(q) => flow.text(q, lang),
        None => tr(lang, "none-of-these"),
    }
}

/// Whose check-in and which day, as the page's first line: a family sharing one phone gets
/// one link each.
pub(super) fn whose(ctx: &LinkContext, lang: Lang) -> String {
    let who = mimamori_core::domain::short_name(&ctx.person_name);
    match lang {
        Lang::Ja => format!(
            "{who}さんの {} の健康観察",
            ctx.local_date.format("%-m月%-d日")
        ),
        Lang::En => format!(
            "{who}'s health check for {}",
            ctx.local_date.format("%-d %B")
        ),
    }
}

/// The centre's number, on every screen: what to do if things get worse now.
pub(super) fn call_footer(ctx: &LinkContext, lang: Lang) -> Markup {
    html! {
        aside class="call" aria-label=(tr(lang, "who-to-call")) {
            p {
                (tr(lang, "suddenly-worse-do-not-wait-call"))
                (ctx.health_centre_name) " "
                a href=(format!("tel:{}", ctx.health_centre_phone)) { (ctx.health_centre_phone) }
            }
            p { (tr(lang, "if-it-is-life-threatening-call-119")) }
        }
    }
}

/// One screen of the form. Each screen posts to the link and is redirected to the next
/// (Post/Redirect/Get); what was typed on other screens waits in the draft.
pub(super) fn form_page(
    flow: &Flow,
    ctx: &LinkContext,
    token: &str,
    values: &Answers,
    errors: &[FieldError],
    screen: usize,
) -> Markup {
    let lang = lang_of(ctx);
    let all = screens(flow);
    let screen = screen.min(all.len().saturating_sub(1));
    let (group, key) = all[screen];
    let err = |id: &str| {
        errors
            .iter()
            .find(|e| e.field == id)
            .map(|e| e.message(lang))
    };
    let described = |id: &str, hint: Option<String>| {
        let mut ids: Vec<String> = hint.into_iter().collect();
        if err(id).is_some() {
            ids.push(format!("{id}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    let last = screen + 1 == all.len();
    let none = offers_none(flow, group).then(|| none_key(group));
    let none_box = |key: &str| {
        html! {
            div class="none" {
                label {
                    input type="checkbox" id=(key) name=(key) value="yes"
                        checked[values.get(key).map(String::as_str) == Some("yes")]
                        aria-describedby=[described(key, None)];
                    (none_text(group, lang))
                }
                @if let Some(e) = err(key) {
                    p class="err" id=(format!("{key}-error")) {
                        span class="visually-hidden" { (tr(lang, "error--patient-form")) } (e)
                    }
                }
            }
        }
    };
    html! {
        main class="narrow" {
            @if !errors.is_empty() {
                div class="error-summary" id="error-summary" role="alert" tabindex="-1" autofocus
                    aria-labelledby="error-summary-title" {
                    h2 id="error-summary-title" { (tr(lang, "there-is-a-problem")) }
                    ul {
                        @for e in errors {
                            li { a href=(format!("#{}", e.field)) {
                                (field_label(flow, lang, &e.field)) "：" (e.message(lang))
                            } }
                        }
                    }
                }
            }
            h1 { (flow.title(lang)) }
            p class="whose" { strong { (whose(ctx, lang)) } }
            p class="muted" { (format!("{} / {}", screen + 1, all.len())) }
            form method="post" action=(format!("/c/{token}")) novalidate {
                input type="hidden" name="screen" value=(screen);
                fieldset {
                    legend { (tr(lang, key)) }
                    @if let Some(key) = none.as_deref().filter(|_| group != "urgent") {
                        (none_box(key))
                    }
                    @for (i, q) in flow.questions.iter().enumerate().filter(|(_, q)| q.group == group) {
                        @let id = q.id.get_ref().as_str();
                        // Questions the call asks together get their group's heading here.
                        @if let Some(g) = q.voice_group.as_deref().filter(|g| {
                            i == 0 || flow.questions[i - 1].voice_group.as_deref() != Some(*g)
                        }) {
                            h2 class="subhead" { (flow.group_text(g, lang)) }
                        }
                        @let v = values.get(id).map(String::as_str).unwrap_or("");
                        @match q.kind {
                            QuestionKind::Temperature | QuestionKind::Spo2 => {
                                label for=(id) { (flow.text(q, lang)) }
                                // A hint beside the box, not a placeholder that looks like a
                                // value already filled in.
                                p class="muted" id=(format!("{id}-hint")) style="margin:.2rem 0" {
                                    @if q.kind == QuestionKind::Temperature {
                                        (tr(lang, "e-g-36-5"))
                                    } @else {
                                        (tr(lang, "e-g-97-the-pulse-oximeter-s-number-leave"))
                                    }
                                }
                                input id=(id) name=(id) type="text" inputmode="decimal" value=(v)
                                    autocomplete="off" aria-invalid=[err(id).map(|_| "true")]
                                    aria-describedby=[described(id, Some(format!("{id}-hint")))];
                            }
                            QuestionKind::YesNo => {
                                p class="q" id=(format!("{id}-q")) { (flow.text(q, lang)) }
                                div class="yn" role="radiogroup" aria-labelledby=(format!("{id}-q"))
                                    aria-describedby=[described(id, None)] {
                                    label { input type="radio" id=(id) name=(id) value="yes" checked[v == "yes"]; (tr(lang, "yes--patient-form")) }
                                    label { input type="radio" name=(id) value="no" checked[v == "no"]; (tr(lang, "no--patient-form")) }
                                }
                            }
                            QuestionKind::Choice => {
                                p class="q" id=(format!("{id}-q")) { (flow.text(q, lang)) }
                                div class="choices" role="radiogroup" aria-labelledby=(format!("{id}-q"))
                                    aria-describedby=[described(id, None)] {
                                    @for (n, c) in q.choices.iter().enumerate() {
                                        label { input type="radio" id=[(n == 0).then_some(id)] name=(id) value=(c.id) checked[v == c.id]; (flow.choice_text(c, lang)) }
                                    }
                                }
                            }
                        }
                        @if let Some(e) = err(id) {
                            p class="err" id=(format!("{id}-error")) {
                                span class="visually-hidden" { (tr(lang, "error--patient-form")) } (e)
                            }
                        }
                    }
                    @if let Some(key) = none.as_deref().filter(|_| group == "urgent") {
                        (none_box(key))
                    }
                }
                // The primary button comes first, so Enter in a field goes forward.
                div class="actions" {
                    button type="submit" name="nav" value="next" {
                        (if last { tr(lang, "send") } else { tr(lang, "next") })
                    }
                    @if screen > 0 {
                        button type="submit" name="nav" value="back" class="secondary" { (tr(lang, "back")) }
                    }
                }
            }
            (call_footer(ctx, lang))
        }
    }
}

/// The form page, its title prefixed "エラー:" / "Error:" when it shows problems.
pub(super) fn form_response(
    flow: &Flow,
    ctx: &LinkContext,
    token: &str,
    values: &Answers,
    errors: &[FieldError],
    screen: usize,
) -> Response {
    let lang = lang_of(ctx);
    let title = if errors.is_empty() {
        flow.title(lang).to_string()
    } else {
        format!("{}{}", tr(lang, "error"), flow.title(lang))
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        layout::bare_lang(
            lang,
            &title,
            form_page(flow, ctx, token, values, errors, screen),
        ),
    )
        .into_response()
}
