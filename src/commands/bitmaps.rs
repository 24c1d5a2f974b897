//! Being written (issue 3).

use super::Spec;

/// This family's table entries.
pub const COMMANDS: &[Spec] = &[];
