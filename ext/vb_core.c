/* URI dispatch, argument checks, error strings and the backend table.
 * Backends (vb_sim.c, later dahdi) only see arguments already checked here,
 * so every backend reports bad channels and states the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vb_backend.h"

static const struct vb_ops *const vb_backends[] = { &vb_sim_ops, &vb_dahdi_ops };

const char *vb_version(void)
{
    return VB_VERSION;
}

const char *vb_strerror(int code)
{
    switch (code) {
    case VB_OK: return "ok";
    case VB_EINVAL: return "invalid argument";
    case VB_ENOBOARD: return "no such board";
    case VB_ELOST: return "board lost";
    case VB_ECHAN: return "channel out of range";
    case VB_ESCHEME: return "unknown URI scheme";
    case VB_ENOBACKEND: return "backend not available";
    case VB_EBUSY: return "board busy";
    case VB_ETIMEDOUT: return "timed out";
    case VB_ENOTSTARTED: return "board not started";
    case VB_EAGAIN: return "queue full";
    case VB_ENOMEM: return "out of memory";
    case VB_ESYS: return "system error";
    case VB_EBADSHM: return "bad shared memory";
    case VB_ESPAN: return "span out of range";
    case VB_EPERM: return "owned by another user";
    default: return "unknown error";
    }
}

int vb_failbuf(char *buf, size_t len, int code, const char *fmt, ...)
{
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

int vb_fail(vb_board_t *b, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof b->err, fmt, ap);
    va_end(ap);
    return code;
}

int vb_open(const char *uri, vb_board_t **out, char *err, size_t errlen)
{
    if (!out)
        return vb_failbuf(err, errlen, VB_EINVAL, "vb_open: out is NULL");
    *out = NULL;
    if (!uri)
        return vb_failbuf(err, errlen, VB_EINVAL, "vb_open: uri is NULL");
    const char *sep = strstr(uri, "://");
    if (!sep)
        return vb_failbuf(err, errlen, VB_ESCHEME,
                          "board URI '%s' has no scheme (expected sim://NAME or dahdi:///dev/dahdi)", uri);
    size_t slen = (size_t)(sep - uri);
    if (strlen(uri) >= sizeof((vb_board_t *)0)->uri)
        return vb_failbuf(err, errlen, VB_EINVAL, "board URI too long (%zu characters)", strlen(uri));
    for (size_t i = 0; i < sizeof vb_backends / sizeof vb_backends[0]; i++) {
        const struct vb_ops *ops = vb_backends[i];
        if (strlen(ops->scheme) != slen || strncmp(ops->scheme, uri, slen) != 0)
            continue;
        if (ops->missing)
            return vb_failbuf(err, errlen, VB_ENOBACKEND, "%s: %s", uri, ops->missing);
        vb_board_t *b = NULL;
        int rc = ops->open(uri, sep + 3, &b, err, errlen);
        if (rc < 0)
            return rc;
        b->ops = ops;
        snprintf(b->uri, sizeof b->uri, "%s", uri);
        b->err[0] = '\0';
        *out = b;
        return VB_OK;
    }
    return vb_failbuf(err, errlen, VB_ESCHEME,
                      "unknown board URI scheme '%.*s' in '%s' (known: sim, dahdi)",
                      (int)slen, uri, uri);
}

void vb_close(vb_board_t *b)
{
    if (b)
        b->ops->close(b);
}

const char *vb_errmsg(const vb_board_t *b)
{
    return b ? b->err : "no board";
}

const char *vb_uri(const vb_board_t *b)
{
    return b ? b->uri : "";
}

static int check_chan(vb_board_t *b, int chan)
{
    if (chan < 0 || chan >= b->nchan)
        return vb_fail(b, VB_ECHAN, "channel %d out of range 0..%d on %s",
                       chan, b->nchan - 1, b->uri);
    return VB_OK;
}

static int check_span(vb_board_t *b, int span)
{
    if (span < 0 || span >= b->nspans)
        return vb_fail(b, VB_ESPAN, "span %d out of range 0..%d on %s",
                       span, b->nspans - 1, b->uri);
    return VB_OK;
}

static const char *type_name(int type)
{
    switch (type) {
    case VB_CHAN_FXO: return "FXO";
    case VB_CHAN_FXS: return "FXS";
    case VB_CHAN_E1_CAS: return "E1_CAS";
    case VB_CHAN_E1_BEARER: return "E1_BEARER";
    case VB_CHAN_E1_DCHAN: return "E1_DCHAN";
    default: return "?";
    }
}

/* chan in range and of the one type the control applies to. */
static int check_type(vb_board_t *b, int chan, int type, const char *what)
{
    int rc = check_chan(b, chan);
    if (rc < 0)
        return rc;
    vb_chan_info_t ci;
    rc = b->ops->chan_info(b, chan, &ci);
    if (rc < 0)
        return rc;
    if (ci.type != type)
        return vb_fail(b, VB_EINVAL, "%s applies to %s channels; channel %d on %s is %s",
                       what, type_name(type), chan, b->uri, type_name(ci.type));
    return VB_OK;
}

int vb_board_info(vb_board_t *b, vb_board_info_t *out)
{
    return b->ops->info(b, out);
}

int vb_span_info(vb_board_t *b, int span, vb_span_info_t *out)
{
    int rc = check_span(b, span);
    return rc < 0 ? rc : b->ops->span_info(b, span, out);
}

int vb_chan_info(vb_board_t *b, int chan, vb_chan_info_t *out)
{
    int rc = check_chan(b, chan);
    return rc < 0 ? rc : b->ops->chan_info(b, chan, out);
}

int vb_start(vb_board_t *b, int block)
{
    if (block != 80 && block != 160 && block != 320)
        return vb_fail(b, VB_EINVAL, "block %d on %s: must be 80, 160 or 320 samples",
                       block, b->uri);
    if (b->started)
        return vb_fail(b, VB_EINVAL, "%s already started (block %d)", b->uri, b->block);
    int rc = b->ops->start(b, block);
    if (rc < 0)
        return rc;
    rc = b->ops->rings(b, (const int16_t **)&b->rx_base, &b->tx_base, &b->stride);
    if (rc < 0)
        return rc;
    b->started = 1;
    b->block = block;
    return VB_OK;
}

static int need_started(vb_board_t *b, const char *what)
{
    if (!b->started)
        return vb_fail(b, VB_ENOTSTARTED, "%s on %s: call start() first", what, b->uri);
    return VB_OK;
}

int vb_wait_tick(vb_board_t *b, int timeout_ms, uint64_t *tick)
{
    int rc = need_started(b, "wait_tick");
    if (rc < 0)
        return rc;
    uint64_t t = 0;
    rc = b->ops->wait_tick(b, timeout_ms, &t);
    if (rc < 0)
        return rc;
    b->tick = t;
    if (tick)
        *tick = t;
    return VB_OK;
}

const int16_t *vb_rx(vb_board_t *b)
{
    if (!b->started)
        return NULL;
    return b->rx_base + (b->tick % VB_RING_SLOTS) * b->stride;
}

int16_t *vb_tx(vb_board_t *b)
{
    if (!b->started)
        return NULL;
    return b->tx_base + (b->tick % VB_RING_SLOTS) * b->stride;
}

int vb_rings(vb_board_t *b, const int16_t **rx, int16_t **tx, size_t *slot_stride)
{
    int rc = need_started(b, "rings");
    if (rc < 0)
        return rc;
    if (rx)
        *rx = b->rx_base;
    if (tx)
        *tx = b->tx_base;
    if (slot_stride)
        *slot_stride = b->stride;
    return VB_OK;
}

int vb_commit(vb_board_t *b)
{
    int rc = need_started(b, "commit");
    return rc < 0 ? rc : b->ops->commit(b);
}

int vb_read_events(vb_board_t *b, vb_event_t *buf, int max)
{
    int rc = need_started(b, "read_events");
    if (rc < 0)
        return rc;
    if (!buf || max < 0)
        return vb_fail(b, VB_EINVAL, "read_events on %s: bad buffer", b->uri);
    return b->ops->read_events(b, buf, max);
}

int vb_hook(vb_board_t *b, int chan, int state)
{
    int rc = check_type(b, chan, VB_CHAN_FXO, "hook");
    if (rc < 0)
        return rc;
    if (state != VB_HOOK_ON && state != VB_HOOK_OFF && state != VB_HOOK_FLASH)
        return vb_fail(b, VB_EINVAL, "hook state %d for channel %d on %s: must be 0 onhook, 1 offhook, 2 flash",
                       state, chan, b->uri);
    rc = need_started(b, "hook");
    return rc < 0 ? rc : b->ops->control(b, VB_CMD_HOOK, chan, state);
}

int vb_ring(vb_board_t *b, int chan, int on)
{
    int rc = check_type(b, chan, VB_CHAN_FXS, "ring");
    if (rc < 0)
        return rc;
    rc = need_started(b, "ring");
    return rc < 0 ? rc : b->ops->control(b, VB_CMD_RING, chan, on ? 1 : 0);
}

int vb_set_cas(vb_board_t *b, int chan, int abcd)
{
    int rc = check_type(b, chan, VB_CHAN_E1_CAS, "set_cas");
    if (rc < 0)
        return rc;
    if (abcd < 0 || abcd > 15)
        return vb_fail(b, VB_EINVAL, "CAS bits %d for channel %d on %s: must be 0..15 (ABCD, A is bit 3)",
                       abcd, chan, b->uri);
    rc = need_started(b, "set_cas");
    return rc < 0 ? rc : b->ops->control(b, VB_CMD_CAS, chan, abcd);
}

int vb_xconnect(vb_board_t *b, int a, int peer)
{
    int rc = check_chan(b, a);
    if (rc < 0)
        return rc;
    if (peer != -1) {
        if ((rc = check_chan(b, peer)) < 0)
            return rc;
        if (peer == a)
            return vb_fail(b, VB_EINVAL, "xconnect on %s: channel %d cannot connect to itself", b->uri, a);
    }
    rc = need_started(b, "xconnect");
    return rc < 0 ? rc : b->ops->control(b, VB_CMD_XCONNECT, a, peer);
}

int vb_loopback(vb_board_t *b, int chan, int on)
{
    int rc = check_chan(b, chan);
    if (rc < 0)
        return rc;
    rc = need_started(b, "loopback");
    return rc < 0 ? rc : b->ops->control(b, VB_CMD_LOOPBACK, chan, on ? 1 : 0);
}

int vb_chan_status(vb_board_t *b, int chan, vb_chan_status_t *out)
{
    int rc = check_chan(b, chan);
    return rc < 0 ? rc : b->ops->chan_status(b, chan, out);
}

int vb_span_status(vb_board_t *b, int span, vb_span_status_t *out)
{
    int rc = check_span(b, span);
    return rc < 0 ? rc : b->ops->span_status(b, span, out);
}

int vb_stats(vb_board_t *b, vb_stats_t *out)
{
    return b->ops->stats(b, out);
}
