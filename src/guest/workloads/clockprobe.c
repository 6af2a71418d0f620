/*
 * clockprobe: prints the guest's realtime and monotonic clocks at a fixed interval, so a
 * host can see how guest time moves across a checkpoint and restart.
 *   CLOCK seq=<n> real=<sec>.<nsec> mono=<sec>.<nsec>
 *
 * usage: clockprobe [-i interval-ms] [-n samples (0 = forever)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned long interval_ms = 500, samples = 0;
    int opt;
    while ((opt = getopt(argc, argv, "i:n:")) != -1) {
        switch (opt) {
        case 'i': interval_ms = strtoul(optarg, NULL, 10); break;
        case 'n': samples = strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: clockprobe [-i ms] [-n samples]\n");
            return 2;
        }
    }
    struct timespec pause = {(time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000L};
    for (unsigned long seq = 1; samples == 0 || seq <= samples; seq++) {
        struct timespec real, mono;
        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        printf("CLOCK seq=%lu real=%lld.%09ld mono=%lld.%09ld\n", seq,
               (long long)real.tv_sec, real.tv_nsec, (long long)mono.tv_sec, mono.tv_nsec);
        fflush(stdout);
        nanosleep(&pause, NULL);
    }
    return 0;
}
