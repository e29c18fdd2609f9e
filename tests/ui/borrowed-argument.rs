#[jobs::background_job]
async fn greet(name: &str) {
    println!("hello {name}");
}

fn main() {}
