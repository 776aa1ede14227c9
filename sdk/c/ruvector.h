/*
 * ruvector.h: the C SDK for RuVector plugins, plugin ABI v1 (docs/abi.md).
 *
 * One header, no libc, no allocation beyond a static heap. It also serves
 * Zig: translate it with `zig translate-c` (or @cImport before Zig 0.16) and
 * compile the implementation as C (see sdk/c/README.md).
 *
 * HOW TO USE
 *
 *   In exactly ONE .c file of the plugin, define RUVECTOR_IMPLEMENTATION
 *   before including the header; every other .c file includes it plainly:
 *
 *       #define RUVECTOR_IMPLEMENTATION
 *       #include "ruvector.h"
 *
 *       static void tick(int32_t interval_ms) {
 *           double cpu;
 *           if (rv_get_cpu_usage(&cpu) == RV_OK) rv_report_metric("cpu", cpu);
 *       }
 *       RV_ON_TICK(tick)
 *
 *   The implementation half is C (C99 or later, not C++). It defines the
 *   two exports ABI v1 requires, `rv_abi_version` (returns 1) and
 *   `rv_alloc` (the allocator below), so it must be compiled exactly once.
 *   The functions are ordinary functions,
 *   not `static inline`, because the host imports they call carry
 *   `import_module("ruvector")` attributes that only C code keeps: a Zig
 *   program calls the C functions, never the imports. SDK functions have
 *   hidden visibility: the wasm exports only what you export.
 *
 *   Build (what `ruvector plugin build` runs; `pip install ziglang`):
 *       python -m ziglang cc --target=wasm32-freestanding -O2 -g0 -nostdlib \
 *           -Wl,--no-entry -Wl,--export-dynamic -I sdk/c -o plugin.wasm plugin.c
 *   Any clang with a wasm32 target works the same way.
 *
 * CONVENTIONS
 *
 *   - Functions that call the host return an `rv_status`: RV_OK, a negative
 *     ABI status (RV_DENIED ... RV_HOST_ERROR; treat any negative value you
 *     do not know as a failure), or RV_NONE (1), which is not an ABI status
 *     but this SDK's name for "nothing there" (a packed result of 0: a config
 *     key that is not set, a metric never reported).
 *   - Strings passed in are NUL-terminated UTF-8 unless a length is given
 *     (the `_n` forms). The wrappers check what the host would punish as a
 *     violation (text that is not UTF-8, an argument over its cap) and
 *     return RV_INVALID_ARGUMENT instead of calling the host; log and
 *     notification texts over their caps are cut at a character boundary.
 *   - Results the host returns live in the static heap (see ALLOCATOR) and
 *     are described by `rv_str` slices: NOT NUL-terminated, valid until the
 *     heap is reset. Copy what must live longer.
 *   - A figure the host sends as JSON `null` (the OS did not say) reads as
 *     RV_NULL_I64 or RV_NULL_F64; test with rv_is_null_i64 / rv_is_null_f64.
 *     Nothing here makes a figure up.
 *
 * ALLOCATOR
 *
 *   `rv_alloc` is a bump allocator over a static array of RV_HEAP_SIZE bytes
 *   (default 1 MiB; define RV_HEAP_SIZE before the implementation include to
 *   change it). Allocations are 8-byte aligned and never freed one by one:
 *   the RV_ON_TICK wrapper resets the whole heap when your tick function
 *   returns, so everything allocated during a tick (its process events and
 *   its on_tick) stays valid until the end of on_tick. rv_heap_mark and
 *   rv_heap_release free everything allocated after a mark, for loops.
 *   Memory is never grown.
 *
 *   When the heap is exhausted, rv_alloc returns 0: the host call that
 *   wanted the buffer returns RV_NO_MEMORY (its action has happened: an
 *   HTTP response, for example, is lost), and rv_malloc returns NULL. If
 *   the host needs a buffer for a hook's string argument (a process name)
 *   and gets 0, that is a violation, so do not keep the heap full between
 *   ticks. A plugin that does not use RV_ON_TICK must call rv_heap_reset()
 *   itself. rv_heap_peak() tells how much a plugin has needed so far.
 *
 * JSON
 *
 *   Results the ABI sends as JSON come as typed structs (rv_memory_status,
 *   rv_process, rv_sensor, rv_gpu, rv_battery, ...). For anything else
 *   there is a small reader: rv_json_get, rv_json_iter_init/rv_json_next,
 *   rv_json_f64/i64/bool/str. It allocates nothing, never recurses, never
 *   reads outside the slice it is given, and every loop is bounded by the
 *   slice's length; on malformed input a call returns false.
 */
#ifndef RUVECTOR_H
#define RUVECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RV_ABI_VERSION 1

#ifndef RV_HEAP_SIZE
#define RV_HEAP_SIZE (1024u * 1024u) /* bytes of static heap behind rv_alloc */
#endif

/* SDK functions are linked into the plugin but not exported from it. */
#define RV_API __attribute__((visibility("hidden")))
/* Export a function under `name`, e.g. RV_EXPORT("on_tick"). */
#define RV_EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* ---------------------------------------------------------------------- */
/* Status codes, levels, argument caps                                     */
/* ---------------------------------------------------------------------- */

typedef enum rv_status {
    RV_NONE = 1, /* not an ABI status: the thing asked for does not exist */
    RV_OK = 0,
    RV_DENIED = -1,           /* the grant does not cover this path or host */
    RV_NOT_FOUND = -2,        /* no such process, file, key */
    RV_INVALID_ARGUMENT = -3, /* malformed argument (or refused by the SDK) */
    RV_UNSUPPORTED = -4,      /* this platform has no such thing */
    RV_RATE_LIMITED = -5,     /* too many calls of this kind in this tick */
    RV_PROTECTED = -6,        /* the target process is protected */
    RV_TOO_LARGE = -7,        /* the result or a stored value is over its cap */
    RV_IO_ERROR = -8,         /* the OS refused or failed */
    RV_TIMEOUT = -9,          /* the call's time ran out */
    RV_NO_MEMORY = -10,       /* rv_alloc returned 0: the heap is full */
    RV_HOST_ERROR = -11       /* a fault inside the host */
} rv_status;

/* "OK", "DENIED", ... "NONE"; "UNKNOWN" for a value this SDK does not know. */
RV_API const char *rv_status_name(int32_t status);

typedef enum rv_level {
    RV_LOG_TRACE = 0,
    RV_LOG_DEBUG = 1,
    RV_LOG_INFO = 2,
    RV_LOG_WARN = 3,
    RV_LOG_ERROR = 4
} rv_level;

typedef enum rv_pressure {
    RV_PRESSURE_NORMAL = 0,
    RV_PRESSURE_HIGH = 1,
    RV_PRESSURE_CRITICAL = 2
} rv_pressure;

typedef enum rv_priority {
    RV_PRIORITY_IDLE = 0,
    RV_PRIORITY_BELOW_NORMAL = 1,
    RV_PRIORITY_NORMAL = 2,
    RV_PRIORITY_ABOVE_NORMAL = 3,
    RV_PRIORITY_HIGH = 4
} rv_priority;

/* Argument caps of ABI v1, in bytes (docs/abi.md 8.3). */
#define RV_MAX_LOG_MESSAGE 8192u
#define RV_MAX_CONFIG_KEY 256u
#define RV_MAX_CONFIG_VALUE 65536u
#define RV_MAX_METRIC_NAME 128u
#define RV_MAX_TITLE 256u
#define RV_MAX_MESSAGE 4096u
#define RV_MAX_HTTP_REQUEST 1048576u
#define RV_MAX_PATH 4096u
#define RV_MAX_FILE 1048576u
#define RV_MAX_REGISTRY_KEY 1024u
#define RV_MAX_REGISTRY_VALUE 65536u

/* JSON null, as typed results carry it: values no real figure takes. */
#define RV_NULL_I64 INT64_MIN
#define RV_NULL_F64 (-__builtin_inf())
RV_API bool rv_is_null_i64(int64_t x);
RV_API bool rv_is_null_f64(double x);

/* ---------------------------------------------------------------------- */
/* Slices, memory and text helpers (there is no libc)                      */
/* ---------------------------------------------------------------------- */

/* A byte slice: not NUL-terminated, not owned. */
typedef struct rv_str {
    const char *ptr;
    uint32_t len;
} rv_str;

#define RV_STR(literal) ((rv_str){(literal), (uint32_t)(sizeof(literal) - 1)})

RV_API rv_str rv_cstr(const char *s); /* a NUL-terminated string as a slice */
RV_API uint32_t rv_strlen(const char *s);
RV_API void *rv_memcpy(void *dst, const void *src, uint32_t n);
RV_API void *rv_memset(void *dst, int c, uint32_t n);
RV_API int rv_memcmp(const void *a, const void *b, uint32_t n);
RV_API bool rv_streq(const char *a, const char *b);
RV_API bool rv_str_eq(rv_str a, const char *b);   /* bytes equal */
RV_API bool rv_str_ieq(rv_str a, const char *b);  /* equal, ASCII case ignored */
RV_API bool rv_utf8_valid(const char *s, uint32_t n); /* as strictly as the host */
/* Copy `s` into buf[cap] NUL-terminated, cut at a UTF-8 character boundary;
 * returns the bytes copied (without the NUL). cap must be >= 1. */
RV_API uint32_t rv_str_copy(char *buf, uint32_t cap, rv_str s);
/* Numbers in text: the whole slice must be the number. */
RV_API bool rv_parse_i64(rv_str s, int64_t *out);
RV_API bool rv_parse_f64(rv_str s, double *out); /* ~15 significant digits */

/* A bounded text builder over caller storage, for messages (there is no
 * printf). Appends that do not fit are cut at a character boundary and
 * set `truncated`; nothing is appended after that. The text is always
 * NUL-terminated. */
typedef struct rv_buf {
    char *ptr;
    uint32_t len;
    uint32_t cap; /* storage size, the NUL included */
    bool truncated;
} rv_buf;

RV_API rv_buf rv_buf_init(char *storage, uint32_t cap); /* cap >= 1 */
RV_API rv_buf *rv_buf_str(rv_buf *b, const char *s);
RV_API rv_buf *rv_buf_strn(rv_buf *b, const char *s, uint32_t n);
RV_API rv_buf *rv_buf_char(rv_buf *b, char c);
RV_API rv_buf *rv_buf_i64(rv_buf *b, int64_t v);
RV_API rv_buf *rv_buf_u64(rv_buf *b, uint64_t v);
/* `decimals` 0..9, rounded half up; "nan", "inf", "-inf"; >= 1e18 as 1.5e+20 */
RV_API rv_buf *rv_buf_f64(rv_buf *b, double v, int decimals);
/* A JSON string literal, quotes included, with `"`, `\` and controls escaped. */
RV_API rv_buf *rv_buf_json_str(rv_buf *b, const char *s, uint32_t n);
RV_API rv_str rv_buf_view(const rv_buf *b);

/* ---------------------------------------------------------------------- */
/* Heap                                                                    */
/* ---------------------------------------------------------------------- */

RV_API void *rv_malloc(uint32_t n);     /* 8-byte aligned; NULL when full */
RV_API uint32_t rv_heap_mark(void);     /* the current top of the heap */
RV_API void rv_heap_release(uint32_t mark); /* free all allocated since mark */
RV_API void rv_heap_reset(void);        /* free everything */
RV_API uint32_t rv_heap_used(void);
RV_API uint32_t rv_heap_peak(void);     /* the most ever in use */

/* ---------------------------------------------------------------------- */
/* JSON reader                                                             */
/* ---------------------------------------------------------------------- */

typedef enum rv_json_kind {
    RV_JSON_INVALID = 0,
    RV_JSON_NULL,
    RV_JSON_BOOL,
    RV_JSON_NUMBER,
    RV_JSON_STRING,
    RV_JSON_ARRAY,
    RV_JSON_OBJECT
} rv_json_kind;

/* The kind of the value that starts `v` (leading blanks skipped). */
RV_API rv_json_kind rv_json_kind_of(rv_str v);
/* The member `key` of object `obj`; `out` is the value's exact text. */
RV_API bool rv_json_get(rv_str obj, const char *key, rv_str *out);
RV_API bool rv_json_is_null(rv_str v);
RV_API bool rv_json_f64(rv_str v, double *out);
RV_API bool rv_json_i64(rv_str v, int64_t *out); /* an integral number */
RV_API bool rv_json_bool(rv_str v, bool *out);
/* A JSON string value, unescaped into buf[cap] (NUL-terminated, cut at a
 * character boundary). Returns its full decoded length, so a result >= cap
 * means it was cut, or -1 if `v` is not a string. The decoded text is never
 * longer than v.len. */
RV_API int32_t rv_json_str(rv_str v, char *buf, uint32_t cap);
/* Whether the string value `v`, unescaped, equals `s` (ASCII case ignored
 * with _ieq). */
RV_API bool rv_json_str_eq(rv_str v, const char *s);
RV_API bool rv_json_str_ieq(rv_str v, const char *s);

/* Walks the elements of an array or the members of an object. */
typedef struct rv_json_iter {
    const char *ptr;
    uint32_t len;
    uint32_t pos;
    bool object;
} rv_json_iter;

/* false if `container` is not an array or object. */
RV_API bool rv_json_iter_init(rv_json_iter *it, rv_str container);
/* The next element (for an object, the next member's value). */
RV_API bool rv_json_next(rv_json_iter *it, rv_str *value);
/* The next member of an object: its key as a JSON string token (compare it
 * with rv_json_str_eq) and its value. */
RV_API bool rv_json_next_member(rv_json_iter *it, rv_str *key, rv_str *value);

/* ---------------------------------------------------------------------- */
/* Host functions: logging, config, metrics (always linked)                */
/* ---------------------------------------------------------------------- */

RV_API rv_status rv_log(rv_level level, const char *message);
RV_API rv_status rv_log_n(rv_level level, const char *message, uint32_t len);
RV_API rv_status rv_log_trace(const char *message);
RV_API rv_status rv_log_debug(const char *message);
RV_API rv_status rv_log_info(const char *message);
RV_API rv_status rv_log_warn(const char *message);
RV_API rv_status rv_log_error(const char *message);

/* The raw value of config `key`: a string without its quotes, anything else
 * as compact JSON. RV_NONE if the key is not set. */
RV_API rv_status rv_get_config(const char *key, rv_str *out);
/* Typed reads with a default for a key that is unset or does not parse. */
RV_API double rv_config_f64(const char *key, double fallback);
RV_API int64_t rv_config_i64(const char *key, int64_t fallback);
RV_API bool rv_config_bool(const char *key, bool fallback);
/* The value (or `fallback` when unset) into buf[cap], NUL-terminated and
 * cut at a character boundary; returns the bytes copied. */
RV_API uint32_t rv_config_str(const char *key, char *buf, uint32_t cap, const char *fallback);
RV_API rv_status rv_set_config(const char *key, const char *value);
RV_API rv_status rv_set_config_n(const char *key, const char *value, uint32_t len);

RV_API rv_status rv_report_metric(const char *name, double value);
/* The hourly means of metric `name`: hours[h] for local hour h, RV_NULL_F64
 * where nothing was reported. RV_NONE if the metric was never reported. */
RV_API rv_status rv_get_learned_pattern(const char *name, double hours[24]);

/* ---------------------------------------------------------------------- */
/* Host functions: system information (ReadSystemInfo)                     */
/* ---------------------------------------------------------------------- */

typedef struct rv_memory_status {
    int64_t total_bytes;
    int64_t available_bytes;
    int64_t used_bytes;
    double percent; /* used share, 0..100; drives on_memory_pressure */
    int64_t swap_total_bytes;
    int64_t swap_used_bytes;
} rv_memory_status;

RV_API rv_status rv_get_memory_status(rv_memory_status *out);
/* System-wide CPU use, 0..100, over the host's last reading window. */
RV_API rv_status rv_get_cpu_usage(double *percent);

/* A list the host returned as JSON, walked one typed entry at a time. */
typedef struct rv_list {
    rv_str json; /* the whole document, for your own parsing */
    rv_json_iter it;
} rv_list;

typedef struct rv_sensor {
    char chip[64];  /* e.g. "thinkpad", "coretemp", "k10temp" */
    char label[64]; /* may be empty */
    double celsius;
    double high;     /* RV_NULL_F64 if the sensor has no such threshold */
    double critical; /* RV_NULL_F64 likewise */
} rv_sensor;

/* Every temperature sensor; the list is empty where there are none (VMs,
 * Windows, macOS). */
RV_API rv_status rv_get_temperature(rv_list *out);
RV_API bool rv_sensor_next(rv_list *list, rv_sensor *out);

typedef struct rv_gpu {
    int32_t index; /* position in the list, not a driver number */
    char name[128];
    char vendor[32]; /* "AMD", "NVIDIA", "Intel" or the PCI vendor id */
    double utilization_percent;   /* RV_NULL_F64 if not published */
    int64_t memory_used_bytes;    /* RV_NULL_I64 if not published */
    int64_t memory_total_bytes;   /* RV_NULL_I64 if not published */
    double temperature_celsius;   /* RV_NULL_F64 if not published */
} rv_gpu;

RV_API rv_status rv_get_gpu_status(rv_list *out);
RV_API bool rv_gpu_next(rv_list *list, rv_gpu *out);

typedef struct rv_battery {
    bool present;         /* false: no battery (desktops, VMs); nothing else is set */
    double percent;       /* RV_NULL_F64 if unknown */
    int32_t plugged;      /* 1 on mains, 0 on battery, -1 unknown */
    int64_t seconds_left; /* RV_NULL_I64 while charging or unknown */
} rv_battery;

RV_API rv_status rv_get_battery_status(rv_battery *out);

/* ---------------------------------------------------------------------- */
/* Host functions: processes                                               */
/* ---------------------------------------------------------------------- */

#define RV_PROCESS_NAME_MAX 256

typedef struct rv_process {
    int32_t pid;
    int32_t ppid;
    char name[RV_PROCESS_NAME_MAX]; /* NUL-terminated, cut if longer */
    uint32_t name_len;              /* bytes in name */
    bool name_truncated;
    int64_t memory_bytes; /* resident set; RV_NULL_I64 if the OS refused */
    double cpu_percent;   /* 100.0 = one core; RV_NULL_F64 if the OS refused */
    int64_t nice;         /* Windows: priority class; RV_NULL_I64 if refused */
} rv_process;

/* ReadProcessList: every process of this tick's reading. */
RV_API rv_status rv_get_process_list(rv_list *out);
RV_API bool rv_process_next(rv_list *list, rv_process *out);
/* Whether a process name equals `name`, ASCII case ignored and a ".exe"
 * suffix on either side ignored ("Chrome.exe" matches "chrome"). */
RV_API bool rv_process_name_is(const char *process_name, const char *name);
/* ReadProcessList: resident set size in bytes (0 is a real value). */
RV_API rv_status rv_get_process_memory(int32_t pid, int64_t *bytes);
/* ModifyProcessPriority */
RV_API rv_status rv_set_process_priority(int32_t pid, rv_priority priority);
/* TrimProcessMemory: Windows only; RV_UNSUPPORTED elsewhere. */
RV_API rv_status rv_trim_process_memory(int32_t pid, int64_t *bytes_freed);
/* KillProcess: asks the process to end (SIGTERM / TerminateProcess). */
RV_API rv_status rv_kill_process(int32_t pid);

/* ---------------------------------------------------------------------- */
/* Host functions: notifications, network, files, registry                 */
/* ---------------------------------------------------------------------- */

/* ShowNotifications: at most 5 per tick (then RV_RATE_LIMITED). */
RV_API rv_status rv_show_notification(const char *title, const char *message);

typedef struct rv_http_response {
    int32_t status;  /* HTTP status code */
    rv_str headers;  /* JSON object; names are lower case */
    rv_str body;     /* JSON string token: decode with rv_http_body */
} rv_http_response;

/* NetworkAccess: one request. `headers` is NULL or a NULL-terminated list of
 * name, value pairs; `body` may be NULL. The request JSON is built on the
 * heap. */
RV_API rv_status rv_http_request(const char *method, const char *url,
                                 const char *const *headers, const char *body,
                                 uint32_t body_len, rv_http_response *out);
RV_API rv_status rv_http_get(const char *url, rv_http_response *out);
/* The request as the JSON object docs/abi.md 6.6 describes. */
RV_API rv_status rv_http_request_json(const char *request, uint32_t len,
                                      rv_http_response *out);
/* The body, decoded, into buf[cap]; as rv_json_str. */
RV_API int32_t rv_http_body(const rv_http_response *response, char *buf, uint32_t cap);
/* Header `name` (lower case) into buf[cap]; -1 if absent, as rv_json_str. */
RV_API int32_t rv_http_header(const rv_http_response *response, const char *name,
                              char *buf, uint32_t cap);

/* FileSystemRead: the whole file (at most 1 MiB, else RV_TOO_LARGE); a
 * directory gives RV_INVALID_ARGUMENT, a missing path RV_NOT_FOUND. */
RV_API rv_status rv_read_file(const char *path, rv_str *out);
/* FileSystemWrite: create or replace atomically; data over 1 MiB is refused
 * here with RV_TOO_LARGE (the host would count it as a violation). */
RV_API rv_status rv_write_file(const char *path, const void *data, uint32_t len);

typedef struct rv_registry_value {
    char type[32]; /* "REG_SZ", "REG_DWORD", ... */
    rv_str value;  /* JSON: a string, a number or a list of strings */
} rv_registry_value;

/* RegistryRead: Windows only; RV_UNSUPPORTED elsewhere. */
RV_API rv_status rv_registry_read(const char *key, rv_registry_value *out);
/* RegistryWrite: Windows only; RV_UNSUPPORTED elsewhere. `value_json` is
 * {"type": ..., "value": ...}. */
RV_API rv_status rv_registry_write_json(const char *key, const char *value_json, uint32_t len);
RV_API rv_status rv_registry_write_sz(const char *key, const char *value);
RV_API rv_status rv_registry_write_dword(const char *key, uint32_t value);
RV_API rv_status rv_registry_write_qword(const char *key, uint64_t value);

/* ---------------------------------------------------------------------- */
/* Exporting lifecycle hooks                                               */
/* ---------------------------------------------------------------------- */
/*
 * Each macro defines the export and calls your function, which you declare
 * `static` with the signature shown:
 *
 *   RV_ON_INIT(fn)            void fn(void)
 *   RV_ON_TICK(fn)            void fn(int32_t interval_ms)   heap reset after
 *   RV_ON_MEMORY_PRESSURE(fn) void fn(rv_pressure level)
 *   RV_ON_PROCESS_LAUNCH(fn)  void fn(rv_str name, int32_t pid)
 *   RV_ON_PROCESS_EXIT(fn)    void fn(rv_str name, int32_t pid)
 *   RV_ON_PROFILE_SWITCH(fn)  void fn(rv_str profile)
 *   RV_ON_CLEANUP(fn)         void fn(void)
 *
 * Export only the hooks you handle. The host calls each tick's process
 * events before its on_tick, so names given to the event hooks stay valid
 * until on_tick returns.
 */
#define RV__HOOK(export, name, params) \
    RV_EXPORT(export) void name params;   \
    RV_EXPORT(export) void name params
#define RV__NAME(ptr, len) ((rv_str){(const char *)(uintptr_t)(uint32_t)(ptr), (uint32_t)(len)})

#define RV_ON_INIT(fn) \
    RV__HOOK("on_init", rv__hook_on_init, (void)) { fn(); }
#define RV_ON_TICK(fn)                                              \
    RV__HOOK("on_tick", rv__hook_on_tick, (int32_t interval_ms)) \
    {                                                               \
        fn(interval_ms);                                            \
        rv_heap_reset();                                            \
    }
#define RV_ON_MEMORY_PRESSURE(fn) \
    RV__HOOK("on_memory_pressure", rv__hook_on_memory_pressure, (int32_t level)) { fn((rv_pressure)level); }
#define RV_ON_PROCESS_LAUNCH(fn)                                                              \
    RV__HOOK("on_process_launch", rv__hook_on_process_launch, (int32_t p, int32_t n, int32_t pid)) \
    {                                                                                         \
        fn(RV__NAME(p, n), pid);                                                              \
    }
#define RV_ON_PROCESS_EXIT(fn)                                                            \
    RV__HOOK("on_process_exit", rv__hook_on_process_exit, (int32_t p, int32_t n, int32_t pid)) \
    {                                                                                     \
        fn(RV__NAME(p, n), pid);                                                          \
    }
#define RV_ON_PROFILE_SWITCH(fn) \
    RV__HOOK("on_profile_switch", rv__hook_on_profile_switch, (int32_t p, int32_t n)) { fn(RV__NAME(p, n)); }
#define RV_ON_CLEANUP(fn) \
    RV__HOOK("on_cleanup", rv__hook_on_cleanup, (void)) { fn(); }

/* The two required exports, defined by the implementation half. */
RV_EXPORT("rv_abi_version") int32_t rv_abi_version(void);
RV_EXPORT("rv_alloc") int32_t rv_alloc(int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* RUVECTOR_H */

/* ====================================================================== */
/* Implementation                                                          */
/* ====================================================================== */

#if defined(RUVECTOR_IMPLEMENTATION) && !defined(RUVECTOR_IMPLEMENTED)
#define RUVECTOR_IMPLEMENTED

#if !defined(__wasm32__)
#error "ruvector.h's implementation is for wasm32 targets (--target=wasm32-freestanding)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* -- host imports: module "ruvector", exact ABI v1 signatures ------------- */

#define RV__IMPORT(name) __attribute__((import_module("ruvector"), import_name(name)))

RV__IMPORT("log") int32_t rv__host_log(int32_t level, const char *msg, uint32_t len);
RV__IMPORT("get_config") int64_t rv__host_get_config(const char *key, uint32_t len);
RV__IMPORT("set_config")
int32_t rv__host_set_config(const char *key, uint32_t key_len, const char *val, uint32_t val_len);
RV__IMPORT("report_metric") int32_t rv__host_report_metric(const char *name, uint32_t len, double v);
RV__IMPORT("get_learned_pattern")
int64_t rv__host_get_learned_pattern(const char *name, uint32_t len);
RV__IMPORT("get_memory_status") int64_t rv__host_get_memory_status(void);
RV__IMPORT("get_cpu_usage") double rv__host_get_cpu_usage(void);
RV__IMPORT("get_temperature") int64_t rv__host_get_temperature(void);
RV__IMPORT("get_gpu_status") int64_t rv__host_get_gpu_status(void);
RV__IMPORT("get_battery_status") int64_t rv__host_get_battery_status(void);
RV__IMPORT("get_process_list") int64_t rv__host_get_process_list(void);
RV__IMPORT("get_process_memory") int64_t rv__host_get_process_memory(int32_t pid);
RV__IMPORT("set_process_priority") int32_t rv__host_set_process_priority(int32_t pid, int32_t prio);
RV__IMPORT("trim_process_memory") int64_t rv__host_trim_process_memory(int32_t pid);
RV__IMPORT("kill_process") int32_t rv__host_kill_process(int32_t pid);
RV__IMPORT("show_notification")
int32_t rv__host_show_notification(const char *title, uint32_t title_len, const char *msg,
                                   uint32_t msg_len);
RV__IMPORT("http_request") int64_t rv__host_http_request(const char *req, uint32_t len);
RV__IMPORT("read_file") int64_t rv__host_read_file(const char *path, uint32_t len);
RV__IMPORT("write_file")
int32_t rv__host_write_file(const char *path, uint32_t path_len, const void *data, uint32_t len);
RV__IMPORT("registry_read") int64_t rv__host_registry_read(const char *key, uint32_t len);
RV__IMPORT("registry_write")
int32_t rv__host_registry_write(const char *key, uint32_t key_len, const char *val, uint32_t len);

/* -- required exports and the heap ----------------------------------------- */

static unsigned char rv__heap[RV_HEAP_SIZE] __attribute__((aligned(8)));
static uint32_t rv__heap_top;
static uint32_t rv__heap_max;

int32_t rv_abi_version(void) { return RV_ABI_VERSION; }

void *rv_malloc(uint32_t n)
{
    uint32_t start = (rv__heap_top + 7u) & ~7u;
    if (n == 0) n = 1;
    if (start > RV_HEAP_SIZE || n > RV_HEAP_SIZE - start) return NULL;
    rv__heap_top = start + n;
    if (rv__heap_top > rv__heap_max) rv__heap_max = rv__heap_top;
    return rv__heap + start;
}

/* Called by the host during a host call: no host calls from here (ABI 2.1). */
int32_t rv_alloc(int32_t size) { return (int32_t)(uintptr_t)rv_malloc((uint32_t)size); }

uint32_t rv_heap_mark(void) { return rv__heap_top; }
void rv_heap_release(uint32_t mark)
{
    if (mark <= rv__heap_top) rv__heap_top = mark;
}
void rv_heap_reset(void) { rv__heap_top = 0; }
uint32_t rv_heap_used(void) { return rv__heap_top; }
uint32_t rv_heap_peak(void) { return rv__heap_max; }

/* -- libc fallbacks ----------------------------------------------------------
 * Without bulk memory (e.g. clang's -mcpu=mvp), the compiler turns struct
 * copies and zeroing into calls to these; with it (zig's default), it emits
 * memory.copy / memory.fill and the linker drops them. */
#ifndef RV_NO_LIBC_FALLBACKS
#define RV__FALLBACK __attribute__((weak, visibility("hidden"), no_builtin))
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
RV__FALLBACK void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--) *d++ = *s++;
    return dst;
}
RV__FALLBACK void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}
RV__FALLBACK void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
RV__FALLBACK int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}
#endif

/* -- memory and text -------------------------------------------------------- */

const char *rv_status_name(int32_t status)
{
    static const char *const names[] = {
        "OK",       "DENIED",  "NOT_FOUND", "INVALID_ARGUMENT", "UNSUPPORTED", "RATE_LIMITED",
        "PROTECTED", "TOO_LARGE", "IO_ERROR", "TIMEOUT", "NO_MEMORY", "HOST_ERROR"};
    if (status == RV_NONE) return "NONE";
    if (status <= 0 && status >= RV_HOST_ERROR) return names[-status];
    return "UNKNOWN";
}

uint32_t rv_strlen(const char *s)
{
    uint32_t n = 0;
    if (!s) return 0;
    while (s[n]) n++;
    return n;
}

rv_str rv_cstr(const char *s)
{
    rv_str r = {s ? s : "", rv_strlen(s)};
    return r;
}

void *rv_memcpy(void *dst, const void *src, uint32_t n) { return __builtin_memcpy(dst, src, n); }
void *rv_memset(void *dst, int c, uint32_t n) { return __builtin_memset(dst, c, n); }
int rv_memcmp(const void *a, const void *b, uint32_t n)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    for (uint32_t i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

bool rv_streq(const char *a, const char *b)
{
    uint32_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    return a[i] == b[i];
}

static char rv__lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

bool rv_str_eq(rv_str a, const char *b)
{
    uint32_t n = rv_strlen(b);
    return a.len == n && rv_memcmp(a.ptr, b, n) == 0;
}

bool rv_str_ieq(rv_str a, const char *b)
{
    uint32_t n = rv_strlen(b);
    if (a.len != n) return false;
    for (uint32_t i = 0; i < n; i++)
        if (rv__lower(a.ptr[i]) != rv__lower(b[i])) return false;
    return true;
}

/* Strict UTF-8, as Python's decoder: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
bool rv_utf8_valid(const char *s, uint32_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        uint32_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (n - i <= need) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (uint32_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}

/* The longest prefix of valid UTF-8 `s` of at most `cap` bytes that ends on
 * a character boundary. */
static uint32_t rv__utf8_clip(const char *s, uint32_t n, uint32_t cap)
{
    if (n <= cap) return n;
    while (cap > 0 && (((unsigned char)s[cap]) & 0xC0) == 0x80) cap--;
    return cap;
}

/* Bytes in the UTF-8 sequence that starts with `c` (1 for a stray byte). */
static uint32_t rv__utf8_seq_len(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7) return 4;
    if (c >= 0xE0) return c <= 0xEF ? 3 : 1;
    if (c >= 0xC0) return 2;
    return 1;
}

uint32_t rv_str_copy(char *buf, uint32_t cap, rv_str s)
{
    uint32_t n;
    if (cap == 0) return 0;
    n = rv__utf8_clip(s.ptr, s.len, cap - 1);
    rv_memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return n;
}

bool rv_parse_i64(rv_str s, int64_t *out)
{
    uint32_t i = 0;
    bool neg = false;
    uint64_t v = 0, limit;
    if (i < s.len && s.ptr[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= s.len) return false;
    limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (uint32_t digits = 0; i < s.len; i++, digits++) {
        uint32_t d = (uint32_t)(unsigned char)s.ptr[i] - '0';
        if (d > 9) return false;
        /* 18 digits cannot overflow; test the rest */
        if (digits >= 18 && v > (limit - d) / 10u) return false;
        v = v * 10u + d;
    }
    *out = neg ? (int64_t)(0u - v) : (int64_t)v;
    return true;
}

static const double rv__pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static double rv__scale10(double v, int32_t e)
{
    while (e > 22 && v != 0 && v < __builtin_inf()) {
        v *= 1e22;
        e -= 22;
    }
    while (e < -22 && v != 0) {
        v /= 1e22;
        e += 22;
    }
    if (e > 22 || e < -22) return v; /* inf or 0 already */
    return e >= 0 ? v * rv__pow10[e] : v / rv__pow10[-e];
}

/* JSON number grammar; mantissa kept to 19 significant digits. */
bool rv_parse_f64(rv_str s, double *out)
{
    const char *p = s.ptr;
    uint32_t n = s.len, i = 0, sig = 0;
    bool neg = false, any = false;
    uint64_t mant = 0;
    int32_t e10 = 0;
    if (i < n && p[i] == '-') {
        neg = true;
        i++;
    }
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        any = true;
        if (mant == 0 && p[i] == '0') continue;
        if (sig < 19) {
            mant = mant * 10u + (uint64_t)(p[i] - '0');
            sig++;
        } else {
            e10++;
        }
    }
    if (!any) return false;
    if (i < n && p[i] == '.') {
        bool frac = false;
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
            frac = true;
            if (mant == 0 && p[i] == '0') {
                e10--;
            } else if (sig < 19) {
                mant = mant * 10u + (uint64_t)(p[i] - '0');
                sig++;
                e10--;
            }
        }
        if (!frac) return false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        bool eneg = false, edig = false;
        int32_t e = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) eneg = p[i++] == '-';
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
            edig = true;
            if (e < 100000) e = e * 10 + (p[i] - '0');
        }
        if (!edig) return false;
        e10 += eneg ? -e : e;
    }
    if (i != n) return false;
    {
        double v = rv__scale10((double)mant, e10);
        *out = neg ? -v : v;
    }
    return true;
}

/* -- text builder ------------------------------------------------------------ */

rv_buf rv_buf_init(char *storage, uint32_t cap)
{
    rv_buf b;
    b.ptr = storage;
    b.len = 0;
    b.cap = cap;
    b.truncated = cap == 0;
    if (cap) storage[0] = 0;
    return b;
}

rv_buf *rv_buf_strn(rv_buf *b, const char *s, uint32_t n)
{
    uint32_t room, take;
    if (b->truncated || b->cap == 0) return b;
    room = b->cap - 1 - b->len;
    take = n;
    if (n > room) {
        take = rv__utf8_clip(s, n, room);
        b->truncated = true;
    }
    rv_memcpy(b->ptr + b->len, s, take);
    b->len += take;
    b->ptr[b->len] = 0;
    return b;
}

rv_buf *rv_buf_str(rv_buf *b, const char *s) { return rv_buf_strn(b, s, rv_strlen(s)); }
rv_buf *rv_buf_char(rv_buf *b, char c) { return rv_buf_strn(b, &c, 1); }

rv_buf *rv_buf_u64(rv_buf *b, uint64_t v)
{
    char tmp[20];
    uint32_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    return rv_buf_strn(b, tmp + i, (uint32_t)sizeof tmp - i);
}

rv_buf *rv_buf_i64(rv_buf *b, int64_t v)
{
    if (v < 0) {
        rv_buf_char(b, '-');
        return rv_buf_u64(b, 0u - (uint64_t)v);
    }
    return rv_buf_u64(b, (uint64_t)v);
}

static rv_buf *rv__buf_fixed(rv_buf *b, double v, int decimals)
{
    uint64_t scale = 1, whole, frac;
    double rest;
    for (int i = 0; i < decimals; i++) scale *= 10u;
    whole = (uint64_t)v;
    rest = (v - (double)whole) * (double)scale + 0.5;
    frac = (uint64_t)rest;
    if (frac >= scale) {
        whole++;
        frac -= scale;
    }
    rv_buf_u64(b, whole);
    if (decimals > 0) {
        char digits[9];
        for (int i = decimals - 1; i >= 0; i--) {
            digits[i] = (char)('0' + frac % 10u);
            frac /= 10u;
        }
        rv_buf_char(b, '.');
        rv_buf_strn(b, digits, (uint32_t)decimals);
    }
    return b;
}

rv_buf *rv_buf_f64(rv_buf *b, double v, int decimals)
{
    if (decimals < 0) decimals = 0;
    if (decimals > 9) decimals = 9;
    if (v != v) return rv_buf_str(b, "nan");
    if (v < 0) {
        rv_buf_char(b, '-');
        v = -v;
    }
    if (v == __builtin_inf()) return rv_buf_str(b, "inf");
    if (v < 1e18) return rv__buf_fixed(b, v, decimals);
    {
        int32_t e = 0;
        while (v >= 10.0) {
            v /= 10.0;
            e++;
        }
        rv__buf_fixed(b, v, decimals);
        rv_buf_str(b, "e+");
        return rv_buf_i64(b, e);
    }
}

/* The length of s as a JSON string literal, quotes included. */
static uint64_t rv__json_str_len(const char *s, uint32_t n)
{
    uint64_t len = 2;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        len += (c == '"' || c == '\\') ? 2u : c < 0x20 ? 6u : 1u;
    }
    return len;
}

rv_buf *rv_buf_json_str(rv_buf *b, const char *s, uint32_t n)
{
    static const char hex[] = "0123456789abcdef";
    rv_buf_char(b, '"');
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rv_buf_strn(b, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rv_buf_strn(b, esc, 6);
        } else {
            uint32_t k = rv__utf8_seq_len(c);
            if (k > n - i) k = n - i;
            rv_buf_strn(b, s + i, k); /* whole characters, so a cut stays valid */
            i += k - 1;
        }
    }
    return rv_buf_char(b, '"');
}

rv_str rv_buf_view(const rv_buf *b)
{
    rv_str s = {b->ptr, b->len};
    return s;
}

/* -- JSON reader ------------------------------------------------------------- */

/* Byte classes, so each scanning loop does one lookup per byte: plugins
 * pay fuel per instruction, and process lists run to hundreds of KiB. */
#define RV__BLANK 1u  /* space, tab, CR, LF */
#define RV__DELIM 2u  /* ends a number or literal: blanks , : } ] */
#define RV__STRING 4u /* stops a run of string bytes: " \ */
#define RV__NEST 8u   /* matters while skipping a container: { } [ ] " */
static const unsigned char rv__class[256] = {
    [' '] = RV__BLANK | RV__DELIM, ['\t'] = RV__BLANK | RV__DELIM,
    ['\n'] = RV__BLANK | RV__DELIM, ['\r'] = RV__BLANK | RV__DELIM,
    [','] = RV__DELIM, [':'] = RV__DELIM, ['}'] = RV__DELIM | RV__NEST,
    [']'] = RV__DELIM | RV__NEST, ['{'] = RV__NEST, ['['] = RV__NEST,
    ['"'] = RV__STRING | RV__NEST, ['\\'] = RV__STRING,
};
#define RV__IS(c, cls) (rv__class[(unsigned char)(c)] & (cls))

static bool rv__blank(char c) { return RV__IS(c, RV__BLANK); }

static uint32_t rv__skip_blank(const char *p, uint32_t n, uint32_t i)
{
    while (i < n && RV__IS(p[i], RV__BLANK)) i++;
    return i;
}

/* The first index from i of a '"' or '\\' (n if none). Eight bytes at a
 * time: one 64-bit load and a few operations instead of eight compares. */
static uint32_t rv__string_stop(const char *p, uint32_t n, uint32_t i)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (i + 8 <= n) {
        uint64_t x, q, b, hit;
        __builtin_memcpy(&x, p + i, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        /* a byte of q or b is zero where x has '"' or '\\'; the lowest flag
         * is exact (little-endian: the first such byte) */
        hit = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (hit) return i + (uint32_t)(__builtin_ctzll(hit) >> 3);
        i += 8;
    }
    while (i < n && !RV__IS(p[i], RV__STRING)) i++;
    return i;
}

/* Index just past the string token that starts at p[i] == '"'; 0 if unclosed. */
static uint32_t rv__string_end(const char *p, uint32_t n, uint32_t i)
{
    for (i = rv__string_stop(p, n, i + 1); i < n; i = rv__string_stop(p, n, i + 2))
        if (p[i] == '"') return i + 1; /* else a backslash: skip the escaped byte */
    return 0;
}

/* Index just past the value that starts at p[i]; 0 if there is none. A
 * valid end is never 0. Containers are skipped by counting brackets, so
 * nesting depth costs nothing and nothing recurses. */
static uint32_t rv__value_end(const char *p, uint32_t n, uint32_t i)
{
    uint32_t start = i, depth = 0;
    if (i >= n) return 0;
    if (p[i] == '"') return rv__string_end(p, n, i);
    if (p[i] == '{' || p[i] == '[') {
        while (i < n) {
            char c = p[i];
            if (!RV__IS(c, RV__NEST)) {
                i++;
            } else if (c == '"') {
                i = rv__string_end(p, n, i);
                if (!i) return 0;
            } else if (c == '{' || c == '[') {
                depth++;
                i++;
            } else {
                if (--depth == 0) return i + 1;
                i++;
            }
        }
        return 0;
    }
    while (i < n && !RV__IS(p[i], RV__DELIM)) i++;
    return i > start ? i : 0;
}

static rv_str rv__trim(rv_str v)
{
    uint32_t i = rv__skip_blank(v.ptr, v.len, 0), end = v.len;
    while (end > i && rv__blank(v.ptr[end - 1])) end--;
    v.ptr += i;
    v.len = end - i;
    return v;
}

rv_json_kind rv_json_kind_of(rv_str v)
{
    v = rv__trim(v);
    if (v.len == 0) return RV_JSON_INVALID;
    switch (v.ptr[0]) {
    case 'n': return RV_JSON_NULL;
    case 't':
    case 'f': return RV_JSON_BOOL;
    case '"': return RV_JSON_STRING;
    case '[': return RV_JSON_ARRAY;
    case '{': return RV_JSON_OBJECT;
    default: return (v.ptr[0] == '-' || (v.ptr[0] >= '0' && v.ptr[0] <= '9')) ? RV_JSON_NUMBER
                                                                            : RV_JSON_INVALID;
    }
}

bool rv_json_iter_init(rv_json_iter *it, rv_str container)
{
    container = rv__trim(container);
    it->ptr = container.ptr;
    it->len = container.len;
    it->pos = 1;
    it->object = container.len > 0 && container.ptr[0] == '{';
    if (container.len < 2 || (container.ptr[0] != '[' && !it->object)) {
        it->pos = it->len; /* nothing to walk */
        return false;
    }
    return true;
}

static bool rv__iter_value(rv_json_iter *it, rv_str *value)
{
    uint32_t end = rv__value_end(it->ptr, it->len, it->pos);
    if (!end) {
        it->pos = it->len;
        return false;
    }
    value->ptr = it->ptr + it->pos;
    value->len = end - it->pos;
    it->pos = end;
    return true;
}

/* Positions `it` on the next entry; false at the end or on malformed text.
 * At the end, `pos` is just past the closing bracket (the container's end
 * in the text walked), or `len` if there was none. */
static bool rv__iter_advance(rv_json_iter *it)
{
    uint32_t i = rv__skip_blank(it->ptr, it->len, it->pos);
    if (i < it->len && it->ptr[i] == ',') i = rv__skip_blank(it->ptr, it->len, i + 1);
    if (i >= it->len || it->ptr[i] == ']' || it->ptr[i] == '}') {
        it->pos = i < it->len ? i + 1 : it->len;
        it->len = it->pos; /* done: later calls return false */
        return false;
    }
    it->pos = i;
    return true;
}

/* Walks the object that starts at the outer iterator's next entry in place,
 * so the typed readers scan each byte once: `inner` iterates its members,
 * and rv__leave moves `outer` past it. False if the entry is not an object
 * (it is skipped). */
static bool rv__enter_object(rv_json_iter *outer, rv_json_iter *inner)
{
    rv_str skipped;
    if (!rv__iter_advance(outer)) return false;
    if (outer->ptr[outer->pos] != '{') {
        rv__iter_value(outer, &skipped);
        inner->ptr = "{}";
        inner->len = 2;
    } else {
        inner->ptr = outer->ptr + outer->pos;
        inner->len = outer->len - outer->pos;
    }
    inner->pos = 1;
    inner->object = true;
    return true;
}

static void rv__leave(rv_json_iter *outer, const rv_json_iter *inner)
{
    if (inner->ptr == outer->ptr + outer->pos) outer->pos += inner->pos;
}


bool rv_json_next_member(rv_json_iter *it, rv_str *key, rv_str *value)
{
    uint32_t end;
    if (!it->object || !rv__iter_advance(it) || it->ptr[it->pos] != '"') {
        it->pos = it->len;
        return false;
    }
    end = rv__string_end(it->ptr, it->len, it->pos);
    if (!end) {
        it->pos = it->len;
        return false;
    }
    key->ptr = it->ptr + it->pos;
    key->len = end - it->pos;
    end = rv__skip_blank(it->ptr, it->len, end);
    if (end >= it->len || it->ptr[end] != ':') {
        it->pos = it->len;
        return false;
    }
    it->pos = rv__skip_blank(it->ptr, it->len, end + 1);
    return rv__iter_value(it, value);
}

bool rv_json_next(rv_json_iter *it, rv_str *value)
{
    rv_str key;
    if (it->object) return rv_json_next_member(it, &key, value);
    return rv__iter_advance(it) && rv__iter_value(it, value);
}

static uint32_t rv__hex4(const char *p)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0xFFFFFFFFu;
    }
    return v;
}

static uint32_t rv__utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the next character of the string token t (opening quote already
 * passed; *i is the read position) into out: returns its byte count, 0 at
 * the closing quote, -1 on malformed text. A lone surrogate becomes U+FFFD. */
static int32_t rv__json_char(rv_str t, uint32_t *i, char out[4])
{
    uint32_t k = *i, cp;
    unsigned char c;
    if (k >= t.len) return -1;
    c = (unsigned char)t.ptr[k];
    if (c == '"') return 0;
    if (c != '\\') {
        uint32_t n = rv__utf8_seq_len(c);
        if (n > t.len - k) return -1;
        rv_memcpy(out, t.ptr + k, n);
        *i = k + n;
        return (int32_t)n;
    }
    if (k + 1 >= t.len) return -1;
    switch (t.ptr[k + 1]) {
    case '"': out[0] = '"'; break;
    case '\\': out[0] = '\\'; break;
    case '/': out[0] = '/'; break;
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u':
        if (t.len - k < 6) return -1;
        cp = rv__hex4(t.ptr + k + 2);
        if (cp == 0xFFFFFFFFu) return -1;
        k += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && t.len - k >= 6 && t.ptr[k] == '\\' &&
            t.ptr[k + 1] == 'u') {
            uint32_t lo = rv__hex4(t.ptr + k + 2);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        *i = k;
        return (int32_t)rv__utf8_put(cp, out);
    default: return -1;
    }
    *i = k + 2;
    return 1;
}

/* Appends `n` decoded bytes to buf[cap]; once something does not fit, the
 * text is cut at a character boundary and nothing more is written. */
static void rv__emit(char *buf, uint32_t cap, uint32_t *written, bool *full, const char *s,
                     uint32_t n)
{
    uint32_t room;
    if (*full) return;
    room = cap - 1 - *written;
    if (n > room) {
        n = rv__utf8_clip(s, n, room);
        *full = true;
    }
    rv_memcpy(buf + *written, s, n);
    *written += n;
}

/* Decodes the string token of `t` whose opening quote is at *i into
 * buf[cap] (as rv_json_str); leaves *i just past its closing quote. */
static int32_t rv__decode_str(rv_str t, uint32_t *at, char *buf, uint32_t cap)
{
    uint32_t i = *at + 1, len = 0, written = 0;
    bool full = cap == 0;
    char ch[4];
    int32_t n;
    rv_str v = t;
    for (;;) {
        uint32_t start = i; /* a run of bytes that need no decoding */
        i = rv__string_stop(v.ptr, v.len, i);
        rv__emit(buf, cap, &written, &full, v.ptr + start, i - start);
        len += i - start;
        n = rv__json_char(v, &i, ch); /* an escape, the closing quote, or the end */
        if (n <= 0) break;
        rv__emit(buf, cap, &written, &full, ch, (uint32_t)n);
        len += (uint32_t)n;
    }
    if (cap) buf[written] = 0;
    *at = i + 1;
    return n == 0 ? (int32_t)len : -1;
}

int32_t rv_json_str(rv_str v, char *buf, uint32_t cap)
{
    uint32_t i = 0;
    v = rv__trim(v);
    if (v.len < 2 || v.ptr[0] != '"') {
        if (cap) buf[0] = 0;
        return -1;
    }
    return rv__decode_str(v, &i, buf, cap);
}

static bool rv__json_str_cmp(rv_str v, const char *s, bool fold)
{
    uint32_t i = 1, j = 0;
    char ch[4];
    int32_t n;
    v = rv__trim(v);
    if (v.len < 2 || v.ptr[0] != '"') return false;
    while ((n = rv__json_char(v, &i, ch)) > 0) {
        for (int32_t k = 0; k < n; k++, j++) {
            if (!s[j]) return false;
            if (fold ? rv__lower(ch[k]) != rv__lower(s[j]) : ch[k] != s[j]) return false;
        }
    }
    return n == 0 && s[j] == 0;
}

bool rv_json_str_eq(rv_str v, const char *s) { return rv__json_str_cmp(v, s, false); }
bool rv_json_str_ieq(rv_str v, const char *s) { return rv__json_str_cmp(v, s, true); }

/* Whether key token `k` is the literal `lit`: for the host's own keys,
 * which are plain ASCII and never escaped. Constant lengths let the
 * compiler reduce it to a few compares. */
static bool rv__eq_n(const char *a, const char *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}
#define RV__KEY(k, lit) ((k).len == sizeof(lit) + 1 && rv__eq_n((k).ptr + 1, (lit), sizeof(lit) - 1))

/* Compares a key token with a name: fast for plain keys, decoded if escaped. */
static bool rv__key_is(rv_str key, const char *name)
{
    uint32_t n = rv_strlen(name);
    if (key.len == n + 2 && rv_memcmp(key.ptr + 1, name, n) == 0) return true;
    for (uint32_t i = 1; i + 1 < key.len; i++)
        if (key.ptr[i] == '\\') return rv_json_str_eq(key, name);
    return false;
}

bool rv_json_get(rv_str obj, const char *key, rv_str *out)
{
    rv_json_iter it;
    rv_str k, v;
    if (!rv_json_iter_init(&it, obj) || !it.object) return false;
    while (rv_json_next_member(&it, &k, &v)) {
        if (rv__key_is(k, key)) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool rv_json_is_null(rv_str v) { return rv_str_eq(rv__trim(v), "null"); }

bool rv_json_f64(rv_str v, double *out) { return rv_parse_f64(rv__trim(v), out); }

bool rv_json_i64(rv_str v, int64_t *out)
{
    double d;
    v = rv__trim(v);
    if (rv_parse_i64(v, out)) return true;
    /* 1e3 or 2.0: integral, and exact in a double (range checked before the
     * conversion, which is undefined out of range) */
    if (!rv_parse_f64(v, &d) || d > 9007199254740992.0 || d < -9007199254740992.0 ||
        d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

bool rv_json_bool(rv_str v, bool *out)
{
    v = rv__trim(v);
    if (rv_str_eq(v, "true")) *out = true;
    else if (rv_str_eq(v, "false")) *out = false;
    else return false;
    return true;
}

bool rv_is_null_i64(int64_t x) { return x == RV_NULL_I64; }
bool rv_is_null_f64(double x) { return x == RV_NULL_F64; }

/* Typed fields that may be null. */
static int64_t rv__i64_or_null(rv_str v)
{
    int64_t x;
    return rv_json_i64(v, &x) ? x : RV_NULL_I64;
}

static double rv__f64_or_null(rv_str v)
{
    double x;
    return rv_json_f64(v, &x) ? x : RV_NULL_F64;
}

/* -- one pass over the host's objects ------------------------------------------
 * The typed results read each member's value where it stands, instead of
 * finding its end first and parsing it after: the host's JSON is flat and
 * its keys are plain ASCII, and a process list is read every tick. */

/* The next member's key token; leaves it->pos at its value. */
static bool rv__next_key(rv_json_iter *it, rv_str *key)
{
    uint32_t end;
    if (!rv__iter_advance(it)) return false;
    if (it->ptr[it->pos] == '"' && (end = rv__string_end(it->ptr, it->len, it->pos)) != 0) {
        key->ptr = it->ptr + it->pos;
        key->len = end - it->pos;
        end = rv__skip_blank(it->ptr, it->len, end);
        if (end < it->len && it->ptr[end] == ':') {
            it->pos = rv__skip_blank(it->ptr, it->len, end + 1);
            return true;
        }
    }
    it->pos = it->len; /* malformed: stop here */
    return false;
}

static void rv__take_skip(rv_json_iter *it)
{
    rv_str v;
    rv__iter_value(it, &v);
}

/* A number read as an integer; RV_NULL_I64 for null or anything else. */
static int64_t rv__take_i64(rv_json_iter *it)
{
    const char *p = it->ptr;
    uint32_t i = it->pos, n = it->len, digits = 0;
    uint64_t v = 0;
    bool neg = i < n && p[i] == '-';
    rv_str text;
    for (i += neg; i < n && digits < 18; i++, digits++) {
        uint32_t d = (uint32_t)(unsigned char)p[i] - '0';
        if (d > 9) break;
        v = v * 10u + d;
    }
    if (digits && (i >= n || RV__IS(p[i], RV__DELIM))) {
        it->pos = i;
        return neg ? -(int64_t)v : (int64_t)v;
    }
    /* null, a fraction or exponent, 19 digits or more: the general way */
    return rv__iter_value(it, &text) ? rv__i64_or_null(text) : RV_NULL_I64;
}

static double rv__take_f64(rv_json_iter *it)
{
    rv_str text;
    return rv__iter_value(it, &text) ? rv__f64_or_null(text) : RV_NULL_F64;
}

/* true / false as 1 / 0; -1 for null or anything else. */
static int32_t rv__take_bool(rv_json_iter *it)
{
    rv_str text;
    bool b;
    return rv__iter_value(it, &text) && rv_json_bool(text, &b) ? (int32_t)b : -1;
}

/* A string into buf[cap] as rv_json_str: its full length, -1 if not one. */
static int32_t rv__take_str(rv_json_iter *it, char *buf, uint32_t cap)
{
    rv_str text = {it->ptr, it->len};
    uint32_t i = it->pos;
    int32_t n;
    buf[0] = 0;
    if (i >= it->len || it->ptr[i] != '"') {
        rv__take_skip(it);
        return -1;
    }
    n = rv__decode_str(text, &i, buf, cap);
    it->pos = n < 0 ? it->len : i;
    return n;
}

/* -- host calls -------------------------------------------------------------- */

static rv_status rv__unpack(int64_t r, rv_str *out)
{
    out->ptr = "";
    out->len = 0;
    if (r > 0) {
        out->ptr = (const char *)(uintptr_t)(uint32_t)((uint64_t)r >> 32);
        out->len = (uint32_t)r;
        return RV_OK;
    }
    return r == 0 ? RV_NONE : (rv_status)(int32_t)r;
}

/* Text the host checks as a violation: within `cap` and valid UTF-8. */
static bool rv__text_ok(const char *s, uint32_t n, uint32_t cap)
{
    return n <= cap && rv_utf8_valid(s, n);
}

rv_status rv_log_n(rv_level level, const char *message, uint32_t len)
{
    if (!rv_utf8_valid(message, len)) return RV_INVALID_ARGUMENT;
    return (rv_status)rv__host_log((int32_t)level, message,
                                   rv__utf8_clip(message, len, RV_MAX_LOG_MESSAGE));
}

rv_status rv_log(rv_level level, const char *message)
{
    return rv_log_n(level, message, rv_strlen(message));
}
rv_status rv_log_trace(const char *m) { return rv_log(RV_LOG_TRACE, m); }
rv_status rv_log_debug(const char *m) { return rv_log(RV_LOG_DEBUG, m); }
rv_status rv_log_info(const char *m) { return rv_log(RV_LOG_INFO, m); }
rv_status rv_log_warn(const char *m) { return rv_log(RV_LOG_WARN, m); }
rv_status rv_log_error(const char *m) { return rv_log(RV_LOG_ERROR, m); }

rv_status rv_get_config(const char *key, rv_str *out)
{
    uint32_t n = rv_strlen(key);
    out->ptr = "";
    out->len = 0;
    if (!rv__text_ok(key, n, RV_MAX_CONFIG_KEY)) return RV_INVALID_ARGUMENT;
    return rv__unpack(rv__host_get_config(key, n), out);
}

double rv_config_f64(const char *key, double fallback)
{
    rv_str v;
    double d;
    return rv_get_config(key, &v) == RV_OK && rv_json_f64(v, &d) ? d : fallback;
}

int64_t rv_config_i64(const char *key, int64_t fallback)
{
    rv_str v;
    int64_t x;
    return rv_get_config(key, &v) == RV_OK && rv_json_i64(v, &x) ? x : fallback;
}

bool rv_config_bool(const char *key, bool fallback)
{
    rv_str v;
    bool b;
    return rv_get_config(key, &v) == RV_OK && rv_json_bool(v, &b) ? b : fallback;
}

uint32_t rv_config_str(const char *key, char *buf, uint32_t cap, const char *fallback)
{
    rv_str v;
    if (rv_get_config(key, &v) != RV_OK) v = rv_cstr(fallback);
    return rv_str_copy(buf, cap, v);
}

rv_status rv_set_config_n(const char *key, const char *value, uint32_t len)
{
    uint32_t n = rv_strlen(key);
    if (!rv__text_ok(key, n, RV_MAX_CONFIG_KEY) || !rv__text_ok(value, len, RV_MAX_CONFIG_VALUE))
        return RV_INVALID_ARGUMENT;
    return (rv_status)rv__host_set_config(key, n, value, len);
}

rv_status rv_set_config(const char *key, const char *value)
{
    return rv_set_config_n(key, value, rv_strlen(value));
}

rv_status rv_report_metric(const char *name, double value)
{
    uint32_t n = rv_strlen(name);
    if (!rv__text_ok(name, n, RV_MAX_METRIC_NAME)) return RV_INVALID_ARGUMENT;
    return (rv_status)rv__host_report_metric(name, n, value);
}

rv_status rv_get_learned_pattern(const char *name, double hours[24])
{
    uint32_t n = rv_strlen(name), h = 0;
    rv_str json, v;
    rv_json_iter it;
    rv_status s;
    for (uint32_t k = 0; k < 24; k++) hours[k] = RV_NULL_F64;
    if (!rv__text_ok(name, n, RV_MAX_METRIC_NAME)) return RV_INVALID_ARGUMENT;
    s = rv__unpack(rv__host_get_learned_pattern(name, n), &json);
    if (s != RV_OK) return s;
    if (!rv_json_iter_init(&it, json)) return RV_HOST_ERROR;
    while (h < 24 && rv_json_next(&it, &v)) hours[h++] = rv__f64_or_null(v);
    return RV_OK;
}

rv_status rv_get_memory_status(rv_memory_status *out)
{
    rv_str json, k;
    rv_json_iter it;
    rv_status s = rv__unpack(rv__host_get_memory_status(), &json);
    out->total_bytes = out->available_bytes = out->used_bytes = RV_NULL_I64;
    out->swap_total_bytes = out->swap_used_bytes = RV_NULL_I64;
    out->percent = RV_NULL_F64;
    if (s != RV_OK) return s;
    if (!rv_json_iter_init(&it, json)) return RV_HOST_ERROR;
    while (rv__next_key(&it, &k)) {
        if (RV__KEY(k, "total_bytes")) out->total_bytes = rv__take_i64(&it);
        else if (RV__KEY(k, "available_bytes")) out->available_bytes = rv__take_i64(&it);
        else if (RV__KEY(k, "used_bytes")) out->used_bytes = rv__take_i64(&it);
        else if (RV__KEY(k, "percent")) out->percent = rv__take_f64(&it);
        else if (RV__KEY(k, "swap_total_bytes")) out->swap_total_bytes = rv__take_i64(&it);
        else if (RV__KEY(k, "swap_used_bytes")) out->swap_used_bytes = rv__take_i64(&it);
        else rv__take_skip(&it);
    }
    return RV_OK;
}

rv_status rv_get_cpu_usage(double *percent)
{
    double v = rv__host_get_cpu_usage();
    *percent = v;
    if (v < 0) {
        *percent = RV_NULL_F64;
        return (rv_status)(int32_t)v; /* -11.0: HOST_ERROR */
    }
    return RV_OK;
}

/* A list inside the top-level object under `key` ("sensors", "gpus"), or
 * the document itself when key is NULL. */
static rv_status rv__list(int64_t packed, const char *key, rv_list *out)
{
    rv_str arr;
    rv_status s = rv__unpack(packed, &out->json);
    rv_json_iter_init(&out->it, RV_STR("[]"));
    if (s != RV_OK) return s;
    arr = out->json;
    if (key && !rv_json_get(out->json, key, &arr)) return RV_HOST_ERROR;
    if (!rv_json_iter_init(&out->it, arr) || out->it.object) return RV_HOST_ERROR;
    return RV_OK;
}

rv_status rv_get_temperature(rv_list *out)
{
    return rv__list(rv__host_get_temperature(), "sensors", out);
}

bool rv_sensor_next(rv_list *list, rv_sensor *out)
{
    rv_str k;
    rv_json_iter it;
    if (!rv__enter_object(&list->it, &it)) return false;
    out->chip[0] = out->label[0] = 0;
    out->celsius = out->high = out->critical = RV_NULL_F64;
    while (rv__next_key(&it, &k)) {
        if (RV__KEY(k, "chip")) rv__take_str(&it, out->chip, sizeof out->chip);
        else if (RV__KEY(k, "label")) rv__take_str(&it, out->label, sizeof out->label);
        else if (RV__KEY(k, "celsius")) out->celsius = rv__take_f64(&it);
        else if (RV__KEY(k, "high")) out->high = rv__take_f64(&it);
        else if (RV__KEY(k, "critical")) out->critical = rv__take_f64(&it);
        else rv__take_skip(&it);
    }
    rv__leave(&list->it, &it);
    return true;
}

rv_status rv_get_gpu_status(rv_list *out)
{
    return rv__list(rv__host_get_gpu_status(), "gpus", out);
}

bool rv_gpu_next(rv_list *list, rv_gpu *out)
{
    rv_str k;
    rv_json_iter it;
    int64_t index;
    if (!rv__enter_object(&list->it, &it)) return false;
    out->index = -1;
    out->name[0] = out->vendor[0] = 0;
    out->utilization_percent = out->temperature_celsius = RV_NULL_F64;
    out->memory_used_bytes = out->memory_total_bytes = RV_NULL_I64;
    while (rv__next_key(&it, &k)) {
        if (RV__KEY(k, "index")) {
            index = rv__take_i64(&it);
            out->index = index == RV_NULL_I64 ? -1 : (int32_t)index;
        } else if (RV__KEY(k, "name")) {
            rv__take_str(&it, out->name, sizeof out->name);
        } else if (RV__KEY(k, "vendor")) {
            rv__take_str(&it, out->vendor, sizeof out->vendor);
        } else if (RV__KEY(k, "utilization_percent")) {
            out->utilization_percent = rv__take_f64(&it);
        } else if (RV__KEY(k, "memory_used_bytes")) {
            out->memory_used_bytes = rv__take_i64(&it);
        } else if (RV__KEY(k, "memory_total_bytes")) {
            out->memory_total_bytes = rv__take_i64(&it);
        } else if (RV__KEY(k, "temperature_celsius")) {
            out->temperature_celsius = rv__take_f64(&it);
        } else {
            rv__take_skip(&it);
        }
    }
    rv__leave(&list->it, &it);
    return true;
}

rv_status rv_get_battery_status(rv_battery *out)
{
    rv_str json, k;
    rv_json_iter it;
    rv_status s = rv__unpack(rv__host_get_battery_status(), &json);
    out->present = false;
    out->percent = RV_NULL_F64;
    out->plugged = -1;
    out->seconds_left = RV_NULL_I64;
    if (s != RV_OK) return s;
    if (!rv_json_iter_init(&it, json)) return RV_HOST_ERROR;
    while (rv__next_key(&it, &k)) {
        if (RV__KEY(k, "present")) out->present = rv__take_bool(&it) == 1;
        else if (RV__KEY(k, "percent")) out->percent = rv__take_f64(&it);
        else if (RV__KEY(k, "plugged")) out->plugged = rv__take_bool(&it);
        else if (RV__KEY(k, "seconds_left")) out->seconds_left = rv__take_i64(&it);
        else rv__take_skip(&it);
    }
    return RV_OK;
}

rv_status rv_get_process_list(rv_list *out)
{
    return rv__list(rv__host_get_process_list(), NULL, out);
}

bool rv_process_next(rv_list *list, rv_process *out)
{
    rv_str k;
    rv_json_iter it;
    int64_t x;
    int32_t n;
    if (!rv__enter_object(&list->it, &it)) return false;
    out->pid = out->ppid = -1;
    out->name[0] = 0;
    out->name_len = 0;
    out->name_truncated = false;
    out->memory_bytes = out->nice = RV_NULL_I64;
    out->cpu_percent = RV_NULL_F64;
    while (rv__next_key(&it, &k)) {
        if (RV__KEY(k, "pid")) {
            x = rv__take_i64(&it);
            out->pid = x == RV_NULL_I64 ? -1 : (int32_t)x;
        } else if (RV__KEY(k, "ppid")) {
            x = rv__take_i64(&it);
            out->ppid = x == RV_NULL_I64 ? -1 : (int32_t)x;
        } else if (RV__KEY(k, "name")) {
            n = rv__take_str(&it, out->name, sizeof out->name);
            out->name_truncated = n >= (int32_t)sizeof out->name;
            out->name_len = n < 0 ? 0 : out->name_truncated ? rv_strlen(out->name) : (uint32_t)n;
        } else if (RV__KEY(k, "memory_bytes")) {
            out->memory_bytes = rv__take_i64(&it);
        } else if (RV__KEY(k, "cpu_percent")) {
            out->cpu_percent = rv__take_f64(&it);
        } else if (RV__KEY(k, "nice")) {
            out->nice = rv__take_i64(&it);
        } else {
            rv__take_skip(&it);
        }
    }
    rv__leave(&list->it, &it);
    return true;
}

static rv_str rv__strip_exe(rv_str s)
{
    if (s.len >= 4 && rv_str_ieq((rv_str){s.ptr + s.len - 4, 4}, ".exe")) s.len -= 4;
    return s;
}

bool rv_process_name_is(const char *process_name, const char *name)
{
    rv_str a = rv__strip_exe(rv_cstr(process_name)), b = rv__strip_exe(rv_cstr(name));
    if (a.len != b.len) return false;
    for (uint32_t i = 0; i < a.len; i++)
        if (rv__lower(a.ptr[i]) != rv__lower(b.ptr[i])) return false;
    return true;
}

rv_status rv_get_process_memory(int32_t pid, int64_t *bytes)
{
    int64_t r = rv__host_get_process_memory(pid);
    *bytes = r >= 0 ? r : RV_NULL_I64;
    return r >= 0 ? RV_OK : (rv_status)(int32_t)r;
}

rv_status rv_set_process_priority(int32_t pid, rv_priority priority)
{
    return (rv_status)rv__host_set_process_priority(pid, (int32_t)priority);
}

rv_status rv_trim_process_memory(int32_t pid, int64_t *bytes_freed)
{
    int64_t r = rv__host_trim_process_memory(pid);
    *bytes_freed = r >= 0 ? r : RV_NULL_I64;
    return r >= 0 ? RV_OK : (rv_status)(int32_t)r;
}

rv_status rv_kill_process(int32_t pid) { return (rv_status)rv__host_kill_process(pid); }

rv_status rv_show_notification(const char *title, const char *message)
{
    uint32_t tn = rv_strlen(title), mn = rv_strlen(message);
    if (!rv_utf8_valid(title, tn) || !rv_utf8_valid(message, mn)) return RV_INVALID_ARGUMENT;
    return (rv_status)rv__host_show_notification(title, rv__utf8_clip(title, tn, RV_MAX_TITLE),
                                                 message,
                                                 rv__utf8_clip(message, mn, RV_MAX_MESSAGE));
}

static rv_status rv__http_result(int64_t packed, rv_http_response *out)
{
    rv_str json, v;
    int64_t code;
    rv_status s = rv__unpack(packed, &json);
    out->status = 0;
    out->headers = RV_STR("{}");
    out->body = RV_STR("\"\"");
    if (s != RV_OK) return s;
    if (!rv_json_get(json, "status", &v) || !rv_json_i64(v, &code)) return RV_HOST_ERROR;
    out->status = (int32_t)code;
    if (rv_json_get(json, "headers", &v)) out->headers = v;
    if (rv_json_get(json, "body", &v)) out->body = v;
    return RV_OK;
}

rv_status rv_http_request_json(const char *request, uint32_t len, rv_http_response *out)
{
    if (len > RV_MAX_HTTP_REQUEST) return rv__http_result(RV_TOO_LARGE, out);
    return rv__http_result(rv__host_http_request(request, len), out);
}

/* Appends "name":"value" (or ,"name":...) to b, escaping the value. */
static void rv__member(rv_buf *b, const char *name, const char *value, uint32_t n)
{
    if (b->len > 1) rv_buf_char(b, ',');
    rv_buf_json_str(b, name, rv_strlen(name));
    rv_buf_char(b, ':');
    rv_buf_json_str(b, value, n);
}

rv_status rv_http_request(const char *method, const char *url, const char *const *headers,
                          const char *body, uint32_t body_len, rv_http_response *out)
{
    /* The exact size: {"method":M,"url":U,"headers":{H},"body":B} and a NUL */
    uint64_t need;
    uint32_t mark = rv_heap_mark();
    rv_buf b;
    char *mem;
    rv_status s;
    if (!method) method = "GET";
    need = 48u + rv__json_str_len(method, rv_strlen(method)) + rv__json_str_len(url, rv_strlen(url));
    if (body) need += rv__json_str_len(body, body_len);
    for (const char *const *h = headers; h && h[0] && h[1]; h += 2)
        need += 2u + rv__json_str_len(h[0], rv_strlen(h[0])) + rv__json_str_len(h[1], rv_strlen(h[1]));
    if (need > RV_MAX_HTTP_REQUEST + 1u) return rv__http_result(RV_TOO_LARGE, out);
    mem = (char *)rv_malloc((uint32_t)need);
    if (!mem) return rv__http_result(RV_NO_MEMORY, out);
    b = rv_buf_init(mem, (uint32_t)need);
    rv_buf_char(&b, '{');
    rv__member(&b, "method", method, rv_strlen(method));
    rv__member(&b, "url", url, rv_strlen(url));
    if (headers && headers[0]) {
        rv_buf_str(&b, ",\"headers\":{");
        for (const char *const *h = headers; h[0] && h[1]; h += 2) {
            if (h != headers) rv_buf_char(&b, ',');
            rv_buf_json_str(&b, h[0], rv_strlen(h[0]));
            rv_buf_char(&b, ':');
            rv_buf_json_str(&b, h[1], rv_strlen(h[1]));
        }
        rv_buf_char(&b, '}');
    }
    if (body) rv__member(&b, "body", body, body_len);
    rv_buf_char(&b, '}');
    s = rv_http_request_json(b.ptr, b.len, out);
    /* The request is no longer needed; the response was allocated after it
     * and must stay, so the request is released only when nothing followed. */
    if (s != RV_OK) rv_heap_release(mark);
    return s;
}

rv_status rv_http_get(const char *url, rv_http_response *out)
{
    return rv_http_request("GET", url, NULL, NULL, 0, out);
}

int32_t rv_http_body(const rv_http_response *response, char *buf, uint32_t cap)
{
    return rv_json_str(response->body, buf, cap);
}

int32_t rv_http_header(const rv_http_response *response, const char *name, char *buf,
                       uint32_t cap)
{
    rv_str v;
    if (!rv_json_get(response->headers, name, &v)) {
        if (cap) buf[0] = 0;
        return -1;
    }
    return rv_json_str(v, buf, cap);
}

rv_status rv_read_file(const char *path, rv_str *out)
{
    uint32_t n = rv_strlen(path);
    out->ptr = "";
    out->len = 0;
    if (!rv__text_ok(path, n, RV_MAX_PATH)) return RV_INVALID_ARGUMENT;
    return rv__unpack(rv__host_read_file(path, n), out);
}

rv_status rv_write_file(const char *path, const void *data, uint32_t len)
{
    uint32_t n = rv_strlen(path);
    if (!rv__text_ok(path, n, RV_MAX_PATH)) return RV_INVALID_ARGUMENT;
    if (len > RV_MAX_FILE) return RV_TOO_LARGE;
    return (rv_status)rv__host_write_file(path, n, data, len);
}

rv_status rv_registry_read(const char *key, rv_registry_value *out)
{
    uint32_t n = rv_strlen(key);
    rv_str json, v;
    rv_status s;
    out->type[0] = 0;
    out->value = RV_STR("null");
    if (!rv__text_ok(key, n, RV_MAX_REGISTRY_KEY)) return RV_INVALID_ARGUMENT;
    s = rv__unpack(rv__host_registry_read(key, n), &json);
    if (s != RV_OK) return s;
    if (rv_json_get(json, "type", &v)) rv_json_str(v, out->type, sizeof out->type);
    if (rv_json_get(json, "value", &v)) out->value = v;
    return RV_OK;
}

rv_status rv_registry_write_json(const char *key, const char *value_json, uint32_t len)
{
    uint32_t n = rv_strlen(key);
    if (!rv__text_ok(key, n, RV_MAX_REGISTRY_KEY)) return RV_INVALID_ARGUMENT;
    if (len > RV_MAX_REGISTRY_VALUE) return RV_TOO_LARGE;
    return (rv_status)rv__host_registry_write(key, n, value_json, len);
}

static rv_status rv__registry_write_number(const char *key, const char *type, uint64_t value)
{
    char mem[64];
    rv_buf b = rv_buf_init(mem, sizeof mem);
    rv_buf_str(&b, "{\"type\":\"");
    rv_buf_str(&b, type);
    rv_buf_str(&b, "\",\"value\":");
    rv_buf_u64(&b, value);
    rv_buf_char(&b, '}');
    return rv_registry_write_json(key, b.ptr, b.len);
}

rv_status rv_registry_write_dword(const char *key, uint32_t value)
{
    return rv__registry_write_number(key, "REG_DWORD", value);
}

rv_status rv_registry_write_qword(const char *key, uint64_t value)
{
    return rv__registry_write_number(key, "REG_QWORD", value);
}

rv_status rv_registry_write_sz(const char *key, const char *value)
{
    uint32_t n = rv_strlen(value), mark = rv_heap_mark();
    uint64_t need = 32u + rv__json_str_len(value, n); /* {"type":"REG_SZ","value":V} */
    char *mem;
    rv_buf b;
    rv_status s;
    if (need > RV_MAX_REGISTRY_VALUE + 1u) return RV_TOO_LARGE;
    mem = (char *)rv_malloc((uint32_t)need);
    if (!mem) return RV_NO_MEMORY;
    b = rv_buf_init(mem, (uint32_t)need);
    rv_buf_str(&b, "{\"type\":\"REG_SZ\",\"value\":");
    rv_buf_json_str(&b, value, n);
    rv_buf_char(&b, '}');
    s = rv_registry_write_json(key, b.ptr, b.len);
    rv_heap_release(mark);
    return s;
}

#ifdef __cplusplus
}
#endif

#endif /* RUVECTOR_IMPLEMENTATION */
