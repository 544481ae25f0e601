/* Preprocessor-free copy of what vb.h and vb_simdev.h export (cffi cdef).
   Keep in step with those headers; tests/board/test_cdef.py checks it. */

enum {
    VB_OK = 0,
    VB_EINVAL = -1,
    VB_ENOBOARD = -2,
    VB_ELOST = -3,
    VB_ECHAN = -4,
    VB_ESCHEME = -5,
    VB_ENOBACKEND = -6,
    VB_EBUSY = -7,
    VB_ETIMEDOUT = -8,
    VB_ENOTSTARTED = -9,
    VB_EAGAIN = -10,
    VB_ENOMEM = -11,
    VB_ESYS = -12,
    VB_EBADSHM = -13,
    VB_ESPAN = -14,
    VB_EPERM = -15
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

enum {
    VB_EV_HOOK_OFF = 1, VB_EV_HOOK_ON = 2, VB_EV_FLASH = 3,
    VB_EV_RING_START = 4, VB_EV_RING_STOP = 5,
    VB_EV_LOOP_DROP = 6, VB_EV_LOOP_RESTORE = 7, VB_EV_BATTERY_REVERSAL = 8,
    VB_EV_CAS = 9, VB_EV_ALARM_SET = 10, VB_EV_ALARM_CLEAR = 11,
    VB_EV_BOARD_LOST = 12, VB_EV_EVENTS_LOST = 13,
    VB_EV_MAX = 13
};

enum {
    VB_CMD_HOOK = 1, VB_CMD_RING = 2, VB_CMD_CAS = 3, VB_CMD_XCONNECT = 4,
    VB_CMD_LOOPBACK = 5, VB_CMD_START = 6, VB_CMD_STOP = 7
};
enum { VB_HOOK_ON = 0, VB_HOOK_OFF = 1, VB_HOOK_FLASH = 2 };

enum { VB_SCNT_CRC4 = 0, VB_SCNT_EBIT = 1, VB_SCNT_FAS = 2, VB_SCNT_BPV = 3,
       VB_SCNT_SLIPS = 4, VB_SPAN_NCOUNTERS = 5 };

enum { VB_CCNT_EVENTS = 0, VB_CCNT_COMMANDS = 1, VB_CCNT_HOOK_CHANGES = 2,
       VB_CCNT_RINGS = 3, VB_CCNT_CAS_CHANGES = 4, VB_CHAN_NCOUNTERS = 5 };

typedef struct vb_event {
    uint64_t tick;
    int32_t kind, chan, span, value;
} vb_event_t;

typedef struct vb_board_info {
    char name[64];
    char driver[16];
    int law, clock, nspans, nchan;
    int block;
    int sim_clock;
    int clock_utcoff_s;
    int64_t clock_start_us;
} vb_board_info_t;

typedef struct vb_span_info {
    int index, kind, nchan, first_chan, framing, coding, crc4, timing;
} vb_span_info_t;

typedef struct vb_chan_info {
    int index, span, type, timeslot;
} vb_chan_info_t;

typedef struct vb_chan_status {
    int hook;
    int ringing, cas_rx, cas_tx;
    int xconnect;
    int loopback;
    int battery;
    int reversed;
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

int vb_open(const char *uri, vb_board_t **out, char *err, size_t errlen);
void vb_close(vb_board_t *b);

const char *vb_errmsg(const vb_board_t *b);
const char *vb_uri(const vb_board_t *b);

int vb_board_info(vb_board_t *b, vb_board_info_t *out);
int vb_span_info(vb_board_t *b, int span, vb_span_info_t *out);
int vb_chan_info(vb_board_t *b, int chan, vb_chan_info_t *out);

int vb_start(vb_board_t *b, int block);

int vb_wait_tick(vb_board_t *b, int timeout_ms, uint64_t *tick);

const int16_t *vb_rx(vb_board_t *b);
int16_t *vb_tx(vb_board_t *b);

int vb_rings(vb_board_t *b, const int16_t **rx, int16_t **tx, size_t *slot_stride);
int vb_commit(vb_board_t *b);

int vb_read_events(vb_board_t *b, vb_event_t *buf, int max);

int vb_hook(vb_board_t *b, int chan, int state);
int vb_ring(vb_board_t *b, int chan, int on);
int vb_set_cas(vb_board_t *b, int chan, int abcd);
int vb_xconnect(vb_board_t *b, int a, int peer);
int vb_loopback(vb_board_t *b, int chan, int on);

int vb_chan_status(vb_board_t *b, int chan, vb_chan_status_t *out);
int vb_span_status(vb_board_t *b, int span, vb_span_status_t *out);
int vb_stats(vb_board_t *b, vb_stats_t *out);

typedef struct vb_simdev vb_simdev_t;

typedef struct vb_span_spec {
    int kind, nchan, framing, coding, crc4, timing;
} vb_span_spec_t;

typedef struct vb_chan_spec {
    int type, span;
    int timeslot;
} vb_chan_spec_t;

int vb_simdev_create(const char *name, const vb_span_spec_t *spans, int nspans,
                     const vb_chan_spec_t *chans, int nchan, int law, int clock,
                     vb_simdev_t **out, char *err, size_t errlen);

void vb_simdev_close(vb_simdev_t *d);
const char *vb_simdev_errmsg(const vb_simdev_t *d);

int vb_simdev_wait_host(vb_simdev_t *d, int timeout_ms);

int vb_simdev_block(vb_simdev_t *d);

int vb_simdev_next_tick(vb_simdev_t *d, int timeout_ms, uint64_t *tick);

int vb_simdev_rings(vb_simdev_t *d, int16_t **rx, const int16_t **tx, size_t *slot_stride);

int vb_simdev_slots(vb_simdev_t *d, int *rx_slot, int *tx_slot);
int16_t *vb_simdev_rx(vb_simdev_t *d);
const int16_t *vb_simdev_tx(vb_simdev_t *d);

int vb_simdev_read_commands(vb_simdev_t *d, vb_event_t *buf, int max);

int vb_simdev_post(vb_simdev_t *d, int kind, int chan, int span, int value);

int vb_simdev_set_alarms(vb_simdev_t *d, int span, unsigned bits);
int vb_simdev_add_counter(vb_simdev_t *d, int span, int counter, uint64_t n);

int vb_simdev_set_clock(vb_simdev_t *d, int64_t start_us, int utcoff_s);

int vb_simdev_publish(vb_simdev_t *d);

int vb_simdev_remove(vb_simdev_t *d);
int vb_simdev_stats(vb_simdev_t *d, vb_stats_t *out);

int vb_simdev_host_attached(vb_simdev_t *d);
