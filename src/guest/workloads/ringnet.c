/*
 * ringnet: a deterministic distributed workload over TCP for virtual-cluster tests.
 *
 * N nodes form a ring: node i connects to node i+1 and accepts node i-1 (addresses
 * <prefix>.<base+i>, port 7700). Every step, each node rewrites a window of its memory buffer
 * (folding the old contents into its state, as dirtier does), sends its state to the next node,
 * receives the previous node's, mixes it in and prints
 *   RING step=<k> node=<i> sum=<16 hex digits>
 * The sums depend on every message and every word written so far, on every node: a lost,
 * duplicated or reordered message, a broken connection or one wrong page changes them. A VC
 * restored from a consistent checkpoint prints exactly the sums of an uninterrupted run.
 * io.mekha.local.RingReference computes the same sums on the host.
 *
 * usage: ringnet -i <node index> -n <nodes> [-a 10.77.0] [-b first-host-number (1)]
 *                [-m MiB] [-d MiB-per-step | -p pages-per-step] [-s steps] [-t interval-ms]
 * (-p: a chatty ring that dirties a few pages per step, where -d dirties whole MiB)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT 7700
#define PAGE 4096u
#define WORDS_PER_PAGE_TOUCHED 8u

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void die(const char *what) {
    printf("RING error %s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(1);
}

static void full_write(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("send");
        p += n;
        len -= (size_t)n;
    }
}

static void full_read(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) { errno = ECONNRESET; die("receive (peer closed)"); }
        if (n < 0) die("receive");
        p += n;
        len -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    int node = -1, nodes = 0, base = 1, opt;
    const char *prefix = "10.77.0";
    unsigned long mib = 16, dirty_mib = 4, steps = 200, interval_ms = 100;
    unsigned long page_count = 0;
    while ((opt = getopt(argc, argv, "i:n:a:b:m:d:p:s:t:")) != -1) {
        switch (opt) {
        case 'i': node = atoi(optarg); break;
        case 'n': nodes = atoi(optarg); break;
        case 'a': prefix = optarg; break;
        case 'b': base = atoi(optarg); break;
        case 'm': mib = strtoul(optarg, NULL, 10); break;
        case 'd': dirty_mib = strtoul(optarg, NULL, 10); break;
        case 'p': page_count = strtoul(optarg, NULL, 10); break;
        case 's': steps = strtoul(optarg, NULL, 10); break;
        case 't': interval_ms = strtoul(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (node < 0 || nodes < 2 || node >= nodes || mib == 0) goto usage;
    if (!page_count && (dirty_mib == 0 || dirty_mib > mib)) goto usage;

    size_t pages = (size_t)mib * (1024 * 1024 / PAGE), dirty_pages = (size_t)dirty_mib * (1024 * 1024 / PAGE);
    if (page_count) {
        if (page_count > pages) goto usage;
        dirty_pages = page_count;
    }
    uint64_t *buf = malloc(pages * PAGE);
    if (!buf) die("malloc");
    size_t words = pages * PAGE / sizeof(uint64_t);
    for (size_t w = 0; w < words; w++) buf[w] = mix(w ^ ((uint64_t)node << 40));

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(listener, (struct sockaddr *)&me, sizeof me) < 0) die("bind");
    if (listen(listener, 1) < 0) die("listen");

    char next_addr[64];
    snprintf(next_addr, sizeof next_addr, "%s.%d", prefix, base + (node + 1) % nodes);
    struct sockaddr_in next = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, next_addr, &next.sin_addr);
    int out = -1;
    for (int attempt = 0; attempt < 600; attempt++) {   /* peers boot at different times */
        out = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(out, (struct sockaddr *)&next, sizeof next) == 0) break;
        close(out);
        out = -1;
        struct timespec wait = {0, 200 * 1000000L};
        nanosleep(&wait, NULL);
    }
    if (out < 0) die("connect to next node");
    setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int in = accept(listener, NULL, NULL);
    if (in < 0) die("accept");
    printf("RING connected node=%d nodes=%d next=%s\n", node, nodes, next_addr);
    fflush(stdout);

    uint64_t state = mix(0x1234 + (uint64_t)node);
    size_t next_page = 0;
    const size_t stride = PAGE / sizeof(uint64_t) / WORDS_PER_PAGE_TOUCHED;
    struct timespec pause = {(time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000L};
    for (unsigned long step = 1; step <= steps; step++) {
        for (size_t p = 0; p < dirty_pages; p++) {
            uint64_t *page = buf + next_page * (PAGE / sizeof(uint64_t));
            for (unsigned w = 0; w < WORDS_PER_PAGE_TOUCHED; w++) {
                uint64_t old = page[w * stride];
                state = mix(state ^ old);
                page[w * stride] = mix(old + step);
            }
            next_page = (next_page + 1) % pages;
        }
        uint64_t msg[2] = {step, state}, got[2];
        full_write(out, msg, sizeof msg);
        full_read(in, got, sizeof got);
        if (got[0] != step) {
            printf("RING error step mismatch: expected %lu got %llu\n", step, (unsigned long long)got[0]);
            fflush(stdout);
            return 1;
        }
        state = mix(state ^ got[1] ^ step);
        printf("RING step=%lu node=%d sum=%016llx\n", step, node, (unsigned long long)state);
        fflush(stdout);
        if (interval_ms) nanosleep(&pause, NULL);
    }
    printf("RING done node=%d sum=%016llx\n", node, (unsigned long long)state);
    fflush(stdout);
    close(out);
    close(in);
    return 0;

usage:
    fprintf(stderr, "usage: ringnet -i node -n nodes [-a 10.77.0] [-b 1] [-m MiB] [-d MiB | -p pages] [-s steps] [-t ms]\n");
    return 2;
}
