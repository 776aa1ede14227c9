/*
 * thinkpad-thermal: a fan curve for ThinkPads, as advice.
 *
 * Each tick it reads the host's temperature snapshot and takes the hottest
 * sensor of the ThinkPad's embedded controller (hwmon chip "thinkpad", from
 * the thinkpad_acpi driver). The configured profile maps that temperature to
 * a fan level (0 off .. 7 fastest, thinkpad_acpi's levels), reported as the
 * metric `fan_target_level` with `temperature_celsius`; a change of level is
 * logged, and crossing the profile's alert temperature raises a
 * notification (again only after cooling 5 °C below it).
 *
 * It does not set the fan: the host API has no fan control, and write_file
 * replaces regular files, which /proc/acpi/ibm/fan is not. Without a
 * "thinkpad" chip in the snapshot (other machines, VMs, Windows and macOS,
 * where the host reads no sensors) it says so once and reports nothing.
 */
#define RUVECTOR_IMPLEMENTATION
#include "ruvector.h"

#define COOL_DOWN 5.0 /* °C below the alert temperature that re-arms the alert */

typedef struct step {
    double from_celsius; /* this level applies from here up */
    int32_t level;
} step;

typedef struct profile {
    const char *name;
    double alert_celsius;
    int32_t idle_level; /* below the first step */
    uint32_t steps;
    step curve[6]; /* ascending */
} profile;

static const profile PROFILES[] = {
    {"quiet", 88.0, 0, 5, {{55, 1}, {65, 2}, {72, 3}, {78, 5}, {84, 7}}},
    {"balanced", 82.0, 0, 5, {{45, 1}, {55, 2}, {62, 3}, {70, 5}, {78, 7}}},
    {"performance", 75.0, 1, 4, {{40, 2}, {50, 4}, {60, 6}, {68, 7}}},
};
#define N_PROFILES (sizeof PROFILES / sizeof PROFILES[0])

enum hardware { UNKNOWN, ABSENT, PRESENT };

static const profile *active = &PROFILES[1];
static enum hardware hardware = UNKNOWN;
static int32_t last_level = -1;
static bool alerted;
static rv_status last_error;

static void init(void)
{
    char name[32];
    rv_config_str("profile", name, sizeof name, "balanced");
    for (uint32_t i = 0; i < N_PROFILES; i++)
        if (rv_streq(name, PROFILES[i].name)) active = &PROFILES[i];
    if (!rv_streq(name, active->name)) {
        char text[128];
        rv_buf b = rv_buf_init(text, sizeof text);
        rv_buf_str(rv_buf_str(rv_buf_str(&b, "unknown profile '"), name), "'; using balanced");
        rv_log_warn(text);
    }
}

static int32_t target_level(double celsius)
{
    int32_t level = active->idle_level;
    for (uint32_t i = 0; i < active->steps; i++)
        if (celsius >= active->curve[i].from_celsius) level = active->curve[i].level;
    return level;
}

static void say_absent(int32_t sensors)
{
    char text[256];
    rv_buf b = rv_buf_init(text, sizeof text);
    if (hardware == ABSENT) return;
    hardware = ABSENT;
    rv_buf_str(&b, "no ThinkPad thermal sensors: the host's snapshot has ");
    rv_buf_i64(&b, sensors);
    rv_buf_str(&b, " sensor(s), none from thinkpad_acpi (chip 'thinkpad'); "
                   "nothing to do on this machine");
    rv_log_info(text);
}

static void act(double celsius, const char *label)
{
    char text[256];
    rv_buf b = rv_buf_init(text, sizeof text);
    int32_t level = target_level(celsius);
    if (hardware != PRESENT) {
        hardware = PRESENT;
        rv_log_info("ThinkPad thermal sensors found");
    }
    rv_report_metric("temperature_celsius", celsius);
    rv_report_metric("fan_target_level", (double)level);
    if (level != last_level) {
        rv_buf_str(&b, "fan target level ");
        rv_buf_i64(&b, level);
        rv_buf_str(&b, " for ");
        rv_buf_f64(&b, celsius, 1);
        rv_buf_str(rv_buf_str(rv_buf_str(&b, " °C ("), active->name), " profile)");
        rv_log_info(text);
        last_level = level;
    }
    if (celsius < active->alert_celsius - COOL_DOWN) alerted = false;
    if (celsius >= active->alert_celsius && !alerted) {
        b = rv_buf_init(text, sizeof text);
        rv_buf_str(rv_buf_str(&b, label[0] ? label : "sensor"), " at ");
        rv_buf_f64(&b, celsius, 1);
        rv_buf_str(rv_buf_str(rv_buf_str(&b, " °C, at or above the "), active->name), " profile's ");
        rv_buf_f64(&b, active->alert_celsius, 0);
        rv_buf_str(&b, " °C. Fan target: level ");
        rv_buf_i64(&b, level);
        rv_buf_str(&b, ".");
        rv_show_notification("ThinkPad running hot", text);
        alerted = true;
    }
}

static void tick(int32_t interval_ms)
{
    rv_list list;
    rv_sensor s;
    int32_t sensors = 0, found = 0;
    double hottest = RV_NULL_F64;
    char label[64] = "";
    rv_status status = rv_get_temperature(&list);
    (void)interval_ms;
    if (status != RV_OK) {
        if (status != last_error) {
            char text[96];
            rv_buf b = rv_buf_init(text, sizeof text);
            rv_buf_str(rv_buf_str(&b, "cannot read temperatures: "), rv_status_name(status));
            rv_log_warn(text);
        }
        last_error = status;
        return;
    }
    last_error = RV_OK;
    while (rv_sensor_next(&list, &s)) {
        sensors++;
        if (!rv_streq(s.chip, "thinkpad")) continue;
        found++;
        if (s.celsius > hottest) {
            hottest = s.celsius;
            rv_str_copy(label, sizeof label, rv_cstr(s.label));
        }
    }
    if (found == 0) say_absent(sensors);
    else act(hottest, label);
}

RV_ON_INIT(init)
RV_ON_TICK(tick)
