//! Safe wrappers for every host function of ABI v1.
//!
//! Each wrapper checks its arguments against the caps of docs/abi.md
//! (section 8.3) before it calls the host: an argument over its cap would be
//! a violation, so it is refused here with [`Error::TooLong`] instead (log
//! lines and notifications, which are only shown, are cut to fit). Results
//! are decoded and typed; a status is an [`Error`]. No wrapper panics.
//!
//! The functions that need a capability say which. A plugin whose manifest
//! does not declare it is refused at load if it calls the wrapper anywhere
//! (the import is there), so declare what you call.

use crate::error::{Error, Result};
use crate::json::{self, Value};
use crate::memory::unpack;
use crate::raw;
use crate::types::{
    pattern_from_json, BatteryStatus, GpuStatus, HttpRequest, HttpResponse, Level, MemoryStatus,
    Priority, ProcessInfo, RegistryValue, ThermalSnapshot,
};

/// Argument caps, in bytes (docs/abi.md, section 8.3).
pub mod caps {
    pub const LOG_MESSAGE: usize = 8192;
    pub const CONFIG_KEY: usize = 256;
    pub const CONFIG_VALUE: usize = 65536;
    pub const METRIC_NAME: usize = 128;
    pub const NOTIFICATION_TITLE: usize = 256;
    pub const NOTIFICATION_MESSAGE: usize = 4096;
    pub const HTTP_REQUEST: usize = 1 << 20;
    pub const PATH: usize = 4096;
    pub const FILE_DATA: usize = 1 << 20;
    pub const REGISTRY_KEY: usize = 1024;
    pub const REGISTRY_VALUE: usize = 65536;
}

fn checked(argument: &'static str, bytes: &[u8], cap: usize) -> Result<(*const u8, i32)> {
    if bytes.len() > cap {
        return Err(Error::TooLong {
            argument,
            len: bytes.len(),
            cap,
        });
    }
    // Every cap is far below i32::MAX, so the length fits.
    Ok((bytes.as_ptr(), bytes.len() as i32))
}

/// The longest prefix of `text` that fits in `cap` bytes, cut at a character.
pub fn truncate(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

fn status(code: i32) -> Result<()> {
    if code >= 0 {
        Ok(())
    } else {
        Err(Error::from_status(code))
    }
}

fn pid_arg(pid: u32) -> Result<i32> {
    // The host reads pids as signed and answers INVALID_ARGUMENT for a negative one.
    i32::try_from(pid).map_err(|_| Error::InvalidArgument)
}

/// A packed result that ABI v1 says is never "none".
fn buffer(function: &'static str, r: i64) -> Result<Vec<u8>> {
    unpack(r)?.ok_or_else(|| Error::malformed(function, "no result"))
}

fn text(function: &'static str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::malformed(function, "not UTF-8"))
}

fn parse(function: &'static str, bytes: &[u8]) -> Result<Value> {
    json::parse_bytes(bytes).map_err(|e| Error::malformed(function, e.to_string()))
}

fn typed<T>(
    function: &'static str,
    r: i64,
    read: fn(&Value) -> std::result::Result<T, String>,
) -> Result<T> {
    let doc = parse(function, &buffer(function, r)?)?;
    read(&doc).map_err(|detail| Error::malformed(function, detail))
}

// -- always linked ----------------------------------------------------------------

/// Writes one line to the host's log. A message over 8192 bytes is cut to
/// fit. `RATE_LIMITED` after 100 lines in a tick.
pub fn log(level: Level, message: &str) -> Result<()> {
    let message = truncate(message, caps::LOG_MESSAGE);
    // Safety: a &str is valid UTF-8 in memory, and it fits the cap.
    status(unsafe { raw::log(level as i32, message.as_ptr(), message.len() as i32) })
}

/// [`log`] at level trace, ignoring the result.
pub fn trace(message: &str) {
    let _ = log(Level::Trace, message);
}

/// [`log`] at level debug, ignoring the result.
pub fn debug(message: &str) {
    let _ = log(Level::Debug, message);
}

/// [`log`] at level info, ignoring the result (a dropped line is all that can go wrong).
pub fn info(message: &str) {
    let _ = log(Level::Info, message);
}

/// [`log`] at level warn, ignoring the result.
pub fn warn(message: &str) {
    let _ = log(Level::Warn, message);
}

/// [`log`] at level error, ignoring the result.
pub fn error(message: &str) {
    let _ = log(Level::Error, message);
}

/// The plugin's config value for `key`, or `None` if it is not set.
///
/// A value the plugin stored with [`set_config`] comes back as stored; else the
/// user's value from ruvector.toml: a string raw (no quotes), anything else
/// as compact JSON (so `"42"` and `42` both read `42`).
pub fn get_config(key: &str) -> Result<Option<String>> {
    let (ptr, len) = checked("config key", key.as_bytes(), caps::CONFIG_KEY)?;
    // Safety: pointer and length name the key's bytes.
    match unpack(unsafe { raw::get_config(ptr, len) })? {
        Some(bytes) => text("get_config", bytes).map(Some),
        None => Ok(None),
    }
}

/// [`get_config`] for a value that is not a string (a number, list or object
/// in ruvector.toml), parsed. `Error::Malformed` if it is not JSON, which is
/// what a string value gives.
pub fn get_config_json(key: &str) -> Result<Option<Value>> {
    match get_config(key)? {
        Some(text) => parse("get_config", text.as_bytes()).map(Some),
        None => Ok(None),
    }
}

/// Stores a config value in the plugin's own overlay; it wins over ruvector.toml
/// from then on and survives restarts. `TOO_LARGE` past 256 keys or 1 MiB.
pub fn set_config(key: &str, value: &str) -> Result<()> {
    let (kptr, klen) = checked("config key", key.as_bytes(), caps::CONFIG_KEY)?;
    let (vptr, vlen) = checked("config value", value.as_bytes(), caps::CONFIG_VALUE)?;
    // Safety: both name UTF-8 bytes within their caps.
    status(unsafe { raw::set_config(kptr, klen, vptr, vlen) })
}

/// Records one point of metric `name`. `INVALID_ARGUMENT` for NaN, infinity or
/// more than 1e300 in magnitude; `TOO_LARGE` for a 65th metric name.
pub fn report_metric(name: &str, value: f64) -> Result<()> {
    let (ptr, len) = checked("metric name", name.as_bytes(), caps::METRIC_NAME)?;
    // Safety: pointer and length name the name's bytes.
    status(unsafe { raw::report_metric(ptr, len, value) })
}

/// The mean of metric `name` for each local hour 0..24 over all days so far
/// (`None` for an hour with no point), or `None` if it was never reported.
pub fn get_learned_pattern(name: &str) -> Result<Option<Vec<Option<f64>>>> {
    let (ptr, len) = checked("metric name", name.as_bytes(), caps::METRIC_NAME)?;
    // Safety: pointer and length name the name's bytes.
    match unpack(unsafe { raw::get_learned_pattern(ptr, len) })? {
        Some(bytes) => {
            let doc = parse("get_learned_pattern", &bytes)?;
            pattern_from_json(&doc)
                .map(Some)
                .map_err(|detail| Error::malformed("get_learned_pattern", detail))
        }
        None => Ok(None),
    }
}

// -- ReadSystemInfo -----------------------------------------------------------------

/// This tick's memory reading. Needs `ReadSystemInfo`.
pub fn get_memory_status() -> Result<MemoryStatus> {
    // Safety: no arguments.
    typed(
        "get_memory_status",
        unsafe { raw::get_memory_status() },
        MemoryStatus::from_json,
    )
}

/// System-wide CPU use, 0 to 100, since the host's previous reading. Needs
/// `ReadSystemInfo`.
pub fn get_cpu_usage() -> Result<f64> {
    // Safety: no arguments.
    let percent = unsafe { raw::get_cpu_usage() };
    if percent >= 0.0 {
        Ok(percent)
    } else if percent.is_nan() {
        Err(Error::malformed("get_cpu_usage", "NaN"))
    } else {
        // Its only status form is -11.0 (HOST_ERROR); any negative is a failure.
        Err(Error::from_status(percent as i32))
    }
}

/// Every temperature sensor the OS reports (an empty list in VMs, on macOS
/// and on Windows). `IO_ERROR` if the sensors exist but cannot be read.
/// Needs `ReadSystemInfo`.
pub fn get_temperature() -> Result<ThermalSnapshot> {
    // Safety: no arguments.
    typed(
        "get_temperature",
        unsafe { raw::get_temperature() },
        ThermalSnapshot::from_json,
    )
}

/// The GPUs the host found, with the figures their drivers publish (an
/// empty list without a GPU). Needs `ReadSystemInfo`.
pub fn get_gpu_status() -> Result<GpuStatus> {
    // Safety: no arguments.
    typed(
        "get_gpu_status",
        unsafe { raw::get_gpu_status() },
        GpuStatus::from_json,
    )
}

/// The battery (`present: false` without one). Needs `ReadSystemInfo`.
pub fn get_battery_status() -> Result<BatteryStatus> {
    // Safety: no arguments.
    typed(
        "get_battery_status",
        unsafe { raw::get_battery_status() },
        BatteryStatus::from_json,
    )
}

// -- ReadProcessList ----------------------------------------------------------------

/// Every process in this tick's reading. Needs `ReadProcessList`.
pub fn get_process_list() -> Result<Vec<ProcessInfo>> {
    // Safety: no arguments.
    typed(
        "get_process_list",
        unsafe { raw::get_process_list() },
        ProcessInfo::list_from_json,
    )
}

/// A process's resident set size in bytes. `NOT_FOUND`, `IO_ERROR`. Needs
/// `ReadProcessList`.
pub fn get_process_memory(pid: u32) -> Result<u64> {
    // Safety: plain integers.
    let r = unsafe { raw::get_process_memory(pid_arg(pid)?) };
    if r >= 0 {
        Ok(r as u64)
    } else {
        Err(Error::from_status(r as i32))
    }
}

// -- actions on processes -----------------------------------------------------------

/// Sets a process's priority. `PROTECTED`, `NOT_FOUND`, `IO_ERROR` (raising
/// priority needs root on POSIX). Needs `ModifyProcessPriority`.
pub fn set_process_priority(pid: u32, priority: Priority) -> Result<()> {
    // Safety: plain integers.
    status(unsafe { raw::set_process_priority(pid_arg(pid)?, priority as i32) })
}

/// Empties a process's working set; the bytes freed. Windows only: elsewhere
/// always `UNSUPPORTED`. Needs `TrimProcessMemory`.
pub fn trim_process_memory(pid: u32) -> Result<u64> {
    // Safety: plain integers.
    let r = unsafe { raw::trim_process_memory(pid_arg(pid)?) };
    if r >= 0 {
        Ok(r as u64)
    } else {
        Err(Error::from_status(r as i32))
    }
}

/// Asks a process to end (SIGTERM / TerminateProcess). `PROTECTED`,
/// `NOT_FOUND`, `IO_ERROR`. Needs `KillProcess`.
pub fn kill_process(pid: u32) -> Result<()> {
    // Safety: plain integers.
    status(unsafe { raw::kill_process(pid_arg(pid)?) })
}

// -- ShowNotifications --------------------------------------------------------------

/// Shows a notification. The title is cut to 256 bytes and the message to
/// 4096. `RATE_LIMITED` after 5 in a tick. Needs `ShowNotifications`.
pub fn show_notification(title: &str, message: &str) -> Result<()> {
    let title = truncate(title, caps::NOTIFICATION_TITLE);
    let message = truncate(message, caps::NOTIFICATION_MESSAGE);
    // Safety: both are UTF-8 within their caps.
    status(unsafe {
        raw::show_notification(
            title.as_ptr(),
            title.len() as i32,
            message.as_ptr(),
            message.len() as i32,
        )
    })
}

// -- NetworkAccess ------------------------------------------------------------------

/// Makes one HTTP request and returns the response, whatever its status code.
///
/// `DENIED` (host not granted), `INVALID_ARGUMENT` (a request the host will
/// not send), `TIMEOUT`, `TOO_LARGE` (body over 1 MiB), `IO_ERROR`
/// (connection refused, TLS...). The request may take at most what is left of
/// the hook's deadline (`max_tick_ms`): after a `TIMEOUT` that time is spent,
/// so return from the hook at once. Needs `NetworkAccess(host)`.
pub fn http_request(request: &HttpRequest) -> Result<HttpResponse> {
    let json = request.to_json();
    let (ptr, len) = checked("HTTP request", json.as_bytes(), caps::HTTP_REQUEST)?;
    // Safety: pointer and length name the request's bytes.
    typed(
        "http_request",
        unsafe { raw::http_request(ptr, len) },
        HttpResponse::from_json,
    )
}

// -- FileSystemRead, FileSystemWrite ----------------------------------------------

/// The whole file (at most 1 MiB). `DENIED`, `NOT_FOUND`, `TOO_LARGE`,
/// `INVALID_ARGUMENT`, `IO_ERROR`. Needs `FileSystemRead(root)`.
pub fn read_file(path: &str) -> Result<Vec<u8>> {
    let (ptr, len) = checked("path", path.as_bytes(), caps::PATH)?;
    // Safety: pointer and length name the path's bytes.
    buffer("read_file", unsafe { raw::read_file(ptr, len) })
}

/// Creates or replaces a file atomically. Data over 1 MiB is refused here
/// (the host would count it as a violation). `DENIED`, `NOT_FOUND` (no parent
/// directory), `RATE_LIMITED` (4 MiB or 64 files a tick), `IO_ERROR`. Needs
/// `FileSystemWrite(root)`.
pub fn write_file(path: &str, data: &[u8]) -> Result<()> {
    let (pptr, plen) = checked("path", path.as_bytes(), caps::PATH)?;
    let (dptr, dlen) = checked("file data", data, caps::FILE_DATA)?;
    // Safety: both name bytes within their caps; the path is UTF-8.
    status(unsafe { raw::write_file(pptr, plen, dptr, dlen) })
}

// -- RegistryRead, RegistryWrite ----------------------------------------------------

/// A Windows registry value, e.g. `HKCU\Software\Vendor\Value`. `UNSUPPORTED`
/// off Windows. Needs `RegistryRead`.
pub fn registry_read(key: &str) -> Result<RegistryValue> {
    let (ptr, len) = checked("registry key", key.as_bytes(), caps::REGISTRY_KEY)?;
    // Safety: pointer and length name the key's bytes.
    typed(
        "registry_read",
        unsafe { raw::registry_read(ptr, len) },
        RegistryValue::from_json,
    )
}

/// Writes a Windows registry value, creating the key. `UNSUPPORTED` off
/// Windows. Needs `RegistryWrite`.
pub fn registry_write(key: &str, value: &RegistryValue) -> Result<()> {
    let json = value.to_json();
    let (kptr, klen) = checked("registry key", key.as_bytes(), caps::REGISTRY_KEY)?;
    let (vptr, vlen) = checked("registry value", json.as_bytes(), caps::REGISTRY_VALUE)?;
    // Safety: both name bytes within their caps; the key is UTF-8.
    status(unsafe { raw::registry_write(kptr, klen, vptr, vlen) })
}
