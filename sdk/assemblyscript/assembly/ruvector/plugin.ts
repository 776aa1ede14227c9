// Lifecycle hooks (docs/abi.md, section 5). A plugin extends Plugin,
// overrides the hooks it handles, calls register() at the top level of its
// entry file, and re-exports the matching entry points:
//
//   export { rv_alloc, rv_abi_version, on_init, on_tick } from "ruvector";
//
// Export only what you handle: the host calls every hook the module
// exports, and a process hook is called once per process event.
//
// Each entry point first collects garbage: at that moment nothing can be
// referenced from the wasm stack, so the minimal runtime's collector may
// free whatever the plugin's globals no longer reach (see abi.ts).

import { reserveScratch, takeText } from "./abi";

/** Memory pressure levels of on_memory_pressure. */
export enum PressureLevel {
  NORMAL = 0,
  HIGH = 1,
  CRITICAL = 2,
}

/** Override the hooks you handle; the defaults do nothing. */
export class Plugin {
  /** After the instance is made (at load, and after each restart). */
  onInit(): void {}
  /** Every tick, after that tick's other hooks. */
  onTick(intervalMs: i32): void {}
  /** When the level changes (levels come from used memory). */
  onMemoryPressure(level: PressureLevel): void {}
  /** A process started since the previous reading (needs ReadProcessList). */
  onProcessLaunch(name: string, pid: i32): void {}
  /** A process ended since the previous reading (needs ReadProcessList). */
  onProcessExit(name: string, pid: i32): void {}
  /** The host switched to profile `profile`. */
  onProfileSwitch(profile: string): void {}
  /** The plugin is unloaded or the host stops gracefully. */
  onCleanup(): void {}
}

let registered: Plugin | null = null;

/** Make `plugin` the one the hooks call. Call it once, at the top level of
 *  the entry file (it then runs in the start function, before any hook). */
export function register(plugin: Plugin): void {
  registered = plugin;
  reserveScratch(); // room for the host's answers, whatever the heap does later
}

// Start of every hook: free last hook's garbage, find the plugin.
function enter(): Plugin {
  __collect();
  const plugin = registered;
  if (plugin === null) throw new Error("no plugin registered: call register(new YourPlugin()) at the top level");
  return plugin;
}

export function on_init(): void {
  enter().onInit();
}

export function on_tick(intervalMs: i32): void {
  enter().onTick(intervalMs);
}

export function on_memory_pressure(level: i32): void {
  enter().onMemoryPressure(level);
}

export function on_process_launch(namePtr: usize, nameLen: i32, pid: i32): void {
  const plugin = enter();
  plugin.onProcessLaunch(takeText(namePtr, <usize>nameLen), pid);
}

export function on_process_exit(namePtr: usize, nameLen: i32, pid: i32): void {
  const plugin = enter();
  plugin.onProcessExit(takeText(namePtr, <usize>nameLen), pid);
}

export function on_profile_switch(namePtr: usize, nameLen: i32): void {
  const plugin = enter();
  plugin.onProfileSwitch(takeText(namePtr, <usize>nameLen));
}

export function on_cleanup(): void {
  enter().onCleanup();
}
