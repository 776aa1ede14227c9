// battery-guard: says when the battery is charged to the limit while the
// charger is still plugged in, and reports the charge as a metric.
//
// Where there is no battery (a desktop, a VM) it says so once and does
// nothing else. It never makes up a reading: no battery, no metric; and
// when the OS does not say whether the charger is in, no warning.

import {
  Plugin, register, configNumber, getBatteryStatus, reportMetric, showNotification,
  PowerSource, info, warn,
} from "ruvector";

export { rv_alloc, rv_abi_version, on_tick } from "ruvector";

const METRIC = "battery_percent";

class BatteryGuard extends Plugin {
  // What was last said, so each message is said once per change.
  saidNoBattery: bool = false;
  saidNoPlugInfo: bool = false;
  lastFailure: string = "";
  warned: bool = false; // a notification for the current charge-while-plugged spell

  onTick(intervalMs: i32): void {
    const limit = <i32>configNumber("limit_percent", 80);
    const reading = getBatteryStatus();
    if (!reading.ok) {
      if (reading.statusName != this.lastFailure) warn("cannot read the battery: " + reading.statusName);
      this.lastFailure = reading.statusName;
      return;
    }
    this.lastFailure = "";
    const battery = reading.value;
    if (!battery.present) {
      if (!this.saidNoBattery) info("no battery on this machine: nothing to guard");
      this.saidNoBattery = true;
      this.warned = false;
      return;
    }
    this.saidNoBattery = false;
    if (isNaN(battery.percent)) return; // present, but no figure this tick
    reportMetric(METRIC, battery.percent);

    if (battery.power == PowerSource.UNKNOWN) {
      if (!this.saidNoPlugInfo) info("the OS does not say whether the charger is plugged in: no warnings");
      this.saidNoPlugInfo = true;
      this.warned = false;
      return;
    }
    this.saidNoPlugInfo = false;
    const charging = battery.power == PowerSource.MAINS;
    if (charging && battery.percent >= <f64>limit) {
      if (!this.warned) {
        const at = (<i32>Math.round(battery.percent)).toString();
        info("battery at " + at + "% and plugged in (limit " + limit.toString() + "%)");
        showNotification(
          "Battery at " + at + "%",
          "The charger is still plugged in. Unplug it to keep the battery at or below " +
            limit.toString() + "% and extend its life.",
        );
      }
      this.warned = true;
    } else {
      this.warned = false;
    }
  }
}

register(new BatteryGuard());
