/* Device side of the simulated card (hwsim drives it through cffi).
 *
 * One device process (or thread) creates the board; a host attaches with
 * vb_open("sim://NAME").  Per tick: next_tick -> read tx / fill rx / drain
 * commands / post events -> publish.
 */
#ifndef VB_SIMDEV_H
#define VB_SIMDEV_H

#include "vb.h"

typedef struct vb_simdev vb_simdev_t;

typedef struct vb_span_spec {
    int kind, nchan, framing, coding, crc4, timing;
} vb_span_spec_t;

typedef struct vb_chan_spec {
    int type, span;
    int timeslot;        /* 0: assign (E1 skips TS16; analog: port number) */
} vb_chan_spec_t;

/* Create /dev/shm/voiceboard.NAME (replacing a stale one left by a dead
 * device); VB_EBUSY if a live device already serves the name. */
int vb_simdev_create(const char *name, const vb_span_spec_t *spans, int nspans,
                     const vb_chan_spec_t *chans, int nchan, int law, int clock,
                     vb_simdev_t **out, char *err, size_t errlen);
/* Unlink (unless already removed) and unmap; the host sees VB_ELOST. */
void vb_simdev_close(vb_simdev_t *d);
const char *vb_simdev_errmsg(const vb_simdev_t *d);

/* 1 when a host has started the board, 0 on timeout. */
int vb_simdev_wait_host(vb_simdev_t *d, int timeout_ms);
/* Block size of the current tick (the host's choice; 160 before a host). */
int vb_simdev_block(vb_simdev_t *d);
/* Begin the next tick: lockstep waits for the host's commit of the previous
 * one, realtime sleeps to the next block boundary.  VB_ETIMEDOUT if none. */
int vb_simdev_next_tick(vb_simdev_t *d, int timeout_ms, uint64_t *tick);
/* Rings for building views once: rx has VB_RING_SLOTS slots, tx one more
 * (slot VB_RING_SLOTS is silence); slot s starts at base + s*stride. */
int vb_simdev_rings(vb_simdev_t *d, int16_t **rx, const int16_t **tx, size_t *slot_stride);
/* Slots of the current tick: rx to fill, tx the host sent in the previous tick. */
int vb_simdev_slots(vb_simdev_t *d, int *rx_slot, int *tx_slot);
int16_t *vb_simdev_rx(vb_simdev_t *d);
const int16_t *vb_simdev_tx(vb_simdev_t *d);
/* Drain up to max host commands; returns how many. */
int vb_simdev_read_commands(vb_simdev_t *d, vb_event_t *buf, int max);
/* Post an event to the host (thread-safe); span -1 = the channel's span. */
int vb_simdev_post(vb_simdev_t *d, int kind, int chan, int span, int value);
/* Set a span's alarm bits; posts ALARM_SET/ALARM_CLEAR for each change. */
int vb_simdev_set_alarms(vb_simdev_t *d, int span, unsigned bits);
int vb_simdev_add_counter(vb_simdev_t *d, int span, int counter, uint64_t n);
/* The simulated wall clock hosts read (vb_board_info): tick 0 is start_us
 * (us since the Unix epoch, UTC), shown at utcoff_s seconds east of UTC.
 * Set it right after create, before a host can start the board. */
int vb_simdev_set_clock(vb_simdev_t *d, int64_t start_us, int utcoff_s);
/* rx of this tick is complete (channels in loopback get their tx back). */
int vb_simdev_publish(vb_simdev_t *d);
/* The card vanishes: BOARD_LOST goes out with a final tick, then VB_ELOST. */
int vb_simdev_remove(vb_simdev_t *d);
int vb_simdev_stats(vb_simdev_t *d, vb_stats_t *out);
/* 1 while a host holds the board (a dead host's claim is dropped here). */
int vb_simdev_host_attached(vb_simdev_t *d);

#endif
