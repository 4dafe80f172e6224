#!/usr/bin/env bash
# Boots a real systemd as PID 1 of a new PID + mount namespace, so the unit
# files can be tested end to end without touching the host: a private copy of
# /etc, an overlay over /usr (installs land in the sandbox folder), scratch
# /var/lib, /var/log, /var/cache, fresh /run, /tmp, /dev; / read-only.
#
# Source it, then:  sandbox_boot SHARE   sandbox_run CMD...   sandbox_teardown
# SHARE (the project folder) is visible inside at $SANDBOX_SHARE, wherever it
# lives on the host (even under /tmp, which becomes a tmpfs inside). The
# sandbox's own folder is made under /srv (or $AUTHD_SANDBOX_ROOT).

SANDBOX_MASKED=(
    systemd-modules-load.service modprobe@.service systemd-sysctl.service systemd-binfmt.service
    proc-sys-fs-binfmt_misc.mount proc-sys-fs-binfmt_misc.automount systemd-remount-fs.service
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service
    systemd-udev-settle.service systemd-hwdb-update.service sys-kernel-config.mount sys-kernel-debug.mount
    sys-kernel-tracing.mount sys-fs-fuse-connections.mount systemd-pcrphase.service
    systemd-pcrphase-sysinit.service systemd-pcrphase-initrd.service systemd-repart.service
    systemd-random-seed.service systemd-firstboot.service systemd-machine-id-commit.service
    systemd-update-done.service ldconfig.service kmod-static-nodes.service dev-hugepages.mount
    systemd-journal-flush.service systemd-update-utmp.service
)

sandbox_boot() {
    local root=${AUTHD_SANDBOX_ROOT:-/srv}
    mkdir -p "$root"
    SANDBOX_DIR=$(mktemp -d "$root/authd-sandbox.XXXXXX")
    SANDBOX_SHARE="$SANDBOX_DIR/share"
    mkdir -p "$SANDBOX_SHARE"
    find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort >"$SANDBOX_DIR/cgroups.before"

    rm -rf "$SANDBOX_DIR/etc" && mkdir -p "$SANDBOX_DIR/etc"
    cp -a /etc/. "$SANDBOX_DIR/etc/"
    local units="$SANDBOX_DIR/etc/systemd/system"
    rm -rf "$units" && mkdir -p "$units"
    printf '[Unit]\nDescription=authd test sandbox\n' >"$units/mini.target"
    for unit in "${SANDBOX_MASKED[@]}"; do ln -sf /dev/null "$units/$unit"; done
    mkdir -p "$SANDBOX_DIR"/{usr-upper,usr-work,var-lib,var-log,var-cache,dev}
    # dpkg's database, so packages can be installed inside.
    cp -a /var/lib/dpkg "$SANDBOX_DIR/var-lib/dpkg"

    cat >"$SANDBOX_DIR/inner.sh" <<'INNER'
#!/bin/bash
set -e
W=$1
mount --make-rprivate /
mount --bind "$2" "$W/share"
mount --bind "$W/etc" /etc
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$W/usr-upper,workdir=$W/usr-work" /usr
for d in lib log cache; do mount --bind "$W/var-$d" "/var/$d"; done
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mount -t tmpfs -o mode=755 tmpfs "$W/dev"
for n in null zero full random urandom tty; do
    touch "$W/dev/$n"
    mount --bind "/dev/$n" "$W/dev/$n"
done
mkdir -p "$W/dev/pts" "$W/dev/shm" "$W/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$W/dev/pts"
ln -s pts/ptmx "$W/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$W/dev/shm"
mount -t mqueue mqueue "$W/dev/mqueue"
ln -s /proc/self/fd "$W/dev/fd"
ln -s /proc/self/fd/0 "$W/dev/stdin"
ln -s /proc/self/fd/1 "$W/dev/stdout"
ln -s /proc/self/fd/2 "$W/dev/stderr"
mount --move "$W/dev" /dev
mount -o remount,bind,ro /
mount -o remount,bind,ro /sys
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount --make-rshared /
exec env container=unshare /lib/systemd/systemd --system --unit=mini.target </dev/null >/dev/null 2>&1
INNER
    chmod +x "$SANDBOX_DIR/inner.sh"

    setsid unshare --pid --fork --kill-child --mount --mount-proc --uts --ipc \
        "$SANDBOX_DIR/inner.sh" "$SANDBOX_DIR" "$(realpath "$1")" </dev/null >"$SANDBOX_DIR/boot.log" 2>&1 &
    SANDBOX_UNSHARE_PID=$!
    SANDBOX_PID=""
    local tries=0
    while [ -z "$SANDBOX_PID" ] && [ $tries -lt 200 ]; do
        for child in $(cat "/proc/$SANDBOX_UNSHARE_PID/task/$SANDBOX_UNSHARE_PID/children" 2>/dev/null); do
            [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] && SANDBOX_PID=$child
        done
        [ -n "$SANDBOX_PID" ] || { sleep 0.05; tries=$((tries + 1)); }
    done
    [ -n "$SANDBOX_PID" ] || { echo "sandbox: systemd did not start" >&2; cat "$SANDBOX_DIR/boot.log" >&2; return 1; }
    local state=""
    for _ in $(seq 1 200); do
        state=$(sandbox_run systemctl is-system-running 2>/dev/null || true)
        case "$state" in running | degraded) break ;; esac
        sleep 0.1
    done
    case "$state" in running | degraded) ;; *)
        echo "sandbox: systemd is '$state'" >&2
        return 1
        ;;
    esac
    sandbox_run systemctl start systemd-journald.socket systemd-journald.service
}

sandbox_run() {
    nsenter -t "$SANDBOX_PID" -m -p -- "$@"
}

sandbox_teardown() {
    if [ -n "${SANDBOX_PID:-}" ] && [ "$(cat "/proc/$SANDBOX_PID/comm" 2>/dev/null)" = systemd ]; then
        kill -9 "$SANDBOX_PID"
    fi
    if [ -n "${SANDBOX_UNSHARE_PID:-}" ]; then wait "$SANDBOX_UNSHARE_PID" 2>/dev/null || true; fi
    if [ -n "${SANDBOX_DIR:-}" ] && [ -f "$SANDBOX_DIR/cgroups.before" ]; then
        find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort >"$SANDBOX_DIR/cgroups.after"
        comm -13 "$SANDBOX_DIR/cgroups.before" "$SANDBOX_DIR/cgroups.after" | sort -r | while read -r dir; do
            rmdir "$dir" 2>/dev/null || true
        done
        # The namespace is gone, so nothing is mounted there any more; never
        # follow into the shared project folder all the same.
        rmdir "$SANDBOX_SHARE" 2>/dev/null || true
        [ -d "$SANDBOX_SHARE" ] || rm -rf "$SANDBOX_DIR"
    fi
    SANDBOX_PID=""
}
