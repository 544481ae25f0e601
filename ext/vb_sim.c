/* sim:// host backend: attach to a simulated card in shared memory. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vb_backend.h"
#include "vb_simshm.h"

struct vb_sim {
    vb_board_t base;             /* first: vb_board_t * <-> struct vb_sim * */
    struct vb_shm_header *h;
    size_t size;
    uint64_t token;              /* our claim on host_token; 0 before start */
    uint64_t next;               /* next tick to hand out */
    int in_tick, committed;      /* state of base.tick */
    int lost;                    /* device gone: every tick call fails */
    int lost_told;               /* BOARD_LOST already delivered as an event */
    pthread_mutex_t cmd_lock;    /* controls may come from several threads */
};

static struct vb_sim *S(vb_board_t *b)
{
    return (struct vb_sim *)b;
}

static int sim_open(const char *uri, const char *name, vb_board_t **out, char *err, size_t errlen)
{
    if (!vb_valid_name(name))
        return vb_failbuf(err, errlen, VB_EINVAL,
                          "bad board name in '%s': use 1..%d letters, digits, '_' or '-'",
                          uri, VB_NAME_MAX - 1);
    char shm[96];
    snprintf(shm, sizeof shm, VB_SHM_PREFIX "%s", name);
    int fd = shm_open(shm, O_RDWR, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return vb_failbuf(err, errlen, VB_ENOBOARD,
                              "no such board '%s' (no " VB_SHM_DIR "%s; is hwsim running?)", uri, shm);
        return vb_failbuf(err, errlen, VB_ESYS, "cannot open " VB_SHM_DIR "%s for '%s': %s",
                          shm, uri, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return vb_failbuf(err, errlen, VB_ESYS, "cannot stat " VB_SHM_DIR "%s for '%s': %s",
                          shm, uri, strerror(e));
    }
    if (st.st_uid != geteuid()) {
        /* Another user made it: it could feed us anything and read the calls. */
        char owner[96], me[96];
        close(fd);
        return vb_failbuf(err, errlen, VB_EPERM,
                          "'%s': " VB_SHM_DIR "%s is owned by %s, not by this process's %s: "
                          "refusing a board another user could have planted",
                          uri, shm, vb_uid_text(st.st_uid, owner, sizeof owner),
                          vb_uid_text(geteuid(), me, sizeof me));
    }
    if ((size_t)st.st_size < sizeof(struct vb_shm_header)) {
        close(fd);
        return vb_failbuf(err, errlen, VB_EBADSHM, "'%s': " VB_SHM_DIR "%s is too small to be a board",
                          uri, shm);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return vb_failbuf(err, errlen, VB_ESYS, "cannot map " VB_SHM_DIR "%s for '%s': %s",
                          shm, uri, strerror(errno));
    struct vb_shm_header *h = map;
    const char *why;
    int rc = VB_OK;
    if (h->magic != VB_SHM_MAGIC || h->version != VB_SHM_VERSION
        || h->total_size != (uint64_t)st.st_size || h->header_size != sizeof *h)
        rc = vb_failbuf(err, errlen, VB_EBADSHM,
                        "'%s': " VB_SHM_DIR "%s is not a voiceboard v%u board (magic %llx, version %u)",
                        uri, shm, VB_SHM_VERSION, (unsigned long long)h->magic, h->version);
    else if ((why = vb_shm_check(h, (uint64_t)st.st_size)))
        rc = vb_failbuf(err, errlen, VB_EBADSHM, "'%s': " VB_SHM_DIR "%s is corrupt: %s", uri, shm, why);
    else if (atomic_load(&h->removed) || !atomic_load(&h->dev_alive) || !vb_pid_alive(h->dev_pid))
        rc = vb_failbuf(err, errlen, VB_ENOBOARD,
                        "no such board '%s' (" VB_SHM_DIR "%s is stale: device pid %d gone; is hwsim running?)",
                        uri, shm, (int)h->dev_pid);
    struct vb_sim *s = NULL;
    if (rc == VB_OK && !(s = calloc(1, sizeof *s)))
        rc = vb_failbuf(err, errlen, VB_ENOMEM, "out of memory opening '%s'", uri);
    if (rc < 0) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    s->h = h;
    s->size = (size_t)st.st_size;
    s->base.nspans = h->nspans;
    s->base.nchan = h->nchan;
    pthread_mutex_init(&s->cmd_lock, NULL);
    *out = &s->base;
    return VB_OK;
}

/* Queue a command for the device and wake it; caller holds cmd_lock. */
static int push_cmd(struct vb_sim *s, int kind, int chan, int value)
{
    struct vb_shm_header *h = s->h;
    if (!vb_shm_qroom(&h->cmdq))
        return vb_fail(&s->base, VB_EAGAIN, "command queue of %s full (%u pending; is the device draining commands?)",
                       s->base.uri, h->cmdq.cap);
    vb_event_t ev = { s->in_tick && !s->committed ? s->base.tick : s->next, kind, chan,
                      chan >= 0 ? vb_shm_chans(h)[chan].span : -1, value };
    vb_shm_qpush(h, &h->cmdq, &ev);   /* room checked: we are the only producer */
    if (chan >= 0)
        atomic_fetch_add(&vb_shm_chans(h)[chan].counters[VB_CCNT_COMMANDS], 1);
    vb_shm_signal(&h->host_seq, &h->host_waiters);
    return VB_OK;
}

static void sim_close(vb_board_t *b)
{
    struct vb_sim *s = S(b);
    struct vb_shm_header *h = s->h;
    /* Only the process that claimed the board releases it (not a fork child). */
    if (s->token && !s->lost && atomic_load(&h->host_pid) == getpid()) {
        pthread_mutex_lock(&s->cmd_lock);
        push_cmd(s, VB_CMD_STOP, -1, 0);
        pthread_mutex_unlock(&s->cmd_lock);
        atomic_store(&h->host_pid, 0);
        uint64_t mine = s->token;
        atomic_compare_exchange_strong(&h->host_token, &mine, 0);
        vb_shm_signal(&h->host_seq, &h->host_waiters);
    }
    pthread_mutex_destroy(&s->cmd_lock);
    munmap(h, s->size);
    free(s);
}

static int sim_info(vb_board_t *b, vb_board_info_t *out)
{
    struct vb_shm_header *h = S(b)->h;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", h->name);
    snprintf(out->driver, sizeof out->driver, "sim");
    out->law = h->law;
    out->clock = h->clock;
    out->nspans = h->nspans;
    out->nchan = h->nchan;
    out->block = (int)atomic_load(&h->block);
    if (atomic_load_explicit(&h->sim_clock, memory_order_acquire)) {
        out->sim_clock = 1;
        out->clock_start_us = h->sim_start_us;
        out->clock_utcoff_s = h->sim_utcoff_s;
    }
    return VB_OK;
}

static int sim_span_info(vb_board_t *b, int span, vb_span_info_t *out)
{
    const struct vb_shm_span *sp = &vb_shm_spans(S(b)->h)[span];
    *out = (vb_span_info_t){ span, sp->kind, sp->nchan, sp->first_chan, sp->framing,
                             sp->coding, sp->crc4, sp->timing };
    return VB_OK;
}

static int sim_chan_info(vb_board_t *b, int chan, vb_chan_info_t *out)
{
    const struct vb_shm_chan *c = &vb_shm_chans(S(b)->h)[chan];
    *out = (vb_chan_info_t){ chan, c->span, c->type, c->timeslot };
    return VB_OK;
}

static int device_gone(struct vb_shm_header *h, int check_pid)
{
    return atomic_load(&h->removed) || !atomic_load(&h->dev_alive)
        || (check_pid && !vb_pid_alive(h->dev_pid));
}

static int mark_lost(struct vb_sim *s)
{
    s->lost = 1;
    return vb_fail(&s->base, VB_ELOST, "board %s lost: the device %s", s->base.uri,
                   atomic_load(&s->h->removed) ? "was removed" : "stopped or died");
}

static int sim_start(vb_board_t *b, int block)
{
    struct vb_sim *s = S(b);
    struct vb_shm_header *h = s->h;
    if (s->lost || device_gone(h, 1))
        return mark_lost(s);
    uint64_t token = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s ^ (uint64_t)vb_now_ns();
    token |= 1;
    uint64_t cur = 0;
    if (!atomic_compare_exchange_strong(&h->host_token, &cur, token)) {
        pid_t holder = atomic_load(&h->host_pid);
        /* A host that died without closing leaves its claim: take it over. */
        if (holder > 0 && vb_pid_alive(holder))
            return vb_fail(b, VB_EBUSY, "board %s already has a host (pid %d)", b->uri, (int)holder);
        if (!atomic_compare_exchange_strong(&h->host_token, &cur, token))
            return vb_fail(b, VB_EBUSY, "board %s was claimed by another host just now", b->uri);
    }
    s->token = token;
    atomic_store(&h->host_pid, getpid());
    atomic_store(&h->block, (uint32_t)block);
    uint64_t pub = atomic_load(&h->published);
    if (atomic_load(&h->committed) < pub)
        atomic_store(&h->committed, pub);
    atomic_store(&h->host_first_tick, pub);
    s->next = pub;
    s->in_tick = 0;
    pthread_mutex_lock(&s->cmd_lock);
    int rc = push_cmd(s, VB_CMD_START, -1, block);
    pthread_mutex_unlock(&s->cmd_lock);
    if (rc < 0) {
        atomic_store(&h->host_pid, 0);
        atomic_store(&h->host_token, 0);
        s->token = 0;
        return rc;
    }
    return VB_OK;
}

static int sim_rings(vb_board_t *b, const int16_t **rx, int16_t **tx, size_t *stride)
{
    struct vb_shm_header *h = S(b)->h;
    *rx = (const int16_t *)((char *)h + h->rx_off);
    *tx = (int16_t *)((char *)h + h->tx_off);
    *stride = h->slot_stride;
    return VB_OK;
}

static int16_t *tx_slot(struct vb_sim *s, uint64_t tick)
{
    return s->base.tx_base + (tick % VB_RING_SLOTS) * s->base.stride;
}

/* Mark tick as committed by the host (tx slot already written). */
static void commit_tick(struct vb_sim *s, uint64_t tick)
{
    struct vb_shm_header *h = s->h;
    struct vb_shm_slot *sl = &h->slots[tick % VB_RING_SLOTS];
    atomic_store(&sl->tx_block, (uint32_t)s->base.block);
    atomic_store(&sl->tx_tick, tick + 1);
    if (atomic_load(&h->started) > tick + 1)
        atomic_fetch_add(&h->late_ticks, 1);
    if (atomic_load(&h->committed) < tick + 1)
        atomic_store(&h->committed, tick + 1);
    vb_shm_signal(&h->host_seq, &h->host_waiters);
}

static int sim_wait_tick(vb_board_t *b, int timeout_ms, uint64_t *tick)
{
    struct vb_sim *s = S(b);
    struct vb_shm_header *h = s->h;
    size_t bytes = (size_t)b->nchan * (size_t)b->block * sizeof(int16_t);
    int lockstep = h->clock == VB_CLOCK_LOCKSTEP;
    if (s->lost)
        return mark_lost(s);
    if (s->in_tick && !s->committed) {
        /* The previous tick was never committed: it goes out as silence. */
        if (lockstep) {
            memset(tx_slot(s, b->tick), 0, bytes);
            commit_tick(s, b->tick);
            atomic_fetch_add(&h->underruns, 1);
        }   /* realtime: the device counts the underrun when it gets there */
    }
    s->in_tick = 0;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : vb_now_ns() + (int64_t)timeout_ms * 1000000LL;
    for (;;) {
        uint32_t seq = atomic_load(&h->dev_seq);
        uint64_t pub = atomic_load(&h->published);
        if (pub > s->next) {
            if (!lockstep && pub - s->next > VB_RING_SLOTS - 1) {
                /* Fell behind by more than the ring: skip to the newest tick. */
                atomic_fetch_add(&h->overruns, pub - 1 - s->next);
                s->next = pub - 1;
            }
            uint64_t want = s->next;
            struct vb_shm_slot *sl = &h->slots[want % VB_RING_SLOTS];
            s->next = want + 1;
            if (atomic_load(&sl->rx_tick) != want + 1 || atomic_load(&sl->rx_block) != (uint32_t)b->block) {
                /* Produced under the previous host's block: not ours to read. */
                if (lockstep) {
                    b->tick = want;
                    memset(tx_slot(s, want), 0, bytes);
                    commit_tick(s, want);
                }
                continue;
            }
            memset(tx_slot(s, want), 0, bytes);
            s->in_tick = 1;
            s->committed = 0;
            *tick = want;
            return VB_OK;
        }
        if (device_gone(h, 0))
            return mark_lost(s);
        int64_t now = vb_now_ns();
        if (now >= deadline)
            return vb_fail(b, VB_ETIMEDOUT, "no tick from %s within %d ms", b->uri, timeout_ms);
        int64_t left_ms = (deadline - now + 999999) / 1000000;
        int slice = left_ms < VB_LIVENESS_MS ? (int)left_ms : VB_LIVENESS_MS;
        int64_t before = now;
        vb_shm_sleep(&h->dev_seq, &h->dev_waiters, seq, slice);
        /* A whole quiet slice: make sure the device process still exists. */
        if (atomic_load(&h->dev_seq) == seq && vb_now_ns() - before >= (int64_t)slice * 1000000LL
            && device_gone(h, 1))
            return mark_lost(s);
    }
}

static int sim_commit(vb_board_t *b)
{
    struct vb_sim *s = S(b);
    if (s->lost)
        return mark_lost(s);
    if (!s->in_tick || s->committed)
        return vb_fail(b, VB_EINVAL, "commit on %s without a tick: call wait_tick() first", b->uri);
    struct vb_shm_header *h = s->h;
    s->committed = 1;
    if (atomic_load(&h->published) > b->tick + VB_RING_SLOTS - 1)
        atomic_fetch_add(&h->overruns, 1);   /* rx may have been overwritten while we held it */
    commit_tick(s, b->tick);
    return VB_OK;
}

static int sim_read_events(vb_board_t *b, vb_event_t *buf, int max)
{
    struct vb_sim *s = S(b);
    struct vb_shm_header *h = s->h;
    /* The host's current tick; before its first tick, only older events. */
    int64_t now = s->in_tick ? (int64_t)b->tick : (int64_t)s->next - 1;
    uint64_t stamp = now < 0 ? 0 : (uint64_t)now;
    int n = 0;
    if (n < max) {
        uint64_t lost = atomic_exchange(&h->evq.unreported, 0);
        if (lost)
            buf[n++] = (vb_event_t){ stamp, VB_EV_EVENTS_LOST, -1, -1, (int32_t)(lost > INT32_MAX ? INT32_MAX : lost) };
    }
    while (n < max) {
        const vb_event_t *ev = vb_shm_qpeek(h, &h->evq);
        /* Events of a tick the host has not reached yet wait for that tick. */
        if (!ev || (!s->lost && (int64_t)ev->tick > now))
            break;
        buf[n] = *ev;
        vb_shm_qpop(&h->evq);
        if (buf[n].kind == VB_EV_BOARD_LOST)
            s->lost_told = 1;
        n++;
    }
    if (n < max && s->lost && !s->lost_told && !vb_shm_qpeek(h, &h->evq)) {
        buf[n++] = (vb_event_t){ stamp, VB_EV_BOARD_LOST, -1, -1, 0 };
        s->lost_told = 1;
    }
    return n;
}

static int sim_control(vb_board_t *b, int cmd, int chan, int value)
{
    struct vb_sim *s = S(b);
    struct vb_shm_header *h = s->h;
    if (s->lost || device_gone(h, 0))
        return mark_lost(s);
    struct vb_shm_chan *c = vb_shm_chans(h);
    pthread_mutex_lock(&s->cmd_lock);
    if (!vb_shm_qroom(&h->cmdq)) {   /* refuse before touching the registers */
        int rc = push_cmd(s, cmd, chan, value);
        pthread_mutex_unlock(&s->cmd_lock);
        return rc;
    }
    switch (cmd) {
    case VB_CMD_HOOK:
        if (value != VB_HOOK_FLASH) {
            if (atomic_exchange(&c[chan].hook, value) != value)
                atomic_fetch_add(&c[chan].counters[VB_CCNT_HOOK_CHANGES], 1);
        }
        break;
    case VB_CMD_RING:
        if (atomic_exchange(&c[chan].ringing, value) != value && value)
            atomic_fetch_add(&c[chan].counters[VB_CCNT_RINGS], 1);
        break;
    case VB_CMD_CAS:
        atomic_store(&c[chan].cas_tx, value);
        break;
    case VB_CMD_XCONNECT: {
        int old = atomic_exchange(&c[chan].xconnect, value);
        if (old >= 0 && old != value)
            atomic_store(&c[old].xconnect, -1);
        if (value >= 0) {
            int theirs = atomic_exchange(&c[value].xconnect, chan);
            if (theirs >= 0 && theirs != chan)
                atomic_store(&c[theirs].xconnect, -1);
        }
        break;
    }
    case VB_CMD_LOOPBACK:
        if (atomic_exchange(&c[chan].loopback, value) != value) {
            if (value)
                atomic_fetch_add(&h->nloop, 1);
            else
                atomic_fetch_sub(&h->nloop, 1);
        }
        break;
    default:
        break;
    }
    int rc = push_cmd(s, cmd, chan, value);
    pthread_mutex_unlock(&s->cmd_lock);
    return rc;
}

static int sim_chan_status(vb_board_t *b, int chan, vb_chan_status_t *out)
{
    struct vb_shm_chan *c = &vb_shm_chans(S(b)->h)[chan];
    out->hook = atomic_load(&c->hook);
    out->ringing = atomic_load(&c->ringing);
    out->cas_rx = atomic_load(&c->cas_rx);
    out->cas_tx = atomic_load(&c->cas_tx);
    out->xconnect = atomic_load(&c->xconnect);
    out->loopback = atomic_load(&c->loopback);
    out->battery = atomic_load(&c->battery);
    out->reversed = atomic_load(&c->reversed);
    for (int i = 0; i < VB_CHAN_NCOUNTERS; i++)
        out->counters[i] = atomic_load(&c->counters[i]);
    return VB_OK;
}

static int sim_span_status(vb_board_t *b, int span, vb_span_status_t *out)
{
    struct vb_shm_span *sp = &vb_shm_spans(S(b)->h)[span];
    out->alarms = atomic_load(&sp->alarms);
    for (int i = 0; i < VB_SPAN_NCOUNTERS; i++)
        out->counters[i] = atomic_load(&sp->counters[i]);
    return VB_OK;
}

static int sim_stats(vb_board_t *b, vb_stats_t *out)
{
    struct vb_shm_header *h = S(b)->h;
    out->ticks = atomic_load(&h->published);
    out->late_ticks = atomic_load(&h->late_ticks);
    out->overruns = atomic_load(&h->overruns);
    out->underruns = atomic_load(&h->underruns);
    out->events_lost = atomic_load(&h->evq.dropped);
    return VB_OK;
}

const struct vb_ops vb_sim_ops = {
    .scheme = "sim",
    .open = sim_open,
    .close = sim_close,
    .info = sim_info,
    .span_info = sim_span_info,
    .chan_info = sim_chan_info,
    .start = sim_start,
    .wait_tick = sim_wait_tick,
    .rings = sim_rings,
    .commit = sim_commit,
    .read_events = sim_read_events,
    .control = sim_control,
    .chan_status = sim_chan_status,
    .span_status = sim_span_status,
    .stats = sim_stats,
};
