//! What the [`ruvector_plugin!`](crate::ruvector_plugin) macro's exports run
//! around a handler, and [`Global`] for state kept between hooks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};

use crate::memory::take_buffer;
use crate::types::Level;

static PANIC_HOOK_SET: AtomicBool = AtomicBool::new(false);

/// Runs at the start of every exported hook: installs, once, a panic hook that
/// logs the panic's message and place at level error before the plugin traps.
///
/// A panic on `wasm32-unknown-unknown` aborts (there is no unwinding to catch
/// it): the host sees a trap, which is a `TRAP` violation, a strike, and a
/// restart on the next tick. The log line says why.
pub fn enter() {
    if !PANIC_HOOK_SET.swap(true, Ordering::Relaxed) {
        std::panic::set_hook(Box::new(|info| {
            let _ = crate::log(Level::Error, &format!("plugin {}", info));
        }));
    }
}

/// A hook's string argument (a process or profile name) as an owned `String`.
///
/// # Safety
///
/// `(ptr, len)` must be the buffer the host allocated with `rv_alloc` for
/// this hook call's argument, as ABI v1 guarantees.
pub unsafe fn hook_string(ptr: i32, len: i32) -> String {
    let bytes = take_buffer(ptr as u32, len as u32);
    // The host sends UTF-8; anything else is kept readable rather than trusted.
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// A hook's unsigned argument (a pid, the tick interval) from its i32 form.
pub fn non_negative(n: i32) -> u32 {
    n.max(0) as u32
}

/// State a plugin keeps between hook calls, in a `static`.
///
/// The instance lives as long as the plugin is loaded; after a violation the
/// host restarts it with fresh memory, so the state starts again from
/// `T::default()` (persist what must survive with `set_config`).
///
/// ```
/// use ruvector_plugin_sdk::Global;
///
/// #[derive(Default)]
/// struct Counter { ticks: u64 }
///
/// static STATE: Global<Counter> = Global::new();
///
/// let n = STATE.with(|s| { s.ticks += 1; s.ticks });
/// assert_eq!(n, Some(1));
/// ```
pub struct Global<T> {
    cell: Mutex<Option<T>>,
}

impl<T> Global<T> {
    pub const fn new() -> Global<T> {
        Global {
            cell: Mutex::new(None),
        }
    }

    /// Runs `f` on the state, made with `T::default()` on first use.
    ///
    /// `None` if the state is already in use further up the stack (a `with`
    /// inside a `with`), which would otherwise deadlock or panic.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R>
    where
        T: Default,
    {
        let mut guard = match self.cell.try_lock() {
            Ok(guard) => guard,
            // Panics abort on wasm, so nothing is left half-updated by one.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(f(guard.get_or_insert_with(T::default)))
    }
}

impl<T> std::fmt::Debug for Global<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Global { .. }")
    }
}

impl<T> Default for Global<T> {
    fn default() -> Global<T> {
        Global::new()
    }
}
