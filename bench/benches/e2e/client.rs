//! The load client's HTTP/1.1 connection: one SSE response read off a raw socket.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::now_micros;

/// What one connection saw.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) events: u64,
    /// Microseconds from publish to read, for fan-out ticks.
    pub(crate) latencies: Vec<u32>,
    /// Whether the end event (fan-out) or the end of the body (burst) arrived.
    pub(crate) complete: bool,
}

/// One SSE response read off a raw socket: the head, then the chunked body, parsed in
/// place into lines. Raw parsing keeps the client cheaper than either server.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes left in the current chunk, and whether its trailing CRLF is still due.
    chunk_left: usize,
    chunk_crlf: bool,
    /// A data line split across chunks or reads.
    line: Vec<u8>,
    /// The current event carries a `data:` line, and is the end event.
    has_data: bool,
    is_end: bool,
    ts: Option<u64>,
}

impl Conn {
    /// Sends `GET path` and reads the response head; `buf_size` is the read buffer.
    pub(crate) async fn open(port: u16, path: &str, buf_size: usize) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut conn = Self {
            stream,
            buf: vec![0; buf_size],
            start: 0,
            end: 0,
            chunk_left: 0,
            chunk_crlf: false,
            line: Vec::new(),
            has_data: false,
            is_end: false,
            ts: None,
        };
        conn.read_head().await?;
        Ok(conn)
    }

    /// Reads and drops what arrives until `deadline` or the end of the response, calling
    /// `arrived` after each read that returned bytes.
    pub(crate) async fn read_arrivals(&mut self, deadline: Instant, mut arrived: impl FnMut()) {
        (self.start, self.end) = (0, 0);
        while let Ok(Ok(1..)) = timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.stream.read(&mut self.buf),
        )
        .await
        {
            arrived();
        }
    }

    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    async fn read_head(&mut self) -> std::io::Result<()> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                if !pending.starts_with(b"HTTP/1.1 200") {
                    return Err(std::io::Error::other("not 200"));
                }
                self.start += at + 4;
                return Ok(());
            }
            if !self.fill().await? {
                return Err(std::io::Error::other("closed in head"));
            }
        }
    }

    /// Reads until the body ends, the end event arrives or `deadline`.
    pub(crate) async fn read_events(
        &mut self,
        seen: &mut Seen,
        deadline: Instant,
    ) -> std::io::Result<()> {
        loop {
            let now = now_micros();
            if self.parse(seen, now)? {
                seen.complete = true;
                return Ok(());
            }
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.fill(),
            )
            .await
            {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Ok(()),
                Ok(Err(error)) => return Err(error),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Parses what is buffered; true at the last chunk or the end event.
    fn parse(&mut self, seen: &mut Seen, now: u64) -> std::io::Result<bool> {
        loop {
            if self.chunk_left > 0 {
                let take = self.chunk_left.min(self.end - self.start);
                if take == 0 {
                    return Ok(false);
                }
                let (from, to) = (self.start, self.start + take);
                self.start = to;
                self.chunk_left -= take;
                // Split borrows: the data is copied out only for a line that straddles.
                let data = std::mem::take(&mut self.buf);
                let done = self.lines(&data[from..to], seen, now);
                self.buf = data;
                if done {
                    return Ok(true);
                }
                continue;
            }
            let pending = &self.buf[self.start..self.end];
            if self.chunk_crlf {
                if pending.len() < 2 {
                    return Ok(false);
                }
                self.start += 2;
                self.chunk_crlf = false;
                continue;
            }
            let Some(at) = memchr::memchr(b'\n', pending) else {
                return Ok(false);
            };
            let size = std::str::from_utf8(&pending[..at])
                .ok()
                .map(|s| s.trim_end_matches('\r'))
                .and_then(|s| usize::from_str_radix(s.split(';').next()?, 16).ok())
                .ok_or_else(|| std::io::Error::other("bad chunk size"))?;
            self.start += at + 1;
            if size == 0 {
                return Ok(true);
            }
            self.chunk_left = size;
            self.chunk_crlf = true;
        }
    }

    /// Splits chunk data into lines; true when the end event is dispatched.
    fn lines(&mut self, mut data: &[u8], seen: &mut Seen, now: u64) -> bool {
        while let Some(at) = memchr::memchr(b'\n', data) {
            let done = if self.line.is_empty() {
                self.line_done(&data[..at], seen, now)
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&data[..at]);
                let done = self.line_done(&line, seen, now);
                line.clear();
                self.line = line;
                done
            };
            if done {
                return true;
            }
            data = &data[at + 1..];
        }
        self.line.extend_from_slice(data);
        false
    }

    fn line_done(&mut self, line: &[u8], seen: &mut Seen, now: u64) -> bool {
        if line.is_empty() {
            // Dispatch: comment-only blocks (opening frame, keep-alive) are not events.
            let is_end = std::mem::take(&mut self.is_end);
            if std::mem::take(&mut self.has_data) {
                if is_end {
                    return true;
                }
                seen.events += 1;
                if let Some(ts) = self.ts.take() {
                    seen.latencies
                        .push(now.saturating_sub(ts).min(u32::MAX as u64) as u32);
                }
            }
            return false;
        }
        if let Some(data) = line.strip_prefix(b"data: ") {
            self.has_data = true;
            self.ts = parse_ts(data);
        } else if line == b"event: end" {
            self.is_end = true;
        }
        false
    }
}

/// The `"ts":` number of a fan-out tick.
fn parse_ts(json: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(json, b"\"ts\":")? + 5;
    let digits = json[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut ts = None;
    for digit in digits {
        ts = Some(ts.unwrap_or(0u64) * 10 + u64::from(digit - b'0'));
    }
    ts
}
