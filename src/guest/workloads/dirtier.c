/*
 * dirtier: a deterministic memory-dirtying workload for checkpoint tests.
 *
 * It owns a buffer of -m MiB, and every round rewrites -d MiB of it (a window that walks
 * through the buffer), folding the old contents into a running hash. Each round prints
 *   DIRTIER round=<n> hash=<16 hex digits>
 * The hash of round n depends on every word the rounds before it wrote, so a VM restored
 * from a checkpoint with a single wrong page prints a different hash from then on; a correct
 * restore prints exactly the sequence an uninterrupted run prints.
 *
 * usage: dirtier [-m MiB] [-d MiB-per-round] [-i interval-ms] [-n rounds (0 = forever)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS_PER_PAGE_TOUCHED 8u

static uint64_t mix(uint64_t x) {
    /* splitmix64 finaliser: cheap, and every input bit reaches every output bit */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int main(int argc, char **argv) {
    unsigned long mib = 64, dirty_mib = 16, interval_ms = 200, rounds = 0;
    int opt;
    while ((opt = getopt(argc, argv, "m:d:i:n:")) != -1) {
        switch (opt) {
        case 'm': mib = strtoul(optarg, NULL, 10); break;
        case 'd': dirty_mib = strtoul(optarg, NULL, 10); break;
        case 'i': interval_ms = strtoul(optarg, NULL, 10); break;
        case 'n': rounds = strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: dirtier [-m MiB] [-d MiB-per-round] [-i ms] [-n rounds]\n");
            return 2;
        }
    }
    if (mib == 0 || dirty_mib == 0 || dirty_mib > mib) {
        fprintf(stderr, "dirtier: need 0 < -d (%lu) <= -m (%lu)\n", dirty_mib, mib);
        return 2;
    }
    size_t pages = (size_t)mib * (1024 * 1024 / PAGE);
    size_t dirty_pages = (size_t)dirty_mib * (1024 * 1024 / PAGE);
    uint64_t *buf = malloc(pages * PAGE);
    if (!buf) {
        fprintf(stderr, "dirtier: cannot allocate %lu MiB\n", mib);
        return 1;
    }
    size_t words = pages * PAGE / sizeof(uint64_t);
    for (size_t i = 0; i < words; i++) buf[i] = mix(i);

    printf("DIRTIER start mib=%lu dirty_mib=%lu interval_ms=%lu\n", mib, dirty_mib, interval_ms);
    fflush(stdout);

    uint64_t hash = 0xcbf29ce484222325ull;
    size_t next_page = 0;
    const size_t stride = PAGE / sizeof(uint64_t) / WORDS_PER_PAGE_TOUCHED;
    struct timespec pause = {(time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000L};
    for (unsigned long round = 1; rounds == 0 || round <= rounds; round++) {
        for (size_t p = 0; p < dirty_pages; p++) {
            uint64_t *page = buf + (next_page * PAGE / sizeof(uint64_t));
            for (unsigned w = 0; w < WORDS_PER_PAGE_TOUCHED; w++) {
                uint64_t old = page[w * stride];
                hash = mix(hash ^ old);
                page[w * stride] = mix(old + round);
            }
            next_page = (next_page + 1) % pages;
        }
        printf("DIRTIER round=%lu hash=%016llx\n", round, (unsigned long long)hash);
        fflush(stdout);
        if (interval_ms) nanosleep(&pause, NULL);
    }
    printf("DIRTIER done\n");
    fflush(stdout);
    return 0;
}
