//! memcached codec: the text protocol and the meta protocol, parsed in place from a connection's
//! read buffer, and the reply lines memcached writes. No I/O, no knowledge of the keyspace.
//!
//! - [`request`]: `parse(buf, limits) -> Parsed` yields a borrowed [`request::Command`], *incomplete*,
//!   or an error the server answers and recovers from (memcached keeps the connection open for most
//!   errors and swallows the data block of a refused storage command so the stream stays in sync).
//! - [`reply`]: functions that append memcached reply lines (`VALUE`, `END`, `STORED`, `HD`, `VA` …).
#![deny(missing_docs)]

pub mod reply;
pub mod request;

pub use request::{parse, Command, Limits, Parsed};
