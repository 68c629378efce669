//! `is_development` / `is_production` from `RUSTF_ENV`, else `NODE_ENV`. One test in its
//! own binary, because the environment is process-wide.

use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;

#[tokio::test]
async fn environment_comes_from_rustf_env_then_node_env() {
    let workers = WorkerRegistry::new();
    workers
        .register("env", |ctx| async move {
            ctx.emit(json!([ctx.is_development(), ctx.is_production()]))?;
            Ok(())
        })
        .await
        .unwrap();
    let cases: [(Option<&str>, Option<&str>, [bool; 2]); 6] = [
        (None, None, [true, false]),
        (Some("production"), None, [false, true]),
        (None, Some("production"), [false, true]),
        (Some("development"), Some("production"), [true, false]),
        (Some("staging"), None, [false, false]),
        (Some("PROD"), None, [false, true]),
    ];
    for (rustf_env, node_env, expected) in cases {
        match rustf_env {
            Some(v) => std::env::set_var("RUSTF_ENV", v),
            None => std::env::remove_var("RUSTF_ENV"),
        }
        match node_env {
            Some(v) => std::env::set_var("NODE_ENV", v),
            None => std::env::remove_var("NODE_ENV"),
        }
        let mut handle = workers.call("env", None, None).await.unwrap();
        assert_eq!(
            handle.recv().await,
            Some(json!(expected)),
            "RUSTF_ENV={rustf_env:?} NODE_ENV={node_env:?}"
        );
    }
}
