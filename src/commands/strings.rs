//! placeholder, being written
use super::Spec;
/// This family's table entries.
pub const COMMANDS: &[Spec] = &[];
