//! The identifier rule shared by metric names, label names and matchers.

/// Whether `text` is an identifier as Prometheus names metrics and labels:
/// `[A-Za-z_][A-Za-z0-9_]*` (metric names, label names, matcher names).
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::is_identifier;

    #[test]
    fn identifiers_are_prometheus_names() {
        for ok in ["a", "_", "tenant_1", "A9_b"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
