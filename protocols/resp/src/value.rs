//! An owned RESP2/RESP3 frame and a parser for any frame — the client side of the protocol.
