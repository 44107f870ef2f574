//! The case registry over HTTP: a case registered with its onset date gets the period of the
//! rules; a second registration of the same person is stopped with the candidates (API 409,
//! console panel) until confirmed; tests and severity are recorded; a close contact
//! registered from the case is linked to it and receives today's check-in.
use serde_json::json;

use crate::helpers::{spawn_app, today};

#[tokio::test]
async fn a_case_its_records_a_duplicate_and_a_contact() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let case = json!({
        "name": "山田 花子", "name_kana": "ヤマダ ハナコ", "date_of_birth": "1950-04-01",
        "phone": "090-5000-0001", "onset_date": today(), "checkin_time": "23:59",
        "sex": "female", "prefecture_code": "13", "municipality": "港区"
    });
    let r = app.post_json("/api/v1/persons", &case).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let p: serde_json::Value = r.json().await.unwrap();
    let id = p["id"].as_i64().unwrap();
    assert_eq!(p["period_rule"], "2022-09-07");
    let end = chrono::NaiveDate::parse_from_str(&today(), "%Y-%m-%d").unwrap()
        + chrono::Duration::days(7);
    assert_eq!(p["observation_end"], end.to_string());

    // The same person typed again, in half-width kana with another phone.
    let again = json!({
        "name": "山田花子", "name_kana": "ﾔﾏﾀﾞ ﾊﾅｺ", "date_of_birth": "1950-04-01",
        "phone": "090-5000-0009", "onset_date": today()
    });
    let r = app.post_json("/api/v1/persons", &again).await;
    assert_eq!(r.status(), 409);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "possible_duplicate");
    assert_eq!(e["error"]["candidates"][0]["id"], id);
    assert_eq!(
        e["error"]["candidates"][0]["matched"],
        json!(["name_kana", "date_of_birth"])
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM persons").await,
        1,
        "nothing registered"
    );
    let page = app
        .post_form(
            "/persons",
            &[
                ("csrf", &csrf),
                ("name", "山田花子"),
                ("name_kana", "やまだ はなこ"),
                ("date_of_birth", "1950-04-01"),
                ("phone", "090-5000-0009"),
                ("onset_date", &today()),
            ],
        )
        .await;
    assert_eq!(page.status(), 409);
    let html = page.text().await.unwrap();
    assert!(html.contains("同一人物の可能性") && html.contains(&format!("/persons/{id}\"")));
    assert!(html.contains(r#"name="not_duplicate""#) && html.contains(r#"value="やまだ はなこ""#));
    let mut confirmed = again.clone();
    confirmed["not_duplicate"] = json!(true);
    assert_eq!(
        app.post_json("/api/v1/persons", &confirmed).await.status(),
        201
    );

    // Tests and severity.
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/tests"),
            &json!({"specimen_date": today(), "method": "antigen_quantitative", "result": "positive"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/tests"),
            &json!({"specimen_date": "2026-02-30"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["fields"][0]["field"], "specimen_date");
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/severities"),
            &json!({"level": "moderate1"}),
        )
        .await;
    assert_eq!(r.status(), 201);

    // A close contact from the case, in one step.
    let yesterday = chrono::NaiveDate::parse_from_str(&today(), "%Y-%m-%d").unwrap()
        - chrono::Duration::days(1);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/contacts"),
            &json!({"name": "山田 太郎", "phone": "090-5000-0002", "last_exposure_date": yesterday.to_string(), "checkin_time": "00:00"}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let c: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            c["monitoring_type"].as_str(),
            c["source_person_id"].as_i64()
        ),
        (Some("contact"), Some(id))
    );
    let msg = app.wait_for_message("+819050000002").await;
    assert!(
        msg.body.contains("/c/"),
        "the contact gets today's check-in link"
    );
    let links: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{id}/contacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(links.len(), 1);

    let page = app
        .get(&format!("/persons/{id}?tab=record"))
        .await
        .text()
        .await
        .unwrap();
    for part in [
        "ヤマダ ハナコ",
        "陽性",
        "中等症I",
        "山田 太郎",
        "規則 2022-09-07",
    ] {
        assert!(page.contains(part), "{part}");
    }
    app.finish().await;
}

fn report(extra: serde_json::Value) -> serde_json::Value {
    let mut r = json!({
        "report_type": "patient", "diagnosis_date": today(), "diagnosis_method": "pcr",
        "doctor_name": "医師 一郎", "institution_name": "みなと病院",
        "name": "鈴木 次郎", "name_kana": "スズキ ジロウ", "sex": "male", "date_of_birth": "1960-05-05",
        "municipality": "港区", "phone": "090-6000-0001", "onset_date": today(),
        // Due at once whatever the hour in Japan (the default 09:00 is not due before 09:00).
        "checkin_time": "00:00"
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

/// A medical institution files an occurrence report directly: every missing mandatory field
/// is named (a missing onset date once, not again as the period it would give) and nothing
/// is stored; a complete report creates the person at the health
/// centre (who then gets check-ins) and the institution sees it; filing again for the same
/// person links the report instead of registering twice; after the case has ended, a new
/// positive report opens a re-positive case linked to the earlier one.
#[tokio::test]
async fn occurrence_reports_create_link_and_reopen() {
    use mimamori_core::access::Role;
    let app = spawn_app().await;
    app.login().await;
    let org = mimamori_core::store::staff::create_organisation(
        &app.db,
        "medical_institution",
        "みなと病院",
        app.centre,
    )
    .await
    .unwrap();
    let hospital = app
        .user("hospital", Role::MedicalInstitution, Some(org))
        .await;
    let file = |body: serde_json::Value| {
        hospital
            .post(app.url("/api/v1/occurrence-reports"))
            .json(&body)
            .send()
    };

    let r = file(json!({"report_type": "patient", "name": "鈴木 次郎"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let fields = crate::helpers::invalid_fields(r).await;
    for f in [
        "diagnosis_date",
        "diagnosis_method",
        "doctor_name",
        "institution_name",
        "sex",
        "date_of_birth",
        "municipality",
        "phone",
        "onset_date",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    // The missing onset date is the one thing to give for the period: the start and end it
    // would compute are not asked for as well (the report form has no fields for them).
    for f in ["observation_start", "observation_end"] {
        assert!(!fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 0);

    let r = file(report(json!({}))).await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let filed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(filed["linkage"], "created");
    let id = filed["person_id"].as_i64().unwrap();
    assert_eq!(
        hospital
            .get(app.url(&format!("/api/v1/persons/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the institution sees the patient it reported"
    );
    app.wait_for_message("+819060000001").await;

    // The same patient again (half-width kana): linked, not registered twice.
    let r = file(report(
        json!({"name_kana": "ｽｽﾞｷ ｼﾞﾛｳ", "diagnosis_method": "antigen_quantitative"}),
    ))
    .await
    .unwrap();
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (again["linkage"].as_str(), again["person_id"].as_i64()),
        (Some("linked"), Some(id))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM occurrence_reports").await,
        2
    );

    // Health-centre staff see both reports on the person.
    let reports: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{id}/occurrence-reports"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reports.len(), 2);

    // The case ends; a new positive report opens a re-positive case.
    mimamori_core::with_db!(&app.db, p => sqlx::query("UPDATE persons SET status = 'ended' WHERE id = $1")
        .bind(id).execute(p).await.unwrap().rows_affected());
    let r = file(report(json!({}))).await.unwrap();
    let re: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (re["linkage"].as_str(), re["previous_case_id"].as_i64()),
        (Some("repositive"), Some(id))
    );
    let new_case: serde_json::Value = app
        .get(&format!("/api/v1/persons/{}", re["person_id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(new_case["previous_case_id"], id);
    assert_eq!(new_case["status"], "observing");

    // Health-centre staff filing for someone who looks registered get the candidates first.
    let r = app
        .post_json("/api/v1/occurrence-reports", &report(json!({})))
        .await;
    assert_eq!(r.status(), 409);
    app.finish().await;
}

/// The console form: the mandatory fields are marked and each missing one named; a
/// possible duplicate is offered to link to, and choosing it files the report on that
/// person.
#[tokio::test]
async fn the_console_files_a_report_and_links_a_duplicate() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let page = app.get("/reports/new").await.text().await.unwrap();
    assert!(page.contains("診断年月日 ※") && page.contains(r#"name="doctor_name""#));
    let r = app
        .post_form(
            "/reports/new",
            &[
                ("csrf", &csrf),
                ("report_type", "patient"),
                ("name", "鈴木 次郎"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    for f in ["diagnosis_date", "doctor_name", "sex", "onset_date"] {
        assert!(html.contains(&format!(r#"id="{f}-err""#)), "{f} is named");
    }
    assert!(
        html.contains(r#"value="鈴木 次郎""#),
        "what was typed is kept"
    );
    let today = today();
    let form = |extra: &[(&'static str, &str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("csrf", csrf.clone()),
            ("report_type", "patient".into()),
            ("diagnosis_date", today.clone()),
            ("diagnosis_method", "pcr".into()),
            ("doctor_name", "医師 一郎".into()),
            ("institution_name", "みなと病院".into()),
            ("name", "鈴木 次郎".into()),
            ("name_kana", "スズキ ジロウ".into()),
            ("sex", "male".into()),
            ("date_of_birth", "1960-05-05".into()),
            ("municipality", "港区".into()),
            ("phone", "090-6000-0001".into()),
            ("onset_date", today.clone()),
        ];
        for (k, v) in extra {
            f.push((k, v.to_string()));
        }
        f
    };
    let r = app
        .client
        .post(app.url("/reports/new"))
        .form(&form(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let first = r.headers()["location"].to_str().unwrap().to_string();
    let id: i64 = first.trim_start_matches("/persons/").parse().unwrap();

    let r = app
        .client
        .post(app.url("/reports/new"))
        .form(&form(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"name="person_id" value="{id}""#)),
        "{html}"
    );
    let id_s = id.to_string();
    let r = app
        .client
        .post(app.url("/reports/new"))
        .form(&form(&[("person_id", &id_s)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM occurrence_reports WHERE linkage = 'linked'")
            .await,
        1
    );
    let r = app
        .client
        .post(app.url("/reports/new"))
        .form(&form(&[("not_duplicate", "true")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 2);
    app.finish().await;
}

/// Behaviour history and the infection route: an entry names where the case went; someone
/// met there is registered as a close contact from that entry, last exposed on its date; the
/// route is recorded; a medical institution may not see behaviour history at all.
#[tokio::test]
async fn behaviour_history_contacts_and_route() {
    use mimamori_core::access::Role;
    let app = spawn_app().await;
    let csrf = app.login().await;
    let case = app.register("090-7000-0001", "sms", json!({})).await;
    let day = chrono::NaiveDate::parse_from_str(&today(), "%Y-%m-%d").unwrap()
        - chrono::Duration::days(2);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{case}/behaviours"),
            &json!({"on_date": "2026-02-31", "place": ""}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{case}/behaviours"),
            &json!({"on_date": day.to_string(), "place": "居酒屋みなと", "setting": "restaurant", "people_met": "同僚3人"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let entries: Vec<serde_json::Value> = r.json().await.unwrap();
    let entry = entries[0]["id"].as_i64().unwrap();

    // The console form for a contact met there carries the entry; posting it registers the
    // contact with the entry's date as last exposure.
    let form = app
        .get(&format!("/persons/{case}/contacts?behaviour={entry}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains(&format!(r#"name="behaviour_id" value="{entry}""#)));
    assert!(
        form.contains(&format!(r#"value="{day}""#)),
        "last exposure prefilled"
    );
    let entry_s = entry.to_string();
    let r = app
        .post_form(
            &format!("/persons/{case}/contacts"),
            &[
                ("csrf", &csrf),
                ("name", "同僚 一郎"),
                ("phone", "090-7000-0002"),
                ("behaviour_id", &entry_s),
            ],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let contacts: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{case}/contacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(contacts[0]["last_exposure_date"], day.to_string());
    assert_eq!(
        contacts[0]["observation_end"],
        (day + chrono::Duration::days(5)).to_string()
    );

    let r = app
        .client
        .put(app.url(&format!("/api/v1/persons/{case}/infection")))
        .json(&json!({"link": "presumed", "area": "東京都港区", "setting": "restaurant", "place": "居酒屋みなと"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let route: serde_json::Value = app
        .get(&format!("/api/v1/persons/{case}/infection"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (route["link"].as_str(), route["setting"].as_str()),
        (Some("presumed"), Some("restaurant"))
    );
    // The API's read is audited as the console tab's is.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'person.infection.read'")
            .await,
        1
    );
    let page = app
        .get(&format!("/persons/{case}?tab=investigation"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("居酒屋みなと") && page.contains("感染源・感染経路"));
    let page = app
        .get(&format!("/persons/{case}?tab=record"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("同僚 一郎"),
        "the contact is listed with the case"
    );

    let org = mimamori_core::store::staff::create_organisation(
        &app.db,
        "medical_institution",
        "病院",
        app.centre,
    )
    .await
    .unwrap();
    mimamori_core::store::assignments::assign(
        &app.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        case,
        org,
        None,
    )
    .await
    .unwrap();
    let hospital = app
        .user("hospital2", Role::MedicalInstitution, Some(org))
        .await;
    let r = hospital
        .get(app.url(&format!("/api/v1/persons/{case}/behaviours")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = hospital
        .get(app.url(&format!("/persons/{case}?tab=investigation")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("居酒屋みなと"),
        "behaviour history is not on the page"
    );
    app.finish().await;
}

/// The person page has a tab per group of records; the "more" tab saves the smaller groups
/// from plain forms, and a household member is registered as a close contact from there in
/// one step.
#[tokio::test]
async fn tabs_and_the_smaller_record_groups() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let id = app.register("090-8000-0001", "sms", json!({})).await;
    let obs_tab = app
        .get(&format!("/persons/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(obs_tab.contains("健康観察の推移") && !obs_tab.contains("検査を追加"));
    let rec_tab = app
        .get(&format!("/persons/{id}?tab=record"))
        .await
        .text()
        .await
        .unwrap();
    assert!(rec_tab.contains("検査を追加") && !rec_tab.contains("健康観察の推移"));
    // A test posted with an impossible date: the record tab again with the form open as
    // typed, the problem beside its field, nothing saved.
    let before = app.count("SELECT COUNT(*) FROM person_tests").await;
    let r = app
        .post_form(
            &format!("/persons/{id}/tests"),
            &[
                ("csrf", &csrf),
                ("specimen_date", "2026-02-30"),
                ("result", "negative"),
                ("laboratory", "みなと検査センター"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("保存されていません")
            && html.contains(r#"value="2026-02-30""#)
            && html.contains(r#"value="みなと検査センター""#)
            && html.contains(r#"<option value="negative" selected>"#)
            && html.contains("検査を追加"),
        "{html}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM person_tests").await, before);
    // The same for a behaviour entry, on the investigation tab.
    let r = app
        .post_form(
            &format!("/persons/{id}/behaviours"),
            &[
                ("csrf", &csrf),
                ("on_date", "yesterday"),
                ("place", "駅前の居酒屋"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("保存されていません") && html.contains(r#"value="駅前の居酒屋""#),
        "{html}"
    );
    let r = app
        .post_form(
            &format!("/persons/{id}/infection"),
            &[("csrf", &csrf), ("link", "maybe"), ("area", "港区芝浦")],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("保存されていません") && html.contains(r#"value="港区芝浦""#),
        "{html}"
    );
    // The record tab's forms bring the user back to the record tab, where the entry shows.
    for (path, form) in [
        (
            "tests",
            vec![("specimen_date", today()), ("result", "positive".into())],
        ),
        ("severities", vec![("level", "mild".to_string())]),
    ] {
        let mut f: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        f.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
        let r = app.post_form(&format!("/persons/{id}/{path}"), &f).await;
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(
            r.headers()["location"],
            format!("/persons/{id}?tab=record").as_str(),
            "{path}"
        );
    }

    let r = app
        .post_form(
            &format!("/persons/{id}/sections/household"),
            &[
                ("csrf", &csrf),
                ("lives_with_elderly", "true"),
                ("members", "山田 太郎, 夫, 090-8000-0002\n山田 一子, 母"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(
            &format!("/persons/{id}/sections/underlying_conditions"),
            &[
                ("csrf", &csrf),
                ("diabetes", "true"),
                ("pregnancy_weeks", "99"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422, "out of range weeks are refused");
    // Shown again as typed, the problem beside its field, on the same tab; nothing saved.
    let html = r.text().await.unwrap();
    assert!(
        html.contains("保存されていません")
            && html.contains(r#"id="underlying_conditions-pregnancy_weeks""#)
            && html.contains(r#"value="99""#)
            && html.contains(r#"aria-invalid="true""#),
        "{html}"
    );
    assert!(
        html.contains(
            r#"id="underlying_conditions-diabetes" name="diabetes" value="true" checked"#
        ),
        "the ticked box stays ticked"
    );
    let secs: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{id}/sections"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'person.sections.read' AND ip IS NOT NULL")
            .await,
        2,
        "the details tab and the API read, each audited"
    );
    let household = secs.iter().find(|s| s["section"] == "household").unwrap();
    assert_eq!(household["data"]["lives_with_elderly"], true);
    assert_eq!(household["data"]["members"][1]["relation"], "母");
    let uc = secs
        .iter()
        .find(|s| s["section"] == "underlying_conditions")
        .unwrap();
    assert_eq!(
        uc["data"]["diabetes"], false,
        "the refused form stored nothing"
    );

    let r = app
        .post_form(
            &format!("/persons/{id}/sections/investigation_contacts"),
            &[
                ("csrf", &csrf),
                (
                    "contacts",
                    "同僚 A, 090-8000-0003, はい, はい\n同僚 B, , いいえ, いいえ",
                ),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let secs: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{id}/sections"))
        .await
        .json()
        .await
        .unwrap();
    let inv = &secs
        .iter()
        .find(|s| s["section"] == "investigation_contacts")
        .unwrap()["data"]["contacts"];
    assert_eq!(
        (
            inv[0]["reached"].as_bool(),
            inv[0]["close_contact"].as_bool(),
            inv[1]["close_contact"].as_bool()
        ),
        (Some(true), Some(true), Some(false))
    );
    let details = app
        .get(&format!("/persons/{id}?tab=details"))
        .await
        .text()
        .await
        .unwrap();
    assert!(details.contains("高齢者と同居") && details.contains("濃厚接触者として登録"));
    let form = app
        .get(&format!(
            "/persons/{id}/contacts?name=%E5%B1%B1%E7%94%B0+%E5%A4%AA%E9%83%8E&phone=090-8000-0002"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains(r#"value="山田 太郎""#) && form.contains(r#"value="090-8000-0002""#));

    let r = app
        .client
        .put(app.url(&format!("/api/v1/persons/{id}/sections/release_date")))
        .json(&json!({"communicated_on": today()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .put(app.url(&format!("/api/v1/persons/{id}/sections/nonsense")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.finish().await;
}

/// Over HTTP: the merge page puts both records side by side and marks the differences;
/// merging sends the other record's history to the kept one; the officer sees the merge and
/// undoes it.
#[tokio::test]
async fn merge_in_the_console_and_undo_by_the_officer() {
    use mimamori_core::access::Role;
    let app = spawn_app().await;
    let csrf = app.login().await;
    let keep = app
        .register(
            "090-9100-0001",
            "sms",
            json!({"name_kana": "ヤマダ ハナコ", "date_of_birth": "1950-04-01"}),
        )
        .await;
    let other = app
        .register(
            "090-9100-0002",
            "sms",
            json!({"name_kana": "ﾔﾏﾀﾞ ﾊﾅｺ", "date_of_birth": "1950-04-01", "not_duplicate": true}),
        )
        .await;
    let page = app
        .get(&format!("/persons/{keep}/merge?other={other}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"class="differs""#) && page.contains("+819091000002"));
    let other_s = other.to_string();
    let r = app
        .post_form(
            &format!("/persons/{keep}/merge"),
            &[
                ("csrf", &csrf),
                ("other_id", &other_s),
                ("phone", "other"),
                ("name", "this"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let p: serde_json::Value = app
        .get(&format!("/api/v1/persons/{other}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["merged_into"], keep);
    let kept: serde_json::Value = app
        .get(&format!("/api/v1/persons/{keep}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["phone"], "+819091000002");

    let officer = app.user("officer", Role::AuthOfficer, None).await;
    let merges = officer
        .get(app.url("/merges"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let undo = merges
        .split("action=\"/merges/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let csrf_officer = merges
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = officer
        .post(app.url(&format!("/merges/{undo}/undo")))
        .form(&[("csrf", csrf_officer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let p: serde_json::Value = app
        .get(&format!("/api/v1/persons/{other}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(p["merged_into"].is_null());
    assert_eq!(
        app.get("/merges").await.status(),
        403,
        "staff cannot undo merges"
    );
    app.finish().await;
}

/// Editing basic information: every bad field is named and nothing changes; fields left
/// out of a PATCH stay; a new period end needs a reason; the console form shows the errors
/// beside the fields and keeps what was typed; search follows the new kana.
#[tokio::test]
async fn basic_information_is_edited_with_errors_named() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let id = app.register("090-9200-0001", "sms", json!({})).await;
    let patch = |body: serde_json::Value| {
        app.client
            .patch(app.url(&format!("/api/v1/persons/{id}")))
            .json(&body)
            .send()
    };
    let r = patch(
        json!({"name": " ", "phone": "", "prefecture_code": "99", "observation_end": "2099-01-01"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let fields = crate::helpers::invalid_fields(r).await;
    assert_eq!(
        fields,
        ["name", "phone", "prefecture_code", "period_override_reason"]
    );
    let r = patch(json!({"name_kana": "ニシ タロウ", "address": "港区芝1-1"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (p["name_kana"].as_str(), p["phone"].as_str()),
        (Some("ニシ タロウ"), Some("+819092000001"))
    );
    let found: serde_json::Value = app
        .get("/api/v1/persons?q=%E3%81%AB%E3%81%97")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["items"][0]["id"], id,
        "hiragana にし finds the new kana"
    );

    let r = app
        .post_form(
            &format!("/persons/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "西 太郎"),
                ("email", "not-an-address"),
                ("phone", "090-9200-0001"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"id="email-err""#) && html.contains(r#"value="not-an-address""#));
    let r = app
        .post_form(
            &format!("/persons/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "西 太郎"),
                ("phone", "090-9200-0001"),
                ("observation_end", "2099-12-31"),
                ("period_override_reason", "症状が続いているため延長"),
                ("address", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let p: serde_json::Value = app
        .get(&format!("/api/v1/persons/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            p["name"].as_str(),
            p["observation_end"].as_str(),
            p["address"].as_str()
        ),
        (Some("西 太郎"), Some("2099-12-31"), None),
        "an emptied field is cleared"
    );
    app.finish().await;
}

/// Issue 13, leak 1: a hospital cannot take over a patient of another centre by filing a
/// report with the patient's kana and birth date — not through another centre's id, and not
/// at its own centre either: a match it may not already see is only proposed to the centre,
/// which confirms it; the hospital gets a new record and reads nothing of the other.
#[tokio::test]
async fn a_hospital_report_never_grants_an_existing_person_by_itself() {
    use mimamori_core::access::Role;
    use mimamori_core::store::staff;
    let app = spawn_app().await;
    app.login().await;
    // An Osaka centre with a patient; the hospital belongs to a Tokyo centre.
    let osaka = staff::create_health_centre(&app.db, "大阪保健所", "06-0000-0000", "Asia/Tokyo")
        .await
        .unwrap();
    staff::set_prefecture(&app.db, osaka, "27").await.unwrap();
    staff::set_prefecture(&app.db, app.centre, "13")
        .await
        .unwrap();
    let org = staff::create_organisation(&app.db, "medical_institution", "東京病院", app.centre)
        .await
        .unwrap();
    let hospital = app
        .user("tokyo-hospital", Role::MedicalInstitution, Some(org))
        .await;
    let file = |body: serde_json::Value| {
        hospital
            .post(app.url("/api/v1/occurrence-reports"))
            .json(&body)
            .send()
    };
    // The health centre's own patient, registered by staff.
    let victim = app
        .register(
            "090-6100-0001",
            "sms",
            json!({"name": "鈴木 次郎", "name_kana": "スズキ ジロウ", "date_of_birth": "1960-05-05", "not_duplicate": true}),
        )
        .await;

    // Another prefecture's centre: refused by name, nothing stored.
    let r = file(report(
        json!({"health_centre_id": osaka, "name": "別人 太郎", "phone": "090-6100-0099"}),
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        crate::helpers::invalid_fields(r).await,
        ["health_centre_id"]
    );

    // Its own centre, same kana and birth date, other name and phone: a new record.
    let before = app.count("SELECT COUNT(*) FROM persons").await;
    let r = file(report(
        json!({"name": "別人 太郎", "phone": "090-6100-0099"}),
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let filed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(filed["linkage"], "created");
    assert_ne!(filed["person_id"].as_i64(), Some(victim));
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, before + 1);
    // Same name and phone too: still only proposed to the centre, never linked.
    let r = file(report(json!({"phone": "090-6100-0001"})))
        .await
        .unwrap();
    let filed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(filed["linkage"], "created");
    let new_id = filed["person_id"].as_i64().unwrap();
    assert_ne!(new_id, victim);
    let status = hospital
        .get(app.url(&format!("/api/v1/persons/{victim}")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        status, 404,
        "the hospital reads nothing of the centre's patient"
    );
    // The centre sees the proposal; the hospital does not.
    let reports: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{new_id}/occurrence-reports"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reports[0]["proposed_person_id"].as_i64(), Some(victim));
    let theirs: Vec<serde_json::Value> = hospital
        .get(app.url(&format!("/api/v1/persons/{new_id}/occurrence-reports")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(theirs[0]["proposed_person_id"].is_null());
    app.finish().await;
}
