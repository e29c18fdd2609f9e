struct Db;

#[jobs::background_job]
async fn cleanup(days: u32, #[state] db: Db) {
    let _ = (days, db);
}

fn main() {}
