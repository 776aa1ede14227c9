// The raw ABI v1 imports (docs/abi.md, section 6), exactly as the host
// defines them. Plugins call the typed wrappers in core.ts, system.ts,
// processes.ts and io.ts instead. AssemblyScript emits an import only for a
// function the plugin can reach, so a plugin needs the capability of the
// wrappers it calls, not of every line here.

// -- always linked -----------------------------------------------------------
@external("ruvector", "log")
export declare function log(level: i32, msgPtr: usize, msgLen: i32): i32;
@external("ruvector", "get_config")
export declare function get_config(keyPtr: usize, keyLen: i32): i64;
@external("ruvector", "set_config")
export declare function set_config(keyPtr: usize, keyLen: i32, valPtr: usize, valLen: i32): i32;
@external("ruvector", "report_metric")
export declare function report_metric(namePtr: usize, nameLen: i32, value: f64): i32;
@external("ruvector", "get_learned_pattern")
export declare function get_learned_pattern(namePtr: usize, nameLen: i32): i64;

// -- ReadSystemInfo ----------------------------------------------------------
@external("ruvector", "get_memory_status")
export declare function get_memory_status(): i64;
@external("ruvector", "get_cpu_usage")
export declare function get_cpu_usage(): f64;
@external("ruvector", "get_temperature")
export declare function get_temperature(): i64;
@external("ruvector", "get_gpu_status")
export declare function get_gpu_status(): i64;
@external("ruvector", "get_battery_status")
export declare function get_battery_status(): i64;

// -- ReadProcessList ---------------------------------------------------------
@external("ruvector", "get_process_list")
export declare function get_process_list(): i64;
@external("ruvector", "get_process_memory")
export declare function get_process_memory(pid: i32): i64;

// -- process actions (ModifyProcessPriority, TrimProcessMemory, KillProcess) -
@external("ruvector", "set_process_priority")
export declare function set_process_priority(pid: i32, priority: i32): i32;
@external("ruvector", "trim_process_memory")
export declare function trim_process_memory(pid: i32): i64;
@external("ruvector", "kill_process")
export declare function kill_process(pid: i32): i32;

// -- ShowNotifications, NetworkAccess, files, registry -----------------------
@external("ruvector", "show_notification")
export declare function show_notification(titlePtr: usize, titleLen: i32, msgPtr: usize, msgLen: i32): i32;
@external("ruvector", "http_request")
export declare function http_request(reqPtr: usize, reqLen: i32): i64;
@external("ruvector", "read_file")
export declare function read_file(pathPtr: usize, pathLen: i32): i64;
@external("ruvector", "write_file")
export declare function write_file(pathPtr: usize, pathLen: i32, dataPtr: usize, dataLen: i32): i32;
@external("ruvector", "registry_read")
export declare function registry_read(keyPtr: usize, keyLen: i32): i64;
@external("ruvector", "registry_write")
export declare function registry_write(keyPtr: usize, keyLen: i32, valPtr: usize, valLen: i32): i32;
