#[jobs::background_job(name = billing_charge)]
async fn charge(order_id: u64) {
    let _ = order_id;
}

fn main() {}
