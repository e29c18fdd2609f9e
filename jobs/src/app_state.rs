//! App state injected into jobs: values registered on the worker and handed to `#[state]`
//! parameters by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// Values registered with [`WorkerBuilder::state`](crate::WorkerBuilder::state), by type.
#[derive(Clone, Default)]
pub struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn contains(&self, type_id: TypeId) -> bool {
        self.values.contains_key(&type_id)
    }

    /// A clone of the registered value of type `T`.
    ///
    /// # Errors
    ///
    /// When no value of that type was registered on the worker.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Result<T, String> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
            .ok_or_else(|| {
                format!(
                    "app state of type `{}` is not registered on the worker: add it with \
                     `Worker::builder(..).state(value)`",
                    std::any::type_name::<T>()
                )
            })
    }
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMap")
            .field("values", &self.values.len())
            .finish()
    }
}
