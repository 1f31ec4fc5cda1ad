/* Loaded with LD_PRELOAD into a local Ray cluster's processes (relustudy.ray_executor): every
 * server socket they bind goes on the loopback interface, so nothing outside this machine can
 * reach them. Ray 2.60's GCS, raylet and workers bind the wildcard address (::, dual-stack), even
 * with a node address of 127.0.0.1, and its runtime-env agent the machine's external address.
 *
 * bind(): an IPv4 address other than 127.x -> 127.0.0.1; the IPv6 wildcard (or a mapped IPv4
 * address other than 127.x) -> ::ffff:127.0.0.1, the IPv4 loopback on a dual-stack socket (the
 * wildcard took IPv4 peers, so the socket keeps taking them); any other non-loopback IPv6 -> ::1.
 * connect(): Ray tells its processes to reach each other at this machine's own address (it maps
 * 127.0.0.1 to it), so a connection to one of RELUSTUDY_OWN_ADDRESSES (comma-separated IPv4, set
 * by the driver from the machine's interfaces), plain or IPv4-mapped, goes to 127.0.0.1 instead.
 * Every other call passes through unchanged. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*sock_fn)(int, const struct sockaddr *, socklen_t);

static int own_v4(in_addr_t a) {
    const char *list = getenv("RELUSTUDY_OWN_ADDRESSES");
    if (!list) return 0;
    char buf[1024], *save = NULL;
    strncpy(buf, list, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct in_addr x;
        if (inet_pton(AF_INET, tok, &x) == 1 && x.s_addr == a) return 1;
    }
    return 0;
}

static int is_loop_v4(in_addr_t a) { return (ntohl(a) >> 24) == 127; }

static int rewritten(sock_fn real, int fd, const struct sockaddr *addr, socklen_t len, int binding) {
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in a;
        memcpy(&a, addr, sizeof a);
        if (!is_loop_v4(a.sin_addr.s_addr) && (binding || own_v4(a.sin_addr.s_addr))) {
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real(fd, (const struct sockaddr *)&a, sizeof a);
        }
    } else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 a;
        memcpy(&a, addr, sizeof a);
        in_addr_t v4, loop = htonl(INADDR_LOOPBACK);
        memcpy(&v4, &a.sin6_addr.s6_addr[12], sizeof v4);
        int mapped = IN6_IS_ADDR_V4MAPPED(&a.sin6_addr);
        if (binding && (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr) || (mapped && !is_loop_v4(v4)))) {
            static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            memcpy(a.sin6_addr.s6_addr, prefix, sizeof prefix);
            memcpy(&a.sin6_addr.s6_addr[12], &loop, sizeof loop);
            return real(fd, (const struct sockaddr *)&a, sizeof a);
        }
        if (binding && !mapped && !IN6_IS_ADDR_LOOPBACK(&a.sin6_addr)) {
            a.sin6_addr = in6addr_loopback;
            return real(fd, (const struct sockaddr *)&a, sizeof a);
        }
        if (!binding && mapped && own_v4(v4)) {
            memcpy(&a.sin6_addr.s6_addr[12], &loop, sizeof loop);
            return real(fd, (const struct sockaddr *)&a, sizeof a);
        }
    }
    return real(fd, addr, len);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static sock_fn real = 0;
    if (!real) real = (sock_fn)dlsym(RTLD_NEXT, "bind");
    return rewritten(real, fd, addr, len, 1);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static sock_fn real = 0;
    if (!real) real = (sock_fn)dlsym(RTLD_NEXT, "connect");
    return rewritten(real, fd, addr, len, 0);
}
