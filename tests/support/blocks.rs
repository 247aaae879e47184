//! Reads an SSE body one block at a time (a block ends with a blank line), every wait
//! bounded, so a broken build fails instead of hanging.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

/// Upper bound on any single wait.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Most frames read while waiting for one block or for the end.
const MAX_FRAMES: usize = 1_000;

/// Runs `future` for at most [`WAIT`], naming `what` it waited for if it times out.
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// A body read block by block; frames may split or join blocks, this does not care.
pub(crate) struct Blocks<B> {
    body: Pin<Box<B>>,
    buf: BytesMut,
}

impl<B> Blocks<B>
where
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    pub(crate) fn new(body: B) -> Self {
        Self {
            body: Box::pin(body),
            buf: BytesMut::new(),
        }
    }

    /// The next block, blank line included; panics if the body ends or fails first.
    pub(crate) async fn next(&mut self) -> String {
        for _ in 0..MAX_FRAMES {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = self.buf.split_to(end + 2);
                return String::from_utf8(block.to_vec()).expect("UTF-8 body");
            }
            match within("the next block", self.body.frame()).await {
                Some(Ok(frame)) => {
                    let data = frame.into_data().expect("a data frame, not trailers");
                    self.buf.extend_from_slice(&data);
                }
                Some(Err(error)) => panic!("body failed before the next block: {error:?}"),
                None => panic!("body ended before the next block; left: {:?}", self.buf),
            }
        }
        panic!("no block in {MAX_FRAMES} frames");
    }

    /// Asserts the body ends cleanly next: no more bytes, no trailers, no error.
    pub(crate) async fn end(&mut self) {
        assert!(self.buf.is_empty(), "bytes left: {:?}", self.buf);
        expect_end(&mut self.body).await;
    }

    /// The next frame's result as it comes, for tests that expect an error.
    pub(crate) async fn next_frame(&mut self) -> Option<Result<Bytes, B::Error>> {
        let frame = within("the next frame", self.body.frame()).await?;
        Some(frame.map(|frame| frame.into_data().expect("a data frame, not trailers")))
    }
}

/// Asserts `body` ends cleanly next: no more data, no trailers, no error.
pub(crate) async fn expect_end<B>(body: &mut B)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Debug,
{
    for _ in 0..MAX_FRAMES {
        match within("the end of the body", body.frame()).await {
            None => return,
            // An HTTP/2 peer may close the stream with an empty DATA frame.
            Some(Ok(frame)) => {
                let data = frame.into_data().expect("no trailers");
                assert!(data.is_empty(), "more data instead of the end: {data:?}");
            }
            Some(Err(error)) => panic!("body ended with an error, not cleanly: {error:?}"),
        }
    }
    panic!("body did not end in {MAX_FRAMES} frames");
}
