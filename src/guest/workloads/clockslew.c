/*
 * clockslew: moves the guest's realtime clock forward by a gap, gradually, never backwards.
 * Mekha runs it through the guest agent (guest-exec) for the Slew time policy: every step it
 * reads the clock and sets it a little ahead of what it read, so the clock runs faster than
 * real time until the gap is closed, within the period given.
 *
 * usage: clockslew <gap-ms> <period-ms>
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: clockslew <gap-ms> <period-ms>\n");
        return 2;
    }
    long long gap_ns = atoll(argv[1]) * 1000000LL;
    long long period_ms = atoll(argv[2]);
    if (gap_ns <= 0 || period_ms <= 0) {
        return 0; /* nothing to close, or already ahead: never step backwards */
    }
    const long step_ms = 50;
    long long steps = period_ms / step_ms;
    if (steps < 1) steps = 1;
    long long per_step = gap_ns / steps, done = 0;
    struct timespec pause = {0, step_ms * 1000000L};
    for (long long i = 0; i < steps; i++) {
        long long add = (i == steps - 1) ? gap_ns - done : per_step;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec + add;
        struct timespec next = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
        if (clock_settime(CLOCK_REALTIME, &next) != 0) {
            perror("clockslew: clock_settime");
            return 1;
        }
        done += add;
        nanosleep(&pause, NULL);
    }
    return 0;
}
