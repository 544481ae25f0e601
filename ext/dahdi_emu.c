/* DAHDI device emulator: /dev/dahdi/{ctl,channel,pseudo,timer,N} in user
 * space, served from simulated boards (sim://NAME), loaded with LD_PRELOAD.
 *
 * Why: real cards are driven through DAHDI's character devices; these
 * machines cannot load the kernel modules, so unmodified DAHDI programs
 * (dahdi_scan, dahdi_cfg, dahdi_test, r2test) and our own dahdi:// backend
 * run against this emulation of dahdi-base.c's semantics instead.
 *
 * Environment:
 *   VB_DAHDI_BOARDS  comma-separated sim board names, in span order (unset:
 *                    nothing is emulated and every call passes through)
 *   VB_DAHDI_STATE   file holding the "kernel" configuration that dahdi_cfg
 *                    sets and later programs see (default
 *                    /dev/shm/voiceboard-dahdi.FIRSTBOARD)
 *   VB_DAHDI_PACE    "card" (default): lockstep boards tick at real time like
 *                    a card; "free": as fast as the simulator goes;
 *                    "lockstep": a tick waits (up to 10 s) until the program
 *                    has read every block of the channels it reads and
 *                    answered it (written, or waited for the next), so the
 *                    program drives the clock as a host does on sim://
 *   VB_DAHDI_BLOCK   the simulated board's block: 80 (default, 10 ms), 160 or
 *                    320; the far end (hwsim) moves in steps of this size
 *
 * Model: DAHDI span numbers run over the boards' spans in order; E1 spans
 * have 31 channels (chanpos = timeslot; TS16 has no bearer on the simulated
 * card), analog spans one per port.  Configuration (SPANCONFIG, CHANCONFIG,
 * STARTUP) lives in the state file, shared by processes like the kernel's.
 * A process that opens a channel becomes the board's host (vb_start) and a
 * tick thread moves one block per tick between the board and the channels'
 * buffers (numbufs x blocksize, kernel policy: a read returns at most one
 * block, a full receive ring drops new audio).  Only one process at a time
 * can hold channels of a board (the board has one host).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dahdi_abi.h"
#include "vb.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_FD 65536
static int g_block = 80;              /* board block: 10 ms ticks unless VB_DAHDI_BLOCK */
#define EMU_BLOCK g_block
#define STATE_MAGIC 0x3245444948414456ULL   /* "VDAHIDE2": kspan has maint and counter bases */

enum { K_CTL = 1, K_CHANNEL, K_PSEUDO, K_TIMER };

/* ---- "kernel" configuration shared by every process (the state file) ---- */
struct kspan {
    int32_t configured, running, lineconfig, lbo, sync;
    int32_t maint;                    /* DAHDI_MAINT loopback mode (0 none) */
    uint64_t counter_base[VB_SPAN_NCOUNTERS];   /* the board's counters at DAHDI_RESET_COUNTERS */
};
struct kchan { int32_t sigtype, deflaw, idlebits, master; _Atomic int32_t open_pid; int32_t pad; };
struct kstate {
    uint64_t magic;
    int32_t nspans, nchan, defzone, pad;
    struct kspan span[VBD_MAX_SPANS + 1];
    struct kchan chan[VBD_MAX_CHANNELS + 1];
};

/* ---- this process's view ---- */
struct board;
struct span {
    struct board *bd;
    int vbspan, no;                   /* board span index, DAHDI span number */
    vb_span_info_t info;
    int basechan, total;
    int maint;                        /* the loopback this process's tick thread applies */
    int last_alarms;                  /* as dahdi_alarm_notify's lastalarms, for this process */
    int saved_cas[32];                /* network loop: the host's CAS bits, by span channel */
};
struct chan {                         /* one open channel (or pseudo) */
    int channo, sim;                  /* DAHDI number; board channel or -1 */
    struct span *sp;                  /* NULL for pseudo */
    int law, linear, blocksize, numbufs;
    int16_t *rx; int rx_head, rx_ready, rx_fill;
    int16_t *tx; int *tx_len; int tx_head, tx_count, tx_pos;
    int ev[VBD_MAX_EVENTSIZE]; int ev_in, ev_out;
    int txbits, zone, sigfreeze, bufevents, echocan;
    int reader;                       /* has read or waited to read (lockstep pace holds for it) */
    int64_t last_read;                /* CLOCK_MONOTONIC ns of its last block read (card pace) */
    int answered;                     /* since its last block: wrote, or waited for the next */
    int ringing;                      /* FXO port: ring signal present (RING_START..RING_STOP) */
    uint64_t overruns, underruns;
    int aligned;                      /* rx blocks start on the board's block grid */
    uint64_t wakes;                   /* a block ready, an event queued, a buffer freed (EPOLLET) */
    int16_t loop_tx[320];             /* local loop: the block it sent last tick, heard back */
    struct chan *next;                /* on the open list */
};
struct timer { int period_ms, left_ms, expired, ping; };
struct efd { int kind; struct chan *ch; struct timer *tm; };
struct board {
    char name[VB_NAME_MAX];
    vb_board_t *b;
    vb_board_info_t info;
    vb_chan_info_t *ci;
    int started, lost, stop;
    uint64_t fed;                     /* samples fed to channels so far */
    pthread_t thr;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static int g_inited, g_active, g_failed;
static char g_why[512];
static struct board g_boards[8];
static int g_nboards;
static struct span g_spans[VBD_MAX_SPANS + 1];
static int g_nspans, g_nchan;
static struct kstate *g_k;
static struct efd *g_fd[MAX_FD];
static struct chan *g_open;           /* channels with audio, all boards */
static int g_next_pseudo;
enum { PACE_CARD, PACE_FREE, PACE_LOCKSTEP };
static int g_pace;
static char g_boards_env[512];        /* VB_DAHDI_BOARDS as of the last set-up */
static uint64_t g_ticks;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_poll)(struct pollfd *, nfds_t, int);

/* ------------------------------------------------------------------ G.711 */
static int16_t alaw_dec(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0f) << 4, seg = (a & 0x70) >> 4;
    t += seg ? 0x108 : 8;
    if (seg > 1)
        t <<= seg - 1;
    return (int16_t)((a & 0x80) ? t : -t);
}

static uint8_t alaw_enc(int16_t s)
{
    int v = s, mask = 0xd5;
    if (v < 0) { mask = 0x55; v = -v - 1; }
    v >>= 3;
    int seg = 0;
    while (seg < 8 && v > (0x20 << seg) - 1)    /* segment tops 0x1f, 0x3f, ..., 0xfff */
        seg++;
    if (seg >= 8)
        return (uint8_t)(0x7f ^ mask);
    int q = seg < 2 ? v >> 1 : v >> seg;
    return (uint8_t)(((seg << 4) | (q & 0x0f)) ^ mask);
}

static int16_t ulaw_dec(uint8_t u)
{
    u = ~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

static uint8_t ulaw_enc(int16_t s)
{
    int v = s, mask = 0xff;
    if (v < 0) { v = -v; mask = 0x7f; }
    v += 0x84;
    if (v > 0x7fff)
        v = 0x7fff;
    int seg = 0;
    while (seg < 8 && v > (0x100 << seg) - 1)   /* segment tops 0xff, 0x1ff, ..., 0x7fff */
        seg++;
    if (seg >= 8)
        return (uint8_t)(0x7f ^ mask);
    return (uint8_t)(((seg << 4) | ((v >> (seg + 3)) & 0x0f)) ^ mask);
}

/* --------------------------------------------------------------- set-up */
static void resolve(void)
{
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_read = dlsym(RTLD_NEXT, "read");
    real_write = dlsym(RTLD_NEXT, "write");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_poll = dlsym(RTLD_NEXT, "poll");
}

static int fail_init(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_why, sizeof g_why, fmt, ap);
    va_end(ap);
    g_failed = 1;
    fprintf(stderr, "voiceboard dahdi emulator: %s\n", g_why);
    return -1;
}

static int map_state(const char *path)
{
    int fd = real_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_init("cannot open state file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || ((size_t)st.st_size < sizeof(struct kstate)
                               && ftruncate(fd, sizeof(struct kstate)) < 0)) {
        real_close(fd);
        return fail_init("cannot size state file %s: %s", path, strerror(errno));
    }
    void *m = mmap(NULL, sizeof(struct kstate), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    real_close(fd);
    if (m == MAP_FAILED)
        return fail_init("cannot map state file %s: %s", path, strerror(errno));
    g_k = m;
    if (g_k->magic != STATE_MAGIC || g_k->nspans != g_nspans || g_k->nchan != g_nchan) {
        /* new, or the boards changed: the "module" starts unconfigured */
        memset(g_k, 0, sizeof *g_k);
        g_k->nspans = g_nspans;
        g_k->nchan = g_nchan;
        g_k->magic = STATE_MAGIC;
    }
    return 0;
}

static void *tick_thread(void *arg);
static void procdir_remove(void);
static void notify_change(void);

/* VB_DAHDI_BOARDS changed while nothing is open (a test process serving one
 * hwsim after another): stop the tick threads, let the boards go, start over.
 * Caller holds g_lock; it is dropped while the threads finish. */
static void teardown_locked(void)
{
    for (int i = 0; i < g_nboards; i++)
        g_boards[i].stop = 1;
    pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < g_nboards; i++)
        if (g_boards[i].started)
            pthread_join(g_boards[i].thr, NULL);
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nboards; i++) {
        vb_close(g_boards[i].b);
        free(g_boards[i].ci);
    }
    procdir_remove();
    memset(g_boards, 0, sizeof g_boards);
    memset(g_spans, 0, sizeof g_spans);
    if (g_k)
        munmap(g_k, sizeof *g_k);
    g_k = NULL;
    g_nboards = g_nspans = g_nchan = 0;
    g_inited = g_active = g_failed = 0;
    pthread_cond_destroy(&g_cond);
}

static int nothing_open(void)
{
    for (int fd = 0; fd < MAX_FD; fd++)
        if (g_fd[fd])
            return 0;
    return 1;
}

/* Attach the boards (not as host) and lay out spans and channels. */
static int init_locked(void)
{
    const char *env = getenv("VB_DAHDI_BOARDS");
    if (g_inited && env && strcmp(env, g_boards_env) != 0 && nothing_open())
        teardown_locked();
    if (g_inited)
        return g_failed ? -1 : 0;
    g_inited = 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &ca);
    const char *pace = getenv("VB_DAHDI_PACE");
    g_pace = !pace || !*pace || !strcmp(pace, "card") ? PACE_CARD
           : !strcmp(pace, "free") ? PACE_FREE : !strcmp(pace, "lockstep") ? PACE_LOCKSTEP : -1;
    if (g_pace < 0)
        return fail_init("VB_DAHDI_PACE=%s: expected card, free or lockstep", pace);
    const char *blk = getenv("VB_DAHDI_BLOCK");
    g_block = blk && *blk ? atoi(blk) : 80;
    if (g_block != 80 && g_block != 160 && g_block != 320)
        return fail_init("VB_DAHDI_BLOCK=%s: expected 80, 160 or 320", blk);
    char list[512];
    snprintf(list, sizeof list, "%s", getenv("VB_DAHDI_BOARDS"));
    snprintf(g_boards_env, sizeof g_boards_env, "%s", list);
    int chan = 1;
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (g_nboards == (int)(sizeof g_boards / sizeof g_boards[0]))
            return fail_init("too many boards in VB_DAHDI_BOARDS (at most %d)", g_nboards);
        struct board *bd = &g_boards[g_nboards];
        snprintf(bd->name, sizeof bd->name, "%s", name);
        char uri[96], err[256];
        snprintf(uri, sizeof uri, "sim://%s", name);
        if (vb_open(uri, &bd->b, err, sizeof err) < 0)
            return fail_init("%s", err);
        g_nboards++;
        vb_board_info(bd->b, &bd->info);
        bd->ci = calloc((size_t)bd->info.nchan, sizeof *bd->ci);
        if (!bd->ci)
            return fail_init("out of memory");
        for (int c = 0; c < bd->info.nchan; c++)
            vb_chan_info(bd->b, c, &bd->ci[c]);
        for (int s = 0; s < bd->info.nspans; s++) {
            if (g_nspans == VBD_MAX_SPANS)
                return fail_init("more than %d spans", VBD_MAX_SPANS);
            struct span *sp = &g_spans[++g_nspans];
            sp->bd = bd;
            sp->vbspan = s;
            sp->no = g_nspans;
            vb_span_info(bd->b, s, &sp->info);
            sp->basechan = chan;
            sp->total = sp->info.kind == VB_SPAN_E1 ? 31 : sp->info.nchan;
            chan += sp->total;
        }
    }
    g_nchan = chan - 1;
    if (g_nchan > VBD_MAX_CHANNELS)
        return fail_init("%d channels: more than DAHDI's %d", g_nchan, VBD_MAX_CHANNELS);
    char path[600];
    const char *st = getenv("VB_DAHDI_STATE");
    if (st && *st)
        snprintf(path, sizeof path, "%s", st);
    else
        snprintf(path, sizeof path, "/dev/shm/voiceboard-dahdi.%s", g_boards[0].name);
    if (map_state(path) < 0)
        return -1;
    g_active = 1;
    return 0;
}

/* ------------------------------------------------------------- lookups */
static struct span *span_of_chan(int channo)
{
    for (int s = 1; s <= g_nspans; s++)
        if (channo >= g_spans[s].basechan && channo < g_spans[s].basechan + g_spans[s].total)
            return &g_spans[s];
    return NULL;
}

/* The board channel behind a DAHDI channel, or -1 (E1 TS16). */
static int sim_chan(struct span *sp, int channo)
{
    int pos = channo - sp->basechan + 1;
    for (int c = sp->info.first_chan; c < sp->info.first_chan + sp->info.nchan; c++) {
        int ts = sp->bd->ci[c].timeslot;
        if ((sp->info.kind == VB_SPAN_E1 ? ts : c - sp->info.first_chan + 1) == pos)
            return c;
    }
    return -1;
}

static int sigcap_of(struct span *sp, int sim)
{
    if (sim < 0)
        return VBD_SIG_CLEAR | VBD_SIG_HDLCRAW | VBD_SIG_HDLCFCS | VBD_SIG_HDLCNET
             | VBD_SIG_HARDHDLC | VBD_SIG_MTP2;
    switch (sp->bd->ci[sim].type) {
    case VB_CHAN_FXO:      /* a port to the exchange: FXS signalling */
        return VBD_SIG_FXSKS | VBD_SIG_FXSLS | VBD_SIG_SF;
    case VB_CHAN_FXS:      /* a port to a phone: FXO signalling */
        return VBD_SIG_FXOKS | VBD_SIG_FXOLS | VBD_SIG_FXOGS | VBD_SIG_SF;
    default:
        return VBD_SIG_EM | VBD_SIG_CLEAR | VBD_SIG_FXSLS | VBD_SIG_FXSGS | VBD_SIG_FXSKS
             | VBD_SIG_FXOLS | VBD_SIG_FXOGS | VBD_SIG_FXOKS | VBD_SIG_CAS | VBD_SIG_EM_E1
             | VBD_SIG_DACS_RBS | VBD_SIG_HARDHDLC | VBD_SIG_MTP2 | VBD_SIG_DACS;
    }
}

static int is_e1(struct span *sp) { return sp->info.kind == VB_SPAN_E1; }

/* What the simulated card and carrier show for this span, in DAHDI bits;
 * a framing that does not match the carrier's loses (multi)frame alignment.
 * In a loopback (DAHDI_MAINT) the span is in LOOP alarm, as dahdi_alarm_notify
 * sets it; in local loop the receiver hears the card's own signal, so the
 * line's alarms do not show. */
static int span_alarms_in(struct span *sp, int maint)
{
    vb_span_status_t st;
    if (vb_span_status(sp->bd->b, sp->vbspan, &st) < 0 || sp->bd->lost)
        return VBD_ALARM_RED | VBD_ALARM_LOS | (maint ? VBD_ALARM_LOOPBACK : 0);
    if (maint == VBD_MAINT_LOCALLOOP)
        return VBD_ALARM_LOOPBACK;
    int a = maint ? VBD_ALARM_LOOPBACK : 0;
    if (st.alarms & VB_ALARM_LOS) a |= VBD_ALARM_RED | VBD_ALARM_LOS;
    if (st.alarms & VB_ALARM_LOF) a |= VBD_ALARM_RED | VBD_ALARM_LFA;
    if (st.alarms & VB_ALARM_AIS) a |= VBD_ALARM_BLUE;
    if (st.alarms & VB_ALARM_RAI) a |= VBD_ALARM_YELLOW;
    struct kspan *ks = &g_k->span[sp->no];
    if (is_e1(sp) && ks->configured) {
        int ccs = !!(ks->lineconfig & VBD_CONFIG_CCS), crc4 = !!(ks->lineconfig & VBD_CONFIG_CRC4);
        if (ccs != (sp->info.framing == VB_FRAMING_CCS))
            a |= VBD_ALARM_RED | VBD_ALARM_LFA;
        else if (crc4 != !!sp->info.crc4)
            a |= VBD_ALARM_RED | VBD_ALARM_LMFA;
    }
    return a;
}

static int span_alarms(struct span *sp) { return span_alarms_in(sp, g_k->span[sp->no].maint); }

/* An error counter as DAHDI shows it: since the last DAHDI_RESET_COUNTERS. */
static int span_counter(struct span *sp, const vb_span_status_t *st, int which)
{
    uint64_t base = g_k->span[sp->no].counter_base[which];
    return st->counters[which] > base ? (int)(st->counters[which] - base) : 0;
}

/* -------------------------------------------------------------- ioctls */
/* printf into a fixed DAHDI text field, cut to fit (as the kernel's strlcpy). */
static void field(char *dst, size_t size, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    size_t n = strlen(tmp);
    if (n >= size)
        n = size - 1;
    memcpy(dst, tmp, n);
    dst[n] = '\0';
}

static int chan_law(int channo, struct span *sp)
{
    int d = g_k->chan[channo].deflaw;
    if (d)
        return d;
    if (sp && is_e1(sp))
        return VBD_LAW_ALAW;
    return sp && sp->bd->info.law == VB_LAW_ULAW ? VBD_LAW_MULAW : VBD_LAW_ALAW;
}

/* A channel's name, as a driver gives it: VB/BOARD/SPAN/POS, with the port
 * type before POS on analog ports (VB/BOARD/1/FXO/2), so that lsdahdi tells
 * FXO from FXS ports before dahdi_cfg, as it does from a Rhino card's names. */
static void chan_name(struct span *sp, int sim, int chanpos, char *dst, size_t size)
{
    int type = sim >= 0 ? sp->bd->ci[sim].type : -1;
    if (type == VB_CHAN_FXO || type == VB_CHAN_FXS)
        field(dst, size, "VB/%s/%d/%s/%d", sp->bd->name, sp->vbspan + 1,
              type == VB_CHAN_FXO ? "FXO" : "FXS", chanpos);
    else
        field(dst, size, "VB/%s/%d/%d", sp->bd->name, sp->vbspan + 1, chanpos);
}

static int get_params(int channo, struct chan *open, struct vbd_params *p)
{
    int want_master = channo & VBD_GET_PARAMS_RETURN_MASTER;
    channo &= ~VBD_GET_PARAMS_RETURN_MASTER;
    struct span *sp = span_of_chan(channo);
    if (!sp && !(open && !open->sp))
        return -EINVAL;
    memset(p, 0, sizeof *p);
    p->channo = channo;
    if (!sp) {                          /* pseudo */
        snprintf(p->name, sizeof p->name, "Pseudo/%d", channo);
        p->sigtype = p->sigcap = VBD_SIG_CLEAR;
        p->curlaw = open->law;
        return 0;
    }
    int sim = sim_chan(sp, channo);
    p->spanno = sp->no;
    p->chanpos = channo - sp->basechan + 1;
    p->sigtype = g_k->chan[channo].sigtype;
    p->sigcap = sigcap_of(sp, sim);
    p->idlebits = g_k->chan[channo].idlebits;
    p->curlaw = open ? open->law : chan_law(channo, sp);
    chan_name(sp, sim, p->chanpos, p->name, sizeof p->name);
    p->rxbits = p->txbits = -1;
    if (sim >= 0) {
        vb_chan_status_t cs;
        vb_chan_status(sp->bd->b, sim, &cs);
        int type = sp->bd->ci[sim].type;
        if (type == VB_CHAN_FXS)
            p->rxisoffhook = cs.hook;
        else if (type == VB_CHAN_FXO)
            p->rxisoffhook = open ? open->ringing : cs.ringing;
        if (type == VB_CHAN_E1_CAS) {
            p->rxbits = g_k->span[sp->no].maint == VBD_MAINT_LOCALLOOP ? cs.cas_tx : cs.cas_rx;
            p->txbits = cs.cas_tx;
        }
    }
    p->prewinktime = 50; p->preflashtime = 50; p->winktime = 150; p->flashtime = 750;
    p->starttime = 1500; p->rxwinktime = 300; p->rxflashtime = 1250; p->debouncetime = 600;
    p->pulsebreaktime = 50; p->pulsemaketime = 50; p->pulseaftertime = 750;
    p->chan_alarms = (uint32_t)span_alarms(sp);
    if (want_master)
        p->channo |= (g_k->chan[channo].master ? g_k->chan[channo].master : channo) << 16;
    return 0;
}

/* The span the board times from: the running span without alarms that has
 * the lowest non-zero sync priority (system.conf's span= timing), or 0. */
static int sync_source(void)
{
    int best = 0;
    for (int s = 1; s <= g_nspans; s++) {
        int pr = g_k->span[s].sync;
        if (g_k->span[s].running && pr > 0 && !span_alarms(&g_spans[s])
            && (!best || pr < g_k->span[best].sync))
            best = s;
    }
    return best;
}

static int spanstat(int spanno, struct vbd_spaninfo *si)
{
    if (spanno < 1 || spanno > g_nspans)
        return -EINVAL;
    struct span *sp = &g_spans[spanno];
    struct kspan *ks = &g_k->span[spanno];
    vb_span_status_t st = { 0 };
    vb_span_status(sp->bd->b, sp->vbspan, &st);
    memset(si, 0, sizeof *si);
    si->spanno = spanno;
    field(si->name, sizeof si->name, "VB/%s/%d", sp->bd->name, sp->vbspan + 1);
    field(si->desc, sizeof si->desc, "voiceboard %s span %d (%s)", sp->bd->name, sp->vbspan + 1,
             is_e1(sp) ? "E1" : "analog");
    si->alarms = span_alarms(sp);
    si->crc4count = span_counter(sp, &st, VB_SCNT_CRC4);
    si->ebitcount = span_counter(sp, &st, VB_SCNT_EBIT);
    si->fascount = span_counter(sp, &st, VB_SCNT_FAS);
    si->fecount = (uint32_t)si->fascount;
    si->bpvcount = span_counter(sp, &st, VB_SCNT_BPV);
    si->cvcount = (uint32_t)si->bpvcount;
    int configured = 0;
    for (int c = sp->basechan; c < sp->basechan + sp->total; c++)
        configured += g_k->chan[c].sigtype != 0;
    si->numchans = configured;
    si->totalchans = sp->total;
    si->totalspans = g_nspans;
    si->syncsrc = sync_source();
    si->lbo = ks->lbo;
    si->lineconfig = ks->configured ? ks->lineconfig : 0;
    snprintf(si->lboname, sizeof si->lboname, "%s", is_e1(sp) ? "0 db (CSU)/0-133 feet (DSX-1)" : "");
    field(si->location, sizeof si->location, "sim://%s", sp->bd->name);
    snprintf(si->manufacturer, sizeof si->manufacturer, "voiceboard");
    snprintf(si->devicetype, sizeof si->devicetype, "voiceboard hwsim %s card",
             is_e1(sp) ? "E1" : "analog");
    if (is_e1(sp)) {
        si->linecompat = VBD_CONFIG_AMI | VBD_CONFIG_HDB3 | VBD_CONFIG_CCS | VBD_CONFIG_CRC4;
        snprintf(si->spantype, sizeof si->spantype, "E1");
    }
    return 0;
}

static int chanconfig(const struct vbd_chanconfig *cc)
{
    struct span *sp = span_of_chan(cc->chan);
    if (!sp)
        return -EINVAL;
    struct kchan *kc = &g_k->chan[cc->chan];
    if (cc->sigtype) {
        int cap = sigcap_of(sp, sim_chan(sp, cc->chan));
        if ((cc->sigtype & cap) != cc->sigtype)
            return -EINVAL;
        int robbed = cc->sigtype & (VBD_SIG_CAS | VBD_SIG_EM | VBD_SIG_EM_E1 | VBD_SIG_FXO_BIT | VBD_SIG_FXS_BIT);
        if (is_e1(sp) && robbed && (g_k->span[sp->no].lineconfig & VBD_CONFIG_CCS))
            return -EINVAL;           /* no CAS bits on a CCS span */
    }
    if (kc->open_pid && kc->open_pid != getpid() && kill(kc->open_pid, 0) == 0)
        return -EBUSY;
    if (cc->deflaw < 0 || cc->deflaw > VBD_LAW_ALAW)
        return -EINVAL;
    kc->sigtype = cc->sigtype;
    kc->deflaw = cc->deflaw;
    kc->idlebits = cc->idlebits;
    kc->master = cc->master;
    return 0;
}

static int spanconfig(const struct vbd_lineconfig *lc)
{
    if (lc->span < 1 || lc->span > g_nspans)
        return -EINVAL;
    struct span *sp = &g_spans[lc->span];
    if (!is_e1(sp) && lc->lineconfig)
        return -EINVAL;
    if (is_e1(sp) && (lc->lineconfig & (VBD_CONFIG_ESF | VBD_CONFIG_D4 | VBD_CONFIG_B8ZS)))
        return -EINVAL;               /* T1 framing or coding on an E1 span */
    struct kspan *ks = &g_k->span[lc->span];
    ks->lineconfig = lc->lineconfig;
    ks->lbo = lc->lbo;
    ks->sync = lc->sync;
    ks->configured = 1;
    return 0;
}

/* ------------------------------------------------------------ /proc/dahdi */
/* lsdahdi (and anything else using DAHDI's Perl modules) reads the span
 * files /proc/dahdi/N.  They are served from a private directory made at
 * the first access (TMPDIR/vb-dahdi-XXXXXX, removed at exit by the process
 * that made it): open, stat, access and opendir of /proc/dahdi[/...] go
 * there, and each open of a span file writes it anew, so it shows the
 * alarms and counters of that moment, as the kernel's seq_file does. */
static char g_procdir[256];           /* "" until made */
static pid_t g_procdir_pid;

static const char *sigstr(int sig)
{
    switch (sig) {
    case VBD_SIG_FXSLS: return "FXSLS";
    case VBD_SIG_FXSKS: return "FXSKS";
    case VBD_SIG_FXSGS: return "FXSGS";
    case VBD_SIG_FXOLS: return "FXOLS";
    case VBD_SIG_FXOKS: return "FXOKS";
    case VBD_SIG_FXOGS: return "FXOGS";
    case VBD_SIG_EM: return "E&M";
    case VBD_SIG_EM_E1: return "E&M-E1";
    case VBD_SIG_CLEAR: return "Clear";
    case VBD_SIG_HDLCRAW: return "HDLCRAW";
    case VBD_SIG_HDLCFCS: return "HDLCFCS";
    case VBD_SIG_HDLCNET: return "HDLCNET";
    case VBD_SIG_HARDHDLC: return "Hardware-assisted HDLC";
    case VBD_SIG_MTP2: return "MTP2";
    case VBD_SIG_SLAVE: return "Slave";
    case VBD_SIG_CAS: return "CAS";
    case VBD_SIG_DACS: return "DACS";
    case VBD_SIG_DACS_RBS: return "DACS+RBS";
    case VBD_SIG_SF: return "SF (ToneOnly)";
    default: return "Unconfigured";
    }
}

/* dahdi-base.c's alarm words, each followed by a space. */
static void put_alarms(FILE *f, int alarms)
{
    if (alarms <= 0)
        return;
    fprintf(f, "%s%s%s%s%s%s", (alarms & VBD_ALARM_BLUE) ? "BLUE " : "",
            (alarms & VBD_ALARM_YELLOW) ? "YELLOW " : "", (alarms & VBD_ALARM_RED) ? "RED " : "",
            (alarms & VBD_ALARM_LOOPBACK) ? "LOOP " : "",
            (alarms & VBD_ALARM_RECOVER) ? "RECOVERING " : "",
            (alarms & VBD_ALARM_NOTOPEN) ? "NOTOPEN " : "");
}

/* lineconfig_str: the coding, framing and CRC-4 words joined by '/'. */
static void put_lineconfig(FILE *f, int lc)
{
    static const char *const bit_name[] = { [4] = "D4", [5] = "ESF", [6] = "AMI", [7] = "B8ZS",
                                            [8] = "CCS", [9] = "HDB3", [10] = "CRC4" };
    int coding = 0, framing = 0, written = 0;
    fputc(' ', f);
    for (int bit = 4; bit <= 10; bit++) {
        int mask = 1 << bit, word = 0;
        if (!(lc & mask))
            continue;
        if (!coding && (mask == VBD_CONFIG_B8ZS || mask == VBD_CONFIG_AMI || mask == VBD_CONFIG_HDB3))
            coding = word = 1;
        else if (!framing && (mask == VBD_CONFIG_ESF || mask == VBD_CONFIG_D4 || mask == VBD_CONFIG_CCS))
            framing = word = 1;
        else if (mask == VBD_CONFIG_CRC4)
            word = 1;
        if (word)
            fprintf(f, "%s%s", written++ ? "/" : "", bit_name[bit]);
    }
}

static int chan_in_use(int channo)
{
    int32_t pid = atomic_load(&g_k->chan[channo].open_pid);
    return pid && (pid == getpid() || kill(pid, 0) == 0);
}

/* The timing master, as the kernel's master_span: the sync source, else the
 * first span. */
static int master_span(void)
{
    int s = sync_source();
    return s ? s : (g_nspans ? 1 : 0);
}

/* dahdi_seq_show for one span, into a stream. */
static void proc_span(FILE *f, struct span *sp)
{
    vb_span_status_t st = { 0 };
    vb_span_status(sp->bd->b, sp->vbspan, &st);
    struct vbd_spaninfo si;
    spanstat(sp->no, &si);
    fprintf(f, "Span %d: %s \"%s\"", sp->no, si.name, si.desc);
    if (master_span() == sp->no)
        fprintf(f, " (MASTER)");
    if (si.lineconfig)
        put_lineconfig(f, si.lineconfig);
    fputc(' ', f);
    put_alarms(f, si.alarms);
    if (si.syncsrc == sp->no)
        fprintf(f, "ClockSource ");
    fputc('\n', f);
    if (si.bpvcount) fprintf(f, "\tBPV count: %d\n", si.bpvcount);
    if (si.crc4count) fprintf(f, "\tCRC4 error count: %d\n", si.crc4count);
    if (si.ebitcount) fprintf(f, "\tE-bit error count: %d\n", si.ebitcount);
    if (si.fascount) fprintf(f, "\tFAS error count: %d\n", si.fascount);
    if (span_counter(sp, &st, VB_SCNT_SLIPS))
        fprintf(f, "\tTiming slips: %d\n", span_counter(sp, &st, VB_SCNT_SLIPS));
    fputc('\n', f);
    for (int c = sp->basechan; c < sp->basechan + sp->total; c++) {
        int pos = c - sp->basechan + 1, sim = sim_chan(sp, c);
        char name[40];
        chan_name(sp, sim, pos, name, sizeof name);
        fprintf(f, "\t%4d %s ", c, name);
        struct kchan *kc = &g_k->chan[c];
        if (kc->sigtype == VBD_SIG_SLAVE && kc->master > 0 && kc->master <= g_nchan)
            fprintf(f, "%s ", sigstr(g_k->chan[kc->master].sigtype));
        else if (kc->sigtype)
            fprintf(f, "%s ", sigstr(kc->sigtype));
        else if (!sigcap_of(sp, sim))
            fprintf(f, "Reserved ");
        if (chan_in_use(c))
            fprintf(f, "(In use) ");
        put_alarms(f, si.alarms);
        fputc('\n', f);
    }
}

static void procdir_path(char *dst, size_t size, const char *rest)
{
    snprintf(dst, size, "%s/proc/dahdi%s", g_procdir, rest);
}

/* Write /proc/dahdi/N into the private directory (whole, then renamed in:
 * a reader never sees half a file). */
static void proc_write_span(struct span *sp)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    proc_span(f, sp);
    fclose(f);
    char path[320], tmp[340];
    char rest[16];
    snprintf(rest, sizeof rest, "/%d", sp->no);
    procdir_path(path, sizeof path, rest);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = real_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd >= 0) {
        size_t done = 0;
        while (done < len) {
            ssize_t w = real_write(fd, text + done, len - done);
            if (w <= 0)
                break;
            done += (size_t)w;
        }
        real_close(fd);
        rename(tmp, path);
    }
    free(text);
}

static void procdir_remove(void)
{
    if (!g_procdir[0] || g_procdir_pid != getpid())
        return;                       /* a forked child leaves its parent's directory alone */
    char path[320];
    for (int s = 1; s <= g_nspans; s++) {
        char rest[16];
        snprintf(rest, sizeof rest, "/%d", s);
        procdir_path(path, sizeof path, rest);
        unlink(path);
    }
    procdir_path(path, sizeof path, "");
    rmdir(path);
    snprintf(path, sizeof path, "%s/proc", g_procdir);
    rmdir(path);
    rmdir(g_procdir);
    g_procdir[0] = '\0';
}

static void procdir_at_exit(void)
{
    /* trylock: exit() must not wait on a thread stuck inside the emulator */
    int locked = pthread_mutex_trylock(&g_lock) == 0;
    procdir_remove();
    if (locked)
        pthread_mutex_unlock(&g_lock);
}

/* The private /proc/dahdi, made once per process; caller holds g_lock. */
static int procdir_make(void)
{
    if (g_procdir[0])
        return 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_procdir, sizeof g_procdir, "%s/vb-dahdi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_procdir)) {
        g_procdir[0] = '\0';
        return -1;
    }
    static int registered;
    if (!registered && atexit(procdir_at_exit) == 0)
        registered = 1;
    g_procdir_pid = getpid();
    char path[320];
    snprintf(path, sizeof path, "%s/proc", g_procdir);
    mkdir(path, 0555);
    procdir_path(path, sizeof path, "");
    mkdir(path, 0555);
    for (int s = 1; s <= g_nspans; s++)
        proc_write_span(&g_spans[s]);
    return 0;
}

/* /proc/dahdi or below it, while boards are served: the path in the private
 * directory (a span file written anew when `fresh`); else the path itself. */
static const char *proc_redirect(const char *path, char *buf, size_t size, int fresh)
{
    static const char pre[] = "/proc/dahdi";
    if (!path || strncmp(path, pre, sizeof pre - 1) != 0
        || (path[sizeof pre - 1] != '\0' && path[sizeof pre - 1] != '/')
        || !getenv("VB_DAHDI_BOARDS"))
        return path;
    if (!real_open)
        resolve();
    const char *rest = path + sizeof pre - 1;
    pthread_mutex_lock(&g_lock);
    if (init_locked() < 0 || !g_active || procdir_make() < 0) {
        pthread_mutex_unlock(&g_lock);
        return path;                  /* nothing served: as without the modules */
    }
    char *end;
    long n = rest[0] == '/' ? strtol(rest + 1, &end, 10) : 0;
    if (fresh && n >= 1 && n <= g_nspans && !*end)
        proc_write_span(&g_spans[n]);
    procdir_path(buf, size, rest);
    pthread_mutex_unlock(&g_lock);
    return buf;
}

/* DAHDI_MAINT on a span, with the semantics of dahdi-base.c and an E1
 * framer's driver (wct4xxp): the loopback modes are kept in the state file
 * like the kernel's maintstat and carried out by the tick thread of the
 * process that hosts the board; E1 has no loop-up/loop-down codes; the
 * counters reset to zero as DAHDI shows them.  Analog spans have no
 * maintenance (ENOSYS, like wctdm's). */
static int maint(const struct vbd_maintinfo *m)
{
    if (m->spanno < 1 || m->spanno > g_nspans)
        return -EINVAL;
    struct span *sp = &g_spans[m->spanno];
    struct kspan *ks = &g_k->span[m->spanno];
    if (!is_e1(sp))
        return -ENOSYS;
    switch (m->command) {
    case VBD_MAINT_NONE:
    case VBD_MAINT_LOCALLOOP:
    case VBD_MAINT_NETWORKLINELOOP:
    case VBD_MAINT_NETWORKPAYLOADLOOP:
        ks->maint = m->command;
        notify_change();
        return 0;
    case VBD_RESET_COUNTERS: {
        vb_span_status_t st;
        if (vb_span_status(sp->bd->b, sp->vbspan, &st) < 0)
            return -EIO;
        for (int i = 0; i < VB_SPAN_NCOUNTERS; i++)
            ks->counter_base[i] = st.counters[i];
        return 0;
    }
    default:                          /* loop-up/down codes (T1 only), error insertion, PRBS */
        return -ENOSYS;
    }
}

/* ------------------------------------------------------- channel buffers */
static void chan_event(struct chan *ch, int ev)
{
    int next = (ch->ev_in + 1) % VBD_MAX_EVENTSIZE;
    if (next == ch->ev_out)
        return;                       /* queue full: the kernel throws it away */
    ch->ev[ch->ev_in] = ev;
    ch->ev_in = next;
    ch->wakes++;
}

static int chan_has_event(struct chan *ch) { return ch->ev_in != ch->ev_out; }

static int set_bufs(struct chan *ch, int numbufs, int blocksize)
{
    if (blocksize < 16 || blocksize > VBD_MAX_BLOCKSIZE || numbufs < 2 || numbufs > VBD_MAX_NUM_BUFS
        || numbufs * blocksize > VBD_MAX_BUF_SPACE)
        return -EINVAL;
    int16_t *rx = calloc((size_t)(numbufs * blocksize), sizeof *rx);
    int16_t *tx = calloc((size_t)(numbufs * blocksize), sizeof *tx);
    int *tl = calloc((size_t)numbufs, sizeof *tl);
    if (!rx || !tx || !tl) {
        free(rx); free(tx); free(tl);
        return -ENOMEM;
    }
    free(ch->rx); free(ch->tx); free(ch->tx_len);
    ch->rx = rx; ch->tx = tx; ch->tx_len = tl;
    ch->numbufs = numbufs;
    ch->blocksize = blocksize;
    ch->rx_head = ch->rx_ready = ch->rx_fill = 0;
    ch->aligned = 0;
    ch->tx_head = ch->tx_count = ch->tx_pos = 0;
    return 0;
}

/* One tick of samples into the receive ring; a full ring drops them.
 * pos: the board's sample count at s[0].  Every channel's blocks start on
 * the same grid (pos a multiple of the block size), whenever it was opened,
 * so that all channels of a block size complete their blocks in the same
 * tick, as on a card where one interrupt fills them all. */
static void chan_feed(struct chan *ch, const int16_t *s, int n, uint64_t pos)
{
    for (int i = 0; i < n; i++) {
        if (!ch->aligned) {
            if ((pos + (uint64_t)i) % (uint64_t)ch->blocksize)
                continue;
            ch->aligned = 1;
        }
        if (ch->rx_ready == ch->numbufs) {
            ch->overruns++;
            if (ch->bufevents)
                chan_event(ch, VBD_EVENT_READ_OVERRUN);
            return;
        }
        int buf = (ch->rx_head + ch->rx_ready) % ch->numbufs;
        ch->rx[buf * ch->blocksize + ch->rx_fill++] = s ? s[i] : 0;
        if (ch->rx_fill == ch->blocksize) {
            ch->rx_fill = 0;
            ch->rx_ready++;
            ch->wakes++;
        }
    }
}

/* One tick of samples out of the transmit ring; silence when it runs dry. */
static void chan_drain(struct chan *ch, int16_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        if (!ch->tx_count) {
            if (out)
                memset(out + i, 0, (size_t)(n - i) * sizeof *out);
            if (i < n)
                ch->underruns++;
            return;
        }
        int16_t v = ch->tx[ch->tx_head * ch->blocksize + ch->tx_pos++];
        if (out)
            out[i] = v;
        if (ch->tx_pos >= ch->tx_len[ch->tx_head]) {
            ch->tx_pos = 0;
            ch->tx_head = (ch->tx_head + 1) % ch->numbufs;
            ch->tx_count--;
            ch->wakes++;
        }
    }
}

/* ------------------------------------------------------------ tick thread */
static void deliver(struct board *bd, const vb_event_t *ev)
{
    for (struct chan *ch = g_open; ch; ch = ch->next) {
        if (!ch->sp || ch->sp->bd != bd)
            continue;
        if (ev->kind == VB_EV_BOARD_LOST) {
            chan_event(ch, VBD_EVENT_REMOVED);
            continue;
        }
        if (ev->kind == VB_EV_ALARM_SET || ev->kind == VB_EV_ALARM_CLEAR)
            continue;                 /* alarm_notify tells the span's channels, as the kernel does */
        if (ch->sim != ev->chan)
            continue;
        if (ev->kind == VB_EV_CAS && (ch->sigfreeze || ch->sp->maint == VBD_MAINT_LOCALLOOP))
            continue;                 /* frozen, or the receiver hears the card's own bits */
        switch (ev->kind) {
        case VB_EV_HOOK_OFF: chan_event(ch, VBD_EVENT_RINGOFFHOOK); break;
        case VB_EV_HOOK_ON: chan_event(ch, VBD_EVENT_ONHOOK); break;
        case VB_EV_FLASH: chan_event(ch, VBD_EVENT_WINKFLASH); break;
        case VB_EV_RING_START:
            ch->ringing = 1;
            chan_event(ch, VBD_EVENT_RINGBEGIN);
            chan_event(ch, VBD_EVENT_RINGOFFHOOK);
            break;
        case VB_EV_RING_STOP:             /* no DAHDI event: GET_PARAMS shows the ring gone */
            ch->ringing = 0;
            break;
        case VB_EV_LOOP_DROP: chan_event(ch, VBD_EVENT_ONHOOK); break;
        case VB_EV_BATTERY_REVERSAL: chan_event(ch, VBD_EVENT_POLARITY); break;
        case VB_EV_CAS: chan_event(ch, VBD_EVENT_BITSCHANGED); break;
        default: break;
        }
    }
}

/* epoll sets that hold emulated descriptors.  The kernel cannot see an
 * emulated descriptor's readiness, so such a set is kept here (fd, events,
 * data) and epoll_wait checks it like poll does; a private eventfd (kick) in
 * the real set wakes a waiter whenever emulated state changes, while real
 * descriptors in the same set wake it directly. */
struct epreg {
    int fd;
    uint32_t events;
    epoll_data_t data;
    int disarmed;                     /* EPOLLONESHOT: reported, until EPOLL_CTL_MOD */
    short last;                       /* EPOLLET: readiness and wake count last seen */
    uint64_t last_wakes;
};
struct epset { int epfd, kick, nregs, cap; struct epreg *regs; struct epset *next; };
static struct epset *g_ep[MAX_FD];
static struct epset *g_eplist;        /* the same sets, to wake them */
static void epset_free(int epfd);
static void epoll_forget(int fd);

/* Something a waiter may wait for changed (a tick, an event, a read or write):
 * wake poll/select/read waiters and the epoll sets.  Caller holds g_lock. */
static void notify_change(void)
{
    pthread_cond_broadcast(&g_cond);
    for (struct epset *es = g_eplist; es; es = es->next)
        if (es->nregs) {
            uint64_t one = 1;
            if (real_write(es->kick, &one, sizeof one) < 0)
                continue;             /* EAGAIN: the kick is pending already */
        }
}

static struct timer *g_timers[MAX_FD];

/* Lockstep pace: a channel the program reads still has an unread block, or
 * the program has not yet answered its last block (by writing, or by
 * waiting for the next); so what a host does while handling a block (hook,
 * CAS) lands before the card's next tick, as on sim://. */
static void deadline_after(struct timespec *ts, int ms);
static int wait_change(const struct timespec *deadline);

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Card pace: the card keeps real time but does not run ahead of a program
 * that reads.  On a loaded machine a program's threads (and this tick
 * thread, which then catches up at once) may not run for tens of
 * milliseconds.  A card's ticks would go on meanwhile: the program's
 * receive buffers fill and a block is dropped (a block lost inside an MF R2
 * signal cuts it in two: OpenR2's "Broken MF Sequence", a digit taken
 * twice), and an event (a CAS change) lands between the program's read of
 * a block and its write of the answer, so the write fails with ELAST
 * (DAHDI's write does that; OpenR2 1.3.3's openr2_chan_write takes it for
 * an OS error and the channel's thread quits).  On a card the program's
 * handling of a block takes microseconds; here it is made to take none, as
 * lockstep pace does: the tick waits while a channel's program has a block
 * unread or has not answered its last one (by writing, or by waiting for
 * the next).  Only for a program that read the channel within the last
 * READER_LIVE_MS: one that stopped reading (a thread that quit) is
 * overrun, as by a card.  That stays under hwsim's cable wait (10 s), so
 * the board at the cable's other end waits for this one rather than going
 * on without its samples. */
#define READER_LIVE_MS 2000

static void wait_for_readers(struct board *bd)
{
    int first = bd == &g_boards[0];
    while (!bd->stop) {
        int64_t now = mono_ns(), until = 0;
        for (struct chan *ch = g_open; ch; ch = ch->next) {
            int mine = (ch->sp && ch->sp->bd == bd && ch->sim >= 0) || (first && (!ch->sp || ch->sim < 0));
            int64_t live_until = ch->last_read + (int64_t)READER_LIVE_MS * 1000000LL;
            if (mine && ch->last_read && live_until > now && (ch->rx_ready || !ch->answered)
                && (!until || live_until < until))
                until = live_until;
        }
        if (!until)
            return;
        struct timespec ts = { until / 1000000000LL, until % 1000000000LL };
        wait_change(&ts);
    }
}

static int board_in_use(struct board *bd)
{
    for (struct chan *ch = g_open; ch; ch = ch->next)
        if (ch->sp ? ch->sp->bd == bd : bd == &g_boards[0])
            return 1;
    return 0;
}

static int lockstep_blocked(struct board *bd)
{
    for (struct chan *ch = g_open; ch; ch = ch->next) {
        if (ch->sp ? ch->sp->bd != bd : bd != &g_boards[0])
            continue;
        if (ch->reader && (ch->rx_ready || !ch->answered))
            return 1;
    }
    return 0;
}

/* An event for every open channel of a span. */
static void span_chan_event(struct span *sp, int ev)
{
    for (struct chan *ch = g_open; ch; ch = ch->next)
        if (ch->sp == sp)
            chan_event(ch, ev);
}

/* dahdi_alarm_notify: the span's channels get DAHDI_EVENT_ALARM when it goes
 * into alarm and NOALARM when it is clear again; a change of alarm while it
 * stays in alarm (RAI added to LOS, LOS gone with RAI left) has no event
 * (SPANSTAT shows it). */
static void alarm_notify(struct span *sp)
{
    int now = span_alarms(sp);
    if (!now != !sp->last_alarms)
        span_chan_event(sp, now ? VBD_EVENT_ALARM : VBD_EVENT_NOALARM);
    sp->last_alarms = now;
}

/* Carry out a change of a span's DAHDI_MAINT mode (set by any process in the
 * state file) in the process that ticks the board: the LOOP alarm's
 * ALARM/NOALARM events when the span goes in or out of alarm, as
 * dahdi_alarm_notify does; the host's CAS bits kept aside during a network
 * loop; the CAS bits a channel hears change in and out of local loop. */
static void apply_maint(struct board *bd)
{
    for (int s = 1; s <= g_nspans; s++) {
        struct span *sp = &g_spans[s];
        int old = sp->maint, now = g_k->span[s].maint;
        if (sp->bd != bd || old == now)
            continue;
        int was_net = old == VBD_MAINT_NETWORKLINELOOP || old == VBD_MAINT_NETWORKPAYLOADLOOP;
        int is_net = now == VBD_MAINT_NETWORKLINELOOP || now == VBD_MAINT_NETWORKPAYLOADLOOP;
        for (int c = sp->info.first_chan; c < sp->info.first_chan + sp->info.nchan; c++) {
            if (bd->ci[c].type != VB_CHAN_E1_CAS)
                continue;
            vb_chan_status_t cs;
            vb_chan_status(bd->b, c, &cs);
            int *saved = &sp->saved_cas[c - sp->info.first_chan];
            if (is_net && !was_net)
                *saved = cs.cas_tx;
            else if (was_net && !is_net)
                vb_set_cas(bd->b, c, *saved);
        }
        sp->maint = now;
        alarm_notify(sp);             /* the ioctl's dahdi_alarm_notify, then the framer's CAS */
        for (struct chan *ch = g_open; ch; ch = ch->next) {
            if (ch->sp != sp || ch->sim < 0)
                continue;
            if (now == VBD_MAINT_LOCALLOOP)
                memset(ch->loop_tx, 0, sizeof ch->loop_tx);
            vb_chan_status_t cs;
            vb_chan_status(bd->b, ch->sim, &cs);
            if (bd->ci[ch->sim].type == VB_CHAN_E1_CAS && !ch->sigfreeze && cs.cas_rx != cs.cas_tx
                && (old == VBD_MAINT_LOCALLOOP || now == VBD_MAINT_LOCALLOOP))
                chan_event(ch, VBD_EVENT_BITSCHANGED);
        }
    }
}

/* Network loop (line or payload: the simulated line has no framing to tell
 * them apart): every bearer channel of the span sends back what it received
 * this tick, CAS bits included; the host still receives the line. */
static void network_loop(struct board *bd, const int16_t *rx, int16_t *tx)
{
    for (int s = 1; s <= g_nspans; s++) {
        struct span *sp = &g_spans[s];
        if (sp->bd != bd || (sp->maint != VBD_MAINT_NETWORKLINELOOP && sp->maint != VBD_MAINT_NETWORKPAYLOADLOOP))
            continue;
        for (int c = sp->info.first_chan; c < sp->info.first_chan + sp->info.nchan; c++) {
            memcpy(tx + (size_t)c * EMU_BLOCK, rx + (size_t)c * EMU_BLOCK, (size_t)EMU_BLOCK * sizeof *tx);
            if (bd->ci[c].type != VB_CHAN_E1_CAS)
                continue;
            vb_chan_status_t cs;
            vb_chan_status(bd->b, c, &cs);
            if (cs.cas_tx != cs.cas_rx)
                vb_set_cas(bd->b, c, cs.cas_rx);
        }
    }
}

static void *tick_thread(void *arg)
{
    struct board *bd = arg;
    int first = bd == &g_boards[0];
    int64_t period = (int64_t)EMU_BLOCK * 125000, next = 0;   /* ns */
    vb_event_t evs[64];
    while (!bd->stop) {
        uint64_t t;
        int rc = vb_wait_tick(bd->b, 200, &t);
        if (rc == VB_ETIMEDOUT)
            continue;
        pthread_mutex_lock(&g_lock);
        if (rc == 0 && g_pace != PACE_CARD && !board_in_use(bd)) {
            struct timespec idle;         /* nobody listens: do not spin the simulator */
            deadline_after(&idle, 10);
            wait_change(&idle);
        }
        if (rc < 0) {
            vb_event_t lost = { 0, VB_EV_BOARD_LOST, -1, -1, 0 };
            deliver(bd, &lost);
            bd->lost = 1;
            notify_change();
            pthread_mutex_unlock(&g_lock);
            break;
        }
        if (g_pace == PACE_CARD)
            wait_for_readers(bd);
        const int16_t *rx = vb_rx(bd->b);
        int16_t *tx = vb_tx(bd->b);
        apply_maint(bd);
        for (struct chan *ch = g_open; ch; ch = ch->next) {
            if (ch->sp && ch->sp->bd == bd && ch->sim >= 0)
                chan_feed(ch, ch->sp->maint == VBD_MAINT_LOCALLOOP ? ch->loop_tx
                              : rx + (size_t)ch->sim * EMU_BLOCK, EMU_BLOCK, bd->fed);
            else if (first && (!ch->sp || ch->sim < 0))
                chan_feed(ch, NULL, EMU_BLOCK, bd->fed);      /* pseudo and TS16: timed silence */
        }
        bd->fed += (uint64_t)EMU_BLOCK;
        if (first) {
            g_ticks++;
            for (int fd = 0; fd < MAX_FD; fd++) {
                struct timer *tm = g_timers[fd];
                if (tm && tm->period_ms > 0 && (tm->left_ms -= EMU_BLOCK / 8) <= 0) {
                    tm->expired++;
                    tm->left_ms += tm->period_ms;
                }
            }
        }
        int n;
        while ((n = vb_read_events(bd->b, evs, 64)) > 0)
            for (int i = 0; i < n; i++)
                deliver(bd, &evs[i]);
        for (int s = 1; s <= g_nspans; s++)
            if (g_spans[s].bd == bd)
                alarm_notify(&g_spans[s]);  /* the line's alarms, a framing dahdi_cfg changed */
        notify_change();
        if (g_pace == PACE_LOCKSTEP) {
            /* Hold this tick open until the program has read what it can and
             * answered it: what it commands meanwhile reaches the card before
             * its next tick, as a host's commands do on sim://. */
            struct timespec limit;
            deadline_after(&limit, 10000);
            while (!bd->stop && lockstep_blocked(bd))
                if (wait_change(&limit) == ETIMEDOUT)
                    break;                /* the program stopped answering: tick anyway */
        }
        /* This tick's transmit: what the program wrote up to now (in lockstep,
         * its answer to the block just read goes out in the same tick). */
        for (struct chan *ch = g_open; ch; ch = ch->next) {
            if (ch->sp && ch->sp->bd == bd && ch->sim >= 0) {
                int16_t *out = tx + (size_t)ch->sim * EMU_BLOCK;
                chan_drain(ch, out, EMU_BLOCK);
                if (ch->sp->maint == VBD_MAINT_LOCALLOOP)
                    memcpy(ch->loop_tx, out, (size_t)EMU_BLOCK * sizeof *out);
            } else if (first && (!ch->sp || ch->sim < 0))
                chan_drain(ch, NULL, EMU_BLOCK);
        }
        network_loop(bd, rx, tx);
        pthread_mutex_unlock(&g_lock);
        if (g_pace == PACE_CARD && bd->info.clock == VB_CLOCK_LOCKSTEP) {
            int64_t now;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            next = next ? next + period : now + period;
            if (next > now) {
                struct timespec d = { (next - now) / 1000000000LL, (next - now) % 1000000000LL };
                nanosleep(&d, NULL);
            } else if (now - next > 10 * period) {
                next = now;           /* fell far behind: do not race to catch up */
            }
        }
        vb_commit(bd->b);
    }
    return NULL;
}

/* Become the board's host (once per process); errno-style result. */
static int start_board(struct board *bd)
{
    if (bd->lost)
        return -ENODEV;
    if (bd->started)
        return 0;
    int rc = vb_start(bd->b, EMU_BLOCK);
    if (rc == VB_EBUSY) {
        fprintf(stderr, "voiceboard dahdi emulator: %s\n", vb_errmsg(bd->b));
        return -EBUSY;
    }
    if (rc < 0) {
        fprintf(stderr, "voiceboard dahdi emulator: %s\n", vb_errmsg(bd->b));
        return -ENODEV;
    }
    bd->started = 1;
    for (int s = 1; s <= g_nspans; s++)
        if (g_spans[s].bd == bd)
            g_spans[s].last_alarms = span_alarms(&g_spans[s]);   /* in alarm already: no event */
    pthread_create(&bd->thr, NULL, tick_thread, bd);
    return 0;
}

/* The board starts ticking at the channel's first use (read, write, poll,
 * IOMUX, hook, CAS), not at SPECIFY: a host that opens all its channels and
 * then reads gets the card's first block on every channel alike. */
static int ensure_host(struct chan *ch)
{
    return start_board(ch->sp ? ch->sp->bd : &g_boards[0]);
}

static struct chan *new_chan(int channo, struct span *sp)
{
    struct chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->channo = channo;
    ch->sp = sp;
    ch->sim = sp ? sim_chan(sp, channo) : -1;
    ch->law = sp ? chan_law(channo, sp) : VBD_LAW_MULAW;
    ch->echocan = 0;
    if (set_bufs(ch, VBD_DEFAULT_NUM_BUFS, VBD_DEFAULT_BLOCKSIZE) < 0) {
        free(ch);
        return NULL;
    }
    ch->next = g_open;
    g_open = ch;
    return ch;
}

static void free_chan(struct chan *ch)
{
    for (struct chan **p = &g_open; *p; p = &(*p)->next)
        if (*p == ch) {
            *p = ch->next;
            break;
        }
    if (ch->sp) {
        _Atomic int32_t *pid = &g_k->chan[ch->channo].open_pid;
        int32_t me = getpid();
        atomic_compare_exchange_strong(pid, &me, 0);
        /* hang up what the program left: back on hook, ringer off */
        if (ch->sim >= 0 && !ch->sp->bd->lost) {
            int type = ch->sp->bd->ci[ch->sim].type;
            if (type == VB_CHAN_FXO)
                vb_hook(ch->sp->bd->b, ch->sim, VB_HOOK_ON);
            else if (type == VB_CHAN_FXS)
                vb_ring(ch->sp->bd->b, ch->sim, 0);
        }
    }
    free(ch->rx); free(ch->tx); free(ch->tx_len);
    free(ch);
}

/* SPECIFY (or opening /dev/dahdi/N): claim the channel like dahdi_specchan_open. */
static int specify(struct efd *e, int channo)
{
    if (e->ch)
        return -EINVAL;
    struct span *sp = span_of_chan(channo);
    if (!sp)
        return -ENXIO;
    struct kchan *kc = &g_k->chan[channo];
    if (!kc->sigtype)
        return -ENXIO;                /* not configured by dahdi_cfg */
    int32_t none = 0, me = getpid();
    if (!atomic_compare_exchange_strong(&kc->open_pid, &none, me)) {
        if (none != me && kill(none, 0) == 0)
            return -EBUSY;
        if (!atomic_compare_exchange_strong(&kc->open_pid, &none, me) && none != me)
            return -EBUSY;            /* a dead holder's claim is taken over */
    }
    for (struct chan *o = g_open; o; o = o->next)
        if (o->channo == channo && o->sp)
            return -EBUSY;
    e->ch = new_chan(channo, sp);
    if (!e->ch) {
        atomic_store(&kc->open_pid, 0);
        return -ENOMEM;
    }
    e->kind = K_CHANNEL;
    return 0;
}

/* ---------------------------------------------------------------- waits */
static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait for a change (tick, event); caller holds g_lock.  0 or ETIMEDOUT. */
static int wait_change(const struct timespec *deadline)
{
    if (!deadline)
        return pthread_cond_wait(&g_cond, &g_lock);
    return pthread_cond_timedwait(&g_cond, &g_lock, deadline);
}

static int nonblocking(int fd)
{
    int (*real_fcntl)(int, int, ...) = dlsym(RTLD_NEXT, "fcntl");
    return (real_fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* The program waits for a block that is not there: it is done with the last. */
static void waiting_for_rx(struct chan *ch)
{
    if (!ch->rx_ready && !(ch->reader && ch->answered)) {
        ch->reader = ch->answered = 1;
        notify_change();
    }
}

static short chan_revents(struct efd *e)
{
    if (e->kind == K_TIMER) {
        struct timer *tm = e->tm;
        return (tm->expired || tm->ping) ? POLLPRI : 0;
    }
    struct chan *ch = e->ch;
    if (!ch)
        return 0;
    if (ch->sp && ch->sp->bd->lost)
        return POLLERR | POLLHUP | POLLPRI;
    short r = 0;
    if (ch->rx_ready)
        r |= POLLIN | POLLRDNORM;
    if (ch->tx_count < ch->numbufs)
        r |= POLLOUT | POLLWRNORM;
    if (chan_has_event(ch))
        r |= POLLPRI;
    return r;
}

/* -------------------------------------------------------- the ioctl switch */
static int do_ioctl(struct efd *e, unsigned long req, void *arg)
{
    struct chan *ch = e->ch;
    int *ip = arg;
    switch (req) {
    case VBD_GETVERSION: {
        struct vbd_versioninfo *v = arg;
        memset(v, 0, sizeof *v);
        /* "lockstep": ticks wait for the host, so dahdi:// reports a lockstep clock */
        snprintf(v->version, sizeof v->version, "2.11.1 (voiceboard emulator over hwsim%s)",
                 g_pace == PACE_LOCKSTEP ? ", lockstep" : "");
        return 0;
    }
    case VBD_SPANSTAT: {
        struct vbd_spaninfo *si = arg;
        int s = si->spanno;
        if (!s && ch && ch->sp)
            s = ch->sp->no;
        return spanstat(s, si);
    }
    case VBD_GET_PARAMS: {
        struct vbd_params *p = arg;
        int channo = ch ? ch->channo | (p->channo & VBD_GET_PARAMS_RETURN_MASTER) : p->channo;
        return get_params(channo, ch, p);
    }
    case VBD_SET_PARAMS:
        return 0;                     /* timings: accepted, the simulator has its own */
    case VBD_SPANCONFIG:
        return spanconfig(arg);
    case VBD_CHANCONFIG:
        return chanconfig(arg);
    case VBD_STARTUP:
    case VBD_SHUTDOWN:
        if (*ip < 1 || *ip > g_nspans)
            return -ENXIO;
        g_k->span[*ip].running = req == VBD_STARTUP;
        return 0;
    case VBD_DEFAULTZONE:
        g_k->defzone = *ip;
        return 0;
    case VBD_LOADZONE: {
        const struct vbd_tone_def_header *z = arg;
        if (z->zone < 0 || z->zone >= 128 || z->count < 0 || z->count > 128)
            return -EINVAL;
        return 0;                     /* tones are the simulator's (no tone generator here) */
    }
    case VBD_FREEZONE:
        return 0;
    case VBD_ATTACH_ECHOCAN: {
        struct vbd_attach_echocan *a = arg;
        if (!span_of_chan(a->chan))
            return -EINVAL;
        return a->echocan[0] ? -ENOENT : 0;   /* no echo canceller modules here */
    }
    case VBD_MAINT:
        return maint(arg);
    case VBD_SPECIFY:
        if (e->kind != K_CHANNEL || ch)
            return -EINVAL;
        return specify(e, *ip);
    case VBD_TIMERCONFIG:
        if (e->kind != K_TIMER || *ip < 0)
            return -EINVAL;
        e->tm->period_ms = e->tm->left_ms = *ip;
        e->tm->expired = 0;
        return start_board(&g_boards[0]);
    case VBD_TIMERACK: {
        if (e->kind != K_TIMER)
            return -EINVAL;
        int n = *ip;
        if (n < 0 || n > e->tm->expired)
            n = e->tm->expired;
        e->tm->expired -= n;
        return n;
    }
    case VBD_TIMERPING:
        if (e->kind != K_TIMER)
            return -EINVAL;
        e->tm->ping = 1;
        notify_change();
        return 0;
    case VBD_TIMERPONG:
        if (e->kind != K_TIMER)
            return -EINVAL;
        e->tm->ping = 0;
        return 0;
    default:
        break;
    }
    if (e->kind == K_TIMER && req == VBD_GETEVENT) {
        *ip = e->tm->ping ? VBD_EVENT_TIMER_PING : e->tm->expired ? VBD_EVENT_TIMER_EXPIRED : 0;
        return 0;
    }
    if (!ch)
        return (e->kind == K_CHANNEL) ? -EINVAL : -ENOTTY;
    struct board *bd = ch->sp ? ch->sp->bd : NULL;
    int type = ch->sim >= 0 ? bd->ci[ch->sim].type : 0, rc;
    switch (req) {
    case VBD_CHANNO:
        *ip = ch->channo;
        return 0;
    case VBD_GET_BLOCKSIZE:
        *ip = ch->blocksize;
        return 0;
    case VBD_SET_BLOCKSIZE:
        return *ip == ch->blocksize ? 0 : set_bufs(ch, ch->numbufs, *ip);
    case VBD_GET_BUFINFO: {
        struct vbd_bufferinfo *bi = arg;
        memset(bi, 0, sizeof *bi);
        bi->numbufs = ch->numbufs;
        bi->bufsize = ch->blocksize;
        bi->readbufs = ch->rx_ready;
        bi->writebufs = ch->tx_count;
        return 0;
    }
    case VBD_SET_BUFINFO: {
        struct vbd_bufferinfo *bi = arg;
        return set_bufs(ch, bi->numbufs, bi->bufsize);
    }
    case VBD_FLUSH:
        if (*ip & VBD_FLUSH_READ)
            ch->rx_head = ch->rx_ready = ch->rx_fill = ch->aligned = 0;
        if (*ip & VBD_FLUSH_WRITE)
            ch->tx_head = ch->tx_count = ch->tx_pos = 0;
        if (*ip & VBD_FLUSH_EVENT)
            ch->ev_in = ch->ev_out = 0;
        return 0;
    case VBD_SYNC:
        return 0;
    case VBD_HDLC_RATE:
        return (*ip == 56 || *ip == 64) ? 0 : -EINVAL;
    case VBD_GETEVENT:
        if (chan_has_event(ch)) {
            *ip = ch->ev[ch->ev_out];
            ch->ev_out = (ch->ev_out + 1) % VBD_MAX_EVENTSIZE;
        } else {
            *ip = VBD_EVENT_NONE;
        }
        return 0;
    case VBD_IOMUX: {
        int mask = *ip, up = ensure_host(ch);
        if (!mask)
            return -EINVAL;
        if (up < 0)
            return up;
        for (;;) {
            int r = 0;
            if ((mask & VBD_IOMUX_READ) && ch->rx_ready) r |= VBD_IOMUX_READ;
            if ((mask & VBD_IOMUX_WRITE) && ch->tx_count < ch->numbufs) r |= VBD_IOMUX_WRITE;
            if ((mask & VBD_IOMUX_WRITEEMPTY) && !ch->tx_count) r |= VBD_IOMUX_WRITEEMPTY;
            if ((mask & VBD_IOMUX_SIGEVENT) && chan_has_event(ch)) r |= VBD_IOMUX_SIGEVENT;
            if (r || (mask & VBD_IOMUX_NOWAIT)) {
                *ip = r;
                return 0;
            }
            if (bd && bd->lost)
                return -ENODEV;
            if (mask & VBD_IOMUX_READ)
                waiting_for_rx(ch);
            wait_change(NULL);
        }
    }
    case VBD_SETLAW:
        if (*ip < 0 || *ip > VBD_LAW_ALAW)
            return -EINVAL;
        ch->law = *ip ? *ip : chan_law(ch->channo, ch->sp);
        ch->linear = 0;
        return 0;
    case VBD_SETLINEAR:
        ch->linear = *ip != 0;
        return 0;
    case VBD_GETGAINS: {
        struct vbd_gains *g = arg;
        for (int i = 0; i < 256; i++)
            g->rxgain[i] = g->txgain[i] = (unsigned char)i;
        return 0;
    }
    case VBD_SETGAINS: {
        struct vbd_gains *g = arg;
        for (int i = 0; i < 256; i++)
            if (g->rxgain[i] != i || g->txgain[i] != i)
                return -ENOSYS;       /* only unity gain: the board moves linear audio */
        return 0;
    }
    case VBD_ECHOCANCEL:
        ch->echocan = *ip;
        return *ip ? -EINVAL : 0;     /* no echo canceller attached (kernel: EINVAL) */
    case VBD_SETTONEZONE:
        ch->zone = *ip;
        return 0;
    case VBD_GETTONEZONE:
        *ip = ch->zone;
        return 0;
    case VBD_GETSIGFREEZE:
        *ip = ch->sigfreeze;
        return 0;
    case VBD_SETSIGFREEZE:
        ch->sigfreeze = *ip != 0;
        return 0;
    case VBD_BUFFER_EVENTS:
        ch->bufevents = *ip != 0;
        return 0;
    case VBD_DIALING:
        *ip = 0;
        return 0;
    case VBD_AUDIOMODE:
        return 0;
    case VBD_GETRXBITS: {
        if (type != VB_CHAN_E1_CAS)
            return -EINVAL;
        vb_chan_status_t cs;
        vb_chan_status(bd->b, ch->sim, &cs);
        *ip = g_k->span[ch->sp->no].maint == VBD_MAINT_LOCALLOOP ? cs.cas_tx : cs.cas_rx;
        return 0;
    }
    case VBD_SETTXBITS: {
        if (type != VB_CHAN_E1_CAS || !(g_k->chan[ch->channo].sigtype & VBD_SIG_CAS))
            return -EINVAL;
        if ((rc = ensure_host(ch)) < 0)
            return rc;
        vb_chan_status_t cs;
        vb_chan_status(bd->b, ch->sim, &cs);
        ch->txbits = *ip & 0xf;
        struct span *sp = ch->sp;
        if (sp->maint == VBD_MAINT_NETWORKLINELOOP || sp->maint == VBD_MAINT_NETWORKPAYLOADLOOP) {
            sp->saved_cas[ch->sim - sp->info.first_chan] = ch->txbits;   /* sent when the loop ends */
            return 0;
        }
        if (sp->maint == VBD_MAINT_LOCALLOOP && cs.cas_tx != ch->txbits && !ch->sigfreeze)
            chan_event(ch, VBD_EVENT_BITSCHANGED);                       /* it hears its own bits */
        return vb_set_cas(bd->b, ch->sim, ch->txbits) < 0 ? -EIO : 0;
    }
    case VBD_HOOK: {
        int h = *ip;
        if ((rc = ensure_host(ch)) < 0)
            return rc;
        if (type == VB_CHAN_FXO) {
            int state = h == VBD_OFFHOOK ? VB_HOOK_OFF : h == VBD_ONHOOK ? VB_HOOK_ON
                      : h == VBD_FLASH ? VB_HOOK_FLASH : -1;
            if (state < 0)
                return -EINVAL;
            return vb_hook(bd->b, ch->sim, state) < 0 ? -EIO : 0;
        }
        if (type == VB_CHAN_FXS) {
            if (h == VBD_RING || h == VBD_START) {
                if (vb_ring(bd->b, ch->sim, 1) < 0)
                    return -EIO;
                chan_event(ch, VBD_EVENT_RINGERON);
                return 0;
            }
            if (h == VBD_RINGOFF || h == VBD_ONHOOK || h == VBD_OFFHOOK) {
                if (vb_ring(bd->b, ch->sim, 0) < 0)
                    return -EIO;
                return 0;
            }
            return -EINVAL;
        }
        return -EINVAL;
    }
    case VBD_LOOPBACK:
        if (ch->sim < 0)
            return -EINVAL;
        if ((rc = ensure_host(ch)) < 0)
            return rc;
        return vb_loopback(bd->b, ch->sim, *ip != 0) < 0 ? -EIO : 0;
    case VBD_DIAL:
    case VBD_SENDTONE:
        return -ENOSYS;               /* no tone generator in the emulator (see docs/boards.md) */
    default:
        return -ENOTTY;
    }
}

/* --------------------------------------------------------- interposition */
static struct efd *emu_fd(int fd)
{
    return (fd >= 0 && fd < MAX_FD) ? g_fd[fd] : NULL;
}

static int dahdi_kind(const char *path, int *channo)
{
    static const char pre[] = "/dev/dahdi/";
    if (!path || strncmp(path, pre, sizeof pre - 1) != 0)
        return 0;
    const char *rest = path + sizeof pre - 1;
    if (!strcmp(rest, "ctl")) return K_CTL;
    if (!strcmp(rest, "channel")) return K_CHANNEL;
    if (!strcmp(rest, "pseudo")) return K_PSEUDO;
    if (!strcmp(rest, "timer")) return K_TIMER;
    char *end;
    long n = strtol(rest, &end, 10);
    if (*rest && !*end && n > 0 && n <= VBD_MAX_CHANNELS) {
        *channo = (int)n;
        return K_CHANNEL;
    }
    return -1;
}

static int emu_open(const char *path, int flags)
{
    int channo = 0, kind = dahdi_kind(path, &channo);
    pthread_mutex_lock(&g_lock);
    if (init_locked() < 0 || !g_active) {
        pthread_mutex_unlock(&g_lock);
        errno = ENOENT;
        return -1;
    }
    if (kind < 0) {
        pthread_mutex_unlock(&g_lock);
        errno = ENOENT;
        return -1;
    }
    int fd = eventfd(0, (flags & O_CLOEXEC) ? EFD_CLOEXEC : 0);
    if (fd < 0 || fd >= MAX_FD) {
        int err = fd < 0 ? errno : EMFILE;
        if (fd >= 0)
            real_close(fd);
        pthread_mutex_unlock(&g_lock);
        errno = err;
        return -1;
    }
    if (flags & O_NONBLOCK)
        fcntl(fd, F_SETFL, O_NONBLOCK);
    struct efd *e = calloc(1, sizeof *e);
    int rc = e ? 0 : -ENOMEM;
    if (e) {
        e->kind = kind;
        if (kind == K_CHANNEL && channo)
            rc = specify(e, channo);
        else if (kind == K_PSEUDO) {
            rc = start_board(&g_boards[0]);
            if (rc == 0 && !(e->ch = new_chan(VBD_MAX_CHANNELS + 1 + g_next_pseudo++, NULL)))
                rc = -ENOMEM;
        } else if (kind == K_TIMER) {
            e->tm = calloc(1, sizeof *e->tm);
            if (!e->tm)
                rc = -ENOMEM;
            else
                g_timers[fd] = e->tm;
        }
    }
    if (rc < 0) {
        if (e && e->tm)
            g_timers[fd] = NULL;
        if (e)
            free(e->tm);
        free(e);
        real_close(fd);
        pthread_mutex_unlock(&g_lock);
        errno = -rc;
        return -1;
    }
    g_fd[fd] = e;
    pthread_mutex_unlock(&g_lock);
    return fd;
}

static int emulated_path(const char *path)
{
    return getenv("VB_DAHDI_BOARDS") && dahdi_kind(path, &(int){0}) != 0;
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode, int at)
{
    if (!real_open)
        resolve();
    if (emulated_path(path) && (path[0] == '/' || dirfd == AT_FDCWD))
        return emu_open(path, flags);
    char buf[320];
    path = proc_redirect(path, buf, sizeof buf, 1);
    return at ? real_openat(dirfd, path, flags, mode) : real_open(path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, flags, m, 0);
}

/* On x86-64 the 64-bit-offset names are the same calls. */
EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(dirfd, path, flags, m, 1);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

EXPORT int __open_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0, 0); }
EXPORT int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

/* The /proc/dahdi readers: stdio, directories, stat and access.  Every
 * program calls these often, so the next definition is looked up once. */
EXPORT FILE *fopen(const char *path, const char *mode)
{
    static FILE *(*real_fopen)(const char *, const char *);
    if (!real_fopen)
        real_fopen = dlsym(RTLD_NEXT, "fopen");
    char buf[320];
    return real_fopen(proc_redirect(path, buf, sizeof buf, 1), mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

EXPORT DIR *opendir(const char *path)
{
    static DIR *(*real_opendir)(const char *);
    if (!real_opendir)
        real_opendir = dlsym(RTLD_NEXT, "opendir");
    char buf[320];
    return real_opendir(proc_redirect(path, buf, sizeof buf, 0));
}

EXPORT int stat(const char *path, struct stat *st)
{
    static int (*real_stat)(const char *, struct stat *);
    if (!real_stat)
        real_stat = dlsym(RTLD_NEXT, "stat");
    char buf[320];
    return real_stat(proc_redirect(path, buf, sizeof buf, 0), st);
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
    static int (*real_stat64)(const char *, struct stat64 *);
    if (!real_stat64)
        real_stat64 = dlsym(RTLD_NEXT, "stat64");
    char buf[320];
    return real_stat64(proc_redirect(path, buf, sizeof buf, 0), st);
}

EXPORT int lstat(const char *path, struct stat *st)
{
    static int (*real_lstat)(const char *, struct stat *);
    if (!real_lstat)
        real_lstat = dlsym(RTLD_NEXT, "lstat");
    char buf[320];
    return real_lstat(proc_redirect(path, buf, sizeof buf, 0), st);
}

EXPORT int lstat64(const char *path, struct stat64 *st)
{
    static int (*real_lstat64)(const char *, struct stat64 *);
    if (!real_lstat64)
        real_lstat64 = dlsym(RTLD_NEXT, "lstat64");
    char buf[320];
    return real_lstat64(proc_redirect(path, buf, sizeof buf, 0), st);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    static int (*real_fstatat)(int, const char *, struct stat *, int);
    if (!real_fstatat)
        real_fstatat = dlsym(RTLD_NEXT, "fstatat");
    char buf[320];
    return real_fstatat(dirfd, proc_redirect(path, buf, sizeof buf, 0), st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    static int (*real_fstatat64)(int, const char *, struct stat64 *, int);
    if (!real_fstatat64)
        real_fstatat64 = dlsym(RTLD_NEXT, "fstatat64");
    char buf[320];
    return real_fstatat64(dirfd, proc_redirect(path, buf, sizeof buf, 0), st, flags);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *st)
{
    static int (*real_statx)(int, const char *, int, unsigned int, struct statx *);
    if (!real_statx)
        real_statx = dlsym(RTLD_NEXT, "statx");
    char buf[320];
    return real_statx(dirfd, proc_redirect(path, buf, sizeof buf, 0), flags, mask, st);
}

EXPORT int access(const char *path, int how)
{
    static int (*real_access)(const char *, int);
    if (!real_access)
        real_access = dlsym(RTLD_NEXT, "access");
    char buf[320];
    return real_access(proc_redirect(path, buf, sizeof buf, 0), how);
}

EXPORT int close(int fd)
{
    if (!real_close)
        resolve();
    if (fd >= 0 && fd < MAX_FD && g_ep[fd]) {
        pthread_mutex_lock(&g_lock);
        if (g_ep[fd])
            epset_free(fd);
        pthread_mutex_unlock(&g_lock);
    }
    struct efd *e = emu_fd(fd);
    if (e) {
        pthread_mutex_lock(&g_lock);
        if (g_fd[fd] == e) {
            g_fd[fd] = NULL;
            g_timers[fd] = NULL;
            epoll_forget(fd);
            if (e->ch)
                free_chan(e->ch);
            free(e->tm);
            free(e);
        }
        notify_change();
        pthread_mutex_unlock(&g_lock);
    }
    return real_close(fd);
}

static ssize_t fail(int err) { errno = err; return -1; }

EXPORT ssize_t read(int fd, void *buf, size_t count)
{
    if (!real_read)
        resolve();
    struct efd *e = emu_fd(fd);
    if (!e)
        return real_read(fd, buf, count);
    pthread_mutex_lock(&g_lock);
    struct chan *ch = e->ch;
    ssize_t rc;
    count &= 0xffff;
    int up = ch ? ensure_host(ch) : 0;
    if (!ch) {
        rc = fail(EINVAL);
    } else if (count < 1) {
        rc = fail(EINVAL);
    } else if (up < 0) {
        rc = fail(-up);
    } else {
        for (;;) {
            if (chan_has_event(ch)) { rc = fail(VBD_ELAST); break; }
            if (ch->sp && ch->sp->bd->lost) { rc = fail(ENODEV); break; }
            if (ch->rx_ready) {
                const int16_t *s = ch->rx + ch->rx_head * ch->blocksize;
                size_t n = ch->linear ? count / 2 : count;
                if (n > (size_t)ch->blocksize)
                    n = (size_t)ch->blocksize;
                if (ch->linear)
                    memcpy(buf, s, n * 2);
                else
                    for (size_t i = 0; i < n; i++)
                        ((uint8_t *)buf)[i] = ch->law == VBD_LAW_ALAW ? alaw_enc(s[i]) : ulaw_enc(s[i]);
                ch->rx_head = (ch->rx_head + 1) % ch->numbufs;
                ch->rx_ready--;
                ch->reader = 1;
                ch->last_read = mono_ns();
                ch->answered = 0;
                notify_change();
                rc = (ssize_t)(ch->linear ? n * 2 : n);
                break;
            }
            waiting_for_rx(ch);
            if (nonblocking(fd)) { rc = fail(EAGAIN); break; }
            wait_change(NULL);
            if (g_fd[fd] != e) { rc = fail(EBADF); break; }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
    if (!real_write)
        resolve();
    struct efd *e = emu_fd(fd);
    if (!e)
        return real_write(fd, buf, count);
    pthread_mutex_lock(&g_lock);
    struct chan *ch = e->ch;
    ssize_t rc;
    int up = ch ? ensure_host(ch) : 0;
    if (!ch || count < 1) {
        rc = fail(EINVAL);
    } else if (up < 0) {
        rc = fail(-up);
    } else {
        for (;;) {
            if (chan_has_event(ch)) { rc = fail(VBD_ELAST); break; }
            if (ch->sp && ch->sp->bd->lost) { rc = fail(ENODEV); break; }
            if (ch->tx_count < ch->numbufs) {
                int buf_i = (ch->tx_head + ch->tx_count) % ch->numbufs;
                int16_t *d = ch->tx + buf_i * ch->blocksize;
                size_t n = ch->linear ? count / 2 : count;
                if (n > (size_t)ch->blocksize)
                    n = (size_t)ch->blocksize;
                if (ch->linear)
                    memcpy(d, buf, n * 2);
                else
                    for (size_t i = 0; i < n; i++) {
                        uint8_t v = ((const uint8_t *)buf)[i];
                        d[i] = ch->law == VBD_LAW_ALAW ? alaw_dec(v) : ulaw_dec(v);
                    }
                if (n) {
                    ch->tx_len[buf_i] = (int)n;
                    ch->tx_count++;
                    ch->answered = 1;
                    notify_change();
                }
                rc = (ssize_t)(ch->linear ? n * 2 : n);
                break;
            }
            if (nonblocking(fd)) { rc = fail(EAGAIN); break; }
            wait_change(NULL);
            if (g_fd[fd] != e) { rc = fail(EBADF); break; }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    if (!real_ioctl)
        resolve();
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct efd *e = emu_fd(fd);
    if (!e)
        return real_ioctl(fd, req, arg);
    pthread_mutex_lock(&g_lock);
    int rc = do_ioctl(e, req, arg);
    pthread_mutex_unlock(&g_lock);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc;
}

/* poll over a mix of emulated and real descriptors: emulated readiness is
 * checked under the lock, real ones with a zero-timeout poll; between
 * rounds wait for a tick (or 2 ms when real descriptors are in the set). */
static int mixed_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms >= 0)
        deadline_after(&deadline, timeout_ms);
    int any_real = 0;
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].fd >= 0 && !emu_fd(fds[i].fd))
            any_real = 1;
    for (;;) {
        int ready = 0;
        pthread_mutex_lock(&g_lock);
        for (nfds_t i = 0; i < n; i++) {
            struct efd *e = emu_fd(fds[i].fd);
            if (!e)
                continue;
            if (e->ch && ensure_host(e->ch) < 0) {
                fds[i].revents = POLLERR;
                ready++;
                continue;
            }
            short r = chan_revents(e);
            if (e->ch && (fds[i].events & POLLIN) && !(r & POLLIN))
                waiting_for_rx(e->ch);
            fds[i].revents = r & (fds[i].events | POLLERR | POLLHUP | POLLNVAL);
            ready += fds[i].revents != 0;
        }
        pthread_mutex_unlock(&g_lock);
        if (any_real) {
            for (nfds_t i = 0; i < n; i++) {
                if (fds[i].fd < 0 || emu_fd(fds[i].fd)) {
                    if (fds[i].fd < 0)
                        fds[i].revents = 0;
                    continue;
                }
                struct pollfd one = fds[i];
                if (real_poll(&one, 1, 0) < 0)
                    return -1;
                fds[i].revents = one.revents;
                ready += one.revents != 0;
            }
        }
        if (ready || timeout_ms == 0)
            return ready;
        pthread_mutex_lock(&g_lock);
        int rc;
        if (any_real) {
            struct timespec slice;
            deadline_after(&slice, 2);
            if (timeout_ms >= 0 && (slice.tv_sec > deadline.tv_sec
                || (slice.tv_sec == deadline.tv_sec && slice.tv_nsec > deadline.tv_nsec)))
                slice = deadline;
            rc = wait_change(&slice);
            if (rc == ETIMEDOUT && timeout_ms >= 0) {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > deadline.tv_sec
                    || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
                    pthread_mutex_unlock(&g_lock);
                    timeout_ms = 0;
                    continue;
                }
            }
        } else {
            rc = wait_change(timeout_ms >= 0 ? &deadline : NULL);
            if (rc == ETIMEDOUT)
                timeout_ms = 0;       /* one last look, then 0 */
        }
        pthread_mutex_unlock(&g_lock);
    }
}

static int any_emulated(const struct pollfd *fds, nfds_t n)
{
    for (nfds_t i = 0; i < n; i++)
        if (emu_fd(fds[i].fd))
            return 1;
    return 0;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (!real_poll)
        resolve();
    if (!any_emulated(fds, n))
        return real_poll(fds, n, timeout);
    return mixed_poll(fds, n, timeout);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    (void)fdslen;
    return poll(fds, n, timeout);
}

static int ts_ms(const struct timespec *ts)
{
    if (!ts)
        return -1;
    int64_t ms = (int64_t)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    if (!real_poll)
        resolve();
    if (!any_emulated(fds, n)) {
        int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *)
            = dlsym(RTLD_NEXT, "ppoll");
        return real_ppoll(fds, n, ts, mask);
    }
    sigset_t old;
    if (mask)
        pthread_sigmask(SIG_SETMASK, mask, &old);
    int rc = mixed_poll(fds, n, ts_ms(ts));
    if (mask)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* select/pselect: through poll when an emulated descriptor is in the sets. */
static int select_common(int nfds, fd_set *r, fd_set *w, fd_set *x, int timeout_ms, int *used)
{
    struct pollfd pf[FD_SETSIZE];
    int n = 0, emu = 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        short ev = 0;
        if (r && FD_ISSET(fd, r)) ev |= POLLIN;
        if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
        if (x && FD_ISSET(fd, x)) ev |= POLLPRI;
        if (!ev)
            continue;
        emu |= emu_fd(fd) != NULL;
        pf[n++] = (struct pollfd){ fd, ev, 0 };
    }
    *used = emu;
    if (!emu)
        return 0;
    int rc = mixed_poll(pf, (nfds_t)n, timeout_ms);
    if (rc < 0)
        return rc;
    if (r) FD_ZERO(r);
    if (w) FD_ZERO(w);
    if (x) FD_ZERO(x);
    int count = 0;
    for (int i = 0; i < n; i++) {
        short re = pf[i].revents;
        if (re & POLLNVAL) { errno = EBADF; return -1; }
        if (r && (re & (POLLIN | POLLHUP | POLLERR)) && (pf[i].events & POLLIN)) { FD_SET(pf[i].fd, r); count++; }
        if (w && (re & (POLLOUT | POLLERR)) && (pf[i].events & POLLOUT)) { FD_SET(pf[i].fd, w); count++; }
        if (x && (re & POLLPRI) && (pf[i].events & POLLPRI)) { FD_SET(pf[i].fd, x); count++; }
    }
    return count;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
    if (!real_poll)
        resolve();
    int used = 0;
    int ms = -1;
    if (tv) {
        int64_t v = (int64_t)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
        ms = v > INT32_MAX ? INT32_MAX : (int)v;
    }
    int rc = select_common(nfds, r, w, x, ms, &used);
    if (used)
        return rc;
    int (*real_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *) = dlsym(RTLD_NEXT, "select");
    return real_select(nfds, r, w, x, tv);
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                   const sigset_t *mask)
{
    if (!real_poll)
        resolve();
    int used = 0;
    sigset_t old;
    if (mask)
        pthread_sigmask(SIG_SETMASK, mask, &old);
    int rc = select_common(nfds, r, w, x, ts_ms(ts), &used);
    if (mask)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (used)
        return rc;
    int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *)
        = dlsym(RTLD_NEXT, "pselect");
    return real_pselect(nfds, r, w, x, ts, mask);
}

/* ---------------------------------------------------------------- epoll */
#define KICK_TAG 0x766264616864696bULL   /* the kick's epoll data: never reported */

static struct epset *epset_of(int epfd)
{
    return (epfd >= 0 && epfd < MAX_FD) ? g_ep[epfd] : NULL;
}

static int epset_find(struct epset *es, int fd)
{
    for (int i = 0; i < es->nregs; i++)
        if (es->regs[i].fd == fd)
            return i;
    return -1;
}

static void epset_free(int epfd)
{
    struct epset *es = g_ep[epfd];
    g_ep[epfd] = NULL;
    for (struct epset **p = &g_eplist; *p; p = &(*p)->next)
        if (*p == es) {
            *p = es->next;
            break;
        }
    real_close(es->kick);
    free(es->regs);
    free(es);
}

/* Take fd out of a set; a set left without emulated descriptors is the
 * kernel's alone again (its kick closed, so the kernel drops that too). */
static void epset_remove(struct epset *es, int i)
{
    es->regs[i] = es->regs[--es->nregs];
    if (!es->nregs)
        epset_free(es->epfd);
}

/* An emulated descriptor closed: the kernel drops it from every epoll set. */
static void epoll_forget(int fd)
{
    for (struct epset *es = g_eplist, *next; es; es = next) {
        next = es->next;
        int i = epset_find(es, fd);
        if (i >= 0)
            epset_remove(es, i);
    }
}

/* The set behind epfd, made at its first emulated descriptor; caller holds g_lock. */
static int epset_get(int epfd, struct epset **out)
{
    static int (*real_ctl)(int, int, int, struct epoll_event *);
    if (!real_ctl)
        real_ctl = dlsym(RTLD_NEXT, "epoll_ctl");
    if (epfd < 0 || epfd >= MAX_FD)
        return -EBADF;
    if (g_ep[epfd]) {
        *out = g_ep[epfd];
        return 0;
    }
    struct epset *es = calloc(1, sizeof *es);
    if (!es)
        return -ENOMEM;
    es->epfd = epfd;
    es->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event kev = { .events = EPOLLIN, .data.u64 = KICK_TAG };
    if (es->kick < 0 || real_ctl(epfd, EPOLL_CTL_ADD, es->kick, &kev) < 0) {
        int err = errno;              /* epfd is not an epoll descriptor: its error */
        if (es->kick >= 0)
            real_close(es->kick);
        free(es);
        return -err;
    }
    es->next = g_eplist;
    g_eplist = es;
    g_ep[epfd] = es;
    *out = es;
    return 0;
}

static int emu_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (op != EPOLL_CTL_DEL && !ev)
        return -EFAULT;
    if (epfd == fd)
        return -EINVAL;
    struct epset *es = NULL;
    int rc = epset_get(epfd, &es);
    if (rc < 0)
        return rc;
    int i = epset_find(es, fd);
    if (op == EPOLL_CTL_ADD && i >= 0)
        rc = -EEXIST;
    else if (op == EPOLL_CTL_ADD && es->nregs == es->cap) {
        int cap = es->cap ? es->cap * 2 : 8;
        struct epreg *r = realloc(es->regs, (size_t)cap * sizeof *r);
        if (r) {
            es->regs = r;
            es->cap = cap;
        } else {
            rc = -ENOMEM;
        }
    } else if ((op == EPOLL_CTL_MOD || op == EPOLL_CTL_DEL) && i < 0)
        rc = -ENOENT;
    else if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL)
        rc = -EINVAL;
    if (rc < 0) {
        if (!es->nregs)
            epset_free(epfd);         /* made for nothing */
        return rc;
    }
    if (op == EPOLL_CTL_ADD)
        es->regs[es->nregs++] = (struct epreg){ .fd = fd, .events = ev->events, .data = ev->data };
    else if (op == EPOLL_CTL_MOD)
        es->regs[i] = (struct epreg){ .fd = fd, .events = ev->events, .data = ev->data };
    else
        epset_remove(es, i);
    notify_change();                  /* a waiter on this set looks again */
    return 0;
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (!real_open)
        resolve();
    if (!emu_fd(fd)) {
        static int (*real_ctl)(int, int, int, struct epoll_event *);
        if (!real_ctl)
            real_ctl = dlsym(RTLD_NEXT, "epoll_ctl");
        return real_ctl(epfd, op, fd, ev);
    }
    pthread_mutex_lock(&g_lock);
    int rc = emu_epoll_ctl(epfd, op, fd, ev);
    pthread_mutex_unlock(&g_lock);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

/* The emulated descriptors of a set that are ready, as DAHDI's poll tells
 * them (level-triggered unless EPOLLET; EPOLLONESHOT disarms); caller holds g_lock. */
static int epset_collect(struct epset *es, struct epoll_event *out, int max)
{
    int n = 0;
    for (int k = 0; k < es->nregs && n < max; k++) {
        struct epreg *reg = &es->regs[k];
        struct efd *e = emu_fd(reg->fd);
        if (!e || reg->disarmed)
            continue;
        short r;
        uint64_t wakes;
        if (e->ch && ensure_host(e->ch) < 0) {
            r = POLLERR;
            wakes = 0;
        } else {
            r = chan_revents(e);
            if (e->ch && (reg->events & EPOLLIN) && !(r & POLLIN))
                waiting_for_rx(e->ch);
            wakes = e->ch ? e->ch->wakes : e->tm ? (uint64_t)e->tm->expired + (uint64_t)e->tm->ping : 0;
        }
        short rep = (short)(r & (short)(reg->events | EPOLLERR | EPOLLHUP));
        int edge = rep && (rep != reg->last || wakes != reg->last_wakes);
        reg->last = rep;
        reg->last_wakes = wakes;
        if (!rep || ((reg->events & EPOLLET) && !edge))
            continue;
        out[n].events = (uint32_t)(unsigned short)rep;
        out[n].data = reg->data;
        n++;
        if (reg->events & EPOLLONESHOT)
            reg->disarmed = 1;
    }
    return n;
}

static int ms_until(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ms = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000
               + (deadline->tv_nsec - now.tv_nsec + 999999) / 1000000;
    return ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* epoll_wait on a set with emulated descriptors: those are checked here, the
 * real ones (and the kick) by the kernel, which also does the sleeping. */
static int mixed_epoll_wait(int epfd, struct epoll_event *out, int max, int timeout_ms)
{
    static int (*real_wait)(int, struct epoll_event *, int, int);
    if (!real_wait)
        real_wait = dlsym(RTLD_NEXT, "epoll_wait");
    struct timespec deadline;
    if (timeout_ms > 0)
        deadline_after(&deadline, timeout_ms);
    for (;;) {
        pthread_mutex_lock(&g_lock);
        struct epset *es = epset_of(epfd);
        if (!es) {
            pthread_mutex_unlock(&g_lock);
            return real_wait(epfd, out, max, timeout_ms);
        }
        uint64_t drained;
        while (real_read(es->kick, &drained, sizeof drained) > 0)
            ;                         /* looked at now: later changes kick again */
        int n = epset_collect(es, out, max);
        pthread_mutex_unlock(&g_lock);
        if (n == max)
            return n;
        int wait = n ? 0 : timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : ms_until(&deadline);
        int r = real_wait(epfd, out + n, max - n, wait);
        if (r < 0)
            return n ? n : -1;        /* EINTR and the like, as the kernel's */
        int kept = n;
        for (int i = n; i < n + r; i++)
            if (out[i].data.u64 != KICK_TAG)
                out[kept++] = out[i];
        if (kept || r == 0)           /* something ready, or the time is up */
            return kept;
    }                                 /* only the kick: look at the emulated ones again */
}

static int emulated_set(int epfd)
{
    if (!epset_of(epfd))
        return 0;                     /* the usual case, without the lock */
    pthread_mutex_lock(&g_lock);
    struct epset *es = epset_of(epfd);
    int yes = es && es->nregs;
    pthread_mutex_unlock(&g_lock);
    return yes;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
    if (!real_open)
        resolve();
    if (max <= 0 || !emulated_set(epfd)) {
        static int (*real_wait)(int, struct epoll_event *, int, int);
        if (!real_wait)
            real_wait = dlsym(RTLD_NEXT, "epoll_wait");
        return real_wait(epfd, events, max, timeout);
    }
    return mixed_epoll_wait(epfd, events, max, timeout);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *mask)
{
    if (!real_open)
        resolve();
    if (max <= 0 || !emulated_set(epfd)) {
        static int (*real_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
        if (!real_pwait)
            real_pwait = dlsym(RTLD_NEXT, "epoll_pwait");
        return real_pwait(epfd, events, max, timeout, mask);
    }
    sigset_t old;
    if (mask)
        pthread_sigmask(SIG_SETMASK, mask, &old);
    int rc = mixed_epoll_wait(epfd, events, max, timeout);
    int err = errno;
    if (mask)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return rc;
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *ts,
                        const sigset_t *mask)
{
    if (!real_open)
        resolve();
    if (max <= 0 || !emulated_set(epfd)) {
        static int (*real_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
        if (!real_pwait2)
            real_pwait2 = dlsym(RTLD_NEXT, "epoll_pwait2");
        return real_pwait2(epfd, events, max, ts, mask);
    }
    return epoll_pwait(epfd, events, max, ts_ms(ts), mask);
}
