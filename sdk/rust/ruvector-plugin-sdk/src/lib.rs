//! Write RuVector plugins in Rust: safe bindings for plugin ABI v1.
//!
//! The contract is docs/abi.md in the RuVector repository; this crate is that
//! contract in Rust:
//!
//! - **Exports** `rv_abi_version` (returns 1) and `rv_alloc` (backed by
//!   Rust's allocator). A plugin that uses this crate has both; the
//!   [`ruvector_plugin!`] macro exports the lifecycle hooks you name.
//! - **Host functions** as safe functions at the crate root, one per host
//!   function, named as the ABI names them ([`get_memory_status`],
//!   [`http_request`], ...), with typed results ([`MemoryStatus`],
//!   [`ProcessInfo`], [`ThermalSnapshot`], [`GpuStatus`], ...). Errors are the
//!   [`Error`] enum: the host's status codes, plus arguments refused before the
//!   call because they would be a violation, plus results that are not what
//!   the ABI says. The unchecked imports are in [`raw`].
//! - **JSON**: the host speaks JSON; [`json`] parses and writes it, with no
//!   dependencies and no panics on bad input.
//!
//! ```no_run
//! use ruvector_plugin_sdk::{self as rv, ruvector_plugin};
//!
//! fn init() {
//!     rv::info("started");
//! }
//!
//! fn tick(_interval_ms: u32) {
//!     match rv::get_memory_status() {
//!         Ok(m) => rv::info(&format!("memory {:.1}% used", m.percent)),
//!         Err(e) => rv::warn(&format!("no memory reading: {}", e)),
//!     }
//! }
//!
//! ruvector_plugin! {
//!     on_init: init,
//!     on_tick: tick,
//! }
//! ```
//!
//! # Panics are violations
//!
//! On `wasm32-unknown-unknown` a panic aborts: the plugin traps, the host
//! counts a `TRAP` violation, restarts the plugin on its next tick with fresh
//! memory, and disables it after three. Nothing in this crate panics on any
//! input from the host or the caller; keep your own code to `Result`s and
//! `.get()`. The hooks the macro exports install a panic hook that logs the
//! panic's message and place at level error first, so the log says why.
//!
//! # What the target lacks
//!
//! There is no clock (`std::time::Instant::now()` panics), no threads, no
//! files or sockets through `std` (they fail): everything goes through the
//! host functions here. `println!` goes nowhere; use [`info`] and friends.
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown`; see the
//! crate's README.md for the Cargo.toml a plugin needs.

#![deny(missing_debug_implementations)]

mod error;
mod hooks;
mod host;
pub mod json;
mod memory;
pub mod raw;
mod types;

pub use error::{Error, Result};
pub use hooks::Global;
pub use host::{
    caps, debug, error, get_battery_status, get_config, get_config_json, get_cpu_usage,
    get_gpu_status, get_learned_pattern, get_memory_status, get_process_list, get_process_memory,
    get_temperature, http_request, info, kill_process, log, read_file, registry_read,
    registry_write, report_metric, set_config, set_process_priority, show_notification, trace,
    trim_process_memory, truncate, warn, write_file,
};
pub use memory::{rv_abi_version, rv_alloc, take_buffer, ABI_VERSION};
pub use types::{
    BatteryStatus, Gpu, GpuStatus, HttpRequest, HttpResponse, Level, MemoryStatus, Method,
    PressureLevel, Priority, ProcessInfo, RegistryValue, TemperatureSensor, ThermalSnapshot,
};
pub use types::process_name_is;

/// Exports the lifecycle hooks you name, each calling your handler.
///
/// Name only the hooks you handle: the host calls just those. Each handler is
/// a function (or a closure that captures nothing) with the Rust signature
/// below; the macro converts the wasm arguments, takes ownership of string
/// arguments (freed after the handler returns), and installs the panic hook
/// described in the crate docs.
///
/// | hook | handler | called |
/// |---|---|---|
/// | `on_init` | `fn()` | after each instantiation |
/// | `on_tick` | `fn(interval_ms: u32)` | every tick, after the events |
/// | `on_memory_pressure` | `fn(PressureLevel)` | when the level changes |
/// | `on_process_launch` | `fn(name: &str, pid: u32)` | per new process (needs `ReadProcessList`) |
/// | `on_process_exit` | `fn(name: &str, pid: u32)` | per ended process (needs `ReadProcessList`) |
/// | `on_profile_switch` | `fn(profile: &str)` | when the profile changes |
/// | `on_cleanup` | `fn()` | at unload or graceful stop |
///
/// The exports are `#[no_mangle]` functions with the hooks' names, so your
/// own functions must be named otherwise (`tick`, not `on_tick`), and the
/// macro may be used once per plugin.
///
/// ```no_run
/// use ruvector_plugin_sdk::{self as rv, ruvector_plugin, PressureLevel};
///
/// fn launched(name: &str, pid: u32) {
///     rv::info(&format!("{} started as pid {}", name, pid));
/// }
///
/// ruvector_plugin! {
///     on_process_launch: launched,
///     on_memory_pressure: |level: PressureLevel| {
///         if level == PressureLevel::Critical {
///             rv::warn("memory is critically low");
///         }
///     },
/// }
/// ```
#[macro_export]
macro_rules! ruvector_plugin {
    ($($hook:ident : $handler:expr),* $(,)?) => {
        $( $crate::__ruvector_export_hook!($hook, $handler); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ruvector_export_hook {
    (on_init, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_init() {
            $crate::__private::enter();
            let handler: fn() = $handler;
            handler();
        }
    };
    (on_tick, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_tick(interval_ms: i32) {
            $crate::__private::enter();
            let handler: fn(u32) = $handler;
            handler($crate::__private::non_negative(interval_ms));
        }
    };
    (on_memory_pressure, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_memory_pressure(level: i32) {
            $crate::__private::enter();
            let handler: fn($crate::PressureLevel) = $handler;
            handler($crate::PressureLevel::from_raw(level));
        }
    };
    (on_process_launch, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_process_launch(name_ptr: i32, name_len: i32, pid: i32) {
            $crate::__private::enter();
            // Safety: the host allocated the name with rv_alloc for this call.
            let name = unsafe { $crate::__private::hook_string(name_ptr, name_len) };
            let handler: fn(&str, u32) = $handler;
            handler(&name, $crate::__private::non_negative(pid));
        }
    };
    (on_process_exit, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_process_exit(name_ptr: i32, name_len: i32, pid: i32) {
            $crate::__private::enter();
            // Safety: the host allocated the name with rv_alloc for this call.
            let name = unsafe { $crate::__private::hook_string(name_ptr, name_len) };
            let handler: fn(&str, u32) = $handler;
            handler(&name, $crate::__private::non_negative(pid));
        }
    };
    (on_profile_switch, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_profile_switch(name_ptr: i32, name_len: i32) {
            $crate::__private::enter();
            // Safety: the host allocated the name with rv_alloc for this call.
            let name = unsafe { $crate::__private::hook_string(name_ptr, name_len) };
            let handler: fn(&str) = $handler;
            handler(&name);
        }
    };
    (on_cleanup, $handler:expr) => {
        #[no_mangle]
        pub extern "C" fn on_cleanup() {
            $crate::__private::enter();
            let handler: fn() = $handler;
            handler();
        }
    };
    ($other:ident, $handler:expr) => {
        compile_error!(concat!(
            "ruvector_plugin!: `",
            stringify!($other),
            "` is not an ABI v1 hook (on_init, on_tick, on_memory_pressure, ",
            "on_process_launch, on_process_exit, on_profile_switch, on_cleanup)"
        ));
    };
}

/// Used by the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::hooks::{enter, hook_string, non_negative};
}
