# Texts sent to people (SMS, e-mail, SMS replies) and staff (login codes), in English.
# Arguments: $centre health centre, $who short name, $day M/D, $link signed link, $phone centre's number.

checkin-email-subject = [{ $centre }] Daily health check for { $who } ({ $day })
checkin-email-lead = Please enter { $who }'s temperature and symptoms for today ({ $day }).
checkin-email-text-lead = Please enter { $who }'s temperature and symptoms for today ({ $day }) here:
checkin-email-urgent = If you suddenly feel worse, do not wait: call { $centre } at { $phone }.
checkin-email-button = Open the health check
checkin-call-label = Automated call
checkin-sms = { $centre }: { $who }'s health check for { $day } { $link } Much worse? Call { $phone }
checkin-sms-reminder = { $centre }: { $who }'s { $day } check not sent yet { $link } Urgent: { $phone }
sms-reply-stopped = You will get no more health-check messages. Reply START to resume.
sms-reply-started = Health-check messages will resume.
sms-reply-ignored = This number does not read replies. If you feel worse, phone your health centre.

# The patient link's own pages (shown in both languages when the person is not known).
link-expired = This link has expired. To tell us about your health or to get a new link, please phone the health centre.
link-not-valid = This link is not valid. Please open the link exactly as it appears in the message.
link-unusable = This link cannot be used.
link-already-answered = Today's answer has already been received. Thank you. If you feel worse, please phone the health centre.
link-closed = Answers for this check-in are closed. If you need to tell us about your health, please phone the health centre.
link-unreadable = Your answers could not be read. Please open the link again and send them once more.
link-field-twice = Two answers to the same question were sent. Please open the link again.
link-title = Health check
link-call-119 = If it is life-threatening, call 119.
link-phone-for-new = For a new link, please phone your health centre.
link-answer-for = Answer for { $who }

# Staff alerts and login codes (sent in both languages).
staff-alert-text = Urgent: please check person { $id } ({ $reason }) { $link }
staff-alert-subject = Urgent: person { $id }
login-code-subject = mimamori login code
login-code-text = mimamori login code: { $code } (valid { $minutes } min)
login-code-voice = Your mimamori login code is { $digits }. Once more: { $digits }.
login-code-voice-expired = This code has expired. Please log in again.

# Error pages outside a person's language.
error-title = Error
error-go-back = Use your browser's Back button to go back and correct it.
error-to-console = Back to the console
error-not-found = What you asked for was not found: the link may be out of date, or outside what you may see.
error-invalid = Some of what was sent cannot be accepted.
error-forbidden = You are not allowed to do this.
error-conflict = This clashed with another change. Open the page again and retry.
error-too-large = Too much at once
error-too-large-text = At most { $mb } MB can be sent at once. Send less and try again.

error-busy = The system is busy right now. Please try again in about { $secs ->
    [one] { $secs } second
   *[other] { $secs } seconds
}.

# Import (mimamori import nesid / the console's import page): why a row is rejected.
err-import-not-mapped = '{ $value }' is not one of the mapped values ({ $values })
err-import-not-a-date = '{ $value }' is not a date in { $formats }
err-import-no-such-day = { $value }: there is no such day
err-import-before-era = { $value }: before the { $era } era began ({ $start })
err-import-after-era = { $value }: the { $era } era ended on { $end }
err-import-case-empty = the case number is empty
err-import-case-twice = '{ $case }' is also on line { $line }
