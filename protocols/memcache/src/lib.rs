//! memcached codec: the text, meta and binary protocols, parsed in place from a connection's
//! read buffer, and the reply lines memcached writes. No I/O, no knowledge of the keyspace.
//!
//! - [`request`]: `parse(buf, limits) -> Parsed` yields a borrowed [`request::Command`], *incomplete*,
//!   or an error the server answers and recovers from (memcached keeps the connection open for most
//!   errors and swallows the data block of a refused storage command so the stream stays in sync).
//! - [`reply`]: functions that append memcached reply lines (`VALUE`, `END`, `STORED`, `HD`, `VA` …).
//! - [`binary`]: the binary protocol's 24-byte-header frames: `binary::parse` and the response
//!   encoder, with memcached's status codes and error texts.
//! - [`base64`]: the key encoding of the meta protocol's `b` flag, decoded as memcached does.
//!
//! The reference is memcached 1.6.18: every reply line, error wording and recovery rule here was
//! checked against the real server, and the tests say what it answered.
#![deny(missing_docs)]

pub mod base64;
pub mod binary;
mod num;
pub mod reply;
pub mod request;

pub use request::{parse, Command, Limits, Parsed};
