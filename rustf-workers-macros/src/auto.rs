//! The expansion of `auto_workers!()`: a `workers` module with one module per file under
//! `src/workers/`, and the installer for files in the `install()` form.

use std::path::Path;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

use crate::scan::{scan, Node};

/// Where the macro was invoked, which decides what it expands to.
pub(crate) enum Position {
    /// `auto_workers!();` at the crate root or as a statement: items.
    Items,
    /// `auto_workers!().install()`, `let i = auto_workers!();`: an expression.
    Expression,
}

impl Position {
    /// A proc macro is not told whether it stands in item or expression position, and no
    /// expansion is valid in both. So look at the source around the call: a call that
    /// follows a statement boundary and is followed by `;` expands to items; anything
    /// else to an expression. Where the source cannot be read, items.
    pub(crate) fn of_call_site() -> Self {
        Self::detect().unwrap_or(Self::Items)
    }

    fn detect() -> Option<Self> {
        let call = proc_macro::Span::call_site();
        let source = std::fs::read_to_string(call.local_file()?).ok()?;
        let snippet = call.source_text()?;
        let line_start = source
            .split_inclusive('\n')
            .take(call.line().checked_sub(1)?)
            .map(str::len)
            .sum::<usize>();
        let line = source[line_start..].lines().next()?;
        let start = line_start + line.find(&snippet)?;
        let before = last_significant_char(&source[..start]);
        let after = source[start + snippet.len()..].trim_start().chars().next();
        let statement_start = matches!(before, None | Some(';' | '{' | '}' | ']'));
        Some(if statement_start && after == Some(';') {
            Self::Items
        } else {
            Self::Expression
        })
    }
}

/// The last character before the call that is not whitespace or inside a comment.
fn last_significant_char(mut text: &str) -> Option<char> {
    loop {
        text = text.trim_end();
        if let Some(open) = text.ends_with("*/").then(|| text.rfind("/*")).flatten() {
            text = &text[..open];
            continue;
        }
        let line_start = text.rfind('\n').map_or(0, |i| i + 1);
        if let Some(comment) = text[line_start..].find("//") {
            text = &text[..line_start + comment];
            continue;
        }
        return text.chars().next_back();
    }
}

pub(crate) fn auto_workers(input: TokenStream, position: Position) -> TokenStream {
    match expand(input, position) {
        Ok(tokens) => tokens,
        Err(message) => syn::Error::new(Span::call_site(), message).to_compile_error(),
    }
}

fn expand(input: TokenStream, position: Position) -> Result<TokenStream, String> {
    if !input.is_empty() {
        return Err("`auto_workers!()` takes no arguments".into());
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "`auto_workers!()` must be built by cargo (CARGO_MANIFEST_DIR is not set)")?;
    let root = Path::new(&manifest).join("src").join("workers");
    let nodes = scan(&root)?;
    if root.exists() && std::env::var_os("OUT_DIR").is_none() {
        return Err(
            "`auto_workers!()` needs a build script so that cargo rebuilds when a file is \
             added to `src/workers/`: add `build.rs` next to `Cargo.toml` containing \
             `fn main() { println!(\"cargo:rerun-if-changed=src/workers\"); }`"
                .into(),
        );
    }

    let private = quote!(::rustf_workers::__private);
    let mut files = Vec::new();
    let mut installs = Vec::new();
    let modules = modules(&nodes, &quote!(self), &mut files, &mut installs);
    // Module order follows the sanitised names; report and install in path order.
    files.sort();
    installs.sort_by(|a, b| a.0.cmp(&b.0));
    let starters = installs.iter().enumerate().map(|(i, (_, module))| {
        let starter = format_ident!("__rustf_install_{}", i);
        quote! {
            fn #starter() -> #private::BoxFuture {
                #private::Box::pin(#module::install())
            }
        }
    });
    let entries = installs.iter().enumerate().map(|(i, (file, _))| {
        let starter = format_ident!("__rustf_install_{}", i);
        quote! { (#file, #starter as fn() -> #private::BoxFuture) }
    });

    let workers = quote! {
        /// The workers `auto_workers!()` compiled from `src/workers/`.
        pub mod workers {
            #(#modules)*

            /// The installer for these files: call `install().await` once at start-up.
            pub fn installer() -> #private::Installer {
                #(#starters)*
                #private::Installer::new(&[#(#files),*], &[#(#entries),*])
            }
        }
    };
    Ok(match position {
        Position::Items => workers,
        Position::Expression => quote! {{
            #workers
            workers::installer()
        }},
    })
}

fn modules(
    nodes: &[Node],
    parent: &TokenStream,
    files: &mut Vec<String>,
    installs: &mut Vec<(String, TokenStream)>,
) -> Vec<TokenStream> {
    nodes
        .iter()
        .map(|node| match node {
            Node::File {
                module,
                path,
                relative,
                has_install,
            } => {
                let ident: syn::Ident = syn::parse_str(module).expect("scan makes valid names");
                let path = path.to_string_lossy().into_owned();
                let doc = format!("Workers from `src/workers/{relative}`.");
                files.push(relative.clone());
                if *has_install {
                    installs.push((relative.clone(), quote!(#parent::#ident)));
                }
                quote! {
                    #[doc = #doc]
                    #[path = #path]
                    pub mod #ident;
                }
            }
            Node::Dir {
                module,
                relative,
                children,
            } => {
                let ident: syn::Ident = syn::parse_str(module).expect("scan makes valid names");
                let doc = format!("Workers from `src/workers/{relative}/`.");
                let children = modules(children, &quote!(#parent::#ident), files, installs);
                quote! {
                    #[doc = #doc]
                    pub mod #ident {
                        #(#children)*
                    }
                }
            }
        })
        .collect()
}
