//! Deciding what happens to every row of an import, before anything is written: each row
//! read and checked as the file streams in, the registry searched for its person in batches
//! (in SQL, on the indexes registration uses — not a copy of the centre's registry in
//! memory), each row staged (`stage`), and the rows then matched among themselves in the
//! order of their diagnosis dates, a chunk at a time, by index lookups in the stage.
//!
//! Memory stays flat: what is held is one batch of rows being searched, one chunk being
//! decided, and the stage's page cache — not the file, not a row each.
use std::collections::{HashMap, HashSet, VecDeque};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::{
    reasons,
    stage::{Decision, Stage, Staged},
    to_input,
};
use crate::{
    Db, Error, FieldError, Result,
    domain::{Lang, kana_key},
    import::{Cells, Mapping, Records, repositive_of},
    periods::Periods,
    store::{persons::NewPerson, reports::NewReport},
};

/// Rows one registry search carries (its arrays stay far under a TCP segment).
const LOOKUP: usize = 500;
/// Registry searches in flight while the next rows are read.
const LOOKUPS_AHEAD: usize = 2;

/// A 128-bit digest of a key (the chance of two different keys colliding in a file of
/// millions of rows is below 10⁻²⁵).
pub(super) fn digest(parts: &[&str]) -> u128 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

/// The keys registration matches people on: the folded kana name, the date of birth and
/// the phone (name and date of birth, phone and date of birth, name and phone — in that
/// order).
#[derive(Debug, Clone, Default)]
pub(super) struct Keys {
    pub name: Option<String>,
    pub dob: Option<NaiveDate>,
    pub phone: Option<String>,
}

impl Keys {
    pub fn of(p: &NewPerson) -> Keys {
        let name = p
            .details
            .name_key
            .clone()
            .unwrap_or_else(|| kana_key(&p.name));
        Keys {
            name: (!name.is_empty()).then_some(name),
            dob: p.date_of_birth,
            phone: p.phone.as_ref().map(|x| x.as_str().to_string()),
        }
    }

    /// The three keys, in the order they are tried, as digests (None where a part is
    /// missing).
    pub fn digests(&self) -> [Option<u128>; 3] {
        let dob = self.dob.map(|d| d.to_string());
        let pair = |kind: &str, a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => Some(digest(&[kind, a, b])),
            _ => None,
        };
        [
            pair("nd", &self.name, &dob),
            pair("pd", &self.phone, &dob),
            pair("np", &self.name, &self.phone),
        ]
    }
}

/// The first person of the centre (lowest id, not merged away) each row's keys find, the
/// keys tried in order, with the end of their observation — the rule of registration's
/// duplicate check, for `LOOKUP` rows a statement.
pub(super) async fn lookup(db: &Db, centre: i64, keys: &[Keys]) -> Result<Found> {
    // `q.id + 0`: the planner must not walk the primary key in order hoping for an early
    // match (a LIMIT 1 trap); each search uses its own index.
    const FIRST: &str =
        "SELECT q.id FROM persons q WHERE q.health_centre_id = $1 AND q.merged_into IS NULL AND";
    let mut out = vec![None; keys.len()];
    for (c, part) in keys.chunks(LOOKUP).enumerate() {
        let found: Vec<(i64, i64, NaiveDate)> = match db {
            Db::Postgres(p) => {
                let names: Vec<Option<&str>> = part.iter().map(|k| k.name.as_deref()).collect();
                let dobs: Vec<Option<NaiveDate>> = part.iter().map(|k| k.dob).collect();
                let phones: Vec<Option<&str>> = part.iter().map(|k| k.phone.as_deref()).collect();
                let sql = format!(
                    "SELECT m.i - 1, p.id, p.observation_end FROM (
                       SELECT k.i, COALESCE(
                         ({FIRST} q.name_key = k.n AND q.date_of_birth = k.d ORDER BY q.id + 0 LIMIT 1),
                         ({FIRST} q.phone = k.ph AND q.date_of_birth = k.d ORDER BY q.id + 0 LIMIT 1),
                         ({FIRST} q.name_key = k.n AND q.phone = k.ph ORDER BY q.id + 0 LIMIT 1)) AS id
                       FROM UNNEST($2::text[], $3::date[], $4::text[]) WITH ORDINALITY AS k(n, d, ph, i)) m
                     JOIN persons p ON p.id = m.id"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(centre)
                    .bind(names)
                    .bind(dobs)
                    .bind(phones)
                    .fetch_all(p)
                    .await?
            }
            Db::Sqlite(p) => {
                let rows: Vec<(Option<&str>, Option<String>, Option<&str>)> = part
                    .iter()
                    .map(|k| {
                        (
                            k.name.as_deref(),
                            k.dob.map(|d| d.to_string()),
                            k.phone.as_deref(),
                        )
                    })
                    .collect();
                let json = serde_json::to_string(&rows)
                    .map_err(|e| Error::Internal(format!("import keys: {e}")))?;
                let sql = format!(
                    "SELECT m.i, p.id, p.observation_end FROM (
                       SELECT k.key AS i, COALESCE(
                         ({FIRST} q.name_key = json_extract(k.value, '$[0]') AND q.date_of_birth = json_extract(k.value, '$[1]') ORDER BY q.id + 0 LIMIT 1),
                         ({FIRST} q.phone = json_extract(k.value, '$[2]') AND q.date_of_birth = json_extract(k.value, '$[1]') ORDER BY q.id + 0 LIMIT 1),
                         ({FIRST} q.name_key = json_extract(k.value, '$[0]') AND q.phone = json_extract(k.value, '$[2]') ORDER BY q.id + 0 LIMIT 1)) AS id
                       FROM json_each($2) k) m
                     JOIN persons p ON p.id = m.id"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(centre)
                    .bind(json)
                    .fetch_all(p)
                    .await?
            }
        };
        for (i, id, end) in found {
            if let Some(slot) = usize::try_from(i)
                .ok()
                .and_then(|i| out.get_mut(c * LOOKUP + i))
            {
                *slot = Some((id, end));
            }
        }
    }
    Ok(out)
}

/// Who a registry search found for each row: the person and the end of their observation.
type Found = Vec<Option<(i64, NaiveDate)>>;

/// A row read and checked: the report and its remarks, or why it cannot be imported.
pub(super) type ReadRow = std::result::Result<(NewReport, Option<String>), Vec<FieldError>>;

/// A row read through the mapping and checked as an occurrence report, with its remarks;
/// `Ok(Err(problems))` when it is invalid.
pub(super) fn read_row(
    mapping: &Mapping,
    columns: &[(&'static str, usize)],
    line: usize,
    cells: &(impl Cells + ?Sized),
    periods: &Periods,
    today: NaiveDate,
) -> Result<ReadRow> {
    let mapped = match mapping.map_row(columns, line, cells) {
        Ok(m) => m,
        Err(f) => return Ok(Err(f)),
    };
    match to_input(&mapped).parse(periods, today) {
        Ok(r) => Ok(Ok((r, mapped.fields.get("remarks").cloned()))),
        Err(Error::Invalid(f)) => Ok(Err(f)),
        Err(e) => Err(e),
    }
}

/// The file's columns as the stage keeps a row: only the mapped cells, in `columns`' order.
pub(super) fn staged_columns(columns: &[(&'static str, usize)]) -> Vec<(&'static str, usize)> {
    columns
        .iter()
        .enumerate()
        .map(|(k, (f, _))| (*f, k))
        .collect()
}

/// What the import needs to know beforehand.
pub(super) struct Context<'a> {
    pub db: &'a Db,
    pub centre: i64,
    pub mapping: &'a Mapping,
    pub periods: &'a Periods,
    pub today: NaiveDate,
    pub lang: Lang,
}

/// Case numbers of `source` imported before (not rejected, not undone), with their person.
async fn imported(
    db: &Db,
    source: &str,
    numbers: &[String],
) -> Result<HashMap<String, Option<i64>>> {
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>)> = match db {
        Db::Postgres(p) => sqlx::query_as(
            "SELECT case_number, person_id FROM import_rows
             WHERE source = $1 AND case_number = ANY($2) AND outcome NOT IN ('rejected', 'undone')",
        )
        .bind(source)
        .bind(numbers)
        .fetch_all(p)
        .await?,
        Db::Sqlite(p) => sqlx::query_as(
            "SELECT case_number, person_id FROM import_rows
             WHERE source = $1 AND case_number IN (SELECT value FROM json_each($2)) AND outcome NOT IN ('rejected', 'undone')",
        )
        .bind(source)
        .bind(serde_json::to_string(numbers).map_err(|e| Error::Internal(e.to_string()))?)
        .fetch_all(p)
        .await?,
    };
    Ok(rows.into_iter().collect())
}

/// What one batch's searches found: case numbers imported before, and the registry's people.
type Searched = (HashMap<String, Option<i64>>, Found);

/// Searches for one batch of staged rows: their case numbers and the earlier case numbers
/// they name among those imported before, and the registry for the valid ones.
fn search(
    cx: &Context<'_>,
    batch: &[Staged],
    keys: Vec<Keys>,
) -> tokio::task::JoinHandle<Result<Searched>> {
    let mut numbers: Vec<String> = batch
        .iter()
        .filter(|r| !r.case_number.is_empty())
        .map(|r| r.case_number.clone())
        .chain(batch.iter().filter_map(|r| r.earlier.clone()))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let (db, centre, source) = (cx.db.clone(), cx.centre, cx.mapping.source.clone());
    tokio::spawn(async move {
        let before = imported(&db, &source, &numbers).await?;
        let found = lookup(&db, centre, &keys).await?;
        Ok((before, found))
    })
}

/// Applies one batch's searches to its rows.
fn apply(batch: &mut [Staged], (before, found): Searched) {
    let mut found = found.into_iter();
    for r in batch.iter_mut() {
        if r.status == "valid" {
            r.registered = found.next().flatten();
        }
        if let Some(n) = &r.earlier
            && let Some(p) = before.get(n)
        {
            (r.earlier_imported, r.earlier_person) = (true, *p);
        }
        if !r.case_number.is_empty()
            && let Some(p) = before.get(&r.case_number)
        {
            // Imported before: nothing else about it matters.
            (r.status, r.person, r.reason) = ("already", *p, None);
        }
    }
}

/// Pass 1: reads every row of the file, checks it, searches for it and stages it. Returns
/// the stage and the rows read.
pub(super) async fn load(
    cx: &Context<'_>,
    records: &mut Records<'_>,
    columns: &[(&'static str, usize)],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Stage> {
    let mut stage = Stage::open().await?;
    let case_at = columns
        .iter()
        .find(|(f, _)| *f == "case_number")
        .map(|(_, i)| *i);
    // Searches run while the next rows are read: (the batch, its search).
    let mut searches: VecDeque<(Vec<Staged>, tokio::task::JoinHandle<Result<Searched>>)> =
        VecDeque::new();
    let mut batch: Vec<Staged> = Vec::with_capacity(LOOKUP);
    let mut keys: Vec<Keys> = Vec::with_capacity(LOOKUP);
    loop {
        let next = records.next_record()?;
        if let Some((line, row)) = next {
            let case_number = case_at
                .and_then(|i| row.get(i))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let cells: Vec<&str> = columns
                .iter()
                .map(|(_, i)| row.get(*i).unwrap_or(""))
                .collect();
            let mut r = Staged {
                line: line as u32,
                case_number,
                cells: serde_json::to_string(&cells)
                    .map_err(|e| Error::Internal(format!("import: {e}")))?,
                ..Default::default()
            };
            match read_row(cx.mapping, columns, line, row, cx.periods, cx.today)? {
                Ok((report, remarks)) => {
                    let k = Keys::of(&report.person);
                    r.status = "valid";
                    r.diagnosis = Some(report.diagnosis_date);
                    r.observation_end = Some(report.person.observation_end);
                    r.keys = k.digests();
                    r.earlier = remarks.as_deref().and_then(repositive_of);
                    keys.push(k);
                }
                Err(f) => {
                    r.status = "rejected";
                    r.reason = Some(reasons(&f, cx.lang));
                }
            }
            batch.push(r);
        }
        if batch.len() == LOOKUP || (next.is_none() && !batch.is_empty()) {
            let s = search(
                cx,
                &batch,
                std::mem::replace(&mut keys, Vec::with_capacity(LOOKUP)),
            );
            searches.push_back((std::mem::replace(&mut batch, Vec::with_capacity(LOOKUP)), s));
        }
        while searches.len() > LOOKUPS_AHEAD || (next.is_none() && !searches.is_empty()) {
            let Some((mut done, s)) = searches.pop_front() else {
                break;
            };
            apply(&mut done, joined(s.await)?);
            stage.insert(&done).await?;
            progress(stage.rows(), 0);
        }
        if next.is_none() {
            break;
        }
    }
    // A case number a second time in the file: rejected, naming the line it was first on.
    let repeats = stage.index_and_repeats().await?;
    let repeats: Vec<(i64, String)> = repeats
        .into_iter()
        .map(|(ord, case, first)| {
            (
                ord,
                reasons(
                    &[FieldError::new(
                        "case_number",
                        "err-import-case-twice".into(),
                        vec![("case", case), ("line", first.to_string())],
                    )],
                    cx.lang,
                ),
            )
        })
        .collect();
    stage.reject(&repeats).await?;
    Ok(stage)
}

/// Rows a chunk of the decision (and of the writer) holds.
pub(super) const CHUNK: usize = 500;

/// Pass 2: decides every valid row, in the order of diagnosis dates (earlier diagnoses
/// first, so chains are followed forward), a chunk at a time: earlier decided rows are found
/// by index in the stage, rows of the same chunk in the chunk's own maps. Returns how many
/// rows were decided.
pub(super) async fn decide(stage: &mut Stage) -> Result<usize> {
    let valid = stage.order().await?;
    let mut from = 0i64;
    while (from as usize) < valid {
        let rows = stage.chunk_to_decide(from, from + CHUNK as i64).await?;
        // What earlier chunks decided, for this chunk's case numbers and keys.
        let numbers: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.earlier.as_deref())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut by_number: HashMap<String, (i64, i64)> = stage
            .numbered(&numbers, from)
            .await?
            .into_iter()
            .map(|(n, line, place)| (n, (line, place)))
            .collect();
        let mut keys: [Vec<&str>; 3] = Default::default();
        for r in &rows {
            for (k, v) in [&r.k1, &r.k2, &r.k3].into_iter().enumerate() {
                if let Some(v) = v {
                    keys[k].push(v);
                }
            }
        }
        // A key taken by several earlier rows names the last of them (in the decision's
        // order), as a row decided later would.
        let mut in_file: HashMap<(i64, String), (i64, NaiveDate, i64)> = HashMap::new();
        for (kind, key, line, end, place) in stage.keyed(&keys, from).await? {
            let e = in_file.entry((kind, key)).or_insert((line, end, place));
            if place > e.2 {
                *e = (line, end, place);
            }
        }
        let mut decisions: Vec<Decision> = Vec::with_capacity(rows.len());
        for r in &rows {
            let earlier = r.earlier.as_ref().and_then(|n| {
                by_number
                    .get(n)
                    .map(|(line, place)| (None, Some(*line), Some(*place)))
                    .or_else(|| r.earlier_imported.then_some((r.earlier_person, None, None)))
            });
            let row_keys = [&r.k1, &r.k2, &r.k3];
            let (outcome, person, of_line, of_place) = if let Some((person, line, place)) = earlier
            {
                ("repositive", person, line, place)
            } else if let Some((line, end, place)) = row_keys
                .iter()
                .enumerate()
                .filter_map(|(kind, k)| k.as_ref().map(|k| (kind as i64, (*k).clone())))
                .find_map(|k| in_file.get(&k))
            {
                let o = if *end < r.diagnosis {
                    "repositive"
                } else {
                    "duplicate"
                };
                (o, None, Some(*line), Some(*place))
            } else if let (Some(id), Some(end)) = (r.reg_id, r.reg_end) {
                let o = if end < r.diagnosis {
                    "repositive"
                } else {
                    "linked"
                };
                (o, Some(id), None, None)
            } else {
                ("created", None, None, None)
            };
            if outcome != "duplicate" {
                for (kind, k) in row_keys.iter().enumerate() {
                    if let Some(k) = k {
                        in_file.insert((kind as i64, (*k).clone()), (r.line, r.obs_end, r.dorder));
                    }
                }
            }
            by_number.insert(r.case_number.clone(), (r.line, r.dorder));
            decisions.push((r.dorder, outcome, of_line, of_place, person));
        }
        stage.decided(&decisions).await?;
        from += CHUNK as i64;
    }
    Ok(valid)
}

fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::Internal(format!("registry search: {e}")))?
}
