//! The case registry on a real database (SQLite, or PostgreSQL with
//! `MIMAMORI_TEST_DATABASE_URL`): observation periods from the date-effective rules,
//! kana-tolerant duplicate detection, test records, severity and contacts registered from a
//! case — table-driven where the rules are tables.
use chrono::{Duration, NaiveDate, Utc};
use mimamori_core::access::Access;
use mimamori_core::{
    Db, Error,
    access::{Role, Viewer},
    domain::kana_key,
    periods::{Basis, Periods},
    store::{
        Actor, checkins,
        persons::{self, PersonInput},
        registry, staff,
    },
    testing::TestDb,
    with_db,
};

/// Reads as the product itself (tests look at what was stored).
const SYSTEM: Access<'static> = Access::System(mimamori_core::store::Actor::System);

const WINDOW: Duration = Duration::hours(10);

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

fn shipped_periods() -> Periods {
    Periods::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows")).unwrap()
}

#[test]
fn periods_follow_the_rule_in_force_on_day_0() {
    let p = shipped_periods();
    assert_eq!(
        p,
        Periods::default(),
        "the shipped file is the built-in one"
    );
    use Basis::*;
    let cases = [
        (Contact, "2021-06-01", "2021-06-15", "2020"),
        (Contact, "2022-01-13", "2022-01-27", "2020"),
        (Contact, "2022-01-14", "2022-01-24", "2022-01-14"),
        (Asymptomatic, "2022-01-27", "2022-02-06", "2022-01-14"),
        (Asymptomatic, "2022-01-28", "2022-02-04", "2022-01-28"),
        (Contact, "2022-07-21", "2022-07-28", "2022-01-28"),
        (Contact, "2022-07-22", "2022-07-27", "2022-07-22"),
        (Symptomatic, "2022-09-06", "2022-09-16", "2022-07-22"),
        (Symptomatic, "2022-09-07", "2022-09-14", "2022-09-07"),
        (Symptomatic, "2019-12-01", "2019-12-11", "2020"),
    ];
    for (basis, day0, end, rule) in cases {
        let got = p.compute(basis, d(day0));
        assert_eq!(
            (got.start, got.end, got.rule.as_str()),
            (d(day0), d(end), rule),
            "{basis:?} from {day0}"
        );
    }
    let bad = "[[rules]]\nid = \"a\"\neffective_from = \"2022-01-01\"\nsymptomatic_days = 7\nasymptomatic_days = 7\ncontact_days = 5\n[[rules]]\nid = \"b\"\neffective_from = \"2021-01-01\"\nsymptomatic_days = 7\nasymptomatic_days = 7\ncontact_days = 5\n";
    assert!(
        Periods::parse("p.toml", bad)
            .unwrap_err()
            .contains("rule 'b' must take effect after rule 'a'")
    );
    let typo = "[[rules]]\nid = \"a\"\neffective_from = \"2022-01-01\"\nsymptomatic_dayz = 7\n";
    assert!(
        Periods::parse("p.toml", typo)
            .unwrap_err()
            .starts_with("p.toml:4:")
    );
}

#[test]
fn kana_variants_share_one_key() {
    let same = [
        "ヤマダ ハナコ",
        "やまだ　はなこ",
        "ﾔﾏﾀﾞ ﾊﾅｺ",
        "ヤマダ・ハナコ",
        "ヤマダハナコ",
    ];
    for v in same {
        assert_eq!(kana_key(v), "ヤマダハナコ", "{v}");
    }
    assert_eq!(
        kana_key("キョウコ"),
        kana_key("キヨウコ"),
        "small kana folded"
    );
    assert_eq!(kana_key("スズキ"), kana_key("スヅキ"), "ズ/ヅ");
    assert_eq!(kana_key("Ｓｍｉｔｈ　Ｊｏｈｎ"), "SMITHJOHN");
    assert_ne!(kana_key("ヤマダハナコ"), kana_key("ヤマダハルコ"));
}

async fn centre(db: &Db, name: &str) -> (i64, Viewer) {
    let c = staff::create_health_centre(db, name, "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap();
    let s = staff::create_staff(db, c, &format!("nurse-{c}"), "x", "看護師")
        .await
        .unwrap();
    (
        c,
        Viewer {
            staff_id: s,
            role: Role::HealthCentreStaff,
            health_centre_id: c,
            organisation_id: None,
        },
    )
}

fn case(name_kana: &str, dob: &str, phone: &str) -> PersonInput {
    PersonInput {
        name: "山田 花子".into(),
        name_kana: name_kana.into(),
        date_of_birth: dob.into(),
        phone: phone.into(),
        email: "hanako@example.jp".into(),
        channel: if phone.is_empty() { "email" } else { "sms" }.into(),
        onset_date: today().to_string(),
        ..Default::default()
    }
}

/// 山田花子 (ヤマダ ハナコ, 1950-04-01), registered at centre `c`.
async fn a_case(db: &Db, c: i64) -> i64 {
    persons::create(
        db,
        Actor::System,
        c,
        &case("ヤマダ ハナコ", "1950-04-01", "090-1111-2222")
            .parse()
            .unwrap(),
        WINDOW,
        None,
    )
    .await
    .unwrap()
}

fn invalid_fields(e: Error) -> Vec<String> {
    match e {
        Error::Invalid(f) => f.iter().map(|f| f.field.to_string()).collect(),
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn registration_computes_the_period_and_overrides_need_a_reason() {
    let t = TestDb::new().await;
    let (c, _) = centre(&t.db, "みなと保健所").await;
    let p = shipped_periods();
    let input = case("ヤマダ ハナコ", "1950-04-01", "090-1111-2222");
    let new = input.parse_with(&p, today()).unwrap();
    let expected = p.compute(Basis::Symptomatic, today());
    assert_eq!(
        (new.observation_start, new.observation_end),
        (expected.start, expected.end)
    );
    let id = persons::create(&t.db, Actor::System, c, &new, WINDOW, None)
        .await
        .unwrap();
    let got = persons::get(&t.db, SYSTEM, id, None).await.unwrap();
    assert_eq!(got.period_rule.as_deref(), Some("2022-09-07"));
    assert_eq!(got.reception_date, Some(today()));
    assert_eq!(got.name_kana.as_deref(), Some("ヤマダ ハナコ"));

    let longer = PersonInput {
        observation_end: (expected.end + Duration::days(3)).to_string(),
        ..input.clone()
    };
    assert_eq!(
        invalid_fields(longer.parse_with(&p, today()).unwrap_err()),
        ["period_override_reason"]
    );
    let with_reason = PersonInput {
        period_override_reason: "症状が軽快していない".into(),
        ..longer
    }
    .parse_with(&p, today())
    .unwrap();
    assert_eq!(
        with_reason.observation_end,
        expected.end + Duration::days(3)
    );
    assert_eq!(with_reason.details.period_rule, None);

    let nothing = PersonInput {
        onset_date: String::new(),
        observation_start: today().to_string(),
        ..input.clone()
    };
    assert_eq!(
        invalid_fields(nothing.parse_with(&p, today()).unwrap_err()),
        ["observation_end"]
    );
    let bad = PersonInput {
        sex: "x".into(),
        prefecture_code: "48".into(),
        onset_date: "2026-13-01".into(),
        observation_start: today().to_string(),
        observation_end: today().to_string(),
        ..input
    };
    assert_eq!(
        invalid_fields(bad.parse_with(&p, today()).unwrap_err()),
        ["sex", "prefecture_code", "onset_date"]
    );
    t.drop_db().await;
}

#[tokio::test]
async fn duplicates_are_found_across_kana_and_width_variants() {
    let t = TestDb::new().await;
    let (c, v) = centre(&t.db, "みなと保健所").await;
    let (_, elsewhere) = centre(&t.db, "きた保健所").await;
    let id = a_case(&t.db, c).await;
    let matched = |input: PersonInput, viewer: &Viewer| {
        let db = t.db.clone();
        let viewer = *viewer;
        async move {
            persons::possible_duplicates(&db, &viewer, &input.parse().unwrap())
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.id, d.matched))
                .collect::<Vec<_>>()
        }
    };
    type Expected = Vec<(i64, Vec<&'static str>)>;
    let cases: [(PersonInput, Expected); 5] = [
        (
            case("ﾔﾏﾀﾞ ﾊﾅｺ", "1950-04-01", ""),
            vec![(id, vec!["name_kana", "date_of_birth"])],
        ),
        (
            case("やまだ　はなこ", "", "09011112222"),
            vec![(id, vec!["name_kana", "phone"])],
        ),
        (
            case("スズキ イチロウ", "1950-04-01", "090-1111-2222"),
            vec![(id, vec!["date_of_birth", "phone"])],
        ),
        (case("ヤマダ ハナコ", "1960-01-01", "090-9999-9999"), vec![]),
        (case("スズキ イチロウ", "1950-04-01", ""), vec![]),
    ];
    for (input, want) in cases {
        let label = format!(
            "{} {} {}",
            input.name_kana, input.date_of_birth, input.phone
        );
        assert_eq!(matched(input, &v).await, want, "{label}");
    }
    assert!(
        matched(case("ヤマダ ハナコ", "1950-04-01", ""), &elsewhere)
            .await
            .is_empty(),
        "another centre's people are not shown"
    );
    t.drop_db().await;
}

#[tokio::test]
async fn tests_severity_and_contacts_of_a_case() {
    let t = TestDb::new().await;
    let (c, v) = centre(&t.db, "みなと保健所").await;
    let id = a_case(&t.db, c).await;

    let bad = registry::TestInput {
        specimen_date: (today() + Duration::days(1)).to_string(),
        result: "maybe".into(),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(bad.parse(today()).unwrap_err()),
        ["specimen_date", "result"]
    );
    for (day, result) in [(2, "negative"), (0, "positive")] {
        let test = registry::TestInput {
            specimen_date: (today() - Duration::days(day)).to_string(),
            result: result.into(),
            laboratory: "みなと検査センター".into(),
            ..Default::default()
        }
        .parse(today())
        .unwrap();
        registry::add_test(&t.db, &v, id, &test, None)
            .await
            .unwrap();
    }
    let with_contact = registry::TestInput {
        specimen_date: today().to_string(),
        planned_contact_date: (today() + Duration::days(2)).to_string(),
        result: "pending".into(),
        ..Default::default()
    }
    .parse(today())
    .unwrap();
    registry::add_test(&t.db, &v, id, &with_contact, None)
        .await
        .unwrap();
    let tests = registry::tests(&t.db, Access::Staff(&v), id, None)
        .await
        .unwrap();
    assert_eq!(
        tests[0].planned_contact_date,
        Some(today() + Duration::days(2)),
        "a planned contact date may lie ahead"
    );
    let tests = &tests[1..];
    assert_eq!(
        tests
            .iter()
            .map(|r| (r.result.as_str(), r.method.as_deref()))
            .collect::<Vec<_>>(),
        [("positive", Some("pcr")), ("negative", Some("pcr"))],
        "newest specimen first; PCR by default"
    );
    let p = persons::get(&t.db, SYSTEM, id, None).await.unwrap();
    for (on, band) in [
        ("2026-03-31", "70代"),
        ("2026-04-01", "70代"),
        ("2030-04-01", "80代"),
        ("1960-04-01", "10代"),
        ("1960-03-31", "10歳未満"),
    ] {
        assert_eq!(p.age_band(d(on)), Some(band), "born 1950-04-01, on {on}");
    }

    let sv = |level: &str, from: &str| registry::SeverityInput {
        level: level.into(),
        from_date: from.into(),
    };
    assert_eq!(
        invalid_fields(sv("critical", "").parse(today()).unwrap_err()),
        ["level"]
    );
    registry::add_severity(
        &t.db,
        &v,
        id,
        sv("mild", &(today() - Duration::days(1)).to_string())
            .parse(today())
            .unwrap(),
        None,
    )
    .await
    .unwrap();
    registry::add_severity(
        &t.db,
        &v,
        id,
        sv("moderate2", "").parse(today()).unwrap(),
        None,
    )
    .await
    .unwrap();
    let hist = registry::severities(&t.db, Access::Staff(&v), id, None)
        .await
        .unwrap();
    assert_eq!(
        hist.iter()
            .map(|s| registry::severity_three_level(&s.level))
            .collect::<Vec<_>>(),
        ["moderate", "mild"]
    );

    // A contact registered from the case: linked, counted from the last exposure, planned.
    let contact = PersonInput {
        name: "山田 太郎".into(),
        phone: "090-3333-4444".into(),
        monitoring_type: "contact".into(),
        last_exposure_date: (today() - Duration::days(1)).to_string(),
        source_person_id: Some(id),
        ..Default::default()
    }
    .parse_with(&shipped_periods(), today())
    .unwrap();
    assert_eq!(contact.observation_end, today() + Duration::days(4));
    let cid = persons::create(&t.db, Actor::System, c, &contact, WINDOW, None)
        .await
        .unwrap();
    let links = persons::contacts_of(&t.db, &v, id).await.unwrap();
    assert_eq!(links.iter().map(|p| p.id).collect::<Vec<_>>(), [cid]);
    assert_eq!(
        checkins::list_for_person(&t.db, SYSTEM, cid)
            .await
            .unwrap()
            .len(),
        1,
        "the contact is checked on from today"
    );

    // The source case must be one of the centre's.
    let (other, _) = centre(&t.db, "きた保健所").await;
    assert!(matches!(
        persons::create(&t.db, Actor::System, other, &contact, WINDOW, None).await,
        Err(Error::Invalid(_))
    ));

    // A contractor may not read test records.
    let contractor = Viewer {
        role: Role::Contractor,
        organisation_id: Some(1),
        ..v
    };
    assert!(
        registry::tests(&t.db, Access::Staff(&contractor), id, None)
            .await
            .is_err()
    );
    t.drop_db().await;
}

#[tokio::test]
async fn search_by_name_prefix_kana_phone_or_id() {
    use persons::{List, Search};
    let t = TestDb::new().await;
    let (c, v) = centre(&t.db, "みなと保健所").await;
    let (other, _) = centre(&t.db, "きた保健所").await;
    let mut ids = Vec::new();
    for (centre_id, name, kana, phone, kind) in [
        (c, "山田 花子", "ヤマダ ハナコ", "090-1000-0001", "patient"),
        (c, "山田 太郎", "", "090-1000-0002", "contact"),
        (
            c,
            "山本 一郎",
            "ヤマモト イチロウ",
            "090-1000-0003",
            "patient",
        ),
        (c, "鈴木 次郎", "スズキ ジロウ", "090-1000-0004", "patient"),
        (
            other,
            "山田 三郎",
            "ヤマダ サブロウ",
            "090-1000-0005",
            "patient",
        ),
    ] {
        let input = PersonInput {
            name: name.into(),
            name_kana: kana.into(),
            phone: phone.into(),
            monitoring_type: kind.into(),
            observation_start: today().to_string(),
            observation_end: today().to_string(),
            ..Default::default()
        };
        ids.push(
            persons::create(
                &t.db,
                Actor::System,
                centre_id,
                &input.parse().unwrap(),
                WINDOW,
                None,
            )
            .await
            .unwrap(),
        );
    }
    let find = |q: &str, kind: &str| {
        let db = t.db.clone();
        let s = Search {
            q: q.into(),
            monitoring_type: kind.into(),
        };
        async move {
            let (rows, total) = persons::search(&db, &v, List::All, today(), &s, 50, 0)
                .await
                .unwrap();
            assert_eq!(rows.len() as i64, total);
            let mut names: Vec<String> = rows.into_iter().map(|p| p.name).collect();
            names.sort();
            names
        }
    };
    let id3 = ids[3].to_string();
    let cases: [(&str, &str, &[&str]); 9] = [
        ("ヤマ", "", &["山本 一郎", "山田 花子"]),
        ("やまだ", "", &["山田 花子"]),
        ("ﾔﾏﾓﾄ", "", &["山本 一郎"]),
        ("山田", "", &["山田 太郎", "山田 花子"]),
        ("山田", "contact", &["山田 太郎"]),
        ("090-1000-0004", "", &["鈴木 次郎"]),
        (id3.as_str(), "", &["鈴木 次郎"]),
        ("", "patient", &["山本 一郎", "山田 花子", "鈴木 次郎"]),
        ("サブロウ", "", &[]),
    ];
    for (q, kind, want) in cases {
        assert_eq!(find(q, kind).await, want, "q={q:?} type={kind:?}");
    }
    t.drop_db().await;
}

/// The smaller record groups: a document is checked (unknown fields and bad values named,
/// nothing stored), written whole, read back only by roles that may read its group.
#[tokio::test]
async fn sections_are_checked_written_whole_and_guarded() {
    use mimamori_core::store::sections::{self, Section};
    let t = TestDb::new().await;
    let (c, v) = centre(&t.db, "みなと保健所").await;
    let id = a_case(&t.db, c).await;
    let put = |s: Section, doc: serde_json::Value| {
        let db = t.db.clone();
        async move { sections::put(&db, &v, id, s, &doc, today(), None).await }
    };
    let fields = |r: Result<serde_json::Value, Error>| invalid_fields(r.unwrap_err());
    assert_eq!(
        fields(put(Section::Admission, serde_json::json!({"admitted_on": "2026-01-10", "discharged_on": "2026-01-05", "outcome": "died"})).await),
        ["discharged_on", "died_on"]
    );
    assert_eq!(
        fields(
            put(
                Section::UnderlyingConditions,
                serde_json::json!({"pregnancy_weeks": 60})
            )
            .await
        ),
        ["pregnancy_weeks"]
    );
    assert_eq!(
        fields(put(Section::Welfare, serde_json::json!({"disabilty": true})).await),
        ["document"],
        "a misspelt field is refused, not dropped"
    );
    put(
        Section::Household,
        serde_json::json!({"lives_with_elderly": true, "members": [{"name": "山田 太郎", "relation": "夫"}]}),
    )
    .await
    .unwrap();
    put(Section::Memo, serde_json::json!({"text": "日中は不在"}))
        .await
        .unwrap();
    let all = sections::get_all(&t.db, Access::Staff(&v), id, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 9);
    let household = all
        .iter()
        .find(|s| s.section == Section::Household)
        .unwrap();
    assert_eq!(household.data["members"][0]["name"], "山田 太郎");
    assert_eq!(household.data["lives_with_pregnant"], false);
    assert!(
        all.iter()
            .find(|s| s.section == Section::Admission)
            .unwrap()
            .updated_at
            .is_none()
    );

    // A contractor (assigned) sees none of these groups; a medical institution sees its own.
    let org = staff::create_organisation(&t.db, "medical_institution", "病院", c)
        .await
        .unwrap();
    mimamori_core::store::assignments::assign(
        &t.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        id,
        org,
        None,
    )
    .await
    .unwrap();
    let hospital = Viewer {
        role: Role::MedicalInstitution,
        organisation_id: Some(org),
        ..v
    };
    let seen: Vec<Section> = sections::get_all(&t.db, Access::Staff(&hospital), id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.section)
        .collect();
    assert!(seen.contains(&Section::Interview) && seen.contains(&Section::Admission));
    assert!(!seen.contains(&Section::Household), "{seen:?}");
    assert!(matches!(
        sections::put(
            &t.db,
            &hospital,
            id,
            Section::Memo,
            &serde_json::json!({}),
            today(),
            None
        )
        .await,
        Err(Error::Forbidden(_))
    ));
    t.drop_db().await;
}

/// A duplicate merged field by field: the chosen values and the other record's test,
/// contacts and observation history move to the kept record, the other ends, duplicate
/// detection no longer offers it; the officer's undo puts everything back.
#[tokio::test]
async fn merge_moves_records_and_the_officer_can_undo_it() {
    use mimamori_core::store::{merges, observations};
    let t = TestDb::new().await;
    let (c, v) = centre(&t.db, "みなと保健所").await;
    let keep = a_case(&t.db, c).await;
    let mut dup_input = case("ﾔﾏﾀﾞ ﾊﾅｺ", "1950-04-01", "090-9999-0000");
    dup_input.address = "港区芝1-1".into();
    let other = persons::create(
        &t.db,
        Actor::System,
        c,
        &dup_input.parse().unwrap(),
        WINDOW,
        None,
    )
    .await
    .unwrap();
    let test = registry::TestInput {
        specimen_date: today().to_string(),
        result: "positive".into(),
        ..Default::default()
    }
    .parse(today())
    .unwrap();
    registry::add_test(&t.db, &v, other, &test, None)
        .await
        .unwrap();
    let mut a = observations::Answer::default();
    a.yes_no("cough", true, false);
    observations::record_by_staff(
        &t.db,
        SYSTEM,
        other,
        "staff",
        "staff",
        mimamori_core::db::now(),
        &a,
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    // An urgent escalation and a check-in still open on the duplicate.
    let esc = mimamori_core::store::escalations::open(
        &t.db,
        mimamori_core::store::escalations::Raise {
            person_id: other,
            reason: "spo2_low",
            priority: mimamori_core::rules::Priority::Urgent,
            detail: "SpO2 92",
            actor: mimamori_core::store::Actor::System,
        },
    )
    .await
    .unwrap()
    .escalation_id;
    let open_ck: i64 = with_db!(&t.db, p => sqlx::query_scalar(
        "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts)
         VALUES ($1, $2, 9, $3, $4, 'planned', 0) RETURNING id")
        .bind(other).bind(today()).bind(mimamori_core::db::now())
        .bind(mimamori_core::db::now() + Duration::hours(2))
        .fetch_one(p).await.unwrap());
    let status = |sql: &'static str, id: i64| {
        let db = t.db.clone();
        async move {
            with_db!(&db, p => sqlx::query_scalar::<_, String>(sql).bind(id).fetch_one(p).await.unwrap())
        }
    };
    let officer_id = staff::create_staff(&t.db, c, "officer", "x", "担当")
        .await
        .unwrap();
    let officer = Viewer {
        staff_id: officer_id,
        role: Role::AuthOfficer,
        ..v
    };

    let bad: merges::Choices = [("blood_type".to_string(), "other".to_string())].into();
    assert!(matches!(
        merges::merge(&t.db, &v, keep, other, &bad, None).await,
        Err(Error::Invalid(_))
    ));
    let take: merges::Choices = [
        ("phone".to_string(), "other".to_string()),
        ("address".to_string(), "other".to_string()),
    ]
    .into();
    assert!(matches!(
        merges::merge(&t.db, &officer, keep, other, &take, None).await,
        Err(Error::Forbidden(_))
    ));
    let m = merges::merge(&t.db, &v, keep, other, &take, None)
        .await
        .unwrap();
    let kept = persons::get(&t.db, SYSTEM, keep, None).await.unwrap();
    assert_eq!(
        (
            kept.phone.as_deref(),
            kept.address.as_deref(),
            kept.name_kana.as_deref()
        ),
        (
            Some("+819099990000"),
            Some("港区芝1-1"),
            Some("ヤマダ ハナコ")
        )
    );
    let gone = persons::get(&t.db, SYSTEM, other, None).await.unwrap();
    assert_eq!(
        (gone.status.as_str(), gone.merged_into),
        ("ended", Some(keep))
    );
    assert_eq!(
        status("SELECT status FROM checkins WHERE id = $1", open_ck).await,
        "cancelled"
    );
    assert_eq!(
        status("SELECT status FROM escalations WHERE id = $1", esc).await,
        "resolved"
    );
    assert_eq!(
        registry::tests(&t.db, SYSTEM, keep, None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        observations::list_for_person(&t.db, SYSTEM, keep)
            .await
            .unwrap()
            .len(),
        1
    );
    let again = case("ヤマダ ハナコ", "1950-04-01", "").parse().unwrap();
    assert_eq!(
        persons::possible_duplicates(&t.db, &v, &again)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [keep],
        "the merged-away record is not offered again"
    );

    assert!(matches!(
        merges::undo(&t.db, &v, m, None).await,
        Err(Error::Forbidden(_))
    ));
    merges::undo(&t.db, &officer, m, None).await.unwrap();
    let kept = persons::get(&t.db, SYSTEM, keep, None).await.unwrap();
    assert_eq!(
        (kept.phone.as_deref(), kept.address.as_deref()),
        (Some("+819011112222"), None)
    );
    let back = persons::get(&t.db, SYSTEM, other, None).await.unwrap();
    assert_eq!(
        (back.status.as_str(), back.merged_into),
        ("observing", None)
    );
    // What the merge closed is open again: nobody is dropped by a mistaken merge.
    assert_eq!(
        status("SELECT status FROM checkins WHERE id = $1", open_ck).await,
        "planned"
    );
    assert_eq!(
        status("SELECT status FROM escalations WHERE id = $1", esc).await,
        "open"
    );
    assert_eq!(
        registry::tests(&t.db, SYSTEM, other, None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        registry::tests(&t.db, SYSTEM, keep, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        observations::list_for_person(&t.db, SYSTEM, other)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        merges::undo(&t.db, &officer, m, None).await,
        Err(Error::Invalid(_))
    ));
    t.drop_db().await;
}

/// The demo set (what `mimamori serve` loads into an empty database) loads on this backend,
/// with the registry filled in: tests, severity, behaviour history and contacts linked to
/// their cases.
#[tokio::test]
async fn the_demo_set_loads_with_registry_records() {
    let t = TestDb::new().await;
    mimamori_core::demo::load(&t.db, "demo", "x", 20)
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let db = t.db.clone();
        async move {
            mimamori_core::with_db!(&db, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await.unwrap())
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM persons").await, 20);
    assert_eq!(count("SELECT COUNT(*) FROM person_tests").await, 16);
    assert_eq!(
        count("SELECT COUNT(*) FROM persons WHERE monitoring_type = 'contact' AND source_person_id IS NOT NULL").await,
        4
    );
    assert!(count("SELECT COUNT(*) FROM person_behaviours").await > 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM persons WHERE name_key IS NULL OR name_norm IS NULL").await,
        0
    );
    // The courses come from the population model and the rules ran over them: the review
    // queue holds both fixed-threshold and trend escalations, an urgent one among them,
    // and never everyone.
    let reasons: Vec<(String, i64)> = mimamori_core::with_db!(&t.db, p => sqlx::query_as(
        "SELECT reason, COUNT(*) FROM escalations GROUP BY reason ORDER BY reason").fetch_all(p).await.unwrap());
    eprintln!("demo escalations: {reasons:?}");
    assert!(reasons.iter().any(|(r, _)| r == "spo2_low"), "{reasons:?}");
    assert!(
        reasons.iter().any(|(r, _)| matches!(
            r.as_str(),
            "spo2_baseline"
                | "spo2_falling"
                | "fever_returned"
                | "worse_repeated"
                | "temp_rising"
                | "late_symptoms"
                | "score"
        )),
        "{reasons:?}"
    );
    assert!(count("SELECT COUNT(*) FROM escalations WHERE priority = 'urgent'").await > 0);
    assert!(count("SELECT COUNT(DISTINCT person_id) FROM escalations").await < 20);
    t.drop_db().await;
}
