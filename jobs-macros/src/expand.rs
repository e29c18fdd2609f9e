//! The expansion of `#[background_job]`: the function as written, its invocation struct, the
//! `Job` impl, per-parameter trait checks and the registry entry.

use crate::options::{Backoff, OnExhausted, Options};
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

    let backoff = match options.backoff {
        None => quote!(::core::option::Option::None),
        Some(Backoff::Exponential) => quote!(::core::option::Option::Some(
            ::jobs::RetryBackoff::exponential(::core::time::Duration::from_secs(2))
        )),
        Some(Backoff::Polynomial) => {
            quote!(::core::option::Option::Some(
                ::jobs::RetryBackoff::polynomial()
            ))
        }
    };
    let on_exhausted = match options.on_exhausted {
        None | Some(OnExhausted::Fail) => quote!(::jobs::OnExhausted::Fail),
        Some(OnExhausted::Delete) => quote!(::jobs::OnExhausted::Delete),
    };
    let max_crashes = match options.max_crashes {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let flow = &options.flow;
    let unique_consts = if flow.unique {
        let window = match flow.unique_for {
            Some(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms)))
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            const UNIQUE: bool = true;
            const UNIQUE_FOR: ::core::option::Option<::core::time::Duration> = #window;
        }
    } else {
        quote!()
    };
    let mut flow_error = None;
    if let Some(key) = &flow.limit_key {
        let named = signature
            .params
            .iter()
            .any(|p| matches!(p, Param::Arg { ident, .. } if *ident == key.value().as_str()));
        if !named {
            flow_error = Some(
                syn::Error::new_spanned(
                    key,
                    format!(
                        "`limit_key` must name one of the job's stored arguments; `{}` is not one",
                        key.value()
                    ),
                )
                .into_compile_error(),
            );
        } else if flow.concurrency.is_none() && flow.rate.is_none() {
            flow_error = Some(
                syn::Error::new_spanned(
                    key,
                    "`limit_key` splits a limit per value: add `concurrency = N` or `rate = \"N/period\"`",
                )
                .into_compile_error(),
            );
        }
    }
    let concurrency = match flow.concurrency {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let rate = match flow.rate {
        Some((n, per)) => {
            let ms = u64::try_from(per.as_millis()).unwrap_or(u64::MAX);
            quote!(::core::option::Option::Some((#n, #ms)))
        }
        None => quote!(::core::option::Option::None),
    };
    let limit_key = match &flow.limit_key {
        Some(k) => quote!(::core::option::Option::Some(#k)),
        None => quote!(::core::option::Option::None),
    };
    let returns_value = returns_value(&function.sig.output);

    let mut fields = Vec::new();
    let mut field_types = Vec::new();
    let mut checks = Vec::new();
    // Every impl that needs the parameter types to fit assumes it in its `where` clause. The
    // `for<'__jobs>` binder stops rustc from rejecting a false bound at the impl itself, so a
    // type that does not fit is reported once, by `checks`, on the user's token.
    let mut bounds = Vec::new();
    let mut state_lets = Vec::new();
    let mut state_entries = Vec::new();
    let mut call_args = Vec::new();
    for param in &signature.params {
        match param {
            Param::Arg { ident, ty } => {
                fields.push(ident.clone());
                field_types.push(ty.clone());
                // Autoref specialization: exactly one error, saying what the type lacks.
                checks.push(quote_spanned! {ty.span()=>
                    (&&&::jobs::__private::Probe::<#ty>::new()).check_argument();
                });
                bounds.push(quote!(for<'__jobs> #ty: ::jobs::__private::JobArgument));
                call_args.push(quote!(#ident));
            }
            Param::State { ident, ty } => {
                checks.push(quote_spanned! {ty.span()=>
                    ::jobs::__private::assert_state_argument::<#ty>();
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
    // The serde derives and the `Job` impl only need the arguments to fit.
    let arg_bounds = bounds.clone();
    let serde_bound = arg_bounds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    for param in &signature.params {
        if let Param::State { ty, .. } = param {
            bounds.push(quote!(for<'__jobs> #ty: ::jobs::__private::StateArgument));
        }
    }
    if let ReturnType::Type(_, ty) = &function.sig.output {
        checks.push(quote_spanned! {ty.span()=>
            ::jobs::__private::assert_job_output::<#ty>();
        });
        bounds.push(quote!(for<'__jobs> #ty: ::jobs::__private::IntoAttemptResult));
    }
    // Spanned on the function's name, so "future cannot be sent between threads safely" (the
    // function holds a non-`Send` value across an `.await`) points at the job function.
    let body = if returns_value {
        // Keep a serializable `Ok` value for continuations (autoref specialization picks a
        // no-op when it is not serializable).
        let capture = quote! {
            #[allow(unused_imports)]
            use ::jobs::__private::{CaptureNothing as _, CaptureSerialized as _};
            (&::jobs::__private::Capture(&__jobs_out)).capture(&__jobs_rctx);
        };
        if signature.is_async {
            quote_spanned! {fn_ident.span()=>
                {
                    let __jobs_rctx = ::core::clone::Clone::clone(&__jobs_ctx);
                    ::jobs::__private::boxed(async move {
                        let __jobs_out = #fn_ident(#(#call_args),*).await;
                        #capture
                        ::jobs::__private::IntoAttemptResult::into_attempt_result(__jobs_out)
                    })
                }
            }
        } else {
            quote_spanned! {fn_ident.span()=>
                {
                    let __jobs_rctx = ::core::clone::Clone::clone(&__jobs_ctx);
                    ::jobs::__private::blocking(move || {
                        let __jobs_out = #fn_ident(#(#call_args),*);
                        #capture
                        ::jobs::__private::IntoAttemptResult::into_attempt_result(__jobs_out)
                    })
                }
            }
        }
    } else if signature.is_async {
        quote_spanned! {fn_ident.span()=>
            ::jobs::__private::boxed(async move {
                ::jobs::__private::attempt_result(&__jobs_ctx, #fn_ident(#(#call_args),*).await)
            })
        }
    } else {
        quote_spanned! {fn_ident.span()=>
            ::jobs::__private::blocking(move || {
                ::jobs::__private::attempt_result(&__jobs_ctx, #fn_ident(#(#call_args),*))
            })
        }
    };
    let doc = format!(
        "The arguments of one call of the job [`{fn_name}`], as stored. Build one with \
         `jobs::job!({fn_name}(..))`."
    );
    let new_ident = format_ident!("__new");

    quote! {
        #flow_error

        // A job's parameters must be owned (they are decoded from storage), and an `async` job
        // without `.await` still runs on the async executor rather than the blocking pool, so
        // these two pedantic lints would only ask users to break their job.
        #[allow(clippy::needless_pass_by_value, clippy::unused_async)]
        #function

        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, clippy::all, clippy::pedantic)]
        #[derive(::jobs::__private::serde::Serialize, ::jobs::__private::serde::Deserialize)]
        #[serde(crate = "::jobs::__private::serde", bound(serialize = #serde_bound, deserialize = #serde_bound))]
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
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl ::jobs::Job for #fn_ident
        where
            #( #arg_bounds, )*
        {
            const NAME: &'static str = #job_name;
            const QUEUE: &'static str = #queue;
            const RETRIES: u32 = #retries;
            const TIMEOUT: ::core::option::Option<::core::time::Duration> = #timeout_const;
            const BACKOFF: ::core::option::Option<::jobs::RetryBackoff> = #backoff;
            const ON_EXHAUSTED: ::jobs::OnExhausted = #on_exhausted;
            #unique_consts
        }

        #[doc(hidden)]
        #[allow(unused_qualifications, non_snake_case, clippy::all, clippy::pedantic)]
        const _: () = {
            #[allow(dead_code)]
            fn __jobs_check() {
                #[allow(unused_imports)]
                use ::jobs::__private::{CheckOk as _, CheckSendSync as _, CheckSerde as _};
                #( #checks )*
            }

            #[automatically_derived]
            impl ::jobs::__private::Perform for #fn_ident
            where
                #( #bounds, )*
            {
                fn states() -> ::std::vec::Vec<(::core::any::TypeId, &'static str)> {
                    ::std::vec![ #( #state_entries ),* ]
                }

                fn perform(
                    __jobs_args: &str,
                    __jobs_ctx: ::jobs::JobContext,
                    __jobs_state: &::jobs::__private::StateMap,
                ) -> ::core::result::Result<
                    ::jobs::__private::futures::future::BoxFuture<'static, ::jobs::__private::AttemptResult>,
                    ::std::string::String,
                > {
                    let Self { #( #fields ),* } =
                        ::jobs::__private::decode_args::<Self>(#job_name, __jobs_args)?;
                    #( #state_lets )*
                    let _ = &__jobs_ctx;
                    let _ = __jobs_state;
                    ::core::result::Result::Ok(#body)
                }
            }

            fn __jobs_states() -> ::std::vec::Vec<(::core::any::TypeId, &'static str)> {
                #[allow(unused_imports)]
                use ::jobs::__private::{ViaPerform as _, ViaUncompiled as _};
                (&&::jobs::__private::Probe::<#fn_ident>::new()).states()
            }

            fn __jobs_perform(
                __jobs_args: &str,
                __jobs_ctx: ::jobs::JobContext,
                __jobs_state: &::jobs::__private::StateMap,
            ) -> ::core::result::Result<
                ::jobs::__private::futures::future::BoxFuture<'static, ::jobs::__private::AttemptResult>,
                ::std::string::String,
            > {
                #[allow(unused_imports)]
                use ::jobs::__private::{ViaPerform as _, ViaUncompiled as _};
                (&&::jobs::__private::Probe::<#fn_ident>::new()).perform(__jobs_args, __jobs_ctx, __jobs_state)
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
                .__with_retry_policy(#backoff, #on_exhausted)
                .__with_max_crashes(#max_crashes)
                .__with_flow(::jobs::__private::JobFlow::__new(
                    #concurrency,
                    #rate,
                    #limit_key,
                    #returns_value,
                ))
            }
        };
    }
}

/// Whether the function returns `Result<T, ..>` (any path ending in `Result`) with a `T` other
/// than `()`: only then is the `Ok` value kept for continuations.
fn returns_value(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let syn::Type::Path(path) = &**ty else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if last.ident != "Result" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(syn::Type::Tuple(t))) => !t.elems.is_empty(),
        Some(syn::GenericArgument::Type(_)) => true,
        _ => false,
    }
}
