//! The stored name defaults to the function's name; `name = "..."` overrides it; the other
//! options land on the `Job` impl.
#![deny(warnings, unused_qualifications, missing_docs)]

use jobs::Job;
use std::time::Duration;

/// Sends one email.
#[jobs::background_job]
pub async fn send_email(user_id: u64, subject: String) {
    let _ = (user_id, subject);
}

/// Charges an order.
#[jobs::background_job(name = "billing.charge", queue = "critical", retries = 5, timeout = "1m 30s", max_crashes = 2)]
pub fn charge(order_id: u64) -> Result<(), String> {
    let _ = order_id;
    Ok(())
}

#[jobs::background_job]
fn r#move(from: String, to: String) {
    let _ = (from, to);
}

fn main() {
    assert_eq!(<send_email as Job>::NAME, "send_email");
    assert_eq!(<send_email as Job>::QUEUE, "default");
    assert_eq!(<send_email as Job>::TIMEOUT, None);
    assert_eq!(<charge as Job>::NAME, "billing.charge");
    assert_eq!(<charge as Job>::QUEUE, "critical");
    assert_eq!(<charge as Job>::RETRIES, 5);
    assert_eq!(<charge as Job>::TIMEOUT, Some(Duration::from_secs(90)));
    assert_eq!(<r#move as Job>::NAME, "move");
    let _ = jobs::job!(r#move("a".to_owned(), "b".to_owned()));
    let names: Vec<&str> = jobs::registry::jobs().map(|d| d.name).collect();
    for name in ["send_email", "billing.charge", "move"] {
        assert!(names.contains(&name), "{name} is not registered: {names:?}");
    }
    let crash_limit = |name: &str| {
        jobs::registry::jobs()
            .find(|d| d.name == name)
            .and_then(|d| d.max_crashes)
    };
    assert_eq!(crash_limit("billing.charge"), Some(2));
    assert_eq!(crash_limit("send_email"), None, "the worker's default applies");
}
