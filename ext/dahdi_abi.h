/* The DAHDI user-space ABI (x86-64 Linux), as the project needs it: the
 * ioctl numbers, structures and constants of <dahdi/user.h>, under our own
 * VBD_ prefix so that the dahdi:// backend and the device emulator build
 * without the dahdi-linux headers.  tests/c/test_dahdi_abi.c includes both
 * this file and the real header and checks every number and layout agrees.
 */
#ifndef DAHDI_ABI_H
#define DAHDI_ABI_H

#include <linux/ioctl.h>
#include <stdint.h>

#define VBD_ELAST 500                 /* read/write while an event waits */
#define VBD_CODE 0xDA

/* Line configuration bits (SPANCONFIG lineconfig, SPANSTAT linecompat). */
#define VBD_CONFIG_D4    (1 << 4)
#define VBD_CONFIG_ESF   (1 << 5)
#define VBD_CONFIG_AMI   (1 << 6)
#define VBD_CONFIG_B8ZS  (1 << 7)
#define VBD_CONFIG_CCS   (1 << 8)
#define VBD_CONFIG_HDB3  (1 << 9)
#define VBD_CONFIG_CRC4  (1 << 10)

/* Signalling types (CHANCONFIG sigtype, GET_PARAMS sigcap). */
#define VBD_SIG_FXO_BIT  (1 << 12)    /* __DAHDI_SIG_FXO: an FXS port */
#define VBD_SIG_FXS_BIT  (1 << 13)    /* __DAHDI_SIG_FXS: an FXO port */
#define VBD_SIG_NONE     0
#define VBD_SIG_FXSLS    ((1 << 0) | VBD_SIG_FXS_BIT)
#define VBD_SIG_FXSGS    ((1 << 1) | VBD_SIG_FXS_BIT)
#define VBD_SIG_FXSKS    ((1 << 2) | VBD_SIG_FXS_BIT)
#define VBD_SIG_FXOLS    ((1 << 3) | VBD_SIG_FXO_BIT)
#define VBD_SIG_FXOGS    ((1 << 4) | VBD_SIG_FXO_BIT)
#define VBD_SIG_FXOKS    ((1 << 5) | VBD_SIG_FXO_BIT)
#define VBD_SIG_EM       (1 << 6)
#define VBD_SIG_CLEAR    (1 << 7)
#define VBD_SIG_HDLCRAW  ((1 << 8) | VBD_SIG_CLEAR)
#define VBD_SIG_HDLCFCS  ((1 << 9) | VBD_SIG_HDLCRAW)
#define VBD_SIG_HDLCNET  ((1 << 10) | VBD_SIG_HDLCFCS)
#define VBD_SIG_SLAVE    (1 << 11)
#define VBD_SIG_SF       (1 << 14)
#define VBD_SIG_CAS      (1 << 15)
#define VBD_SIG_DACS     ((1 << 16) | VBD_SIG_CLEAR)
#define VBD_SIG_EM_E1    (1 << 17)
#define VBD_SIG_DACS_RBS ((1 << 18) | (1 << 16))
#define VBD_SIG_HARDHDLC ((1 << 19) | VBD_SIG_CLEAR)
#define VBD_SIG_MTP2     ((1 << 20) | VBD_SIG_HDLCFCS)

#define VBD_ABIT 8
#define VBD_BBIT 4
#define VBD_CBIT 2
#define VBD_DBIT 1

#define VBD_MAX_BLOCKSIZE     8192
#define VBD_DEFAULT_NUM_BUFS  2
#define VBD_MAX_NUM_BUFS      32
#define VBD_MAX_BUF_SPACE     32768
#define VBD_DEFAULT_BLOCKSIZE 1024
#define VBD_POLICY_IMMEDIATE  0
#define VBD_GET_PARAMS_RETURN_MASTER 0x40000000

#define VBD_LAW_DEFAULT 0
#define VBD_LAW_MULAW   1
#define VBD_LAW_ALAW    2

#define VBD_MAX_EVENTSIZE 64
#define VBD_MAX_SPANS     128
#define VBD_MAX_CHANNELS  1024

#define VBD_ONHOOK  0
#define VBD_OFFHOOK 1
#define VBD_WINK    2
#define VBD_FLASH   3
#define VBD_START   4
#define VBD_RING    5
#define VBD_RINGOFF 6

#define VBD_FLUSH_READ  1
#define VBD_FLUSH_WRITE 2
#define VBD_FLUSH_EVENT 4

#define VBD_ALARM_RECOVER  (1 << 0)
#define VBD_ALARM_LOOPBACK (1 << 1)
#define VBD_ALARM_YELLOW   (1 << 2)
#define VBD_ALARM_RED      (1 << 3)
#define VBD_ALARM_BLUE     (1 << 4)
#define VBD_ALARM_NOTOPEN  (1 << 5)
#define VBD_ALARM_LOS      (1 << 8)
#define VBD_ALARM_LFA      (1 << 9)
#define VBD_ALARM_LMFA     (1 << 10)

#define VBD_IOMUX_READ       1
#define VBD_IOMUX_WRITE      2
#define VBD_IOMUX_WRITEEMPTY 4
#define VBD_IOMUX_SIGEVENT   8
#define VBD_IOMUX_NOWAIT     0x100

#define VBD_EVENT_NONE          0
#define VBD_EVENT_ONHOOK        1
#define VBD_EVENT_RINGOFFHOOK   2
#define VBD_EVENT_WINKFLASH     3
#define VBD_EVENT_ALARM         4
#define VBD_EVENT_NOALARM       5
#define VBD_EVENT_RINGERON      10
#define VBD_EVENT_RINGEROFF     11
#define VBD_EVENT_HOOKCOMPLETE  12
#define VBD_EVENT_BITSCHANGED   13
#define VBD_EVENT_TIMER_EXPIRED 15
#define VBD_EVENT_TIMER_PING    16
#define VBD_EVENT_POLARITY      17
#define VBD_EVENT_RINGBEGIN     18
#define VBD_EVENT_REMOVED       20
#define VBD_EVENT_READ_OVERRUN  29
#define VBD_EVENT_WRITE_UNDERRUN 30

#define VBD_MAINT_NONE 0
#define VBD_MAINT_LOCALLOOP 1
#define VBD_MAINT_NETWORKLINELOOP 2
#define VBD_MAINT_LOOPUP 3
#define VBD_MAINT_LOOPDOWN 4
#define VBD_MAINT_NETWORKPAYLOADLOOP 13
#define VBD_RESET_COUNTERS 14

struct vbd_params {
    int channo, spanno, chanpos, sigtype, sigcap, rxisoffhook, rxbits, txbits;
    int txhooksig, rxhooksig, curlaw, idlebits;
    char name[40];
    int prewinktime, preflashtime, winktime, flashtime, starttime;
    int rxwinktime, rxflashtime, debouncetime;
    int pulsebreaktime, pulsemaketime, pulseaftertime;
    uint32_t chan_alarms;
};

struct vbd_spaninfo {
    int spanno;
    char name[20];
    char desc[40];
    int alarms, txlevel, rxlevel;
    int bpvcount, crc4count, ebitcount, fascount;
    uint32_t fecount, cvcount, becount, prbs, errsec;
    int irqmisses, syncsrc, numchans, totalchans, totalspans, lbo, lineconfig;
    char lboname[40];
    char location[40];
    char manufacturer[40];
    char devicetype[40];
    int irq, linecompat;
    char spantype[6];
} __attribute__((packed));

struct vbd_maintinfo { int spanno, command; };

struct vbd_gains {
    int chan;
    unsigned char rxgain[256];
    unsigned char txgain[256];
};

struct vbd_lineconfig {
    int span;
    char name[20];
    int lbo, lineconfig, sync;
};

struct vbd_chanconfig {
    int chan;
    char name[40];
    int sigtype, deflaw, master, idlebits;
    char netdev_name[16];
};

struct vbd_bufferinfo {
    int txbufpolicy, rxbufpolicy, numbufs, bufsize, readbufs, writebufs;
};

struct vbd_versioninfo {
    char version[80];
    char echo_canceller[80];
};

struct vbd_attach_echocan {
    int chan;
    char echocan[16];
};

struct vbd_dialoperation {
    int op;
    char dialstr[256];
};

struct vbd_tone_def_header {
    int count, zone;
    int ringcadence[16];
    char name[40];
    /* followed by count tone definitions */
};

#define VBD_GET_BLOCKSIZE   _IOR(VBD_CODE, 1, int)
#define VBD_SET_BLOCKSIZE   _IOW(VBD_CODE, 1, int)
#define VBD_FLUSH           _IOW(VBD_CODE, 3, int)
#define VBD_SYNC            _IO(VBD_CODE, 4)
#define VBD_GET_PARAMS      _IOWR(VBD_CODE, 5, struct vbd_params)
#define VBD_SET_PARAMS      _IOW(VBD_CODE, 5, struct vbd_params)
#define VBD_HOOK            _IOW(VBD_CODE, 7, int)
#define VBD_GETEVENT        _IOR(VBD_CODE, 8, int)
#define VBD_IOMUX           _IOWR(VBD_CODE, 9, int)
#define VBD_SPANSTAT        _IOWR(VBD_CODE, 10, struct vbd_spaninfo)
#define VBD_MAINT           _IOW(VBD_CODE, 11, struct vbd_maintinfo)
#define VBD_GETGAINS        _IOWR(VBD_CODE, 16, struct vbd_gains)
#define VBD_SETGAINS        _IOW(VBD_CODE, 16, struct vbd_gains)
#define VBD_SPANCONFIG      _IOW(VBD_CODE, 18, struct vbd_lineconfig)
#define VBD_CHANCONFIG      _IOW(VBD_CODE, 19, struct vbd_chanconfig)
#define VBD_SENDTONE        _IOW(VBD_CODE, 21, int)
#define VBD_GETTONEZONE     _IOR(VBD_CODE, 22, int)
#define VBD_SETTONEZONE     _IOW(VBD_CODE, 22, int)
#define VBD_DEFAULTZONE     _IOW(VBD_CODE, 24, int)
#define VBD_LOADZONE        _IOW(VBD_CODE, 25, struct vbd_tone_def_header)
#define VBD_FREEZONE        _IOW(VBD_CODE, 26, int)
#define VBD_GET_BUFINFO     _IOR(VBD_CODE, 27, struct vbd_bufferinfo)
#define VBD_SET_BUFINFO     _IOW(VBD_CODE, 27, struct vbd_bufferinfo)
#define VBD_DIAL            _IOW(VBD_CODE, 31, struct vbd_dialoperation)
#define VBD_AUDIOMODE       _IOW(VBD_CODE, 32, int)
#define VBD_ECHOCANCEL      _IOW(VBD_CODE, 33, int)
#define VBD_CHANNO          _IOR(VBD_CODE, 34, int)
#define VBD_DIALING         _IOR(VBD_CODE, 35, int)
#define VBD_SPECIFY         _IOW(VBD_CODE, 38, int)
#define VBD_SETLAW          _IOW(VBD_CODE, 39, int)
#define VBD_SETLINEAR       _IOW(VBD_CODE, 40, int)
#define VBD_GETRXBITS       _IOR(VBD_CODE, 43, int)
#define VBD_SETTXBITS       _IOW(VBD_CODE, 43, int)
#define VBD_TIMERCONFIG     _IOW(VBD_CODE, 47, int)
#define VBD_TIMERACK        _IOW(VBD_CODE, 48, int)
#define VBD_TIMERPING       _IO(VBD_CODE, 52)
#define VBD_TIMERPONG       _IO(VBD_CODE, 53)
#define VBD_GETSIGFREEZE    _IOR(VBD_CODE, 54, int)
#define VBD_SETSIGFREEZE    _IOW(VBD_CODE, 54, int)
#define VBD_GETVERSION      _IOR(VBD_CODE, 57, struct vbd_versioninfo)
#define VBD_LOOPBACK        _IOW(VBD_CODE, 58, int)
#define VBD_ATTACH_ECHOCAN  _IOW(VBD_CODE, 59, struct vbd_attach_echocan)
#define VBD_STARTUP         _IOW(VBD_CODE, 99, int)
#define VBD_SHUTDOWN        _IOW(VBD_CODE, 100, int)
#define VBD_HDLC_RATE       _IOW(VBD_CODE, 101, int)
#define VBD_BUFFER_EVENTS   _IOW(VBD_CODE, 105, int)

#endif
