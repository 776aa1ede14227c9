/*
 * chrome-tab-limiter: counts the processes of one program (Chrome by
 * default) every tick and warns when there are more than the configured
 * limit. Chrome runs roughly one process per tab or site, so the count is a
 * stand-in for open tabs; it also counts Chrome's GPU and utility processes.
 *
 * Each tick: the metric `processes` is the count. Above `max_tabs`, the
 * metric `tabs_over_limit` is how far above, and a notification is shown
 * when the count first goes over (again only after it has come back down),
 * so a busy browser does not raise one every tick.
 */
#define RUVECTOR_IMPLEMENTATION
#define RV_HEAP_SIZE (4u << 20) /* a busy machine's process list runs to hundreds of KiB */
#include "ruvector.h"

static char process_name[128];
static int64_t max_tabs;
static bool over_limit;      /* notified for the current episode */
static rv_status last_error; /* logged once per distinct failure */

static void init(void)
{
    rv_config_str("process_name", process_name, sizeof process_name, "chrome");
    max_tabs = rv_config_i64("max_tabs", 20);
}

static void warn_once(const char *what, rv_status s)
{
    char text[160];
    rv_buf b = rv_buf_init(text, sizeof text);
    if (s == last_error) return;
    last_error = s;
    rv_buf_str(rv_buf_str(rv_buf_str(&b, what), ": "), rv_status_name(s));
    rv_log_warn(text);
}

static void notify(int64_t count)
{
    char title[96], message[256];
    rv_buf t = rv_buf_init(title, sizeof title), m = rv_buf_init(message, sizeof message);
    rv_buf_str(rv_buf_str(rv_buf_str(&t, "Too many "), process_name), " processes");
    rv_buf_i64(&m, count);
    rv_buf_str(rv_buf_str(rv_buf_str(&m, " "), process_name), " processes are running; the limit is ");
    rv_buf_i64(&m, max_tabs);
    rv_buf_str(&m, ". Closing tabs you do not need frees their memory.");
    rv_show_notification(title, message);
    rv_log_warn(message);
}

static void tick(int32_t interval_ms)
{
    rv_list list;
    rv_process p;
    int64_t count = 0;
    rv_status s = rv_get_process_list(&list);
    (void)interval_ms;
    if (s != RV_OK) {
        warn_once("cannot read the process list", s);
        return;
    }
    last_error = RV_OK;
    while (rv_process_next(&list, &p))
        if (rv_process_name_is(p.name, process_name)) count++;
    rv_report_metric("processes", (double)count);
    if (count <= max_tabs) {
        over_limit = false;
        return;
    }
    rv_report_metric("tabs_over_limit", (double)(count - max_tabs));
    if (!over_limit) notify(count);
    over_limit = true;
}

RV_ON_INIT(init)
RV_ON_TICK(tick)
