//! The expansion of `#[background_job]`: the function as written, its invocation struct, the
//! `Job` impl, per-parameter trait checks and the registry entry.

use crate::options::Options;
use crate::signature::{self, Param, Signature};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

pub(crate) fn background_job(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "#[background_job] goes on a function: `#[background_job] async fn send_email(user_id: u64) { .. }`",
            )
            .into_compile_error();
            return quote!(#err #item);
        }
    };
    let options = Options::parse(args);
    let (signature, sig_error) = signature::read(&mut function);
    let mut error = sig_error;
    let options = match options {
        Ok(o) => Some(o),
        Err(e) => {
            match &mut error {
                Some(all) => all.combine(e),
                None => error = Some(e),
            }
            None
        }
    };
    match (options, signature, error) {
        (Some(options), Some(signature), None) => expand(&function, &options, &signature),
        (_, _, error) => {
            // Keep the function so a mistake in the attribute does not cascade into
            // "cannot find function" errors at every call.
            let error = error.map(syn::Error::into_compile_error);
            quote!(#error #function)
        }
    }
}

fn expand(function: &ItemFn, options: &Options, signature: &Signature) -> TokenStream {
    let vis = &function.vis;
    let fn_ident = &function.sig.ident;
    let fn_name = fn_ident.to_string();
    let job_name = options.name.as_ref().map_or_else(
        || fn_name.trim_start_matches("r#").to_owned(),
        syn::LitStr::value,
    );
    let queue = options
        .queue
        .as_ref()
        .map_or_else(|| "default".to_owned(), syn::LitStr::value);
    let retries = options.retries.unwrap_or(3);
    let (timeout_const, timeout_ms) = match options.timeout {
        Some(d) => {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            (
                quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms))),
                quote!(::core::option::Option::Some(#ms)),
            )
        }
        None => (
            quote!(::core::option::Option::None),
            quote!(::core::option::Option::None),
        ),
    };

    let mut fields = Vec::new();
    let mut field_types = Vec::new();
    let mut checks = Vec::new();
    let mut state_lets = Vec::new();
    let mut state_entries = Vec::new();
    let mut call_args = Vec::new();
    for param in &signature.params {
        match param {
            Param::Arg { ident, ty } => {
                fields.push(ident.clone());
                field_types.push(ty.clone());
                checks.push(quote_spanned! {ty.span()=>
                    const _: () = ::jobs::__private::assert_job_argument::<#ty>();
                });
                call_args.push(quote!(#ident));
            }
            Param::State { ident, ty } => {
                checks.push(quote_spanned! {ty.span()=>
                    const _: () = ::jobs::__private::assert_state_argument::<#ty>();
                });
                state_lets.push(quote! {
                    let #ident: #ty = __jobs_state.get::<#ty>()?;
                });
                state_entries.push(quote! {
                    (::core::any::TypeId::of::<#ty>(), ::core::any::type_name::<#ty>())
                });
                call_args.push(quote!(#ident));
            }
            Param::Context => call_args.push(quote!(::core::clone::Clone::clone(&__jobs_ctx))),
        }
    }
    if let ReturnType::Type(_, ty) = &function.sig.output {
        checks.push(quote_spanned! {ty.span()=>
            const _: () = ::jobs::__private::assert_job_output::<#ty>();
        });
    }
    let body = if signature.is_async {
        quote! {
            ::jobs::__private::boxed(async move {
                ::jobs::__private::IntoAttemptResult::into_attempt_result(#fn_ident(#(#call_args),*).await)
            })
        }
    } else {
        quote! {
            ::jobs::__private::blocking(move || {
                ::jobs::__private::IntoAttemptResult::into_attempt_result(#fn_ident(#(#call_args),*))
            })
        }
    };
    let doc = format!(
        "The arguments of one call of the job [`{fn_name}`], as stored. Build one with \
         `jobs::job!({fn_name}(..))`."
    );
    let new_ident = format_ident!("__new");

    quote! {
        #function

        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, clippy::all, clippy::pedantic)]
        #[derive(::jobs::__private::serde::Serialize, ::jobs::__private::serde::Deserialize)]
        #[serde(crate = "::jobs::__private::serde")]
        #vis struct #fn_ident {
            #( #fields: #field_types, )*
        }

        #[automatically_derived]
        #[allow(dead_code, clippy::all, clippy::pedantic)]
        impl #fn_ident {
            #[doc(hidden)]
            #[must_use]
            #[allow(clippy::too_many_arguments)]
            #vis const fn #new_ident(#( #fields: #field_types ),*) -> Self {
                Self { #( #fields ),* }
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl ::jobs::Job for #fn_ident {
            const NAME: &'static str = #job_name;
            const QUEUE: &'static str = #queue;
            const RETRIES: u32 = #retries;
            const TIMEOUT: ::core::option::Option<::core::time::Duration> = #timeout_const;
        }

        #[doc(hidden)]
        #[allow(unused_qualifications, non_snake_case, clippy::all, clippy::pedantic)]
        const _: () = {
            #( #checks )*

            fn __jobs_states() -> ::std::vec::Vec<(::core::any::TypeId, &'static str)> {
                ::std::vec![ #( #state_entries ),* ]
            }

            fn __jobs_perform(
                __jobs_args: &str,
                __jobs_ctx: ::jobs::JobContext,
                __jobs_state: &::jobs::__private::StateMap,
            ) -> ::core::result::Result<
                ::jobs::__private::futures::future::BoxFuture<'static, ::jobs::__private::AttemptResult>,
                ::std::string::String,
            > {
                let #fn_ident { #( #fields ),* } =
                    ::jobs::__private::decode_args::<#fn_ident>(#job_name, __jobs_args)?;
                #( #state_lets )*
                let _ = &__jobs_ctx;
                ::core::result::Result::Ok(#body)
            }

            ::jobs::__private::inventory::submit! {
                ::jobs::__private::JobDescriptor::__new(
                    #job_name,
                    #queue,
                    #retries,
                    #timeout_ms,
                    ::core::concat!(::core::module_path!(), "::", #fn_name),
                    ::core::file!(),
                    ::core::line!(),
                    __jobs_states,
                    __jobs_perform,
                )
            }
        };
    }
}
