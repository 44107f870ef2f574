//! E-mail over SMTP (lettre): multipart text + HTML. The idempotency key becomes the
//! Message-ID, so a duplicate delivery is recognisable downstream.
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::MultiPart};

use super::{OutboundMessage, Provider, SendError, SendFuture};

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Smtp {
    pub fn new(url: &str, from: &str) -> Result<Smtp, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("smtp.url (MIMAMORI_SMTP__URL): {e}"))?
            .build();
        let from = from.parse().map_err(|e| format!("smtp.from: {e}"))?;
        Ok(Smtp { transport, from })
    }
}

impl Smtp {
    /// Connects, greets and logs in (when the URL has credentials) without sending: the
    /// problem in words, or Ok.
    pub async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("smtp: the server did not accept a connection test".into()),
            Err(e) => Err(format!(
                "smtp: cannot connect or log in to the server in smtp.url ({})",
                if e.is_permanent() {
                    "refused: check the user name and password"
                } else if e.is_timeout() {
                    "timeout"
                } else {
                    "connection failed: is the host and port right, is it up?"
                }
            )),
        }
    }
}

impl Provider for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, m: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let to =
                m.to.parse()
                    .map_err(|_| SendError::Permanent("invalid e-mail address".into()))?;
            let host = self.from.email.domain().to_string();
            let message_id = format!("<{}@{host}>", m.idempotency_key);
            let text = m.body.clone();
            let html = m
                .html
                .clone()
                .unwrap_or_else(|| format!("<pre>{}</pre>", escape(&text)));
            let email = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.subject.clone().unwrap_or_default())
                .message_id(Some(message_id.clone()))
                .multipart(MultiPart::alternative_plain_html(text, html))
                .map_err(|e| SendError::Permanent(format!("cannot build e-mail: {e}")))?;
            self.transport.send(email).await.map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent("SMTP permanent failure".into())
                } else {
                    SendError::Transient("SMTP unavailable".into())
                }
            })?;
            Ok(message_id)
        })
    }
}

/// Minimal HTML escaping for text put into the HTML part.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
