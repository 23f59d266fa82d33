/* Name resolution: weft_getaddrinfo. Numeric addresses are parsed at once by libc; names go to
 * c-ares, one channel per loop, whose sockets the loop's poller watches and whose timeouts a
 * call_later handle keeps. A name c-ares does not find goes to getaddrinfo(3) on the executor
 * (src/thread/files.c) when nsswitch.conf names sources c-ares does not read (mDNS, LDAP, ...).
 * Every list handed out is built here, one malloc per entry, so that weft_freeaddrinfo frees
 * it whichever path produced it. */
#define _GNU_SOURCE
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net.h"

/* An entry of a returned list: the addrinfo, its address and (first entry only, with
 * AI_CANONNAME) the canonical name, in one block. */
typedef struct ai_block {
    struct addrinfo ai;
    struct sockaddr_storage addr;
    char name[];
} ai_block_t;

typedef struct dns dns_t;

/* A socket c-ares asked us to watch. */
typedef struct dns_sock {
    weft__io_t io;
    dns_t *dns;
    struct dns_sock *next;
} dns_sock_t;

/* The loop's resolver, in loop->dns. */
struct dns {
    weft_loop_t *loop;
    ares_channel channel;
    dns_sock_t *socks;
    weft_handle_t *timer;                   /* armed while c-ares has queries */
    struct ares_addr_port_node *defaults;   /* resolv.conf's servers, for set_servers(NULL) */
    /* A failure c-ares cannot be told of (no memory for a watch or the timer): the queries
     * are cancelled once the c-ares call in progress returns, and fail with this code. */
    int fail_rc;
    int cancel_rc;                          /* what ARES_ECANCELLED means, while cancelling */
};

/* One weft_getaddrinfo call. On the heap, not the task's stack: a task cancelled while the
 * query is in flight leaves it behind, and the c-ares callback frees it later. */
typedef struct dns_query {
    dns_t *dns;
    weft_task_t *task;            /* NULL once orphaned: the callback frees everything */
    struct ares_addrinfo *result; /* c-ares's answer, converted by the task */
    int status;                   /* c-ares's status */
    int cancel_rc;                /* with ARES_ECANCELLED: why */
    bool done;
    bool waiting;                 /* the task is suspended on it: wake it */
} dns_query_t;

/* ---- library and channel ---------------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;

static void lib_init(void) { lib_status = ares_library_init(ARES_LIB_INIT_ALL); }

static void dns_after(dns_t *dns);

static dns_sock_t **sock_find(dns_t *dns, int fd) {
    dns_sock_t **pp = &dns->socks;
    while (*pp && (*pp)->io.fd != fd)
        pp = &(*pp)->next;
    return pp;
}

static void sock_free(dns_t *dns, dns_sock_t **pp) {
    dns_sock_t *s = *pp;
    *pp = s->next;
    s->io.events = 0;
    weft__poll_update(&dns->loop->poll, &s->io);
    free(s);
}

/* Called from the poller's dispatch: only c-ares's own work and task wake-ups happen here. The
 * io may be freed by ares_process_fd (c-ares closing the socket): not touched after. */
static void sock_event(weft__io_t *io, unsigned events) {
    dns_sock_t *s = weft__container_of(io, dns_sock_t, io);
    dns_t *dns = s->dns;
    ares_socket_t fd = io->fd;
    bool err = events & (WEFT__POLL_ERR | WEFT__POLL_HUP);
    ares_socket_t r = (io->events & WEFT__POLL_IN) && (err || (events & WEFT__POLL_IN))
                          ? fd : ARES_SOCKET_BAD;
    ares_socket_t w = (io->events & WEFT__POLL_OUT) && (err || (events & WEFT__POLL_OUT))
                          ? fd : ARES_SOCKET_BAD;
    ares_process_fd(dns->channel, r, w);
    dns_after(dns);
}

/* c-ares's ARES_OPT_SOCK_STATE_CB: what to watch on `fd`; nothing means it is about to be
 * closed. Level-triggered, as c-ares expects: it reads one datagram per call. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable) {
    dns_t *dns = data;
    dns_sock_t **pp = sock_find(dns, fd), *s = *pp;
    int rc;
    if (!readable && !writable) {
        if (s)
            sock_free(dns, pp);
        return;
    }
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) {
            dns->fail_rc = WEFT_ENOMEM;
            return;
        }
        s->io.fd = fd;
        s->io.cb = sock_event;
        s->dns = dns;
        s->next = dns->socks;
        dns->socks = s;
    }
    s->io.events = (readable ? WEFT__POLL_IN : 0u) | (writable ? WEFT__POLL_OUT : 0u);
    if ((rc = weft__poll_update(&dns->loop->poll, &s->io)) < 0) {
        sock_free(dns, sock_find(dns, fd));
        dns->fail_rc = rc;
    }
}

static void timer_fire(void *arg) {
    dns_t *dns = arg;
    weft_handle_unref(dns->timer);
    dns->timer = NULL;
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_after(dns);
}

static void timer_stop(dns_t *dns) {
    if (dns->timer) {
        weft_handle_cancel(dns->timer);
        weft_handle_unref(dns->timer);
        dns->timer = NULL;
    }
}

/* After every call into c-ares: fails the queries if something could not be set up, and sets
 * the timer to c-ares's next deadline. A timer already due no later is kept: firing early costs
 * one look at the queries, where replacing it costs an allocation. */
static void dns_after(dns_t *dns) {
    struct timeval tv;
    weft_handle_t *h;
    double when;
    int rc;
    if (dns->fail_rc) {
        dns->cancel_rc = dns->fail_rc;
        dns->fail_rc = 0;
        ares_cancel(dns->channel);
        dns->cancel_rc = 0;
    }
    if (!ares_timeout(dns->channel, NULL, &tv)) {
        timer_stop(dns);
        return;
    }
    when = weft_loop_time(dns->loop) + (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
    if (dns->timer && weft_handle_when(dns->timer) <= when)
        return;
    if ((rc = weft_call_at(dns->loop, when, timer_fire, dns, &h)) < 0) {
        if (dns->timer)
            return; /* an earlier one is armed: it tries again when it fires */
        weft__log("resolver: cannot arm the timer (%s); failing its queries", weft_strerror(rc));
        dns->fail_rc = rc;
        dns_after(dns);
        return;
    }
    timer_stop(dns);
    dns->timer = h;
}

static int ares_code(int status) {
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENOMEM:
        return WEFT_ENOMEM;
    case ARES_ENOTIMP: /* ares_set_servers* while queries are pending */
        return WEFT_EBUSY;
    default:
        return WEFT_EINVAL;
    }
}

/* The loop's resolver, created on first use. */
static int dns_get(weft_loop_t *loop, dns_t **out) {
    struct ares_options opts;
    dns_t *dns = loop->dns;
    int status;
    if (dns) {
        *out = dns;
        return 0;
    }
    pthread_once(&lib_once, lib_init);
    if (lib_status != ARES_SUCCESS) {
        weft__set_errmsg(ares_strerror(lib_status));
        return WEFT_EIO;
    }
    if (!(dns = calloc(1, sizeof *dns)))
        return WEFT_ENOMEM;
    dns->loop = loop;
    memset(&opts, 0, sizeof opts);
    opts.sock_state_cb = sock_state;
    opts.sock_state_cb_data = dns;
    status = ares_init_options(&dns->channel, &opts, ARES_OPT_SOCK_STATE_CB);
    if (status == ARES_SUCCESS)
        status = ares_get_servers_ports(dns->channel, &dns->defaults);
    if (status != ARES_SUCCESS) {
        if (dns->channel)
            ares_destroy(dns->channel);
        free(dns);
        if (status == ARES_ENOMEM)
            return WEFT_ENOMEM;
        weft__set_errmsg(ares_strerror(status));
        return WEFT_EIO;
    }
    loop->dns = dns;
    *out = dns;
    return 0;
}

void weft__dns_loop_close(weft_loop_t *loop) {
    dns_t *dns = loop->dns;
    if (!dns)
        return;
    /* Pending queries' callbacks run with ARES_EDESTRUCTION: their tasks are gone (abandoned
     * first), so each frees its own query. c-ares reports its sockets closed as it goes. */
    ares_destroy(dns->channel);
    while (dns->socks)
        sock_free(dns, &dns->socks);
    timer_stop(dns);
    if (dns->defaults)
        ares_free_data(dns->defaults);
    free(dns);
    loop->dns = NULL;
}

int weft_resolver_set_servers(weft_loop_t *loop, const char *servers) {
    dns_t *dns;
    int rc, status;
    if (!loop || (servers && !*servers))
        return WEFT_EINVAL;
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if ((rc = dns_get(loop, &dns)) < 0)
        return rc;
    status = servers ? ares_set_servers_ports_csv(dns->channel, servers)
                     : ares_set_servers_ports(dns->channel, dns->defaults);
    return ares_code(status);
}

/* ---- results ---------------------------------------------------------------------------- */

void weft_freeaddrinfo(struct addrinfo *res) {
    while (res) {
        struct addrinfo *next = res->ai_next;
        free(res); /* the entry's block, address and name included */
        res = next;
    }
}

/* Appends an entry at *tailp. */
static int ai_append(struct addrinfo ***tailp, int flags, int family, int socktype, int protocol,
                     const struct sockaddr *addr, socklen_t addrlen, const char *canon) {
    size_t namelen = canon ? strlen(canon) + 1 : 0;
    ai_block_t *b;
    if (addrlen > sizeof b->addr)
        return WEFT_EAFNOSUPPORT;
    if (!(b = malloc(sizeof *b + namelen)))
        return WEFT_ENOMEM;
    memset(&b->ai, 0, sizeof b->ai);
    b->ai.ai_flags = flags;
    b->ai.ai_family = family;
    b->ai.ai_socktype = socktype;
    b->ai.ai_protocol = protocol;
    b->ai.ai_addrlen = addrlen;
    b->ai.ai_addr = (struct sockaddr *)&b->addr;
    memcpy(&b->addr, addr, addrlen);
    if (canon) {
        memcpy(b->name, canon, namelen);
        b->ai.ai_canonname = b->name;
    }
    **tailp = &b->ai;
    *tailp = &b->ai.ai_next;
    return 0;
}

int weft__addrinfo_copy(const struct addrinfo *src, struct addrinfo **res) {
    struct addrinfo *head = NULL, **tail = &head;
    for (; src; src = src->ai_next) {
        int rc = ai_append(&tail, src->ai_flags, src->ai_family, src->ai_socktype,
                           src->ai_protocol, src->ai_addr, src->ai_addrlen, src->ai_canonname);
        if (rc < 0) {
            weft_freeaddrinfo(head);
            return rc;
        }
    }
    *res = head;
    return 0;
}

static int copy_ares(const struct ares_addrinfo *src, const struct addrinfo *hints,
                     const char *host, struct addrinfo **res) {
    struct addrinfo *head = NULL, **tail = &head;
    const char *canon = NULL;
    if (hints->ai_flags & AI_CANONNAME)
        canon = src->name ? src->name : host;
    for (const struct ares_addrinfo_node *n = src->nodes; n; n = n->ai_next) {
        int rc = ai_append(&tail, hints->ai_flags, n->ai_family, hints->ai_socktype,
                           hints->ai_protocol, n->ai_addr, n->ai_addrlen, canon);
        if (rc < 0) {
            weft_freeaddrinfo(head);
            return rc;
        }
        canon = NULL;
    }
    *res = head;
    return 0;
}

/* ---- errors ----------------------------------------------------------------------------- */

static int fail(int code, const char *fmt, ...) WEFT_PRINTF(2, 3);
static int fail(int code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    weft__set_errmsg(msg);
    return code;
}

static const char *str(const char *s) { return s ? s : "(null)"; }

int weft__gai_fail(int eai, int err, const char *host, const char *port) {
    const char *what = gai_strerror(eai);
    switch (eai) {
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return fail(WEFT_ENONAME, "%s: %s", str(host), what);
    case EAI_SERVICE:
        return fail(WEFT_ENONAME, "%s: %s", str(port), what);
    case EAI_FAMILY:
        return fail(WEFT_EAFNOSUPPORT, "%s", what);
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return fail(WEFT_EINVAL, "%s", what);
    case EAI_MEMORY:
        return WEFT_ENOMEM;
    case EAI_AGAIN:
        return fail(WEFT_EAGAIN, "%s: %s", str(host), what);
    case EAI_SYSTEM:
        return fail(err ? -err : WEFT_EIO, "%s: %s", str(host), strerror(err));
    default:
        return fail(WEFT_EIO, "%s: %s", str(host), what);
    }
}

static int ares_fail(const dns_query_t *q, const char *host, const char *port) {
    switch (q->status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
    case ARES_EBADNAME:
        return fail(WEFT_ENONAME, "%s: Name or service not known", host);
    case ARES_ENODATA:
        return fail(WEFT_ENONAME, "%s: No address associated with hostname", host);
    case ARES_ESERVICE:
        return fail(WEFT_ENONAME, "%s: Servname not supported for ai_socktype", str(port));
    case ARES_ETIMEOUT:
        return fail(WEFT_ETIMEDOUT, "%s: DNS query timed out", host);
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ECONNREFUSED:
    case ARES_EFORMERR:
    case ARES_ENOTIMP:
    case ARES_EBADRESP:
    case ARES_EOF:
        return fail(WEFT_EAGAIN, "%s: Temporary failure in name resolution (%s)", host,
                    ares_strerror(q->status));
    case ARES_ENOMEM:
        return WEFT_ENOMEM;
    case ARES_EBADFAMILY:
    case ARES_EBADHINTS:
    case ARES_EBADFLAGS:
        return fail(WEFT_EINVAL, "%s: %s", host, ares_strerror(q->status));
    case ARES_ECANCELLED:
        if (q->cancel_rc == WEFT_ENOMEM)
            return fail(WEFT_ENOMEM, "%s: out of memory in the resolver", host);
        return fail(q->cancel_rc ? q->cancel_rc : WEFT_EIO, "%s: resolver failure: %s", host,
                    weft_strerror(q->cancel_rc ? q->cancel_rc : WEFT_EIO));
    default:
        return fail(WEFT_EIO, "%s: %s", host, ares_strerror(q->status));
    }
}

/* ---- queries ---------------------------------------------------------------------------- */

static void query_free(dns_query_t *q) {
    if (q->result)
        ares_freeaddrinfo(q->result);
    free(q);
}

/* c-ares's callback: at most once per query, from inside a c-ares call. */
static void query_done(void *arg, int status, int timeouts, struct ares_addrinfo *result) {
    dns_query_t *q = arg;
    (void)timeouts;
    if (!q->task) { /* the caller left: nobody wants the answer */
        if (result)
            ares_freeaddrinfo(result);
        free(q);
        return;
    }
    q->status = status;
    q->result = result;
    q->done = true;
    if (status == ARES_ECANCELLED)
        q->cancel_rc = q->dns->cancel_rc;
    if (q->waiting)
        weft__task_wake(q->task, 0);
}

/* The task is destroyed while it waits (its loop closes): the query outlives it. */
static void query_abort(weft__run_t *run, void *arg) {
    dns_query_t *q = arg;
    (void)run;
    if (q->done)
        query_free(q); /* answered, but the task never ran again to take it */
    else
        q->task = NULL;
}

static bool all_digits(const char *s) {
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

#define SUPPORTED_FLAGS \
    (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | AI_ALL | \
     AI_ADDRCONFIG)

static int ares_flags(int flags) {
    return (flags & AI_PASSIVE ? ARES_AI_PASSIVE : 0) |
           (flags & AI_CANONNAME ? ARES_AI_CANONNAME : 0) |
           (flags & AI_NUMERICSERV ? ARES_AI_NUMERICSERV : 0) |
           (flags & AI_V4MAPPED ? ARES_AI_V4MAPPED : 0) | (flags & AI_ALL ? ARES_AI_ALL : 0) |
           (flags & AI_ADDRCONFIG ? ARES_AI_ADDRCONFIG : 0);
}

/* ---- localhost on c-ares before 1.19 ---------------------------------------------------- *
 * c-ares answers "localhost" and "*.localhost" itself (RFC 6761: /etc/hosts, else the loopback
 * address), but before 1.19 it leaks the name whenever /etc/hosts has no entry of the family
 * asked (c-ares issue #439), as with an /etc/hosts that maps localhost to 127.0.0.1 only and a
 * query for AF_INET6. On those versions such names are answered here the same way, with
 * c-ares's own hosts-file reader, and never reach ares_getaddrinfo. */

#define ARES_LOCALHOST_FIXED 0x011300 /* 1.19.0 */

static bool is_localhost(const char *name) {
    size_t n = strlen(name);
    return strcasecmp(name, "localhost") == 0 ||
           (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0);
}

/* Appends the entries for one numeric address; *canon goes to the first and is then used up. */
static int append_numeric(struct addrinfo ***tailp, const char *addr, const char *port,
                          const struct addrinfo *hints, const char **canon) {
    struct addrinfo lh = *hints, *lres = NULL;
    int rc, err;
    lh.ai_flags = (hints->ai_flags & ~AI_CANONNAME) | AI_NUMERICHOST |
                  (!port || all_digits(port) ? AI_NUMERICSERV : 0);
    errno = 0;
    rc = getaddrinfo(addr, port, &lh, &lres);
    err = errno;
    if (rc != 0)
        return weft__gai_fail(rc, err, addr, port);
    for (struct addrinfo *p = lres; p && rc == 0; p = p->ai_next) {
        rc = ai_append(tailp, hints->ai_flags, p->ai_family, p->ai_socktype, p->ai_protocol,
                       p->ai_addr, p->ai_addrlen, *canon);
        *canon = NULL;
    }
    freeaddrinfo(lres);
    return rc;
}

static int resolve_localhost(dns_t *dns, const char *host, const char *port,
                             const struct addrinfo *hints, struct addrinfo **res) {
    struct hostent *he[2] = {NULL, NULL};
    struct addrinfo *head = NULL, **tail = &head;
    const char *canon = NULL;
    int fams[2], nfam = 0, rc = 0;
    bool found = false;
    if (hints->ai_family != AF_INET)
        fams[nfam++] = AF_INET6;
    if (hints->ai_family != AF_INET6)
        fams[nfam++] = AF_INET;
    for (int i = 0; i < nfam; i++) {
        int status = ares_gethostbyname_file(dns->channel, host, fams[i], &he[i]);
        if (status == ARES_ENOMEM) {
            rc = WEFT_ENOMEM;
            goto out;
        }
        if (status != ARES_SUCCESS)
            he[i] = NULL;
        else if (!canon)
            canon = he[i]->h_name;
        found |= status == ARES_SUCCESS;
    }
    if (!(hints->ai_flags & AI_CANONNAME))
        canon = NULL;
    else if (!canon)
        canon = host;
    for (int i = 0; i < nfam && rc == 0; i++) {
        char text[INET6_ADDRSTRLEN];
        if (!found) {
            rc = append_numeric(&tail, fams[i] == AF_INET6 ? "::1" : "127.0.0.1", port, hints,
                                &canon);
            continue;
        }
        for (char **a = he[i] ? he[i]->h_addr_list : NULL; a && *a && rc == 0; a++)
            if (inet_ntop(fams[i], *a, text, sizeof text))
                rc = append_numeric(&tail, text, port, hints, &canon);
    }
out:
    for (int i = 0; i < nfam; i++)
        if (he[i])
            ares_free_hostent(he[i]);
    if (rc < 0) {
        weft_freeaddrinfo(head);
        return rc;
    }
    *res = head;
    return 0;
}

static int resolve_name(weft_task_t *t, const char *host, const char *port,
                        const struct addrinfo *hints, struct addrinfo **res) {
    struct ares_addrinfo_hints ah = {ares_flags(hints->ai_flags), hints->ai_family,
                                     hints->ai_socktype, hints->ai_protocol};
    dns_query_t *q;
    dns_t *dns;
    int rc = dns_get(t->loop, &dns);
    if (rc < 0)
        return rc;
    if (is_localhost(host)) {
        int version;
        ares_version(&version);
        if (version < ARES_LOCALHOST_FIXED)
            return resolve_localhost(dns, host, port, hints, res);
    }
    if (!(q = calloc(1, sizeof *q)))
        return WEFT_ENOMEM;
    q->dns = dns;
    q->task = t;
    /* The callback may run before this returns: /etc/hosts, or a failure found at once. */
    ares_getaddrinfo(dns->channel, host, port, &ah, query_done, q);
    dns_after(dns);
    rc = 0;
    if (!q->done) {
        q->waiting = true;
        t->run->abort_wait = query_abort;
        t->run->abort_arg = q;
        WEFT__WAITING(t, "getaddrinfo", NULL);
        do
            rc = weft__suspend(t);
        while (rc >= 0 && !q->done);
        t->run->abort_wait = NULL;
        q->waiting = false;
        if (!q->done) { /* cancelled, or a timeout scope fired: the callback frees it */
            q->task = NULL;
            return rc;
        }
    }
    if (rc < 0) { /* cancelled after the answer came */
        query_free(q);
        return rc;
    }
    if (q->status == ARES_SUCCESS) {
        rc = copy_ares(q->result, hints, host, res);
        if (rc == 0 && !*res)
            rc = fail(WEFT_ENONAME, "%s: No address associated with hostname", host);
    } else if ((q->status == ARES_ENOTFOUND || q->status == ARES_ENONAME ||
                q->status == ARES_ENODATA) && weft__nss_hosts_beyond_dns()) {
        /* Not in /etc/hosts nor DNS, but nsswitch.conf names other sources: ask libc. */
        query_free(q);
        return weft_getaddrinfo_system(host, port, hints, res);
    } else {
        rc = ares_fail(q, host, port);
    }
    query_free(q);
    return rc;
}

int weft__addrinfo_hints(const char *host, const char *port, const struct addrinfo *hints,
                         struct addrinfo **res, struct addrinfo *hp) {
    struct addrinfo h = {0};
    if (!res)
        return WEFT_EINVAL;
    *res = NULL;
    if (!host && !port)
        return fail(WEFT_EINVAL, "neither host nor port given");
    if (!weft__current())
        return WEFT_EPERM;
    if (hints) {
        h.ai_flags = hints->ai_flags;
        h.ai_family = hints->ai_family;
        h.ai_socktype = hints->ai_socktype;
        h.ai_protocol = hints->ai_protocol;
    }
    if (h.ai_flags & ~SUPPORTED_FLAGS)
        return fail(WEFT_EINVAL, "unsupported hints flags 0x%x", h.ai_flags & ~SUPPORTED_FLAGS);
    if (h.ai_family != AF_UNSPEC && h.ai_family != AF_INET && h.ai_family != AF_INET6)
        return fail(WEFT_EAFNOSUPPORT, "address family %d not supported", h.ai_family);
    /* socktype 0: stream sockets only (datagram if the protocol is UDP), not getaddrinfo's one
     * entry per socket type, so that every address appears once. */
    if (h.ai_socktype == 0)
        h.ai_socktype = h.ai_protocol == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    if (h.ai_protocol == 0)
        h.ai_protocol = h.ai_socktype == SOCK_STREAM  ? IPPROTO_TCP
                        : h.ai_socktype == SOCK_DGRAM ? IPPROTO_UDP : 0;
    *hp = h;
    return 0;
}

int weft_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
                     struct addrinfo **res) {
    struct addrinfo h, *lres = NULL;
    weft_task_t *t = weft__current();
    int rc, err;
    if ((rc = weft__addrinfo_hints(host, port, hints, res, &h)) < 0)
        return rc;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;

    /* Numeric hosts (and none) never block in libc: no look-up happens. A service name is
     * read from /etc/services, a local file, as c-ares would do it too. */
    {
        struct addrinfo lh = h;
        lh.ai_flags |= AI_NUMERICHOST | (!port || all_digits(port) ? AI_NUMERICSERV : 0);
        errno = 0;
        rc = getaddrinfo(host, port, &lh, &lres);
        err = errno;
    }
    if (rc == 0) {
        rc = weft__addrinfo_copy(lres, res);
        freeaddrinfo(lres);
        return rc;
    }
    if (rc != EAI_NONAME || !host || (h.ai_flags & AI_NUMERICHOST))
        return weft__gai_fail(rc, err, host, port);
    return resolve_name(t, host, port, &h, res);
}
