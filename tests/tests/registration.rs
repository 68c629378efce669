//! `#[worker]` and `auto_workers!()`: this crate's `src/workers/` (see `tests/src/workers`)
//! is compiled by `auto_workers!()` in its lib; the workers are called here by name only.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;
use rustf_workers_tests::workers;

#[tokio::test]
async fn macro_workers_are_registered_with_no_setup_call() {
    let definitions = WORKER::definitions().await.unwrap();
    for name in [
        "fixture-echo",
        "fixture-optional",
        "fixture-send-email",
        "fixture-daily-report",
        "fixture-2fa",
    ] {
        assert!(
            definitions.contains(&name.to_owned()),
            "{name} missing from {definitions:?}"
        );
    }
    // The conflicting name is not registered under either function.
    assert!(!definitions.contains(&"fixture-duplicate".to_owned()));

    let mut handle = WORKER::call("fixture-daily-report", None, None)
        .await
        .unwrap();
    assert_eq!(
        handle.recv().await,
        Some(json!("rustf_workers_tests::workers::reports::daily"))
    );
    handle.await_result().await.unwrap();
}

#[tokio::test]
async fn typed_payloads_are_checked_when_called() {
    let mut handle = WORKER::call(
        "fixture-echo",
        None,
        Some(json!({ "text": "hi", "times": 2 })),
    )
    .await
    .unwrap();
    assert_eq!(handle.recv().await, Some(json!("hi")));
    assert_eq!(handle.recv().await, Some(json!("hi")));
    assert_eq!(handle.recv().await, None);

    // A payload that does not read as `Echo` is refused by `call` itself: no run
    // exists, the handler never runs, nothing is counted.
    let before = WORKER::stats("fixture-echo").await.unwrap();
    let err = WORKER::call("fixture-echo", None, Some(json!({ "txt": "typo" })))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    let text = err.to_string();
    assert!(text.contains("worker 'fixture-echo'"), "{text}");
    assert!(text.contains("missing field `text`"), "{text}");
    let after = WORKER::stats("fixture-echo").await.unwrap();
    assert_eq!((after.runs, after.failed), (before.runs, before.failed));

    assert!(WORKER::run("fixture-echo", None)
        .await
        .unwrap_err()
        .is_validation());

    let mut some = WORKER::call("fixture-optional", None, Some(json!(7)))
        .await
        .unwrap();
    assert_eq!(some.recv().await, Some(json!(7)));
    let mut none = WORKER::call("fixture-optional", None, None).await.unwrap();
    assert_eq!(none.recv().await, Some(Value::Null));
}

#[tokio::test(start_paused = true)]
async fn attribute_options_become_definition_defaults() {
    let options = WORKER::registry().options("fixture-send-email").unwrap();
    assert_eq!(options.default_timeout(), Some(Duration::from_millis(50)));
    assert_eq!(options.max_concurrency(), Some(3));
    assert_eq!(options.max_retries(), 2);
    let two_factor = WORKER::registry().options("fixture-2fa").unwrap();
    assert_eq!(two_factor.declared_memory(), 1024);
    WORKER::run("fixture-send-email", Some(json!(10)))
        .await
        .unwrap();
    let err = WORKER::run("fixture-send-email", Some(json!(100)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Worker 'fixture-send-email' timed out after 50ms"
    );
}

#[tokio::test]
async fn a_name_claimed_twice_is_an_error_naming_both_functions() {
    let err = WORKER::run("fixture-duplicate", None).await.unwrap_err();
    assert!(err.is_already_registered(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`rustf_workers_tests::workers::duplicate::second`"),
        "{text}"
    );
    assert!(
        text.contains("`rustf_workers_tests::workers::r#type::first`"),
        "{text}"
    );
    assert!(text.contains("tests/src/workers/duplicate.rs:"), "{text}");
    assert_eq!(WORKER::registry().verify().unwrap_err().to_string(), text);
    // Nor can it be taken at run time.
    assert!(WORKER::register("fixture-duplicate", |_| async { Ok(()) })
        .await
        .unwrap_err()
        .is_already_registered());
    // An owned registry built from the same binary reports the same.
    let owned = WorkerRegistry::with_linked();
    assert_eq!(owned.verify().unwrap_err().to_string(), text);
}

#[tokio::test]
async fn the_installer_lists_the_scanned_files_and_runs_the_install_form() {
    let installer = workers::installer();
    assert_eq!(
        installer.files(),
        [
            "2fa.rs",
            "duplicate.rs",
            "echo.rs",
            "maintenance/nightly/cleanup.rs",
            "reports/daily.rs",
            "send-email.rs",
            "type.rs",
        ]
    );
    assert_eq!(
        installer.install_files().collect::<Vec<_>>(),
        ["maintenance/nightly/cleanup.rs"]
    );
    // Runs `install()`, then reports the duplicate name at start-up.
    let err = installer.install().await.unwrap_err();
    assert!(err.is_already_registered(), "{err}");
    let mut handle = WORKER::call("fixture-cleanup", None, None).await.unwrap();
    assert_eq!(handle.recv().await, Some(json!("cleaned")));
}
