/*
 * loadgen.c — SSE subscriber load generator for the ssehub benchmarks.
 *
 * One thread, epoll, non-blocking sockets.  Opens N HTTP/1.1 SSE subscriptions
 * (GET <path>), de-chunks the body if needed, parses SSE frames just enough to
 * count events per connection, detects duplicates / loss / reordering from a
 * per-topic sequence number in the payload, and records latency from a send
 * timestamp (CLOCK_REALTIME ns) in the payload.
 *
 * Payload format (what bench/publisher.c sends):  "seq=<n> ts=<ns> <padding>"
 *
 * Protocol with the runner (bench/run.py):
 *   stdout line "READY established=<n> failed=<n> secs=<s>" once every
 *   connection is either subscribed (2xx headers received) or has failed for good;
 *   SIGUSR1: the publisher is done -> exit as soon as every connection has its
 *            expected events, or after --drain-idle s without a new event, or
 *            --drain-max s at most (with --expect 0: exit at once);
 *   SIGTERM/SIGINT: exit now.  --timeout bounds the whole run in any case.
 *   Last stdout line: one JSON object with the results.
 *
 * Build: gcc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_CAP 192   /* we only need the beginning of each line */
#define HDR_CAP 16384
#define RBUF 65536

enum { ST_WAIT = 0, ST_CONNECTING, ST_HEADERS, ST_BODY, ST_DONE, ST_FAILED };
enum { CH_SIZE = 0, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

typedef struct {
    int fd;
    int state;
    int retries;
    int64_t next_attempt_ns;
    int64_t connect_start_ns;
    char *hdr;
    int hdr_len;
    /* chunked decoding */
    int chunked;
    int cstate;
    int64_t crem;
    /* SSE line state */
    char line[LINE_CAP];
    int line_len;
    int skip_lf;
    /* event in progress */
    int ev_has_data;
    int ev_ok;
    int64_t ev_seq, ev_ts;
    char ev_name[16];
    int ev_name_len;
    /* stats */
    uint8_t *seen;
    int64_t unique, dups, extra, ooo, gaps, other, bad, last_seq;
    int complete;
} conn_t;

static const char *g_host = "127.0.0.1";
static int g_port = 8181;
static int g_conns = 1;
static const char *g_path = "/subscribe?topic=bench";
static int g_topics = 1;
static int64_t g_expect = 0;
static double g_timeout = 120.0;
static double g_drain_idle = 3.0;
static double g_drain_max = 30.0;
static int g_max_pending = 200;
static int g_max_retries = 8;
static double g_header_timeout = 20.0;
static int64_t g_max_samples = 16 * 1024 * 1024;
static double g_coalesce_ms = 0;   /* throughput runs: sleep between polls so reads batch up */

static conn_t *C;
static int g_epfd;
static struct sockaddr_in g_addr;
static volatile sig_atomic_t g_sig_drain = 0, g_sig_stop = 0;

static int64_t n_established = 0, n_failed = 0, n_pending = 0, n_complete = 0;
static int64_t n_http_err = 0, n_conn_err = 0, n_closed_by_server = 0, n_retries = 0;
static int64_t tot_events = 0, tot_bytes = 0, tot_gaps = 0;
static int64_t first_send_ns = INT64_MAX, first_recv_ns = 0, last_recv_ns = 0;
static int64_t last_event_ns = 0;
static int64_t http_status_first = 0;
static uint32_t *samples;      /* latency in microseconds */
static int64_t n_samples = 0, n_samples_dropped = 0, n_negative = 0;
static int64_t now_rt;         /* CLOCK_REALTIME at the current read */

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static int64_t real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_signal(int sig) {
    if (sig == SIGUSR1) g_sig_drain = 1;
    else g_sig_stop = 1;
}

static void build_path(int idx, char *out, size_t cap) {
    /* "%d" in the path is replaced by idx % topics */
    const char *p = strstr(g_path, "%d");
    if (!p) {
        snprintf(out, cap, "%s", g_path);
        return;
    }
    snprintf(out, cap, "%.*s%d%s", (int)(p - g_path), g_path, idx % g_topics, p + 2);
}

static void conn_close_fd(conn_t *c) {
    if (c->fd >= 0) {
        epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    free(c->hdr);
    c->hdr = NULL;
}

static void conn_fail(conn_t *c, int retry, int64_t now) {
    int was_pending = (c->state == ST_CONNECTING || c->state == ST_HEADERS);
    conn_close_fd(c);
    if (was_pending) n_pending--;
    if (retry && c->retries < g_max_retries) {
        c->retries++;
        n_retries++;
        c->state = ST_WAIT;
        c->next_attempt_ns = now + (int64_t)c->retries * 50000000LL;
        return;
    }
    c->state = ST_FAILED;
    n_failed++;
}

static void conn_start(conn_t *c, int64_t now) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        n_conn_err++;
        c->state = ST_CONNECTING;
        n_pending++;
        conn_fail(c, 1, now);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->connect_start_ns = now;
    n_pending++;
    int r = connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr);
    if (r < 0 && errno != EINPROGRESS) {
        n_conn_err++;
        conn_fail(c, 1, now);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)(c - C)};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void conn_send_request(conn_t *c, int64_t now) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        n_conn_err++;
        conn_fail(c, 1, now);
        return;
    }
    char path[1024], req[2048];
    build_path((int)(c - C), path, sizeof path);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nUser-Agent: ssehub-bench-loadgen\r\n\r\n",
                     path, g_host, g_port);
    ssize_t w = write(c->fd, req, (size_t)n);
    if (w != n) {
        n_conn_err++;
        conn_fail(c, 1, now);
        return;
    }
    c->state = ST_HEADERS;
    c->hdr = malloc(HDR_CAP);
    c->hdr_len = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - C)};
    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* ---- SSE parsing ---------------------------------------------------------- */

static int64_t parse_num_after(const char *s, int len, const char *key, int *ok) {
    /* find key (e.g. "seq=") in s[0..len) and parse the decimal after it */
    int klen = (int)strlen(key);
    for (int i = 0; i + klen <= len; i++) {
        if (s[i] == key[0] && memcmp(s + i, key, (size_t)klen) == 0) {
            int j = i + klen;
            int neg = 0;
            if (j < len && s[j] == '-') { neg = 1; j++; }
            if (j >= len || s[j] < '0' || s[j] > '9') break;
            int64_t v = 0;
            while (j < len && s[j] >= '0' && s[j] <= '9') v = v * 10 + (s[j++] - '0');
            *ok = 1;
            return neg ? -v : v;
        }
    }
    *ok = 0;
    return 0;
}

static void record_event(conn_t *c) {
    if (!c->ev_ok) {
        c->bad++;
        return;
    }
    int64_t seq = c->ev_seq;
    tot_events++;
    if (g_expect > 0) {
        if (seq < 0 || seq >= g_expect) {
            c->extra++;
        } else if (c->seen[seq >> 3] & (1u << (seq & 7))) {
            c->dups++;
        } else {
            c->seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
            c->unique++;
            if (c->unique == g_expect && !c->complete) {
                c->complete = 1;
                n_complete++;
            }
        }
    } else {
        c->unique++;
    }
    if (seq < c->last_seq) c->ooo++;
    c->last_seq = seq;
    if (c->ev_ts < first_send_ns) first_send_ns = c->ev_ts;
    if (!first_recv_ns) first_recv_ns = now_rt;
    last_recv_ns = now_rt;
    int64_t lat = now_rt - c->ev_ts;
    if (lat < 0) { n_negative++; lat = 0; }
    if (n_samples < g_max_samples) {
        int64_t us = lat / 1000;
        samples[n_samples++] = us > 0xffffffffLL ? 0xffffffffu : (uint32_t)us;
    } else {
        n_samples_dropped++;
    }
}

static void process_line(conn_t *c, const char *l, int len) {
    if (len == 0) {                 /* blank line: dispatch */
        if (c->ev_has_data) {
            if (c->ev_name_len == 0 || (c->ev_name_len == 7 && memcmp(c->ev_name, "message", 7) == 0)) {
                record_event(c);
            } else if (c->ev_name_len == 3 && memcmp(c->ev_name, "gap", 3) == 0) {
                c->gaps++;
                tot_gaps++;
            } else {
                c->other++;
            }
        }
        c->ev_has_data = 0;
        c->ev_ok = 0;
        c->ev_name_len = 0;
        return;
    }
    if (l[0] == ':') return;        /* comment */
    if (len >= 5 && memcmp(l, "data", 4) == 0 && l[4] == ':') {
        if (c->ev_has_data) return; /* only the first data line matters */
        c->ev_has_data = 1;
        const char *v = l + 5;
        int vl = len - 5;
        if (vl > 0 && v[0] == ' ') { v++; vl--; }
        int ok1 = 0, ok2 = 0;
        c->ev_seq = parse_num_after(v, vl, "seq=", &ok1);
        c->ev_ts = parse_num_after(v, vl, "ts=", &ok2);
        c->ev_ok = ok1 && ok2;
        return;
    }
    if (len >= 6 && memcmp(l, "event", 5) == 0 && l[5] == ':') {
        const char *v = l + 6;
        int vl = len - 6;
        if (vl > 0 && v[0] == ' ') { v++; vl--; }
        if (vl > (int)sizeof c->ev_name) vl = (int)sizeof c->ev_name;
        memcpy(c->ev_name, v, (size_t)vl);
        c->ev_name_len = vl;
        return;
    }
    /* id:, retry:, unknown fields: ignored */
}

static void sse_feed(conn_t *c, const char *p, size_t n) {
    while (n > 0) {
        if (c->skip_lf) {
            c->skip_lf = 0;
            if (*p == '\n') { p++; n--; continue; }
        }
        size_t i = 0;
        while (i < n && p[i] != '\n' && p[i] != '\r') i++;
        size_t room = LINE_CAP - (size_t)c->line_len;
        size_t take = i < room ? i : room;
        if (take) {
            memcpy(c->line + c->line_len, p, take);
            c->line_len += (int)take;
        }
        if (i == n) return;          /* partial line, wait for more */
        if (p[i] == '\r') c->skip_lf = 1;
        process_line(c, c->line, c->line_len);
        c->line_len = 0;
        p += i + 1;
        n -= i + 1;
    }
}

/* de-chunk (if Transfer-Encoding: chunked) then feed the SSE parser */
static int body_feed(conn_t *c, const char *p, size_t n) {
    tot_bytes += (int64_t)n;
    if (!c->chunked) {
        sse_feed(c, p, n);
        return 0;
    }
    while (n > 0) {
        switch (c->cstate) {
        case CH_SIZE: {
            char ch = *p;
            int d;
            if (ch >= '0' && ch <= '9') d = ch - '0';
            else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
            else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
            else if (ch == '\r') { c->cstate = CH_SIZE_LF; p++; n--; break; }
            else if (ch == ';' || ch == ' ') { c->cstate = CH_EXT; p++; n--; break; }
            else return -1;
            c->crem = c->crem * 16 + d;
            p++; n--;
            break;
        }
        case CH_EXT:
            if (*p == '\r') c->cstate = CH_SIZE_LF;
            p++; n--;
            break;
        case CH_SIZE_LF:
            if (*p != '\n') return -1;
            p++; n--;
            if (c->crem == 0) { c->cstate = CH_TRAILER; return 1; } /* end of body */
            c->cstate = CH_DATA;
            break;
        case CH_DATA: {
            size_t take = (size_t)c->crem < n ? (size_t)c->crem : n;
            sse_feed(c, p, take);
            p += take; n -= take;
            c->crem -= (int64_t)take;
            if (c->crem == 0) c->cstate = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (*p != '\r') return -1;
            p++; n--;
            c->cstate = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (*p != '\n') return -1;
            p++; n--;
            c->cstate = CH_SIZE;
            c->crem = 0;
            break;
        default:
            return 1;
        }
    }
    return 0;
}

static int hdr_has(const char *h, int len, const char *name, const char *value) {
    /* case-insensitive search for a header line "name: ...value..." */
    int nl = (int)strlen(name);
    for (int i = 0; i + nl < len; i++) {
        if ((i == 0 || h[i - 1] == '\n') && strncasecmp(h + i, name, (size_t)nl) == 0 && h[i + nl] == ':') {
            int j = i + nl + 1;
            int e = j;
            while (e < len && h[e] != '\r' && h[e] != '\n') e++;
            char tmp[256];
            int vl = e - j < 255 ? e - j : 255;
            memcpy(tmp, h + j, (size_t)vl);
            tmp[vl] = 0;
            return strcasestr(tmp, value) != NULL;
        }
    }
    return 0;
}

static char rbuf[RBUF];

static void conn_readable(conn_t *c, int64_t now) {
    ssize_t r = read(c->fd, rbuf, sizeof rbuf);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (c->state == ST_HEADERS) {
            n_conn_err++;
            conn_fail(c, 1, now);
        } else {
            n_closed_by_server++;
            conn_close_fd(c);
            c->state = ST_DONE;
        }
        return;
    }
    now_rt = real_ns();
    const char *p = rbuf;
    size_t n = (size_t)r;
    if (c->state == ST_HEADERS) {
        size_t room = HDR_CAP - (size_t)c->hdr_len;
        size_t take = n < room ? n : room;
        memcpy(c->hdr + c->hdr_len, p, take);
        int old = c->hdr_len;
        c->hdr_len += (int)take;
        char *end = memmem(c->hdr, (size_t)c->hdr_len, "\r\n\r\n", 4);
        if (!end) {
            if (c->hdr_len >= HDR_CAP) { n_http_err++; conn_fail(c, 0, now); }
            return;
        }
        int hlen = (int)(end - c->hdr) + 4;
        int status = 0;
        if (c->hdr_len >= 12 && memcmp(c->hdr, "HTTP/1.", 7) == 0) status = atoi(c->hdr + 9);
        if (status < 200 || status >= 300) {
            n_http_err++;
            if (!http_status_first) http_status_first = status;
            conn_fail(c, 0, now);
            return;
        }
        c->chunked = hdr_has(c->hdr, hlen, "transfer-encoding", "chunked");
        c->state = ST_BODY;
        n_pending--;
        n_established++;
        size_t consumed = (size_t)(hlen - old);
        free(c->hdr);
        c->hdr = NULL;
        p += consumed;
        n -= consumed;
        if (n == 0) return;
    }
    if (body_feed(c, p, n) != 0) {
        /* end of chunked body or a framing error: the stream is over */
        n_closed_by_server++;
        conn_close_fd(c);
        c->state = ST_DONE;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double q) {
    if (n_samples == 0) return -1;
    int64_t i = (int64_t)(q * (double)(n_samples - 1) + 0.5);
    return (double)samples[i];
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen [--host H] [--port P] [--conns N] [--path /subscribe?topic=t%%d]\n"
            "               [--topics K] [--expect E] [--timeout S] [--drain-idle S] [--drain-max S]\n"
            "               [--max-pending N] [--header-timeout S] [--coalesce-ms MS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--host")) g_host = v;
        else if (!strcmp(a, "--port")) g_port = atoi(v);
        else if (!strcmp(a, "--conns")) g_conns = atoi(v);
        else if (!strcmp(a, "--path")) g_path = v;
        else if (!strcmp(a, "--topics")) g_topics = atoi(v);
        else if (!strcmp(a, "--expect")) g_expect = atoll(v);
        else if (!strcmp(a, "--timeout")) g_timeout = atof(v);
        else if (!strcmp(a, "--drain-idle")) g_drain_idle = atof(v);
        else if (!strcmp(a, "--drain-max")) g_drain_max = atof(v);
        else if (!strcmp(a, "--max-pending")) g_max_pending = atoi(v);
        else if (!strcmp(a, "--header-timeout")) g_header_timeout = atof(v);
        else if (!strcmp(a, "--coalesce-ms")) g_coalesce_ms = atof(v);
        else usage();
    }
    if (g_conns < 1 || g_topics < 1) usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &g_addr.sin_addr) != 1) {
        struct hostent *he = gethostbyname(g_host);
        if (!he) { fprintf(stderr, "loadgen: cannot resolve %s\n", g_host); return 2; }
        memcpy(&g_addr.sin_addr, he->h_addr_list[0], 4);
    }

    C = calloc((size_t)g_conns, sizeof(conn_t));
    samples = malloc((size_t)g_max_samples * sizeof(uint32_t));
    if (!C || !samples) { fprintf(stderr, "loadgen: out of memory\n"); return 2; }
    for (int i = 0; i < g_conns; i++) {
        C[i].fd = -1;
        C[i].last_seq = -1;
        if (g_expect > 0) {
            C[i].seen = calloc((size_t)(g_expect / 8 + 1), 1);
            if (!C[i].seen) { fprintf(stderr, "loadgen: out of memory\n"); return 2; }
        }
    }
    g_epfd = epoll_create1(EPOLL_CLOEXEC);

    int64_t t0 = mono_ns();
    int64_t deadline = t0 + (int64_t)(g_timeout * 1e9);
    int64_t ready_ns = 0, drain_start = 0;
    int next_to_start = 0;   /* connections are started in index order, then retries */
    int ready_printed = 0;
    const char *exit_reason = "timeout";
    struct epoll_event evs[1024];

    for (;;) {
        int64_t now = mono_ns();
        if (g_sig_stop) { exit_reason = "signal"; break; }
        if (now >= deadline) { exit_reason = "timeout"; break; }

        /* start new connections / retries while under the pending cap */
        while (n_pending < g_max_pending && next_to_start < g_conns) {
            conn_start(&C[next_to_start++], now);
        }
        if (n_pending < g_max_pending && n_retries > 0) {
            for (int i = 0; i < next_to_start && n_pending < g_max_pending; i++)
                if (C[i].state == ST_WAIT && C[i].next_attempt_ns <= now) conn_start(&C[i], now);
        }
        /* header timeouts (checked ~every loop, cheap enough for <= tens of thousands) */
        if (n_pending > 0 && !ready_printed) {
            static int64_t last_check = 0;
            if (now - last_check > 200000000LL) {
                last_check = now;
                for (int i = 0; i < next_to_start; i++)
                    if ((C[i].state == ST_CONNECTING || C[i].state == ST_HEADERS) &&
                        now - C[i].connect_start_ns > (int64_t)(g_header_timeout * 1e9)) {
                        n_http_err++;
                        conn_fail(&C[i], 0, now);
                    }
            }
        }
        if (!ready_printed && n_established + n_failed >= g_conns) {
            ready_printed = 1;
            ready_ns = now;
            printf("READY established=%lld failed=%lld secs=%.3f\n", (long long)n_established,
                   (long long)n_failed, (double)(now - t0) / 1e9);
            fflush(stdout);
        }
        if (g_sig_drain) {
            if (!drain_start) drain_start = now;
            if (g_expect <= 0) { exit_reason = "drained"; break; }
            if (n_complete >= n_established && n_established > 0) { exit_reason = "complete"; break; }
            int64_t last = last_event_ns > drain_start ? last_event_ns : drain_start;
            if (now - last > (int64_t)(g_drain_idle * 1e9)) { exit_reason = "drain-idle"; break; }
            if (now - drain_start > (int64_t)(g_drain_max * 1e9)) { exit_reason = "drain-max"; break; }
        }

        int nev = epoll_wait(g_epfd, evs, 1024, 10);
        if (nev < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            exit_reason = "error";
            break;
        }
        now = mono_ns();
        int64_t before = tot_events;
        for (int k = 0; k < nev; k++) {
            conn_t *c = &C[evs[k].data.u32];
            if (c->fd < 0) continue;
            if (c->state == ST_CONNECTING) {
                if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) conn_send_request(c, now);
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_readable(c, now);
        }
        if (tot_events != before) {
            last_event_ns = now;
            if (g_coalesce_ms > 0 && ready_printed) {
                /* let more bytes pile up in the socket buffers: fewer, larger reads */
                struct timespec ts = {0, (long)(g_coalesce_ms * 1e6)};
                nanosleep(&ts, NULL);
            }
        }
    }
    int64_t t_end = mono_ns();

    /* abortive close: no TIME_WAIT pile-up across runs */
    struct linger lg = {1, 0};
    for (int i = 0; i < g_conns; i++) {
        if (C[i].fd >= 0) {
            setsockopt(C[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(C[i].fd);
            C[i].fd = -1;
        }
    }

    int64_t unique = 0, dups = 0, extra = 0, ooo = 0, other = 0, bad = 0, lost = 0;
    int64_t min_unique = INT64_MAX, max_unique = 0;
    for (int i = 0; i < g_conns; i++) {
        conn_t *c = &C[i];
        unique += c->unique; dups += c->dups; extra += c->extra; ooo += c->ooo;
        other += c->other; bad += c->bad;
        if (c->state == ST_BODY || c->state == ST_DONE) {
            if (g_expect > 0) lost += g_expect - c->unique;
            if (c->unique < min_unique) min_unique = c->unique;
            if (c->unique > max_unique) max_unique = c->unique;
        }
    }
    if (min_unique == INT64_MAX) min_unique = 0;
    qsort(samples, (size_t)n_samples, sizeof(uint32_t), cmp_u32);
    double mean = 0;
    for (int64_t i = 0; i < n_samples; i++) mean += samples[i];
    if (n_samples) mean /= (double)n_samples;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    double cpu_sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double wall = (double)(t_end - t0) / 1e9;
    double span = (last_recv_ns > 0 && first_send_ns != INT64_MAX) ? (double)(last_recv_ns - first_send_ns) / 1e9 : 0;

    printf("{\"conns\":%d,\"established\":%lld,\"failed\":%lld,\"http_errors\":%lld,"
           "\"first_bad_status\":%lld,\"connect_errors\":%lld,\"retries\":%lld,"
           "\"closed_by_server\":%lld,\"expect_per_conn\":%lld,\"events\":%lld,\"unique\":%lld,"
           "\"lost\":%lld,\"dups\":%lld,\"extra\":%lld,\"out_of_order\":%lld,\"gaps\":%lld,"
           "\"other_events\":%lld,\"bad_payload\":%lld,\"complete_conns\":%lld,"
           "\"min_unique_per_conn\":%lld,\"max_unique_per_conn\":%lld,\"bytes\":%lld,"
           "\"first_send_ns\":%lld,\"first_recv_ns\":%lld,\"last_recv_ns\":%lld,\"span_s\":%.6f,"
           "\"lat_us\":{\"n\":%lld,\"dropped\":%lld,\"negative\":%lld,\"mean\":%.1f,\"p50\":%.0f,"
           "\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f},"
           "\"ready_s\":%.3f,\"wall_s\":%.3f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"exit\":\"%s\"}\n",
           g_conns, (long long)n_established, (long long)n_failed, (long long)n_http_err,
           (long long)http_status_first, (long long)n_conn_err, (long long)n_retries,
           (long long)n_closed_by_server, (long long)g_expect, (long long)tot_events, (long long)unique,
           (long long)lost, (long long)dups, (long long)extra, (long long)ooo, (long long)tot_gaps,
           (long long)other, (long long)bad, (long long)n_complete, (long long)min_unique,
           (long long)max_unique, (long long)tot_bytes,
           (long long)(first_send_ns == INT64_MAX ? 0 : first_send_ns), (long long)first_recv_ns,
           (long long)last_recv_ns, span, (long long)n_samples, (long long)n_samples_dropped,
           (long long)n_negative, mean, pct(0.50), pct(0.90), pct(0.99), pct(0.999),
           n_samples ? (double)samples[n_samples - 1] : -1.0,
           ready_ns ? (double)(ready_ns - t0) / 1e9 : -1.0, wall, cpu_user, cpu_sys, exit_reason);
    fflush(stdout);
    return 0;
}
