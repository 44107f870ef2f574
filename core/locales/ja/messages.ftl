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

# The patient link's own pages (shown in both languages when the person is not known).
link-expired = このリンクは有効期限が切れています。体調について伝えたいこと、新しいリンクが必要なことがあれば、保健所にお電話ください。
link-not-valid = このリンクは正しくありません。メッセージのリンクをそのまま開いてください。
link-unusable = このリンクは使用できません。
link-already-answered = 本日の回答はすでに受け付けています。ありがとうございました。具合が悪くなったときは保健所にお電話ください。
link-closed = この回答の受付は終了しました。体調について伝えたいことがあれば保健所にお電話ください。
link-unreadable = 回答を読み取れませんでした。リンクを開き直して、もう一度送ってください。
link-field-twice = 同じ質問への答えが2つ送られました。リンクを開き直してください。
link-title = 健康観察
link-call-119 = 命に関わるときは 119 番へ。
link-phone-for-new = 新しいリンクが必要な場合は、担当の保健所にお電話ください。
link-answer-for = { $who }さんの回答へ

# Staff alerts and login codes (sent in both languages).
staff-alert-text = 【mimamori 緊急】対象者ID { $id } ({ $reason }) を確認してください { $link }
staff-alert-subject = 【緊急】対象者ID { $id }
login-code-subject = mimamori ログイン確認コード
login-code-text = mimamori ログイン確認コード：{ $code }（{ $minutes }分間有効）
login-code-voice = mimamori のログイン確認コードです。{ $digits }。もう一度繰り返します。{ $digits }。
login-code-voice-expired = このコードは期限切れです。もう一度ログインしてください。

# Error pages outside a person's language.
error-title = エラー
error-go-back = ブラウザの「戻る」で前の画面に戻り、直してください。
error-to-console = トップへ戻る
error-not-found = お探しのものは見つかりませんでした。リンクが古いか、閲覧できる範囲の外にあります。
error-invalid = 送信された内容に、受け付けられない項目があります。
error-forbidden = この操作を行う権限がありません。
error-conflict = ほかの変更と重なりました。画面を開き直して、もう一度お試しください。
error-too-large = 送信内容が大きすぎます
error-too-large-text = 一度に送れるのは { $mb } MB までです。内容を減らして、もう一度送ってください。

error-busy = 混み合っています。{ $secs }秒ほどしてから、もう一度お試しください。

# 取り込み（mimamori import nesid・コンソールの取り込み画面）：行を取り込めない理由
err-import-not-mapped = 「{ $value }」は対応表にない値です（使える値: { $values }）
err-import-not-a-date = 「{ $value }」は日付として読めません（形式: { $formats }）
err-import-no-such-day = { $value }：その日は存在しません
err-import-before-era = { $value }：{ $era }の始まり（{ $start }）より前の日付です
err-import-after-era = { $value }：{ $era }は { $end } に終わっています
err-import-case-empty = 症例番号が空です
err-import-case-twice = 症例番号「{ $case }」は { $line } 行目にもあります
