//! The per-thread pool of event buffers (a [`Fields`] each).
//!
//! Bounded in count and in the size of each buffer kept, so it holds at most
//! `KEPT * MAX_CAPACITY` bytes per thread, and usually `KEPT` small buffers. An event
//! dropped on another thread than the one that built it feeds that thread's pool; a
//! producer thread that only builds events then allocates one buffer per event, as a
//! `String` per event would.

use std::cell::RefCell;

use bytes::BytesMut;

use super::fields::Fields;

/// Buffers kept per thread: a stream that builds each event just before the body
/// frames it needs one; the rest cover events built ahead of the body.
pub(super) const KEPT: usize = 16;
/// Largest buffer kept: a huge event's buffer goes back to the allocator rather than
/// staying pinned in a pool.
const MAX_CAPACITY: usize = 16 * 1024;
/// A fresh buffer's capacity: a typical event fits without growing.
const INITIAL_CAPACITY: usize = 256;

thread_local! {
    // Boxed on purpose: events hold a `Box<Fields>`, so taking and giving one back
    // moves a pointer and keeps the box's allocation.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<Fields>>> = const { RefCell::new(Vec::new()) };
}

#[inline]
pub(super) fn take() -> Box<Fields> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            Box::new(Fields {
                buf: BytesMut::with_capacity(INITIAL_CAPACITY),
                lens: Default::default(),
            })
        })
}

#[inline]
pub(super) fn give(mut fields: Box<Fields>) {
    if fields.buf.capacity() == 0 || fields.buf.capacity() > MAX_CAPACITY {
        return;
    }
    fields.buf.clear();
    fields.lens = Default::default();
    // Fails only while the thread is exiting: the buffer is then simply freed.
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < KEPT {
                pool.push(fields);
            }
        }
    });
}

#[cfg(test)]
fn len() -> usize {
    POOL.with(|pool| pool.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn frame(event: &Event) -> String {
        String::from_utf8(event.encode().into_bytes().to_vec()).unwrap()
    }

    #[test]
    fn buffers_return_to_the_pool() {
        drop(Event::new().data("warm"));
        let kept = len();
        assert!(kept >= 1);
        let event = Event::new().data("x");
        assert_eq!(len(), kept - 1, "the new event reuses a pooled buffer");
        let copy = event.clone();
        drop(event);
        drop(copy);
        assert!(len() >= kept);
        // An empty event holds no buffer, and a huge one is not kept.
        let before = len();
        drop(Event::new());
        assert_eq!(len(), before);
        let huge = Event::new().data("x".repeat(64 * 1024));
        let before = len();
        drop(huge);
        assert_eq!(len(), before);
    }

    #[test]
    fn events_dropped_on_another_thread_stay_within_the_bound() {
        let events: Vec<Event> = (0..100).map(|n| Event::new().id_u64(n).data("x")).collect();
        let (kept, frame) = std::thread::spawn(move || {
            let frame = frame(&events[99]);
            drop(events);
            (len(), frame)
        })
        .join()
        .unwrap();
        assert_eq!(frame, "id: 99\ndata: x\n\n");
        assert_eq!(kept, KEPT, "the dropping thread keeps at most its bound");
    }
}
