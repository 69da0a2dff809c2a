/* Logs every name lookup and every IP connect a process makes, native code included, then lets it go on.
 * Loaded with LD_PRELOAD by test_no_phone_home.py; children inherit it. Lines go to $QB_NET_LOG as
 * "PID CALL TARGET". AF_UNIX and other non-IP connects stay on the machine and are not logged. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void note(const char *call, const char *target) {
    const char *path = getenv("QB_NET_LOG");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return;
    char line[600];
    int n = snprintf(line, sizeof line, "%d %s %s\n", (int)getpid(), call, target ? target : "(null)");
    if (n > 0) (void)!write(fd, line, (size_t)n);
    close(fd);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real) real = dlsym(RTLD_NEXT, "getaddrinfo");
    note("getaddrinfo", node);
    return real(node, service, hints, res);
}

struct hostent *gethostbyname(const char *name) {
    static struct hostent *(*real)(const char *);
    if (!real) real = dlsym(RTLD_NEXT, "gethostbyname");
    note("gethostbyname", name);
    return real(name);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = dlsym(RTLD_NEXT, "connect");
    char ip[INET6_ADDRSTRLEN] = "";
    if (addr && addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, ip, sizeof ip);
    else if (addr && addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, ip, sizeof ip);
    if (ip[0]) note("connect", ip);
    return real(fd, addr, len);
}
