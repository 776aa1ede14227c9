;; hello: the bundled example plugin, in WebAssembly text.
;; Build: python examples/build.py  (compiles to plugin.wasm, pins its SHA-256)
;;
;; Each tick it reads the machine's CPU and memory through the host, reports
;; the CPU figure as a metric, and logs what it saw. It greets with the
;; `greeting` from its config at start-up and speaks up when memory pressure
;; changes.
(module
  (import "ruvector" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "ruvector" "get_config" (func $get_config (param i32 i32) (result i64)))
  (import "ruvector" "get_cpu_usage" (func $get_cpu_usage (result f64)))
  (import "ruvector" "get_memory_status" (func $get_memory_status (result i64)))
  (import "ruvector" "report_metric" (func $report_metric (param i32 i32 f64) (result i32)))
  (import "ruvector" "show_notification"
    (func $show_notification (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)

  (data (i32.const 16) "greeting")            ;; 16, 8
  (data (i32.const 32) "hello from a wasm plugin")  ;; 32, 24
  (data (i32.const 64) "tick ")               ;; 64, 5
  (data (i32.const 72) ": cpu ")              ;; 72, 6
  (data (i32.const 80) "%, memory ")          ;; 80, 10
  (data (i32.const 96) "% used")              ;; 96, 6
  (data (i32.const 104) "cpu_percent")        ;; 104, 11
  (data (i32.const 120) "memory pressure is now level ") ;; 120, 29
  (data (i32.const 160) "Memory pressure")    ;; 160, 15
  (data (i32.const 176) "Memory is critically low") ;; 176, 24
  (data (i32.const 208) "\"percent\":")       ;; 208, 10

  ;; A bump allocator: the host asks for buffers to write results into.
  ;; Results live until the next tick; the heap is reset at each on_tick.
  (global $heap_base i32 (i32.const 4096))
  (global $heap (mut i32) (i32.const 4096))
  (global $ticks (mut i32) (i32.const 0))
  ;; the line being built, at 1024..4095
  (global $out (mut i32) (i32.const 1024))

  (func (export "rv_abi_version") (result i32) (i32.const 1))

  (func $alloc (export "rv_alloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.and (i32.add (i32.add (local.get $ptr) (local.get $size)) (i32.const 7))
                             (i32.const -8)))
    ;; a size that wraps around the address space cannot be had
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then (return (i32.const 0))))
    ;; grow memory when the heap runs past it; 0 if it cannot grow
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow
                  (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                                      (i32.const 16)) (i32.const 1)))
                (i32.const -1))
              (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  ;; -- building a log line ------------------------------------------------
  (func $reset (global.set $out (i32.const 1024)))
  (func $put (param $ptr i32) (param $len i32)
    (if (i32.gt_u (i32.add (global.get $out) (local.get $len)) (i32.const 4096))
      (then (local.set $len (i32.sub (i32.const 4096) (global.get $out)))))
    (memory.copy (global.get $out) (local.get $ptr) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))
  (func $put_u32 (param $n i32)
    (local $start i32) (local $end i32) (local $c i32)
    (local.set $start (global.get $out))
    (loop $digits
      (i32.store8 (global.get $out) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (global.set $out (i32.add (global.get $out) (i32.const 1)))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digits (local.get $n)))
    ;; digits came out backwards: reverse them in place
    (local.set $end (i32.sub (global.get $out) (i32.const 1)))
    (block $done
      (loop $swap
        (br_if $done (i32.ge_u (local.get $start) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $start)))
        (i32.store8 (local.get $start) (i32.load8_u (local.get $end)))
        (i32.store8 (local.get $end) (local.get $c))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $swap))))
  (func $emit (param $level i32)
    (drop (call $log (local.get $level) (i32.const 1024) (i32.sub (global.get $out) (i32.const 1024))))
    (call $reset))

  ;; Finds "percent": in the memory-status JSON and copies the integer part.
  (func $put_memory_percent (param $packed i64)
    (local $p i32) (local $end i32)
    (if (i64.le_s (local.get $packed) (i64.const 0)) (then (return)))
    (local.set $p (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32))))
    (local.set $end (i32.add (local.get $p) (i32.wrap_i64 (local.get $packed))))
    (block $found
      (loop $scan
        (br_if $found (i32.ge_u (i32.add (local.get $p) (i32.const 10)) (local.get $end)))
        (if (i32.and (i64.eq (i64.load (local.get $p)) (i64.load (i32.const 208)))
                     (i32.eq (i32.load16_u (i32.add (local.get $p) (i32.const 8)))
                             (i32.load16_u (i32.const 216))))
          (then
            (local.set $p (i32.add (local.get $p) (i32.const 10)))
            (loop $digit
              (if (i32.and (i32.lt_u (local.get $p) (local.get $end))
                           (i32.le_u (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)) (i32.const 9)))
                (then (call $put (local.get $p) (i32.const 1))
                      (local.set $p (i32.add (local.get $p) (i32.const 1)))
                      (br $digit))))
            (call $put (i32.const 96) (i32.const 6))
            (return)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $scan))))

  (func (export "on_init")
    (local $packed i64)
    (local.set $packed (call $get_config (i32.const 16) (i32.const 8)))
    (if (i64.gt_s (local.get $packed) (i64.const 0))
      (then (call $put (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32)))
                       (i32.wrap_i64 (local.get $packed))))
      (else (call $put (i32.const 32) (i32.const 24))))
    (call $emit (i32.const 2)))

  (func (export "on_tick") (param $interval_ms i32)
    (local $cpu f64)
    (global.set $heap (global.get $heap_base))
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    (local.set $cpu (call $get_cpu_usage))
    (drop (call $report_metric (i32.const 104) (i32.const 11) (local.get $cpu)))
    (call $put (i32.const 64) (i32.const 5))
    (call $put_u32 (global.get $ticks))
    (call $put (i32.const 72) (i32.const 6))
    (call $put_u32 (i32.trunc_sat_f64_u (f64.nearest (local.get $cpu))))
    (call $put (i32.const 80) (i32.const 10))
    (call $put_memory_percent (call $get_memory_status))
    (call $emit (i32.const 2)))

  (func (export "on_memory_pressure") (param $level i32)
    (call $put (i32.const 120) (i32.const 29))
    (call $put_u32 (local.get $level))
    (call $emit (i32.const 3))
    (if (i32.eq (local.get $level) (i32.const 2))
      (then (drop (call $show_notification (i32.const 160) (i32.const 15)
                                           (i32.const 176) (i32.const 24))))))
)
