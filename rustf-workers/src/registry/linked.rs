//! Workers registered at build time by `#[worker]`, collected through `inventory`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::run::definition::{Definition, PayloadCheck};
use crate::run::live::LiveRuns;
use crate::{Error, Result, WorkerContext, WorkerOptions};

/// The future a `#[worker]` function's generated starter returns.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

/// One `#[worker]` function, as the macro submits it. `const`-constructible, because
/// `inventory` evaluates it in a `static`.
#[derive(Debug)]
pub struct Registration {
    name: &'static str,
    function: &'static str,
    location: &'static str,
    options: WorkerOptions,
    start: fn(WorkerContext) -> BoxFuture,
    check: Option<PayloadCheck>,
}

impl Registration {
    /// Called by generated code only.
    pub const fn new(
        name: &'static str,
        function: &'static str,
        location: &'static str,
        options: WorkerOptions,
        start: fn(WorkerContext) -> BoxFuture,
        check: Option<PayloadCheck>,
    ) -> Self {
        Self {
            name,
            function,
            location,
            options,
            start,
            check,
        }
    }

    fn origin(&self) -> String {
        format!("`{}` ({})", self.function, self.location)
    }
}

inventory::collect!(Registration);

/// Every linked registration as a definition, by name. A name claimed by more than one
/// function is left out and reported with both origins, never silently picked; so is a
/// registration the runtime refuses.
pub(crate) fn linked(live: &Arc<LiveRuns>) -> (Vec<Definition>, Vec<(String, Error)>) {
    let mut registrations: Vec<&Registration> =
        inventory::iter::<Registration>.into_iter().collect();
    // inventory's order is unspecified; sort so reports are the same on every run.
    registrations.sort_by_key(|r| (r.name, r.function, r.location));
    let mut definitions = Vec::new();
    let mut refused = Vec::new();
    for group in registrations.chunk_by(|a, b| a.name == b.name) {
        let first = group[0];
        if let [_, second, ..] = group {
            refused.push((
                first.name.to_owned(),
                Error::AlreadyRegistered {
                    name: first.name.to_owned(),
                    first: first.origin(),
                    second: second.origin(),
                },
            ));
            continue;
        }
        match Definition::new(
            first.name.to_owned(),
            first.options.clone(),
            first.origin(),
            Arc::clone(live),
            first.start,
        ) {
            Ok(mut definition) => {
                definition.check_payload = first.check;
                definitions.push(definition);
            }
            Err(err) => refused.push((first.name.to_owned(), err)),
        }
    }
    (definitions, refused)
}
