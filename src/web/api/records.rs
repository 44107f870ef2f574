//! The API routes of a person's records: contacts, schedule, residence, tests, behaviour,
//! infection link, sections, severity, reports, observations and check-ins.
use super::*;

pub(super) async fn person_reports(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<reports::Report>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        reports::for_person(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Registers a close contact of case `id` in one step: the contact is linked to the case,
/// monitored as a contact, and (with `last_exposure_date`) gets the period of the rules.
pub(super) async fn add_contact(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<PersonInput>,
) -> Result<axum::response::Response, AppError> {
    // Refused before the body is read: a caller who may not add contacts to this case
    // learns nothing of how the body would have been judged.
    persons::check(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        mimamori_core::access::FieldGroup::Contacts,
        mimamori_core::access::Action::Write,
    )
    .await?;
    let mut input = body(b)?;
    registry::as_contact_of(&s.db, Access::Staff(&who.viewer()), id, &mut input).await?;
    create_person(State(s), who, ConnectInfo(addr), Body(input)).await
}

/// The close contacts registered from case `id` (the transmission links from it).
pub(super) async fn list_contacts(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Person>>, AppError> {
    Ok(Json(persons::contacts_of(&s.db, &who.viewer(), id).await?))
}

/// Changes how and when a person is reached; today's check-ins are re-planned at once.
pub(super) async fn update_schedule(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<ScheduleInput>,
) -> Result<Json<Person>, AppError> {
    let change = body(b)?.parse()?;
    let ip = addr.ip().to_string();
    let window = Duration::minutes(s.config.checkin.answer_window_minutes);
    persons::update_schedule(&s.db, &who.viewer(), id, &change, window, Some(&ip)).await?;
    tracing::info!(person_id = id, staff_id = who.id, "schedule changed");
    Ok(Json(
        persons::get(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

pub(super) async fn list_residences(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<residences::Residence>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        residences::list(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Records a move; answers with the person as it now is (status, current residence).
pub(super) async fn add_residence(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<residences::ResidenceInput>,
) -> Result<(StatusCode, Json<Person>), AppError> {
    let input = body(b)?;
    let ip = addr.ip().to_string();
    crate::web::console::person::add_residence(&s, &who, id, &input, &ip).await?;
    Ok((
        StatusCode::CREATED,
        Json(persons::get(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?),
    ))
}

pub(super) async fn list_tests(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<registry::TestRecord>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::tests(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Adds a test record; answers with the person's test records.
pub(super) async fn add_test(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<registry::TestInput>,
) -> Result<(StatusCode, Json<Vec<registry::TestRecord>>), AppError> {
    let t = body(b)?.parse(today())?;
    let ip = addr.ip().to_string();
    registry::add_test(&s.db, &who.viewer(), id, &t, Some(&ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(registry::tests(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?),
    ))
}

pub(super) async fn list_behaviours(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<registry::Behaviour>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::behaviours(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Adds a behaviour-history entry; answers with the history.
pub(super) async fn add_behaviour(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<registry::BehaviourInput>,
) -> Result<(StatusCode, Json<Vec<registry::Behaviour>>), AppError> {
    let e = body(b)?.parse(today())?;
    let ip = addr.ip().to_string();
    registry::add_behaviour(&s.db, &who.viewer(), id, &e, Some(&ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(registry::behaviours(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?),
    ))
}

pub(super) async fn get_infection(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<registry::Infection>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::infection(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Records the infection link and route.
pub(super) async fn put_infection(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<registry::InfectionInput>,
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
pub(super) async fn list_sections(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<mimamori_core::store::sections::Stored>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        mimamori_core::store::sections::get_all(&s.db, Access::Staff(&who.viewer()), id, Some(&ip))
            .await?,
    ))
}

/// Writes one section whole; unknown fields and bad values are named.
pub(super) async fn put_section(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path((id, key)): Path<(i64, String)>,
    b: Body<serde_json::Value>,
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

pub(super) async fn list_severities(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<registry::Severity>>, AppError> {
    let ip = addr.ip().to_string();
    Ok(Json(
        registry::severities(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

/// Records the severity from a date; answers with the history.
pub(super) async fn add_severity(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    b: Body<registry::SeverityInput>,
) -> Result<(StatusCode, Json<Vec<registry::Severity>>), AppError> {
    let sv = body(b)?.parse(today())?;
    let ip = addr.ip().to_string();
    registry::add_severity(&s.db, &who.viewer(), id, sv, Some(&ip)).await?;
    Ok((
        StatusCode::CREATED,
        Json(registry::severities(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?),
    ))
}

pub(super) async fn person_observations(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Observation>>, AppError> {
    let ip = addr.ip().to_string();
    let viewer = who.viewer();
    let (p, opened) = persons::open(&s.db, &viewer, id, Some(&ip)).await?;
    Ok(Json(
        observations::list_for_person(&s.db, Access::Opened(&opened), p.id).await?,
    ))
}

pub(super) async fn person_checkins(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<checkins::Checkin>>, AppError> {
    let ip = addr.ip().to_string();
    let viewer = who.viewer();
    let (p, opened) = persons::open(&s.db, &viewer, id, Some(&ip)).await?;
    Ok(Json(
        checkins::list_for_person(&s.db, Access::Opened(&opened), p.id).await?,
    ))
}
