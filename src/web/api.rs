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
    residences,
};

use super::{AppState, auth::CurrentStaff, error::AppError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons", post(create_person))
        .route("/persons/{id}", get(get_person))
        .route(
            "/persons/{id}/schedule",
            axum::routing::patch(update_schedule),
        )
        .route(
            "/persons/{id}/residences",
            get(list_residences).post(add_residence),
        )
        .route("/persons/{id}/observations", get(person_observations))
        .route("/persons/{id}/checkins", get(person_checkins))
}

fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    r.map(|Json(v)| v)
        .map_err(|e| AppError::BadRequest(format!("request body: {}", e.body_text())))
}

async fn create_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    b: Result<Json<PersonInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Person>), AppError> {
    who.require_health_centre()?;
    let input = body(b)?;
    let p = input.parse()?;
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
    Ok((StatusCode::CREATED, Json(person)))
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

async fn get_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Person>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        persons::get(&s.db, Some(&who.viewer()), id, Some(&ip)).await?,
    ))
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
