"""Schemathesis hooks for `contracts::schemathesis_finds_no_contract_breaks`.

Every check runs on every operation, `positive_data_acceptance` included: a request valid by
the OpenAPI document must be accepted. The document states each field's type, format, length
and choices; a few rules it cannot state in OpenAPI 3.0, because they depend on today's date,
on another field, or on what is stored:

- a date may not be in the future: checked here against the request — the refusal is excused
  only if the named field does hold a date after today in Japan;
- no text may hold a NUL character (no database text column keeps one; a schema would have
  to say so of every string, known fields and unknown alike): excused only if the request
  holds one;
- the rules across fields or on the stored person listed in `UNSTATABLE` below, each with the
  field it is reported on.

A 422 is excused only when every refused field names one of these rules (the `rule` of each
field error, the same in every language). A 422 with no field, or a field refused for any
other reason, stays a failure: the document promised something the API did not keep.
"""

import atexit
import collections
import datetime
import json
import os
import sys

import schemathesis

# Rules the document cannot state, each as (field, rule).
UNSTATABLE = {
    # The end of the observation period: typed, or computed from a day 0 (onset, specimen,
    # last exposure) that depends on the monitoring type; after the start; a reason when it
    # differs from the rules' end.
    ("observation_start", "enter-the-start-date-or-an-onset-specimen-or"),
    ("observation_end", "enter-the-end-date-or-an-onset-specimen-or-last"),
    ("observation_end", "the-end-date-must-be-on-or-after-the-start-date"),
    ("period_override_reason", "period-override-needs-reason"),
    ("period_override_reason", "say-why-the-observation-period-changes-e-g"),
    # A channel needs its address: a phone for SMS and voice, an e-mail address for e-mail —
    # in the request, or on the stored person for a change of schedule or of basic information.
    ("phone", "a-phone-number-is-needed-for-the-sms-and-voice"),
    ("email", "an-e-mail-address-is-needed-for-the-email"),
    ("phone", "the-person-is-reached-by-phone-keep-a-number-or"),
    ("email", "the-person-is-reached-by-e-mail-keep-an-address"),
    ("channel", "this-person-has-no-phone-number-add-one-first-or"),
    ("channel", "this-person-has-no-e-mail-address-add-one-first"),
    ("fallback_channel", "this-person-has-no-phone-number-add-one-first-or"),
    ("fallback_channel", "this-person-has-no-e-mail-address-add-one-first"),
    # A contact's links to what is stored: the source case's behaviour-history entry, the
    # source case at the caller's health centre.
    ("behaviour_id", "no-behaviour-history-entry-with-this-id-for-this"),
    ("source_person_id", "no-case-with-this-id-at-your-health-centre"),
    # The occurrence report's dates that depend on its type.
    ("onset_date", "a-symptomatic-patient-s-onset-date-is-required"),
    ("specimen_date", "an-asymptomatic-carrier-s-specimen-date-is"),
    ("death_date", "required-on-the-occurrence-report-write-yyyy-mm"),
    # Dates in order: a result after its specimen, a discharge after its admission; a death
    # needs its date.
    ("result_date", "the-result-cannot-come-before-the-specimen-was"),
    ("discharged_on", "discharge-cannot-come-before-admission"),
    ("died_on", "give-the-date-of-death"),
}

# A date after today (in Japan) — checked against the request.
FUTURE = {"the-date-is-in-the-future-check-it", "a-move-cannot-be-dated-in-the-future-record-it"}
# A NUL character, which no text column can keep — checked against the request.
NUL = "contains-a-nul-character"


def _today_in_japan():
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=9)).date()


def _holds_a_future_date(case, field):
    body = case.body if isinstance(case.body, dict) else {}
    value = body.get(field)
    if not isinstance(value, str):
        return False
    try:
        return datetime.date.fromisoformat(value.strip()) > _today_in_japan()
    except ValueError:
        return False


def _holds_a_nul(case):
    return "\\u0000" in json.dumps(case.body) or "\x00" in json.dumps(case.body, ensure_ascii=False)


def _excused(field_error, case):
    rule, field = field_error.get("rule"), field_error.get("field")
    if rule in FUTURE:
        return _holds_a_future_date(case, field)
    if rule == NUL:
        return _holds_a_nul(case)
    return (field, rule) in UNSTATABLE


# What was excused, by operation and rule, printed at the end of the run.
EXCUSED = collections.Counter()


@atexit.register
def _report():
    for (operation, rules), n in sorted(EXCUSED.items()):
        print(f"excused {n:>4} × {operation}: {rules}", file=sys.stderr)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but a schema-valid request refused for a rule above."""
    if "positive_data_acceptance" not in getattr(failure, "checks", ()):
        return True
    if response.status_code != 422:
        return True
    try:
        fields = response.json()["error"]["fields"]
    except (ValueError, KeyError, TypeError):
        return True
    if not fields:
        return True
    if all(_excused(f, case) for f in fields):
        rules = ", ".join(sorted({f"{f.get('field')}: {f.get('rule')}" for f in fields}))
        EXCUSED[(case.operation.label, rules)] += 1
        return False
    return True


@schemathesis.hook
def map_case(context, case):
    """Sends schema-valid requests on `/persons/{id}` to a person who exists (the test
    registers one and passes its id): a drawn id is almost never a person, and its 404 would
    leave `positive_data_acceptance` nothing to check. Invalid ids are left as drawn."""
    person = os.environ.get("MIMAMORI_ST_PERSON")
    meta = case.meta
    if (
        person
        and meta is not None
        and meta.generation.mode.is_positive
        and isinstance(case.path_parameters, dict)
        and "id" in case.path_parameters
    ):
        case.path_parameters["id"] = int(person)
    return case
