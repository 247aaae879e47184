//! An event's framed field lines, and where each one lies.

use bytes::BytesMut;

/// What an [`Event`](super::Event) keeps, recycled through the per-thread pool.
#[derive(Default)]
pub(super) struct Fields {
    /// The frame's field lines in wire order (comment, id, event, retry, data), without
    /// the blank line that ends the event.
    pub(super) buf: BytesMut,
    /// How many bytes of `buf` each field takes, in that order; 0 when it is unset (a set
    /// field always writes at least its name and a line end).
    pub(super) lens: [usize; FIELDS],
}

pub(super) const FIELDS: usize = 5;
pub(super) const COMMENT_FIELD: usize = 0;
pub(super) const ID_FIELD: usize = 1;
pub(super) const EVENT_FIELD: usize = 2;
pub(super) const RETRY_FIELD: usize = 3;
pub(super) const DATA_FIELD: usize = 4;

impl Fields {
    #[inline]
    fn start_of(&self, field: usize) -> usize {
        self.lens[..field].iter().sum()
    }

    #[inline]
    pub(super) fn set<E>(
        &mut self,
        field: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        let end = self.buf.len();
        if let Err(err) = write(&mut self.buf) {
            self.buf.truncate(end);
            return Err(err);
        }
        let new = self.buf.len() - end;
        let start = self.start_of(field);
        let old = std::mem::replace(&mut self.lens[field], new);
        // Fields are usually set in wire order, once each: then the new lines already sit
        // where they belong. Otherwise cut the old lines out and rotate the new ones in
        // front of the fields that follow.
        if old != 0 {
            cut(&mut self.buf, start, old);
        }
        if start + old != end {
            self.buf[start..].rotate_right(new);
        }
        Ok(())
    }

    /// Removes `field`'s lines.
    #[cfg(feature = "redis")]
    pub(super) fn remove(&mut self, field: usize) {
        let start = self.start_of(field);
        let len = std::mem::take(&mut self.lens[field]);
        cut(&mut self.buf, start, len);
    }
}

/// Removes `len` bytes at `start`.
fn cut(buf: &mut BytesMut, start: usize, len: usize) {
    let total = buf.len();
    buf.copy_within(start + len..total, start);
    buf.truncate(total - len);
}
