/* C test of the board library: a forked child is the device, the parent the
 * host.  Covers open errors, start/busy, lockstep ticks both ways, events,
 * commands, status registers, removal and a SIGKILLed device; the segment's
 * mode (0600) and segments another user owns (refused on create and open).
 * Build and run: make ctest (ASan + UBSan). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vb.h"
#include "vb_simdev.h"

static int failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

#define NCHAN 34
#define REMOVE_AT 20
#define HOOK_AT 5
#define SIM_START_US 1795910400000000LL   /* 2026-11-29T00:00:00Z */
#define SIM_UTCOFF (8 * 3600)

static char create_err[256];   /* the last make_device failure */

static int make_device(const char *name, vb_simdev_t **dev, int quiet)
{
    vb_span_spec_t spans[2] = {
        { VB_SPAN_ANALOG, 4, 0, 0, 0, 0 },
        { VB_SPAN_E1, 30, VB_FRAMING_CAS, VB_CODING_HDB3, 0, 1 },
    };
    vb_chan_spec_t chans[NCHAN];
    for (int i = 0; i < NCHAN; i++) {
        chans[i].type = i < 2 ? VB_CHAN_FXO : i < 4 ? VB_CHAN_FXS : VB_CHAN_E1_CAS;
        chans[i].span = i < 4 ? 0 : 1;
        chans[i].timeslot = 0;
    }
    int rc = vb_simdev_create(name, spans, 2, chans, NCHAN, VB_LAW_ALAW, VB_CLOCK_LOCKSTEP, dev,
                              create_err, sizeof create_err);
    if (rc < 0 && !quiet)
        fprintf(stderr, "vb_simdev_create: %s\n", create_err);
    return rc;
}

/* Child: serve ticks; rx[c][i] = tick*100 + c; check the host's tx; remove at REMOVE_AT. */
static int device_main(const char *name, int ready_fd)
{
    vb_simdev_t *dev;
    if (make_device(name, &dev, 0) < 0 || vb_simdev_set_clock(dev, SIM_START_US, SIM_UTCOFF) < 0)
        return 10;
    if (write(ready_fd, "r", 1) != 1)
        return 11;
    close(ready_fd);
    int bad = 0;
    if (vb_simdev_wait_host(dev, 10000) != 1)
        bad |= 1;
    int block = vb_simdev_block(dev);
    int saw_hook = 0;
    for (uint64_t want = 0; !bad; want++) {
        uint64_t tick;
        if (vb_simdev_next_tick(dev, 10000, &tick) < 0 || tick != want) {
            bad |= 2;
            break;
        }
        const int16_t *tx = vb_simdev_tx(dev);
        int16_t *rx = vb_simdev_rx(dev);
        for (int c = 0; c < NCHAN; c++)
            for (int i = 0; i < block; i++) {
                int16_t expect = tick == 0 ? 0 : (int16_t)((tick - 1) * 3 + c + i);
                if (tx[c * block + i] != expect)
                    bad |= 4;
                rx[c * block + i] = (int16_t)(tick * 100 + c);
            }
        vb_event_t cmds[8];
        int n = vb_simdev_read_commands(dev, cmds, 8);
        for (int k = 0; k < n; k++)
            if (cmds[k].kind == VB_CMD_HOOK && cmds[k].chan == 1 && cmds[k].value == VB_HOOK_OFF
                && cmds[k].tick == HOOK_AT)
                saw_hook = 1;
        if (tick == HOOK_AT + 1) {
            if (!saw_hook)
                bad |= 8;
            vb_simdev_post(dev, VB_EV_HOOK_OFF, 2, -1, 0);
            vb_simdev_set_alarms(dev, 1, VB_ALARM_LOS);
            vb_simdev_add_counter(dev, 1, VB_SCNT_SLIPS, 2);
        }
        if (vb_simdev_post(dev, VB_EV_HOOK_OFF, 0, -1, 0) != VB_EINVAL)  /* FXO has no phone */
            bad |= 16;
        if (tick == REMOVE_AT) {
            vb_simdev_remove(dev);
            break;
        }
        vb_simdev_publish(dev);
    }
    vb_simdev_close(dev);
    return bad;
}

static void test_open_errors(void)
{
    vb_board_t *b = (vb_board_t *)1;
    char err[256];
    CHECK(vb_open("nothing", &b, err, sizeof err) == VB_ESCHEME && b == NULL);
    CHECK(vb_open("foo://x", &b, err, sizeof err) == VB_ESCHEME && strstr(err, "'foo'"));
    /* no DAHDI modules on a test machine: no /dev/dahdi/ctl */
    CHECK(vb_open("dahdi:///dev/dahdi", &b, err, sizeof err) == VB_ENOBOARD && strstr(err, "modules are not loaded"));
    CHECK(vb_open("dahdi://elsewhere", &b, err, sizeof err) == VB_EINVAL && b == NULL);
    CHECK(vb_open("sim://no_such_board_here", &b, err, sizeof err) == VB_ENOBOARD && strstr(err, "is hwsim running?"));
    CHECK(vb_open("sim://../etc", &b, err, sizeof err) == VB_EINVAL);
    CHECK(strcmp(vb_strerror(VB_ELOST), "board lost") == 0);
}

static pid_t spawn_device(const char *name)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        _exit(device_main(name, fds[1]));
    }
    close(fds[1]);
    char c;
    if (read(fds[0], &c, 1) != 1)
        pid = -1;
    close(fds[0]);
    return pid;
}

static void test_host_and_device(void)
{
    char name[64], uri[80], err[256];
    snprintf(name, sizeof name, "ctest%d", (int)getpid());
    snprintf(uri, sizeof uri, "sim://%s", name);
    pid_t pid = spawn_device(name);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    vb_board_t *b, *other;
    CHECK(vb_open(uri, &b, err, sizeof err) == 0);
    CHECK(vb_open(uri, &other, err, sizeof err) == 0);
    vb_board_info_t info;
    CHECK(vb_board_info(b, &info) == 0 && info.nchan == NCHAN && info.nspans == 2 && info.law == VB_LAW_ALAW);
    CHECK(info.sim_clock == 1 && info.clock_start_us == SIM_START_US && info.clock_utcoff_s == SIM_UTCOFF);
    vb_chan_info_t ci;
    CHECK(vb_chan_info(b, 4 + 15, &ci) == 0 && ci.timeslot == 17 && ci.type == VB_CHAN_E1_CAS);
    CHECK(vb_chan_info(b, NCHAN, &ci) == VB_ECHAN && strstr(vb_errmsg(b), "out of range 0..33"));
    CHECK(vb_hook(b, 1, VB_HOOK_OFF) == VB_ENOTSTARTED);
    CHECK(vb_start(b, 100) == VB_EINVAL);
    CHECK(vb_start(b, 160) == 0);
    CHECK(vb_start(other, 160) == VB_EBUSY);
    vb_close(other);

    int got_hook = 0, got_alarm = 0, got_lost = 0, rc = 0;
    for (uint64_t want = 0;; want++) {
        uint64_t tick;
        rc = vb_wait_tick(b, 5000, &tick);
        if (rc < 0)
            break;
        CHECK(tick == want);
        const int16_t *rx = vb_rx(b);
        int16_t *tx = vb_tx(b);
        CHECK(rx[7 * 160 + 3] == (int16_t)(tick * 100 + 7));
        for (int c = 0; c < NCHAN; c++)
            for (int i = 0; i < 160; i++)
                tx[c * 160 + i] = (int16_t)(tick * 3 + c + i);
        vb_event_t ev[16];
        int n = vb_read_events(b, ev, 16);
        for (int k = 0; k < n; k++) {
            CHECK(ev[k].tick == tick);
            if (ev[k].kind == VB_EV_HOOK_OFF && ev[k].chan == 2)
                got_hook = 1;
            if (ev[k].kind == VB_EV_ALARM_SET && ev[k].span == 1 && ev[k].value == VB_ALARM_LOS)
                got_alarm = 1;
            if (ev[k].kind == VB_EV_BOARD_LOST)
                got_lost = (int)tick;
        }
        if (tick == HOOK_AT)
            CHECK(vb_hook(b, 1, VB_HOOK_OFF) == 0);
        CHECK(vb_commit(b) == 0);
    }
    CHECK(rc == VB_ELOST);
    CHECK(got_hook && got_alarm && got_lost == REMOVE_AT);
    vb_chan_status_t cs;
    CHECK(vb_chan_status(b, 2, &cs) == 0 && cs.hook == 1);
    CHECK(vb_chan_status(b, 1, &cs) == 0 && cs.hook == 1 && cs.counters[VB_CCNT_COMMANDS] == 1);
    vb_span_status_t ss;
    CHECK(vb_span_status(b, 1, &ss) == 0 && ss.alarms == VB_ALARM_LOS && ss.counters[VB_SCNT_SLIPS] == 2);
    vb_stats_t st;
    CHECK(vb_stats(b, &st) == 0 && st.ticks == REMOVE_AT + 1 && st.underruns == 0 && st.overruns == 0);
    CHECK(vb_wait_tick(b, 5000, NULL) == VB_ELOST);
    vb_close(b);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFEXITED(status) && WEXITSTATUS(status))
        fprintf(stderr, "device reported problems: bits 0x%x\n", WEXITSTATUS(status));
}

/* A device killed with SIGKILL: the host gets VB_ELOST, not a hang or a timeout. */
static void test_killed_device(void)
{
    char name[64], uri[80], err[256];
    snprintf(name, sizeof name, "ctestkill%d", (int)getpid());
    snprintf(uri, sizeof uri, "sim://%s", name);
    pid_t pid = spawn_device(name);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    vb_board_t *b;
    CHECK(vb_open(uri, &b, err, sizeof err) == 0);
    CHECK(vb_start(b, 80) == 0);
    uint64_t tick;
    CHECK(vb_wait_tick(b, 5000, &tick) == 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++) {
        vb_commit(b);
        rc = vb_wait_tick(b, 5000, &tick);
    }
    CHECK(rc == VB_ELOST);
    vb_event_t ev[4];
    CHECK(vb_read_events(b, ev, 4) == 1 && ev[0].kind == VB_EV_BOARD_LOST);
    vb_close(b);
    /* Stale shm: not a board any more, and a new device may take the name. */
    CHECK(vb_open(uri, &b, err, sizeof err) == VB_ENOBOARD && strstr(err, "stale"));
    vb_simdev_t *dev;
    CHECK(make_device(name, &dev, 0) == 0);
    CHECK(vb_simdev_set_clock(dev, 0, 86400) == VB_EINVAL);
    CHECK(vb_open(uri, &b, err, sizeof err) == 0);   /* no clock set: the host uses its own */
    vb_board_info_t info;
    CHECK(vb_board_info(b, &info) == 0 && info.sim_clock == 0);
    vb_close(b);
    vb_simdev_t *dup;
    CHECK(make_device(name, &dup, 1) == VB_EBUSY);
    /* The message names the process holding the name: its pid and command line. */
    char holder[64];
    snprintf(holder, sizeof holder, "served by pid %d (", (int)getpid());
    CHECK(strstr(create_err, holder) && strstr(create_err, "test_vb"));
    vb_simdev_close(dev);
}

/* The segment is 0600 whatever the umask; one another user owns is never
 * replaced (create) nor attached to (open). Chowning needs root: else skipped. */
static void test_segment_mode_and_owner(void)
{
    char name[64], uri[80], path[128], err[512];
    snprintf(name, sizeof name, "ctestown%d", (int)getpid());
    snprintf(uri, sizeof uri, "sim://%s", name);
    snprintf(path, sizeof path, "/dev/shm/voiceboard.%s", name);
    mode_t old = umask(0);
    vb_simdev_t *dev;
    CHECK(make_device(name, &dev, 0) == 0);
    umask(old);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    if (geteuid() != 0) {
        fprintf(stderr, "test_vb: not root: the foreign-owner checks are skipped\n");
        vb_simdev_close(dev);
        return;
    }
    /* a host refuses a live board another user owns */
    CHECK(chown(path, 65534, 65534) == 0);
    vb_board_t *b = NULL;
    CHECK(vb_open(uri, &b, err, sizeof err) == VB_EPERM && b == NULL);
    CHECK(strstr(err, path + 8) && strstr(err, "owned by uid 65534"));
    CHECK(chown(path, 0, 0) == 0);
    CHECK(vb_open(uri, &b, err, sizeof err) == 0);
    vb_close(b);
    vb_simdev_close(dev);
    /* a device does not replace a segment another user planted under its name */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "plant", 5) == 5 && fchown(fd, 65534, 65534) == 0);
    close(fd);
    CHECK(make_device(name, &dev, 1) == VB_EPERM);
    CHECK(stat(path, &st) == 0 && st.st_uid == 65534 && st.st_size == 5);
    unlink(path);
}

int main(void)
{
    test_open_errors();
    test_host_and_device();
    test_killed_device();
    test_segment_mode_and_owner();
    if (failures) {
        fprintf(stderr, "test_vb: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_vb: ok\n");
    return 0;
}
