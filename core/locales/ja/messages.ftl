# Texts sent to people (SMS, e-mail, SMS replies) and staff (login codes), in Japanese.
# Arguments: $centre health centre, $who short name, $day M/D, $link signed link, $phone centre's number.

checkin-email-subject = 【{ $centre }】{ $who }さんの健康観察（{ $day }）のお願い
checkin-email-lead = { $who }さんの本日（{ $day }）の体温と体調を入力してください。
checkin-email-text-lead = { $who }さんの本日（{ $day }）の体温と体調を次のリンクから入力してください。
checkin-email-urgent = 息苦しさなど急な症状があるときは、回答を待たずに{ $centre }（{ $phone }）へお電話ください。
checkin-email-button = 健康観察を入力する
checkin-call-label = 自動音声電話
checkin-sms = { $centre }です。{ $who }さんの{ $day }の健康観察をお願いします { $link } 急な悪化は{ $phone }へ
checkin-sms-reminder = { $centre }です。{ $who }さんの{ $day }の健康観察が未回答です { $link } 急な悪化は{ $phone }へ
sms-reply-stopped = 健康観察のSMS送信を停止しました。再開するには START と返信してください。
sms-reply-started = 健康観察のSMSを再開します。
sms-reply-ignored = このSMSには返信できません。体調が悪いときは保健所にお電話ください。
