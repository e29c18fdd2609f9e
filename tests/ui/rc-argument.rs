use std::rc::Rc;

#[jobs::background_job]
async fn total(values: Rc<Vec<u64>>) {
    let _ = values.iter().sum::<u64>();
}

fn main() {}
