//! Statistics on a real database (SQLite, or PostgreSQL with `MIMAMORI_TEST_DATABASE_URL`):
//! after a mixed day entered through the product's own paths — reports that create, link and
//! re-open (re-positive) cases, tests, severities, moves into hospital, a death, a merge and
//! its undo, contacts, a counts-only daily report — the figures the job keeps equal a recount
//! from the raw rows, and a rebuild gives the same; each role sees only its area.
use chrono::{Duration, NaiveDate, Utc};
use mimamori_core::{
    Db, Error,
    access::{Role, Viewer},
    periods::Periods,
    registration::{self, Context, Registration},
    stats::{Measure, reporting::Reporting},
    store::{
        Actor, merges,
        persons::{self, PersonInput},
        registry, reports, residences, staff,
        stats::{self, Area},
    },
    testing::TestDb,
    with_db,
};

const WINDOW: Duration = Duration::hours(10);

fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

fn none(_: u64, _: u64) {}

async fn centre(db: &Db, name: &str, pref: &str) -> (i64, Viewer) {
    let c = staff::create_health_centre(db, name, "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap();
    staff::set_prefecture(db, c, pref).await.unwrap();
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

fn report(kana: &str, dob: &str, phone: &str, kind: &str) -> reports::ReportInput {
    reports::ReportInput {
        person: PersonInput {
            name: "統計 太郎".into(),
            name_kana: kana.into(),
            date_of_birth: dob.into(),
            phone: phone.into(),
            channel: "sms".into(),
            sex: "male".into(),
            municipality: "新宿区".into(),
            onset_date: if kind == "asymptomatic" {
                String::new()
            } else {
                (today() - Duration::days(1)).to_string()
            },
            specimen_date: (today() - Duration::days(1)).to_string(),
            not_duplicate: true,
            ..Default::default()
        },
        report_type: kind.into(),
        diagnosis_date: today().to_string(),
        diagnosis_method: "pcr".into(),
        doctor_name: "医師 一郎".into(),
        institution_name: "テスト病院".into(),
        death_date: if kind == "deceased" {
            today().to_string()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

async fn file(
    db: &Db,
    v: &Viewer,
    r: &reports::ReportInput,
    rules: &Reporting,
) -> Result<reports::Filed, Error> {
    let periods = Periods::default();
    let cx = Context {
        periods: &periods,
        today: today(),
        window: WINDOW,
        ip: None,
        reporting: rules,
    };
    match registration::file_report(db, v, r, cx).await? {
        Registration::Done(f) => Ok(f),
        Registration::PossibleDuplicates(d) => panic!("duplicates: {d:?}"),
    }
}

/// Lets the job catch up, then compares the kept figures with a recount.
async fn agree(db: &Db, when: &str) {
    while stats::refresh(db, 7).await.unwrap() > 0 {}
    let want = stats::recount(db, &none).await.unwrap();
    let have = stats::table(db).await.unwrap();
    let mut diff: Vec<String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: recount {v}, kept {:?}", have.get(k)))
        .chain(
            have.iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|(k, v)| format!("{k:?}: kept {v}, recount none")),
        )
        .collect();
    diff.sort();
    assert!(
        diff.is_empty(),
        "{when}: {} differ:\n{}",
        diff.len(),
        diff.join("\n")
    );
    assert!(!want.is_empty());
}

async fn total(db: &Db, area: &Area, m: Measure) -> i64 {
    stats::totals(
        db,
        area,
        m,
        "total",
        today() - Duration::days(30),
        today() + Duration::days(30),
    )
    .await
    .unwrap()
    .iter()
    .map(|x| x.1)
    .sum()
}

#[tokio::test]
async fn the_kept_figures_equal_a_recount_after_a_mixed_day() {
    let t = TestDb::new().await;
    let db = &t.db;
    let rules = Reporting::default();
    let (a, va) = centre(db, "しんじゅく保健所", "13").await;
    let (b, vb) = centre(db, "みなと保健所", "13").await;
    let (c, _) = centre(db, "さっぽろ保健所", "01").await;
    let only_a = Area::Centres(vec![a]);

    // Reports: three new cases at A, one at B; the same person again is linked, not new.
    let p1 = file(
        db,
        &va,
        &report("ﾄｳｹｲ ｲﾁ", "1950-04-01", "090-1000-0001", "patient"),
        &rules,
    )
    .await
    .unwrap();
    let p2 = file(
        db,
        &va,
        &report("ﾄｳｹｲ ﾆ", "1990-04-01", "090-1000-0002", "patient"),
        &rules,
    )
    .await
    .unwrap();
    let p3 = file(
        db,
        &va,
        &report("ﾄｳｹｲ ｻﾝ", "2015-04-01", "090-1000-0003", "asymptomatic"),
        &rules,
    )
    .await
    .unwrap();
    file(
        db,
        &vb,
        &report("ﾄｳｹｲ ﾖﾝ", "1980-04-01", "090-1000-0004", "patient"),
        &rules,
    )
    .await
    .unwrap();
    let mut again = report("ﾄｳｹｲ ｲﾁ", "1950-04-01", "090-1000-0001", "patient");
    again.person_id = Some(p1.person_id);
    assert_eq!(
        file(db, &va, &again, &rules).await.unwrap().linkage,
        "linked"
    );
    agree(db, "after reports").await;
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 3);
    assert_eq!(total(db, &Area::All, Measure::CaseReported).await, 4);
    assert_eq!(
        total(db, &only_a, Measure::CaseOnset).await,
        2,
        "the asymptomatic case has no onset"
    );

    // Tests, a severity, a move into hospital.
    for (p, result) in [
        (p1.person_id, "positive"),
        (p1.person_id, "negative"),
        (p2.person_id, "negative"),
    ] {
        let test = registry::TestInput {
            specimen_date: today().to_string(),
            result: result.into(),
            ..Default::default()
        }
        .parse(today())
        .unwrap();
        registry::add_test(db, &va, p, &test, None).await.unwrap();
    }
    registry::add_severity(db, &va, p1.person_id, ("moderate2", today()), None)
        .await
        .unwrap();
    let hospital = residences::ResidenceInput {
        kind: "hospital".into(),
        place: "テスト病院".into(),
        from_date: today().to_string(),
    }
    .parse(today())
    .unwrap();
    residences::add(db, &va, p1.person_id, &hospital, WINDOW, None)
        .await
        .unwrap();
    agree(db, "after tests and moves").await;
    assert_eq!(
        total(db, &only_a, Measure::Tested).await,
        2,
        "one person tested twice in a day counts once"
    );
    assert_eq!(total(db, &only_a, Measure::Positive).await, 1);
    assert_eq!(total(db, &only_a, Measure::Admitted).await, 1);
    let sev = stats::under_observation(db, &only_a, true, "sev", today(), today())
        .await
        .unwrap();
    assert!(sev.contains(&(today(), "moderate".into(), 1)), "{sev:?}");
    assert!(
        sev.contains(&(today(), "asymptomatic".into(), 1)),
        "{sev:?}"
    );
    let res = stats::under_observation(db, &only_a, true, "res", today(), today())
        .await
        .unwrap();
    assert!(res.contains(&(today(), "hospital".into(), 1)), "{res:?}");

    // A re-positive case: the first case ended, a new report opens a new record.
    with_db!(db, p => sqlx::query("UPDATE persons SET status = 'ended' WHERE id = $1")
        .bind(p2.person_id).execute(p).await.unwrap().rows_affected());
    let mut re = report("ﾄｳｹｲ ﾆ", "1990-04-01", "090-1000-0002", "patient");
    re.person_id = Some(p2.person_id);
    let re = file(db, &va, &re, &rules).await.unwrap();
    assert_eq!(re.linkage, "repositive");
    agree(db, "after a re-positive case").await;
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 4);

    // A death (deceased report on an existing case).
    let mut dead = report("ﾄｳｹｲ ｻﾝ", "2015-04-01", "090-1000-0003", "deceased");
    dead.person_id = Some(p3.person_id);
    file(db, &va, &dead, &rules).await.unwrap();
    agree(db, "after a death").await;
    assert_eq!(total(db, &only_a, Measure::Death).await, 1);

    // A duplicate merged, then the merge undone.
    let dup = persons::create(
        db,
        Actor::System,
        a,
        &PersonInput {
            name: "統計 太郎".into(),
            name_kana: "ﾄｳｹｲ ｲﾁ".into(),
            date_of_birth: "1950-04-01".into(),
            phone: "090-1000-0009".into(),
            channel: "sms".into(),
            onset_date: today().to_string(),
            ..Default::default()
        }
        .parse()
        .unwrap(),
        WINDOW,
        None,
    )
    .await
    .unwrap();
    agree(db, "after a duplicate").await;
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 5);
    let m = merges::merge(db, &va, p1.person_id, dup, &Default::default(), None)
        .await
        .unwrap();
    agree(db, "after a merge").await;
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 4);
    let officer = Viewer {
        staff_id: staff::create_staff(db, a, "officer", "x", "担当")
            .await
            .unwrap(),
        role: Role::AuthOfficer,
        ..va
    };
    merges::undo(db, &officer, m, None).await.unwrap();
    agree(db, "after its undo").await;
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 5);

    // A contact of a case, and a counts-only daily report by age band.
    let contact = PersonInput {
        name: "接触 花子".into(),
        phone: "090-1000-0010".into(),
        channel: "sms".into(),
        monitoring_type: "contact".into(),
        last_exposure_date: today().to_string(),
        ..Default::default()
    };
    persons::create(
        db,
        Actor::System,
        a,
        &contact.parse().unwrap(),
        WINDOW,
        None,
    )
    .await
    .unwrap();
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("20s".to_string(), "3".to_string());
    counts.insert("30s".to_string(), "".to_string());
    counts.insert("u10".to_string(), "2".to_string());
    let input = stats::DailyCountInput {
        day: today().to_string(),
        counts,
        health_centre_id: None,
    };
    assert_eq!(
        stats::put_daily_counts(db, &va, &input, today())
            .await
            .unwrap(),
        5
    );
    agree(db, "after a contact and a daily report").await;
    assert_eq!(total(db, &only_a, Measure::ContactNew).await, 1);
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 10);
    // Entering the day again replaces it.
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("20s".to_string(), "1".to_string());
    let input = stats::DailyCountInput {
        day: today().to_string(),
        counts,
        health_centre_id: None,
    };
    stats::put_daily_counts(db, &va, &input, today())
        .await
        .unwrap();
    agree(db, "after the daily report was corrected").await;
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 6);
    let ages = stats::totals(db, &only_a, Measure::CaseReported, "age", today(), today())
        .await
        .unwrap();
    assert!(ages.contains(&("20s".into(), 1)), "{ages:?}");

    // A bad daily report names its fields and writes nothing.
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("20s".to_string(), "-1".to_string());
    counts.insert("100s".to_string(), "1".to_string());
    let bad = stats::DailyCountInput {
        day: "tomorrow".into(),
        counts,
        health_centre_id: None,
    };
    match stats::put_daily_counts(db, &va, &bad, today()).await {
        Err(Error::Invalid(f)) => {
            let fields: Vec<&str> = f.iter().map(|f| f.field.as_ref()).collect();
            assert_eq!(fields, vec!["day", "counts", "count_20s"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(total(db, &only_a, Measure::CaseReported).await, 6);

    // A rebuild from the raw rows gives the same table.
    let before = stats::table(db).await.unwrap();
    let r = stats::rebuild(db, &none).await.unwrap();
    assert_eq!(r.sources, 8, "seven people and one daily-count row");
    assert_eq!(stats::table(db).await.unwrap(), before);
    agree(db, "after a rebuild").await;
    let _ = (b, c);
    t.drop_db().await;
}

#[tokio::test]
async fn each_role_sees_only_its_area() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (a, va) = centre(db, "しんじゅく保健所", "13").await;
    let (b, _) = centre(db, "みなと保健所", "13").await;
    let (c, _) = centre(db, "さっぽろ保健所", "01").await;
    let org = |kind: &'static str| async move {
        with_db!(db, p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO organisations (kind, name, prefecture, health_centre_id, created_at) VALUES ($1, 'x', '13', $2, $3) RETURNING id")
            .bind(kind).bind(a).bind(Utc::now()).fetch_one(p).await.unwrap())
    };
    let analysis = org("analysis_centre").await;
    let contractor = org("contractor").await;
    let as_role = |role, org: Option<i64>| Viewer {
        staff_id: va.staff_id,
        role,
        health_centre_id: a,
        organisation_id: org,
    };
    assert_eq!(
        stats::area_of(db, &va).await.unwrap(),
        Area::Centres(vec![a])
    );
    assert_eq!(
        stats::area_of(db, &as_role(Role::PrefectureStaff, None))
            .await
            .unwrap(),
        Area::Centres(vec![a, b])
    );
    assert_eq!(
        stats::area_of(db, &as_role(Role::MinistryAdmin, None))
            .await
            .unwrap(),
        Area::All
    );
    let analyst = as_role(Role::Analyst, Some(analysis));
    assert_eq!(
        stats::area_of(db, &analyst).await.unwrap(),
        Area::Centres(vec![])
    );
    for r in [
        Role::Contractor,
        Role::LodgingFacility,
        Role::MedicalInstitution,
        Role::AuthOfficer,
    ] {
        assert!(
            matches!(
                stats::area_of(db, &as_role(r, Some(contractor))).await,
                Err(Error::Forbidden(_))
            ),
            "{r:?}"
        );
    }
    // Centre A grants its figures to the analysis centre; only A's, and only A may.
    assert!(matches!(
        stats::grant(db, &analyst, analysis, true).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        stats::grant(db, &va, contractor, true).await,
        Err(Error::Invalid(_))
    ));
    stats::grant(db, &va, analysis, true).await.unwrap();
    assert_eq!(
        stats::area_of(db, &analyst).await.unwrap(),
        Area::Centres(vec![a])
    );
    assert_eq!(
        stats::grants(db, a).await.unwrap(),
        vec![(analysis, "x".to_string(), true)]
    );
    // A figure of C is not in A's sums.
    let input = |n: &str| {
        let mut counts = std::collections::BTreeMap::new();
        counts.insert("40s".to_string(), n.to_string());
        stats::DailyCountInput {
            day: today().to_string(),
            counts,
            health_centre_id: None,
        }
    };
    let vc = Viewer {
        health_centre_id: c,
        ..va
    };
    stats::put_daily_counts(db, &vc, &input("7"), today())
        .await
        .unwrap();
    stats::put_daily_counts(db, &va, &input("2"), today())
        .await
        .unwrap();
    while stats::refresh(db, 100).await.unwrap() > 0 {}
    let area = stats::area_of(db, &analyst).await.unwrap();
    assert_eq!(total(db, &area, Measure::CaseReported).await, 2);
    assert_eq!(total(db, &Area::All, Measure::CaseReported).await, 9);
    // Publication rules: each bad field named, nothing written; then saved with the check digit.
    match stats::set_publication(db, &va, "99", "13105").await {
        Err(Error::Invalid(f)) => assert_eq!(
            f.iter().map(|f| f.field.as_ref()).collect::<Vec<_>>(),
            vec!["suppress_max"]
        ),
        other => panic!("{other:?}"),
    }
    match stats::set_publication(db, &va, "3", "131040").await {
        Err(Error::Invalid(f)) => assert_eq!(f[0].field, "lg_code"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        stats::set_publication(db, &analyst, "3", "").await,
        Err(Error::Forbidden(_))
    ));
    stats::set_publication(db, &va, "3", "13104").await.unwrap();
    let mine = stats::centres(db, &Area::Centres(vec![a])).await.unwrap();
    assert_eq!(
        (mine[0].suppress_max, mine[0].lg_code.as_str()),
        (3, "131041")
    );
    stats::grant(db, &va, analysis, false).await.unwrap();
    assert_eq!(
        stats::area_of(db, &analyst).await.unwrap(),
        Area::Centres(vec![])
    );
    t.drop_db().await;
}

/// Under the 2022 reform's rules a full report is refused for someone in no notifiable group
/// and accepted, with the group recorded, for the others.
#[tokio::test]
async fn counts_only_rules_refuse_reports_outside_the_notifiable_groups() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (_, va) = centre(db, "しんじゅく保健所", "13").await;
    let reform = Reporting::parse(
        "reporting-2022.toml",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../flows/reporting-2022.toml.example"
        ))
        .unwrap(),
    )
    .unwrap();
    let young = report("ﾜｶﾓﾉ", "1990-04-01", "090-2000-0001", "patient");
    match file(db, &va, &young, &reform).await {
        Err(Error::Invalid(f)) => assert_eq!(f[0].field, "notifiable"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        with_db!(db, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM persons").fetch_one(p).await.unwrap()),
        0
    );
    let mut pregnant = young.clone();
    pregnant.pregnant = true;
    let f = file(db, &va, &pregnant, &reform).await.unwrap();
    let old = file(
        db,
        &va,
        &report("ﾄｼﾖﾘ", "1950-04-01", "090-2000-0002", "patient"),
        &reform,
    )
    .await
    .unwrap();
    let groups: Vec<Option<String>> = with_db!(db, p => sqlx::query_scalar(
        "SELECT notifiable FROM occurrence_reports WHERE id IN ($1, $2) ORDER BY id")
        .bind(f.report_id).bind(old.report_id).fetch_all(p).await.unwrap());
    assert_eq!(
        groups,
        vec![Some("pregnant".into()), Some("aged_65_or_over".into())]
    );
    // Under the shipped rules everyone is reported.
    let f = file(
        db,
        &va,
        &report("ﾌﾂｳ", "1991-04-01", "090-2000-0003", "patient"),
        &Reporting::default(),
    )
    .await
    .unwrap();
    assert_eq!(f.linkage, "created");
    t.drop_db().await;
}
