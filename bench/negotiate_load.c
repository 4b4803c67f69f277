/*
 * negotiate_load: HTTP load with a fresh Kerberos (GSSAPI krb5 mech) token on every request,
 * as real Negotiate clients pay it; wrk can only replay one token, which a server with its
 * replay cache on rightly refuses.
 *
 *   negotiate_load HOST PORT PATH SERVICE CONNECTIONS SECONDS [MAX_REQUESTS]
 *
 * SERVICE is the GSSAPI host-based name (HTTP@localhost). The user's credentials come from
 * KRB5CCNAME (after kinit); KRB5_CONFIG as for any Kerberos client. One process per keep-alive
 * connection. Prints one line:
 *
 *   requests=N non2xx=N errors=N retried=N seconds=S rps=R p50_us=N p99_us=N
 *   client_cpu_us_per_req=C
 *
 * requests counts responses of any status; non2xx those outside 200-399 (wrk's rule);
 * errors the attempts that got no response (token, connect, I/O or parse failures); retried
 * the requests sent a second time because the server had closed a kept-alive connection
 * without reading them (as browsers do; a retry's latency counts in its request's). Latency is
 * from the first byte written to the last byte read, like wrk's: the client's own token cost
 * is reported apart, as CPU per request. Exits 1 if no request got a 2xx/3xx response.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
/* Without MAX_REQUESTS the sample area still needs a bound; no Negotiate server comes near. */
#define DEFAULT_MAX_REQUESTS (16u << 20)
#define IO_TIMEOUT_S 10
#define HEAD_MAX 16384

/* One slot per request, claimed before it is sent: the claim is also the count bound. */
struct sample {
    uint32_t latency_us;
    uint16_t status; /* 0: no response (an error) */
    uint8_t done;
};

struct shared {
    uint64_t next_slot; /* atomically incremented by every connection's process */
    uint64_t retried;   /* requests sent again after a keep-alive connection closed unread */
    struct sample samples[];
};

struct config {
    const char *host, *port, *path;
    char host_header[300];
    int connections;
    double seconds;
    uint64_t max_requests;
};

struct conn {
    int fd;
    size_t start, end; /* unread bytes are buf[start..end) */
    char buf[HEAD_MAX];
};

static gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
static gss_name_t target = GSS_C_NO_NAME;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void gss_report(const char *what, OM_uint32 major, OM_uint32 minor)
{
    OM_uint32 ctx = 0, ignored;
    gss_buffer_desc msg;
    fprintf(stderr, "negotiate_load: %s:", what);
    do {
        gss_display_status(&ignored, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &msg);
        fprintf(stderr, " %.*s;", (int)msg.length, (char *)msg.value);
        gss_release_buffer(&ignored, &msg);
    } while (ctx != 0);
    do {
        gss_display_status(&ignored, minor, GSS_C_MECH_CODE, gss_mech_krb5, &ctx, &msg);
        fprintf(stderr, " %.*s", (int)msg.length, (char *)msg.value);
        gss_release_buffer(&ignored, &msg);
    } while (ctx != 0);
    fputc('\n', stderr);
}

/* The user's TGT copied once into a MEMORY cache, so that no request re-reads the file cache
 * and the service ticket fetched by the first token is reused by every later one. */
static int load_credentials(krb5_context kctx, krb5_ccache *mem)
{
    krb5_ccache file = NULL;
    krb5_principal me = NULL;
    krb5_error_code code;
    OM_uint32 major, minor;
    const char *step = "krb5_cc_default";

    *mem = NULL;
    code = krb5_cc_default(kctx, &file);
    if (!code) {
        step = "krb5_cc_get_principal";
        code = krb5_cc_get_principal(kctx, file, &me);
    }
    if (!code) {
        step = "krb5_cc_new_unique";
        code = krb5_cc_new_unique(kctx, "MEMORY", NULL, mem);
    }
    if (!code) {
        step = "krb5_cc_initialize";
        code = krb5_cc_initialize(kctx, *mem, me);
    }
    if (!code) {
        step = "krb5_cc_copy_creds";
        code = krb5_cc_copy_creds(kctx, file, *mem);
    }
    if (code) {
        const char *msg = krb5_get_error_message(kctx, code);
        fprintf(stderr, "negotiate_load: %s (KRB5CCNAME=%s): %s\n", step,
                getenv("KRB5CCNAME") ? getenv("KRB5CCNAME") : "unset", msg);
        krb5_free_error_message(kctx, msg);
    }
    if (me)
        krb5_free_principal(kctx, me);
    if (file)
        krb5_cc_close(kctx, file);
    if (code)
        return -1;
    major = gss_krb5_import_cred(&minor, *mem, NULL, NULL, &cred);
    if (GSS_ERROR(major)) {
        gss_report("gss_krb5_import_cred", major, minor);
        return -1;
    }
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t base64(const unsigned char *in, size_t n, char *out)
{
    char *o = out;
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return (size_t)(o - out);
}

/* A whole request with a new security context's first token; malloc'd, NULL on failure. */
static char *build_request(const struct config *cfg, size_t *len)
{
    static int reported;
    gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
    gss_buffer_desc token = GSS_C_EMPTY_BUFFER;
    OM_uint32 major, minor, ignored;
    char *req = NULL, *b64token;
    size_t cap;
    int n;

    major = gss_init_sec_context(&minor, cred, &ctx, target, gss_mech_krb5, 0, GSS_C_INDEFINITE,
                                 GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, NULL, &token, NULL,
                                 NULL);
    if (GSS_ERROR(major)) {
        if (!reported++) /* per process: the first says why, the error count says how often */
            gss_report("gss_init_sec_context", major, minor);
    } else {
        cap = strlen(cfg->path) + strlen(cfg->host_header) + 4 * (token.length / 3 + 1) + 128;
        req = malloc(cap);
        if (req) {
            n = snprintf(req, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Negotiate ",
                         cfg->path, cfg->host_header);
            b64token = req + n;
            n += (int)base64(token.value, token.length, b64token);
            n += snprintf(req + n, cap - (size_t)n, "\r\n\r\n");
            *len = (size_t)n;
        }
    }
    gss_release_buffer(&ignored, &token);
    if (ctx != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&ignored, &ctx, GSS_C_NO_BUFFER);
    return req;
}

static int connect_to(const struct config *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    int fd = -1, one = 1, rc;

    if ((rc = getaddrinfo(cfg->host, cfg->port, &hints, &res)) != 0) {
        fprintf(stderr, "negotiate_load: %s:%s: %s\n", cfg->host, cfg->port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* More bytes into c->buf; 0 at EOF, -1 on error or a full buffer. */
static ssize_t fill(struct conn *c)
{
    ssize_t r;
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    if (c->end == sizeof c->buf)
        return -1;
    do
        r = recv(c->fd, c->buf + c->end, sizeof c->buf - c->end, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        c->end += (size_t)r;
    return r;
}

/* The next CRLF-terminated line, NUL-terminated in place, or NULL. */
static char *read_line(struct conn *c)
{
    for (;;) {
        char *line = c->buf + c->start;
        char *eol = memmem(line, c->end - c->start, "\r\n", 2);
        if (eol) {
            *eol = '\0';
            c->start = (size_t)(eol + 2 - c->buf);
            return line;
        }
        if (fill(c) <= 0)
            return NULL;
    }
}

/* Consumes n body bytes (n < 0: until EOF). */
static int skip(struct conn *c, long long n)
{
    for (;;) {
        size_t have = c->end - c->start;
        if (n >= 0 && (unsigned long long)n <= have) {
            c->start += (size_t)n;
            return 0;
        }
        if (n > 0)
            n -= (long long)have;
        c->start = c->end;
        ssize_t r = fill(c);
        if (r == 0)
            return n < 0 ? 0 : -1;
        if (r < 0)
            return -1;
    }
}

static int skip_chunked(struct conn *c)
{
    for (;;) {
        char *line = read_line(c), *end;
        if (!line)
            return -1;
        long long size = strtoll(line, &end, 16);
        if (end == line || size < 0)
            return -1;
        if (size == 0)
            break;
        if (skip(c, size) < 0 || !(line = read_line(c)) || *line)
            return -1;
    }
    for (;;) { /* trailers up to the empty line */
        char *line = read_line(c);
        if (!line)
            return -1;
        if (!*line)
            return 0;
    }
}

/* One response; its status, or 0 on failure. *keep: the connection may carry another. */
static int read_response(struct conn *c, int *keep)
{
    char *line = read_line(c);
    long long length = -1;
    int minor, status, chunked = 0, close_after = 0, keep_alive = 0;

    if (!line || sscanf(line, "HTTP/1.%d %d", &minor, &status) != 2)
        return 0;
    while ((line = read_line(c)) && *line) {
        char *value = strchr(line, ':');
        if (!value)
            continue;
        *value++ = '\0';
        value += strspn(value, " \t");
        if (!strcasecmp(line, "Content-Length"))
            length = strtoll(value, NULL, 10);
        else if (!strcasecmp(line, "Transfer-Encoding") && strcasestr(value, "chunked"))
            chunked = 1;
        else if (!strcasecmp(line, "Connection") && strcasestr(value, "close"))
            close_after = 1;
        else if (!strcasecmp(line, "Connection") && strcasestr(value, "keep-alive"))
            keep_alive = 1;
    }
    if (!line)
        return 0;
    if (minor == 0 && !keep_alive)
        close_after = 1;
    if (chunked ? skip_chunked(c) : skip(c, length)) /* no length, not chunked: until EOF */
        return 0;
    *keep = !close_after && (chunked || length >= 0);
    return status;
}

/* One request with a new token on c (connecting first if it has no connection); NULL on
 * success with *status and *keep set, else what failed. */
static const char *exchange(const struct config *cfg, struct conn *c, int *status, int *keep)
{
    size_t len;
    char *req = build_request(cfg, &len);
    const char *failed = NULL;

    /* A new connection starts with an empty buffer, and an emptied one starts at 0 again:
     * c->end == 0 after a failure then means no byte of this response came back. */
    if ((req && c->fd < 0 && (c->fd = connect_to(cfg)) >= 0) || c->start == c->end)
        c->start = c->end = 0;
    if (!req)
        failed = "no token";
    else if (c->fd < 0)
        failed = "connect";
    else if (send_all(c->fd, req, len))
        failed = "send";
    else if (!(*status = read_response(c, keep)))
        failed = "no complete response";
    free(req);
    return failed;
}

static void drop_connection(struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* One connection's loop, in its own process, until the deadline or the request bound. */
static void run_connection(const struct config *cfg, struct shared *sh, double deadline)
{
    struct conn *c = calloc(1, sizeof *c);
    int reported = 0;

    if (!c)
        _exit(1);
    c->fd = -1;
    while (now_s() < deadline) {
        uint64_t slot = __atomic_fetch_add(&sh->next_slot, 1, __ATOMIC_RELAXED);
        struct sample *s;
        const char *failed;
        double t0;
        int keep = 0, status = 0, reused;

        if (slot >= cfg->max_requests)
            break;
        s = &sh->samples[slot];
        reused = c->fd >= 0;
        t0 = now_s();
        failed = exchange(cfg, c, &status, &keep);
        if (failed && reused && c->end == 0) {
            /* Closed before a byte of the response on a connection that carried earlier ones:
             * httpd's event MPM drops keep-alive connections while all its workers are busy,
             * and the request was never read. Browsers and curl send it again on a new
             * connection, and so does this client, once, with a new token. */
            drop_connection(c);
            __atomic_fetch_add(&sh->retried, 1, __ATOMIC_RELAXED);
            failed = exchange(cfg, c, &status, &keep);
        }
        s->latency_us = (uint32_t)((now_s() - t0) * 1e6);
        s->status = (uint16_t)status;
        __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
        if (!keep)
            drop_connection(c);
        if (failed) {
            if (!reported++)
                fprintf(stderr, "negotiate_load: %s (errno: %s)\n", failed, strerror(errno));
            usleep(10000); /* a refusing server is not to be spun on */
        }
    }
    drop_connection(c);
    free(c);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double cpu_s(const struct rusage *ru)
{
    return ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 + ru->ru_stime.tv_sec +
           ru->ru_stime.tv_usec / 1e6;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    char *end;
    if (argc < 7 || argc > 8)
        return -1;
    cfg->host = argv[1];
    cfg->port = argv[2];
    cfg->path = argv[3];
    if (cfg->path[0] != '/' || strpbrk(cfg->path, " \r\n"))
        return -1;
    snprintf(cfg->host_header, sizeof cfg->host_header, "%s:%s", cfg->host, cfg->port);
    cfg->connections = (int)strtol(argv[5], &end, 10);
    if (*end || cfg->connections < 1 || cfg->connections > MAX_CONNECTIONS)
        return -1;
    cfg->seconds = strtod(argv[6], &end);
    if (*end || !(cfg->seconds > 0))
        return -1;
    cfg->max_requests = DEFAULT_MAX_REQUESTS;
    if (argc == 8) {
        cfg->max_requests = strtoull(argv[7], &end, 10);
        if (*end || cfg->max_requests < 1 || cfg->max_requests > DEFAULT_MAX_REQUESTS)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct shared *sh;
    size_t map_len;
    krb5_context kctx;
    krb5_ccache mem = NULL;
    gss_buffer_desc name;
    OM_uint32 major, minor;
    struct rusage self, kids;
    uint64_t n, requests = 0, non2xx = 0, errors = 0;
    uint32_t *lat;
    double start, elapsed, deadline;
    char *probe;
    size_t probe_len;
    pid_t pids[MAX_CONNECTIONS];
    int i, failed = 0;

    if (parse_args(argc, argv, &cfg)) {
        fprintf(stderr, "usage: %s HOST PORT PATH SERVICE CONNECTIONS SECONDS [MAX_REQUESTS]\n"
                        "  e.g. %s 127.0.0.1 8080 /bench/index.html HTTP@localhost 32 10\n",
                argv[0], argv[0]);
        return 2;
    }
    if (krb5_init_context(&kctx)) {
        fprintf(stderr, "negotiate_load: krb5_init_context failed\n");
        return 2;
    }
    if (load_credentials(kctx, &mem))
        return 2;
    name.value = argv[4];
    name.length = strlen(argv[4]);
    major = gss_import_name(&minor, &name, GSS_C_NT_HOSTBASED_SERVICE, &target);
    if (GSS_ERROR(major)) {
        gss_report("gss_import_name", major, minor);
        return 2;
    }
    /* Fetches the service ticket into the memory cache before the fork, so every connection
     * inherits it instead of asking the KDC itself, and a broken realm fails here, once. */
    probe = build_request(&cfg, &probe_len);
    if (!probe)
        return 2;
    free(probe);

    map_len = sizeof *sh + cfg.max_requests * sizeof(struct sample);
    sh = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
              -1, 0);
    if (sh == MAP_FAILED) {
        perror("negotiate_load: mmap");
        return 2;
    }
    fflush(NULL);
    start = now_s();
    deadline = start + cfg.seconds;
    for (i = 0; i < cfg.connections; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            run_connection(&cfg, sh, deadline);
            _exit(0);
        }
        if (pids[i] < 0) {
            perror("negotiate_load: fork");
            failed = 1;
            break;
        }
    }
    while (i-- > 0)
        if (pids[i] > 0) {
            int st;
            while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
                ;
            failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
    elapsed = now_s() - start;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);

    n = sh->next_slot < cfg.max_requests ? sh->next_slot : cfg.max_requests;
    lat = malloc((n ? n : 1) * sizeof *lat);
    if (!lat)
        return 2;
    for (uint64_t k = 0; k < n; k++) {
        const struct sample *s = &sh->samples[k];
        if (!s->done) /* claimed past the bound or the deadline, never sent */
            continue;
        if (!s->status) {
            errors++;
            continue;
        }
        lat[requests++] = s->latency_us;
        non2xx += s->status < 200 || s->status > 399;
    }
    qsort(lat, requests, sizeof *lat, cmp_u32);
#define PCT(p) (requests ? lat[(requests * (p) + 99) / 100 - 1] : 0)
    printf("requests=%llu non2xx=%llu errors=%llu retried=%llu seconds=%.3f rps=%.1f p50_us=%u "
           "p99_us=%u client_cpu_us_per_req=%.1f\n",
           (unsigned long long)requests, (unsigned long long)non2xx, (unsigned long long)errors,
           (unsigned long long)sh->retried,
           elapsed, requests / elapsed, PCT(50), PCT(99),
           requests ? (cpu_s(&self) + cpu_s(&kids)) * 1e6 / (double)(requests + errors) : 0.0);
    fflush(stdout);

    free(lat);
    munmap(sh, map_len);
    gss_release_name(&minor, &target);
    gss_release_cred(&minor, &cred);
    krb5_cc_destroy(kctx, mem);
    krb5_free_context(kctx);
    return failed || requests == non2xx ? 1 : 0;
}
