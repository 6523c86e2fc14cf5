use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// What one look at a condition found.
#[derive(Debug)]
pub enum Probe<T> {
    /// The condition holds; waiting ends with this value.
    Done(T),
    /// Not yet; the text says what was seen, and is reported if the deadline passes.
    Pending(String),
}

impl<T> Probe<T> {
    /// `Pending` with anything that displays (an error, a status).
    pub fn pending(seen: impl Display) -> Self {
        Probe::Pending(seen.to_string())
    }
}

/// Looks at a condition until it holds or `timeout` passes, starting every 50 ms and backing off
/// to every 500 ms. On timeout it panics with what was awaited and what was last seen.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut looks = 0u32;
    loop {
        looks += 1;
        let last = match probe().await {
            Probe::Done(value) => return value,
            Probe::Pending(seen) => seen,
        };
        if start.elapsed() >= timeout {
            panic!(
                "timed out after {:.1}s waiting for {what}\n  looked {looks} times; last seen: {last}",
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let v = wait_until("the third look", Duration::from_secs(10), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= 3 {
                Probe::Done(n)
            } else {
                Probe::pending(format!("look {n}"))
            }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn timeout_message_names_the_condition_and_the_last_sight() {
        let result = tokio::spawn(async {
            wait_until::<(), _, _>(
                "a thing that never happens",
                Duration::from_millis(200),
                || async { Probe::pending("still nothing") },
            )
            .await
        })
        .await;
        let panic = result
            .expect_err("wait_until must panic on timeout")
            .into_panic();
        let msg = panic
            .downcast_ref::<String>()
            .expect("a String panic message");
        assert!(msg.contains("a thing that never happens"), "{msg}");
        assert!(msg.contains("last seen: still nothing"), "{msg}");
    }
}
