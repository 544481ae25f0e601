/* Shared-memory layout of the simulated card: host (vb_sim.c) and device
 * (vb_simdev.c) both map /dev/shm/voiceboard.NAME and agree on this.
 *
 * Tick protocol (counters are "how many", so tick N done => counter N+1):
 *   device: started = N+1, fills rx slot N%8, posts events stamped N,
 *           published = N+1, bumps dev_seq (host futex word).
 *   host:   waits for published > N, reads rx slot N%8, writes tx slot N%8,
 *           committed = N+1, bumps host_seq (device futex word).
 *   lockstep: the device starts tick N only once committed >= N.
 * Slot metadata (tick+1 and block) lets either side tell a slot that holds
 * the tick it wants from a stale or re-laid-out one.
 */
#ifndef VB_SIMSHM_H
#define VB_SIMSHM_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "vb.h"

#define VB_SHM_MAGIC   0x31445241424f4256ULL   /* "VBOARD1" little-endian */
#define VB_SHM_VERSION 2u
#define VB_SHM_PREFIX  "/voiceboard."
#define VB_SHM_TMP     "/voiceboard-tmp."
#define VB_SHM_DIR     "/dev/shm"
#define VB_EVQ_LEN     4096u   /* device -> host events (power of two) */
#define VB_CMDQ_LEN    1024u   /* host -> device commands (power of two) */
#define VB_TX_SILENCE  VB_RING_SLOTS   /* extra tx slot that stays all zeros */
#define VB_LIVENESS_MS 50      /* how often a waiter checks the peer is alive */

/* Single-producer single-consumer ring of vb_event_t at base + off. */
struct vb_shm_queue {
    _Alignas(64) _Atomic uint32_t head;     /* written by the producer */
    _Alignas(64) _Atomic uint32_t tail;     /* written by the consumer */
    _Alignas(64) _Atomic uint64_t dropped;  /* records lost to a full queue */
    _Atomic uint64_t unreported;            /* dropped, not yet told to the consumer */
    uint32_t cap;
    uint32_t pad;
    uint64_t off;
};

struct vb_shm_slot {
    _Atomic uint64_t rx_tick;   /* tick+1 whose rx the slot holds; 0 empty */
    _Atomic uint64_t tx_tick;   /* tick+1 whose tx the host committed here */
    _Atomic uint32_t rx_block, tx_block;
};

struct vb_shm_span {
    int32_t kind, nchan, first_chan, framing, coding, crc4, timing, pad;
    _Atomic uint32_t alarms;
    uint32_t pad2;
    _Atomic uint64_t counters[VB_SPAN_NCOUNTERS];
};

/* Status registers: the host writes what it commands (FXO hook, FXS ring,
 * cas_tx, xconnect, loopback); the device writes what the line reports. */
struct vb_shm_chan {
    int32_t type, span, timeslot, pad;
    _Atomic int32_t hook, ringing, cas_rx, cas_tx, xconnect, loopback;
    _Atomic int32_t battery, reversed;
    _Atomic uint64_t counters[VB_CHAN_NCOUNTERS];
};

struct vb_shm_header {
    uint64_t magic;             /* written last by the creator */
    uint32_t version, header_size;
    uint64_t total_size;
    char name[64];
    int32_t law, clock, nspans, nchan;
    uint64_t span_off, chan_off, rx_off, tx_off;
    uint64_t slot_stride;       /* samples between ring slots: nchan*VB_MAX_BLOCK */
    int32_t dev_pid;
    _Atomic uint32_t dev_alive, removed;
    _Atomic uint32_t block;     /* chosen by the host at start; 0 before */
    _Atomic int32_t host_pid;
    _Atomic uint32_t nloop;     /* channels in loopback (device skips the scan at 0) */
    _Atomic uint64_t host_token;      /* 0: no host */
    _Atomic uint64_t host_first_tick; /* first tick of the current host session */
    /* The simulated wall clock (vb_simdev_set_clock): device tick t is at
     * sim_start_us + t * block * 125 us.  sim_clock 0: none (host clock). */
    int64_t sim_start_us;       /* microseconds since the Unix epoch, UTC */
    int32_t sim_utcoff_s;       /* UTC offset of the simulated zone, seconds east */
    _Atomic uint32_t sim_clock; /* 1 once the two fields above are set */

    _Alignas(64) _Atomic uint32_t dev_seq;    /* host sleeps on this */
    _Atomic uint32_t dev_waiters;
    _Alignas(64) _Atomic uint32_t host_seq;   /* device sleeps on this */
    _Atomic uint32_t host_waiters;

    _Alignas(64) _Atomic uint64_t started;    /* device */
    _Atomic uint64_t published;               /* device */
    _Alignas(64) _Atomic uint64_t committed;  /* host */
    _Alignas(64) _Atomic uint64_t late_ticks, overruns, underruns;

    struct vb_shm_slot slots[VB_RING_SLOTS];
    struct vb_shm_queue evq, cmdq;
};

static inline struct vb_shm_span *vb_shm_spans(struct vb_shm_header *h)
{
    return (struct vb_shm_span *)((char *)h + h->span_off);
}

static inline struct vb_shm_chan *vb_shm_chans(struct vb_shm_header *h)
{
    return (struct vb_shm_chan *)((char *)h + h->chan_off);
}

static inline vb_event_t *vb_shm_qrec(struct vb_shm_header *h, struct vb_shm_queue *q)
{
    return (vb_event_t *)((char *)h + q->off);
}

/* Producer side: is there room for one more record? */
static inline int vb_shm_qroom(struct vb_shm_queue *q)
{
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    return head - atomic_load_explicit(&q->tail, memory_order_acquire) < q->cap;
}

/* Producer side: 0, or -1 when full (counted as dropped). */
static inline int vb_shm_qpush(struct vb_shm_header *h, struct vb_shm_queue *q,
                               const vb_event_t *ev)
{
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (head - tail >= q->cap) {
        atomic_fetch_add(&q->dropped, 1);
        atomic_fetch_add(&q->unreported, 1);
        return -1;
    }
    vb_shm_qrec(h, q)[head & (q->cap - 1)] = *ev;
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    return 0;
}

/* Consumer side: the record at the front, or NULL when empty. */
static inline const vb_event_t *vb_shm_qpeek(struct vb_shm_header *h, struct vb_shm_queue *q)
{
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (tail == head)
        return NULL;
    return &vb_shm_qrec(h, q)[tail & (q->cap - 1)];
}

static inline void vb_shm_qpop(struct vb_shm_queue *q)
{
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
}

/* Futexes on shared (not FUTEX_PRIVATE) words: works across processes. */
static inline int vb_futex_wait(_Atomic uint32_t *word, uint32_t expect, int timeout_ms)
{
    struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
    return (int)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expect, &ts, NULL, 0);
}

/* Bump seq and wake sleepers (the syscall only when someone sleeps). */
static inline void vb_shm_signal(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
    atomic_fetch_add(seq, 1);
    if (atomic_load(waiters))
        syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Sleep until seq moves from expect, at most timeout_ms. */
static inline void vb_shm_sleep(_Atomic uint32_t *seq, _Atomic uint32_t *waiters,
                                uint32_t expect, int timeout_ms)
{
    atomic_fetch_add(waiters, 1);
    vb_futex_wait(seq, expect, timeout_ms);
    atomic_fetch_sub(waiters, 1);
}

static inline int vb_pid_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* "uid N (name)" of a segment's owner, for messages. */
static inline const char *vb_uid_text(uid_t uid, char *buf, size_t len)
{
    struct passwd pw, *found = NULL;
    char names[1024];
    if (getpwuid_r(uid, &pw, names, sizeof names, &found) == 0 && found)
        snprintf(buf, len, "uid %u (%s)", (unsigned)uid, found->pw_name);
    else
        snprintf(buf, len, "uid %u", (unsigned)uid);
    return buf;
}

static inline int64_t vb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Does the layout in h fit in size bytes?  (A host must not trust a file
 * in /dev/shm blindly.)  Returns NULL or what is wrong. */
static inline const char *vb_shm_check(const struct vb_shm_header *h, uint64_t size)
{
    if (h->nspans < 1 || h->nspans > VB_MAX_SPANS || h->nchan < 1 || h->nchan > VB_MAX_CHANNELS)
        return "span or channel count out of range";
    if (h->slot_stride != (uint64_t)h->nchan * VB_MAX_BLOCK)
        return "ring slot size does not match the channel count";
    if (h->evq.cap != VB_EVQ_LEN || h->cmdq.cap != VB_CMDQ_LEN)
        return "queue sizes of another build";
    struct { uint64_t off, len; } parts[] = {
        { h->span_off, (uint64_t)h->nspans * sizeof(struct vb_shm_span) },
        { h->chan_off, (uint64_t)h->nchan * sizeof(struct vb_shm_chan) },
        { h->evq.off, (uint64_t)VB_EVQ_LEN * sizeof(vb_event_t) },
        { h->cmdq.off, (uint64_t)VB_CMDQ_LEN * sizeof(vb_event_t) },
        { h->rx_off, (uint64_t)VB_RING_SLOTS * h->slot_stride * sizeof(int16_t) },
        { h->tx_off, (uint64_t)(VB_RING_SLOTS + 1) * h->slot_stride * sizeof(int16_t) },
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (parts[i].off < sizeof *h || parts[i].off % 8 || parts[i].off > size
            || parts[i].len > size - parts[i].off)
            return "a table lies outside the file";
    return NULL;
}

/* Board names: letters, digits, '_' and '-' (they become file names). */
static inline int vb_valid_name(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n > 0 && n < VB_NAME_MAX;
}

#endif
