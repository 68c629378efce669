//! The expansion of `#[worker]`: the function as written, plus a hidden starter and its
//! registration inside `const _: () = { ... };`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemFn;

use crate::parse::Args;
use crate::validate::{validate, Worker};

pub(crate) fn worker(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[worker]` can only be used on an `async fn`",
            );
            return with_error(item, error);
        }
    };
    let checked = syn::parse2::<Args>(args).and_then(|args| validate(args, &function));
    match checked {
        Ok(worker) => {
            let registration = registration(&worker);
            quote! { #item #registration }
        }
        // The function is still emitted, so its callers do not cascade into "cannot find
        // function" errors on top of the real one.
        Err(error) => with_error(item, error),
    }
}

fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote! { #item #error }
}

fn registration(worker: &Worker) -> TokenStream {
    let Worker {
        name,
        timeout_ms,
        concurrency,
        retries,
        daemon,
        durable,
        memory,
        idle_timeout_ms,
        cron,
        function,
        context_span,
        payload,
        output_span,
    } = worker;
    let private = quote!(::rustf_workers::__private);
    let function_name = function.to_string();

    // Spanned at the user's first parameter type, so one that is not a `WorkerContext`
    // is reported there.
    let ctx = quote_spanned!(*context_span=> ctx);
    let call = match payload {
        Some(ty) => quote! {
            let input: #ty = (__RUSTF_PAYLOAD.read)(ctx.worker_name(), ctx.payload())?;
            #function(#ctx, input).await
        },
        None => quote! { #function(#ctx).await },
    };
    let payload_fns = payload.as_ref().map(|ty| {
        quote! {
            const __RUSTF_PAYLOAD: #private::PayloadFns<#ty> = #private::payload_fns::<#ty>();
        }
    });
    // The second `output` is spanned at the user's return type, so a wrong one is
    // reported there.
    let checked = quote_spanned!(*output_span=> output);
    let body = quote! {
        let output = { #call };
        let output: #private::Result<()> = #checked;
        output
    };
    // Spanned at the function's name, so a future that is not `Send` is reported there.
    let future = quote_spanned! {function.span()=>
        ::rustf_workers::__private::Box::pin(async move { #body })
    };
    let check = match payload {
        Some(_) => quote! { ::core::option::Option::Some(__RUSTF_PAYLOAD.check) },
        None => quote! { ::core::option::Option::None },
    };
    let timeout =
        timeout_ms.map(|ms| quote! { .timeout(::core::time::Duration::from_millis(#ms)) });
    let concurrency = concurrency.map(|max| quote! { .concurrency(#max) });
    let retries = retries.map(|n| quote! { .retries(#n) });
    let daemon = daemon.map(|flag| quote! { .daemon(#flag) });
    let durable = durable.map(|flag| quote! { .durable(#flag) });
    let memory = memory.map(|bytes| quote! { .memory(#bytes) });
    let idle = idle_timeout_ms
        .map(|ms| quote! { .idle_timeout(::core::time::Duration::from_millis(#ms)) });
    let cron = cron.as_ref().map(|expr| quote! { .cron(#expr) });
    let options = quote! {
        #private::WorkerOptions::new() #timeout #concurrency #retries #daemon #durable #memory #idle #cron
    };

    quote! {
        #[doc(hidden)]
        const _: () = {
            #payload_fns
            fn __rustf_worker_start(ctx: #private::WorkerContext) -> #private::BoxFuture {
                #future
            }
            #private::inventory::submit! {
                #private::Registration::new(
                    #name,
                    ::core::concat!(::core::module_path!(), "::", #function_name),
                    ::core::concat!(::core::file!(), ":", ::core::line!()),
                    #options,
                    __rustf_worker_start,
                    #check,
                )
            }
        };
    }
}
