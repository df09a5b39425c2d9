//! The `log` receiver: prints each message to standard output, so the demo
//! shows the whole loop (alert, group, notification) with no service.

use wapulse_core::grouping::GroupMessage;

use super::{Wording, session_list};

/// Prints one message.
pub fn print(receiver: &str, w: &Wording, message: &GroupMessage) {
    let mut text = format!("[notify {receiver}] {}", w.title);
    if message.repeat {
        text.push_str(" (reminder)");
    }
    let list = |alerts, total| session_list(alerts, total, 5).replace('\n', "\n    ");
    if let Some(own) = &w.text {
        text.push_str(&format!("\n    {}", own.replace('\n', "\n    ")));
        println!("{text}");
        return;
    }
    if !message.firing.is_empty() {
        text.push_str(&format!(
            "\n    {}",
            list(&message.firing, message.firing_total)
        ));
    }
    if !message.resolved.is_empty() {
        text.push_str(&format!(
            "\n    resolved: {}",
            list(&message.resolved, message.resolved_total)
        ));
    }
    println!("{text}");
}
