#ifndef AUTHD_CSYSTEMD_SHIM_H
#define AUTHD_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <malloc.h>

/// The kernel thread id, for per-thread nice values.
static inline pid_t authd_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/// glibc hides `struct ucred` behind _GNU_SOURCE; this has the same layout.
typedef struct authd_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} authd_ucred;

/// Room for SO_PEERGROUPS; the kernel fills the groups in ascending order.
typedef struct authd_peer_groups {
    gid_t gids[256];
} authd_peer_groups;
#endif
