//! The runtime against bare tokio, side by side in one process.
//!
//! `cargo bench -p rustf-workers-bench --bench runtime` prints a table of medians and ratios;
//! `docs/performance.md` records a run. Set `BENCH_QUICK=1` for a fast smoke run, and
//! `BENCH_ONLY=<text>` to run only the measurements whose label contains it (profiling).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use rustf_workers::prelude::*;

/// Counts live heap bytes, to measure memory per parked run; only once `COUNTING` is
/// set, after the timed rows. Counting costs two shared atomic increments per
/// allocation, which would charge the side that allocates more for the benchmark's own
/// instrument (and, on two threads, bounce one cache line between them).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);

// Allowed: a global allocator is unsafe by contract; this one only forwards to `System`
// and counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn selected(label: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| label.contains(&only))
}

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// Runs `ours` and `bare` alternately for several rounds and reports the median time
/// per operation of each and their ratio.
fn compare<A, B, FA, FB>(rt: &tokio::runtime::Runtime, label: &str, ops: u64, ours: A, bare: B)
where
    A: Fn() -> FA,
    B: Fn() -> FB,
    FA: Future<Output = ()> + Send + 'static,
    FB: Future<Output = ()> + Send + 'static,
{
    // Each round runs as a task on the runtime, as a controller's code would, not on the
    // thread that calls `block_on`.
    let ours = || {
        let round = ours();
        async move { tokio::spawn(round).await.unwrap() }
    };
    let bare = || {
        let round = bare();
        async move { tokio::spawn(round).await.unwrap() }
    };
    if !selected(label) {
        return;
    }
    let rounds = if quick() { 3 } else { 11 };
    let mut ours_ns = Vec::new();
    let mut bare_ns = Vec::new();
    // `BENCH_SIDE=ours` or `bare` runs one side alone, for an instruction count under
    // `valgrind --tool=callgrind`.
    match std::env::var("BENCH_SIDE").as_deref() {
        Ok("ours") => return rt.block_on(ours()),
        Ok("bare") => return rt.block_on(bare()),
        _ => {}
    }
    // One warm-up round of each, not recorded.
    rt.block_on(ours());
    rt.block_on(bare());
    for _ in 0..rounds {
        let start = Instant::now();
        rt.block_on(bare());
        bare_ns.push(start.elapsed().as_nanos() as f64 / ops as f64);
        let start = Instant::now();
        rt.block_on(ours());
        ours_ns.push(start.elapsed().as_nanos() as f64 / ops as f64);
    }
    let (ours, bare) = (median(&mut ours_ns), median(&mut bare_ns));
    println!(
        "| {label} | {ours:.0} ns | {bare:.0} ns | {:.2}x |",
        ours / bare
    );
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    }
}

fn main() {
    let scale: u64 = if quick() { 10 } else { 1 };
    let rt_multi = runtime(2);
    let rt_single = runtime(1);
    rt_multi.block_on(async {
        WORKER::register("noop", |_ctx| async { Ok(()) })
            .await
            .unwrap();
        WORKER::register("wait-once", |_ctx| wait_for_another_task())
            .await
            .unwrap();
        WORKER::register("stream", |ctx| async move {
            let n = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
            for i in 0..n {
                ctx.emit_wait(json!(i)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        // The seed's own pattern: `emit` once per item, never waiting for the reader.
        WORKER::register("stream-emit", |ctx| async move {
            let n = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
            for i in 0..n {
                ctx.emit(json!(i))?;
            }
            Ok(())
        })
        .await
        .unwrap();
        WORKER::register("park", |ctx| async move {
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    });

    rt_multi.block_on(async {
        WORKER::register_with(
            "capped",
            rustf_workers::WorkerOptions::new().concurrency(4),
            |_ctx| async { Ok(()) },
        )
        .await
        .unwrap();
    });
    // Room for every call of the admission row to wait.
    WORKER::registry().set_queue_capacity(1_000_000);

    println!("| measurement | rustf-workers | bare tokio | ratio |");
    println!("|---|---|---|---|");

    for (rt, flavour) in [(&rt_multi, "2 threads"), (&rt_single, "1 thread")] {
        let n = 100_000 / scale;
        compare(
            rt,
            &format!("sequential no-op `WORKER::run` vs `spawn`+join ({flavour})"),
            n,
            || async move {
                for _ in 0..n {
                    WORKER::run("noop", None).await.unwrap();
                }
            },
            || async move {
                for _ in 0..n {
                    tokio::spawn(async {}).await.unwrap();
                }
            },
        );
        // A handler that waits is where `run` becomes a task: the cost of a run that
        // waits for I/O, here a reply from another task (paid on both sides).
        compare(
            rt,
            &format!(
                "sequential `WORKER::run` of a handler that waits once vs `spawn`+join ({flavour})"
            ),
            n,
            || async move {
                for _ in 0..n {
                    WORKER::run("wait-once", None).await.unwrap();
                }
            },
            || async move {
                for _ in 0..n {
                    tokio::spawn(wait_for_another_task())
                        .await
                        .unwrap()
                        .unwrap();
                }
            },
        );
        compare(
            rt,
            &format!("100k concurrent runs: `call` all, then await all ({flavour})"),
            n,
            || async move {
                let mut handles = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    handles.push(WORKER::call("noop", None, None).await.unwrap());
                }
                for handle in handles {
                    handle.await_result().await.unwrap();
                }
            },
            || async move {
                let mut handles = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    handles.push(tokio::spawn(async { Ok::<(), Error>(()) }));
                }
                for handle in handles {
                    handle.await.unwrap().unwrap();
                }
            },
        );
        let messages = 1_000_000 / scale;
        // The same stream emitted both ways: `emit_wait`, and the seed's `emit` with no
        // await.
        for (worker, emit) in [("stream", "emit_wait"), ("stream-emit", "emit")] {
            compare(
                rt,
                &format!("`{emit}` -> `recv` vs tokio mpsc(1024), per message ({flavour})"),
                messages,
                || async move {
                    let mut handle = WORKER::call(worker, None, Some(json!(messages)))
                        .await
                        .unwrap();
                    let mut count = 0;
                    while let Some(message) = handle.recv().await {
                        std::hint::black_box(message);
                        count += 1;
                    }
                    assert_eq!(count, messages);
                    handle.await_result().await.unwrap();
                },
                || async move {
                    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                    let producer = tokio::spawn(async move {
                        for i in 0..messages {
                            tx.send(json!(i)).await.unwrap();
                        }
                    });
                    let mut count = 0;
                    while let Some(message) = rx.recv().await {
                        std::hint::black_box(message);
                        count += 1;
                    }
                    assert_eq!(count, messages);
                    producer.await.unwrap();
                },
            );
        }
    }

    let n = 100_000 / scale;
    compare(
        &rt_multi,
        "admission queue, cap 4: 100k calls vs 100k tasks behind a 4-permit semaphore (2 threads)",
        n,
        || async move {
            let mut handles = Vec::with_capacity(n as usize);
            for _ in 0..n {
                handles.push(WORKER::call("capped", None, None).await.unwrap());
            }
            for handle in handles {
                handle.await_result().await.unwrap();
            }
        },
        || async move {
            let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
            let mut handles = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let permits = std::sync::Arc::clone(&permits);
                handles.push(tokio::spawn(async move {
                    let _permit = permits.acquire().await.unwrap();
                }));
            }
            for handle in handles {
                handle.await.unwrap();
            }
        },
    );

    // Memory per parked run: 100k runs asleep, against 100k bare tasks asleep on the same
    // future. Both keep a handle, as a caller would.
    if !selected("memory per parked run") {
        return;
    }
    // Counted from here on: only differences between two loads are reported.
    COUNTING.store(true, Ordering::SeqCst);
    let runs = 10_000;
    let (ours, bare) = rt_single.block_on(async move {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..runs {
            WORKER::run("noop", None).await.unwrap();
        }
        let ours = ALLOCATIONS.load(Ordering::SeqCst) - before;
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..runs {
            tokio::spawn(async {}).await.unwrap();
        }
        (ours, ALLOCATIONS.load(Ordering::SeqCst) - before)
    });
    println!();
    println!("| allocations per no-op run | rustf-workers | bare tokio |");
    println!("|---|---|---|");
    println!(
        "| heap allocations | {:.2} | {:.2} |",
        ours as f64 / runs as f64,
        bare as f64 / runs as f64
    );

    let parked = (100_000 / scale) as usize;
    let (ours, bare, future) = rt_multi.block_on(async move {
        let before = LIVE_BYTES.load(Ordering::SeqCst);
        let mut handles = Vec::with_capacity(parked);
        for _ in 0..parked {
            handles.push(WORKER::call("park", None, None).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ours = (LIVE_BYTES.load(Ordering::SeqCst) - before) as f64 / parked as f64;
        for handle in &handles {
            handle.cancel().await.unwrap();
        }
        for handle in handles {
            let _ = handle.await_result().await;
        }

        let handler_future = |ctx: WorkerContext| async move {
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok::<(), Error>(())
        };
        let future_size = std::mem::size_of_val(&handler_future(dummy_context().await));

        let before = LIVE_BYTES.load(Ordering::SeqCst);
        let mut tasks = Vec::with_capacity(parked);
        for _ in 0..parked {
            tasks.push(tokio::spawn(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let bare = (LIVE_BYTES.load(Ordering::SeqCst) - before) as f64 / parked as f64;
        for task in tasks {
            task.abort();
        }
        (ours, bare, future_size)
    });
    println!();
    println!("| memory per parked run | bytes |");
    println!("|---|---|");
    println!("| rustf-workers run (task, run state, handle slot) | {ours:.0} |");
    println!("| the handler's own future (`size_of_val`) | {future} |");
    println!(
        "| rustf-workers beyond the handler's own future | {:.0} |",
        ours - future as f64
    );
    println!("| bare `tokio::spawn` of a sleeping task | {bare:.0} |");
}

/// Waits until another task replies: a wait that only a wake-up ends.
async fn wait_for_another_task() -> rustf_workers::Result<()> {
    let (reply, replied) = tokio::sync::oneshot::channel();
    tokio::spawn(async move { reply.send(()) });
    replied.await.map_err(|_| Error::internal("reply dropped"))
}

/// A context to measure the handler future's size with.
async fn dummy_context() -> WorkerContext {
    let workers = rustf_workers::WorkerRegistry::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    workers
        .register("probe", move |ctx| {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(ctx);
            }
            async { Ok(()) }
        })
        .await
        .unwrap();
    workers.run("probe", None).await.unwrap();
    rx.await.unwrap()
}
