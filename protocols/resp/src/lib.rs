//! RESP codec: turns the bytes a Redis client sends into commands, and replies into bytes.
//!
//! Three parts, none of which performs I/O or knows about the keyspace:
//! - [`request`]: the server side. Multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
//!   (`GET k\r\n`) commands, parsed in place from a connection's read buffer. Arguments are
//!   returned as spans into that buffer, so parsing a command allocates nothing once the
//!   caller's [`request::Args`] has grown to fit. Errors are worded, and raised at the same
//!   byte, as redis-server 7.0 raises them; [`request::parse_request_unauthenticated`] adds the
//!   bounds redis applies before `AUTH`.
//! - [`encode`]: writes every RESP2/RESP3 reply type into an output `Vec<u8>`, downgrading RESP3
//!   types the way redis-server does when the client speaks RESP2.
//! - [`value`]: an owned tree of any RESP2/RESP3 frame and a parser for it — the client side,
//!   used by replication (reading a primary's replies), tests and tools.
//!
//! Incomplete input is an ordinary outcome ([`request::Status::Incomplete`]), never an error.
#![deny(missing_docs)]

pub mod encode;
pub mod request;
pub mod value;

pub use encode::{format_double, Encoder, Version};
pub use request::{parse_request, parse_request_unauthenticated, Args, Limits, ProtocolError, Status};
pub use value::{parse_value, Value};
