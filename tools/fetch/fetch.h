/* fetch.h — the pieces of sw-fetch: the progress display (progress.c) used by main.c. The
 * machinery (listing, cache, downloads, verification) is lib/hub (sw_hub.h). */
#ifndef SW_FETCH_H
#define SW_FETCH_H

#include "sw_hub.h"

#include <stdint.h>

/* The progress display: on a terminal one line per active download plus an overall line,
 * redrawn in place; SW_PROGRESS=1 prints an overall line every 5 seconds (for logs);
 * silent when stderr is not a terminal, with -q, or SW_PROGRESS=0. */
struct fetch_display {
    int mode;        /* enum sw_progress_mode */
    char label[128]; /* "org/name" */
    int lines_drawn; /* terminal lines the last draw left (to move back over them) */
    double t_last;   /* last draw (lines mode) */
    double rate;     /* smoothed bytes/s, < 0 before a sample */
    double t_rate;
    uint64_t done_rate;
};

void fetch_display_init(struct fetch_display *d, const char *label);
/* sw_hub_progress_fn: called by sw_hub_fetch on the calling thread. */
void fetch_display_update(void *ctx, const struct sw_hub_progress *p);

#endif
