/* Internal: what a backend fills in.  vb_core.c validates arguments and
 * dispatches through the ops table; a backend struct embeds vb_board first. */
#ifndef VB_BACKEND_H
#define VB_BACKEND_H

#include <stdarg.h>
#include "vb.h"

struct vb_ops {
    const char *scheme;
    const char *missing;     /* non-NULL: recognised but not built (why) */
    int (*open)(const char *uri, const char *rest, vb_board_t **out,
                char *err, size_t errlen);
    void (*close)(vb_board_t *b);
    int (*info)(vb_board_t *b, vb_board_info_t *out);
    int (*span_info)(vb_board_t *b, int span, vb_span_info_t *out);
    int (*chan_info)(vb_board_t *b, int chan, vb_chan_info_t *out);
    int (*start)(vb_board_t *b, int block);
    int (*wait_tick)(vb_board_t *b, int timeout_ms, uint64_t *tick);
    int (*rings)(vb_board_t *b, const int16_t **rx, int16_t **tx, size_t *stride);
    int (*commit)(vb_board_t *b);
    int (*read_events)(vb_board_t *b, vb_event_t *buf, int max);
    int (*control)(vb_board_t *b, int cmd, int chan, int value);
    int (*chan_status)(vb_board_t *b, int chan, vb_chan_status_t *out);
    int (*span_status)(vb_board_t *b, int span, vb_span_status_t *out);
    int (*stats)(vb_board_t *b, vb_stats_t *out);
};

struct vb_board {
    const struct vb_ops *ops;
    int nspans, nchan;       /* filled by the backend's open */
    int started, block;
    uint64_t tick;           /* current tick (valid after a wait_tick) */
    int16_t *rx_base, *tx_base;
    size_t stride;           /* samples between ring slots */
    char uri[256];
    char err[256];
};

/* printf into b->err; returns code so callers can `return vb_fail(...)`. */
int vb_fail(vb_board_t *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vb_failbuf(char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

extern const struct vb_ops vb_sim_ops;
extern const struct vb_ops vb_dahdi_ops;

#endif
