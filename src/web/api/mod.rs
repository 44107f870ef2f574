//! JSON API, `/api/v1`. Authenticated by the console session cookie (obtained from
//! `POST /api/v1/session`). Errors are JSON: `{"error": {"code", "message", "fields": [{field, reason, rule}]}}`.
use axum::{
    Json, Router,
    extract::{ConnectInfo, Path, State},
    http::StatusCode,
};
use chrono::Duration;
use mimamori_core::access::Access;
use mimamori_core::registration::{self, Registration};
use mimamori_core::store::{
    checkins,
    observations::{self, Observation},
    persons::{self, Person, PersonInput, ScheduleInput},
    registry, reports, residences,
};

use super::{AppState, auth::CurrentStaff, error::AppError, japan_today as today};

mod records;

use records::*;

/// The API's routes, written once: this table builds the router and the OpenAPI document
/// served at `/api/openapi.json` (request and response schemas come from the Rust types), so
/// the document cannot drift from what is routed. `()` means no body.
macro_rules! api_routes {
    ($( $method:ident $path:literal => $handler:ident, $summary:literal, $req:ty => $status:literal $resp:ty; )*) => {
        pub fn router() -> Router<AppState> {
            let r = Router::new();
            $( let r = r.route($path, axum::routing::$method($handler)); )*
            r
        }

        /// The OpenAPI 3.0 document of `/api/v1` (schemars' `openapi3` settings write optional
        /// fields as `nullable: true`, an OpenAPI 3.0 keyword: declaring 3.1 made them plain
        /// strings to validators, and every null a conformance failure).
        pub fn openapi() -> serde_json::Value {
            let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
            let mut paths = serde_json::Map::new();
            $(
                {
                    let path = format!("/api/v1{}", $path);
                    let params: Vec<serde_json::Value> = $path
                        .split('/')
                        .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
                        .map(|name| serde_json::json!({
                            "name": name, "in": "path", "required": true,
                            "schema": if name == "section" { serde_json::json!({"type": "string"}) } else { serde_json::json!({"type": "integer", "format": "int64", "minimum": 1}) }
                        }))
                        .collect();
                    let mut op = serde_json::json!({
                        "summary": $summary,
                        "operationId": stringify!($handler),
                        "parameters": params,
                        "responses": {
                            $status: {"description": "success", "content": {"application/json": {"schema": generator.subschema_for::<$resp>()}}},
                            "400": {"$ref": "#/components/responses/Error"},
                            "401": {"$ref": "#/components/responses/Error"},
                            "403": {"$ref": "#/components/responses/Error"},
                            "404": {"$ref": "#/components/responses/Error"},
                            "422": {"$ref": "#/components/responses/Error"}
                        }
                    });
                    if std::any::type_name::<$req>() != "()" {
                        op["responses"]["413"] = serde_json::json!({"$ref": "#/components/responses/Error"});
                        op["responses"]["415"] = serde_json::json!({"$ref": "#/components/responses/Error"});
                    }
                    if std::any::type_name::<$req>() != "()" {
                        op["requestBody"] = serde_json::json!({
                            "required": true,
                            "content": {"application/json": {"schema": generator.subschema_for::<$req>()}}
                        });
                    }
                    if std::any::type_name::<$resp>() == "()" {
                        op["responses"][$status] = serde_json::json!({"description": "success, no body"});
                    }
                    let entry = paths.entry(path).or_insert_with(|| serde_json::json!({}));
                    entry[stringify!($method)] = op;
                }
            )*
            section_paths(&mut paths, &mut generator);
            duplicate_answers(&mut paths, &mut generator);
            // The error body every operation refers to.
            generator.subschema_for::<ApiError>();
            let schemas: serde_json::Map<String, serde_json::Value> = generator
                .take_definitions(true)
                .into_iter()
                .collect();
            let mut doc = serde_json::json!({
                "openapi": "3.0.3",
                "info": {
                    "title": "mimamori API",
                    "version": env!("CARGO_PKG_VERSION"),
                    "description": "Health observation and case registry. Log in first with POST /api/v1/session {username, password} then POST /api/v1/session/mfa {challenge, code}; the session cookie authenticates the rest. Errors: {\"error\": {\"code\", \"message\", \"fields\": [{\"field\", \"reason\", \"rule\"}]}}, reasons in the request's language (Accept-Language), rules the same in every language."
                },
                "paths": paths,
                "components": {
                    "schemas": schemas,
                    "responses": {"Error": {"description": "an error; for 422 every problem field with its reason", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}}
                }
            });
            any_value_schemas(&mut doc);
            doc
        }
    };
}

api_routes! {
    get "/persons" => search_persons, "Search the people the caller may see (name or kana prefix, phone, id; line list; type; page)", () => "200" SearchResult;
    post "/persons" => create_person, "Register a person (409 possible_duplicate with candidates unless not_duplicate)", PersonInput => "201" Person;
    get "/persons/{id}" => get_person, "A person's basic information, with the age band", () => "200" Person;
    patch "/persons/{id}" => update_person, "Change basic information (fields given replace, empty clears)", persons::BasicInput => "200" Person;
    patch "/persons/{id}/schedule" => update_schedule, "Change channel, fallback, language and check-in times; today is re-planned", ScheduleInput => "200" Person;
    get "/persons/{id}/residences" => list_residences, "Residence history", () => "200" Vec<residences::Residence>;
    post "/persons/{id}/residences" => add_residence, "Record a move (a hospital stay stops check-ins)", residences::ResidenceInput => "201" Person;
    get "/persons/{id}/contacts" => list_contacts, "Close contacts registered from this case", () => "200" Vec<Person>;
    post "/persons/{id}/contacts" => add_contact, "Register a close contact of this case", PersonInput => "201" Person;
    get "/persons/{id}/tests" => list_tests, "Test records", () => "200" Vec<registry::TestRecord>;
    post "/persons/{id}/tests" => add_test, "Add a test record", registry::TestInput => "201" Vec<registry::TestRecord>;
    get "/persons/{id}/severities" => list_severities, "Severity history", () => "200" Vec<registry::Severity>;
    post "/persons/{id}/severities" => add_severity, "Record the severity from a date", registry::SeverityInput => "201" Vec<registry::Severity>;
    get "/persons/{id}/behaviours" => list_behaviours, "Behaviour history", () => "200" Vec<registry::Behaviour>;
    post "/persons/{id}/behaviours" => add_behaviour, "Add a behaviour-history entry", registry::BehaviourInput => "201" Vec<registry::Behaviour>;
    get "/persons/{id}/infection" => get_infection, "Infection link and route (each null until recorded)", () => "200" registry::Infection;
    put "/persons/{id}/infection" => put_infection, "Record the infection link and route", registry::InfectionInput => "204" ();
    get "/persons/{id}/sections" => list_sections, "The smaller record groups the caller may read", () => "200" Vec<mimamori_core::store::sections::Stored>;
    put "/persons/{id}/sections/{section}" => put_section, "Write one record group whole (welfare, household, memo, interview, underlying_conditions, admission, care_contacts, release_date, investigation_contacts)", serde_json::Value => "200" serde_json::Value;
    post "/occurrence-reports" => file_report, "File an occurrence report: creates, links or re-opens the person", reports::ReportInput => "201" reports::Filed;
    get "/persons/{id}/occurrence-reports" => person_reports, "A person's occurrence reports", () => "200" Vec<reports::Report>;
    post "/persons/{id}/merge" => merge_person, "Merge another record of the same person into this one", MergeBody => "201" MergeResult;
    post "/merges/{id}/undo" => undo_merge, "Undo a merge (user-authentication officer)", () => "204" ();
    get "/persons/{id}/observations" => person_observations, "Health observations", () => "200" Vec<Observation>;
    get "/persons/{id}/checkins" => person_checkins, "Check-ins and their outcomes", () => "200" Vec<checkins::Checkin>;
}

/// The error body of every failed request.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct ApiError {
    error: ApiErrorBody,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct ApiErrorBody {
    /// invalid, not_found, forbidden, unauthorized, conflict, possible_duplicate, …
    code: String,
    message: String,
    fields: Vec<ApiFieldError>,
}

/// One refused field.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct ApiFieldError {
    field: String,
    /// Why, and how to put it right, in the request's language.
    reason: String,
    /// The rule broken, the same in every language (`the-date-is-in-the-future-check-it`):
    /// match on this rather than on `reason`. Absent for a few reasons of their own.
    rule: Option<String>,
}

/// A page of search results.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct SearchResult {
    /// Exact up to 1,000; with `more` there are more.
    total: i64,
    more: bool,
    page: i64,
    per_page: i64,
    items: Vec<Person>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct MergeResult {
    merge_id: i64,
}

/// The operations that register someone answer 409 `possible_duplicate` with the people
/// who may be the same one (until `not_duplicate` or `person_id` is given).
fn duplicate_answers(
    paths: &mut serde_json::Map<String, serde_json::Value>,
    g: &mut schemars::SchemaGenerator,
) {
    let schema = serde_json::to_value(g.subschema_for::<PossibleDuplicate>()).unwrap_or_default();
    for op in paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|e| e.values_mut())
    {
        if matches!(
            op["operationId"].as_str(),
            Some("create_person" | "add_contact" | "file_report")
        ) {
            op["responses"]["409"] = serde_json::json!({
                "description": "possible_duplicate: people who may be this one",
                "content": {"application/json": {"schema": schema.clone()}}
            });
        }
    }
}

/// The 409 answer of a registration that may be a person already registered.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct PossibleDuplicate {
    error: PossibleDuplicateBody,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct PossibleDuplicateBody {
    /// `possible_duplicate`.
    code: String,
    message: String,
    candidates: Vec<persons::DuplicateCandidate>,
}

/// `PUT /persons/{id}/sections/{section}` takes a different document for each section, so
/// the document lists each section as a path of its own (`put_section_welfare`, …) with that
/// section's schema for the request and the answer; the route stays one.
fn section_paths(
    paths: &mut serde_json::Map<String, serde_json::Value>,
    g: &mut schemars::SchemaGenerator,
) {
    use mimamori_core::store::sections::Section;
    let Some(mut op) = paths
        .remove("/api/v1/persons/{id}/sections/{section}")
        .and_then(|mut entry| entry.get_mut("put").map(serde_json::Value::take))
    else {
        return;
    };
    if let Some(params) = op["parameters"].as_array_mut() {
        params.retain(|p| p["name"] != "section");
    }
    for s in Section::ALL {
        let key = s.key();
        let schema = serde_json::to_value(s.schema(g)).unwrap_or_default();
        let mut one = op.clone();
        one["operationId"] = format!("put_section_{key}").into();
        one["summary"] = format!("Write the {key} record group whole").into();
        one["requestBody"]["content"]["application/json"]["schema"] = schema.clone();
        one["responses"]["200"]["content"]["application/json"]["schema"] = schema;
        paths.insert(
            format!("/api/v1/persons/{{id}}/sections/{key}"),
            serde_json::json!({ "put": one }),
        );
    }
}

/// OpenAPI 3.0 has no boolean schemas: "any value" (`true`, schemars' schema for
/// `serde_json::Value`) is written `{}` wherever a schema stands.
fn any_value_schemas(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if child == &serde_json::Value::Bool(true)
                    && matches!(k.as_str(), "schema" | "items")
                {
                    *child = serde_json::json!({});
                } else if k == "properties"
                    && let Some(props) = child.as_object_mut()
                {
                    for p in props.values_mut() {
                        if p == &serde_json::Value::Bool(true) {
                            *p = serde_json::json!({});
                        } else {
                            any_value_schemas(p);
                        }
                    }
                } else {
                    any_value_schemas(child);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(any_value_schemas),
        _ => {}
    }
}

/// Every error of `/api/v1` in the JSON body the document promises: the framework's own
/// refusals (a path id that is not a number, a query string or body that does not parse, a
/// body too large, a wrong content type) come as plain text and are rewritten here, keeping
/// their status and headers (`Allow`, `Retry-After`).
pub async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    use axum::response::IntoResponse;
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 | 503 => "busy",
        s if s >= 500 => "internal",
        _ => "client_error",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message, "fields": []}})),
    )
        .into_response();
    for (k, v) in parts.headers.iter() {
        if k != CONTENT_TYPE && k != CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// `GET /api/openapi.json`.
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi())
}

/// A JSON request body that must be an object (`{…}`): serde would otherwise read a struct
/// from an array by position, so `[null, null]` was an accepted, empty change.
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        let v = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(e) => {
                let status = match e.status() {
                    s if s.is_client_error() => s,
                    _ => axum::http::StatusCode::BAD_REQUEST,
                };
                return Err(AppError::Rejected(
                    status,
                    format!("request body: {}", e.body_text()),
                ));
            }
        };
        if !v.is_object() {
            return Err(AppError::Rejected(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "request body: send a JSON object ({\"field\": value, …})".into(),
            ));
        }
        serde_json::from_value(v).map(Body).map_err(|e| {
            AppError::Rejected(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                format!("request body: {e}"),
            )
        })
    }
}

fn body<T>(b: Body<T>) -> Result<T, AppError> {
    Ok(b.0)
}

/// Registers a person. When people the caller may see look like the same person (kana
/// name, date of birth, phone), answers 409 `possible_duplicate` with them, so nothing is
/// registered twice by accident; post again with `"not_duplicate": true` to register anyway.
async fn create_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    b: Body<PersonInput>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let input = body(b)?;
    let ip = addr.ip().to_string();
    let id = match registration::register(&s.db, &who.viewer(), &input, s.registration(Some(&ip)))
        .await?
    {
        Registration::Done(id) => id,
        Registration::PossibleDuplicates(dups) => return Ok(possible_duplicate(dups)),
    };
    let person = persons::get(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?;
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
    b: Body<reports::ReportInput>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let input = body(b)?;
    let ip = addr.ip().to_string();
    match registration::file_report(&s.db, &who.viewer(), &input, s.registration(Some(&ip))).await?
    {
        Registration::Done(filed) => Ok((StatusCode::CREATED, Json(filed)).into_response()),
        Registration::PossibleDuplicates(dups) => Ok(possible_duplicate(dups)),
    }
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

#[derive(serde::Deserialize, schemars::JsonSchema)]
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
    b: Body<MergeBody>,
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
    b: Body<persons::BasicInput>,
) -> Result<Json<Person>, AppError> {
    let input = body(b)?;
    let ip = addr.ip().to_string();
    persons::update_basic(&s.db, &who.viewer(), id, &input, Some(&ip)).await?;
    Ok(Json(
        persons::get(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?,
    ))
}

async fn get_person(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let ip = addr.ip().to_string();
    let p = persons::get(&s.db, Access::Staff(&who.viewer()), id, Some(&ip)).await?;
    // With the derived age band of the national open-data format.
    let mut v = serde_json::to_value(&p).map_err(|e| AppError::Internal(e.into()))?;
    v["age_band"] = serde_json::json!(p.age_band(today()));
    Ok(Json(v))
}
