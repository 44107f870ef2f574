//! **The automated call, end to end** — the one home of a voice step: load the call's
//! state, advance the DTMF engine (`voice`), persist the state, record a confirmed answer
//! through the answer writer, raise a call-back escalation, and walk on to the next household
//! member on the same phone. The Twilio webhooks (TwiML) and the console's phone simulator
//! (HTML) both call [`Engine::start`] and [`Engine::step`] and only render the [`Step`].
use crate::{
    Db, Error,
    domain::Lang,
    flows::Flows,
    ingest::Ingest,
    store::{calls, checkins, escalations},
    voice::{self, CallContext, CallState, LangPrompts, Prompts, Turn},
};

/// What a call needs: the database, the flows and prompts in force, the answer writer.
#[derive(Clone, Copy)]
pub struct Engine<'a> {
    pub db: &'a Db,
    pub flows: &'a Flows,
    pub prompts: &'a Prompts,
    pub ingest: &'a Ingest,
}

/// The result of one step, ready to render.
pub struct Step {
    pub turn: Turn,
    pub lang: Lang,
    pub seq: u32,
    pub checkin_id: i64,
    /// How this person's calls are read.
    pub pace: voice::Pace,
}

fn lang_of(s: &str) -> Lang {
    if s == "en" { Lang::En } else { Lang::Ja }
}

impl Step {
    fn of(
        turn: Turn,
        lang: Lang,
        state: &CallState,
        checkin_id: i64,
        ctx: &checkins::LinkContext,
    ) -> Step {
        Step {
            turn,
            lang,
            seq: state.seq,
            checkin_id,
            pace: voice::Pace {
                slow: ctx.slow_speech,
            },
        }
    }
}

impl Engine<'_> {
    fn prompts(&self, lang: Lang) -> &LangPrompts {
        self.prompts.lang(lang)
    }

    /// Starts the flow of `checkin_id` on call `sid` (`greet`: first person on the call).
    pub async fn start(
        &self,
        sid: &str,
        checkin_id: i64,
        greet: bool,
        prior: Option<&CallState>,
    ) -> Result<Step, Error> {
        let ctx = checkins::link_context(self.db, checkin_id).await?;
        let lang = lang_of(&ctx.language);
        let flow = self.flows.for_monitoring(&ctx.monitoring_type);
        let mut state = prior.cloned().unwrap_or_default();
        let cc = CallContext {
            centre: ctx.centre_name_for(lang),
            phone: &ctx.health_centre_phone,
        };
        let turn = if crate::codes::CheckinStatus::is_open_str(&ctx.status) {
            voice::start(flow, self.prompts(lang), &cc, &mut state, greet)
        } else {
            state.stage = voice::Stage::Done;
            state.seq += 1;
            let p = self.prompts(lang);
            Turn {
                says: vec![voice::Utterance {
                    id: "nothing_today".into(),
                    text: p.text("nothing_today", &[]),
                }],
                gather: None,
                callback: false,
                completed: None,
                gave_up: false,
            }
        };
        calls::save_session(self.db, sid, checkin_id, &state).await?;
        Ok(Step::of(turn, lang, &state, checkin_id, &ctx))
    }

    /// Advances call `sid` with the keys pressed (`None`: timeout). `simulated_by`: the staff
    /// member pressing keys on the phone simulator (their entry is never the person's answer).
    pub async fn step(
        &self,
        sid: &str,
        digits: Option<&str>,
        simulated_by: Option<i64>,
    ) -> Result<Step, Error> {
        let (checkin_id, mut state) = calls::session(self.db, sid)
            .await?
            .ok_or(Error::NotFound("call"))?;
        let ctx = checkins::link_context(self.db, checkin_id).await?;
        let lang = lang_of(&ctx.language);
        let flow = self.flows.for_monitoring(&ctx.monitoring_type);
        let cc = CallContext {
            centre: ctx.centre_name_for(lang),
            phone: &ctx.health_centre_phone,
        };
        // Answered through the link (or by another call) while this call was asking: stop
        // asking, say so and hang up — never record a second answer.
        if state.stage != voice::Stage::Done
            && !crate::codes::CheckinStatus::is_open_str(&ctx.status)
        {
            let turn = voice::closed_elsewhere(self.prompts(lang), &cc, &mut state);
            calls::save_session(self.db, sid, checkin_id, &state).await?;
            tracing::info!(
                checkin_id,
                "call stopped: the check-in was closed elsewhere"
            );
            return Ok(Step::of(turn, lang, &state, checkin_id, &ctx));
        }
        let mut turn = voice::step(flow, self.prompts(lang), &cc, &mut state, digits);
        if turn.callback {
            escalations::open(
                self.db,
                escalations::Raise {
                    person_id: ctx.person_id,
                    reason: "callback",
                    priority: crate::rules::Priority::High,
                    detail: "pressed 0 on an automated call",
                    actor: crate::store::Actor::System,
                },
            )
            .await?;
            tracing::info!(person_id = ctx.person_id, "callback requested on a call");
        }
        if let Some(answer) = turn.completed.clone() {
            let urgent = answer.urgent;
            let source = if state.inbound {
                "inbound_call"
            } else {
                "voice"
            };
            match self
                .ingest
                .answer_as(checkin_id, source, answer, simulated_by)
                .await?
            {
                Ok(rec) => {
                    // Urgent by any rule (SpO2 at or under the threshold too), not only by a
                    // warning sign: the caller hears to phone now, before the thanks.
                    let by_rule = rec
                        .triggers
                        .iter()
                        .any(|t| t.priority == crate::rules::Priority::Urgent);
                    if by_rule && !turn.says.iter().any(|u| u.id == "urgent") {
                        let at = turn
                            .says
                            .iter()
                            .position(|u| u.id == "thanks")
                            .unwrap_or(turn.says.len());
                        let vars = [
                            ("centre", cc.centre.to_string()),
                            ("phone", cc.phone.to_string()),
                        ];
                        turn.says.insert(
                            at,
                            voice::Utterance {
                                id: "urgent".into(),
                                text: self.prompts(lang).text("urgent", &vars),
                            },
                        );
                    }
                    tracing::info!(
                        checkin_id,
                        person_id = ctx.person_id,
                        observation_id = rec.observation_id,
                        urgent = urgent || by_rule,
                        "voice answer recorded"
                    )
                }
                Err(closed) => tracing::info!(
                    checkin_id,
                    ?closed,
                    "voice answer for a closed check-in ignored"
                ),
            }
            // One phone may report for a whole household: walk the next member.
            let phone = calls::phone_of_checkin(self.db, checkin_id).await?;
            let next = match phone {
                Some(phone) => {
                    calls::household_next(self.db, &phone, checkin_id, crate::db::now()).await?
                }
                None => None,
            };
            if let Some(next) = next {
                let mut next_step = self.start(sid, next, false, Some(&state)).await?;
                let mut says = std::mem::take(&mut turn.says);
                says.append(&mut next_step.turn.says);
                next_step.turn.says = says;
                next_step.turn.completed = turn.completed;
                return Ok(next_step);
            }
        }
        calls::save_session(self.db, sid, checkin_id, &state).await?;
        Ok(Step::of(turn, lang, &state, checkin_id, &ctx))
    }
}
