/*
 * docker-cleaner: how much disk Docker's images take, and a nudge to prune.
 *
 * The host API has no directory listing, no stat and no RunCommand, so the
 * plugin cannot walk /var/lib/docker or ask `docker system df`. What it can
 * do is read files whose names it can work out, and Docker's image store
 * names all of them from one file:
 *
 *   image/<driver>/repositories.json             tag -> image id
 *   image/<driver>/imagedb/content/sha256/<id>   image config: rootfs.diff_ids
 *   image/<driver>/layerdb/sha256/<chain id>/size   bytes of that layer
 *
 * A layer's chain id is its diff id for the first layer, then
 * sha256("<parent chain id> <diff id>"). The sum of the sizes of the
 * distinct layers of the tagged images is reported as the metric
 * `docker_images_bytes` (and their count as `docker_images`); above
 * `threshold_gb` a notification suggests `docker system prune`.
 *
 * Not counted, because nothing names them: containers' writable layers,
 * volumes, the build cache, logs, and untagged (dangling) images. The
 * figure is a lower bound of Docker's disk use.
 *
 * The work is spread over ticks (at most READS_PER_TICK file reads each) and
 * repeated every `scan_interval_s`.
 */
#define RUVECTOR_IMPLEMENTATION
#define RV_HEAP_SIZE (2u << 20) /* room for a 1 MiB file, read_file's largest */
#include "ruvector.h"

#define MAX_IMAGES 1024
#define MAX_LAYERS 8192
#define READS_PER_TICK 128 /* an image is finished even if it passes this */
#define GB 1e9             /* decimal, as docker reports sizes */

/* -- SHA-256 (FIPS 180-4), for chain ids ---------------------------------- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, k;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

/* For short messages (chain id inputs are 143 bytes). */
static void sha256(const char *msg, uint32_t n, uint8_t out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t block[64];
    uint64_t bits = (uint64_t)n * 8u;
    uint32_t i = 0;
    for (; n - i >= 64; i += 64) sha256_block(h, (const uint8_t *)msg + i);
    rv_memset(block, 0, 64);
    rv_memcpy(block, msg + i, n - i);
    block[n - i] = 0x80;
    if (n - i >= 56) {
        sha256_block(h, block);
        rv_memset(block, 0, 64);
    }
    for (int j = 0; j < 8; j++) block[63 - j] = (uint8_t)(bits >> (8 * j));
    sha256_block(h, block);
    for (int j = 0; j < 32; j++) out[j] = (uint8_t)(h[j / 4] >> (24 - 8 * (j % 4)));
}

/* -- digests and sets of them --------------------------------------------- */

typedef struct digest {
    uint8_t b[32];
} digest;

static const char HEX[] = "0123456789abcdef";

/* "sha256:<64 hex>" (a JSON string token, quotes included) -> digest */
static bool parse_digest(rv_str token, digest *out)
{
    char text[80];
    int32_t n = rv_json_str(token, text, sizeof text);
    if (n != 71 || rv_memcmp(text, "sha256:", 7) != 0) return false;
    for (int i = 0; i < 32; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = text[7 + 2 * i + k];
            int x = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
            if (x < 0) return false;
            v = v * 16 + x;
        }
        out->b[i] = (uint8_t)v;
    }
    return true;
}

static void hex_of(const digest *d, char out[64])
{
    for (int i = 0; i < 32; i++) {
        out[2 * i] = HEX[d->b[i] >> 4];
        out[2 * i + 1] = HEX[d->b[i] & 15];
    }
}

/* Open addressing; capacity twice the most it may hold. */
typedef struct set {
    digest *keys;
    uint8_t *used;
    uint32_t capacity, count, limit;
} set;

static digest image_keys[2 * MAX_IMAGES], layer_keys[2 * MAX_LAYERS];
static uint8_t image_used[2 * MAX_IMAGES], layer_used[2 * MAX_LAYERS];
static set images = {image_keys, image_used, 2 * MAX_IMAGES, 0, MAX_IMAGES};
static set layers = {layer_keys, layer_used, 2 * MAX_LAYERS, 0, MAX_LAYERS};

static void set_clear(set *s)
{
    rv_memset(s->used, 0, s->capacity);
    s->count = 0;
}

/* 1 added, 0 already there, -1 full */
static int set_add(set *s, const digest *d)
{
    uint32_t i = ((uint32_t)d->b[0] | (uint32_t)d->b[1] << 8 | (uint32_t)d->b[2] << 16) % s->capacity;
    while (s->used[i]) {
        if (rv_memcmp(s->keys[i].b, d->b, 32) == 0) return 0;
        i = (i + 1) % s->capacity;
    }
    if (s->count >= s->limit) return -1;
    s->used[i] = 1;
    s->keys[i] = *d;
    s->count++;
    return 1;
}

/* -- config and state ------------------------------------------------------ */

static char data_dir[1024];
static char driver[64];
static double threshold_bytes;
static int64_t scan_interval_ms;

static digest queue[MAX_IMAGES]; /* image ids of the scan in progress */
static uint32_t queued, next_image;
static bool scanning, scanned_once, over_threshold, capped;
static int64_t since_scan_ms;
static uint64_t total_bytes;
static uint32_t missing_files;
/* What was last said about the store, so each problem is said once: a
 * status of reading the data directory, REPOSITORIES + a status of reading
 * repositories.json, or 0 once a scan has worked. */
#define REPOSITORIES 100
static int32_t reported;

static void init(void)
{
    rv_config_str("data_dir", data_dir, sizeof data_dir, "/var/lib/docker");
    rv_config_str("storage_driver", driver, sizeof driver, "overlay2");
    threshold_bytes = rv_config_f64("threshold_gb", 20.0) * GB;
    scan_interval_ms = (int64_t)(rv_config_f64("scan_interval_s", 300.0) * 1000.0);
}

/* <data_dir>/image/<driver>/<rest...> into b */
static void store_path(rv_buf *b, const char *rest)
{
    rv_buf_str(b, data_dir);
    rv_buf_str(rv_buf_str(rv_buf_str(b, "/image/"), driver), "/");
    rv_buf_str(b, rest);
}

static void say_once(int32_t condition, rv_level level, const char *text)
{
    if (condition == reported) return;
    reported = condition;
    rv_log(level, text);
}

/* Whether the data directory is there and readable; says once why not. */
static bool docker_present(void)
{
    char text[1400];
    rv_buf b = rv_buf_init(text, sizeof text);
    rv_str unused;
    rv_status s = rv_read_file(data_dir, &unused);
    if (s == RV_INVALID_ARGUMENT) return true; /* a directory: read_file reads only files */
    if (s == RV_NOT_FOUND) {
        rv_buf_str(rv_buf_str(rv_buf_str(&b, "Docker is not installed here: "), data_dir),
                   " does not exist; nothing to do");
        say_once(s, RV_LOG_INFO, text);
    } else if (s == RV_DENIED) {
        rv_buf_str(rv_buf_str(&b, data_dir), " is outside this plugin's FileSystemRead grant");
        say_once(s, RV_LOG_WARN, text);
    } else {
        rv_buf_str(rv_buf_str(rv_buf_str(&b, "cannot look at "), data_dir), ": ");
        rv_buf_str(&b, s == RV_OK ? "it is a file, not a directory" : rv_status_name(s));
        say_once(s == RV_OK ? RV_INVALID_ARGUMENT : s, RV_LOG_WARN, text);
    }
    return false;
}

static void queue_image(rv_str token)
{
    digest d;
    int added;
    if (!parse_digest(token, &d)) return;
    added = set_add(&images, &d);
    if (added == 1) queue[queued++] = d;
    if (added < 0) capped = true;
}

/* Reads repositories.json and queues every distinct image id. */
static bool start_scan(void)
{
    char path[1400], text[1600];
    rv_buf p = rv_buf_init(path, sizeof path), b = rv_buf_init(text, sizeof text);
    rv_str json, repos, k, tags, ref, id;
    rv_json_iter outer, inner;
    rv_status s;
    uint32_t mark = rv_heap_mark();
    store_path(&p, "repositories.json");
    s = rv_read_file(path, &json);
    if (s != RV_OK) {
        rv_buf_str(rv_buf_str(rv_buf_str(&b, "cannot read "), path), ": ");
        rv_buf_str(&b, rv_status_name(s));
        if (s == RV_NOT_FOUND)
            rv_buf_str(&b, " (no images yet, another storage driver: set storage_driver, "
                           "or the containerd image store, which keeps no such file)");
        if (s == RV_IO_ERROR)
            rv_buf_str(&b, " (Docker's directory is readable by root only: the host must run "
                           "as root to read it)");
        say_once(REPOSITORIES + s, RV_LOG_WARN, text);
        return false;
    }
    set_clear(&images);
    set_clear(&layers);
    queued = next_image = 0;
    total_bytes = 0;
    missing_files = 0;
    capped = false;
    if (rv_json_get(json, "Repositories", &repos) && rv_json_iter_init(&outer, repos)) {
        while (rv_json_next_member(&outer, &k, &tags))
            if (rv_json_iter_init(&inner, tags))
                while (rv_json_next_member(&inner, &ref, &id)) queue_image(id);
    }
    rv_heap_release(mark);
    scanning = true;
    return true;
}

/* Adds the size of each layer of one image not counted yet; returns reads. */
static uint32_t count_image(const digest *image)
{
    char path[1400], hex[64], chain_text[160];
    rv_buf p = rv_buf_init(path, sizeof path);
    rv_str config, rootfs, diff_ids, diff, size_text;
    rv_json_iter it;
    digest chain;
    bool first = true;
    uint32_t reads = 1, mark = rv_heap_mark();
    hex_of(image, hex);
    store_path(&p, "imagedb/content/sha256/");
    rv_buf_strn(&p, hex, 64);
    if (rv_read_file(path, &config) != RV_OK) {
        missing_files++;
        return reads;
    }
    if (!rv_json_get(config, "rootfs", &rootfs) || !rv_json_get(rootfs, "diff_ids", &diff_ids))
        rv_json_iter_init(&it, RV_STR("[]"));
    else
        rv_json_iter_init(&it, diff_ids);
    while (rv_json_next(&it, &diff)) {
        digest d;
        int64_t size;
        int added;
        if (!parse_digest(diff, &d)) break;
        if (first) {
            chain = d;
            first = false;
        } else {
            /* "sha256:<parent chain> sha256:<diff>" */
            rv_buf c = rv_buf_init(chain_text, sizeof chain_text);
            hex_of(&chain, hex);
            rv_buf_strn(rv_buf_str(&c, "sha256:"), hex, 64);
            hex_of(&d, hex);
            rv_buf_strn(rv_buf_str(&c, " sha256:"), hex, 64);
            sha256(c.ptr, c.len, chain.b);
        }
        added = set_add(&layers, &chain);
        if (added < 0) capped = true;
        if (added != 1) continue;
        p = rv_buf_init(path, sizeof path);
        hex_of(&chain, hex);
        store_path(&p, "layerdb/sha256/");
        rv_buf_str(rv_buf_strn(&p, hex, 64), "/size");
        reads++;
        /* decimal digits; rv_json_i64 also takes a trailing newline */
        if (rv_read_file(path, &size_text) == RV_OK && rv_json_i64(size_text, &size) && size >= 0)
            total_bytes += (uint64_t)size;
        else
            missing_files++;
    }
    rv_heap_release(mark);
    return reads;
}

static void finish_scan(void)
{
    char text[512];
    rv_buf b = rv_buf_init(text, sizeof text);
    scanning = false;
    scanned_once = true;
    since_scan_ms = 0;
    rv_report_metric("docker_images_bytes", (double)total_bytes);
    rv_report_metric("docker_images", (double)queued);
    rv_buf_str(&b, "Docker images: ");
    rv_buf_u64(&b, queued);
    rv_buf_str(&b, " tagged, ");
    rv_buf_f64(&b, (double)total_bytes / GB, 2);
    rv_buf_str(&b, " GB in ");
    rv_buf_u64(&b, layers.count);
    rv_buf_str(&b, " layers");
    if (missing_files) {
        rv_buf_str(&b, " (");
        rv_buf_u64(&b, missing_files);
        rv_buf_str(&b, " files missing: not counted)");
    }
    if (capped) rv_buf_str(&b, " (too many to count all: a lower bound)");
    reported = 0;
    rv_log_info(text);
    if ((double)total_bytes <= threshold_bytes) {
        over_threshold = false;
        return;
    }
    if (over_threshold) return;
    over_threshold = true;
    b = rv_buf_init(text, sizeof text);
    rv_buf_str(&b, "Docker images take ");
    rv_buf_f64(&b, (double)total_bytes / GB, 1);
    rv_buf_str(&b, " GB, over the ");
    rv_buf_f64(&b, threshold_bytes / GB, 1);
    rv_buf_str(&b, " GB threshold. `docker system prune` removes stopped containers, unused "
                   "networks and dangling images; `docker image prune -a` also removes images "
                   "no container uses.");
    rv_show_notification("Docker is using a lot of disk", text);
}

static void tick(int32_t interval_ms)
{
    uint32_t reads = 0;
    since_scan_ms += interval_ms;
    if (!scanning) {
        if (scanned_once && since_scan_ms < scan_interval_ms) return;
        since_scan_ms = 0;
        scanned_once = true; /* a failed start also waits for the next interval */
        if (!docker_present() || !start_scan()) return;
    }
    while (next_image < queued && reads < READS_PER_TICK) reads += count_image(&queue[next_image++]);
    if (next_image >= queued) finish_scan();
}

RV_ON_INIT(init)
RV_ON_TICK(tick)
