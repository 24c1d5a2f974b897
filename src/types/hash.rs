//! A Redis hash: representation being written (issue 3).

/// A Redis hash.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hash {}

impl Hash {
    /// Heap bytes the value owns.
    pub fn heap_bytes(&self) -> usize {
        0
    }

    /// The name `OBJECT ENCODING` gives, as redis-server would name this value's encoding.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
