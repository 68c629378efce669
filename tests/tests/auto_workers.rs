//! `auto_workers!()` on real crates built by cargo: the expression and item forms, a file
//! added later, a missing `src/workers/`, and the compile errors it owes the user.
//!
//! Each case writes a small crate under cargo's test temp dir and builds it against this
//! workspace's `rustf-workers`, offline, with this workspace's lock file. The crates share
//! one target directory, so only the first build compiles the dependencies.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    /// A crate named `name`; `main` is its `src/main.rs`, `build_script` whether it has
    /// the `build.rs` that watches `src/workers`.
    fn new(name: &str, main: &str, build_script: bool) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("fixtures")
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src")).unwrap();
        let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rustf-workers");
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
                 [dependencies]\nrustf-workers = {{ path = {runtime:?} }}\n\
                 tokio = {{ version = \"1\", features = [\"rt\", \"macros\"] }}\n\n[workspace]\n"
            ),
        )
        .unwrap();
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
            dir.join("Cargo.lock"),
        )
        .unwrap();
        if build_script {
            fs::write(
                dir.join("build.rs"),
                "fn main() { println!(\"cargo:rerun-if-changed=src/workers\"); }\n",
            )
            .unwrap();
        }
        fs::write(dir.join("src/main.rs"), main).unwrap();
        Self { dir }
    }

    fn worker_file(&self, relative: &str, source: &str) -> &Self {
        let path = self.dir.join("src/workers").join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, source).unwrap();
        // Newer than the last build whatever the file system's timestamp resolution, so
        // the test needs no sleep.
        let later = SystemTime::now() + Duration::from_secs(2);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        self
    }

    fn cargo(&self, command: &str) -> Output {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures-target");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args([command, "--quiet", "--offline", "--target-dir"])
            .arg(target)
            .current_dir(&self.dir);
        // What cargo set for this test's own crate must not leak into the fixture's build.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if (key.starts_with("CARGO_") && key != "CARGO_HOME")
                || key == "OUT_DIR"
                || key == "RUSTFLAGS"
            {
                cargo.env_remove(&*key);
            }
        }
        cargo.output().unwrap()
    }

    /// Builds and runs the crate; its standard output.
    fn run(&self) -> String {
        let output = self.cargo("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cargo run failed:\n{stderr}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Builds the crate, which must fail; the compiler's output.
    fn build_error(&self) -> String {
        let output = self.cargo("build");
        assert!(!output.status.success(), "the build should have failed");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

const LIST_WORKERS: &str = r#"
#[tokio::main(flavor = "current_thread")]
async fn main() -> rustf_workers::Result<()> {
    let installer = rustf_workers::auto_workers!();
    println!("files: {}", installer.files().join(" "));
    installer.install().await?;
    let definitions = rustf_workers::WORKER::definitions().await?;
    println!("workers: {}", definitions.join(" "));
    for name in definitions {
        rustf_workers::WORKER::run(&name, None).await?;
    }
    Ok(())
}
"#;

const ATTRIBUTE_WORKER: &str = r#"
use rustf_workers::prelude::*;

#[worker("NAME")]
pub async fn handler(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}
"#;

const INSTALL_WORKER: &str = r#"
use rustf_workers::prelude::*;

pub async fn install() -> Result<()> {
    WORKER::register("NAME", |_ctx| async { Ok(()) }).await
}
"#;

fn attribute_worker(name: &str) -> String {
    ATTRIBUTE_WORKER.replace("NAME", name)
}

fn install_worker(name: &str) -> String {
    INSTALL_WORKER.replace("NAME", name)
}

#[test]
fn cargo_built_crates() {
    // One test, so the builds share the target directory one after the other.
    a_file_added_later_is_picked_up_by_the_next_build();
    the_item_form_declares_a_workers_module_at_the_crate_root();
    a_missing_workers_directory_is_an_empty_installer();
    misuse_is_a_compile_error_that_names_the_file();
}

fn a_file_added_later_is_picked_up_by_the_next_build() {
    let app = Fixture::new("fixture-added-later", LIST_WORKERS, true);
    app.worker_file("alpha.rs", &attribute_worker("alpha"))
        .worker_file("reports/beta.rs", &install_worker("beta"));
    assert_eq!(
        app.run(),
        "files: alpha.rs reports/beta.rs\nworkers: alpha beta\n"
    );

    // Only a new file: no other file is touched.
    app.worker_file("reports/daily/gamma.rs", &attribute_worker("gamma"));
    assert_eq!(
        app.run(),
        "files: alpha.rs reports/beta.rs reports/daily/gamma.rs\nworkers: alpha beta gamma\n"
    );
}

fn the_item_form_declares_a_workers_module_at_the_crate_root() {
    let main = r#"
//! An application.

rustf_workers::auto_workers!();

#[tokio::main(flavor = "current_thread")]
async fn main() -> rustf_workers::Result<()> {
    workers::installer().install().await?;
    let _ = workers::email::handler;
    println!("{}", rustf_workers::WORKER::definitions().await?.join(" "));
    Ok(())
}
"#;
    let app = Fixture::new("fixture-item-form", main, true);
    app.worker_file("email.rs", &attribute_worker("send-email"))
        .worker_file("cleanup.rs", &install_worker("cleanup"));
    assert_eq!(app.run(), "cleanup send-email\n");
}

fn a_missing_workers_directory_is_an_empty_installer() {
    // No src/workers, and so no build script needed.
    let app = Fixture::new("fixture-no-workers", LIST_WORKERS, false);
    assert_eq!(app.run(), "files: \nworkers: \n");
}

fn misuse_is_a_compile_error_that_names_the_file() {
    let app = Fixture::new("fixture-no-build-script", LIST_WORKERS, false);
    app.worker_file("alpha.rs", &attribute_worker("alpha"));
    let error = app.build_error();
    assert!(
        error.contains("`auto_workers!()` needs a build script"),
        "{error}"
    );
    assert!(
        error.contains("cargo:rerun-if-changed=src/workers"),
        "{error}"
    );

    let app = Fixture::new("fixture-bad-file-name", LIST_WORKERS, true);
    app.worker_file("send email.rs", &attribute_worker("send-email"));
    let error = app.build_error();
    assert!(
        error.contains("`src/workers/send email.rs`: `send email` is not a valid module name"),
        "{error}"
    );

    let app = Fixture::new("fixture-same-module", LIST_WORKERS, true);
    app.worker_file("send-email.rs", &attribute_worker("a"))
        .worker_file("send_email.rs", &attribute_worker("b"));
    let error = app.build_error();
    assert!(
        error.contains(
            "`src/workers/send-email.rs` and `src/workers/send_email.rs` would both be module `send_email`"
        ),
        "{error}"
    );

    let app = Fixture::new("fixture-too-deep", LIST_WORKERS, true);
    app.worker_file("a/b/c/d/deep.rs", &attribute_worker("deep"));
    let error = app.build_error();
    assert!(
        error.contains("`src/workers/a/b/c/d/` is nested deeper than 3 directory levels"),
        "{error}"
    );

    let app = Fixture::new("fixture-duplicate-name", LIST_WORKERS, true);
    app.worker_file("one.rs", &attribute_worker("same"))
        .worker_file("two.rs", &attribute_worker("same"));
    let output = app.cargo("run");
    assert!(!output.status.success());
    // `main` returned the installer's error, which names both functions.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AlreadyRegistered { name: \"same\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("`fixture_duplicate_name::workers::one::handler`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`fixture_duplicate_name::workers::two::handler`"),
        "{stderr}"
    );
}
