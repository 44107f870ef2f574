//! Validation messages in the request's language. The store writes its reasons in English
//! (they are also the API's default); this table gives each its Japanese, including those
//! with values in them. A reason not in the table is shown as it is.
use mimamori_core::domain::Lang;

tokio::task_local! {
    /// The language of the request being handled (set by [`super::lang_layer`]).
    pub static REQUEST_LANG: Lang;
}

/// The current request's language (Japanese outside a request).
pub fn current() -> Lang {
    REQUEST_LANG.try_with(|l| *l).unwrap_or(Lang::Ja)
}

/// `reason` in `lang`.
pub fn localise(lang: Lang, reason: &str) -> String {
    match lang {
        Lang::En => reason.to_string(),
        Lang::Ja => ja(reason).unwrap_or_else(|| reason.to_string()),
    }
}

const EXACT: &[(&str, &str)] = &[
    (
        "a move cannot be dated in the future; record it on the day",
        "未来の日付の移動は記録できません。移動した日に記録してください",
    ),
    (
        "a phone number has 10 or 11 digits in Japan (090-1234-5678); only digits, spaces, hyphens and a leading + are allowed",
        "電話番号は10桁か11桁です（例：090-1234-5678）。数字・スペース・ハイフン・先頭の＋だけが使えます",
    ),
    (
        "a phone number is needed for the sms and voice channels",
        "SMS・自動音声電話には電話番号が必要です",
    ),
    (
        "a symptomatic patient's onset date is required",
        "有症状の患者は発症日が必須です",
    ),
    (
        "an asymptomatic carrier's specimen date is required",
        "無症状病原体保有者は検体採取日が必須です",
    ),
    (
        "an e-mail address is needed for the email channel",
        "メールで連絡するにはメールアドレスが必要です",
    ),
    ("at most 6 check-ins a day", "連絡は1日6回までです"),
    ("at most 30 household members", "同居者は30人までです"),
    (
        "choose a different record to merge into this one",
        "この記録とは別の記録を選んでください",
    ),
    (
        "choose discharged, died, transferred or in_hospital",
        "discharged（退院）・died（死亡）・transferred（転院）・in_hospital（入院中）から選んでください",
    ),
    (
        "choose home, hospital, lodging, welfare or other",
        "自宅・入院・宿泊療養施設・社会福祉施設・その他から選んでください",
    ),
    (
        "choose ja or en",
        "ja（日本語）か en（英語）を選んでください",
    ),
    (
        "choose male, female, other or unknown",
        "男性・女性・その他・不明から選んでください",
    ),
    (
        "choose one of sms, email, voice",
        "SMS・メール・自動音声電話から選んでください",
    ),
    (
        "choose patient or contact",
        "患者か濃厚接触者を選んでください",
    ),
    (
        "discharge cannot come before admission",
        "退院日が入院日より前になっています",
    ),
    (
        "enter the end date, or an onset, specimen or last-exposure date to compute it",
        "観察終了日を入力するか、発症日・検体採取日・最終接触日を入力してください（自動計算されます）",
    ),
    ("enter the person's name", "氏名を入力してください"),
    (
        "every member needs a name",
        "同居者ごとに氏名を入力してください",
    ),
    ("give the date of death", "死亡日を入力してください"),
    (
        "no behaviour-history entry with this id for this case",
        "この患者の行動歴にこのIDはありません",
    ),
    (
        "no case with this id at your health centre",
        "このIDの患者はこの保健所にいません",
    ),
    (
        "no health centre with this id; leave it empty for your usual centre",
        "このIDの保健所はありません。空欄にするといつもの保健所になります",
    ),
    (
        "not an e-mail address; write it like name@example.jp",
        "メールアドレスの形式ではありません（例：name@example.jp）",
    ),
    (
        "required on the occurrence report; write YYYY-MM-DD",
        "発生届の必須項目です。YYYY-MM-DD の形で入力してください",
    ),
    (
        "say why the observation period changes (e.g. symptoms have not eased)",
        "観察期間を変える理由を入力してください（例：症状が軽快していない）",
    ),
    (
        "the date is in the future; check it",
        "未来の日付になっています。確認してください",
    ),
    (
        "the end date must be on or after the start date",
        "終了日は開始日以降にしてください",
    ),
    (
        "the person is reached by e-mail; keep an address, or change the channel first",
        "この人にはメールで連絡しています。アドレスを残すか、先に連絡方法を変えてください",
    ),
    (
        "the person is reached by phone; keep a number, or change the channel first",
        "この人には電話で連絡しています。番号を残すか、先に連絡方法を変えてください",
    ),
    (
        "the result cannot come before the specimen was taken",
        "結果判明日が検体採取日より前になっています",
    ),
    (
        "this merge has already been undone",
        "この統合はすでに取り消されています",
    ),
    (
        "this person has no e-mail address; add one first or choose sms or voice",
        "メールアドレスが登録されていません。先に登録するか、SMS・電話を選んでください",
    ),
    (
        "this person has no phone number; add one first or choose email",
        "電話番号が登録されていません。先に登録するか、メールを選んでください",
    ),
    (
        "this record has already been merged",
        "この記録はすでに統合されています",
    ),
    (
        "use the two-digit JIS code, 01 (Hokkaido) to 47 (Okinawa)",
        "2桁の都道府県コード（01 北海道〜47 沖縄県）で入力してください",
    ),
    (
        "weeks of pregnancy: 0 to 45",
        "妊娠週数は0〜45で入力してください",
    ),
    (
        "where was it? a name or an address",
        "場所の名前か住所を入力してください",
    ),
    (
        "write SpO2 as a whole number such as 97",
        "SpO2 は 97 のような整数で入力してください",
    ),
    (
        "write the date as YYYY-MM-DD, for example 2026-11-24",
        "日付は YYYY-MM-DD の形で入力してください（例：2026-11-24）",
    ),
    (
        "write the number with its area code (090-1234-5678) or in international form (+81 90 1234 5678)",
        "市外局番から（090-1234-5678）か国際形式（+81 90 1234 5678）で入力してください",
    ),
    (
        "write the temperature as a number such as 36.5",
        "体温は 36.5 のような数字で入力してください",
    ),
    (
        "write the time as HH:MM, for example 09:00",
        "時刻は HH:MM の形で入力してください（例：09:00）",
    ),
    (
        "the diagnosing doctor's name is required",
        "診断した医師の氏名は必須です",
    ),
    (
        "the medical institution's name is required",
        "医療機関名は必須です",
    ),
    ("the patient's sex is required", "患者の性別は必須です"),
    (
        "the patient's date of birth is required",
        "患者の生年月日は必須です",
    ),
    (
        "the patient's address (municipality) is required",
        "患者の住所（市区町村）は必須です",
    ),
    (
        "the patient's phone number is required to contact them",
        "患者への連絡のため電話番号は必須です",
    ),
    (
        "give the id of the other record",
        "統合する記録のIDを入力してください",
    ),
    ("an age in years", "年齢（歳）で入力してください"),
    ("at most 200 a day", "1日200本までで入力してください"),
    (
        "record what was done before resolving an urgent or high case",
        "緊急・高の案件は、行った対応を記録してから解決にしてください",
    ),
    (
        "confirm that this urgent or high case is resolved",
        "対応が済んだことの確認欄にチェックしてください",
    ),
    (
        "only your own last step of the past 10 minutes can be undone",
        "取り消せるのは、ご自分が10分以内に行った最後の操作だけです",
    ),
    (
        "choose one of reached, no_answer, busy, wrong_number",
        "電話の結果を選んでください",
    ),
    ("at most 2000 characters", "2000文字以内で入力してください"),
    (
        "choose one of phoned, arranged_admission, advised, other",
        "対応内容を一覧から選んでください",
    ),
];

fn ja(reason: &str) -> Option<String> {
    if let Some((_, j)) = EXACT.iter().find(|(e, _)| *e == reason) {
        return Some(j.to_string());
    }
    // Messages with values in them.
    let between = |s: &str, a: &str, b: &str| {
        s.strip_prefix(a)
            .and_then(|r| r.strip_suffix(b))
            .map(str::to_string)
    };
    if let Some(n) = between(reason, "use at most ", " characters") {
        return Some(format!("{n}文字以内で入力してください"));
    }
    if let Some(list) = reason.strip_prefix("choose one of: ") {
        return Some(format!("次のいずれかを選んでください：{list}"));
    }
    if let Some(v) = between(
        reason,
        "",
        " % is outside 50–100 %; check the oximeter reading",
    ) {
        return Some(format!(
            "{v} % は 50〜100 % の範囲外です。パルスオキシメーターの値を確認してください"
        ));
    }
    if let Some(rest) = reason.strip_suffix(" °C; check the thermometer reading")
        && let Some((v, range)) = rest.split_once(" °C is outside ")
    {
        return Some(format!(
            "{v} ℃ は {} ℃ の範囲外です。体温計の値を確認してください",
            range.replace('–', "〜")
        ));
    }
    if let Some(rest) = reason.strip_prefix("the rules (")
        && let Some((rule, rest)) = rest.split_once(") end the period on ")
        && let Some((end, rest)) = rest.split_once("; give a reason to end it on ")
        && let Some(wanted) = rest.strip_suffix(", or leave observation_end empty")
    {
        return Some(format!(
            "規則（{rule}）では観察終了日は {end} です。{wanted} にする場合は理由を入力するか、観察終了日を空欄にしてください"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_valued_messages_have_japanese() {
        assert_eq!(
            localise(Lang::Ja, "enter the person's name"),
            "氏名を入力してください"
        );
        assert_eq!(
            localise(Lang::En, "enter the person's name"),
            "enter the person's name"
        );
        assert_eq!(
            localise(Lang::Ja, "use at most 100 characters"),
            "100文字以内で入力してください"
        );
        assert_eq!(
            localise(
                Lang::Ja,
                "45.0 °C is outside 34.0–43.0 °C; check the thermometer reading"
            ),
            "45.0 ℃ は 34.0〜43.0 ℃ の範囲外です。体温計の値を確認してください"
        );
        assert_eq!(
            localise(
                Lang::Ja,
                "the rules (2022-09-07) end the period on 2026-12-01; give a reason to end it on 2026-12-05, or leave observation_end empty"
            ),
            "規則（2022-09-07）では観察終了日は 2026-12-01 です。2026-12-05 にする場合は理由を入力するか、観察終了日を空欄にしてください"
        );
        assert_eq!(localise(Lang::Ja, "something new"), "something new");
    }
}
