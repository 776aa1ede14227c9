//! The host functions exactly as ABI v1 defines them (docs/abi.md, section 6).
//!
//! Prefer the safe wrappers at the crate root. These are here for a plugin
//! that needs what the wrappers do not offer (say, a JSON key a newer host
//! added). Calling them is `unsafe` because the host reads the memory the
//! pointers name: a pointer or length outside memory, a text argument that
//! is not UTF-8, or an argument over its cap is a `HOSTCALL` violation. A
//! packed result (`i64 > 0`) is a buffer from [`crate::rv_alloc`] that the
//! caller owns: free it with [`crate::take_buffer`].
//!
//! Only what a plugin calls is imported: the linker drops the rest, so an
//! unused function here needs no capability.

#[link(wasm_import_module = "ruvector")]
extern "C" {
    // Always linked.
    pub fn log(level: i32, msg_ptr: *const u8, msg_len: i32) -> i32;
    pub fn get_config(key_ptr: *const u8, key_len: i32) -> i64;
    pub fn set_config(key_ptr: *const u8, key_len: i32, val_ptr: *const u8, val_len: i32) -> i32;
    pub fn report_metric(name_ptr: *const u8, name_len: i32, value: f64) -> i32;
    pub fn get_learned_pattern(name_ptr: *const u8, name_len: i32) -> i64;

    // ReadSystemInfo
    pub fn get_memory_status() -> i64;
    pub fn get_cpu_usage() -> f64;
    pub fn get_temperature() -> i64;
    pub fn get_gpu_status() -> i64;
    pub fn get_battery_status() -> i64;

    // ReadProcessList
    pub fn get_process_list() -> i64;
    pub fn get_process_memory(pid: i32) -> i64;

    // ModifyProcessPriority, TrimProcessMemory, KillProcess
    pub fn set_process_priority(pid: i32, priority: i32) -> i32;
    pub fn trim_process_memory(pid: i32) -> i64;
    pub fn kill_process(pid: i32) -> i32;

    // ShowNotifications
    pub fn show_notification(
        title_ptr: *const u8,
        title_len: i32,
        msg_ptr: *const u8,
        msg_len: i32,
    ) -> i32;

    // NetworkAccess
    pub fn http_request(req_ptr: *const u8, req_len: i32) -> i64;

    // FileSystemRead, FileSystemWrite
    pub fn read_file(path_ptr: *const u8, path_len: i32) -> i64;
    pub fn write_file(
        path_ptr: *const u8,
        path_len: i32,
        data_ptr: *const u8,
        data_len: i32,
    ) -> i32;

    // RegistryRead, RegistryWrite
    pub fn registry_read(key_ptr: *const u8, key_len: i32) -> i64;
    pub fn registry_write(
        key_ptr: *const u8,
        key_len: i32,
        val_ptr: *const u8,
        val_len: i32,
    ) -> i32;
}
