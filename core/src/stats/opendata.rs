//! Open data in the national format [自治体標準オープンデータセット] (COVID-19 items), as
//! municipalities publish it. Item definitions (statistics-and-publication.md; the
//! smart-data-models mirror `covid-19/data_model.ja`):
//!
//! **陽性患者属性** — one row per published case:
//! | item | here |
//! |---|---|
//! | No | running number in the file (not the record id) |
//! | 全国地方公共団体コード | 6 digits with check digit: the publishing body's code (`health_centres.lg_code`, else the prefecture's) |
//! | 都道府県名 | the prefecture of the health centre |
//! | 市区町村名 | the municipality running the centre; blank for a prefecture-run centre |
//! | 公表_年月日 | the report day (see `stats` "new case") |
//! | 発症_年月日 | onset date, blank when unknown |
//! | 患者_居住地 | prefecture + municipality of residence — never the address below it |
//! | 患者_年代 | 10歳未満, 10代 … 80代, 90歳以上; blank when unknown |
//! | 患者_性別 | 男性, 女性, その他; blank when unknown |
//! | 患者_職業 | blank: free text is never published |
//! | 患者_状態 | 無症状, 軽症, 中等症, 重症, 死亡 (latest); blank when unknown |
//! | 患者_症状 | blank: free text is never published |
//! | 患者_渡航歴の有無フラグ | blank (not recorded as a flag) |
//! | 患者_退院済フラグ | 1 released (period over, alive, not in hospital), 0 not yet |
//! | 備考 | 再陽性 for a re-positive case |
//!
//! **検査実施人数** — one row per day: 実施_年月日, 全国地方公共団体コード, 都道府県名,
//! 市区町村名, 検査実施_人数 (people tested that specimen day), 備考.
//!
//! Files are UTF-8 with a byte-order mark by default, or CP932 (Shift_JIS as Windows writes
//! it) on request; a character CP932 lacks becomes `?`. No name, date of birth, address,
//! phone or free text is ever read into these files.

pub const PATIENTS_HEADER: [&str; 15] = [
    "No",
    "全国地方公共団体コード",
    "都道府県名",
    "市区町村名",
    "公表_年月日",
    "発症_年月日",
    "患者_居住地",
    "患者_年代",
    "患者_性別",
    "患者_職業",
    "患者_状態",
    "患者_症状",
    "患者_渡航歴の有無フラグ",
    "患者_退院済フラグ",
    "備考",
];

pub const TESTS_HEADER: [&str; 6] = [
    "実施_年月日",
    "全国地方公共団体コード",
    "都道府県名",
    "市区町村名",
    "検査実施_人数",
    "備考",
];

/// The 6-digit local government code [全国地方公共団体コード] of a 5-digit one: the check
/// digit is (11 − Σ digit × (6,5,4,3,2) mod 11) mod 10. A 6-digit code is checked.
pub fn lg_code(code: &str) -> Option<String> {
    let digits: Vec<u32> = code
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    if digits.len() != 5 && digits.len() != 6 {
        return None;
    }
    let sum: u32 = digits[..5]
        .iter()
        .zip([6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    let check = (11 - sum % 11) % 10;
    if digits.len() == 6 && digits[5] != check {
        return None;
    }
    Some(format!("{}{check}", &code[..5]))
}

/// The code of a prefecture (JIS two digits → e.g. 13 → 130001).
pub fn prefecture_code(jis: &str) -> String {
    lg_code(&format!("{jis:0>2}000")).unwrap_or_default()
}

pub fn age_label(band: &str) -> &'static str {
    match band {
        "u10" => "10歳未満",
        "10s" => "10代",
        "20s" => "20代",
        "30s" => "30代",
        "40s" => "40代",
        "50s" => "50代",
        "60s" => "60代",
        "70s" => "70代",
        "80s" => "80代",
        "90+" => "90歳以上",
        _ => "",
    }
}

pub fn sex_label(sex: &str) -> &'static str {
    match sex {
        "male" => "男性",
        "female" => "女性",
        "other" => "その他",
        _ => "",
    }
}

pub fn state_label(sev: &str) -> &'static str {
    match sev {
        "asymptomatic" => "無症状",
        "mild" => "軽症",
        "moderate" => "中等症",
        "severe" => "重症",
        "dead" => "死亡",
        _ => "",
    }
}

/// The character encoding of a published file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Utf8Bom,
    Cp932,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        match s.to_ascii_lowercase().as_str() {
            "" | "utf-8" | "utf8" => Some(Encoding::Utf8Bom),
            "cp932" | "shift_jis" | "sjis" | "windows-31j" => Some(Encoding::Cp932),
            _ => None,
        }
    }
    pub fn charset(self) -> &'static str {
        match self {
            Encoding::Utf8Bom => "utf-8",
            Encoding::Cp932 => "Shift_JIS",
        }
    }
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 * 1024))
}

/// Writes CSV rows into chunks of bytes in the chosen encoding (the first chunk carries the
/// BOM for UTF-8): what a streaming response sends as it goes.
pub struct CsvChunks {
    enc: Encoding,
    w: csv::Writer<Vec<u8>>,
    started: bool,
}

impl CsvChunks {
    pub fn new(enc: Encoding) -> CsvChunks {
        CsvChunks {
            enc,
            w: writer(),
            started: false,
        }
    }

    /// Writes one row. A cell a spreadsheet would run as a formula (starting with `=`, `+`,
    /// `-`, `@`, a tab or a carriage return) gets a leading `'` (OWASP CSV injection); a
    /// negative number is left alone.
    pub fn row<I, T>(&mut self, fields: I)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        // Field by field, copying only a cell that needs its leading `'`; writing into a Vec
        // cannot fail.
        for f in fields {
            let f = f.as_ref();
            if f.starts_with(['=', '+', '-', '@', '\t', '\r']) && f.parse::<f64>().is_err() {
                let _ = self.w.write_field(format!("'{f}"));
            } else {
                let _ = self.w.write_field(f);
            }
        }
        let _ = self.w.write_record(None::<&[u8]>);
    }

    /// Bytes buffered so far (approximately: the CSV writer keeps a small buffer of its own).
    pub fn len(&self) -> usize {
        self.w.get_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes what was written so far, encoded.
    pub fn take(&mut self) -> Vec<u8> {
        let w = std::mem::replace(&mut self.w, writer());
        let utf8 = w.into_inner().unwrap_or_default();
        let mut out = Vec::with_capacity(utf8.len() + 3);
        match self.enc {
            Encoding::Utf8Bom => {
                if !self.started {
                    out.extend_from_slice(b"\xEF\xBB\xBF");
                }
                out.extend_from_slice(&utf8);
            }
            Encoding::Cp932 => {
                let s = String::from_utf8_lossy(&utf8);
                let mut enc = encoding_rs::SHIFT_JIS.new_encoder();
                let mut src: &str = &s;
                let mut buf = vec![0u8; s.len() * 2 + 16];
                loop {
                    let (res, read, written) =
                        enc.encode_from_utf8_without_replacement(src, &mut buf, true);
                    out.extend_from_slice(&buf[..written]);
                    src = &src[read..];
                    match res {
                        encoding_rs::EncoderResult::InputEmpty => break,
                        encoding_rs::EncoderResult::Unmappable(_) => out.push(b'?'),
                        encoding_rs::EncoderResult::OutputFull => {}
                    }
                }
            }
        }
        self.started = true;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_government_codes_carry_their_check_digit() {
        assert_eq!(prefecture_code("13"), "130001");
        assert_eq!(prefecture_code("1"), "010006");
        assert_eq!(lg_code("13104").as_deref(), Some("131041")); // 新宿区: remainder 0
        assert_eq!(lg_code("01100").as_deref(), Some("011002")); // 札幌市
        assert_eq!(lg_code("131016").as_deref(), Some("131016"));
        assert_eq!(lg_code("131017"), None);
        assert_eq!(lg_code("1310"), None);
    }

    #[test]
    fn cp932_and_bom() {
        let mut c = CsvChunks::new(Encoding::Cp932);
        c.row(["東京都", "髙", "😀"]);
        let bytes = c.take();
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert_eq!(text, "東京都,髙,?\r\n");
        let mut u = CsvChunks::new(Encoding::Utf8Bom);
        u.row(["a,b", "c"]);
        assert_eq!(u.take(), b"\xEF\xBB\xBF\"a,b\",c\r\n");
        u.row(["d", "=HYPERLINK(1)", "-3"]);
        assert_eq!(u.take(), b"d,'=HYPERLINK(1),-3\r\n");
    }
}
