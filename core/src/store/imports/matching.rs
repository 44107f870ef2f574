//! Deciding what happens to every row of an import, before anything is written: each row
//! read and checked, the registry searched for its person in batches (in SQL, on the
//! indexes registration uses — not a copy of the centre's registry in memory), and the rows
//! then matched among themselves in the order of their diagnosis dates.
//!
//! Memory stays near the file's own size: a valid row is held as ~100 bytes (its place in
//! the sheet, dates, the 128-bit digests of its keys and what the registry found), not as the
//! parsed report — the writer reads a row again when it writes it.
use std::collections::{HashMap, VecDeque};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::{Outcome, reasons, to_input};
use crate::{
    Db, Error, FieldError, Result,
    domain::{Lang, kana_key},
    import::{Mapping, Row, Sheet, repositive_of},
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

/// A valid row as matching sees it: 112 bytes (digests of 0 stand for "none"; a real digest
/// is 0 with a chance of 2⁻¹²⁸).
struct Valid {
    /// Its index in the sheet.
    row: u32,
    line: u32,
    case: u128,
    diagnosis: NaiveDate,
    observation_end: NaiveDate,
    keys: [u128; 3],
    /// The digest of the earlier case number its remarks name (再陽性), or 0.
    earlier: u128,
    /// Who the registry search found.
    registered: Option<(i64, NaiveDate)>,
}

/// A 128-bit digest as a map key of 8-byte alignment: 24-byte entries instead of 32.
fn key(d: u128) -> [u64; 2] {
    [d as u64, (d >> 64) as u64]
}

/// A valid row, decided: what the writer will do with it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned {
    /// Its index in the sheet (the writer reads it again).
    pub row: u32,
    pub line: u32,
    pub outcome: &'static str,
    /// Existing person (linked) or earlier case (re-positive), when already in the registry.
    pub person_id: Option<i64>,
    /// The row of this file it follows or duplicates.
    pub of_line: Option<u32>,
}

/// The case number of a row (its column, trimmed).
pub(super) fn case_of(columns: &[(&'static str, usize)], row: Row<'_>) -> String {
    columns
        .iter()
        .find(|(f, _)| *f == "case_number")
        .and_then(|(_, i)| row.get(*i))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A row read through the mapping and checked as an occurrence report, with its remarks;
/// `Ok(Err(problems))` when it is invalid.
pub(super) fn read_row(
    mapping: &Mapping,
    columns: &[(&'static str, usize)],
    row: Row<'_>,
    periods: &Periods,
    today: NaiveDate,
) -> Result<ReadRow> {
    let mapped = match mapping.map_row(columns, row) {
        Ok(m) => m,
        Err(f) => return Ok(Err(f)),
    };
    match to_input(&mapped).parse(periods, today) {
        Ok(r) => Ok(Ok((r, mapped.fields.get("remarks").cloned()))),
        Err(Error::Invalid(f)) => Ok(Err(f)),
        Err(e) => Err(e),
    }
}

/// What the import needs to know beforehand.
pub(super) struct Context<'a> {
    pub db: &'a Db,
    pub centre: i64,
    pub mapping: &'a Mapping,
    pub sheet: &'a Sheet,
    pub periods: &'a Periods,
    pub today: NaiveDate,
    pub lang: Lang,
    /// Case numbers (digests) of the source imported before, with their person.
    pub imported: HashMap<u128, Option<i64>>,
}

/// Decides every row (nothing written): the outcome of each row that will not be written
/// (rejected, imported before), in file order, and the valid rows to write, in the order of
/// their diagnosis dates (their outcomes for the report come from [`planned_outcome`], built
/// once the decision's maps are gone).
pub(super) async fn decide(
    cx: &Context<'_>,
    columns: &[(&'static str, usize)],
) -> Result<(Vec<Outcome>, Vec<Planned>)> {
    let sheet = cx.sheet;
    // Reserved once: growing these would hold the old and the new buffer at once.
    let mut outcomes = Vec::new();
    let mut valid: Vec<Valid> = Vec::with_capacity(sheet.len());
    let mut seen_numbers: HashMap<[u64; 2], u32> = HashMap::with_capacity(sheet.len());
    // Registry searches run while the next rows are read: (first valid row, search).
    let mut searches: VecDeque<(usize, tokio::task::JoinHandle<Result<Found>>)> = VecDeque::new();
    let mut pending: Vec<Keys> = Vec::with_capacity(LOOKUP);
    let mut pending_from = 0;
    let finish = |valid: &mut Vec<Valid>, from: usize, found: Found| {
        for (v, f) in valid[from..].iter_mut().zip(found) {
            v.registered = f;
        }
    };
    for (index, row) in sheet.rows().enumerate() {
        let line = row.line;
        let case = case_of(columns, row);
        let case_digest = digest(&[&case]);
        let reject = |why: String| Outcome {
            line,
            case_number: case.clone(),
            outcome: "rejected",
            person_id: None,
            of_line: None,
            of_person: None,
            reason: Some(why),
        };
        if let Some(first) = seen_numbers
            .get(&key(case_digest))
            .filter(|_| !case.is_empty())
        {
            outcomes.push(reject(reasons(
                &[FieldError::new(
                    "case_number",
                    "err-import-case-twice".into(),
                    vec![("case", case.clone()), ("line", first.to_string())],
                )],
                cx.lang,
            )));
            continue;
        }
        if let Some(person) = cx.imported.get(&case_digest).filter(|_| !case.is_empty()) {
            seen_numbers.insert(key(case_digest), line as u32);
            outcomes.push(Outcome {
                line,
                case_number: case,
                outcome: "already",
                person_id: *person,
                of_line: None,
                of_person: None,
                reason: None,
            });
            continue;
        }
        let (report, remarks) = match read_row(cx.mapping, columns, row, cx.periods, cx.today)? {
            Ok(r) => r,
            Err(f) => {
                outcomes.push(reject(reasons(&f, cx.lang)));
                continue;
            }
        };
        seen_numbers.insert(key(case_digest), line as u32);
        let keys = Keys::of(&report.person);
        valid.push(Valid {
            row: index as u32,
            line: line as u32,
            case: case_digest,
            diagnosis: report.diagnosis_date,
            observation_end: report.person.observation_end,
            keys: keys.digests().map(|k| k.unwrap_or(0)),
            earlier: remarks
                .as_deref()
                .and_then(repositive_of)
                .map_or(0, |n| digest(&[&n])),
            registered: None,
        });
        pending.push(keys);
        if pending.len() == LOOKUP {
            let keys = std::mem::replace(&mut pending, Vec::with_capacity(LOOKUP));
            let (db, centre) = (cx.db.clone(), cx.centre);
            searches.push_back((
                pending_from,
                tokio::spawn(async move { lookup(&db, centre, &keys).await }),
            ));
            pending_from = valid.len();
            if searches.len() > LOOKUPS_AHEAD
                && let Some((from, s)) = searches.pop_front()
            {
                finish(&mut valid, from, joined(s.await)?);
            }
        }
    }
    while let Some((from, s)) = searches.pop_front() {
        finish(&mut valid, from, joined(s.await)?);
    }
    if !pending.is_empty() {
        let found = lookup(cx.db, cx.centre, &pending).await?;
        finish(&mut valid, pending_from, found);
    }
    drop(seen_numbers);

    // Earlier diagnoses first, so chains are followed forward.
    valid.sort_by_key(|v| (v.diagnosis, v.line));
    let mut in_file: HashMap<[u64; 2], (u32, NaiveDate)> = HashMap::with_capacity(3 * valid.len());
    let mut by_number: HashMap<[u64; 2], u32> = HashMap::with_capacity(valid.len());
    let mut planned = Vec::with_capacity(valid.len());
    for v in valid {
        let earlier = (v.earlier != 0).then_some(v.earlier);
        let (outcome, person_id, of_line) = if let Some(n) = earlier.and_then(|n| {
            by_number
                .get(&key(n))
                .map(|l| (None, Some(*l)))
                .or_else(|| cx.imported.get(&n).map(|p| (*p, None)))
        }) {
            ("repositive", n.0, n.1)
        } else if let Some((l, end)) = v
            .keys
            .iter()
            .filter(|k| **k != 0)
            .find_map(|k| in_file.get(&key(*k)))
        {
            if *end < v.diagnosis {
                ("repositive", None, Some(*l))
            } else {
                ("duplicate", None, Some(*l))
            }
        } else if let Some((id, end)) = v.registered {
            if end < v.diagnosis {
                ("repositive", Some(id), None)
            } else {
                ("linked", Some(id), None)
            }
        } else {
            ("created", None, None)
        };
        if outcome != "duplicate" {
            for k in v.keys.iter().filter(|k| **k != 0) {
                in_file.insert(key(*k), (v.line, v.observation_end));
            }
        }
        by_number.insert(key(v.case), v.line);
        planned.push(Planned {
            row: v.row,
            line: v.line,
            outcome,
            person_id,
            of_line,
        });
    }
    Ok((outcomes, planned))
}

/// The outcome of a decided row for the report: `written` holds the person each line
/// created (after an import; a dry run has none).
pub(super) fn planned_outcome(
    sheet: &Sheet,
    columns: &[(&'static str, usize)],
    p: &Planned,
    written: Option<&HashMap<u32, i64>>,
) -> Outcome {
    let person_id = match (p.outcome, written) {
        ("linked", _) => p.person_id,
        ("created" | "repositive" | "duplicate", Some(w)) => {
            w.get(&p.line).copied().filter(|x| *x != 0)
        }
        _ => None,
    };
    Outcome {
        line: p.line as usize,
        case_number: case_of(columns, sheet.row(p.row as usize)),
        outcome: p.outcome,
        person_id,
        of_line: p.of_line.map(|l| l as usize),
        of_person: (p.outcome == "repositive").then_some(p.person_id).flatten(),
        reason: None,
    }
}

fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::Internal(format!("registry search: {e}")))?
}
