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
