//! The retained events in memory, in order, and how a client's id resolves to them.
//!
//! [`MemoryStore`] appends framed events, reads the frame at a cursor, resolves a client's
//! `Last-Event-ID` to a cursor and evicts from the front. Cursors are sequence numbers,
//! consecutive from 1 in each store: they place events, they are not ids.
//!
//! Every entry carries an ordering key that increases along the store. An
//! [`EventLog`](super::EventLog)'s event with a numeric id `n` has the key `n << 64`; one
//! with a text id the key of the numeric id before it plus its count since, so a numeric
//! `Last-Event-ID` is placed by order among both. `RedisLog` (feature `redis`) appends
//! through `keyed.rs`, under the key of each stream entry id (`<ms>-<seq>` as
//! `ms << 64 | seq`), so there a client's id resolves as "the first entry after it", even
//! when it names an entry this node has not received yet.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::event::EncodedEvent;

use super::id::{parse_decimal, WireId};

#[cfg(feature = "redis")]
mod keyed;

/// How much the window keeps; all three bounds hold after every append.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// At least 1: the newest event always stays, so subscribers waiting for it see it.
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) max_age: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    /// Increasing along the store.
    key: u128,
    frame: EncodedEvent,
    /// Only read when the window has a `max_age`.
    at: Option<Instant>,
    /// The id it went out with.
    id: WireId,
}

/// The ordering key of an event with the numeric id `id`.
pub(super) fn number_key(id: u64) -> u128 {
    u128::from(id) << 64
}

/// Where a client's `Last-Event-ID` places it in an [`EventLog`](super::EventLog)'s store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    /// Right after the event with this sequence number (0: the start of the log).
    After(u64),
    /// An id of this log whose next events have left the window.
    TooOld,
    /// Not an id of this log, or one it has forgotten.
    Unknown,
}

/// Retained events, numbered by consecutive sequence numbers from 1.
///
/// The entries hold the sequence numbers `first_seq()..next_seq()`, so the entry for a
/// sequence number is found by subtraction. The newest evicted event (`first_seq() - 1`)
/// is remembered as the boundary: a client whose last event was that one has missed
/// nothing, so its id still resolves.
#[derive(Debug)]
pub(super) struct MemoryStore {
    entries: VecDeque<Entry>,
    next_seq: u64,
    bytes: usize,
    /// The id of the boundary event; `None` while nothing was evicted (the start of the
    /// log, whose id is `0`).
    boundary: Option<WireId>,
    /// The key of the boundary event: every event with a key up to it has left the window.
    boundary_key: u128,
    /// Text ids of the retained events and the boundary; the latest use of an id wins.
    by_id: HashMap<Arc<str>, u64>,
    /// The first and the newest numeric id appended (`None`: none yet): the range of
    /// numeric ids this store can know.
    numbers: Option<(u64, u64)>,
    /// Whether an eviction has happened for `max_bytes` while `max_events` had room.
    bytes_bound: BytesBound,
}

/// Whether retention has been bound by bytes before count, told once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BytesBound {
    No,
    Seen,
    Told,
}

impl MemoryStore {
    pub(super) fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            next_seq: 1,
            bytes: 0,
            boundary: None,
            boundary_key: 0,
            by_id: HashMap::new(),
            numbers: None,
            bytes_bound: BytesBound::No,
        }
    }

    /// The sequence number the next append gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest retained sequence number; `next_seq()` when nothing is retained.
    pub(super) fn first_seq(&self) -> u64 {
        self.entries
            .front()
            .map_or(self.next_seq, |entry| entry.seq)
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends the frame of event `seq`, which must be `next_seq()`, under `key`, which
    /// must be above every key before it, with `id` the id it went out with.
    pub(super) fn append(
        &mut self,
        seq: u64,
        key: u128,
        frame: EncodedEvent,
        id: WireId,
        at: Option<Instant>,
    ) {
        debug_assert_eq!(seq, self.next_seq, "events are appended in sequence");
        match &id {
            WireId::Text(text) => {
                self.by_id.insert(text.clone(), seq);
            }
            WireId::Number(number) => {
                let first = self.numbers.map_or(*number, |(first, _)| first);
                self.numbers = Some((first, *number));
            }
        }
        self.push(key, frame, id, at);
    }

    fn push(&mut self, key: u128, frame: EncodedEvent, id: WireId, at: Option<Instant>) {
        debug_assert!(
            self.entries
                .back()
                .map_or(self.boundary_key, |entry| entry.key)
                < key,
            "keys increase along the store"
        );
        let seq = self.next_seq;
        self.bytes += frame.as_bytes().len();
        self.entries.push_back(Entry {
            seq,
            key,
            frame,
            at,
            id,
        });
        self.next_seq = seq + 1;
    }

    /// The frame of event `seq` and its key, if it is retained.
    pub(super) fn get(&self, seq: u64) -> Option<(u128, &EncodedEvent)> {
        self.entry(seq).map(|entry| (entry.key, &entry.frame))
    }

    /// The sequence number of the first retained event with a key above `key`, or
    /// `next_seq()` when there is none (yet).
    pub(super) fn seq_after(&self, key: u128) -> u64 {
        let index = self.entries.partition_point(|entry| entry.key <= key);
        self.first_seq() + index as u64
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let index = usize::try_from(seq.checked_sub(self.first_seq())?).ok()?;
        self.entries.get(index)
    }

    /// Places a client that names `id` as its last event, for an
    /// [`EventLog`](super::EventLog)'s store.
    ///
    /// - Text resolves by lookup: a retained event's id, or the boundary's.
    /// - `0` is the start of the log: everything, while nothing was evicted.
    /// - Any other number in canonical decimal resolves by order against this log's own
    ///   range of numeric ids. Below the first or above the newest it is not this log's
    ///   (it comes from before this log was made, from another log, or from another
    ///   process): unknown. Within the range it must be a retained event's id or the
    ///   boundary's; below the boundary it is too old; anything else within the range is
    ///   no id this log gave: unknown, never a guess at a neighbour.
    ///
    /// `"07"` or `"+7"` are text, so they never name event 7.
    pub(super) fn resolve(&self, id: &str) -> Resolved {
        let Some(number) = parse_decimal(id.as_bytes()) else {
            return self
                .by_id
                .get(id)
                .map_or(Resolved::Unknown, |&seq| Resolved::After(seq));
        };
        if number == 0 {
            return if self.boundary.is_none() && self.first_seq() == 1 {
                Resolved::After(0)
            } else {
                Resolved::TooOld
            };
        }
        match self.numbers {
            Some((first, newest)) if (first..=newest).contains(&number) => {}
            _ => return Resolved::Unknown,
        }
        let key = number_key(number);
        if key < self.boundary_key {
            return Resolved::TooOld;
        }
        if key == self.boundary_key {
            return Resolved::After(self.first_seq() - 1);
        }
        let index = self.entries.partition_point(|entry| entry.key < key);
        match self.entries.get(index) {
            Some(entry) if entry.key == key => Resolved::After(entry.seq),
            _ => Resolved::Unknown,
        }
    }

    /// The id event `seq` went out with, for `seq` from `first_seq() - 1` to
    /// `next_seq() - 1`; `0` stands for the start of the log.
    pub(super) fn wire_id(&self, seq: u64) -> WireId {
        let id = if seq == self.first_seq() - 1 {
            self.boundary.clone()
        } else {
            self.entry(seq).map(|entry| entry.id.clone())
        };
        id.unwrap_or(WireId::Number(0))
    }

    /// Evicts from the front until every limit holds; returns how many went.
    ///
    /// `now` is needed only for `max_age`; without it age is not checked.
    pub(super) fn evict(&mut self, limits: &Limits, now: Option<Instant>) -> u64 {
        let mut evicted = 0;
        while let Some(front) = self.entries.front() {
            let len = self.entries.len();
            let by_count = len > limits.max_events;
            // The newest event stays even when it alone is larger than the budget.
            let by_bytes = self.bytes > limits.max_bytes && len > 1;
            let by_age = expired(front.at, now, limits.max_age);
            if !(by_count || by_bytes || by_age) {
                break;
            }
            if by_bytes && !by_count && !by_age && self.bytes_bound == BytesBound::No {
                self.bytes_bound = BytesBound::Seen;
            }
            self.pop_front();
            evicted += 1;
        }
        evicted
    }

    /// True once: the first time after an eviction for `max_bytes` alone, which means
    /// replay holds fewer events than `max_events` allows.
    pub(super) fn take_bytes_bound(&mut self) -> bool {
        let seen = self.bytes_bound == BytesBound::Seen;
        if seen {
            self.bytes_bound = BytesBound::Told;
        }
        seen
    }

    fn pop_front(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        self.bytes -= entry.frame.as_bytes().len();
        self.boundary_key = entry.key;
        // The old boundary is now two behind the window: resuming from it would lose the
        // event just evicted, so its id no longer resolves.
        let previous = entry.seq - 1;
        if let Some(WireId::Text(old)) = self.boundary.take() {
            if self.by_id.get(&old) == Some(&previous) {
                self.by_id.remove(&old);
            }
        }
        self.boundary = Some(entry.id);
    }
}

fn expired(at: Option<Instant>, now: Option<Instant>, max_age: Option<Duration>) -> bool {
    match (at, now, max_age) {
        (Some(at), Some(now), Some(max_age)) => now.saturating_duration_since(at) > max_age,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    const UNBOUNDED: Limits = Limits {
        max_events: usize::MAX,
        max_bytes: usize::MAX,
        max_age: None,
    };

    /// Appends an event with `id`: a number keyed by itself, or text keyed just after the
    /// event before it, as the window numbers them.
    fn push(store: &mut MemoryStore, id: &str) -> u64 {
        let seq = store.next_seq();
        let id = WireId::parse(id);
        let key = match &id {
            WireId::Number(number) => number_key(*number),
            WireId::Text(_) => store.entries.back().map_or(store.boundary_key, |e| e.key) + 1,
        };
        store.append(seq, key, Event::new().data("x").encode(), id, None);
        seq
    }

    fn limit_events(n: usize) -> Limits {
        Limits {
            max_events: n,
            ..UNBOUNDED
        }
    }

    #[test]
    fn numbers_resolve_against_the_logs_own_range() {
        let mut store = MemoryStore::new();
        assert_eq!(store.resolve("0"), Resolved::After(0), "the start");
        assert_eq!(store.resolve("1"), Resolved::Unknown, "no number given yet");
        for id in 101..=105 {
            push(&mut store, &id.to_string());
        }
        assert_eq!(store.evict(&limit_events(3), None), 2);
        assert_eq!((store.first_seq(), store.next_seq()), (3, 6));
        assert_eq!(store.resolve("100"), Resolved::Unknown, "before this log");
        assert_eq!(store.resolve("1"), Resolved::Unknown, "before this log");
        assert_eq!(store.resolve("101"), Resolved::TooOld);
        assert_eq!(store.resolve("0"), Resolved::TooOld);
        assert_eq!(store.resolve("102"), Resolved::After(2), "the boundary");
        assert_eq!(store.resolve("105"), Resolved::After(5));
        assert_eq!(store.resolve("106"), Resolved::Unknown, "from the future");
        assert_eq!(store.resolve("0105"), Resolved::Unknown, "not canonical");
        assert_eq!(store.wire_id(2), WireId::Number(102));
    }

    #[test]
    fn a_number_within_the_range_that_was_never_given_is_unknown() {
        let mut store = MemoryStore::new();
        for id in ["10", "20", "30"] {
            push(&mut store, id);
        }
        assert_eq!(store.resolve("15"), Resolved::Unknown);
        assert_eq!(store.resolve("20"), Resolved::After(2));
        store.evict(&limit_events(1), None);
        assert_eq!(store.resolve("15"), Resolved::TooOld, "below the boundary");
        assert_eq!(store.resolve("25"), Resolved::Unknown, "never given");
        assert_eq!(store.resolve("20"), Resolved::After(2));
    }

    #[test]
    fn text_ids_are_forgotten_once_behind_the_boundary() {
        let mut store = MemoryStore::new();
        push(&mut store, "a"); // 1
        push(&mut store, "b"); // 2
        push(&mut store, "7"); // 3
        push(&mut store, "c"); // 4
        assert_eq!(store.resolve("a"), Resolved::After(1));
        assert_eq!(
            store.resolve("7"),
            Resolved::After(3),
            "then c, keyed after it"
        );
        assert_eq!(store.seq_after(number_key(7)), 4);

        store.evict(&limit_events(3), None);
        assert_eq!(
            store.resolve("a"),
            Resolved::After(1),
            "the boundary still resolves"
        );
        assert_eq!(store.wire_id(1), WireId::Text("a".into()));
        store.evict(&limit_events(2), None);
        assert_eq!(store.resolve("a"), Resolved::Unknown);
        assert_eq!(store.resolve("b"), Resolved::After(2));
        store.evict(&limit_events(1), None);
        assert_eq!(store.resolve("b"), Resolved::Unknown);
        assert_eq!(store.resolve("7"), Resolved::After(3));
        assert_eq!(store.by_id.len(), 1, "only \"c\" is left");
    }

    #[test]
    fn a_reused_caller_id_names_its_latest_event() {
        let mut store = MemoryStore::new();
        push(&mut store, "a");
        push(&mut store, "a");
        push(&mut store, "1");
        assert_eq!(store.resolve("a"), Resolved::After(2));
        // Evicting the first "a" must not forget the second.
        store.evict(&limit_events(1), None);
        assert_eq!(store.resolve("a"), Resolved::After(2));
    }

    #[test]
    fn bytes_keep_the_newest_event() {
        let mut store = MemoryStore::new();
        push(&mut store, "1");
        push(&mut store, "2");
        let frame_len = store.bytes() / 2;
        let limits = Limits {
            max_bytes: frame_len - 1,
            ..UNBOUNDED
        };
        assert_eq!(store.evict(&limits, None), 1);
        assert_eq!(store.entries.len(), 1);
        assert_eq!(store.bytes(), frame_len);
    }
}
