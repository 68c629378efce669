//! Parsing `#[worker("name", key = value, ...)]`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Lit, LitStr, Token};

/// The attribute's arguments, as written; `validate` checks what they say.
pub(crate) struct Args {
    pub(crate) name: LitStr,
    pub(crate) options: Vec<Opt>,
}

/// One `key = value` option.
pub(crate) struct Opt {
    pub(crate) key: Ident,
    pub(crate) value: Lit,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "`#[worker]` requires a name: `#[worker(\"send-email\")]`",
            ));
        }
        let name = match input.parse::<Lit>()? {
            Lit::Str(name) => name,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "the worker name must be a string literal: `#[worker(\"send-email\")]`",
                ))
            }
        };
        let mut options = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key = Ident::parse_any(input)?;
            input.parse::<Token![=]>()?;
            let value = input.parse::<Lit>()?;
            options.push(Opt { key, value });
        }
        Ok(Self { name, options })
    }
}
