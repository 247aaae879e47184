//! The registry's one reader of many streams: one connection, one `XREAD BLOCK` over the
//! streams of every topic the node serves, issued again whenever topics come or go.
//!
//! Each topic keeps the per-stream state and checks of a single log's reader ([`Reader`]):
//! the start-up fill of its window, the checked reads that tell a trim before this node
//! read, the count of entries read. Only the connection and the blocking wait are shared.
//! The `XREAD` is a wake-up only: the streams it names entries for are then read with the
//! checked read, as a single log's reader does.
//!
//! A topic that joins or leaves while the `XREAD` is blocked interrupts it: the command
//! arrives on a channel the task polls together with the `XREAD`, and the task unblocks its
//! own connection with `CLIENT UNBLOCK <id>`, sent on the node's publishing connection (a
//! blocked connection cannot carry it). So a new topic is filled and followed within a round
//! trip or two, not after the block timeout.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncConnectionConfig, RedisResult, Value};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::id::StreamId;
use super::reader::{backoff, millis, Reader, BLOCK, CONNECT_TIMEOUT};

/// How long the task waits before it asks again to unblock an `XREAD` that the server had
/// not started yet when asked (the two connections race).
const UNBLOCK_RETRY: Duration = Duration::from_millis(1);
/// Asks to unblock at most this often per wake-up; then (the reader's connection is likely
/// broken, its `XREAD` never to start) the `XREAD` ends by its error or its block timeout.
const UNBLOCK_ATTEMPTS: u32 = 100;

/// What the registry tells the reader task.
enum Command {
    /// Boxed: a topic's reader is a few hundred bytes, a leave a word.
    Join(u64, Box<Topic>),
    Leave(u64),
}

struct Topic {
    reader: Reader,
    loaded: Arc<Loaded>,
    /// Set when the stream may have entries after the reader's last one.
    dirty: bool,
}

/// Whether a topic's window has been filled from its stream, so that ids resolve.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    done: AtomicBool,
    notify: Notify,
}

impl Loaded {
    fn set(&self) {
        self.done.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(super) fn is_set(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits until the window is filled.
    pub(super) async fn wait(&self) {
        let mut notified = pin!(self.notify.notified());
        loop {
            // Registered before the check, so a `set` in between is not missed.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.as_mut().await;
            notified.set(self.notify.notified());
        }
    }
}

/// Tells the reader task to drop a topic's stream; sent when the topic's log is dropped.
#[derive(Debug)]
pub(super) struct Leave {
    id: u64,
    commands: mpsc::UnboundedSender<Command>,
}

impl Leave {
    pub(super) fn send(&self) {
        // The task has ended only when the registry is gone: nothing to tell then.
        let _ = self.commands.send(Command::Leave(self.id));
    }
}

/// What the registry and the reader task share.
#[derive(Debug, Default)]
pub(super) struct ReaderState {
    /// Connections the task lost and made again.
    pub(super) reconnects: AtomicU64,
}

/// The registry's side: hands topics to the reader task.
#[derive(Debug)]
pub(super) struct Topics {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
}

impl Topics {
    /// Hands `reader`'s stream to the task, which fills its window first; returns what
    /// makes it leave, and what tells when the window is filled.
    pub(super) fn join(&self, reader: Reader) -> (Leave, Arc<Loaded>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let loaded = Arc::new(Loaded::default());
        let topic = Topic {
            reader,
            loaded: loaded.clone(),
            dirty: false,
        };
        let _ = self.commands.send(Command::Join(id, Box::new(topic)));
        let leave = Leave {
            id,
            commands: self.commands.clone(),
        };
        (leave, loaded)
    }
}

/// The task that reads every topic's stream on one connection named `name`, and the
/// handle that gives it topics.
pub(super) fn spawn(
    client: redis::Client,
    manager: ConnectionManager,
    name: String,
    state: Arc<ReaderState>,
) -> (Topics, JoinHandle<()>) {
    let (commands, receiver) = mpsc::unbounded_channel();
    let task = TopicsReader {
        client,
        manager,
        name,
        commands: receiver,
        topics: HashMap::new(),
        failures: 0,
        state,
    };
    let topics = Topics {
        commands,
        next_id: AtomicU64::new(0),
    };
    (topics, tokio::spawn(task.run()))
}

struct TopicsReader {
    client: redis::Client,
    /// The node's publishing connection, which carries `CLIENT UNBLOCK`.
    manager: ConnectionManager,
    name: String,
    commands: mpsc::UnboundedReceiver<Command>,
    topics: HashMap<u64, Topic>,
    failures: u32,
    state: Arc<ReaderState>,
}

/// What ended a wait on `XREAD`.
enum Woken {
    Read(RedisResult<Value>),
    Command(Option<Command>),
}

impl TopicsReader {
    async fn run(mut self) {
        loop {
            let error = match self.session().await {
                // Every sender is gone: so is the registry.
                Ok(()) => return,
                Err(error) => error,
            };
            self.failures = self.failures.saturating_add(1);
            let delay = backoff(self.failures);
            tracing::warn!(
                %error,
                topics = self.topics.len(),
                retry_in = ?delay,
                "sse redis topics reader lost its connection"
            );
            tokio::time::sleep(delay).await;
            self.state.reconnects.fetch_add(1, Ordering::Relaxed);
            for topic in self.topics.values_mut() {
                topic.reader.reconnected();
                topic.dirty = true;
            }
        }
    }

    /// One connection's worth of reading. Returns `Ok` only when the registry is gone.
    async fn session(&mut self) -> RedisResult<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCK + CONNECT_TIMEOUT));
        let mut connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.name)
            .query_async(&mut connection)
            .await?;
        let client_id: u64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut connection)
            .await?;
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.apply(command),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            self.read_dirty(&mut connection).await?;
            if self.failures > 0 {
                tracing::info!(
                    topics = self.topics.len(),
                    "sse redis topics reader reconnected"
                );
                self.failures = 0;
            }
            if self.topics.is_empty() {
                match self.commands.recv().await {
                    Some(command) => self.apply(command),
                    None => return Ok(()),
                }
                continue;
            }
            let xread = self.xread();
            let (reply, command) = {
                let mut reading = pin!(xread.query_async::<Value>(&mut connection));
                let commands = &mut self.commands;
                let woken = poll_fn(|cx| {
                    if let Poll::Ready(reply) = reading.as_mut().poll(cx) {
                        return Poll::Ready(Woken::Read(reply));
                    }
                    commands.poll_recv(cx).map(Woken::Command)
                })
                .await;
                match woken {
                    Woken::Read(reply) => (reply?, None),
                    Woken::Command(None) => return Ok(()),
                    Woken::Command(Some(command)) => {
                        let reply = unblock(&self.manager, client_id, reading.as_mut()).await?;
                        (reply, Some(command))
                    }
                }
            };
            if let Some(command) = command {
                self.apply(command);
            }
            self.mark(&reply);
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Join(id, topic) => {
                self.topics.insert(id, *topic);
            }
            Command::Leave(id) => {
                self.topics.remove(&id);
            }
        }
    }

    /// Fills the windows of topics that joined, and reads the streams that have news.
    async fn read_dirty(
        &mut self,
        connection: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<()> {
        for topic in self.topics.values_mut() {
            if !topic.loaded.is_set() {
                topic.reader.backfill(connection).await?;
                topic.loaded.set();
                topic.dirty = false;
            } else if topic.dirty {
                topic.reader.catch_up(connection).await?;
                topic.dirty = false;
            }
        }
        Ok(())
    }

    /// `XREAD BLOCK` over every topic's stream, each after the last entry read from it (the
    /// oldest of them, should two topics share a stream while one is leaving).
    fn xread(&self) -> redis::Cmd {
        let mut streams: HashMap<&str, StreamId> = HashMap::with_capacity(self.topics.len());
        for topic in self.topics.values() {
            let last = topic.reader.last();
            streams
                .entry(&**topic.reader.key())
                .and_modify(|oldest| *oldest = (*oldest).min(last))
                .or_insert(last);
        }
        let mut command = redis::cmd("XREAD");
        command
            .arg("BLOCK")
            .arg(millis(BLOCK))
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS");
        // Keys first, then their ids in the same order: one pass over the map for each.
        for key in streams.keys() {
            command.arg(*key);
        }
        for last in streams.values() {
            command.arg(last.to_string());
        }
        command
    }

    /// Marks the topics whose streams the `XREAD` reply names.
    fn mark(&mut self, reply: &Value) {
        let keys = stream_keys(reply);
        if keys.is_empty() {
            return;
        }
        for topic in self.topics.values_mut() {
            if keys.contains(&topic.reader.key().as_bytes()) {
                topic.dirty = true;
            }
        }
    }
}

/// Ends the blocked `reading` early with `CLIENT UNBLOCK`, then waits for its reply (`nil`
/// when unblocked). When the server has not started the `XREAD` yet, or has answered it
/// already, `CLIENT UNBLOCK` finds nothing to unblock: asked again until one of the two.
/// Should `CLIENT UNBLOCK` fail, or find nothing `UNBLOCK_ATTEMPTS` times, the `XREAD` ends
/// at its block timeout.
async fn unblock<F>(
    manager: &ConnectionManager,
    client_id: u64,
    mut reading: Pin<&mut F>,
) -> RedisResult<Value>
where
    F: Future<Output = RedisResult<Value>>,
{
    for _ in 0..UNBLOCK_ATTEMPTS {
        let mut connection = manager.clone();
        let unblocked: RedisResult<u64> = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(client_id)
            .query_async(&mut connection)
            .await;
        match unblocked {
            Ok(0) => {
                let mut retry = pin!(tokio::time::sleep(UNBLOCK_RETRY));
                let answered = poll_fn(|cx| match reading.as_mut().poll(cx) {
                    Poll::Ready(reply) => Poll::Ready(Some(reply)),
                    Poll::Pending => retry.as_mut().poll(cx).map(|()| None),
                })
                .await;
                if let Some(reply) = answered {
                    return reply;
                }
            }
            Ok(_) => break,
            Err(error) => {
                tracing::debug!(%error, "sse redis topics reader could not unblock its read");
                break;
            }
        }
    }
    reading.await
}

/// The stream keys of an `XREAD` reply: an array (RESP2) or a map (RESP3) of streams, or
/// `nil` when it timed out or was unblocked.
fn stream_keys(reply: &Value) -> Vec<&[u8]> {
    fn key(value: &Value) -> Option<&[u8]> {
        match value {
            Value::BulkString(bytes) => Some(bytes),
            _ => None,
        }
    }
    match reply {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|stream| match stream {
                Value::Array(pair) => pair.first().and_then(key),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams.iter().filter_map(|(name, _)| key(name)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn reads_the_stream_keys_of_a_reply() {
        let resp2 = Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Array(vec![])]),
            Value::Array(vec![bulk("b"), Value::Array(vec![])]),
        ]);
        assert_eq!(stream_keys(&resp2), [b"a".as_slice(), b"b"]);
        let resp3 = Value::Map(vec![(bulk("c"), Value::Array(vec![]))]);
        assert_eq!(stream_keys(&resp3), [b"c".as_slice()]);
        assert!(stream_keys(&Value::Nil).is_empty());
    }

    #[tokio::test]
    async fn loaded_wakes_a_waiter_set_after_it_waits() {
        let loaded = Arc::new(Loaded::default());
        let waiter = tokio::spawn({
            let loaded = loaded.clone();
            async move { loaded.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!loaded.is_set());
        loaded.set();
        waiter.await.unwrap();
        // Set already: returns at once.
        loaded.wait().await;
    }
}
