use std::cell::Cell;

#[derive(serde::Serialize, serde::Deserialize)]
struct Counter {
    hits: Cell<u64>,
}

// `Cell` serializes, but a job's arguments travel to a worker thread.
#[jobs::background_job]
async fn count(counter: Counter) {
    counter.hits.set(counter.hits.get() + 1);
}

fn main() {}
