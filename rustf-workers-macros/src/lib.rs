//! Procedural macros for `rustf-workers`: `#[worker]` and `auto_workers!()`.
//!
//! Use them through `rustf_workers`, which re-exports both; generated code refers only to
//! `::rustf_workers::__private` and `::core`, so this crate is never a direct dependency.
//! The guide is `docs/registration.md` in the repository.

use proc_macro::TokenStream;

mod auto;
mod duration;
mod expand;
mod names;
mod parse;
mod quantity;
mod scan;
mod size;
mod validate;

/// Registers an `async fn` as a worker at build time.
///
/// ```text
/// #[worker("send-email", timeout = "30s")]
/// async fn send_email(ctx: WorkerContext, input: SendEmail) -> Result<()> { ... }
/// ```
///
/// The function stays as written. The name is kebab or snake case; the optional second
/// parameter is a typed payload (`serde::Deserialize`). Options, each at most once:
/// `timeout = "30s"` and `idle_timeout = "5m"` (a whole number of `ms`, `s`, `m` or `h`),
/// `concurrency = 4` (at least 1), `retries = 3`, `daemon = true`, `durable = true`,
/// `cron = "0 3 * * *"`, and `memory = "64MB"` (a whole number of `B`, `KB`, `MB` or
/// `GB`, binary: `"64MB"` is 64 × 2^20 bytes).
/// `docs/registration.md` says what each one does.
#[proc_macro_attribute]
pub fn worker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::worker(args.into(), item.into()).into()
}

/// Compiles every `.rs` file under the crate's `src/workers/` (up to 3 directory levels)
/// into a `workers` module, and gives the [`Installer`] for files in the `install()` form.
///
/// At the crate root, `auto_workers!();` declares `mod workers` with a
/// `workers::installer()` function. As an expression, `auto_workers!()` is the installer:
/// `auto_workers!().install().await?`.
///
/// [`Installer`]: https://docs.rs/rustf-workers/latest/rustf_workers/struct.Installer.html
#[proc_macro]
pub fn auto_workers(input: TokenStream) -> TokenStream {
    let position = auto::Position::of_call_site();
    auto::auto_workers(input.into(), position).into()
}
