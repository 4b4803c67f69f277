//! The one panic boundary every entry from C goes through.
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    // Where the last panic on this thread happened; the guard logs it through Apache.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

/// Replaces the default hook (which writes to stderr) with one that records the message and
/// location for `guard` to log through the error log, with the request it belongs to.
pub fn install_panic_hook() {
    INSTALL_HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_else(|| "unknown location".to_string());
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".to_string());
            let text = format!("{message} at {location}");
            let _ = LAST_PANIC.try_with(|slot| slot.replace(Some(text)));
        }));
    });
}

/// Runs `body`; if it panics, reports the panic through `report` and returns `fallback`.
/// Fallbacks fail closed: 500 for hooks and handlers, never OK or DECLINED.
pub fn guard<T>(fallback: T, report: impl FnOnce(&str), body: impl FnOnce() -> T) -> T {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            let text = LAST_PANIC
                .try_with(|slot| slot.borrow_mut().take())
                .ok()
                .flatten()
                .unwrap_or_else(|| "panic".to_string());
            // Reporting must not panic across the boundary either.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| report(&text)));
            fallback
        }
    }
}
