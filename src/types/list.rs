//! A Redis list: representation being written (issue 3).

/// A Redis list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {}

impl List {
    /// Heap bytes the value owns.
    pub fn heap_bytes(&self) -> usize {
        0
    }

    /// The name `OBJECT ENCODING` gives, as redis-server would name this value's encoding.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
