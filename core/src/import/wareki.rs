//! Japanese era dates [和暦]: 令和2年5月1日, 令和元年5月1日, 平成31年4月30日, R2.5.1, H31/4/30,
//! S40-1-2, with full-width digits. Written here rather than taken from a crate: the crates
//! found (2026-12) are small, unmaintained and do not check that a date lies inside its era
//! (平成31年5月1日 does not exist), which an import must refuse by name.
use chrono::NaiveDate;

/// (kanji, letter, first day of the era).
const ERAS: [(&str, char, (i32, u32, u32)); 5] = [
    ("令和", 'R', (2019, 5, 1)),
    ("平成", 'H', (1989, 1, 8)),
    ("昭和", 'S', (1926, 12, 25)),
    ("大正", 'T', (1912, 7, 30)),
    ("明治", 'M', (1868, 1, 25)),
];

/// Why a text is not an era date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wareki {
    /// Not written as an era date at all.
    NotWareki,
    /// An era date that does not exist (outside its era, or no such day): the message's
    /// catalogue key and its arguments.
    Invalid(super::Why),
}

/// Parses an era date.
pub fn parse(s: &str) -> Result<NaiveDate, Wareki> {
    let s: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            'Ｒ' | 'ｒ' | 'r' => 'R',
            'Ｈ' | 'ｈ' | 'h' => 'H',
            'Ｓ' | 'ｓ' | 's' => 'S',
            'Ｔ' | 'ｔ' | 't' => 'T',
            'Ｍ' | 'ｍ' | 'm' => 'M',
            '．' => '.',
            '／' => '/',
            '－' | 'ー' => '-',
            ' ' | '　' => ' ',
            c => c,
        })
        .collect();
    let s = s.replace(' ', "");
    let (era, rest) = ERAS
        .iter()
        .find_map(|e| {
            s.strip_prefix(e.0)
                .or_else(|| s.strip_prefix(e.1))
                .map(|r| (e, r))
        })
        .ok_or(Wareki::NotWareki)?;
    let rest = rest.replacen("元", "1", 1);
    let nums: Vec<&str> = rest
        .split(['年', '月', '日', '.', '/', '-'])
        .filter(|x| !x.is_empty())
        .collect();
    if nums.len() != 3 || nums.iter().any(|n| !n.chars().all(|c| c.is_ascii_digit())) {
        return Err(Wareki::NotWareki);
    }
    let n = |i: usize| nums[i].parse::<u32>().unwrap_or(0);
    let (y, m, d) = (n(0), n(1), n(2));
    let start = NaiveDate::from_ymd_opt(era.2.0, era.2.1, era.2.2).expect("era start");
    let year = era.2.0 + y as i32 - 1;
    let date = NaiveDate::from_ymd_opt(year, m, d).ok_or_else(|| {
        Wareki::Invalid(("err-import-no-such-day", vec![("value", s.to_string())]))
    })?;
    if y == 0 || date < start {
        return Err(Wareki::Invalid((
            "err-import-before-era",
            vec![
                ("value", s.to_string()),
                ("era", era.0.to_string()),
                ("start", start.to_string()),
            ],
        )));
    }
    // After the next era began (the era list is newest first).
    let pos = ERAS.iter().position(|e| e.0 == era.0).unwrap_or(0);
    if pos > 0 {
        let next = ERAS[pos - 1].2;
        let next = NaiveDate::from_ymd_opt(next.0, next.1, next.2).expect("era start");
        if date >= next {
            return Err(Wareki::Invalid((
                "err-import-after-era",
                vec![
                    ("value", s.to_string()),
                    ("era", era.0.to_string()),
                    ("end", next.pred_opt().unwrap_or(next).to_string()),
                ],
            )));
        }
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn era_dates_as_people_write_them() {
        for (text, want) in [
            ("令和2年5月1日", "2020-05-01"),
            ("令和元年5月1日", "2019-05-01"),
            ("令和２年１２月３日", "2020-12-03"),
            ("平成31年4月30日", "2019-04-30"),
            ("平成元年1月8日", "1989-01-08"),
            ("昭和40年1月2日", "1965-01-02"),
            ("R2.5.1", "2020-05-01"),
            ("H31/4/30", "2019-04-30"),
            ("S40-1-2", "1965-01-02"),
            ("r3.1.1", "2021-01-01"),
            ("大正15年12月24日", "1926-12-24"),
        ] {
            assert_eq!(parse(text), Ok(d(want)), "{text}");
        }
    }

    #[test]
    fn dates_outside_their_era_are_refused_by_name() {
        assert!(matches!(parse("平成31年5月1日"), Err(Wareki::Invalid(_))));
        assert!(matches!(parse("令和元年4月30日"), Err(Wareki::Invalid(_))));
        assert!(matches!(parse("令和2年2月30日"), Err(Wareki::Invalid(_))));
        assert!(matches!(parse("昭和64年1月8日"), Err(Wareki::Invalid(_))));
        assert_eq!(parse("2020-05-01"), Err(Wareki::NotWareki));
        assert_eq!(parse("令和"), Err(Wareki::NotWareki));
    }
}
