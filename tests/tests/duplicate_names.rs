//! Two functions registered under one job name: the worker refuses to start and names both.
//! (Its own test binary: the clash makes every worker in the binary refuse to build.)

mod billing {
    #[jobs::background_job(name = "charge")]
    pub(crate) async fn charge(order_id: u64) {
        let _ = order_id;
    }
}

mod legacy {
    #[jobs::background_job(name = "charge")]
    pub(crate) async fn old_charge(order_id: u64) {
        let _ = order_id;
    }
}

#[test]
fn build_names_both_functions_that_claim_a_job_name() {
    let err = jobs::Worker::builder(jobs::MemoryStorage::new())
        .build()
        .err()
        .expect("a name clash is a configuration error");
    assert!(err.is_config());
    let message = err.to_string();
    assert!(
        message.contains("two job functions are registered as `charge`"),
        "{message}"
    );
    assert!(
        message.contains("duplicate_names::billing::charge"),
        "{message}"
    );
    assert!(
        message.contains("duplicate_names::legacy::old_charge"),
        "{message}"
    );
    assert!(
        message.contains("tests/tests/duplicate_names.rs:"),
        "{message}"
    );
    assert!(message.contains("name = "), "says how to fix it: {message}");
    let _ = (billing::charge, legacy::old_charge);
}
