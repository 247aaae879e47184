//! The keyed side of [`MemoryStore`], for the Redis reader (feature `redis`): frames appended
//! under the ordering key of their stream id, and ids resolved by that order.

use std::sync::Arc;

use tokio::time::Instant;

use crate::event::EncodedEvent;
use crate::replay::id::WireId;

use super::MemoryStore;

impl MemoryStore {
    /// Appends a frame under an ordering key greater than any before it, with `id` being
    /// the id it went out with (already in the frame). Resolved by [`resolve_key`] only.
    ///
    /// [`resolve_key`]: Self::resolve_key
    pub(in crate::replay) fn append_keyed(
        &mut self,
        key: u128,
        id: Arc<str>,
        frame: EncodedEvent,
        at: Option<Instant>,
    ) {
        debug_assert!(key > self.newest_key(), "keys increase along the window");
        self.push(key, frame, WireId::Text(id), at);
    }

    /// Makes `(key, id)` the boundary of an empty window: the newest event this window will
    /// never hold. Used before a keyed window is first filled.
    pub(in crate::replay) fn start_after(&mut self, key: u128, id: Arc<str>) {
        debug_assert!(self.entries.is_empty());
        self.boundary_key = key;
        self.boundary = Some(WireId::Text(id));
    }

    /// Opens a gap: empties the window and leaves out one sequence number, so that every
    /// subscription finds itself behind the window: events up to `key` (whose id is `id`)
    /// are lost to this node. Returns how many events left the window.
    pub(in crate::replay) fn gap_to(&mut self, key: u128, id: Arc<str>) -> u64 {
        let evicted = self.entries.len() as u64;
        self.entries.clear();
        self.bytes = 0;
        self.next_seq += 1;
        self.boundary_key = key.max(self.boundary_key);
        self.boundary = Some(WireId::Text(id));
        evicted
    }

    /// The key of the newest event the window has had: retained, or else the boundary.
    pub(in crate::replay) fn newest_key(&self) -> u128 {
        self.entries
            .back()
            .map_or(self.boundary_key, |entry| entry.key)
    }

    /// Where a client that last saw the event with ordering key `key` resumes: the first
    /// event after it, even one not received yet; `None` when events after it have left
    /// the window (`key` is older than the boundary).
    pub(in crate::replay) fn resolve_key(&self, key: u128) -> Option<u64> {
        (key >= self.boundary_key).then(|| self.seq_after(key))
    }
}
