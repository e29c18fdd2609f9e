//! Parsing a job id (`queue:number`), from text (`str::parse`) and from JSON (a job argument, a
//! dashboard or CLI request): no panic; a parsed id displays as text that parses back to it; JSON
//! and text agree; an error names the input.
#![no_main]

use jobs::JobId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any JSON document that should hold ids (arbitrary bytes included).
    let _ = serde_json::from_slice::<Vec<JobId>>(data);
    let _ = serde_json::from_slice::<Option<JobId>>(data);

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<JobId>();
    let from_json = serde_json::from_value::<JobId>(serde_json::Value::String(text.to_owned()));
    assert_eq!(parsed.as_ref().ok(), from_json.as_ref().ok(), "{text:?}");
    match parsed {
        Ok(id) => {
            assert!(!id.queue().is_empty(), "{text:?}");
            let shown = id.to_string();
            assert_eq!(
                shown.parse::<JobId>().as_ref(),
                Ok(&id),
                "{text:?} shown as {shown:?}"
            );
            let json = serde_json::to_string(&id).expect("an id serializes");
            assert_eq!(
                serde_json::from_str::<JobId>(&json).ok(),
                Some(id),
                "{json}"
            );
        }
        Err(e) => assert!(e.to_string().contains(text), "{e}"),
    }
});
