// obs-optimizer: while OBS runs, it gets a higher scheduling priority.
//
// When a process named `process_name` (default "obs") is running, the
// plugin raises its priority and notifies once; while it runs, it reports
// its memory as a metric; when it exits, the plugin says so. Scheduling
// priority is all the host API lets a plugin change about another
// process: see README.md for what it does not do.

import {
  Plugin, register, configString, getProcessList, getProcessMemory, setProcessPriority,
  showNotification, reportMetric, processNameIs, ProcessInfo, Priority, Status, statusName,
  info, warn,
} from "ruvector";

export {
  rv_alloc, rv_abi_version, on_init, on_tick, on_process_launch, on_process_exit,
} from "ruvector";

const METRIC = "obs_memory_bytes";

class ObsOptimizer extends Plugin {
  name: string = "obs";
  level: Priority = Priority.ABOVE_NORMAL;
  levelName: string = "above normal";
  // the OBS processes seen running (pid -> name)
  running: Map<i32, string> = new Map<i32, string>();

  onInit(): void {
    this.name = configString("process_name", "obs");
    if (configString("priority", "above_normal") == "high") {
      this.level = Priority.HIGH;
      this.levelName = "high";
    }
    // OBS may already be running when the plugin starts.
    const list = getProcessList();
    if (!list.ok) {
      warn("cannot read the process list: " + list.statusName);
      return;
    }
    const processes = list.value;
    for (let i = 0; i < processes.length; i++) {
      if (processNameIs(processes[i].name, this.name)) this.started(processes[i]);
    }
    if (this.running.size == 0) info("waiting for " + this.name + " to start");
  }

  onProcessLaunch(name: string, pid: i32): void {
    if (!processNameIs(name, this.name) || this.running.has(pid)) return;
    const list = getProcessList(); // for the process's current nice value
    if (!list.ok) {
      warn("cannot read the process list: " + list.statusName);
      return;
    }
    const processes = list.value;
    for (let i = 0; i < processes.length; i++) {
      if (processes[i].pid == pid) {
        this.started(processes[i]);
        return;
      }
    }
  }

  onProcessExit(name: string, pid: i32): void {
    if (!this.running.has(pid)) return;
    this.running.delete(pid);
    info(name + " (pid " + pid.toString() + ") exited");
  }

  onTick(intervalMs: i32): void {
    const pids = this.running.keys();
    for (let i = 0; i < pids.length; i++) {
      const rss = getProcessMemory(pids[i]);
      if (rss.ok) reportMetric(METRIC, <f64>rss.value);
    }
  }

  started(p: ProcessInfo): void {
    this.running.set(p.pid, p.name);
    const what = p.name + " (pid " + p.pid.toString() + ")";
    if (p.priority() >= this.level) {
      info(what + " is running, already at " + this.levelName + " priority or higher");
      return;
    }
    const status = setProcessPriority(p.pid, this.level);
    if (status != Status.OK) {
      warn(what + " is running; could not raise its priority: " + statusName(status));
      return;
    }
    info(what + " is running: raised to " + this.levelName + " priority");
    showNotification("OBS optimizer", p.name + " now runs at " + this.levelName + " priority");
  }
}

register(new ObsOptimizer());
