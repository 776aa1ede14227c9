// meeting-mode: when a video-call app starts, raise its priority and say so.
//
// Call apps come from config `apps` (process names, compared without case
// and without ".exe"). The plugin looks once at start-up, for a call that
// is already running, then follows launches. It only ever raises: a
// process that already runs at the configured level or higher is left
// alone, and nothing else is touched.

import {
  Plugin, register, configStrings, configString, getProcessList, setProcessPriority,
  showNotification, processNameIs, ProcessInfo, Priority, Status, statusName, info, warn,
} from "ruvector";

export { rv_alloc, rv_abi_version, on_init, on_process_launch, on_process_exit } from "ruvector";

const DEFAULT_APPS: string[] = ["zoom", "teams", "webex", "skype"];

class MeetingMode extends Plugin {
  apps: string[] = [];
  level: Priority = Priority.ABOVE_NORMAL;
  levelName: string = "above normal";
  // the processes this plugin raised: pid -> name
  raised: Map<i32, string> = new Map<i32, string>();

  onInit(): void {
    this.apps = configStrings("apps", DEFAULT_APPS);
    if (configString("priority", "above_normal") == "high") {
      this.level = Priority.HIGH;
      this.levelName = "high";
    }
    info("watching for " + this.apps.join(", ") + "; a call gets " + this.levelName + " priority");
    // A call already in progress when the plugin starts.
    const list = getProcessList();
    if (!list.ok) {
      warn("cannot read the process list: " + list.statusName);
      return;
    }
    const processes = list.value;
    for (let i = 0; i < processes.length; i++) {
      if (this.isCallApp(processes[i].name)) this.raise(processes[i]);
    }
  }

  onProcessLaunch(name: string, pid: i32): void {
    if (!this.isCallApp(name) || this.raised.has(pid)) return;
    // The launch comes from this tick's reading, which the list holds too:
    // its nice value says whether the process already runs high enough.
    const list = getProcessList();
    if (!list.ok) {
      warn("cannot read the process list: " + list.statusName);
      return;
    }
    const processes = list.value;
    for (let i = 0; i < processes.length; i++) {
      if (processes[i].pid == pid) {
        this.raise(processes[i]);
        return;
      }
    }
  }

  onProcessExit(name: string, pid: i32): void {
    if (!this.raised.has(pid)) return;
    this.raised.delete(pid);
    info(name + " (pid " + pid.toString() + ") ended");
  }

  isCallApp(name: string): bool {
    for (let i = 0; i < this.apps.length; i++) {
      if (processNameIs(name, this.apps[i])) return true;
    }
    return false;
  }

  raise(p: ProcessInfo): void {
    const what = p.name + " (pid " + p.pid.toString() + ")";
    if (p.priority() >= this.level) {
      info(what + " already runs at " + this.levelName + " priority or higher: left as it is");
      return;
    }
    const status = setProcessPriority(p.pid, this.level);
    if (status != Status.OK) {
      // PROTECTED, NOT_FOUND (it ended), IO_ERROR (e.g. no CAP_SYS_NICE)
      warn("could not raise " + what + ": " + statusName(status));
      return;
    }
    this.raised.set(p.pid, p.name);
    info("raised " + what + " to " + this.levelName + " priority");
    showNotification("Meeting mode", p.name + " now runs at " + this.levelName + " priority");
  }
}

register(new MeetingMode());
