//! The store's events over `LISTEN`/`NOTIFY`: one connection of its own per subscription,
//! outside the pool, that reconnects when it is lost; and the notifications a node
//! publishes for the handles following its jobs.
//!
//! Every notification goes on the channel `rustf_workers` with a JSON payload
//! `{"s": schema, "k": kind, ...}`: the triggers of migration 0003 send `available` and
//! `cancel`, [`publish`] sends `follow`, `messages` and `ended`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_postgres::{AsyncMessage, NoTls};

use super::{Fail, PostgresQueue};
use crate::queue::StoreEvent;

/// The channel every schema's notifications go on.
const CHANNEL: &str = "rustf_workers";

/// The largest payload put in one notification: PostgreSQL takes fewer than 8000 bytes,
/// and the envelope (schema, kind, job id) needs some of them.
const PAYLOAD_BYTES: usize = 7_000;

/// A message whose JSON is longer than this travels through the table `job_messages`,
/// its notification naming the row.
const INLINE_MESSAGE_BYTES: usize = 6_000;

/// How often an idle subscription checks that its connection still answers (a network
/// cut may close nothing), and how long the check may take.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends the payloads ?1, in order, on the channel.
const NOTIFY: &str = "SELECT pg_notify('rustf_workers', p) FROM unnest($1::text[]) AS p";

/// Stores a large message ?2 of job ?1, returning its row; forgets those ten minutes old.
const STORE_MESSAGE: &str = "
    WITH forgotten AS (
        DELETE FROM job_messages
        WHERE created_at < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 600000)
    INSERT INTO job_messages (job_id, body, created_at)
    VALUES ($1::text, $2::text::json, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
    RETURNING seq";

/// The large messages in rows ?1.
const LOAD_MESSAGES: &str =
    "SELECT seq, body::text FROM job_messages WHERE seq = ANY($1::bigint[])";

/// Takes or keeps the maintenance lead for ?1 until ?2, if nobody else holds it past ?3.
const LEAD: &str = "
    INSERT INTO leader (name, owner, until) VALUES ('maintenance', $1::text, $2::bigint)
    ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
    WHERE leader.owner = excluded.owner OR leader.until <= $3::bigint
    RETURNING owner";

impl PostgresQueue {
    /// The schema as notifications name it.
    fn schema_name(&self) -> &str {
        self.inner.schema.as_deref().unwrap_or("public")
    }

    /// A subscription on a task of its own, until `events` is dropped.
    pub(super) fn subscribe_events(&self) -> crate::queue::StoreEvents {
        let (events, receiver) = mpsc::unbounded_channel();
        tokio::spawn(listen(self.clone(), events));
        receiver
    }

    /// Notifies `events`, in order: one statement, or a transaction when a message is
    /// too large to travel in a notification and is stored first.
    pub(super) async fn publish_events(&self, events: Vec<StoreEvent>) -> crate::Result<()> {
        let action = "publishing job messages to";
        let schema = self.schema_name();
        // Each message's JSON, once: its length decides how it travels.
        let events: Vec<(StoreEvent, Vec<String>)> = events
            .into_iter()
            .map(|event| {
                let texts = match &event {
                    StoreEvent::Messages { messages, .. } => {
                        messages.iter().map(Value::to_string).collect()
                    }
                    _ => Vec::new(),
                };
                (event, texts)
            })
            .collect();
        let large = events
            .iter()
            .flat_map(|(_, texts)| texts)
            .any(|text| text.len() > INLINE_MESSAGE_BYTES);
        let mut conn = self.conn(action).await?;
        let result: Result<(), Fail> = async {
            if !large {
                let payloads = payloads(schema, events, &mut std::iter::empty());
                if !payloads.is_empty() {
                    let stmt = conn.prepare_cached(NOTIFY).await?;
                    conn.execute(&stmt, &[&payloads]).await?;
                }
                return Ok(());
            }
            let tx = conn.transaction().await?;
            let mut rows = Vec::new();
            for (event, texts) in &events {
                if let StoreEvent::Messages { id, .. } = event {
                    for text in texts.iter().filter(|t| t.len() > INLINE_MESSAGE_BYTES) {
                        let stmt = tx.prepare_cached(STORE_MESSAGE).await?;
                        rows.push(tx.query_one(&stmt, &[id, text]).await?.try_get(0)?);
                    }
                }
            }
            let payloads = payloads(schema, events, &mut rows.into_iter());
            let stmt = tx.prepare_cached(NOTIFY).await?;
            tx.execute(&stmt, &[&payloads]).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        result.map_err(self.error(action))
    }

    /// Whether `owner` holds the maintenance lead until `now + ttl_ms`.
    pub(super) async fn lead_until(
        &self,
        now: i64,
        owner: &str,
        ttl_ms: u64,
    ) -> crate::Result<bool> {
        let action = "taking the lead in";
        let conn = self.conn(action).await?;
        let until = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let result: Result<bool, Fail> = async {
            let stmt = conn.prepare_cached(LEAD).await?;
            Ok(conn
                .query_opt(&stmt, &[&owner, &until, &now])
                .await?
                .is_some())
        }
        .await;
        result.map_err(self.error(action))
    }

    /// The event a notification's payload tells, if it is this schema's.
    async fn event_of(&self, payload: &str) -> Option<StoreEvent> {
        let payload: Value = serde_json::from_str(payload).ok()?;
        if payload["s"].as_str() != Some(self.schema_name()) {
            return None;
        }
        let text = |key: &str| payload[key].as_str().map(str::to_owned);
        Some(match payload["k"].as_str()? {
            "available" => StoreEvent::Available { worker: text("w")? },
            "cancel" => StoreEvent::CancelRequested {
                owner: text("o")?,
                id: text("id")?,
            },
            "follow" => StoreEvent::Follow { id: text("id")? },
            "ended" => StoreEvent::Ended { id: text("id")? },
            "messages" => {
                let id = text("id")?;
                let messages = self.messages_of(&id, payload["m"].as_array()?).await;
                StoreEvent::Messages { id, messages }
            }
            _ => return None,
        })
    }

    /// The messages a notification carries: inline, or read from their rows.
    async fn messages_of(&self, id: &str, items: &[Value]) -> Vec<Value> {
        let stored: Vec<i64> = items
            .iter()
            .filter(|item| item[0] == 1)
            .filter_map(|item| item[1].as_i64())
            .collect();
        let mut bodies = std::collections::HashMap::new();
        if !stored.is_empty() {
            match self.load_messages(&stored).await {
                Ok(found) => bodies = found,
                Err(err) => log::warn!(
                    target: "rustf_workers::queue",
                    "[job:{id}] reading its large messages: {err}",
                ),
            }
        }
        items
            .iter()
            .filter_map(|item| match item[0].as_u64() {
                Some(0) => Some(item[1].clone()),
                _ => {
                    let found = item[1].as_i64().and_then(|seq| bodies.remove(&seq));
                    if found.is_none() {
                        log::warn!(
                            target: "rustf_workers::queue",
                            "[job:{id}] a large message could not be read: not passed on",
                        );
                    }
                    found
                }
            })
            .collect()
    }

    async fn load_messages(
        &self,
        seqs: &[i64],
    ) -> crate::Result<std::collections::HashMap<i64, Value>> {
        let action = "reading job messages from";
        let conn = self.conn(action).await?;
        let result: Result<_, Fail> = async {
            let stmt = conn.prepare_cached(LOAD_MESSAGES).await?;
            let mut bodies = std::collections::HashMap::new();
            for row in conn.query(&stmt, &[&seqs]).await? {
                let body: String = row.try_get(1)?;
                if let Ok(value) = serde_json::from_str(&body) {
                    bodies.insert(row.try_get(0)?, value);
                }
            }
            Ok(bodies)
        }
        .await;
        result.map_err(self.error(action))
    }
}

/// The notifications of `events` (each with its messages' JSON), the large messages
/// naming the rows `stored` gives, in order.
fn payloads(
    schema: &str,
    events: Vec<(StoreEvent, Vec<String>)>,
    stored: &mut impl Iterator<Item = i64>,
) -> Vec<String> {
    let mut payloads = Vec::new();
    for (event, texts) in events {
        match event {
            StoreEvent::Messages { id, messages } => {
                let items = messages
                    .into_iter()
                    .zip(texts)
                    .map(|(message, text)| match text.len() {
                        len if len <= INLINE_MESSAGE_BYTES => (len, json!([0, message])),
                        _ => (16, json!([1, stored.next()])),
                    })
                    .collect();
                payloads.extend(chunk_messages(schema, &id, items));
            }
            StoreEvent::Follow { id } => payloads.push(payload(schema, "follow", &id, None)),
            StoreEvent::Ended { id } => payloads.push(payload(schema, "ended", &id, None)),
            // Told by the database's triggers or the subscription, never published.
            StoreEvent::Available { .. }
            | StoreEvent::CancelRequested { .. }
            | StoreEvent::Resumed => {}
        }
    }
    payloads
}

/// A job's messages as notifications, each under [`PAYLOAD_BYTES`]: `items` are the
/// tagged messages (`[0, message]` inline, `[1, row]` stored) with their JSON's length.
fn chunk_messages(schema: &str, id: &str, items: Vec<(usize, Value)>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for (len, item) in items {
        // 8: the tag, brackets and commas around each item.
        if !chunk.is_empty() && bytes + len + 8 > PAYLOAD_BYTES {
            let full = std::mem::take(&mut chunk);
            payloads.push(payload(schema, "messages", id, Some(Value::Array(full))));
            bytes = 0;
        }
        bytes += len + 8;
        chunk.push(item);
    }
    if !chunk.is_empty() {
        payloads.push(payload(schema, "messages", id, Some(Value::Array(chunk))));
    }
    payloads
}

fn payload(schema: &str, kind: &str, id: &str, messages: Option<Value>) -> String {
    let mut payload = json!({ "s": schema, "k": kind, "id": id });
    if let Some(messages) = messages {
        payload["m"] = messages;
    }
    payload.to_string()
}

/// Listens until `events` is dropped, connecting again (after 0.1 s, growing to 5 s)
/// whenever the connection is lost or cannot be made.
async fn listen(queue: PostgresQueue, events: UnboundedSender<StoreEvent>) {
    let mut wait = Duration::from_millis(100);
    loop {
        let listened = tokio::select! {
            listened = listen_once(&queue, &events) => listened,
            () = events.closed() => return,
        };
        match listened {
            // Listened, then lost: try again soon.
            Ok(()) => wait = Duration::from_millis(100),
            Err(fail) => log::warn!(
                target: "rustf_workers::queue",
                "listening for notifications: {}",
                fail.into_error("listening to", queue.target()),
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = events.closed() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: `LISTEN`, then every notification passed on, until the
/// connection ends or stops answering (`Ok`), or fails to start (`Err`).
async fn listen_once(
    queue: &PostgresQueue,
    events: &UnboundedSender<StoreEvent>,
) -> Result<(), Fail> {
    queue.ready().await.map_err(Fail::Refused)?;
    let (client, mut connection) = queue.inner.config.connect(NoTls).await?;
    let (notes, mut received) = mpsc::unbounded_channel();
    // The connection's own task: its notifications, and the replies to `client`.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(note) = message {
                if notes.send(note.payload().to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    let _driver = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Anything told while there was no connection is lost: the engine looks again.
    if events.send(StoreEvent::Resumed).is_err() {
        return Ok(());
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            note = received.recv() => {
                // `None`: the connection ended (the server went away).
                let Some(payload) = note else { return Ok(()) };
                if let Some(event) = queue.event_of(&payload).await {
                    if events.send(event).is_err() {
                        return Ok(());
                    }
                }
            }
            _ = ping.tick() => {
                let answered = tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1")).await;
                if !matches!(answered, Ok(Ok(_))) {
                    return Ok(());
                }
            }
        }
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{chunk_messages, INLINE_MESSAGE_BYTES};

    #[test]
    fn messages_are_split_into_notifications_postgres_takes_in_order() {
        // The longest schema name and inline messages just under the limit: the worst
        // case for the envelope.
        let schema = "s".repeat(63);
        let id = "6f1c2a34-0000-4000-8000-000000000000";
        let items: Vec<(usize, Value)> = (0..40)
            .map(|n| {
                let text = format!("{n}:{}", "x".repeat(INLINE_MESSAGE_BYTES - 12));
                let message = json!(text);
                (message.to_string().len(), json!([0, message]))
            })
            .chain((0..300).map(|n| (json!(n).to_string().len(), json!([0, n]))))
            .collect();
        let payloads = chunk_messages(&schema, id, items.clone());
        assert!(payloads.len() >= 40, "{}", payloads.len());
        let mut carried = Vec::new();
        for payload in &payloads {
            assert!(payload.len() < 8000, "{} bytes", payload.len());
            let parsed: Value = serde_json::from_str(payload).unwrap();
            assert_eq!(parsed["s"], json!(schema));
            carried.extend(parsed["m"].as_array().unwrap().iter().cloned());
        }
        let sent: Vec<Value> = items.into_iter().map(|(_, item)| item).collect();
        assert_eq!(carried, sent, "every message once, in order");
    }
}
