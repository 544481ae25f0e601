/* Device side of the simulated card: creates the shared memory, produces
 * ticks (lockstep or real time), takes commands, posts events, and keeps the
 * line-side status registers in step with what it posts. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vb_simdev.h"
#include "vb_simshm.h"

#define DEFAULT_BLOCK 160
#define PAGE 4096u

struct vb_simdev {
    struct vb_shm_header *h;
    size_t size;
    ino_t ino;
    int unlinked, removed;
    char path[128];              /* /dev/shm/voiceboard.NAME */
    pthread_mutex_t lock;        /* posts may come from several threads */
    int in_tick, block, tx_slot;
    uint64_t tick, next;
    int64_t rt_base_ns;          /* realtime: time of tick rt_base_tick */
    uint64_t rt_base_tick;
    int rt_block;
    uint64_t rt_host;            /* realtime: the host session the schedule belongs to */
    char err[256];
};

static int dfail(vb_simdev_t *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dfail(vb_simdev_t *d, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    return code;
}

static int efail(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int efail(char *err, size_t len, int code, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static int is_e1_type(int t)
{
    return t == VB_CHAN_E1_CAS || t == VB_CHAN_E1_BEARER || t == VB_CHAN_E1_DCHAN;
}

/* Check the specs and fill in timeslots; err says which entry is wrong. */
static int check_specs(const vb_span_spec_t *spans, int nspans, const vb_chan_spec_t *chans,
                       int nchan, int *timeslots, char *err, size_t errlen)
{
    if (nspans < 1 || nspans > VB_MAX_SPANS)
        return efail(err, errlen, VB_EINVAL, "%d spans: a board has 1..%d", nspans, VB_MAX_SPANS);
    if (nchan < 1 || nchan > VB_MAX_CHANNELS)
        return efail(err, errlen, VB_EINVAL, "%d channels: a board has 1..%d", nchan, VB_MAX_CHANNELS);
    int total = 0;
    for (int s = 0; s < nspans; s++) {
        if (spans[s].nchan < 1 || spans[s].nchan > VB_MAX_CHANNELS)
            return efail(err, errlen, VB_EINVAL, "span %d: %d channels, must be 1..%d",
                         s, spans[s].nchan, spans[s].kind == VB_SPAN_E1 ? 31 : VB_MAX_CHANNELS);
        total += spans[s].nchan;
    }
    if (total != nchan)
        return efail(err, errlen, VB_EINVAL, "spans declare %d channels but %d are given", total, nchan);
    int first = 0;
    for (int s = 0; s < nspans; s++) {
        const vb_span_spec_t *sp = &spans[s];
        if (sp->kind != VB_SPAN_ANALOG && sp->kind != VB_SPAN_E1)
            return efail(err, errlen, VB_EINVAL, "span %d: kind %d is neither analog (1) nor e1 (2)", s, sp->kind);
        int maxch = sp->kind == VB_SPAN_E1 ? 31 : VB_MAX_CHANNELS;
        if (sp->nchan < 1 || sp->nchan > maxch)
            return efail(err, errlen, VB_EINVAL, "span %d: %d channels, must be 1..%d", s, sp->nchan, maxch);
        if (sp->kind == VB_SPAN_ANALOG && (sp->framing || sp->coding || sp->crc4))
            return efail(err, errlen, VB_EINVAL, "span %d: analog spans have no framing, coding or crc4", s);
        if (sp->kind == VB_SPAN_E1 && (sp->framing < VB_FRAMING_CAS || sp->framing > VB_FRAMING_CCS))
            return efail(err, errlen, VB_EINVAL, "span %d: E1 framing %d must be cas (1) or ccs (2)", s, sp->framing);
        if (sp->kind == VB_SPAN_E1 && (sp->coding < VB_CODING_HDB3 || sp->coding > VB_CODING_AMI))
            return efail(err, errlen, VB_EINVAL, "span %d: E1 coding %d must be hdb3 (1) or ami (2)", s, sp->coding);
        if (sp->timing < 0)
            return efail(err, errlen, VB_EINVAL, "span %d: timing priority %d must be >= 0", s, sp->timing);
        uint32_t used = 0;
        int next_ts = 1;
        for (int i = first; i < first + sp->nchan; i++) {
            const vb_chan_spec_t *c = &chans[i];
            if (c->span != s)
                return efail(err, errlen, VB_EINVAL,
                             "channel %d: span %d, but channels %d..%d belong to span %d (list channels span by span)",
                             i, c->span, first, first + sp->nchan - 1, s);
            int analog = c->type == VB_CHAN_FXO || c->type == VB_CHAN_FXS;
            if (sp->kind == VB_SPAN_ANALOG ? !analog : !is_e1_type(c->type))
                return efail(err, errlen, VB_EINVAL, "channel %d: type %d does not fit a%s span",
                             i, c->type, sp->kind == VB_SPAN_E1 ? "n E1" : "n analog");
            if (sp->kind == VB_SPAN_E1 && sp->framing == VB_FRAMING_CAS && c->type != VB_CHAN_E1_CAS)
                return efail(err, errlen, VB_EINVAL, "channel %d: a CAS-framed E1 span carries E1_CAS channels", i);
            if (sp->kind == VB_SPAN_E1 && sp->framing == VB_FRAMING_CCS && c->type == VB_CHAN_E1_CAS)
                return efail(err, errlen, VB_EINVAL, "channel %d: a CCS-framed E1 span has no E1_CAS channels", i);
            int ts = c->timeslot;
            if (sp->kind == VB_SPAN_ANALOG) {
                if (ts == 0)
                    ts = i - first + 1;
            } else {
                if (ts == 0) {
                    if (c->type == VB_CHAN_E1_DCHAN) {
                        ts = 16;
                    } else {
                        while (next_ts <= 31 && (next_ts == 16 || (used >> next_ts & 1)))
                            next_ts++;
                        ts = next_ts;
                    }
                }
                if (ts < 1 || ts > 31)
                    return efail(err, errlen, VB_EINVAL, "channel %d: timeslot %d must be 1..31", i, ts);
                if (ts == 16 && sp->framing == VB_FRAMING_CAS)
                    return efail(err, errlen, VB_EINVAL, "channel %d: TS16 carries CAS signalling on span %d", i, s);
                if (used >> ts & 1)
                    return efail(err, errlen, VB_EINVAL, "channel %d: timeslot %d used twice on span %d", i, ts, s);
                used |= 1u << ts;
            }
            timeslots[i] = ts;
        }
        first += sp->nchan;
    }
    return VB_OK;
}

/* The command line of pid, for messages ("?" if it cannot be read). */
static void pid_cmdline(pid_t pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    snprintf(out, len, "?");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(out, 1, len - 1, f);
    fclose(f);
    while (n > 0 && out[n - 1] == '\0')
        n--;
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    out[n] = '\0';
    if (n == 0)
        snprintf(out, len, "?");
}

/* VB_EPERM if another user owns a segment of that name (a plant: never
 * replace or read it); VB_EBUSY if a live device serves the name; sets
 * *stale if a dead one left it. */
static int check_existing(const char *shm, const char *path, const char *name, int *stale,
                          char *err, size_t errlen)
{
    *stale = 0;
    struct stat st;
    if (stat(path, &st) < 0)
        return VB_OK;
    if (st.st_uid != geteuid()) {
        char owner[96], me[96];
        return efail(err, errlen, VB_EPERM,
                     "board '%s': %s exists and is owned by %s, not by this process's %s: "
                     "refusing a segment another user could have planted (remove it)",
                     name, path, vb_uid_text(st.st_uid, owner, sizeof owner),
                     vb_uid_text(geteuid(), me, sizeof me));
    }
    int fd = shm_open(shm, O_RDONLY, 0);
    if (fd < 0)
        return VB_OK;
    *stale = 1;
    int rc = VB_OK;
    if (fstat(fd, &st) == 0 && st.st_uid != geteuid()) {
        close(fd);      /* swapped under us: look again */
        return check_existing(shm, path, name, stale, err, errlen);
    }
    if ((size_t)st.st_size >= sizeof(struct vb_shm_header)) {
        struct vb_shm_header *h = mmap(NULL, sizeof *h, PROT_READ, MAP_SHARED, fd, 0);
        if (h != MAP_FAILED) {
            if (h->magic == VB_SHM_MAGIC && h->version == VB_SHM_VERSION
                && atomic_load(&h->dev_alive) && !atomic_load(&h->removed) && vb_pid_alive(h->dev_pid)) {
                char cmd[384];
                pid_cmdline(h->dev_pid, cmd, sizeof cmd);
                rc = efail(err, errlen, VB_EBUSY, "board '%s' is already served by pid %d (%s)",
                           name, (int)h->dev_pid, cmd);
            }
            munmap(h, sizeof *h);
        }
    }
    close(fd);
    return rc;
}

/* Remove half-made boards of this name left by creators that died. */
static void sweep_tmp(const char *name)
{
    char prefix[96];   /* the tmp shm name without its leading '/' */
    int plen = snprintf(prefix, sizeof prefix, "%s%s.", VB_SHM_TMP + 1, name);
    DIR *dir = opendir(VB_SHM_DIR);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strncmp(de->d_name, prefix, (size_t)plen) != 0)
            continue;
        int pid = atoi(de->d_name + plen);
        if (pid > 0 && !vb_pid_alive(pid)) {
            char path[sizeof VB_SHM_DIR + 1 + sizeof de->d_name];
            snprintf(path, sizeof path, VB_SHM_DIR "/%s", de->d_name);
            unlink(path);
        }
    }
    closedir(dir);
}

int vb_simdev_create(const char *name, const vb_span_spec_t *spans, int nspans,
                     const vb_chan_spec_t *chans, int nchan, int law, int clock,
                     vb_simdev_t **out, char *err, size_t errlen)
{
    if (!out)
        return efail(err, errlen, VB_EINVAL, "vb_simdev_create: out is NULL");
    *out = NULL;
    if (!name || !vb_valid_name(name))
        return efail(err, errlen, VB_EINVAL, "bad board name '%s': use 1..%d letters, digits, '_' or '-'",
                     name ? name : "(null)", VB_NAME_MAX - 1);
    if (law != VB_LAW_ALAW && law != VB_LAW_ULAW)
        return efail(err, errlen, VB_EINVAL, "board '%s': law %d must be alaw (1) or ulaw (2)", name, law);
    if (clock != VB_CLOCK_LOCKSTEP && clock != VB_CLOCK_REALTIME)
        return efail(err, errlen, VB_EINVAL, "board '%s': clock %d must be lockstep (1) or realtime (2)", name, clock);
    if (!spans || !chans)
        return efail(err, errlen, VB_EINVAL, "board '%s': spans and channels are required", name);
    if (nchan < 1 || nchan > VB_MAX_CHANNELS)
        return efail(err, errlen, VB_EINVAL, "board '%s': %d channels, must be 1..%d", name, nchan, VB_MAX_CHANNELS);
    int timeslots[VB_MAX_CHANNELS];
    char why[200];
    int rc = check_specs(spans, nspans, chans, nchan, timeslots, why, sizeof why);
    if (rc < 0)
        return efail(err, errlen, rc, "board '%s': %s", name, why);

    vb_simdev_t *d = calloc(1, sizeof *d);
    if (!d)
        return efail(err, errlen, VB_ENOMEM, "out of memory creating board '%s'", name);
    char shm[96], tmp[128], tmppath[160];
    snprintf(shm, sizeof shm, VB_SHM_PREFIX "%s", name);
    snprintf(d->path, sizeof d->path, VB_SHM_DIR "%s", shm);
    snprintf(tmp, sizeof tmp, VB_SHM_TMP "%s.%d.%lx", name, (int)getpid(), (unsigned long)(uintptr_t)d);
    snprintf(tmppath, sizeof tmppath, VB_SHM_DIR "%s", tmp);

    size_t stride = (size_t)nchan * VB_MAX_BLOCK;
    size_t off = align64(sizeof(struct vb_shm_header));
    size_t span_off = off;
    off = align64(off + (size_t)nspans * sizeof(struct vb_shm_span));
    size_t chan_off = off;
    off = align64(off + (size_t)nchan * sizeof(struct vb_shm_chan));
    size_t evq_off = off;
    off = align64(off + VB_EVQ_LEN * sizeof(vb_event_t));
    size_t cmdq_off = off;
    off = align64(off + VB_CMDQ_LEN * sizeof(vb_event_t));
    size_t rx_off = off;
    off = align64(off + VB_RING_SLOTS * stride * sizeof(int16_t));
    size_t tx_off = off;
    off += (VB_RING_SLOTS + 1) * stride * sizeof(int16_t);
    size_t total = (off + PAGE - 1) & ~(size_t)(PAGE - 1);

    sweep_tmp(name);
    /* 0600: the segment carries call audio; only this user's hosts may map it */
    int fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = efail(err, errlen, VB_ESYS, "cannot create " VB_SHM_DIR "%s: %s", tmp, strerror(errno));
        free(d);
        return rc;
    }
    struct stat st;
    void *map = MAP_FAILED;
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)total) < 0 || fstat(fd, &st) < 0
        || (map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        rc = efail(err, errlen, VB_ESYS, "cannot size/map %zu bytes of " VB_SHM_DIR "%s: %s",
                   total, tmp, strerror(errno));
        close(fd);
        shm_unlink(tmp);
        free(d);
        return rc;
    }
    close(fd);
    struct vb_shm_header *h = map;   /* ftruncate gave zeros */
    h->version = VB_SHM_VERSION;
    h->header_size = sizeof *h;
    h->total_size = total;
    snprintf(h->name, sizeof h->name, "%s", name);
    h->law = law;
    h->clock = clock;
    h->nspans = nspans;
    h->nchan = nchan;
    h->span_off = span_off;
    h->chan_off = chan_off;
    h->rx_off = rx_off;
    h->tx_off = tx_off;
    h->slot_stride = stride;
    h->dev_pid = getpid();
    atomic_store(&h->dev_alive, 1);
    h->evq.cap = VB_EVQ_LEN;
    h->evq.off = evq_off;
    h->cmdq.cap = VB_CMDQ_LEN;
    h->cmdq.off = cmdq_off;
    struct vb_shm_span *sp = vb_shm_spans(h);
    int first = 0;
    for (int s = 0; s < nspans; s++) {
        sp[s].kind = spans[s].kind;
        sp[s].nchan = spans[s].nchan;
        sp[s].first_chan = first;
        sp[s].framing = spans[s].framing;
        sp[s].coding = spans[s].coding;
        sp[s].crc4 = spans[s].crc4 ? 1 : 0;
        sp[s].timing = spans[s].timing;
        first += spans[s].nchan;
    }
    struct vb_shm_chan *c = vb_shm_chans(h);
    for (int i = 0; i < nchan; i++) {
        c[i].type = chans[i].type;
        c[i].span = chans[i].span;
        c[i].timeslot = timeslots[i];
        atomic_store(&c[i].xconnect, -1);
        atomic_store(&c[i].battery, chans[i].type == VB_CHAN_FXO);
        /* China No.1: an idle line sends ABCD 1011 both ways. */
        if (chans[i].type == VB_CHAN_E1_CAS) {
            atomic_store(&c[i].cas_rx, 0xB);
            atomic_store(&c[i].cas_tx, 0xB);
        }
    }
    atomic_thread_fence(memory_order_release);
    h->magic = VB_SHM_MAGIC;

    /* Make it visible under its real name in one step: link() when the name
     * is free (fails if someone beat us), rename() over a stale one. */
    rc = VB_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        int stale;
        rc = check_existing(shm, d->path, name, &stale, err, errlen);
        if (rc < 0)
            break;
        if (stale) {
            if (rename(tmppath, d->path) == 0)
                goto done;
        } else if (link(tmppath, d->path) == 0) {
            unlink(tmppath);
            goto done;
        }
        if (errno != EEXIST && errno != ENOENT) {
            rc = efail(err, errlen, VB_ESYS, "cannot publish %s as %s: %s", tmppath, d->path, strerror(errno));
            break;
        }
        rc = efail(err, errlen, VB_EBUSY, "board '%s' is being created by another process", name);
    }
    munmap(map, total);
    shm_unlink(tmp);
    free(d);
    return rc;
done:
    d->h = h;
    d->size = total;
    d->ino = st.st_ino;
    d->block = DEFAULT_BLOCK;
    d->tx_slot = VB_TX_SILENCE;
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return VB_OK;
}

/* Unlink our name unless it now belongs to a newer device. */
static void unlink_ours(vb_simdev_t *d)
{
    struct stat st;
    if (!d->unlinked && stat(d->path, &st) == 0 && st.st_ino == d->ino)
        unlink(d->path);
    d->unlinked = 1;
}

void vb_simdev_close(vb_simdev_t *d)
{
    if (!d)
        return;
    struct vb_shm_header *h = d->h;
    if (h->dev_pid == getpid()) {   /* a fork child's copy does not end the board */
        atomic_store(&h->dev_alive, 0);
        vb_shm_signal(&h->dev_seq, &h->dev_waiters);
        unlink_ours(d);
    }
    pthread_mutex_destroy(&d->lock);
    munmap(h, d->size);
    free(d);
}

const char *vb_simdev_errmsg(const vb_simdev_t *d)
{
    return d ? d->err : "no device";
}

static int gone(vb_simdev_t *d)
{
    return dfail(d, VB_ELOST, "board '%s' was removed", d->h->name);
}

int vb_simdev_host_attached(vb_simdev_t *d)
{
    struct vb_shm_header *h = d->h;
    uint64_t token = atomic_load(&h->host_token);
    pid_t pid = atomic_load(&h->host_pid);
    if (token && pid > 0 && !vb_pid_alive(pid)) {
        /* The host died without closing: free the board for the next one. */
        if (atomic_compare_exchange_strong(&h->host_token, &token, 0))
            atomic_store(&h->host_pid, 0);
    }
    return atomic_load(&h->host_token) != 0;
}

int vb_simdev_wait_host(vb_simdev_t *d, int timeout_ms)
{
    struct vb_shm_header *h = d->h;
    if (d->removed)
        return gone(d);
    int64_t deadline = vb_now_ns() + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000LL;
    for (;;) {
        uint32_t seq = atomic_load(&h->host_seq);
        if (vb_simdev_host_attached(d))
            return 1;
        int64_t now = vb_now_ns();
        if (timeout_ms >= 0 && now >= deadline)
            return 0;
        int slice = timeout_ms < 0 ? 1000 : (int)((deadline - now + 999999) / 1000000);
        vb_shm_sleep(&h->host_seq, &h->host_waiters, seq, slice);
    }
}

static int eff_block(struct vb_shm_header *h)
{
    uint32_t b = atomic_load(&h->block);
    return b ? (int)b : DEFAULT_BLOCK;
}

int vb_simdev_block(vb_simdev_t *d)
{
    return d->in_tick ? d->block : eff_block(d->h);
}

static int sleep_realtime(vb_simdev_t *d, uint64_t n, int block)
{
    int64_t period = (int64_t)block * 125000;   /* 8000 samples/s */
    int64_t now = vb_now_ns();
    uint64_t host = atomic_load(&d->h->host_token);
    if (!d->rt_base_ns || block != d->rt_block || host != d->rt_host) {
        /* A new schedule for each host session: no catching up on the time
         * the board sat without a host. */
        d->rt_base_ns = now;
        d->rt_base_tick = n;
        d->rt_block = block;
        d->rt_host = host;
        return VB_OK;
    }
    int64_t due = d->rt_base_ns + (int64_t)(n - d->rt_base_tick) * period;
    /* Late (the device was descheduled): no sleep, so it catches up.  A card's
     * clock never stops: tick n stays at base + n periods, and a host that
     * cannot keep up skips ticks (overruns) rather than fall behind real time. */
    if (now >= due)
        return VB_OK;
    struct timespec ts = { due / 1000000000LL, due % 1000000000LL };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return VB_OK;
}

int vb_simdev_next_tick(vb_simdev_t *d, int timeout_ms, uint64_t *tick)
{
    struct vb_shm_header *h = d->h;
    if (d->removed)
        return gone(d);
    if (d->in_tick)
        return dfail(d, VB_EINVAL, "board '%s': publish() tick %llu before next_tick()",
                     h->name, (unsigned long long)d->tick);
    uint64_t n = d->next;
    if (h->clock == VB_CLOCK_LOCKSTEP) {
        int64_t deadline = vb_now_ns() + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000LL;
        for (;;) {
            uint32_t seq = atomic_load(&h->host_seq);
            if (atomic_load(&h->host_token) && atomic_load(&h->committed) >= n)
                break;
            int64_t now = vb_now_ns();
            if (timeout_ms >= 0 && now >= deadline)
                return dfail(d, VB_ETIMEDOUT, "board '%s': no commit of tick %lld from the host within %d ms",
                             h->name, (long long)n - 1, timeout_ms);
            int slice = timeout_ms < 0 ? 1000 : (int)((deadline - now + 999999) / 1000000);
            vb_shm_sleep(&h->host_seq, &h->host_waiters, seq, slice);
        }
    }
    int block = eff_block(h);
    if (h->clock == VB_CLOCK_REALTIME)
        sleep_realtime(d, n, block);

    /* tx for this tick = what the host committed for the previous one. */
    int txs = VB_TX_SILENCE;
    if (n > 0) {
        struct vb_shm_slot *sl = &h->slots[(n - 1) % VB_RING_SLOTS];
        atomic_store(&h->started, n + 1);
        if (atomic_load(&sl->tx_tick) == n && atomic_load(&sl->tx_block) == (uint32_t)block)
            txs = (int)((n - 1) % VB_RING_SLOTS);
        else if (h->clock == VB_CLOCK_REALTIME && atomic_load(&h->host_token)
                 && atomic_load(&h->host_first_tick) <= n - 1)
            atomic_fetch_add(&h->underruns, 1);
    } else {
        atomic_store(&h->started, n + 1);
    }
    pthread_mutex_lock(&d->lock);
    d->tick = n;
    d->block = block;
    d->tx_slot = txs;
    d->in_tick = 1;
    pthread_mutex_unlock(&d->lock);
    *tick = n;
    return VB_OK;
}

int vb_simdev_rings(vb_simdev_t *d, int16_t **rx, const int16_t **tx, size_t *slot_stride)
{
    struct vb_shm_header *h = d->h;
    *rx = (int16_t *)((char *)h + h->rx_off);
    *tx = (const int16_t *)((char *)h + h->tx_off);
    *slot_stride = h->slot_stride;
    return VB_OK;
}

int vb_simdev_slots(vb_simdev_t *d, int *rx_slot, int *tx_slot)
{
    *rx_slot = (int)(d->tick % VB_RING_SLOTS);
    *tx_slot = d->tx_slot;
    return VB_OK;
}

int16_t *vb_simdev_rx(vb_simdev_t *d)
{
    struct vb_shm_header *h = d->h;
    return (int16_t *)((char *)h + h->rx_off) + (d->tick % VB_RING_SLOTS) * h->slot_stride;
}

const int16_t *vb_simdev_tx(vb_simdev_t *d)
{
    struct vb_shm_header *h = d->h;
    return (const int16_t *)((char *)h + h->tx_off) + (size_t)d->tx_slot * h->slot_stride;
}

int vb_simdev_read_commands(vb_simdev_t *d, vb_event_t *buf, int max)
{
    struct vb_shm_header *h = d->h;
    if (d->removed)
        return gone(d);
    int n = 0;
    const vb_event_t *ev;
    while (n < max && (ev = vb_shm_qpeek(h, &h->cmdq))) {
        buf[n++] = *ev;
        vb_shm_qpop(&h->cmdq);
    }
    return n;
}

static const char *chan_type_name(int t)
{
    static const char *names[] = { "?", "FXO", "FXS", "E1_CAS", "E1_BEARER", "E1_DCHAN" };
    return t >= 1 && t <= 5 ? names[t] : "?";
}

/* Register update + queue push; caller holds d->lock and checked arguments. */
static void post_locked(vb_simdev_t *d, int kind, int chan, int span, int value)
{
    struct vb_shm_header *h = d->h;
    if (chan >= 0) {
        struct vb_shm_chan *c = &vb_shm_chans(h)[chan];
        span = c->span;
        switch (kind) {
        case VB_EV_HOOK_OFF:
        case VB_EV_HOOK_ON: {
            int v = kind == VB_EV_HOOK_OFF;
            if (atomic_exchange(&c->hook, v) != v)
                atomic_fetch_add(&c->counters[VB_CCNT_HOOK_CHANGES], 1);
            break;
        }
        case VB_EV_RING_START:
            if (!atomic_exchange(&c->ringing, 1))
                atomic_fetch_add(&c->counters[VB_CCNT_RINGS], 1);
            break;
        case VB_EV_RING_STOP: atomic_store(&c->ringing, 0); break;
        case VB_EV_LOOP_DROP: atomic_store(&c->battery, 0); break;
        case VB_EV_LOOP_RESTORE: atomic_store(&c->battery, 1); break;
        case VB_EV_BATTERY_REVERSAL: atomic_fetch_xor(&c->reversed, 1); break;
        case VB_EV_CAS:
            if (atomic_exchange(&c->cas_rx, value) != value)
                atomic_fetch_add(&c->counters[VB_CCNT_CAS_CHANGES], 1);
            break;
        default: break;
        }
        atomic_fetch_add(&c->counters[VB_CCNT_EVENTS], 1);
    } else if (span >= 0) {
        struct vb_shm_span *sp = &vb_shm_spans(h)[span];
        if (kind == VB_EV_ALARM_SET)
            atomic_fetch_or(&sp->alarms, (uint32_t)value);
        else if (kind == VB_EV_ALARM_CLEAR)
            atomic_fetch_and(&sp->alarms, ~(uint32_t)value);
    }
    /* Stamped with the tick it belongs to: the host sees it with that tick. */
    vb_event_t ev = { d->in_tick ? d->tick : d->next, kind, chan, span, value };
    vb_shm_qpush(h, &h->evq, &ev);   /* a full queue counts it as lost */
}

static const int ev_chan_type[VB_EV_MAX + 1] = {
    [VB_EV_HOOK_OFF] = VB_CHAN_FXS, [VB_EV_HOOK_ON] = VB_CHAN_FXS, [VB_EV_FLASH] = VB_CHAN_FXS,
    [VB_EV_RING_START] = VB_CHAN_FXO, [VB_EV_RING_STOP] = VB_CHAN_FXO,
    [VB_EV_LOOP_DROP] = VB_CHAN_FXO, [VB_EV_LOOP_RESTORE] = VB_CHAN_FXO,
    [VB_EV_BATTERY_REVERSAL] = VB_CHAN_FXO, [VB_EV_CAS] = VB_CHAN_E1_CAS,
};

int vb_simdev_post(vb_simdev_t *d, int kind, int chan, int span, int value)
{
    struct vb_shm_header *h = d->h;
    if (d->removed)
        return gone(d);
    if (kind < VB_EV_HOOK_OFF || kind > VB_EV_MAX)
        return dfail(d, VB_EINVAL, "board '%s': unknown event kind %d", h->name, kind);
    if (kind == VB_EV_BOARD_LOST)
        return dfail(d, VB_EINVAL, "board '%s': post BOARD_LOST by calling remove()", h->name);
    if (kind == VB_EV_EVENTS_LOST)
        return dfail(d, VB_EINVAL, "board '%s': EVENTS_LOST is reported by the library itself", h->name);
    if (ev_chan_type[kind]) {
        if (chan < 0 || chan >= h->nchan)
            return dfail(d, VB_ECHAN, "board '%s': channel %d out of range 0..%d", h->name, chan, h->nchan - 1);
        int type = vb_shm_chans(h)[chan].type;
        if (type != ev_chan_type[kind])
            return dfail(d, VB_EINVAL, "board '%s': event %d is for %s channels; channel %d is %s",
                         h->name, kind, chan_type_name(ev_chan_type[kind]), chan, chan_type_name(type));
        if (span != -1 && span != vb_shm_chans(h)[chan].span)
            return dfail(d, VB_EINVAL, "board '%s': channel %d is on span %d, not %d",
                         h->name, chan, vb_shm_chans(h)[chan].span, span);
        if (kind == VB_EV_CAS && (value < 0 || value > 15))
            return dfail(d, VB_EINVAL, "board '%s': CAS bits %d for channel %d must be 0..15", h->name, value, chan);
    } else {   /* ALARM_SET / ALARM_CLEAR: span events */
        if (chan != -1)
            return dfail(d, VB_EINVAL, "board '%s': alarms are span events (chan -1), got channel %d", h->name, chan);
        if (span < 0 || span >= h->nspans)
            return dfail(d, VB_ESPAN, "board '%s': span %d out of range 0..%d", h->name, span, h->nspans - 1);
        if (value != VB_ALARM_LOS && value != VB_ALARM_LOF && value != VB_ALARM_AIS && value != VB_ALARM_RAI)
            return dfail(d, VB_EINVAL, "board '%s': alarm value %d must be one bit: LOS=1 LOF=2 AIS=4 RAI=8",
                         h->name, value);
    }
    pthread_mutex_lock(&d->lock);
    post_locked(d, kind, chan, span, value);
    pthread_mutex_unlock(&d->lock);
    return VB_OK;
}

int vb_simdev_set_alarms(vb_simdev_t *d, int span, unsigned bits)
{
    struct vb_shm_header *h = d->h;
    if (d->removed)
        return gone(d);
    if (span < 0 || span >= h->nspans)
        return dfail(d, VB_ESPAN, "board '%s': span %d out of range 0..%d", h->name, span, h->nspans - 1);
    if (bits & ~(unsigned)VB_ALARM_ALL)
        return dfail(d, VB_EINVAL, "board '%s': alarm bits 0x%x: only LOS=1 LOF=2 AIS=4 RAI=8", h->name, bits);
    pthread_mutex_lock(&d->lock);
    uint32_t old = atomic_load(&vb_shm_spans(h)[span].alarms);
    for (unsigned bit = 1; bit <= VB_ALARM_RAI; bit <<= 1) {
        if ((old ^ bits) & bit)
            post_locked(d, bits & bit ? VB_EV_ALARM_SET : VB_EV_ALARM_CLEAR, -1, span, (int)bit);
    }
    pthread_mutex_unlock(&d->lock);
    return VB_OK;
}

int vb_simdev_add_counter(vb_simdev_t *d, int span, int counter, uint64_t n)
{
    struct vb_shm_header *h = d->h;
    if (span < 0 || span >= h->nspans)
        return dfail(d, VB_ESPAN, "board '%s': span %d out of range 0..%d", h->name, span, h->nspans - 1);
    if (counter < 0 || counter >= VB_SPAN_NCOUNTERS)
        return dfail(d, VB_EINVAL, "board '%s': counter %d must be 0..%d", h->name, counter, VB_SPAN_NCOUNTERS - 1);
    atomic_fetch_add(&vb_shm_spans(h)[span].counters[counter], n);
    return VB_OK;
}

int vb_simdev_set_clock(vb_simdev_t *d, int64_t start_us, int utcoff_s)
{
    struct vb_shm_header *h = d->h;
    if (utcoff_s <= -86400 || utcoff_s >= 86400)
        return dfail(d, VB_EINVAL, "board '%s': UTC offset %d s must be less than a day", h->name, utcoff_s);
    h->sim_start_us = start_us;
    h->sim_utcoff_s = utcoff_s;
    atomic_store_explicit(&h->sim_clock, 1, memory_order_release);
    return VB_OK;
}

static void do_publish(vb_simdev_t *d)
{
    struct vb_shm_header *h = d->h;
    size_t row = (size_t)d->block;
    if (atomic_load(&h->nloop)) {
        /* Card loopback: the host hears back what it sent on the channel. */
        int16_t *rx = vb_simdev_rx(d);
        const int16_t *tx = vb_simdev_tx(d);
        struct vb_shm_chan *c = vb_shm_chans(h);
        for (int i = 0; i < h->nchan; i++)
            if (atomic_load_explicit(&c[i].loopback, memory_order_relaxed))
                memcpy(rx + i * row, tx + i * row, row * sizeof(int16_t));
    }
    struct vb_shm_slot *sl = &h->slots[d->tick % VB_RING_SLOTS];
    atomic_store(&sl->rx_block, (uint32_t)d->block);
    atomic_store(&sl->rx_tick, d->tick + 1);
    atomic_store(&h->published, d->tick + 1);
    pthread_mutex_lock(&d->lock);
    d->in_tick = 0;
    d->next = d->tick + 1;
    pthread_mutex_unlock(&d->lock);
    vb_shm_signal(&h->dev_seq, &h->dev_waiters);
}

int vb_simdev_publish(vb_simdev_t *d)
{
    if (d->removed)
        return gone(d);
    if (!d->in_tick)
        return dfail(d, VB_EINVAL, "board '%s': publish() without next_tick()", d->h->name);
    do_publish(d);
    return VB_OK;
}

int vb_simdev_remove(vb_simdev_t *d)
{
    struct vb_shm_header *h = d->h;
    if (d->removed)
        return VB_OK;
    pthread_mutex_lock(&d->lock);
    if (!d->in_tick) {
        /* A last tick to carry the BOARD_LOST event, whether or not the
         * host committed: a card that vanishes does not wait. */
        d->tick = d->next;
        d->block = eff_block(h);
        d->tx_slot = VB_TX_SILENCE;
        d->in_tick = 1;
        atomic_store(&h->started, d->tick + 1);
        memset(vb_simdev_rx(d), 0, (size_t)h->nchan * (size_t)d->block * sizeof(int16_t));
    }
    post_locked(d, VB_EV_BOARD_LOST, -1, -1, 0);
    pthread_mutex_unlock(&d->lock);
    do_publish(d);   /* the final tick first, so the host reads it before the loss */
    atomic_store(&h->removed, 1);
    atomic_store(&h->dev_alive, 0);
    vb_shm_signal(&h->dev_seq, &h->dev_waiters);
    d->removed = 1;
    unlink_ours(d);
    return VB_OK;
}

int vb_simdev_stats(vb_simdev_t *d, vb_stats_t *out)
{
    struct vb_shm_header *h = d->h;
    out->ticks = atomic_load(&h->published);
    out->late_ticks = atomic_load(&h->late_ticks);
    out->overruns = atomic_load(&h->overruns);
    out->underruns = atomic_load(&h->underruns);
    out->events_lost = atomic_load(&h->evq.dropped);
    return VB_OK;
}
