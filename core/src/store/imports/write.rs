//! Writing an import: chunks of rows, each in one transaction (people, slots, reports,
//! outcome rows and audit rows together), so an interruption loses at most the chunks in
//! flight and a re-run continues after the last committed one. On PostgreSQL two chunks are
//! written at once, each on its own connection: the server works on one while the next is
//! read and sent (one chunk alone left half the machine idle). A chunk that follows people
//! created by another waits until that one has committed.
use std::collections::HashMap;

use super::{
    OutcomeRow,
    matching::{CHUNK, Context, read_row},
    outcome_word,
    stage::Stage,
};
use crate::{
    Db, Error, Result,
    db::{BeginWrite, now},
    domain::kana_key,
    store::{Actor, reports::NewReport},
    with_db,
};

/// Rows per statement: each statement's message stays within one loopback TCP segment
/// (~64 KB). sqlx does not set TCP_NODELAY, so the tail of a message spanning several
/// segments waits for the server's delayed acknowledgement (~40 ms a statement): five
/// 500-row statements per chunk made the writes 97 % of an import, the machine idle.
pub(super) const ROWS_PER_STATEMENT: usize = 50;
/// Chunks written at once on PostgreSQL (SQLite has one writer).
const PG_WRITERS: usize = 2;

/// A decided row, read again and ready to write.
pub(super) struct Ready {
    /// Its place in the decision's order.
    dorder: i64,
    line: u32,
    outcome: &'static str,
    /// The row of this file it follows or duplicates.
    of_line: Option<u32>,
    report: NewReport,
    case: String,
}

/// Writes every decided row of `stage`, in the decision's order, a chunk a transaction;
/// records in the stage the person each row was written to. `columns`: the stage's columns
/// of a row (`matching::staged_columns`).
pub(super) async fn write_all(
    cx: &Context<'_>,
    stage: &mut Stage,
    columns: &[(&'static str, usize)],
    batch_id: i64,
    actor: Actor,
    total: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    let writers = if matches!(cx.db, Db::Postgres(_)) {
        PG_WRITERS
    } else {
        1
    };
    let chunks = total.div_ceil(CHUNK);
    let mut committed = vec![false; chunks];
    let mut done = 0;
    // Tasks end with the import: a run stopped (its future dropped) aborts them, and a chunk
    // not yet committed rolls back.
    let mut in_flight = tokio::task::JoinSet::new();
    for j in 0..chunks {
        let from = (j * CHUNK) as i64;
        let rows = stage.chunk_to_write(from, from + CHUNK as i64).await?;
        // The rows of earlier chunks this one follows (re-positive) or duplicates.
        let mut outside: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.of_dorder)
            .filter(|d| *d < from)
            .collect();
        outside.sort_unstable();
        outside.dedup();
        while in_flight.len() >= writers || outside.iter().any(|d| !committed[*d as usize / CHUNK])
        {
            let Some(r) = in_flight.join_next().await else {
                return Err(Error::Internal(
                    "import: a chunk follows one that was never written".into(),
                ));
            };
            let (c, written): (usize, Vec<(i64, i64)>) = joined(r)?;
            committed[c] = true;
            done += written.len();
            stage.written(&written).await?;
            progress(done, total);
        }
        let people: HashMap<i64, i64> = stage
            .written_at(&outside)
            .await?
            .into_iter()
            .filter_map(|(d, p)| p.map(|p| (d, p)))
            .collect();
        let mut ready = Vec::with_capacity(rows.len());
        let mut earlier = Vec::with_capacity(rows.len());
        for r in rows {
            let cells: Vec<String> = serde_json::from_str(&r.cells)
                .map_err(|e| Error::Internal(format!("import: line {}: {e}", r.line)))?;
            let (report, _) = read_row(
                cx.mapping,
                columns,
                r.line as usize,
                cells.as_slice(),
                cx.periods,
                cx.today,
            )?
            .map_err(|_| Error::Internal(format!("import: line {} no longer reads", r.line)))?;
            earlier.push(
                r.person
                    .or_else(|| r.of_dorder.and_then(|d| people.get(&d).copied())),
            );
            ready.push(Ready {
                dorder: r.dorder,
                line: r.line as u32,
                outcome: outcome_word(&r.outcome),
                of_line: r.of_line.map(|l| l as u32),
                report,
                case: r.case_number,
            });
        }
        // A task of its own: it goes on while the next chunk is read from the stage and
        // parsed (a future polled only here would leave the database idle meanwhile).
        let target = Target {
            db: cx.db.clone(),
            centre: cx.centre,
            today: cx.today,
            source: cx.mapping.source.clone(),
        };
        in_flight.spawn(async move {
            let mut tries = 0;
            loop {
                match write_chunk(&target, batch_id, actor, &ready, &earlier).await {
                    // Two chunks touching the same person's statistics marker may deadlock
                    // (PostgreSQL aborts one): that chunk is written again.
                    Err(Error::Db(sqlx::Error::Database(e)))
                        if tries < 3 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
                    {
                        tries += 1;
                    }
                    r => return r.map(|w| (j, w)),
                }
            }
        });
    }
    while let Some(r) = in_flight.join_next().await {
        let (_, written) = joined(r)?;
        done += written.len();
        stage.written(&written).await?;
        progress(done, total);
    }
    Ok(())
}

/// Where a chunk is written: what a writer task needs of the import's context.
struct Target {
    db: Db,
    centre: i64,
    today: chrono::NaiveDate,
    source: String,
}

/// A chunk's result from its task.
type Landed = (usize, Vec<(i64, i64)>);

fn joined(r: std::result::Result<Result<Landed>, tokio::task::JoinError>) -> Result<Landed> {
    r.map_err(|e| Error::Internal(format!("import writer: {e}")))?
}

/// A person or report to insert: its new id, the row, and its person or link.
type ToInsert<'a> = (i64, &'a Ready, &'a NewReport, Option<i64>, &'static str);

/// Writes one chunk in one transaction. `earlier`: per row, the person it links to, follows
/// or duplicates when that person is not in this chunk. Returns each row's place and person.
async fn write_chunk(
    cx: &Target,
    batch_id: i64,
    actor: Actor,
    chunk: &[Ready],
    earlier: &[Option<i64>],
) -> Result<Vec<(i64, i64)>> {
    let (t, centre, today) = (now(), cx.centre, cx.today);
    let source = cx.source.as_str();
    let pg = matches!(cx.db, Db::Postgres(_));
    with_db!(&cx.db, pool => {
        let mut tx = pool.begin_write().await?;
        // Ids first (a sequence on PostgreSQL; after the largest on SQLite, whose single
        // writer holds the lock), so people and reports go in as multi-row statements — a
        // statement per row, with its trigger, was 30,000 rows a minute.
        let new_people = chunk.iter().filter(|p| matches!(p.outcome, "created" | "repositive")).count() as i64;
        let new_reports = chunk.iter().filter(|p| p.outcome != "duplicate").count() as i64;
        let alloc = |table: &str| if pg {
            format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, $1)")
        } else {
            format!("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $1)
                     SELECT (SELECT COALESCE(MAX(id), 0) FROM {table}) + n FROM s")
        };
        let mut person_ids: Vec<i64> = if new_people > 0 {
            sqlx::query_scalar(sqlx::AssertSqlSafe(alloc("persons"))).bind(new_people).fetch_all(&mut *tx).await?
        } else { Vec::new() };
        let mut report_ids: Vec<i64> = if new_reports > 0 {
            sqlx::query_scalar(sqlx::AssertSqlSafe(alloc("occurrence_reports"))).bind(new_reports).fetch_all(&mut *tx).await?
        } else { Vec::new() };
        person_ids.reverse();
        report_ids.reverse();
        let mut written: Vec<(i64, i64)> = Vec::with_capacity(chunk.len());
        // Later rows of the same chunk may follow this one.
        let mut here: HashMap<u32, i64> = HashMap::new();
        let mut people: Vec<ToInsert<'_>> = Vec::new();
        let mut filed: Vec<ToInsert<'_>> = Vec::new();
        let mut outcome_rows: Vec<OutcomeRow<'_>> = Vec::with_capacity(chunk.len());
        for (i, p) in chunk.iter().enumerate() {
            let report = &p.report;
            let earlier = earlier[i].or_else(|| p.of_line.and_then(|l| here.get(&l).copied()));
            let (person_id, report_id) = match p.outcome {
                "duplicate" => (earlier.unwrap_or_default(), None),
                "linked" => {
                    let id = earlier.ok_or_else(|| Error::Internal("linked row without a person".into()))?;
                    let rid = report_ids.pop().ok_or_else(|| Error::Internal("report ids".into()))?;
                    filed.push((rid, p, report, Some(id), "linked"));
                    (id, Some(rid))
                }
                outcome => {
                    let id = person_ids.pop().ok_or_else(|| Error::Internal("person ids".into()))?;
                    let repositive = outcome == "repositive";
                    people.push((id, p, report, if repositive { earlier } else { None }, ""));
                    let rid = report_ids.pop().ok_or_else(|| Error::Internal("report ids".into()))?;
                    filed.push((rid, p, report, Some(id), if repositive { "repositive" } else { "created" }));
                    (id, Some(rid))
                }
            };
            outcome_rows.push((source, &p.case, i64::from(p.line), p.outcome, (person_id != 0).then_some(person_id), report_id));
            written.push((p.dorder, person_id));
            here.insert(p.line, person_id);
        }
        for people in people.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO persons (id, health_centre_id, name, phone, email, channel, language, monitoring_type,
                   observation_start, observation_end, date_of_birth, status, created_at, updated_at,
                   name_kana, name_key, sex, prefecture_code, municipality, address, occupation,
                   reception_date, onset_date, specimen_date, period_rule, period_override_reason,
                   previous_case_id, name_norm) ");
            q.push_values(people, |mut b, (id, _, r, previous, _)| {
                let person = &r.person;
                let d = &person.details;
                let ended = person.observation_end < today || r.report_type == "deceased";
                b.push_bind(*id).push_bind(centre).push_bind(person.name.clone()).push_bind(person.phone.as_ref().map(|x| x.as_str().to_string()))
                    .push_bind(person.email.as_ref().map(|x| x.as_str().to_string())).push_bind(person.channel.as_str()).push_bind(person.language.as_str())
                    .push_bind(person.monitoring_type).push_bind(person.observation_start).push_bind(person.observation_end)
                    .push_bind(person.date_of_birth).push_bind(if ended { "ended" } else { "observing" }).push_bind(t).push_bind(t)
                    .push_bind(d.name_kana.clone()).push_bind(d.name_key.clone()).push_bind(d.sex).push_bind(d.prefecture_code.clone())
                    .push_bind(d.municipality.clone()).push_bind(d.address.clone()).push_bind(d.occupation.clone())
                    .push_bind(d.reception_date.or(Some(r.diagnosis_date))).push_bind(d.onset_date).push_bind(d.specimen_date)
                    .push_bind(d.period_rule.clone()).push_bind(d.period_override_reason.clone()).push_bind(*previous)
                    .push_bind(kana_key(&person.name));
            });
            q.build().execute(&mut *tx).await?;
            let slots: Vec<(i64, i32, i32)> = people
                .iter()
                .flat_map(|(id, _, r, _, _)| r.person.slots.iter().enumerate().map(move |(i, m)| (*id, i as i32, *m)))
                .collect();
            if !slots.is_empty() {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO person_slots (person_id, slot, minutes) ");
                q.push_values(&slots, |mut b, (id, slot, m)| {
                    b.push_bind(*id).push_bind(*slot).push_bind(*m);
                });
                q.build().execute(&mut *tx).await?;
            }
        }
        for part in filed.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO occurrence_reports (id, person_id, health_centre_id, report_type, diagnosis_date, diagnosis_method,
                   doctor_name, institution_name, institution_phone, onset_date, specimen_date, death_date,
                   estimated_infection_date, infection_place, infection_route, symptoms, severity, notes, linkage,
                   filed_by, created_at) ");
            q.push_values(part, |mut b, (rid, _, r, pid, linkage)| {
                b.push_bind(*rid).push_bind(*pid).push_bind(centre).push_bind(r.report_type).push_bind(r.diagnosis_date)
                    .push_bind(r.diagnosis_method).push_bind(r.doctor_name.clone()).push_bind(r.institution_name.clone())
                    .push_bind(r.institution_phone.clone()).push_bind(r.person.details.onset_date).push_bind(r.person.details.specimen_date)
                    .push_bind(r.death_date).push_bind(r.estimated_infection_date).push_bind(r.infection_place.clone())
                    .push_bind(r.infection_route).push_bind(r.symptoms.clone()).push_bind(r.severity).push_bind(r.notes.clone())
                    .push_bind(*linkage).push_bind(actor_staff(actor)).push_bind(t);
            });
            q.build().execute(&mut *tx).await?;
        }
        for part in outcome_rows.chunks(4 * ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO import_rows (batch_id, source, case_number, line, outcome, person_id, report_id) ");
            q.push_values(part, |mut b, (src, case, line, outcome, person, report)| {
                b.push_bind(batch_id).push_bind(*src).push_bind(*case).push_bind(*line).push_bind(*outcome).push_bind(*person).push_bind(*report);
            });
            q.build().execute(&mut *tx).await?;
        }
        let audit_rows: Vec<crate::store::audit::NewAuditRow<'_>> = outcome_rows
            .iter()
            .filter(|r| r.3 != "duplicate")
            .map(|r| (actor, "import.row", "person", r.4, None))
            .collect();
        for part in audit_rows.chunks(4 * ROWS_PER_STATEMENT) {
            crate::store::audit::audit_many(&mut *tx, part).await?;
        }
        tx.commit().await?;
        Ok::<_, Error>(written)
    })
}

/// The staff member an import's reports are filed by.
fn actor_staff(actor: Actor) -> Option<i64> {
    match actor {
        Actor::Staff(id) => Some(id),
        _ => None,
    }
}
