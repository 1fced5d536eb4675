/* emgfeedback: keep liblsl's sockets on one address (docs/recording.md, "LSL").
 *
 * liblsl binds its TCP data server and UDP service sockets to every interface and offers no
 * setting to change that.  emgfeedback runs its LSL outlets in a helper process with this
 * library preloaded (LD_PRELOAD): a bind() to the IPv4 wildcard address becomes a bind() to
 * $EMGFEEDBACK_LSL_BIND (127.0.0.1 unless the user named an interface with --lsl-scope), and
 * IPv6 sockets are refused (the liblsl configuration the app writes disables IPv6 as well).
 * Compiled on first use with the system C compiler (build-essential).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real;
    if (!real) real = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *want = getenv("EMGFEEDBACK_LSL_BIND");
    if (want && *want && addr) {
        if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
            struct sockaddr_in a;
            memcpy(&a, addr, sizeof a);
            if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
                if (inet_pton(AF_INET, want, &a.sin_addr) != 1) { errno = EADDRNOTAVAIL; return -1; }
                return real(fd, (const struct sockaddr *)&a, sizeof a);
            }
        } else if (addr->sa_family == AF_INET6) {
            errno = EAFNOSUPPORT;
            return -1;
        }
    }
    return real(fd, addr, len);
}
