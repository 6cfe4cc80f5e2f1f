//! The one error that parsing input yields: which field, a stable code, and a human message.

/// Input that breaks a rule. `field` names the offending field as the API spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    /// The usual case: the field's value is out of its allowed range or shape.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::with_code(field, "invalid_field", message)
    }

    /// A rule with its own stable code (e.g. `prize_cap_exceeded`).
    pub fn with_code(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }
}
