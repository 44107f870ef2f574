//! Changing a person: how they are reached (re-planning today in the same transaction) and
//! their basic information.
use super::*;

/// Changes how a person is reached and, in the same transaction, re-plans today: check-ins
/// not yet sent move to the new times, those of removed times are cancelled, new times are
/// planned (a time already past is due at once). Sent check-ins stay open for an answer;
/// later days follow the nightly planning. A new channel applies from the next send.
/// Needs write access to health observation. Audited.
pub async fn update_schedule(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    change: &ScheduleChange,
    window: chrono::Duration,
    ip: Option<&str>,
) -> Result<()> {
    check(
        db,
        Access::Staff(viewer),
        id,
        FieldGroup::HealthObservation,
        Action::Write,
    )
    .await?;
    let person = load(db, id).await?;
    let centre = crate::store::staff::health_centre(db, person.health_centre_id).await?;
    let channel = change
        .channel
        .map(|c| c.as_str().to_string())
        .unwrap_or(person.channel.clone());
    let fallback = match change.fallback_channel {
        Some(f) => f.map(|c| c.as_str().to_string()),
        None => person.fallback_channel.clone(),
    };
    let mut c = Collect::default();
    for (field, ch) in [
        ("channel", Some(&channel)),
        ("fallback_channel", fallback.as_ref()),
    ] {
        match ch.map(String::as_str) {
            Some("sms" | "voice") if person.phone.is_none() => c.push(
                field,
                "err-this-person-has-no-phone-number-add-one-first-or",
            ),
            Some("email") if person.email.is_none() => {
                c.push(field, "err-this-person-has-no-e-mail-address-add-one-first")
            }
            _ => {}
        }
    }
    c.finish()?;
    let t = now();
    let plans = match &change.slots {
        Some(slots) => Some(
            slots
                .iter()
                .map(|m| checkins::PersonPlan::today(&centre.time_zone, *m, t, window))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let language = change
        .language
        .map(|l| l.as_str().to_string())
        .unwrap_or(person.language.clone());
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE persons SET channel = $1, fallback_channel = $2, language = $3, updated_at = $4,
                     slow_speech = COALESCE($6, slow_speech) WHERE id = $5")
            .bind(&channel).bind(fallback.as_deref()).bind(&language).bind(t).bind(id).bind(change.slow_speech)
            .execute(&mut *tx).await?;
        if let (Some(slots), Some(plans)) = (&change.slots, &plans) {
            sqlx::query("DELETE FROM person_slots WHERE person_id = $1").bind(id).execute(&mut *tx).await?;
            let today = plans.first().map(|p| p.local_date);
            // Today's unsent check-ins of times that are gone end as cancelled.
            sqlx::query("UPDATE checkins SET status = 'cancelled', closed_at = $1, claim_token = NULL
                         WHERE person_id = $2 AND local_date = $3 AND status = 'planned' AND slot >= $4")
                .bind(t).bind(id).bind(today).bind(slots.len() as i32).execute(&mut *tx).await?;
            for (slot, (minutes, plan)) in slots.iter().zip(plans).enumerate() {
                sqlx::query("INSERT INTO person_slots (person_id, slot, minutes) VALUES ($1, $2, $3)")
                    .bind(id).bind(slot as i32).bind(*minutes).execute(&mut *tx).await?;
                // Unsent (or cancelled by an earlier change): planned at the new time. Sent
                // or answered: left alone.
                sqlx::query("UPDATE checkins SET due_at = $1, deadline_at = $2, status = 'planned', closed_at = NULL
                             WHERE person_id = $3 AND local_date = $4 AND slot = $5
                               AND ((status = 'planned' AND attempts = 0) OR status = 'cancelled')
                               AND EXISTS (SELECT 1 FROM persons p WHERE p.id = $3 AND p.status = 'observing')")
                    .bind(plan.due_at).bind(plan.deadline_at).bind(id).bind(plan.local_date).bind(slot as i32)
                    .execute(&mut *tx).await?;
                sqlx::query(checkins::PLAN_PERSON_SQL)
                    .bind(plan.local_date).bind(plan.due_at).bind(plan.deadline_at).bind(id).bind(slot as i32)
                    .execute(&mut *tx).await?;
            }
        }
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.schedule", "person", Some(id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Applies a [`BasicInput`] in one transaction after checking every given field (each
/// problem named, nothing written when any is wrong). The person must stay reachable on
/// their channel. Needs write access to basic information. Audited.
pub async fn update_basic(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    b: &BasicInput,
    ip: Option<&str>,
) -> Result<()> {
    check(
        db,
        Access::Staff(viewer),
        id,
        FieldGroup::Basic,
        Action::Write,
    )
    .await?;
    let cur = load(db, id).await?;
    let mut c = Collect::default();
    let pick = |v: &Option<String>, cur: &Option<String>| match v {
        Some(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        None => cur.clone(),
    };
    let name = match &b.name {
        Some(n) if n.trim().is_empty() => {
            c.push("name", "err-enter-the-person-s-name");
            cur.name.clone()
        }
        Some(n) if n.chars().count() > 100 => {
            c.push("name", "err-use-at-most-100-characters");
            cur.name.clone()
        }
        Some(n) => n.trim().to_string(),
        None => cur.name.clone(),
    };
    let phone = match pick(&b.phone, &cur.phone) {
        Some(p) if b.phone.is_some() => c
            .take(Phone::parse("phone", &p))
            .map(|p| p.as_str().to_string()),
        other => other,
    };
    let email = match pick(&b.email, &cur.email) {
        Some(e) if b.email.is_some() => c
            .take(Email::parse("email", &e))
            .map(|e| e.as_str().to_string()),
        other => other,
    };
    for ch in std::iter::once(cur.channel.as_str()).chain(cur.fallback_channel.as_deref()) {
        match ch {
            "sms" | "voice" if phone.is_none() => c.push(
                "phone",
                "err-the-person-is-reached-by-phone-keep-a-number-or",
            ),
            "email" if email.is_none() => c.push(
                "email",
                "err-the-person-is-reached-by-e-mail-keep-an-address",
            ),
            _ => {}
        }
    }
    let date_of_birth = match &b.date_of_birth {
        Some(d) if d.trim().is_empty() => None,
        Some(d) => c.take(parse_date("date_of_birth", d)),
        None => cur.date_of_birth,
    };
    let sex = match &b.sex {
        Some(s) if s.trim().is_empty() => None,
        Some(s) => match ["male", "female", "other", "unknown"]
            .into_iter()
            .find(|x| *x == s.trim())
        {
            Some(x) => Some(x.to_string()),
            None => {
                c.push("sex", "err-choose-male-female-other-or-unknown");
                None
            }
        },
        None => cur.sex.clone(),
    };
    let prefecture_code = pick(&b.prefecture_code, &cur.prefecture_code);
    if b.prefecture_code.is_some()
        && let Some(p) = &prefecture_code
        && !(p.len() == 2 && p.parse::<u8>().is_ok_and(|n| (1..=47).contains(&n)))
    {
        c.push(
            "prefecture_code",
            "err-use-the-two-digit-jis-code-01-hokkaido-to-47",
        );
    }
    let texts = [
        ("name_kana", &b.name_kana, &cur.name_kana, 100),
        ("nationality", &b.nationality, &cur.nationality, 50),
        ("municipality", &b.municipality, &cur.municipality, 50),
        ("address", &b.address, &cur.address, 200),
        ("occupation", &b.occupation, &cur.occupation, 100),
        ("workplace", &b.workplace, &cur.workplace, 100),
        (
            "emergency_contact",
            &b.emergency_contact,
            &cur.emergency_contact,
            200,
        ),
    ];
    let mut values: Vec<Option<String>> = Vec::new();
    for (field, given, current, max) in texts {
        let v = pick(given, current);
        if given.is_some() && v.as_ref().is_some_and(|v| v.chars().count() > max) {
            c.push_with(
                field,
                "err-use-at-most-characters",
                vec![("max", max.to_string())],
            );
        }
        values.push(v);
    }
    let (end, reason) = match &b.observation_end {
        Some(e) if !e.trim().is_empty() => {
            let end = c.take(parse_date("observation_end", e));
            if end.is_some_and(|d| d < cur.observation_start) {
                c.push(
                    "observation_end",
                    "err-the-end-date-must-be-on-or-after-the-start-date",
                );
            }
            let reason = b
                .period_override_reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty());
            if end.is_some_and(|d| d != cur.observation_end) && reason.is_none() {
                c.push(
                    "period_override_reason",
                    "err-say-why-the-observation-period-changes-e-g",
                );
            }
            (
                end.unwrap_or(cur.observation_end),
                reason
                    .map(str::to_string)
                    .or(cur.period_override_reason.clone()),
            )
        }
        _ => (cur.observation_end, cur.period_override_reason.clone()),
    };
    c.finish()?;
    let period_rule = if end == cur.observation_end {
        cur.period_rule.clone()
    } else {
        None
    };
    let key = crate::domain::kana_key(values[0].as_deref().unwrap_or(&name));
    let t = now();
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query(
            "UPDATE persons SET name = $1, phone = $2, email = $3, date_of_birth = $4, sex = $5, prefecture_code = $6,
               name_kana = $7, nationality = $8, municipality = $9, address = $10, occupation = $11, workplace = $12,
               emergency_contact = $13, observation_end = $14, period_override_reason = $15, period_rule = $16,
               name_key = $17, name_norm = $18, updated_at = $19 WHERE id = $20")
            .bind(&name).bind(&phone).bind(&email).bind(date_of_birth).bind(&sex).bind(&prefecture_code)
            .bind(&values[0]).bind(&values[1]).bind(&values[2]).bind(&values[3]).bind(&values[4]).bind(&values[5])
            .bind(&values[6]).bind(end).bind(&reason).bind(&period_rule)
            .bind(&key).bind(crate::domain::kana_key(&name)).bind(t).bind(id)
            .execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.update", "person", Some(id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}
