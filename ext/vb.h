/* voiceboard board access library: public host API.
 *
 * A board is opened by URI ("sim://NAME", later "dahdi:///dev/dahdi"); the
 * scheme picks a backend.  Audio moves as one int16[nchan, block] array per
 * tick in each direction; signalling travels as events (card -> host) and
 * control calls (host -> card).  Every call returns 0 or a negative VB_E*
 * code; vb_errmsg() says what went wrong and where.
 */
#ifndef VB_H
#define VB_H

#include <stddef.h>
#include <stdint.h>

#define VB_VERSION "0.2.0"

/* Error codes (negative returns). */
enum {
    VB_OK = 0,
    VB_EINVAL = -1,      /* bad argument (value, state, channel type) */
    VB_ENOBOARD = -2,    /* no such board */
    VB_ELOST = -3,       /* the device died or was removed */
    VB_ECHAN = -4,       /* channel number out of range */
    VB_ESCHEME = -5,     /* unknown URI scheme */
    VB_ENOBACKEND = -6,  /* scheme known, backend not built */
    VB_EBUSY = -7,       /* another host has started the board / name in use */
    VB_ETIMEDOUT = -8,   /* no tick within the timeout */
    VB_ENOTSTARTED = -9, /* call vb_start() first */
    VB_EAGAIN = -10,     /* command queue full */
    VB_ENOMEM = -11,
    VB_ESYS = -12,       /* a system call failed (errno text in the message) */
    VB_EBADSHM = -13,    /* shared memory of another version or corrupt */
    VB_ESPAN = -14,      /* span number out of range */
    VB_EPERM = -15       /* shared memory owned by another user (a plant?): refused */
};

enum { VB_RING_SLOTS = 8, VB_MAX_BLOCK = 320, VB_MAX_SPANS = 64,
       VB_MAX_CHANNELS = 1024, VB_NAME_MAX = 48 };

enum { VB_LAW_ALAW = 1, VB_LAW_ULAW = 2 };
enum { VB_CLOCK_LOCKSTEP = 1, VB_CLOCK_REALTIME = 2 };
enum { VB_SPAN_ANALOG = 1, VB_SPAN_E1 = 2 };
enum { VB_FRAMING_NONE = 0, VB_FRAMING_CAS = 1, VB_FRAMING_CCS = 2 };
enum { VB_CODING_NONE = 0, VB_CODING_HDB3 = 1, VB_CODING_AMI = 2 };
enum { VB_CHAN_FXO = 1, VB_CHAN_FXS = 2, VB_CHAN_E1_CAS = 3,
       VB_CHAN_E1_BEARER = 4, VB_CHAN_E1_DCHAN = 5 };
enum { VB_ALARM_LOS = 1, VB_ALARM_LOF = 2, VB_ALARM_AIS = 4, VB_ALARM_RAI = 8,
       VB_ALARM_ALL = 15 };

/* Events, card -> host. */
enum {
    VB_EV_HOOK_OFF = 1, VB_EV_HOOK_ON = 2, VB_EV_FLASH = 3,
    VB_EV_RING_START = 4, VB_EV_RING_STOP = 5,
    VB_EV_LOOP_DROP = 6, VB_EV_LOOP_RESTORE = 7, VB_EV_BATTERY_REVERSAL = 8,
    VB_EV_CAS = 9, VB_EV_ALARM_SET = 10, VB_EV_ALARM_CLEAR = 11,
    VB_EV_BOARD_LOST = 12, VB_EV_EVENTS_LOST = 13,
    VB_EV_MAX = 13
};

/* Commands, host -> card (same record layout as events). */
enum {
    VB_CMD_HOOK = 1, VB_CMD_RING = 2, VB_CMD_CAS = 3, VB_CMD_XCONNECT = 4,
    VB_CMD_LOOPBACK = 5, VB_CMD_START = 6, VB_CMD_STOP = 7
};
enum { VB_HOOK_ON = 0, VB_HOOK_OFF = 1, VB_HOOK_FLASH = 2 };

/* Span counters (E1 line errors). */
enum { VB_SCNT_CRC4 = 0, VB_SCNT_EBIT = 1, VB_SCNT_FAS = 2, VB_SCNT_BPV = 3,
       VB_SCNT_SLIPS = 4, VB_SPAN_NCOUNTERS = 5 };
/* Channel counters. */
enum { VB_CCNT_EVENTS = 0, VB_CCNT_COMMANDS = 1, VB_CCNT_HOOK_CHANGES = 2,
       VB_CCNT_RINGS = 3, VB_CCNT_CAS_CHANGES = 4, VB_CHAN_NCOUNTERS = 5 };

/* One event or command: fixed 24-byte record. chan/span are -1 when n/a. */
typedef struct vb_event {
    uint64_t tick;
    int32_t kind, chan, span, value;
} vb_event_t;

typedef struct vb_board_info {
    char name[64];
    char driver[16];
    int law, clock, nspans, nchan;
    int block;           /* 0 until a host has started the board */
    int sim_clock;       /* 1: a simulated card with its own wall clock (below); 0: use the host's */
    int clock_utcoff_s;  /* UTC offset of the simulated clock, seconds east */
    int64_t clock_start_us;  /* simulated time of tick 0, us since the Unix epoch (UTC) */
} vb_board_info_t;

typedef struct vb_span_info {
    int index, kind, nchan, first_chan, framing, coding, crc4, timing;
} vb_span_info_t;

typedef struct vb_chan_info {
    int index, span, type, timeslot;
} vb_chan_info_t;

typedef struct vb_chan_status {
    int hook;            /* 1 offhook */
    int ringing, cas_rx, cas_tx;
    int xconnect;        /* peer channel or -1 */
    int loopback;
    int battery;         /* FXO: 1 loop current present, 0 dropped */
    int reversed;        /* FXO: battery polarity reversed */
    uint64_t counters[5];
} vb_chan_status_t;

typedef struct vb_span_status {
    uint32_t alarms;
    uint64_t counters[5];
} vb_span_status_t;

typedef struct vb_stats {
    uint64_t ticks, late_ticks, overruns, underruns, events_lost;
} vb_stats_t;

typedef struct vb_board vb_board_t;

const char *vb_version(void);
const char *vb_strerror(int code);

/* Attach to a board.  On failure *out is NULL and err holds the detail. */
int vb_open(const char *uri, vb_board_t **out, char *err, size_t errlen);
void vb_close(vb_board_t *b);
/* Detail of the last failure on this board (valid until its next call). */
const char *vb_errmsg(const vb_board_t *b);
const char *vb_uri(const vb_board_t *b);

int vb_board_info(vb_board_t *b, vb_board_info_t *out);
int vb_span_info(vb_board_t *b, int span, vb_span_info_t *out);
int vb_chan_info(vb_board_t *b, int chan, vb_chan_info_t *out);

/* Claim the board as its host and choose the block (80, 160 or 320). */
int vb_start(vb_board_t *b, int block);
/* Wait for the next rx block; timeout_ms < 0 waits forever (still noticing
 * a dead device).  An uncommitted previous tick is committed as silence. */
int vb_wait_tick(vb_board_t *b, int timeout_ms, uint64_t *tick);
/* The current tick's rx (read) and tx (write) blocks, int16[nchan][block]. */
const int16_t *vb_rx(vb_board_t *b);
int16_t *vb_tx(vb_board_t *b);
/* Whole rings, for building views once: slot s starts at base + s*stride. */
int vb_rings(vb_board_t *b, const int16_t **rx, int16_t **tx, size_t *slot_stride);
int vb_commit(vb_board_t *b);
/* Drain up to max events; returns how many (or a negative code). */
int vb_read_events(vb_board_t *b, vb_event_t *buf, int max);

int vb_hook(vb_board_t *b, int chan, int state);
int vb_ring(vb_board_t *b, int chan, int on);
int vb_set_cas(vb_board_t *b, int chan, int abcd);
int vb_xconnect(vb_board_t *b, int a, int peer);  /* peer -1: disconnect */
int vb_loopback(vb_board_t *b, int chan, int on);

int vb_chan_status(vb_board_t *b, int chan, vb_chan_status_t *out);
int vb_span_status(vb_board_t *b, int span, vb_span_status_t *out);
int vb_stats(vb_board_t *b, vb_stats_t *out);

#endif
