//! Every supported argument shape goes through a real enqueue → storage → worker round trip and
//! arrives in the job function equal to what was enqueued.

use jobs::{background_job, enqueue, Client, MemoryStorage, Worker};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Address {
    street: String,
    zip: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct User {
    id: u64,
    name: String,
    address: Address,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Plan {
    Free,
    Pro { seats: u32 },
    Custom(String, f64),
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
struct Meters(f64);

/// One job's name and the values it received.
type Received = (&'static str, Box<dyn Any + Send>);

/// What the job functions received, in the order they ran.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

impl Seen {
    fn record(&self, job: &'static str, value: impl Any + Send) {
        self.0.lock().unwrap().push((job, Box::new(value)));
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn take<T: Any>(&self, job: &str) -> T {
        let mut seen = self.0.lock().unwrap();
        let at = seen
            .iter()
            .position(|(name, _)| *name == job)
            .unwrap_or_else(|| panic!("job {job} did not run"));
        *seen.remove(at).1.downcast::<T>().expect("recorded type")
    }
}

#[background_job]
async fn user_types(user: User, plan: Plan, other: Plan, unit_variant: Plan, #[state] seen: Seen) {
    seen.record("user_types", (user, plan, other, unit_variant));
}

#[background_job]
fn collections(
    list: Vec<u64>,
    some: Option<String>,
    none: Option<String>,
    map: HashMap<String, Vec<u8>>,
    int_keys: HashMap<u32, Address>,
    set: BTreeSet<char>,
    #[state] seen: Seen,
) {
    seen.record("collections", (list, some, none, map, int_keys, set));
}

type Pairs = Vec<(Plan, Option<Address>)>;

#[background_job]
async fn tuples(
    pair: (u8, String),
    nested: Pairs,
    triple: (bool, Meters, ()),
    #[state] seen: Seen,
) {
    seen.record("tuples", (pair, nested, triple));
}

#[background_job]
async fn scalars(
    big: u128,
    negative: i64,
    ch: char,
    text: String,
    array: [u16; 3],
    #[state] seen: Seen,
) {
    seen.record("scalars", (big, negative, ch, text, array));
}

#[background_job]
async fn no_arguments(#[state] seen: Seen) {
    seen.record("no_arguments", ());
}

fn user() -> User {
    User {
        id: u64::MAX,
        name: "Zoë \"quoted\" \\ ✓".to_owned(),
        address: Address {
            street: "1 Main St\nFloor 2".to_owned(),
            zip: None,
        },
        tags: vec!["a".to_owned(), String::new()],
    }
}

#[tokio::test]
async fn every_argument_shape_round_trips() -> anyhow::Result<()> {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let seen = Seen::default();

    let map = HashMap::from([
        ("empty".to_owned(), vec![]),
        ("bytes".to_owned(), vec![0, 255, 7]),
    ]);
    let int_keys = HashMap::from([
        (
            7,
            Address {
                street: "x".to_owned(),
                zip: Some(12345),
            },
        ),
        (0, user().address),
    ]);
    let set: BTreeSet<char> = "job".chars().collect();
    let nested = vec![
        (Plan::Pro { seats: 3 }, None),
        (Plan::Free, Some(user().address)),
    ];

    enqueue!(
        &client,
        user_types(
            user(),
            Plan::Pro { seats: 9 },
            Plan::Custom("gold".to_owned(), -2.5),
            Plan::Free
        )
    )
    .await?;
    enqueue!(
        &client,
        collections(
            vec![1, 2, 3],
            Some("x".to_owned()),
            None,
            map.clone(),
            int_keys.clone(),
            set.clone()
        )
    )
    .await?;
    enqueue!(
        &client,
        tuples(
            (8, "eight".to_owned()),
            nested.clone(),
            (true, Meters(0.125), ())
        )
    )
    .await?;
    enqueue!(
        &client,
        scalars(u128::MAX, i64::MIN, '🦀', String::new(), [1, 0, u16::MAX])
    )
    .await?;
    enqueue!(&client, no_arguments()).await?;

    let worker = Worker::builder(storage).state(seen.clone()).build()?;
    let waiting = seen.clone();
    worker
        .run_until(async move {
            for _ in 0..500 {
                if waiting.len() == 5 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await?;

    assert_eq!(
        seen.take::<(User, Plan, Plan, Plan)>("user_types"),
        (
            user(),
            Plan::Pro { seats: 9 },
            Plan::Custom("gold".to_owned(), -2.5),
            Plan::Free
        )
    );
    assert_eq!(
        seen.take::<(
            Vec<u64>,
            Option<String>,
            Option<String>,
            HashMap<String, Vec<u8>>,
            HashMap<u32, Address>,
            BTreeSet<char>
        )>("collections"),
        (
            vec![1, 2, 3],
            Some("x".to_owned()),
            None,
            map,
            int_keys,
            set
        )
    );
    assert_eq!(
        seen.take::<((u8, String), Pairs, (bool, Meters, ()))>("tuples"),
        ((8, "eight".to_owned()), nested, (true, Meters(0.125), ()))
    );
    assert_eq!(
        seen.take::<(u128, i64, char, String, [u16; 3])>("scalars"),
        (u128::MAX, i64::MIN, '🦀', String::new(), [1, 0, u16::MAX])
    );
    seen.take::<()>("no_arguments");
    assert_eq!(seen.len(), 0, "a job ran twice");
    Ok(())
}
