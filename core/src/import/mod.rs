//! **Migration and bulk import** of occurrence-report records (NESID-era exports, lists from
//! other systems): a documented import format, a column mapping as data, CSV (UTF-8 or
//! CP932, detected) and XLSX input, a dry run that writes nothing, and an import keyed on the
//! source system and its case number (idempotent, resumable) — see `store::imports`.
//!
//! The import format (`IMPORT_FIELDS`): one row per occurrence report, with the source
//! system's case number and remarks. A file with other headers, codes or date formats is read
//! through a mapping (`*.mapping.toml` beside the flows; `flows/nesid.mapping.toml` is the
//! example): `[columns]` names the file's header for each of our fields, `[values.FIELD]`
//! turns the file's codes into ours, `dates` lists the date formats tried in order (chrono
//! formats, and `wareki` for era dates such as 令和2年5月1日).
pub mod wareki;

use std::{collections::BTreeMap, path::Path};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::{Error, FieldError};

/// Our fields, in the order of the documented format. `case_number` is required; the rest
/// follow the occurrence report's own rules (`store::reports::ReportInput`).
pub const IMPORT_FIELDS: &[(&str, &str)] = &[
    (
        "case_number",
        "the source system's case number (required; the import's key with the source)",
    ),
    (
        "remarks",
        "the source's remarks (「20 備考」); 再陽性 and an earlier case number there link a re-positive case",
    ),
    (
        "report_type",
        "patient, asymptomatic, suspected or deceased",
    ),
    ("diagnosis_date", "date of diagnosis"),
    (
        "diagnosis_method",
        "pcr, antigen_quantitative, antigen_qualitative, lamp, clinical or other",
    ),
    ("doctor_name", "the diagnosing doctor"),
    ("institution_name", "the medical institution"),
    ("institution_phone", "its phone"),
    ("name", "the patient's name"),
    ("name_kana", "in kana (any width or script)"),
    ("sex", "male, female, other or unknown"),
    ("date_of_birth", "date of birth"),
    ("phone", "phone (Japanese or +81)"),
    ("email", "e-mail"),
    ("prefecture_code", "JIS prefecture code of the address"),
    ("municipality", "municipality of the address"),
    ("address", "the rest of the address"),
    ("occupation", "occupation"),
    ("onset_date", "onset date (symptomatic patients)"),
    ("specimen_date", "specimen date (asymptomatic carriers)"),
    ("death_date", "date of death (deceased)"),
    ("estimated_infection_date", "estimated date of infection"),
    ("infection_place", "estimated place of infection"),
    (
        "infection_route",
        "droplet, contact, aerosol, unknown or other",
    ),
    ("symptoms", "symptoms"),
    ("severity", "mild, moderate1, moderate2 or severe"),
    ("notes", "notes of the report"),
];

/// The fields holding dates (converted by the mapping's date formats).
const DATE_FIELDS: &[&str] = &[
    "diagnosis_date",
    "date_of_birth",
    "onset_date",
    "specimen_date",
    "death_date",
    "estimated_infection_date",
];

/// How a file's columns, codes and dates become the import format.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The source system (e.g. "nesid"): with the case number, the key of every imported row.
    pub source: String,
    /// auto (UTF-8 if the bytes are valid UTF-8, else CP932), utf-8 or cp932.
    #[serde(default = "auto")]
    pub encoding: String,
    /// Date formats tried in order: chrono formats, or "wareki".
    #[serde(default = "default_dates")]
    pub dates: Vec<String>,
    /// our field → the file's header (fields not listed are read from a header of their own name).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// our field → (the file's value → ours).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

fn auto() -> String {
    "auto".into()
}

fn default_dates() -> Vec<String> {
    vec![
        "%Y-%m-%d".into(),
        "%Y/%m/%d".into(),
        "%Y%m%d".into(),
        "wareki".into(),
    ]
}

impl Mapping {
    /// The documented format as it is (headers = our field names).
    pub fn standard(source: &str) -> Mapping {
        Mapping {
            source: source.into(),
            encoding: auto(),
            dates: default_dates(),
            columns: BTreeMap::new(),
            values: BTreeMap::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Mapping, String> {
        let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Mapping::parse(&path.display().to_string(), &src)
    }

    /// Parses and checks: every mapped field is one of ours, the source is named, the
    /// encoding known, every date format valid.
    pub fn parse(file: &str, src: &str) -> Result<Mapping, String> {
        let m: Mapping = toml::from_str(src).map_err(|e| {
            let line = e
                .span()
                .map(|s| src[..s.start].matches('\n').count() + 1)
                .unwrap_or(1);
            format!("{file}:{line}: {}", e.message())
        })?;
        if m.source.trim().is_empty() {
            return Err(format!("{file}: `source` must name the source system"));
        }
        if !matches!(m.encoding.as_str(), "auto" | "utf-8" | "cp932") {
            return Err(format!(
                "{file}: encoding '{}' — use auto, utf-8 or cp932",
                m.encoding
            ));
        }
        for f in m.columns.keys().chain(m.values.keys()) {
            if !IMPORT_FIELDS.iter().any(|(x, _)| x == f) {
                return Err(format!(
                    "{file}: '{f}' is not a field of the import format (see IMPORT_FIELDS / README)"
                ));
            }
        }
        for d in &m.dates {
            if d != "wareki"
                && chrono::format::StrftimeItems::new(d)
                    .any(|i| matches!(i, chrono::format::Item::Error))
            {
                return Err(format!("{file}: date format '{d}' is not valid"));
            }
        }
        Ok(m)
    }

    /// The file's header for one of our fields.
    fn header_of<'a>(&'a self, field: &'a str) -> &'a str {
        self.columns.get(field).map(String::as_str).unwrap_or(field)
    }

    /// A date in one of the mapping's formats, as YYYY-MM-DD.
    pub fn date(&self, v: &str) -> Result<NaiveDate, Why> {
        let v = v.trim();
        for f in &self.dates {
            if f == "wareki" {
                match wareki::parse(v) {
                    Ok(d) => return Ok(d),
                    Err(wareki::Wareki::Invalid(why)) => return Err(why),
                    Err(wareki::Wareki::NotWareki) => {}
                }
            } else if f == "%Y-%m-%d"
                && v.len() == 10
                && let Ok(d) = v.parse::<NaiveDate>()
            {
                // ISO dates, most of a file: without reading the format again for each.
                return Ok(d);
            } else if let Ok(d) = NaiveDate::parse_from_str(v, f) {
                return Ok(d);
            }
        }
        Err((
            "err-import-not-a-date",
            vec![("value", v.to_string()), ("formats", self.dates.join(", "))],
        ))
    }
}

/// Why a value cannot be read: a message catalogue key (`core/locales`) and its arguments,
/// shown in the reader's language.
pub type Why = (&'static str, Vec<(&'static str, String)>);

/// A table read from a file: its headers and each row with its line number (header = 1).
///
/// Held compactly — every cell's text in one buffer, a cell an end offset, a row its line and
/// first cell — so a 500,000-row file costs about its own size, not a `String` per cell
/// (which was ~50 bytes of allocation overhead on each of 7 million cells).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sheet {
    pub headers: Vec<String>,
    text: String,
    /// The end of each cell in `text`.
    ends: Vec<u32>,
    /// Each row: its line and its first cell.
    starts: Vec<(u32, u32)>,
}

/// One row of a [`Sheet`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub line: usize,
    sheet: &'a Sheet,
    first: usize,
    end: usize,
}

impl<'a> Row<'a> {
    /// The text of cell `i` (None past the row's last cell).
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let c = self.first + i;
        if c >= self.end {
            return None;
        }
        let from = if c == 0 {
            0
        } else {
            self.sheet.ends[c - 1] as usize
        };
        Some(&self.sheet.text[from..self.sheet.ends[c] as usize])
    }

    pub fn len(&self) -> usize {
        self.end - self.first
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row's cells in order.
    pub fn cells(&self) -> impl Iterator<Item = &'a str> + 'a {
        let r = *self;
        (0..r.len()).filter_map(move |i| r.get(i))
    }
}

impl Sheet {
    /// An empty sheet with these headers.
    pub fn new(headers: Vec<String>) -> Sheet {
        Sheet {
            headers,
            ..Default::default()
        }
    }

    /// Appends a row read at `line`.
    pub fn push<'c>(
        &mut self,
        line: usize,
        cells: impl IntoIterator<Item = &'c str>,
    ) -> Result<(), Error> {
        let too_big = || Error::invalid("file", "err-import-file-too-large");
        let first = u32::try_from(self.ends.len()).map_err(|_| too_big())?;
        self.starts
            .push((u32::try_from(line).map_err(|_| too_big())?, first));
        for c in cells {
            self.text.push_str(c);
            self.ends
                .push(u32::try_from(self.text.len()).map_err(|_| too_big())?);
        }
        Ok(())
    }

    /// Rows in all.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Row `i` (0-based, in file order).
    pub fn row(&self, i: usize) -> Row<'_> {
        let (line, first) = self.starts[i];
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.ends.len(), |(_, f)| *f as usize);
        Row {
            line: line as usize,
            sheet: self,
            first: first as usize,
            end,
        }
    }

    /// Every row in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }
}

/// Reads CSV (UTF-8 with or without BOM, or CP932) or XLSX (first sheet), by content, into a
/// [`Sheet`] (for short lists; an import streams the file with [`Records`]).
pub fn read(bytes: &[u8], encoding: &str) -> Result<Sheet, Error> {
    let mut records = Records::open(bytes, encoding)?;
    let mut sheet = Sheet::new(records.headers().to_vec());
    while let Some((line, rec)) = records.next_record()? {
        sheet.push(line, rec.iter())?;
    }
    Ok(sheet)
}

/// The text of a CSV file: the caller's bytes when they are UTF-8, else the CP932 file
/// decoded once.
#[derive(Clone)]
enum Text<'a> {
    Borrowed(&'a [u8]),
    Owned(std::sync::Arc<[u8]>),
}

impl AsRef<[u8]> for Text<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Text::Borrowed(b) => b,
            Text::Owned(b) => b,
        }
    }
}

/// A file's rows one at a time, each with its line number (header = 1) — what an import
/// reads, so a file of millions of rows costs one row of memory, not a row each. CSV is
/// streamed from the caller's bytes (a CP932 file is decoded once, to its size in UTF-8);
/// an XLSX sheet is held by the reader crate, as Excel files are (at most 1,048,576 rows).
pub struct Records<'a> {
    headers: Vec<String>,
    inner: Inner<'a>,
    record: csv::StringRecord,
}

enum Inner<'a> {
    Csv {
        reader: csv::Reader<std::io::Cursor<Text<'a>>>,
        text: Text<'a>,
        /// Where the last record started, and its line.
        at: usize,
        /// Bytes before the reader's first (a byte-order mark): its positions count from there.
        base: usize,
        line: usize,
    },
    Xlsx {
        range: calamine::Range<calamine::Data>,
        /// The next row of the range (0 is the header).
        next: usize,
    },
}

impl<'a> Records<'a> {
    /// Opens CSV (UTF-8 with or without BOM, or CP932: `encoding` auto, utf-8 or cp932) or
    /// XLSX (its first sheet, by content) and reads the header line.
    pub fn open(bytes: &'a [u8], encoding: &str) -> Result<Records<'a>, Error> {
        if bytes.starts_with(b"PK\x03\x04") {
            return Records::xlsx(bytes);
        }
        let text = match encoding {
            "cp932" => Text::Owned(decode_cp932(bytes)?),
            "utf-8" => Text::Borrowed(
                std::str::from_utf8(bytes)
                    .map_err(|e| {
                        Error::invalid_with(
                            "file",
                            "err-import-not-utf8",
                            vec![("byte", e.valid_up_to().to_string())],
                        )
                    })?
                    .as_bytes(),
            ),
            _ => match std::str::from_utf8(bytes) {
                Ok(s) => Text::Borrowed(s.as_bytes()),
                Err(_) => Text::Owned(decode_cp932(bytes)?),
            },
        };
        let bom = if text.as_ref().starts_with("\u{feff}".as_bytes()) {
            3
        } else {
            0
        };
        let mut cursor = std::io::Cursor::new(text.clone());
        cursor.set_position(bom as u64);
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(cursor);
        let headers = reader
            .headers()
            .map_err(|e| {
                Error::invalid_with(
                    "file",
                    "err-import-header-unreadable",
                    vec![("why", e.to_string())],
                )
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Records {
            headers,
            inner: Inner::Csv {
                reader,
                text,
                at: bom,
                base: bom,
                line: 1,
            },
            record: csv::StringRecord::new(),
        })
    }

    fn xlsx(bytes: &[u8]) -> Result<Records<'a>, Error> {
        use calamine::Reader;
        let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(
            bytes,
        ))
        .map_err(|e: calamine::XlsxError| {
            Error::invalid_with(
                "file",
                "err-import-excel-unreadable",
                vec![("why", e.to_string())],
            )
        })?;
        let range = wb
            .worksheet_range_at(0)
            .ok_or_else(|| Error::invalid("file", "err-import-excel-no-sheet"))?
            .map_err(|e| {
                Error::invalid_with(
                    "file",
                    "err-import-sheet-unreadable",
                    vec![("why", e.to_string())],
                )
            })?;
        let headers = range
            .rows()
            .next()
            .map(|r| r.iter().map(|c| cell_text(c).trim().to_string()).collect())
            .unwrap_or_default();
        Ok(Records {
            headers,
            inner: Inner::Xlsx { range, next: 1 },
            record: csv::StringRecord::new(),
        })
    }

    /// The header line's cells, trimmed.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The next row that is not blank, with its line number; None at the end.
    pub fn next_record(&mut self) -> Result<Option<(usize, &csv::StringRecord)>, Error> {
        loop {
            match &mut self.inner {
                Inner::Csv {
                    reader,
                    text,
                    at,
                    base,
                    line,
                } => {
                    let read = reader
                        .read_record(&mut self.record)
                        .map_err(|e| Error::invalid("file", format!("line {}: {e}", *line + 1)))?;
                    if !read {
                        return Ok(None);
                    }
                    // Line numbers as an editor shows them: the csv crate's own skip blank
                    // lines (and miscount with CRLF), so they are counted from each record's
                    // byte offset.
                    let bytes = text.as_ref();
                    let mut start = self
                        .record
                        .position()
                        .map_or(*at, |p| p.byte() as usize + *base)
                        .max(*at);
                    while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
                        start += 1;
                    }
                    *line += bytes[*at..start].iter().filter(|b| **b == b'\n').count();
                    *at = start;
                    if self.record.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    return Ok(Some((*line, &self.record)));
                }
                Inner::Xlsx { range, next } => {
                    let i = *next;
                    let Some(row) = range.rows().nth(i) else {
                        return Ok(None);
                    };
                    *next += 1;
                    self.record.clear();
                    for c in row {
                        self.record.push_field(&cell_text(c));
                    }
                    if self.record.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    return Ok(Some((i + 1, &self.record)));
                }
            }
        }
    }
}

fn decode_cp932(bytes: &[u8]) -> Result<std::sync::Arc<[u8]>, Error> {
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(bytes);
    if bad {
        return Err(Error::invalid(
            "file",
            "the file is neither UTF-8 nor CP932 (Shift_JIS); save it as CSV UTF-8 or Excel",
        ));
    }
    Ok(std::sync::Arc::from(text.into_owned().into_bytes()))
}

/// A cell as text: dates as YYYY-MM-DD, whole numbers without ".0" (phone numbers and codes
/// typed as numbers).
fn cell_text(c: &calamine::Data) -> String {
    use calamine::{Data, DataType};
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
        Data::Int(i) => i.to_string(),
        Data::DateTime(_) | Data::DateTimeIso(_) => c
            .as_date()
            .map(|d| d.to_string())
            .unwrap_or_else(|| c.to_string()),
        other => other.to_string(),
    }
}

/// A row's cells by column.
pub trait Cells {
    /// The text of cell `i` (None past the row's last cell).
    fn cell(&self, i: usize) -> Option<&str>;
}

impl Cells for Row<'_> {
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i)
    }
}

impl Cells for csv::StringRecord {
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i)
    }
}

impl Cells for [String] {
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i).map(String::as_str)
    }
}

/// One row in the import format: our field → value (dates as YYYY-MM-DD), or the problems.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub line: usize,
    pub fields: BTreeMap<&'static str, String>,
}

impl Mapping {
    /// Checks the file's headers: the case number's column must be there; returns the
    /// columns of our fields found (index per field).
    pub fn columns_of(&self, headers: &[String]) -> Result<Vec<(&'static str, usize)>, Error> {
        let mut found = Vec::new();
        for (f, _) in IMPORT_FIELDS {
            if let Some(i) = headers.iter().position(|h| h == self.header_of(f)) {
                found.push((*f, i));
            }
        }
        if !found.iter().any(|(f, _)| *f == "case_number") {
            return Err(Error::invalid(
                "file",
                format!(
                    "no column '{}' for the case number; the headers are: {}",
                    self.header_of("case_number"),
                    headers.join(", ")
                ),
            ));
        }
        Ok(found)
    }

    /// A row mapped to our fields: codes translated, dates normalised; the problems of the
    /// row (field and why) when a date or a code cannot be read.
    pub fn map_row(
        &self,
        columns: &[(&'static str, usize)],
        line: usize,
        cells: &(impl Cells + ?Sized),
    ) -> Result<Mapped, Vec<FieldError>> {
        let mut fields = BTreeMap::new();
        let mut problems = Vec::new();
        for (f, i) in columns {
            let raw = cells.cell(*i).map(str::trim).unwrap_or("");
            if raw.is_empty() {
                continue;
            }
            let v = match self.values.get(*f) {
                Some(table) => match table.get(raw) {
                    Some(v) => v.clone(),
                    None if table.values().any(|v| v == raw) => raw.to_string(),
                    None => {
                        problems.push(FieldError::new(
                            *f,
                            "err-import-not-mapped".into(),
                            vec![
                                ("value", raw.to_string()),
                                (
                                    "values",
                                    table.keys().cloned().collect::<Vec<_>>().join(", "),
                                ),
                            ],
                        ));
                        continue;
                    }
                },
                None => raw.to_string(),
            };
            let v = if DATE_FIELDS.contains(f) {
                match self.date(&v) {
                    Ok(d) => d.to_string(),
                    Err((key, args)) => {
                        problems.push(FieldError::new(*f, key.to_string(), args));
                        continue;
                    }
                }
            } else {
                v
            };
            fields.insert(*f, v);
        }
        if !fields.contains_key("case_number") {
            problems.push(FieldError::new(
                "case_number",
                "err-import-case-empty".into(),
                Vec::new(),
            ));
        }
        if problems.is_empty() {
            Ok(Mapped { line, fields })
        } else {
            Err(problems)
        }
    }
}

/// The earlier case number a re-positive row names in its remarks (「再陽性」 and a number of
/// four or more digits), if any.
pub fn repositive_of(remarks: &str) -> Option<String> {
    if !remarks.contains("再陽性") {
        return None;
    }
    let folded: String = remarks
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            c => c,
        })
        .collect();
    folded
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .filter(|w| w.chars().filter(char::is_ascii_digit).count() >= 4)
        .map(str::to_string)
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_nesid_mapping_parses() {
        let m = Mapping::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/nesid.mapping.toml"),
        )
        .unwrap();
        assert_eq!(m.source, "nesid");
        assert_eq!(m.date("令和2年5月1日").unwrap().to_string(), "2020-05-01");
        assert_eq!(m.date("2020/5/1").unwrap().to_string(), "2020-05-01");
        assert_eq!(
            m.date("平成31年5月1日").unwrap_err().0,
            "err-import-after-era"
        );
    }

    #[test]
    fn a_bad_mapping_is_named() {
        let e =
            Mapping::parse("m.toml", "source = \"x\"\n[columns]\nnmae = \"氏名\"\n").unwrap_err();
        assert!(e.contains("'nmae' is not a field"), "{e}");
        let e = Mapping::parse("m.toml", "source = \"x\"\nencoding = \"latin1\"\n").unwrap_err();
        assert!(e.contains("latin1"), "{e}");
    }

    #[test]
    fn remarks_name_the_earlier_case() {
        assert_eq!(
            repositive_of("再陽性（前回 NESID番号 ２０２００１２３）").as_deref(),
            Some("20200123")
        );
        assert_eq!(repositive_of("再陽性 2020-0042"), Some("2020-0042".into()));
        assert_eq!(repositive_of("濃厚接触者 20200123"), None);
    }

    #[test]
    fn csv_in_cp932_and_utf8_with_bom_read_alike() {
        let text = "NESID番号,氏名\r\n1001,髙橋 一郎\r\n\r\n1002,山田 花子\r\n";
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(text);
        let a = read(&sjis, "auto").unwrap();
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        let b = read(&bom, "auto").unwrap();
        assert_eq!(a.headers, vec!["NESID番号", "氏名"]);
        assert_eq!(a.headers, b.headers);
        assert_eq!(a, b);
        assert_eq!(a.row(1).line, 4, "line numbers count the blank line");
        assert_eq!(a.row(1).cells().collect::<Vec<_>>(), ["1002", "山田 花子"]);
        assert_eq!(a.row(0).get(2), None);
        assert!(read(&sjis, "utf-8").is_err());
    }
}
