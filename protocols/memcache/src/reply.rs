//! memcached reply lines, appended to an output buffer.
