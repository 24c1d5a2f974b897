//! The replication backlog: a ring of the last `repl-backlog-size` bytes of the replication
//! stream, so a replica that lost its link asks for what it missed (PSYNC <replid> <offset>)
//! and gets it (+CONTINUE) instead of a whole new snapshot.
//!
//! Offsets are stream positions counted from the start of the stream: `end` is
//! `master_repl_offset` (bytes ever appended); the ring holds `end - histlen .. end`. Redis
//! reports `repl_backlog_first_byte_offset` as the 1-based position of the first byte held,
//! `end - histlen + 1`, and a replica asks PSYNC for the 1-based position of the first byte it
//! lacks, which is the count of bytes it has plus one.

/// See the module documentation.
pub struct Backlog {
    /// Ring storage, `size` bytes once full (grown lazily up to it).
    buf: Vec<u8>,
    size: usize,
    /// Index in `buf` where the next byte goes.
    head: usize,
    /// Bytes of history held (≤ size).
    histlen: usize,
    /// Stream offset after the last byte held.
    end: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose stream continues from `offset`.
    pub fn new(size: usize, offset: u64) -> Backlog {
        Backlog { buf: Vec::new(), size: size.max(1), head: 0, histlen: 0, end: offset }
    }

    /// Configured size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes of history held.
    pub fn histlen(&self) -> usize {
        self.histlen
    }

    /// Stream offset after the last byte held (`master_repl_offset` once drained).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Stream offset of the first byte held (0-based: bytes before it).
    pub fn start(&self) -> u64 {
        self.end - self.histlen as u64
    }

    /// Appends stream bytes, forgetting the oldest ones past `size`.
    pub fn append(&mut self, mut bytes: &[u8]) {
        self.end += bytes.len() as u64;
        self.histlen = (self.histlen + bytes.len()).min(self.size);
        if bytes.len() >= self.size {
            bytes = &bytes[bytes.len() - self.size..];
            self.buf.clear();
            self.buf.extend_from_slice(bytes);
            self.head = 0;
            return;
        }
        while !bytes.is_empty() {
            if self.buf.len() < self.size && self.head == self.buf.len() {
                // Still growing: append in place rather than allocate the whole ring up front
                // (a server with a 1 GB backlog and little traffic keeps little).
                let take = bytes.len().min(self.size - self.buf.len());
                self.buf.extend_from_slice(&bytes[..take]);
                self.head = self.buf.len() % self.size;
                bytes = &bytes[take..];
            } else {
                let take = bytes.len().min(self.buf.len() - self.head);
                self.buf[self.head..self.head + take].copy_from_slice(&bytes[..take]);
                self.head = (self.head + take) % self.size;
                bytes = &bytes[take..];
            }
        }
    }

    /// Copies the bytes from stream offset `from` (0-based) to the end into `out`; false when
    /// `from` is not held (too old, or beyond the end).
    pub fn copy_from(&self, from: u64, out: &mut Vec<u8>) -> bool {
        if from < self.start() || from > self.end {
            return false;
        }
        let n = (self.end - from) as usize;
        if n == 0 {
            return true;
        }
        let len = self.buf.len();
        // The byte before `head` is the newest; `n` bytes back from there.
        let begin = (self.head + len - n % len.max(1)) % len.max(1);
        if begin + n <= len {
            out.extend_from_slice(&self.buf[begin..begin + n]);
        } else {
            out.extend_from_slice(&self.buf[begin..]);
            out.extend_from_slice(&self.buf[..n - (len - begin)]);
        }
        true
    }

    /// CONFIG SET repl-backlog-size: keeps the newest history that fits.
    pub fn resize(&mut self, size: usize) {
        let size = size.max(1);
        if size == self.size {
            return;
        }
        let keep = self.histlen.min(size);
        let mut tail = Vec::with_capacity(keep);
        self.copy_from(self.end - keep as u64, &mut tail);
        let end = self.end;
        *self = Backlog::new(size, end - keep as u64);
        self.append(&tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(b: &Backlog) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(b.copy_from(b.start(), &mut out));
        out
    }

    #[test]
    fn keeps_the_newest_bytes_across_wraps() {
        let mut b = Backlog::new(8, 100);
        b.append(b"abc");
        assert_eq!((b.start(), b.end(), held(&b)), (100, 103, b"abc".to_vec()));
        b.append(b"defgh");
        assert_eq!(held(&b), b"abcdefgh");
        b.append(b"ij");
        assert_eq!((b.start(), b.end(), held(&b)), (102, 110, b"cdefghij".to_vec()));
        b.append(b"klmnopqrstu");
        assert_eq!(held(&b), b"nopqrstu");
        let mut out = Vec::new();
        assert!(b.copy_from(b.end() - 3, &mut out));
        assert_eq!(out, b"stu");
        assert!(!b.copy_from(b.start() - 1, &mut out), "too old");
        assert!(!b.copy_from(b.end() + 1, &mut out), "beyond the end");
        out.clear();
        assert!(b.copy_from(b.end(), &mut out) && out.is_empty());
    }

    #[test]
    fn matches_a_plain_tail_for_any_chunking() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        for size in [1usize, 5, 64, 1000, 5000] {
            for chunk in [1usize, 3, 17, 400] {
                let mut b = Backlog::new(size, 0);
                for c in data.chunks(chunk) {
                    b.append(c);
                }
                let keep = size.min(data.len());
                assert_eq!(held(&b), data[data.len() - keep..].to_vec(), "size {size} chunk {chunk}");
                assert_eq!(b.end(), data.len() as u64);
            }
        }
    }

    #[test]
    fn resizing_keeps_what_fits() {
        let mut b = Backlog::new(10, 0);
        b.append(b"0123456789abc");
        b.resize(4);
        assert_eq!((held(&b), b.end()), (b"9abc".to_vec(), 13));
        b.resize(20);
        b.append(b"def");
        assert_eq!(held(&b), b"9abcdef");
    }
}
