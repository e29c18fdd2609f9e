#[jobs::background_job(name = "")]
async fn charge(order_id: u64) {
    let _ = order_id;
}

fn main() {}
