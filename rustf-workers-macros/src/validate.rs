//! Checking a `#[worker]` function and its options; every problem is reported at once.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Lit, LitStr, ReturnType, Type};

use crate::duration::parse_millis;
use crate::names::invalid_name;
use crate::parse::Args;
use crate::size::parse_bytes;

/// A worker function that passed every check.
pub(crate) struct Worker {
    pub(crate) name: LitStr,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) retries: Option<u32>,
    pub(crate) daemon: Option<bool>,
    pub(crate) durable: Option<bool>,
    pub(crate) memory: Option<u64>,
    pub(crate) idle_timeout_ms: Option<u64>,
    pub(crate) cron: Option<LitStr>,
    pub(crate) function: syn::Ident,
    /// Where to point a first parameter that is not a `WorkerContext`.
    pub(crate) context_span: Span,
    pub(crate) payload: Option<Type>,
    /// Where to point a wrong return type.
    pub(crate) output_span: Span,
}

const OPTIONS: &str =
    "`timeout`, `concurrency`, `retries`, `daemon`, `durable`, `memory`, `idle_timeout` or `cron`";

/// Collects errors, so the user sees all of them in one build.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

pub(crate) fn validate(args: Args, item: &ItemFn) -> syn::Result<Worker> {
    let mut errors = Errors::default();

    if let Some(reason) = invalid_name(&args.name.value()) {
        errors.spanned(&args.name, format!("worker name {reason}"));
    }

    let mut timeout_ms = None;
    let mut concurrency = None;
    let mut retries = None;
    let mut daemon = None;
    let mut durable = None;
    let mut memory = None;
    let mut idle_timeout_ms = None;
    let mut cron = None;
    let mut seen = Vec::new();
    for option in &args.options {
        let key = option.key.to_string();
        if !matches!(
            key.as_str(),
            "timeout"
                | "concurrency"
                | "retries"
                | "daemon"
                | "durable"
                | "memory"
                | "idle_timeout"
                | "cron"
        ) {
            errors.spanned(
                &option.key,
                format!("unknown option `{key}`; expected {OPTIONS}"),
            );
            continue;
        }
        if seen.contains(&key) {
            errors.spanned(&option.key, format!("`{key}` specified more than once"));
            continue;
        }
        seen.push(key.clone());
        match (key.as_str(), &option.value) {
            ("timeout", Lit::Str(text)) => match parse_millis(&text.value()) {
                Ok(ms) => timeout_ms = Some(ms),
                Err(message) => errors.spanned(text, message),
            },
            ("timeout", other) => errors.spanned(
                other,
                "`timeout` takes a duration string: `timeout = \"30s\"`",
            ),
            ("concurrency", Lit::Int(number)) => match number.base10_parse::<usize>() {
                Ok(0) => errors.spanned(number, "`concurrency` must be at least 1"),
                Ok(max) => concurrency = Some(max),
                Err(_) => errors.spanned(
                    number,
                    "`concurrency` takes a whole number: `concurrency = 3`",
                ),
            },
            ("retries", Lit::Int(number)) => match number.base10_parse::<u32>() {
                Ok(n) => retries = Some(n),
                Err(_) => errors.spanned(number, "`retries` takes a whole number: `retries = 3`"),
            },
            ("daemon", Lit::Bool(flag)) => daemon = Some(flag.value),
            ("durable", Lit::Bool(flag)) => durable = Some(flag.value),
            ("idle_timeout", Lit::Str(text)) => match parse_millis(&text.value()) {
                Ok(ms) => idle_timeout_ms = Some(ms),
                Err(message) => errors.spanned(text, message),
            },
            ("idle_timeout", other) => errors.spanned(
                other,
                "`idle_timeout` takes a duration string: `idle_timeout = \"5m\"`",
            ),
            ("memory", Lit::Str(text)) => match parse_bytes(&text.value()) {
                Ok(bytes) => memory = Some(bytes),
                Err(message) => errors.spanned(text, message),
            },
            ("memory", other) => {
                errors.spanned(other, "`memory` takes a size string: `memory = \"64MB\"`")
            }
            ("cron", Lit::Str(text)) => match cron_shape(&text.value()) {
                Ok(()) => cron = Some(text.clone()),
                Err(message) => errors.spanned(text, message),
            },
            ("cron", other) => errors.spanned(
                other,
                "`cron` takes a cron expression string: `cron = \"0 3 * * *\"`",
            ),
            ("daemon", other) => errors.spanned(other, "`daemon` takes `true` or `false`"),
            ("durable", other) => errors.spanned(other, "`durable` takes `true` or `false`"),
            (key, other) => {
                errors.spanned(other, format!("`{key}` takes a whole number: `{key} = 3`"))
            }
        }
    }

    let sig = &item.sig;
    if sig.asyncness.is_none() {
        errors.spanned(sig.fn_token, "`#[worker]` requires an `async fn`");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(unsafety, "`#[worker]` cannot be used on an `unsafe fn`");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "`#[worker]` cannot be used on an `extern fn`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(&sig.generics, "`#[worker]` functions cannot be generic");
    }

    let mut payload = None;
    let mut context_span = None;
    for (index, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = input else {
            errors.spanned(
                input,
                "`#[worker]` cannot be used on methods: remove the `self` parameter",
            );
            continue;
        };
        match index {
            // Its type is checked by rustc, at this span, where the generated code passes
            // a `WorkerContext`: an alias or a renamed import is fine.
            0 => context_span = Some(typed.ty.span()),
            1 => payload = Some((*typed.ty).clone()),
            _ => errors.spanned(
                input,
                "`#[worker]` functions take `ctx: WorkerContext` and at most one payload parameter",
            ),
        }
    }
    if context_span.is_none() && !sig.inputs.iter().any(|i| matches!(i, FnArg::Receiver(_))) {
        errors.spanned(
            &sig.ident,
            "`#[worker]` functions take `ctx: WorkerContext` as their first parameter",
        );
    }

    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => {
            errors.spanned(&sig.ident, "`#[worker]` functions must return `Result<()>`");
            sig.ident.span()
        }
    };

    errors.finish(Worker {
        name: args.name,
        timeout_ms,
        concurrency,
        retries,
        daemon,
        durable,
        memory,
        idle_timeout_ms,
        cron,
        function: sig.ident.clone(),
        context_span: context_span.unwrap_or_else(|| sig.ident.span()),
        payload,
        output_span,
    })
}

/// Checks the shape of a cron expression: five or six fields, or one `@alias`. The fields
/// themselves are checked at registration, by the runtime crate's parser.
fn cron_shape(expr: &str) -> Result<(), String> {
    let fields = expr.split_whitespace().count();
    match fields {
        0 => Err("empty cron expression; expected five fields, e.g. `\"0 3 * * *\"`".to_owned()),
        1 if expr.trim_start().starts_with('@') => Ok(()),
        5 | 6 => Ok(()),
        n => Err(format!(
            "cron expression `{expr}` has {n} field{}; expected 5 (`minute hour \
             day-of-month month day-of-week`), 6 (with a second first) or an alias such as \
             `@daily`",
            if n == 1 { "" } else { "s" }
        )),
    }
}
