/*
 * publisher.c — fast HTTP/1.1 keep-alive publisher for the ssehub benchmarks.
 *
 * Sends --count events over --conns keep-alive connections (one request in
 * flight per connection), either as fast as the server accepts them (--rate 0)
 * or paced at --rate events/s in total.  Event i goes to topic (i % topics) and
 * carries that topic's sequence number seq = i / topics, so every subscriber of
 * a topic expects seq 0..count/topics-1.
 *
 * Payload (exactly --size bytes):  "seq=<n> ts=<CLOCK_REALTIME ns> xxxx..."
 * --mode json : POST /publish            {"topic":"<t>","data":"<payload>"}
 * --mode raw  : POST /publish?topic=<t>   <payload>     (Nchan, and ssehub's raw form)
 *
 * The last stdout line is a JSON object with the results.
 * Build: gcc -O2 -o publisher publisher.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RESP_CAP 65536
#define MAX_CONNS 256

typedef struct {
    int fd;
    int busy;
    int64_t sent_ns;     /* monotonic, for response time */
    int64_t event;       /* index of the event in flight */
    char resp[RESP_CAP];
    int resp_len;
} pconn_t;

static const char *g_host = "127.0.0.1";
static int g_port = 8181;
static int g_nconns = 8;
static int64_t g_count = 1000;
static int g_topics = 1;
static const char *g_topic_fmt = "bench";
static int g_size = 200;
static int g_raw = 0;
static double g_rate = 0;
static double g_timeout = 120.0;
static double g_req_timeout = 15.0;
static const char *g_path = "/publish";
static int g_batch = 1;          /* events per request (JSON array), json mode only */
static int64_t g_units = 0;      /* requests to make: ceil(count / batch) */

static struct sockaddr_in g_addr;
static pconn_t *P;
static int g_epfd;
static volatile sig_atomic_t g_stop = 0;

static int64_t n_sent = 0, n_ok = 0, n_err = 0, n_reconnects = 0, n_timeouts = 0;
static int64_t status_counts[600];
static uint32_t *rtt_us;
static int64_t n_rtt = 0;
static int64_t max_late_ns = 0;

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
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static void topic_name(int64_t i, char *out, size_t cap) {
    const char *p = strstr(g_topic_fmt, "%d");
    if (!p) snprintf(out, cap, "%s", g_topic_fmt);
    else snprintf(out, cap, "%.*s%d%s", (int)(p - g_topic_fmt), g_topic_fmt, (int)(i % g_topics), p + 2);
}

static int pconn_open(pconn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->busy = 0;
    c->resp_len = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - P)};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void pconn_close(pconn_t *c) {
    if (c->fd >= 0) {
        epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = 0;
    c->resp_len = 0;
}

/* write a whole request on c and mark it in flight (unit u carrying nev events) */
static int send_request(pconn_t *c, const char *req, int rlen, int64_t u, int nev) {
    int off = 0;
    while (off < rlen) {
        ssize_t w = write(c->fd, req + off, (size_t)(rlen - off));
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += (int)w;
    }
    c->busy = 1;
    c->event = u;
    c->sent_ns = mono_ns();
    c->resp_len = 0;
    n_sent += nev;
    return 0;
}

/* events carried by request unit u */
static int unit_events(int64_t u) {
    int64_t first = u * g_batch, last = first + g_batch;
    if (last > g_count) last = g_count;
    return (int)(last - first);
}

/* append the JSON object of event i to body at offset; returns the new length */
static int json_event(char *body, int off, size_t cap, int64_t i) {
    static char payload[1 << 20];
    char topic[512];
    topic_name(i, topic, sizeof topic);
    int64_t seq = i / g_topics;
    int n = snprintf(payload, sizeof payload, "seq=%lld ts=%lld ", (long long)seq, (long long)real_ns());
    while (n < g_size) payload[n++] = 'x';
    payload[n] = 0;
    return off + snprintf(body + off, cap - (size_t)off, "{\"topic\":\"%s\",\"data\":\"%s\"}", topic, payload);
}

/* send request unit u (one event, or a batch of g_batch events as a JSON array) on c */
static int send_batch(pconn_t *c, int64_t u) {
    static char body[(1 << 22)], req[(1 << 22) + 2048];
    int nev = unit_events(u), blen = 0;
    body[blen++] = '[';
    for (int k = 0; k < nev; k++) {
        if (k) body[blen++] = ',';
        blen = json_event(body, blen, sizeof body - 2, u * g_batch + k);
    }
    body[blen++] = ']';
    body[blen] = 0;
    int rlen = snprintf(req, sizeof req,
                        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n%s", g_path, g_host, g_port, blen, body);
    return send_request(c, req, rlen, u, nev);
}

/* send event i on connection c; returns 0 on success */
static int send_event(pconn_t *c, int64_t i) {
    static char payload[1 << 20], body[(1 << 20) + 1024], req[(1 << 20) + 2048];
    char topic[512];
    topic_name(i, topic, sizeof topic);
    int64_t seq = i / g_topics;
    int64_t ts = real_ns();
    int n = snprintf(payload, sizeof payload, "seq=%lld ts=%lld ", (long long)seq, (long long)ts);
    while (n < g_size) payload[n++] = 'x';
    payload[n] = 0;
    int blen, rlen;
    if (g_raw) {
        rlen = snprintf(req, sizeof req,
                        "POST %s?topic=%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %d\r\n\r\n%s",
                        g_path, topic, g_host, g_port, n, payload);
    } else {
        blen = snprintf(body, sizeof body, "{\"topic\":\"%s\",\"data\":\"%s\"}", topic, payload);
        rlen = snprintf(req, sizeof req,
                        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n%s",
                        g_path, g_host, g_port, blen, body);
    }
    return send_request(c, req, rlen, i, 1);
}

/* parse a complete response in c->resp; returns status (>0) when complete,
 * 0 when more bytes are needed, -1 on a framing error.  *close_after is set
 * when the server asked to close. */
static int parse_response(pconn_t *c, int *close_after) {
    char *end = memmem(c->resp, (size_t)c->resp_len, "\r\n\r\n", 4);
    if (!end) return c->resp_len >= RESP_CAP ? -1 : 0;
    int hlen = (int)(end - c->resp) + 4;
    if (memcmp(c->resp, "HTTP/1.", 7) != 0) return -1;
    int status = atoi(c->resp + 9);
    int64_t clen = -1;
    int chunked = 0;
    *close_after = 0;
    for (char *l = c->resp; l < c->resp + hlen;) {
        char *e = memchr(l, '\n', (size_t)(c->resp + hlen - l));
        if (!e) break;
        if (!strncasecmp(l, "content-length:", 15)) clen = atoll(l + 15);
        else if (!strncasecmp(l, "transfer-encoding:", 18) && strcasestr(l, "chunked") && strcasestr(l, "chunked") < e) chunked = 1;
        else if (!strncasecmp(l, "connection:", 11)) {
            char *cl = strcasestr(l, "close");
            if (cl && cl < e) *close_after = 1;
        }
        l = e + 1;
    }
    if (clen >= 0) {
        if (c->resp_len < hlen + clen) return 0;
        return status;
    }
    if (chunked) {
        /* complete when the body ends with the last chunk "0\r\n\r\n" */
        if (c->resp_len >= hlen + 5 && memcmp(c->resp + c->resp_len - 5, "0\r\n\r\n", 5) == 0) return status;
        return c->resp_len >= RESP_CAP ? -1 : 0;
    }
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) return status;
    /* no length: body ends at close */
    *close_after = 1;
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr,
            "usage: publisher [--host H] [--port P] [--conns 8] [--count N] [--topics K]\n"
            "                 [--topic t%%d] [--size 200] [--mode json|raw] [--rate R]\n"
            "                 [--timeout S] [--path /publish] [--batch B]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--host")) g_host = v;
        else if (!strcmp(a, "--port")) g_port = atoi(v);
        else if (!strcmp(a, "--conns")) g_nconns = atoi(v);
        else if (!strcmp(a, "--count")) g_count = atoll(v);
        else if (!strcmp(a, "--topics")) g_topics = atoi(v);
        else if (!strcmp(a, "--topic")) g_topic_fmt = v;
        else if (!strcmp(a, "--size")) g_size = atoi(v);
        else if (!strcmp(a, "--mode")) g_raw = !strcmp(v, "raw");
        else if (!strcmp(a, "--rate")) g_rate = atof(v);
        else if (!strcmp(a, "--timeout")) g_timeout = atof(v);
        else if (!strcmp(a, "--path")) g_path = v;
        else if (!strcmp(a, "--batch")) g_batch = atoi(v);
        else usage();
    }
    if (g_nconns < 1 || g_nconns > MAX_CONNS || g_topics < 1 || g_size < 40 || g_size > (1 << 19)) usage();
    if (g_batch < 1 || g_batch > 1000 || (g_batch > 1 && g_raw)) usage();
    g_units = (g_count + g_batch - 1) / g_batch;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &g_addr.sin_addr) != 1) {
        struct hostent *he = gethostbyname(g_host);
        if (!he) { fprintf(stderr, "publisher: cannot resolve %s\n", g_host); return 2; }
        memcpy(&g_addr.sin_addr, he->h_addr_list[0], 4);
    }
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    P = calloc((size_t)g_nconns, sizeof(pconn_t));
    rtt_us = malloc((size_t)(g_count > 0 ? g_count : 1) * sizeof(uint32_t));
    for (int i = 0; i < g_nconns; i++) {
        P[i].fd = -1;
        if (pconn_open(&P[i]) < 0) {
            fprintf(stderr, "publisher: connect failed: %s\n", strerror(errno));
            return 1;
        }
    }

    int64_t t0 = mono_ns();
    int64_t deadline = t0 + (int64_t)(g_timeout * 1e9);
    int64_t next = 0;                /* next event index to send */
    int64_t done = 0;                /* events answered (ok or error) */
    const char *exit_reason = "complete";
    /* pacing timer (rate mode): a timerfd in the epoll set, armed at the next due time */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd >= 0) {
        struct epoll_event tev = {.events = EPOLLIN, .data.u32 = 0xffffffffu};
        epoll_ctl(g_epfd, EPOLL_CTL_ADD, tfd, &tev);
    }
    int64_t *requeue = malloc(sizeof(int64_t) * (size_t)g_nconns * 4 + 64);
    int nrequeue = 0;
    struct epoll_event evs[MAX_CONNS];

    while (done < g_count) {
        int64_t now = mono_ns();
        if (g_stop) { exit_reason = "signal"; break; }
        if (now >= deadline) { exit_reason = "timeout"; break; }

        /* dispatch: requeued events first, then new ones when due */
        for (int k = 0; k < g_nconns; k++) {
            pconn_t *c = &P[k];
            if (c->fd < 0) {
                if (pconn_open(c) < 0) continue;
                n_reconnects++;
            }
            if (c->busy) continue;
            int64_t ev;
            if (nrequeue > 0) ev = requeue[--nrequeue];
            else if (next < g_units) {
                if (g_rate > 0) {
                    int64_t due = t0 + (int64_t)((double)next * g_batch * 1e9 / g_rate);
                    if (due > now) break;
                    if (now - due > max_late_ns) max_late_ns = now - due;
                }
                ev = next++;
            } else break;
            if ((g_batch > 1 ? send_batch(c, ev) : send_event(c, ev)) < 0) {
                pconn_close(c);
                requeue[nrequeue++] = ev;
                if (g_batch == 1) n_sent--;
            }
        }

        int wait_ms = 50;
        if (g_rate > 0 && next < g_units && nrequeue == 0) {
            int idle = 0;
            for (int k = 0; k < g_nconns; k++) idle |= (P[k].fd >= 0 && !P[k].busy);
            if (idle) {   /* wake exactly when the next event is due (no busy-waiting) */
                int64_t due = t0 + (int64_t)((double)next * g_batch * 1e9 / g_rate);
                if (due <= mono_ns()) continue;
                if (tfd >= 0) {
                    struct itimerspec its = {{0, 0}, {due / 1000000000LL, due % 1000000000LL}};
                    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
                } else {
                    wait_ms = 1;
                }
            }
        }
        int nev = epoll_wait(g_epfd, evs, MAX_CONNS, wait_ms);
        if (nev < 0) {
            if (errno == EINTR) continue;
            exit_reason = "error";
            break;
        }
        now = mono_ns();
        for (int k = 0; k < nev; k++) {
            if (evs[k].data.u32 == 0xffffffffu) {   /* pacing timer fired */
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0) { /* nothing */ }
                continue;
            }
            pconn_t *c = &P[evs[k].data.u32];
            if (c->fd < 0) continue;
            ssize_t r = read(c->fd, c->resp + c->resp_len, (size_t)(RESP_CAP - c->resp_len));
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                /* server closed: if a request was in flight without an answer, resend it */
                if (c->busy) { requeue[nrequeue++] = c->event; n_sent -= unit_events(c->event); }
                pconn_close(c);
                continue;
            }
            c->resp_len += (int)r;
            int close_after = 0;
            int st = parse_response(c, &close_after);
            if (st == 0) continue;
            int nev = unit_events(c->event);
            if (st < 0) {
                n_err += nev;
                done += nev;
                pconn_close(c);
                continue;
            }
            if (st < 600) status_counts[st]++;
            if (st >= 200 && st < 300) n_ok += nev;
            else n_err += nev;
            done += nev;
            int64_t rtt = (now - c->sent_ns) / 1000;
            if (n_rtt < g_count) rtt_us[n_rtt++] = (uint32_t)(rtt > 0xffffffffLL ? 0xffffffffLL : rtt);
            c->busy = 0;
            c->resp_len = 0;
            if (close_after) pconn_close(c);
        }
        /* per-request timeout */
        for (int k = 0; k < g_nconns; k++) {
            pconn_t *c = &P[k];
            if (c->fd >= 0 && c->busy && now - c->sent_ns > (int64_t)(g_req_timeout * 1e9)) {
                n_timeouts++;
                n_err += unit_events(c->event);
                done += unit_events(c->event);
                pconn_close(c);
            }
        }
    }
    int64_t t_end = mono_ns();
    for (int k = 0; k < g_nconns; k++) pconn_close(&P[k]);

    qsort(rtt_us, (size_t)n_rtt, sizeof(uint32_t), cmp_u32);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (double)(t_end - t0) / 1e9;
    printf("{\"count\":%lld,\"sent\":%lld,\"ok\":%lld,\"errors\":%lld,\"timeouts\":%lld,"
           "\"reconnects\":%lld,\"wall_s\":%.6f,\"rate\":%.1f,\"target_rate\":%.1f,"
           "\"max_late_ms\":%.3f,\"rtt_us\":{\"p50\":%u,\"p99\":%u,\"max\":%u},\"status\":{",
           (long long)g_count, (long long)n_sent, (long long)n_ok, (long long)n_err, (long long)n_timeouts,
           (long long)n_reconnects, wall, wall > 0 ? (double)n_ok / wall : 0.0, g_rate,
           (double)max_late_ns / 1e6, n_rtt ? rtt_us[n_rtt / 2] : 0,
           n_rtt ? rtt_us[(int64_t)((double)(n_rtt - 1) * 0.99)] : 0, n_rtt ? rtt_us[n_rtt - 1] : 0);
    int first = 1;
    for (int s = 0; s < 600; s++)
        if (status_counts[s]) {
            printf("%s\"%d\":%lld", first ? "" : ",", s, (long long)status_counts[s]);
            first = 0;
        }
    printf("},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"exit\":\"%s\"}\n",
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           exit_reason);
    return 0;
}
