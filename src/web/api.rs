//! JSON API, `/api/v1`. Authenticated by the console session cookie (obtained from
//! `POST /api/v1/session`). Errors are JSON: `{"error": {"code", "message", "fields": [{field, reason}]}}`.
use axum::{
    Json, Router,
    extract::{ConnectInfo, Path, State, rejection::JsonRejection},
    http::StatusCode,
    routing::{get, post},
};
use chrono::Duration;
use mimamori_core::store::{
    Actor, checkins,
    observations::{self, Observation},
    persons::{self, Person, PersonInput, ScheduleInput},
    registry, reports, residences,
};

use super::{AppState, auth::CurrentStaff, error::AppError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons", get(search_persons).post(create_person))
        .route("/persons/{id}", get(get_person).patch(update_person))
        .route(
            "/persons/{id}/schedule",
            axum::routing::patch(update_schedule),
        )
        .route(
            "/persons/{id}/residences",
            get(list_residences).post(add_residence),
        )
        .route(
            "/persons/{id}/contacts",
            get(list_contacts).post(add_contact),
        )
        .route("/persons/{id}/tests", get(list_tests).post(add_test))
        .route("/persons/{id}/sections", get(list_sections))
        .route(
            "/persons/{id}/sections/{section}",
            axum::routing::put(put_section),
        )
        .route(
            "/persons/{id}/behaviours",
            get(list_behaviours).post(add_behaviour),
        )
        .route(
            "/persons/{id}/infection",
            get(get_infection).put(put_infection),
        )
        .route("/occurrence-reports", post(file_report))
        .route("/persons/{id}/merge", post(merge_person))
        .route("/merges/{id}/undo", post(undo_merge))
        .route("/persons/{id}/occurrence-reports", get(person_reports))
        .route(
            "/persons/{id}/severities",
            get(list_severities).post(add_severity),
        )
        .route("/persons/{id}/observations", get(person_observations))
        .route("/persons/{id}/checkins", get(person_checkins))
}

fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    r.map(|Json(v)| v)
        .map_err(|e| AppError::BadRequest(format!("request body: {}", e.body_text())))
}

/// Registers a person. When people the caller may see look like the same person (kana
/// name, date of birth, phone), answers 409 `possible_duplicate` with them, so nothing is
/// registered twice by accident; post again with `"not_duplicate": true` to register anyway.
async fn create_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    b: Result<Json<PersonInput>, JsonRejection>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    who.require_health_centre()?;
    let input = body(b)?;
    let p = s.parse_person(&input)?;
    if !input.not_duplicate {
        let dups = persons::possible_duplicates(&s.db, &who.viewer(), &p).await?;
        if !dups.is_empty() {
            return Ok(possible_duplicate(dups));
        }
    }
    let ip = addr.ip().to_string();
    let window = Duration::minutes(s.config.checkin.answer_window_minutes);
    let id = persons::create(
        &s.db,
        Actor::Staff(who.id),
        who.health_centre_id,
        &p,
        window,
        Some(&ip),
    )
    .await?;
    let person = persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?;
    Ok((StatusCode::CREATED, Json(person)).into_response())
}

/// The 409 answer listing people who may be the one being registered.
fn possible_duplicate(dups: Vec<persons::DuplicateCandidate>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        StatusCode::CONFLICT,
        Json(serde_json::json!({"error": {
            "code": "possible_duplicate",
            "message": "this may be a person already registered; check the candidates, then post again with \"person_id\" of the right one, or \"not_duplicate\": true to register anyway",
            "candidates": dups,
        }})),
    )
        .into_response()
}

/// Files an occurrence report [発生届] (health-centre staff, or a medical institution
/// directly). Answers 201 with what happened to the person (created, linked, re-positive),
/// 422 naming every missing mandatory field, or — for health-centre staff — 409 with
/// possible duplicates until `person_id` or `not_duplicate` is given.
async fn file_report(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    b: Result<Json<reports::ReportInput>, JsonRejection>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let input = body(b)?;
    match super::console::reports::submit(&s, &who, &input, &addr.ip().to_string()).await? {
        super::console::reports::Outcome::Filed(filed) => {
            Ok((StatusCode::CREATED, Json(filed)).into_response())
        }
        super::console::reports::Outcome::Duplicates(dups) => Ok(possible_duplicate(dups)),
    }
}

async fn person_reports(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<reports::Report>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        reports::for_person(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Registers a close contact of case `id` in one step: the contact is linked to the case,
/// monitored as a contact, and (with `last_exposure_date`) gets the period of the rules.
async fn add_contact(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<PersonInput>, JsonRejection>,
) -> Result<axum::response::Response, AppError> {
    persons::check(
        &s.db,
        Some(&who.viewer()),
        id,
        mimamori_core::access::FieldGroup::Contacts,
        mimamori_core::access::Action::Write,
    )
    .await?;
    let mut input = body(b)?;
    registry::as_contact_of(&s.db, id, &mut input).await?;
    create_person(State(s), who, ConnectInfo(addr), Ok(Json(input))).await
}

/// The close contacts registered from case `id` (the transmission links from it).
async fn list_contacts(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Person>>, AppError> {
    Ok(Json(persons::contacts_of(&s.db, &who.viewer(), id).await?))
}

/// Changes how and when a person is reached; today's check-ins are re-planned at once.
async fn update_schedule(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<ScheduleInput>, JsonRejection>,
) -> Result<Json<Person>, AppError> {
    let change = body(b)?.parse()?;
    let ip = addr.ip().to_string();
    let window = Duration::minutes(s.config.checkin.answer_window_minutes);
    persons::update_schedule(&s.db, &who.viewer(), id, &change, window, Some(&ip)).await?;
    tracing::info!(person_id = id, staff_id = who.id, "schedule changed");
    Ok(Json(
        persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

async fn list_residences(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<residences::Residence>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        residences::list(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Records a move; answers with the person as it now is (status, current residence).
async fn add_residence(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<residences::ResidenceInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Person>), AppError> {
    let input = body(b)?;
    let ip = addr.ip().to_string();
    super::console::person::add_residence(&s, &who, id, &input, &ip).await?;
    Ok((
        StatusCode::CREATED,
        Json(persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?),
    ))
}

fn today() -> chrono::NaiveDate {
    mimamori_core::db::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

async fn list_tests(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<registry::TestRecord>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::tests(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Adds a test record; answers with the person's test records.
async fn add_test(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<registry::TestInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<registry::TestRecord>>), AppError> {
    let t = body(b)?.parse(today())?;
    let ip = addr.ip().to_string();
    registry::add_test(&s.db, &who.viewer(), id, &t, Some(&ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(registry::tests(&s.db, Some(&who.viewer()), id, Some(&ip)).await?),
    ))
}

async fn list_behaviours(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<registry::Behaviour>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::behaviours(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Adds a behaviour-history entry; answers with the history.
async fn add_behaviour(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<registry::BehaviourInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<registry::Behaviour>>), AppError> {
    let e = body(b)?.parse(today())?;
    let ip = addr.ip().to_string();
    registry::add_behaviour(&s.db, &who.viewer(), id, &e, Some(&ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(registry::behaviours(&s.db, Some(&who.viewer()), id, Some(&ip)).await?),
    ))
}

async fn get_infection(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    persons::check(
        &s.db,
        Some(&who.viewer()),
        id,
        mimamori_core::access::FieldGroup::InfectionLink,
        mimamori_core::access::Action::Read,
    )
    .await?;
    let (link, area, setting, place) = registry::infection(&s.db, id).await?;
    Ok(Json(
        serde_json::json!({"link": link, "area": area, "setting": setting, "place": place}),
    ))
}

/// Records the infection link and route.
async fn put_infection(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<registry::InfectionInput>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    let input = body(b)?;
    registry::set_infection(
        &s.db,
        &who.viewer(),
        id,
        &input,
        Some(&addr.ip().to_string()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The smaller record groups the caller may read (welfare, household, memo, interview,
/// underlying conditions, admission, care contacts, release date).
async fn list_sections(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(id): Path<i64>,
) -> Result<Json<Vec<mimamori_core::store::sections::Stored>>, AppError> {
    Ok(Json(
        mimamori_core::store::sections::get_all(&s.db, Some(&who.viewer()), id).await?,
    ))
}

/// Writes one section whole; unknown fields and bad values are named.
async fn put_section(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path((id, key)): Path<(i64, String)>,
    b: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let section = mimamori_core::store::sections::Section::parse(&key)
        .ok_or(mimamori_core::Error::NotFound("section"))?;
    let doc = body(b)?;
    Ok(Json(
        mimamori_core::store::sections::put(
            &s.db,
            &who.viewer(),
            id,
            section,
            &doc,
            today(),
            Some(&addr.ip().to_string()),
        )
        .await?,
    ))
}

async fn list_severities(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<registry::Severity>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::severities(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Records the severity from a date; answers with the history.
async fn add_severity(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<registry::SeverityInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<registry::Severity>>), AppError> {
    let sv = body(b)?.parse(today())?;
    let ip = addr.ip().to_string();
    registry::add_severity(&s.db, &who.viewer(), id, sv, Some(&ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(registry::severities(&s.db, Some(&who.viewer()), id, Some(&ip)).await?),
    ))
}

#[derive(serde::Deserialize, Default)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    list: String,
    #[serde(default, rename = "type")]
    monitoring_type: String,
    #[serde(default)]
    page: i64,
    #[serde(default)]
    per_page: i64,
}

/// Searches the people the caller may see: `q` (name or kana prefix, phone, id), `list`
/// (a line list), `type` (patient / contact), `page` and `per_page` (≤ 200, default 50).
/// `total` counts up to 1,000 (`more` says there are more).
async fn search_persons(
    State(s): State<AppState>,
    who: CurrentStaff,
    axum::extract::Query(q): axum::extract::Query<SearchQuery>,
) -> Result<Json<serde_json::Value>, AppError> {
    let per_page = if q.per_page <= 0 {
        50
    } else {
        q.per_page.min(200)
    };
    let search = persons::Search {
        q: q.q,
        monitoring_type: q.monitoring_type,
    };
    let (items, total) = persons::search(
        &s.db,
        &who.viewer(),
        persons::List::parse(&q.list),
        today(),
        &search,
        per_page,
        q.page.max(0) * per_page,
    )
    .await?;
    // `total` is exact up to the cap; above it, `more` is true and `total` is the cap.
    Ok(Json(serde_json::json!({
        "total": total.min(persons::COUNT_CAP),
        "more": total > persons::COUNT_CAP,
        "page": q.page.max(0),
        "per_page": per_page,
        "items": items
    })))
}

#[derive(serde::Deserialize)]
struct MergeBody {
    other_id: i64,
    /// field → "other" to take the other record's value ("this" or absent keeps).
    #[serde(default)]
    take: mimamori_core::store::merges::Choices,
}

/// Merges record `other_id` into this one (health-centre staff). Answers 201 with the merge
/// id, which the user-authentication officer can undo.
async fn merge_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<MergeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let m = body(b)?;
    let merge_id = mimamori_core::store::merges::merge(
        &s.db,
        &who.viewer(),
        id,
        m.other_id,
        &m.take,
        Some(&addr.ip().to_string()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"merge_id": merge_id})),
    ))
}

async fn undo_merge(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    mimamori_core::store::merges::undo(&s.db, &who.viewer(), id, Some(&addr.ip().to_string()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes basic information: fields given replace (empty clears), fields left out stay.
async fn update_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Result<Json<persons::BasicInput>, JsonRejection>,
) -> Result<Json<Person>, AppError> {
    let input = body(b)?;
    let ip = addr.ip().to_string();
    persons::update_basic(&s.db, &who.viewer(), id, &input, Some(&ip)).await?;
    Ok(Json(
        persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
}

async fn get_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let ip = addr.ip().to_string();
    let p = persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?;
    // With the derived age band of the national open-data format.
    let mut v = serde_json::to_value(&p).map_err(|e| AppError::Internal(e.into()))?;
    v["age_band"] = serde_json::json!(p.age_band(today()));
    Ok(Json(v))
}

async fn person_observations(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Observation>>, AppError> {
    let ip = addr.ip().to_string();
    let p = persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?;
    Ok(Json(
        observations::list_for_person(&s.db, Some(&who.viewer()), p.id).await?,
    ))
}

async fn person_checkins(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<checkins::Checkin>>, AppError> {
    let ip = addr.ip().to_string();
    let p = persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?;
    Ok(Json(
        checkins::list_for_person(&s.db, Some(&who.viewer()), p.id).await?,
    ))
}
