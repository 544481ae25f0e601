/* dahdi:// host backend: a real card (or the DAHDI emulator) through
 * /dev/dahdi, the way Asterisk's chan_dahdi drives it.
 *
 * open:  /dev/dahdi/ctl, SPANSTAT every span, GET_PARAMS every channel; the
 *        board's channels are the channels dahdi_cfg configured (an E1's
 *        TS16 under CAS is not one), in DAHDI order.
 * start: one fd per channel (/dev/dahdi/channel + SPECIFY), non-blocking,
 *        linear mode, blocksize = the board block.
 * tick:  poll the first channel for a whole block, then one read per
 *        channel; commit is one write per channel.  A read or write that
 *        fails with ELAST means an event waits: GETEVENT drains it into the
 *        board's event queue and the call is retried.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dahdi_abi.h"
#include "vb_backend.h"

#define DAHDI_DIR "/dev/dahdi"
#define EVQ 1024

struct dchan {
    int channo, fd, type, span, timeslot;
    int hook, ringing, cas_tx, loopback, battery, reversed;
    uint64_t counters[VB_CHAN_NCOUNTERS];
};

struct dspan {
    int spanno, kind, first, nchan, framing, coding, crc4, timing;
    int alarms;                  /* last seen, VB_ALARM_* bits */
};

struct vb_dahdi {
    vb_board_t base;             /* first */
    int ctl;
    struct dspan *spans;
    struct dchan *chans;
    int law, block;
    int clock;                   /* realtime; lockstep under the emulator's lockstep pace */
    int16_t *rx, *tx;            /* VB_RING_SLOTS slots of nchan*block */
    uint64_t next;               /* next tick number */
    int in_tick, committed, lost, lost_told;
    vb_event_t evq[EVQ];
    int ev_head, ev_count;
    vb_stats_t st;
    pthread_mutex_t lock;        /* controls from other threads vs the tick */
};

static struct vb_dahdi *D(vb_board_t *b) { return (struct vb_dahdi *)b; }

static int vb_alarms(int dahdi)
{
    int a = 0;
    if (dahdi & VBD_ALARM_LOS) a |= VB_ALARM_LOS;
    if (dahdi & (VBD_ALARM_LFA | VBD_ALARM_LMFA)) a |= VB_ALARM_LOF;
    if ((dahdi & VBD_ALARM_RED) && !(a & (VB_ALARM_LOS | VB_ALARM_LOF))) a |= VB_ALARM_LOF;
    if (dahdi & VBD_ALARM_BLUE) a |= VB_ALARM_AIS;
    if (dahdi & VBD_ALARM_YELLOW) a |= VB_ALARM_RAI;
    return a;
}

static void push_event(struct vb_dahdi *d, int kind, int chan, int span, int value)
{
    if (d->ev_count == EVQ) {
        d->st.events_lost++;
        return;
    }
    /* Drained while reading tick N: tick N; while committing it: tick N+1. */
    uint64_t tick = d->in_tick && !d->committed ? d->base.tick : d->next;
    d->evq[(d->ev_head + d->ev_count++) % EVQ] = (vb_event_t){ tick, kind, chan, span, value };
    if (chan >= 0)
        d->chans[chan].counters[VB_CCNT_EVENTS]++;
}

static int type_of_sig(int sigtype)
{
    if (!sigtype)
        return 0;
    if (sigtype & VBD_SIG_FXS_BIT)       /* FXS signalling: a port facing the exchange */
        return VB_CHAN_FXO;
    if (sigtype & VBD_SIG_FXO_BIT)       /* FXO signalling: a port facing a phone */
        return VB_CHAN_FXS;
    if (sigtype & (VBD_SIG_CAS | VBD_SIG_EM_E1 | VBD_SIG_EM))
        return VB_CHAN_E1_CAS;
    if ((sigtype & VBD_SIG_HDLCRAW) == VBD_SIG_HDLCRAW || sigtype == VBD_SIG_HARDHDLC)
        return VB_CHAN_E1_DCHAN;
    return VB_CHAN_E1_BEARER;
}

static void dahdi_close(vb_board_t *b)
{
    struct vb_dahdi *d = D(b);
    if (d->chans)
        for (int c = 0; c < b->nchan; c++)
            if (d->chans[c].fd >= 0)
                close(d->chans[c].fd);
    if (d->ctl >= 0)
        close(d->ctl);
    pthread_mutex_destroy(&d->lock);
    free(d->spans);
    free(d->chans);
    free(d->rx);
    free(d->tx);
    free(d);
}

static int dahdi_open(const char *uri, const char *rest, vb_board_t **out, char *err, size_t errlen)
{
    if (*rest && strcmp(rest, DAHDI_DIR) != 0 && strcmp(rest, DAHDI_DIR "/") != 0)
        return vb_failbuf(err, errlen, VB_EINVAL, "'%s': expected dahdi:// or dahdi://" DAHDI_DIR, uri);
    int ctl = open(DAHDI_DIR "/ctl", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
            return vb_failbuf(err, errlen, VB_ENOBOARD,
                              "'%s': no " DAHDI_DIR "/ctl (%s): the DAHDI kernel modules are not loaded "
                              "(modprobe dahdi and the card's driver; see docs/boards.md)", uri, strerror(errno));
        return vb_failbuf(err, errlen, VB_ESYS, "'%s': cannot open " DAHDI_DIR "/ctl: %s%s", uri, strerror(errno),
                          errno == EACCES ? " (add the user to group dialout or adjust the udev rules)" : "");
    }
    struct vb_dahdi *d = calloc(1, sizeof *d);
    struct vbd_versioninfo vi;
    memset(&vi, 0, sizeof vi);
    ioctl(ctl, VBD_GETVERSION, &vi);
    struct dspan *spans = calloc(VB_MAX_SPANS, sizeof *spans);
    struct dchan *chans = calloc(VB_MAX_CHANNELS, sizeof *chans);
    if (!d || !spans || !chans) {
        free(d); free(spans); free(chans);
        close(ctl);
        return vb_failbuf(err, errlen, VB_ENOMEM, "out of memory opening '%s'", uri);
    }
    d->ctl = ctl;
    d->spans = spans;
    d->chans = chans;
    pthread_mutex_init(&d->lock, NULL);
    int nspans = 0, nchan = 0, basechan = 1, unconfigured = 0, law = 0;
    for (int s = 1; s < VBD_MAX_SPANS; s++) {
        struct vbd_spaninfo si;
        memset(&si, 0, sizeof si);
        si.spanno = s;
        if (ioctl(ctl, VBD_SPANSTAT, &si) < 0)
            continue;
        if (si.linecompat && strcmp(si.spantype, "E1") != 0) {
            dahdi_close(&d->base);
            return vb_failbuf(err, errlen, VB_EINVAL, "'%s': DAHDI span %d is %s: only E1 and analog spans are supported",
                              uri, s, si.spantype);
        }
        if (nspans == VB_MAX_SPANS)
            break;
        struct dspan *sp = &spans[nspans];
        sp->spanno = s;
        sp->kind = si.linecompat ? VB_SPAN_E1 : VB_SPAN_ANALOG;
        sp->first = nchan;
        if (sp->kind == VB_SPAN_E1) {
            sp->framing = (si.lineconfig & VBD_CONFIG_CCS) ? VB_FRAMING_CCS : VB_FRAMING_CAS;
            sp->coding = (si.lineconfig & VBD_CONFIG_AMI) ? VB_CODING_AMI : VB_CODING_HDB3;
            sp->crc4 = !!(si.lineconfig & VBD_CONFIG_CRC4);
        }
        sp->timing = si.syncsrc == s;
        sp->alarms = vb_alarms(si.alarms);
        for (int c = basechan; c < basechan + si.totalchans; c++) {
            struct vbd_params p;
            memset(&p, 0, sizeof p);
            p.channo = c;
            if (ioctl(ctl, VBD_GET_PARAMS, &p) < 0)
                continue;
            int type = type_of_sig(p.sigtype);
            if (!type) {
                unconfigured++;
                continue;
            }
            if (nchan == VB_MAX_CHANNELS)
                break;
            chans[nchan] = (struct dchan){ .channo = c, .fd = -1, .type = type, .span = nspans,
                                           .timeslot = p.chanpos, .battery = 1 };
            if (!law)
                law = p.curlaw == VBD_LAW_MULAW ? VB_LAW_ULAW : VB_LAW_ALAW;
            nchan++;
        }
        sp->nchan = nchan - sp->first;
        basechan += si.totalchans;
        if (sp->nchan)
            nspans++;
    }
    if (!nspans) {
        dahdi_close(&d->base);
        if (unconfigured)
            return vb_failbuf(err, errlen, VB_ENOBOARD,
                              "'%s': DAHDI has %d channels but none is configured: run dahdi_cfg "
                              "(see /etc/dahdi/system.conf and docs/boards.md)", uri, unconfigured);
        return vb_failbuf(err, errlen, VB_ENOBOARD,
                          "'%s': DAHDI reports no spans: the card's driver is not loaded or its spans "
                          "are not assigned (dahdi_span_assignments auto; see docs/boards.md)", uri);
    }
    for (int i = 0; i < nspans; i++)
        for (int c = spans[i].first; c < spans[i].first + spans[i].nchan; c++)
            chans[c].span = i;
    d->base.nspans = nspans;
    d->base.nchan = nchan;
    d->law = law ? law : VB_LAW_ALAW;
    /* A card ticks in real time.  The DAHDI emulator in lockstep pace waits
     * for the host each tick and says so in its version string. */
    d->clock = strstr(vi.version, "voiceboard emulator") && strstr(vi.version, "lockstep")
             ? VB_CLOCK_LOCKSTEP : VB_CLOCK_REALTIME;
    *out = &d->base;
    return VB_OK;
}

static int dahdi_info(vb_board_t *b, vb_board_info_t *out)
{
    struct vb_dahdi *d = D(b);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "dahdi");
    snprintf(out->driver, sizeof out->driver, "dahdi");
    out->law = d->law;
    out->clock = d->clock;
    out->nspans = b->nspans;
    out->nchan = b->nchan;
    out->block = b->block;
    return VB_OK;
}

static int dahdi_span_info(vb_board_t *b, int span, vb_span_info_t *out)
{
    const struct dspan *s = &D(b)->spans[span];
    *out = (vb_span_info_t){ span, s->kind, s->nchan, s->first, s->framing, s->coding, s->crc4, s->timing };
    return VB_OK;
}

static int dahdi_chan_info(vb_board_t *b, int chan, vb_chan_info_t *out)
{
    const struct dchan *c = &D(b)->chans[chan];
    *out = (vb_chan_info_t){ chan, c->span, c->type, c->timeslot };
    return VB_OK;
}

static int chan_fail(struct vb_dahdi *d, int chan, int code, const char *what, int e)
{
    const struct dchan *c = &d->chans[chan];
    const char *hint = e == EBUSY ? " (another program holds it: is Asterisk or a second voiceboard running?)"
                     : e == ENXIO ? " (not configured: run dahdi_cfg)"
                     : e == ENODEV ? " (the card was removed or its driver unloaded)" : "";
    return vb_fail(&d->base, code, "%s: %s DAHDI channel %d (span %d, board channel %d): %s%s",
                   d->base.uri, what, c->channo, d->spans[c->span].spanno, chan, strerror(e), hint);
}

/* Undo a start that failed half-way, so that start() can be called again. */
static int start_failed(struct vb_dahdi *d, int rc)
{
    for (int c = 0; c < d->base.nchan; c++)
        if (d->chans[c].fd >= 0) {
            close(d->chans[c].fd);
            d->chans[c].fd = -1;
        }
    free(d->rx);
    free(d->tx);
    d->rx = d->tx = NULL;
    return rc;
}

static int dahdi_start(vb_board_t *b, int block)
{
    struct vb_dahdi *d = D(b);
    d->block = block;
    size_t slot = (size_t)b->nchan * (size_t)block;
    d->rx = calloc(VB_RING_SLOTS * slot, sizeof *d->rx);
    d->tx = calloc(VB_RING_SLOTS * slot, sizeof *d->tx);
    if (!d->rx || !d->tx)
        return start_failed(d, vb_fail(b, VB_ENOMEM, "out of memory starting %s", b->uri));
    for (int c = 0; c < b->nchan; c++) {
        struct dchan *ch = &d->chans[c];
        int fd = open(DAHDI_DIR "/channel", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return start_failed(d, chan_fail(d, c, VB_ESYS, "cannot open /dev/dahdi/channel for", errno));
        ch->fd = fd;
        int one = 1, no = ch->channo;
        if (ioctl(fd, VBD_SPECIFY, &no) < 0)
            return start_failed(d, chan_fail(d, c, errno == EBUSY ? VB_EBUSY : VB_ESYS, "cannot open", errno));
        struct vbd_bufferinfo bi = { VBD_POLICY_IMMEDIATE, VBD_POLICY_IMMEDIATE, 4, block, 0, 0 };
        if (ioctl(fd, VBD_SET_BUFINFO, &bi) < 0 || ioctl(fd, VBD_SETLINEAR, &one) < 0)
            return start_failed(d, chan_fail(d, c, VB_ESYS, "cannot set block size and linear mode on", errno));
    }
    d->next = 0;
    return VB_OK;
}

static int dahdi_rings(vb_board_t *b, const int16_t **rx, int16_t **tx, size_t *stride)
{
    struct vb_dahdi *d = D(b);
    *rx = d->rx;
    *tx = d->tx;
    *stride = (size_t)b->nchan * (size_t)d->block;   /* b->block is set after start */
    return VB_OK;
}

/* Span alarms changed (an ALARM/NOALARM event on one of its channels). */
static void span_alarm_events(struct vb_dahdi *d, int span)
{
    struct vbd_spaninfo si;
    memset(&si, 0, sizeof si);
    si.spanno = d->spans[span].spanno;
    if (ioctl(d->ctl, VBD_SPANSTAT, &si) < 0)
        return;
    int now = vb_alarms(si.alarms), was = d->spans[span].alarms;
    for (int bit = 1; bit <= VB_ALARM_RAI; bit <<= 1) {
        if ((now & bit) && !(was & bit))
            push_event(d, VB_EV_ALARM_SET, -1, span, bit);
        else if (!(now & bit) && (was & bit))
            push_event(d, VB_EV_ALARM_CLEAR, -1, span, bit);
    }
    d->spans[span].alarms = now;
}

/* Drain the channel's DAHDI events into board events. */
static int drain_events(struct vb_dahdi *d, int chan)
{
    struct dchan *ch = &d->chans[chan];
    for (;;) {
        int ev = 0;
        if (ioctl(ch->fd, VBD_GETEVENT, &ev) < 0)
            return -errno;
        if (ev == VBD_EVENT_NONE)
            return 0;
        int span = ch->span;
        switch (ev) {
        case VBD_EVENT_RINGOFFHOOK:
            if (ch->type == VB_CHAN_FXS) {
                ch->hook = 1;
                push_event(d, VB_EV_HOOK_OFF, chan, span, 0);
            } else if (ch->type == VB_CHAN_FXO && !ch->ringing) {
                ch->ringing = 1;
                push_event(d, VB_EV_RING_START, chan, span, 0);
            }
            break;
        case VBD_EVENT_ONHOOK:
            if (ch->type == VB_CHAN_FXS) {
                ch->hook = 0;
                push_event(d, VB_EV_HOOK_ON, chan, span, 0);
            } else if (ch->type == VB_CHAN_FXO) {
                ch->battery = 0;         /* kewlstart: the exchange dropped loop current */
                push_event(d, VB_EV_LOOP_DROP, chan, span, 0);
            }
            break;
        case VBD_EVENT_WINKFLASH:
            if (ch->type == VB_CHAN_FXS)
                push_event(d, VB_EV_FLASH, chan, span, 0);
            break;
        case VBD_EVENT_POLARITY:
            ch->reversed = !ch->reversed;
            push_event(d, VB_EV_BATTERY_REVERSAL, chan, span, ch->reversed);
            break;
        case VBD_EVENT_BITSCHANGED: {
            int bits = 0;
            if (ioctl(ch->fd, VBD_GETRXBITS, &bits) == 0) {
                ch->counters[VB_CCNT_CAS_CHANGES]++;
                push_event(d, VB_EV_CAS, chan, span, bits & 15);
            }
            break;
        }
        case VBD_EVENT_ALARM:
        case VBD_EVENT_NOALARM:
            span_alarm_events(d, span);
            break;
        case VBD_EVENT_REMOVED:
            d->lost = 1;
            break;
        default:
            break;                       /* RINGBEGIN, ringer on/off, DTMF: not board events */
        }
    }
}

/* A ringing FXO port whose ring signal has gone: DAHDI has no event for
 * the end of a ring burst, GET_PARAMS shows it. */
static void ring_ends(struct vb_dahdi *d)
{
    for (int c = 0; c < d->base.nchan; c++) {
        struct dchan *ch = &d->chans[c];
        if (ch->type != VB_CHAN_FXO || !ch->ringing)
            continue;
        struct vbd_params p;
        memset(&p, 0, sizeof p);
        if (ioctl(ch->fd, VBD_GET_PARAMS, &p) == 0 && !p.rxisoffhook) {
            ch->ringing = 0;
            push_event(d, VB_EV_RING_STOP, c, ch->span, 0);
        }
    }
}

/* One block read or written; an event waiting (ELAST) is first drained
 * into the board's queue, as DAHDI expects.  Bytes moved, or -1 and errno. */
static ssize_t block_io(struct vb_dahdi *d, int c, int writing, void *buf, size_t bytes)
{
    int fd = d->chans[c].fd;
    for (int tries = 0;; tries++) {
        ssize_t n = writing ? write(fd, buf, bytes) : read(fd, buf, bytes);
        if (n >= 0 || errno != VBD_ELAST || tries == 4)
            return n;
        int e = drain_events(d, c);
        if (e < 0) {
            errno = -e;
            return -1;
        }
    }
}

static int mark_lost(struct vb_dahdi *d)
{
    d->lost = 1;
    return vb_fail(&d->base, VB_ELOST, "board %s lost: the DAHDI device was removed", d->base.uri);
}

static int16_t *slot_of(int16_t *ring, vb_board_t *b, uint64_t tick)
{
    return ring + (tick % VB_RING_SLOTS) * (size_t)b->nchan * (size_t)b->block;
}

static int dahdi_commit(vb_board_t *b);

static int dahdi_wait_tick(vb_board_t *b, int timeout_ms, uint64_t *tick)
{
    struct vb_dahdi *d = D(b);
    if (d->lost)
        return mark_lost(d);
    if (d->in_tick && !d->committed) {
        memset(slot_of(d->tx, b, b->tick), 0, (size_t)b->nchan * (size_t)b->block * sizeof(int16_t));
        dahdi_commit(b);
        d->st.underruns++;
    }
    d->in_tick = 0;
    /* The clock: a whole block on the first channel (or an event there). */
    struct pollfd pf = { d->chans[0].fd, POLLIN | POLLPRI, 0 };
    int n = poll(&pf, 1, timeout_ms);
    if (n < 0 && errno != EINTR)
        return vb_fail(b, VB_ESYS, "poll on %s: %s", b->uri, strerror(errno));
    if (n <= 0)
        return vb_fail(b, VB_ETIMEDOUT, "no tick from %s within %d ms", b->uri, timeout_ms);
    if (pf.revents & (POLLERR | POLLHUP | POLLNVAL))
        return mark_lost(d);
    pthread_mutex_lock(&d->lock);
    uint64_t t = d->next++;
    b->tick = t;
    d->in_tick = 1;
    int16_t *rx = slot_of(d->rx, b, t);
    size_t bytes = (size_t)b->block * sizeof(int16_t);
    int rc = VB_OK;
    ring_ends(d);        /* before the reads: the card's state as of this block */
    /* DAHDI tells a span's channels only when it goes into alarm or out of
     * it; which alarms change meanwhile only SPANSTAT shows: look each tick
     * while a span is in alarm. */
    for (int s = 0; s < b->nspans; s++)
        if (d->spans[s].alarms)
            span_alarm_events(d, s);
    for (int c = 0; c < b->nchan && rc == VB_OK; c++) {
        int16_t *dst = rx + (size_t)c * (size_t)b->block;
        ssize_t got = block_io(d, c, 0, dst, bytes);
        if (got >= 0) {
            if ((size_t)got < bytes)     /* a short block: the rest is silence */
                memset((char *)dst + got, 0, bytes - (size_t)got);
        } else if (errno == EAGAIN) {    /* this channel's block is not in yet: silence */
            memset(dst, 0, bytes);
            d->st.late_ticks++;
        } else {
            rc = errno == ENODEV ? mark_lost(d) : chan_fail(d, c, VB_ESYS, "read from", errno);
        }
        if (d->lost && rc == VB_OK)
            rc = mark_lost(d);
    }
    memset(slot_of(d->tx, b, t), 0, (size_t)b->nchan * bytes);
    d->committed = 0;
    d->st.ticks++;
    pthread_mutex_unlock(&d->lock);
    if (rc < 0)
        return rc;
    *tick = t;
    return VB_OK;
}

static int dahdi_commit(vb_board_t *b)
{
    struct vb_dahdi *d = D(b);
    if (d->lost)
        return mark_lost(d);
    if (!d->in_tick || d->committed)
        return vb_fail(b, VB_EINVAL, "commit on %s without a tick: call wait_tick() first", b->uri);
    pthread_mutex_lock(&d->lock);
    d->committed = 1;
    const int16_t *tx = slot_of(d->tx, b, b->tick);
    size_t bytes = (size_t)b->block * sizeof(int16_t);
    int rc = VB_OK;
    for (int c = 0; c < b->nchan && rc == VB_OK; c++) {
        if (block_io(d, c, 1, (void *)(tx + (size_t)c * (size_t)b->block), bytes) >= 0)
            continue;
        if (errno == EAGAIN)             /* transmit buffers full: this block is dropped */
            d->st.overruns++;
        else
            rc = errno == ENODEV ? mark_lost(d) : chan_fail(d, c, VB_ESYS, "write to", errno);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int dahdi_read_events(vb_board_t *b, vb_event_t *buf, int max)
{
    struct vb_dahdi *d = D(b);
    pthread_mutex_lock(&d->lock);
    int n = 0;
    while (n < max && d->ev_count) {
        buf[n++] = d->evq[d->ev_head];
        d->ev_head = (d->ev_head + 1) % EVQ;
        d->ev_count--;
    }
    if (n < max && d->lost && !d->lost_told) {
        buf[n++] = (vb_event_t){ b->tick, VB_EV_BOARD_LOST, -1, -1, 0 };
        d->lost_told = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return n;
}

static int dahdi_control(vb_board_t *b, int cmd, int chan, int value)
{
    struct vb_dahdi *d = D(b);
    if (d->lost)
        return mark_lost(d);
    struct dchan *ch = &d->chans[chan];
    int rc = VB_OK, arg;
    pthread_mutex_lock(&d->lock);
    switch (cmd) {
    case VB_CMD_HOOK:
        arg = value == VB_HOOK_OFF ? VBD_OFFHOOK : value == VB_HOOK_ON ? VBD_ONHOOK : VBD_FLASH;
        if (ioctl(ch->fd, VBD_HOOK, &arg) < 0)
            rc = chan_fail(d, chan, VB_ESYS, "hook on", errno);
        else if (value != VB_HOOK_FLASH) {
            if (ch->hook != value)
                ch->counters[VB_CCNT_HOOK_CHANGES]++;
            ch->hook = value;
            if (value == VB_HOOK_OFF)
                ch->battery = 1;
        }
        break;
    case VB_CMD_RING:
        arg = value ? VBD_RING : VBD_RINGOFF;
        if (ioctl(ch->fd, VBD_HOOK, &arg) < 0)
            rc = chan_fail(d, chan, VB_ESYS, "ring on", errno);
        else {
            if (value && !ch->ringing)
                ch->counters[VB_CCNT_RINGS]++;
            ch->ringing = value;
        }
        break;
    case VB_CMD_CAS:
        arg = value;
        if (ioctl(ch->fd, VBD_SETTXBITS, &arg) < 0)
            rc = chan_fail(d, chan, VB_ESYS, "set CAS bits on", errno);
        else
            ch->cas_tx = value;
        break;
    case VB_CMD_XCONNECT:
        rc = vb_fail(b, VB_EINVAL, "xconnect on %s: DAHDI cross-connects (dacs) are set in system.conf, "
                     "not at run time; bridge in the host", b->uri);
        break;
    case VB_CMD_LOOPBACK:
        arg = value;
        if (ioctl(ch->fd, VBD_LOOPBACK, &arg) < 0)
            rc = chan_fail(d, chan, VB_ESYS, "loopback on", errno);
        else
            ch->loopback = value;
        break;
    default:
        rc = vb_fail(b, VB_EINVAL, "command %d not supported on %s", cmd, b->uri);
    }
    if (rc == VB_OK)
        ch->counters[VB_CCNT_COMMANDS]++;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int dahdi_chan_status(vb_board_t *b, int chan, vb_chan_status_t *out)
{
    struct vb_dahdi *d = D(b);
    struct dchan *ch = &d->chans[chan];
    memset(out, 0, sizeof *out);
    struct vbd_params p;
    memset(&p, 0, sizeof p);
    p.channo = ch->channo;
    int have = ioctl(d->ctl, VBD_GET_PARAMS, &p) == 0;
    pthread_mutex_lock(&d->lock);
    out->hook = ch->type == VB_CHAN_FXS ? (have ? p.rxisoffhook : ch->hook) : ch->hook;
    out->ringing = ch->ringing;
    out->cas_rx = ch->type == VB_CHAN_E1_CAS && have ? p.rxbits : 0;
    out->cas_tx = ch->cas_tx;
    out->xconnect = -1;
    out->loopback = ch->loopback;
    out->battery = ch->type == VB_CHAN_FXO ? ch->battery : 0;
    out->reversed = ch->reversed;
    memcpy(out->counters, ch->counters, sizeof out->counters);
    pthread_mutex_unlock(&d->lock);
    return VB_OK;
}

/* Timing slips: DAHDI counts them only in /proc/dahdi/N, a line
 * "\tTiming slips: N" among the span's counters (none while 0). */
static uint64_t proc_slips(int spanno)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/dahdi/%d", spanno);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long n = 0;
    int lines = 0;
    while (fgets(line, sizeof line, f) && lines++ < 16)   /* the counters come first */
        if (sscanf(line, " Timing slips: %llu", &n) == 1)
            break;
    fclose(f);
    return n;
}

static int dahdi_span_status(vb_board_t *b, int span, vb_span_status_t *out)
{
    struct vb_dahdi *d = D(b);
    struct vbd_spaninfo si;
    memset(&si, 0, sizeof si);
    si.spanno = d->spans[span].spanno;
    if (ioctl(d->ctl, VBD_SPANSTAT, &si) < 0)
        return vb_fail(b, errno == EINVAL ? VB_ELOST : VB_ESYS, "span %d (DAHDI span %d) of %s: %s",
                       span, si.spanno, b->uri, strerror(errno));
    memset(out, 0, sizeof *out);
    out->alarms = (uint32_t)vb_alarms(si.alarms);
    out->counters[VB_SCNT_CRC4] = (uint32_t)si.crc4count;
    out->counters[VB_SCNT_EBIT] = (uint32_t)si.ebitcount;
    out->counters[VB_SCNT_FAS] = (uint32_t)si.fascount;
    out->counters[VB_SCNT_BPV] = (uint32_t)si.bpvcount;
    out->counters[VB_SCNT_SLIPS] = proc_slips(si.spanno);
    return VB_OK;
}

static int dahdi_stats(vb_board_t *b, vb_stats_t *out)
{
    struct vb_dahdi *d = D(b);
    pthread_mutex_lock(&d->lock);
    *out = d->st;
    pthread_mutex_unlock(&d->lock);
    return VB_OK;
}

const struct vb_ops vb_dahdi_ops = {
    .scheme = "dahdi",
    .open = dahdi_open,
    .close = dahdi_close,
    .info = dahdi_info,
    .span_info = dahdi_span_info,
    .chan_info = dahdi_chan_info,
    .start = dahdi_start,
    .wait_tick = dahdi_wait_tick,
    .rings = dahdi_rings,
    .commit = dahdi_commit,
    .read_events = dahdi_read_events,
    .control = dahdi_control,
    .chan_status = dahdi_chan_status,
    .span_status = dahdi_span_status,
    .stats = dahdi_stats,
};
