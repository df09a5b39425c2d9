//! Equal texts, one copy: alert summaries and actions repeat across
//! sessions (a fleet logged out with the same reason says the same thing
//! 100,000 times), so the evaluator keeps each distinct text once and
//! every alert holding it shares it.

use std::collections::HashSet;
use std::sync::Arc;

/// Most distinct texts remembered; past it, texts no alert holds any more
/// are forgotten (and, if that is not enough, all of them: a text still
/// held stays valid, only its sharing with later equal ones is lost).
const MAX_TEXTS: usize = 50_000;

#[derive(Default)]
pub(super) struct Texts {
    known: HashSet<Arc<str>>,
}

impl Texts {
    /// The shared copy of `text`.
    pub(super) fn text(&mut self, text: impl AsRef<str> + Into<Arc<str>>) -> Arc<str> {
        if let Some(t) = self.known.get(text.as_ref()) {
            return t.clone();
        }
        if self.known.len() >= MAX_TEXTS {
            self.known.retain(|t| Arc::strong_count(t) > 1);
            if self.known.len() >= MAX_TEXTS {
                self.known.clear();
            }
        }
        let t: Arc<str> = text.into();
        self.known.insert(t.clone());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_are_one_copy_and_the_memory_stays_bounded() {
        let mut texts = Texts::default();
        let a = texts.text(String::from("Logged out (401)"));
        let b = texts.text("Logged out (401)");
        assert!(Arc::ptr_eq(&a, &b));
        for i in 0..MAX_TEXTS + 10 {
            texts.text(format!("text {i}"));
        }
        assert!(texts.known.len() <= MAX_TEXTS);
        // A held text is still the one given out while it is remembered.
        let c = texts.text("Logged out (401)");
        assert_eq!(&*c, "Logged out (401)");
    }
}
