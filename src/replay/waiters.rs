//! The wakers of subscriptions waiting for the next event.

use std::task::Waker;

/// A slab of waker slots, one per waiting subscription, and the list of slots that hold a
/// waker since the last publish.
///
/// A subscription takes a slot the first time it waits and keeps it until it is dropped,
/// so waiting again replaces the waker in place. Publish drains only the armed slots: its
/// cost follows the number of waiting subscriptions, not of all subscriptions. Every vector
/// here is bounded by the most subscriptions that ever waited at once.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Slots to wake on the next publish; each at most once, thanks to `Slot::armed`.
    armed: Vec<usize>,
}

#[derive(Debug, Default)]
struct Slot {
    waker: Option<Waker>,
    /// In `armed`. Stays set when the slot is freed, so a new owner does not list it twice.
    armed: bool,
}

impl Waiters {
    /// Stores `waker` in the subscription's slot, taking a slot first if it has none.
    ///
    /// Returns the waker it replaced, for the caller to drop after unlocking.
    pub(super) fn register(&mut self, slot: &mut Option<usize>, waker: &Waker) -> Option<Waker> {
        let index = match *slot {
            Some(index) => index,
            None => {
                let index = self.alloc();
                *slot = Some(index);
                index
            }
        };
        let entry = self.slots.get_mut(index)?;
        if !entry.armed {
            entry.armed = true;
            self.armed.push(index);
        }
        match &entry.waker {
            Some(current) if current.will_wake(waker) => None,
            _ => entry.waker.replace(waker.clone()),
        }
    }

    fn alloc(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        })
    }

    /// Frees a slot; returns its waker, for the caller to drop after unlocking.
    pub(super) fn release(&mut self, index: usize) -> Option<Waker> {
        let waker = self.slots.get_mut(index)?.waker.take();
        self.free.push(index);
        waker
    }

    /// Takes the wakers of every waiting subscription, to wake after unlocking.
    pub(super) fn take_armed(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::with_capacity(self.armed.len());
        for index in self.armed.drain(..) {
            if let Some(slot) = self.slots.get_mut(index) {
                slot.armed = false;
                wakers.extend(slot.waker.take());
            }
        }
        wakers
    }

    /// Slots, free slots, armed slots.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> (usize, usize, usize) {
        (self.slots.len(), self.free.len(), self.armed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn wakes_each_waiter_once_per_publish() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut waiters = Waiters::default();
        let (mut a, mut b) = (None, None);
        waiters.register(&mut a, &waker);
        // Registering again with the same waker neither clones nor lists it twice.
        assert!(waiters.register(&mut a, &waker).is_none());
        waiters.register(&mut b, &waker);
        assert_eq!((a, b), (Some(0), Some(1)));
        waiters.take_armed().into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
        assert!(waiters.take_armed().is_empty());
    }

    #[test]
    fn churn_does_not_grow() {
        let waker = Waker::from(Arc::new(Count::default()));
        let mut waiters = Waiters::default();
        for _ in 0..1_000 {
            let mut slot = None;
            waiters.register(&mut slot, &waker);
            waiters.release(slot.unwrap());
        }
        assert_eq!(waiters.capacity(), (1, 1, 1));
        assert!(waiters.take_armed().is_empty(), "freed slots hold no waker");
    }
}
