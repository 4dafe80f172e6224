#!/usr/bin/env bash
# authd under a real systemd: installs a release build the way `make install`
# does into a systemd booted in a PID + mount namespace, and checks the units,
# socket activation, the journal, the catalog, reload, stop, restart, the
# watchdog, hardening, socket permissions and credentials. Needs root.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
source Tests/Integration/systemd-sandbox.sh

passed=0
failed=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name"
    fi
}
finish() {
    local status=$1
    sandbox_teardown
    if [ -n "${pg_dir:-}" ] && [ -d "$pg_dir" ]; then # section 8c's server, if it stopped halfway
        "$HOST_REPO/scripts/postgres-test-server.sh" stop "$pg_dir" || true
        rm -rf "$pg_dir"
    fi
    [ "$status" -eq 0 ] || failed=$((failed + 1))
    echo "systemd: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit 0
}
trap 'finish $?' EXIT
if [ "$(id -u)" -ne 0 ]; then
    echo "systemd integration test needs root" >&2
    exit 1
fi

SOCK=/run/authd/authd.sock
RPC="$REPO/Tests/Integration/rpc.py"
rpc() { sandbox_run python3 "$RPC" "$SOCK" "$@"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[k] if not k.isdigit() else d[int(k)]
print(d if not isinstance(d,(dict,list)) else json.dumps(d))' "$1"; }
now_ms() { date +%s%3N; }
not() { ! "$@"; }

make -s build >/dev/null || exit 1
sandbox_boot "$REPO" || exit 1
HOST_REPO=$REPO
REPO=$SANDBOX_SHARE # the project as seen inside the namespace
RPC="$REPO/Tests/Integration/rpc.py"
sandbox_run make -s -C "$REPO" install-files >/dev/null || { echo "make install-files failed" >&2; exit 1; }
sandbox_run systemctl enable --now authd.socket >/dev/null 2>&1

# 1. Socket-activated: the socket listens, the service waits for a client.
check "authd.socket is active" test "$(sandbox_run systemctl is-active authd.socket)" = active
check "authd.service is not running before the first request" \
    test "$(sandbox_run systemctl is-active authd.service)" = inactive
check "the socket is 0660 root:authd" test "$(sandbox_run stat -c '%a %U:%G' $SOCK)" = "660 root:authd"

# 2. The first request starts the service and is answered.
start=$(now_ms)
health=$(rpc sys.health)
activation_ms=$(($(now_ms) - start))
check "the first request is answered (${activation_ms} ms, activation included)" \
    test "$(echo "$health" | field result.status)" = ok
check "authd.service is active after it" test "$(sandbox_run systemctl is-active authd.service)" = active
check "it runs as the authd user, not root" \
    test "$(sandbox_run ps -o user= -p "$(sandbox_run systemctl show -p MainPID --value authd.service)")" = authd

# 3. Login, verify, refresh, logout through the socket.
rpc user.create '{"email":"ops@example.com","password":"correct horse battery"}' >/dev/null
login=$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}')
access=$(echo "$login" | field result.access_token)
refresh=$(echo "$login" | field result.refresh_token)
check "login" test -n "$access"
check "verify" test "$(rpc token.verify "{\"token\":\"$access\"}" | field result.user.email)" = ops@example.com
refreshed=$(rpc auth.refresh "{\"refresh_token\":\"$refresh\"}")
refresh2=$(echo "$refreshed" | field result.refresh_token)
access2=$(echo "$refreshed" | field result.access_token)
check "refresh" test -n "$refresh2"
second=$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}')
check "logout" test "$(rpc auth.logout "{\"refresh_token\":\"$(echo "$second" | field result.refresh_token)\"}" | field result.revoked)" = True

# 4. A failed login is a structured journal entry, without the password.
rpc auth.login '{"email":"ops@example.com","password":"Wr0ng-Passw0rd-XYZ"}' >/dev/null
sleep 0.3
entry=$(sandbox_run journalctl -u authd -o json --no-pager AUTHD_EVENT=authn_login_fail | tail -n 1)
check "authn_login_fail is in journalctl -u authd AUTHD_EVENT=authn_login_fail" test -n "$entry"
check "it has MESSAGE_ID 281f28b459c44dd1854bcc8424713137" \
    test "$(echo "$entry" | field MESSAGE_ID)" = 281f28b459c44dd1854bcc8424713137
check "it has the peer uid (0)" test "$(echo "$entry" | field AUTHD_PEER_UID)" = 0
check "it has the reason" test "$(echo "$entry" | field AUTHD_REASON)" = wrong_password
journal_json() { sandbox_run journalctl -o json --no-pager; }
journal_mentions() { journal_json | grep -F -e "$1" >/dev/null; }
check "the journal dump itself works (it has the email)" journal_mentions ops@example.com
check "the journal holds no password" not journal_mentions "Wr0ng-Passw0rd"
check "the journal holds no access token" not journal_mentions "${access:40:40}"
check "the journal holds no refresh token" not journal_mentions "${refresh:40:40}"
check "journalctl -x shows the catalog text" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- journalctl -x -u authd --no-pager AUTHD_EVENT=authn_login_fail | grep -q 'AUTHD_REASON tells you the real cause'"

# 5. Reload keeps connections; stop is quick and clean; restart keeps state.
reload=$(sandbox_run python3 "$RPC" --reload-check $SOCK)
check "systemctl reload keeps an open connection working" \
    test "$(echo "$reload" | field second.result.status)" = ok
main_before=$(sandbox_run systemctl show -p MainPID --value authd.service)
check "reload did not restart the service" test "$(sandbox_run systemctl show -p MainPID --value authd.service)" = "$main_before"
start=$(now_ms)
sandbox_run systemctl stop authd.service 2>/dev/null
stop_ms=$(($(now_ms) - start))
check "systemctl stop takes under 2 s (${stop_ms} ms)" test "$stop_ms" -lt 2000
check "the daemon exited with status 0" test "$(sandbox_run systemctl show -p ExecMainStatus --value authd.service)" = 0
check "the socket stays active after the stop" test "$(sandbox_run systemctl is-active authd.socket)" = active
sandbox_run systemctl restart authd.service
check "users and sessions survive a restart" \
    test "$(rpc token.verify "{\"token\":\"$access2\"}" | field result.user.email)" = ops@example.com

# 6. The watchdog restarts a daemon that stops answering.
sandbox_run mkdir -p /etc/systemd/system/authd.service.d
printf '[Service]\nWatchdogSec=2\nTimeoutAbortSec=1\n' | sandbox_run tee /etc/systemd/system/authd.service.d/test-watchdog.conf >/dev/null
sandbox_run systemctl daemon-reload
sandbox_run systemctl restart authd.service
frozen=$(sandbox_run systemctl show -p MainPID --value authd.service)
sandbox_run kill -STOP "$frozen"
for _ in $(seq 1 80); do
    current=$(sandbox_run systemctl show -p MainPID --value authd.service)
    [ "$current" != "$frozen" ] && [ "$current" != 0 ] && break
    sleep 0.1
done
check "a frozen daemon is killed by the watchdog and restarted" \
    bash -c "[ '$current' != '$frozen' ] && [ '$current' != 0 ]"
check "the restarted daemon answers" test "$(rpc sys.health | field result.status)" = ok
check "the journal names the watchdog" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- journalctl -u authd --no-pager | grep -qi watchdog"
sandbox_run rm /etc/systemd/system/authd.service.d/test-watchdog.conf
sandbox_run systemctl daemon-reload

# 7. Hardening.
exposure=$(sandbox_run systemd-analyze security authd.service --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for authd.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security scores ${exposure:-?} (at most 1.0)" \
    python3 -c "import sys; sys.exit(0 if float('${exposure:-99}') <= 1.0 else 1)"

# 8. Only members of the authd group reach the socket.
outsider=$(sandbox_run python3 "$RPC" --as 65534 $SOCK sys.health)
check "a client outside the authd group cannot connect" test "$(echo "$outsider" | field os_error)" = 13
gid=$(sandbox_run getent group authd | cut -d: -f3)
member=$(sandbox_run python3 "$RPC" --as "65534:$gid" $SOCK sys.health)
check "a member of the authd group can" test "$(echo "$member" | field result.status)" = ok

# 8b. Peers keep their real uids inside the service (no PrivateUsers=): a
# configured admin uid that is not root may call admin methods, the journal
# names its uid, and two non-root peers have separate client budgets.
sandbox_run cp /etc/authd/authd.conf /etc/authd/authd.conf.orig
sandbox_run python3 - <<'PY'
import json
path = "/etc/authd/authd.conf"
config = json.load(open(path))
config.update({"admin_uids": [65533], "client_max_failures": 3, "login_max_failures": 100})
json.dump(config, open(path, "w"))
PY
sandbox_run systemctl restart authd.service
admin_peer=$(sandbox_run python3 "$RPC" --as "65533:$gid" $SOCK user.create '{"email":"peer-admin@example.com","password":"correct horse battery"}')
check "a configured admin uid (65533, not root) may call an admin method" \
    test "$(echo "$admin_peer" | field result.email)" = peer-admin@example.com
sleep 0.3
created=$(sandbox_run journalctl -u authd -o json --no-pager AUTHD_EVENT=user_created | tail -n 1)
check "the journal shows that peer's own uid (65533)" test "$(echo "$created" | field AUTHD_PEER_UID)" = 65533
not_admin=$(sandbox_run python3 "$RPC" --as "65532:$gid" $SOCK user.list)
check "another non-root uid is still refused admin methods" test "$(echo "$not_admin" | field error.data.reason)" = forbidden
for n in 1 2 3 4; do
    last_a=$(sandbox_run python3 "$RPC" --as "65531:$gid" $SOCK auth.login "{\"email\":\"a$n@example.com\",\"password\":\"wrong password\"}")
done
check "peer 65531 spends its own client budget" test "$(echo "$last_a" | field error.data.reason)" = rate_limited
other_b=$(sandbox_run python3 "$RPC" --as "65530:$gid" $SOCK auth.login '{"email":"b@example.com","password":"wrong password"}')
check "peer 65530's budget is separate (its failure is not rate limited)" \
    test "$(echo "$other_b" | field error.data.reason)" = invalid_credentials
check "the unit raises the descriptor limit (LimitNOFILE=16384)" \
    test "$(sandbox_run systemctl show -p LimitNOFILE --value authd.service)" = 16384
sandbox_run mv /etc/authd/authd.conf.orig /etc/authd/authd.conf

# 8b'. The config file is optional (--config-dir /etc/authd): without it the
# unit starts on the defaults, and a drop-in in /etc/authd/authd.conf.d/
# replaces what it names.
sandbox_run mv /etc/authd/authd.conf /etc/authd/authd.conf.orig
sandbox_run systemctl restart authd.service
without=$(sandbox_run python3 "$RPC" $SOCK sys.health)
check "without /etc/authd/authd.conf the unit starts and answers" test "$(echo "$without" | field result.status)" = ok
sandbox_run mkdir -p /etc/authd/authd.conf.d
sandbox_run sh -c 'echo "{\"access_ttl\": 123}" > /etc/authd/authd.conf.d/50-ttl.conf'
sandbox_run systemctl restart authd.service
sandbox_run python3 "$RPC" $SOCK user.create '{"email":"dropin@example.com","password":"correct horse battery"}' >/dev/null
dropin=$(sandbox_run python3 "$RPC" $SOCK auth.login '{"email":"dropin@example.com","password":"correct horse battery"}')
check "a drop-in in /etc/authd/authd.conf.d/ sets what it names" test "$(echo "$dropin" | field result.expires_in)" = 123
sandbox_run rm -r /etc/authd/authd.conf.d
sandbox_run mv /etc/authd/authd.conf.orig /etc/authd/authd.conf
sandbox_run systemctl restart authd.service

# 8c. PostgreSQL through the shipped drop-in (systemd/authd-postgresql.conf):
# a server on the host, reached over TCP with the drop-in, then over a Unix
# socket with the unit's own PrivateNetwork=yes. The key-encryption key
# comes from the credential store. Then back to SQLite.
pg_dir=$(mktemp -d /srv/authd-systemd-pg.XXXXXX) # not /tmp: the sandbox has its own
chmod 755 "$pg_dir"
pg_url=$("$HOST_REPO/scripts/postgres-test-server.sh" start "$pg_dir" 55700)
pg_port=${pg_url##*port=}
psql -X -q "$pg_url" -c 'CREATE DATABASE authd_systemd'
pg_query() { psql -X -qAt "postgresql://postgres@/authd_systemd?host=$pg_dir&port=$pg_port" -c "$1"; }
sandbox_run sh -c 'umask 077; openssl rand -hex 32 >/etc/credstore/key-encryption-key'
dropin=/etc/systemd/system/authd.service.d/postgresql.conf
tcp_url="postgresql://postgres@127.0.0.1:$pg_port/authd_systemd?sslmode=disable"
install_dropin() { # install_dropin ALLOWED_ADDRESS URL: the shipped file, its address and URL replaced
    sed -e "s|^IPAddressAllow=.*|IPAddressAllow=$1|" -e "s|^Environment=AUTHD_DATABASE_URL=.*|Environment=AUTHD_DATABASE_URL=$2|" \
        "$HOST_REPO/systemd/authd-postgresql.conf" | sandbox_run tee "$dropin" >/dev/null
    sandbox_run systemctl daemon-reload
}
pg_login() { rpc auth.login '{"email":"pg-ops@example.com","password":"correct horse battery"}' | field result.user.email; }

# Without the drop-in the unit has no network: a TCP database is refused at
# once (RestrictAddressFamilies=AF_UNIX), and the daemon does not start.
printf '[Service]\nEnvironment=AUTHD_DATABASE_URL=%s\nLoadCredential=key-encryption-key\n' "$tcp_url" |
    sandbox_run tee "$dropin" >/dev/null
sandbox_run systemctl daemon-reload
sandbox_run systemctl stop authd.service
check "the shipped unit alone cannot reach a database over TCP (the daemon does not start)" \
    not sandbox_run systemctl start authd.service
check "the journal says which database it could not open" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- journalctl -u authd --no-pager | grep -q 'cannot open the database postgresql://postgres@127.0.0.1'"
not_started() { # Restart=on-failure would try again: stop it, clear the failure
    sandbox_run systemctl stop authd.service
    sandbox_run systemctl reset-failed authd.service authd.socket 2>/dev/null
    sandbox_run systemctl start authd.socket
}
not_started

install_dropin 127.0.0.1 "$tcp_url"
sandbox_run systemctl restart authd.service
check "with the drop-in, the daemon runs on PostgreSQL over TCP" test "$(rpc sys.health | field result.status)" = ok
check "the drop-in's IPAddressAllow= is in effect (127.0.0.1)" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- systemctl show -p IPAddressAllow authd.service | grep -q 127.0.0.1"
rpc user.create '{"email":"pg-ops@example.com","password":"correct horse battery"}' >/dev/null
check "a user created through the socket is a row in the PostgreSQL database" \
    test "$(pg_query "SELECT count(*) FROM users WHERE email = 'pg-ops@example.com'")" = 1
check "it logs in" test "$(pg_login)" = pg-ops@example.com
check "the signing keys are in the database" \
    test "$(pg_query 'SELECT count(*) > 0 FROM authd_signing_keys')" = t
# The database records an HMAC of a fixed label under the key that sealed
# its signing keys: it must be the credential's key.
check "the signing keys are sealed with the credential store's key-encryption key" python3 - \
    "$(sandbox_run cat /etc/credstore/key-encryption-key)" \
    "$(pg_query "SELECT value FROM authd_checks WHERE name = 'key-encryption-key'")" <<'PY'
import base64, hashlib, hmac, sys
key, recorded = bytes.fromhex(sys.argv[1].strip()), sys.argv[2]
mac = hmac.new(key, b"authd key-encryption-key check v1", hashlib.sha256).digest()
sys.exit(0 if base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == recorded else 1)
PY
pg_exposure=$(sandbox_run systemd-analyze security authd.service --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for authd.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security with the TCP drop-in scores ${pg_exposure:-?} (at most 1.5)" \
    python3 -c "import sys; sys.exit(0 if float('${pg_exposure:-99}') <= 1.5 else 1)"

# A wrong address in IPAddressAllow=: the kernel drops the packets, so the
# daemon cannot reach the database. This needs systemd's BPF firewall; on
# a host without it systemd ignores IPAddress*= and says so.
install_dropin 192.0.2.10 "$tcp_url"
sandbox_run systemctl stop authd.service
# (The journal is read whole first: under pipefail, `grep -q` ending the
# pipe early would make journalctl's SIGPIPE the pipe's status.)
manager_journal=$(sandbox_run journalctl --no-pager)
if grep -q 'configures an IP firewall, but' <<<"$manager_journal"; then
    echo "skip - a wrong IPAddressAllow= address blocks the database (this systemd has no BPF firewall here)"
else
    check "a wrong IPAddressAllow= address blocks the database (the daemon does not start)" \
        not sandbox_run systemctl start authd.service
    blocked=$(sandbox_run journalctl -u authd --no-pager -o cat | grep 'cannot open the database' | tail -n 1)
    echo "     ($blocked)"
    # The firewall drops the packets: the connect times out (or fails with
    # EPERM), where the same URL with the right address connected above.
    check "because the firewall dropped the connection, not for another reason" \
        bash -c "grep -qiE 'connectionError: (connect timeout|.*not permitted)' <<<'$blocked'"
    not_started
fi

# A Unix socket: no network at all, PrivateNetwork=yes as shipped.
printf '[Service]\nEnvironment="AUTHD_DATABASE_URL=postgresql://postgres@/authd_systemd?host=%s&port=%s"\nLoadCredential=key-encryption-key\n' \
    "$pg_dir" "$pg_port" | sandbox_run tee "$dropin" >/dev/null
sandbox_run systemctl daemon-reload
sandbox_run systemctl restart authd.service
check "over a Unix socket the unit keeps PrivateNetwork=yes" \
    test "$(sandbox_run systemctl show -p PrivateNetwork --value authd.service)" = yes
check "and the user created over TCP logs in (one database)" test "$(pg_login)" = pg-ops@example.com

sandbox_run rm "$dropin" /etc/credstore/key-encryption-key
sandbox_run systemctl daemon-reload
sandbox_run systemctl restart authd.service
check "without the drop-in the daemon is back on its SQLite file" \
    test "$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}' | field result.user.email)" = ops@example.com
"$HOST_REPO/scripts/postgres-test-server.sh" stop "$pg_dir"
rm -rf "$pg_dir"

# 9. Keys from the credential store (LoadCredential=) are the ones used.
secret="credstore-access-key-for-the-integration-test-0123"
sandbox_run sh -c "printf '%s\n' '$secret' >/etc/credstore/access-key; printf '%s\n' 'credstore-refresh-key-for-the-integration-test-0123' >/etc/credstore/refresh-key; chmod 600 /etc/credstore/*"
sandbox_run systemctl restart authd.service
token=$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}' | field result.access_token)
check "a token verifies with the credential's key" python3 - "$token" "$secret" <<'PY'
import base64, hashlib, hmac, sys
token, secret = sys.argv[1], sys.argv[2]
head, payload, signature = token.split(".")
expected = base64.urlsafe_b64encode(hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
sys.exit(0 if hmac.compare_digest(expected, signature) else 1)
PY
check "the journal says the keys come from systemd credentials" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- journalctl -u authd --no-pager AUTHD_EVENT=sys_startup | tail -n 1 | grep -q 'systemd credentials'"

# 9b. authctl is installed with the daemon, with its completions.
check "make install puts authctl on the PATH, and it reaches the daemon" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- authctl --socket $SOCK status >/dev/null"
check "with bash, zsh and fish completions" \
    sandbox_run test -s /usr/share/bash-completion/completions/authctl -a -s /usr/share/zsh/vendor-completions/_authctl -a -s /usr/share/fish/vendor_completions.d/authctl.fish
check "and the Python client example" sandbox_run test -s /usr/share/doc/authd/examples/python/authd_client.py
check "the manual pages authd(8), authd.conf(5) and authctl(1) render" \
    bash -c "for page in /usr/share/man/man8/authd.8.gz /usr/share/man/man5/authd.conf.5.gz /usr/share/man/man1/authctl.1.gz; do nsenter -t $SANDBOX_PID -m -p -- man -l \$page 2>/dev/null | grep -q . || exit 1; done"

# The example timer that writes node_exporter's textfile, as the README says to install it.
sandbox_run mkdir -p /var/lib/node_exporter/textfile_collector
sandbox_run sh -c 'cp /usr/share/doc/authd/examples/systemd/authd-metrics.* /etc/systemd/system/ && systemctl daemon-reload'
sandbox_run systemctl start authd-metrics.service
check "the example authd-metrics.service writes the textfile node_exporter reads" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- grep -q '^authd_requests_total{method=\"auth.login\",outcome=\"ok\"} [1-9]' /var/lib/node_exporter/textfile_collector/authd.prom"
check "and its timer is accepted" sandbox_run systemctl enable --now authd-metrics.timer
sandbox_run sh -c 'systemctl disable --now authd-metrics.timer; rm /etc/systemd/system/authd-metrics.*; systemctl daemon-reload' >/dev/null 2>&1

# 9c. Backup and restore under the real unit (DynamicUser=: the state is in
# /var/lib/private/authd), as the README tells an operator to do it.
old_refresh=$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}' | field result.refresh_token)
backup_json=$(sandbox_run authctl --socket $SOCK backup /var/tmp/authd-backup-test --json)
check "authctl backup collects a backup from the running service" \
    test "$(echo "$backup_json" | field directory)" = /var/tmp/authd-backup-test
check "it names the keys that came from credentials (not in the backup)" \
    bash -c "grep -q 'credential access-key' <<<'$backup_json'"
check "the backup is 0700 and the service's copy is gone" \
    bash -c "[ \"\$(nsenter -t $SANDBOX_PID -m -p -- stat -c %a /var/tmp/authd-backup-test)\" = 700 ] && [ -z \"\$(nsenter -t $SANDBOX_PID -m -p -- ls -A /var/lib/private/authd/backups)\" ]"
check "the journal records sys_backup with the peer" \
    bash -c "nsenter -t $SANDBOX_PID -m -p -- journalctl -u authd --no-pager -o json AUTHD_EVENT=sys_backup | grep -q '\"AUTHD_PEER_UID\":\"0\"'"
check "authd restore --check finds it intact" sandbox_run authd restore --check --from /var/tmp/authd-backup-test
sandbox_run systemctl stop authd.socket authd.service
sandbox_run mv /var/lib/private/authd /var/lib/private/authd.old
check "authd restore puts it into the emptied state directory" \
    sandbox_run authd restore --from /var/tmp/authd-backup-test --state-dir /var/lib/private/authd
sandbox_run systemctl start authd.socket
check "the restored service refreshes a token issued before the backup" \
    test -n "$(rpc auth.refresh "{\"refresh_token\":\"$old_refresh\"}" | field result.access_token)"
check "the restored state belongs to the service's user" \
    test "$(sandbox_run stat -c %U /var/lib/private/authd/authd.sqlite3)" = authd
sandbox_run rm -rf /var/lib/private/authd.old /var/tmp/authd-backup-test

# 10. Uninstall removes everything but the state.
sandbox_run make -s -C "$REPO" uninstall >/dev/null 2>&1
check "make uninstall removes the binaries and units" \
    bash -c "! nsenter -t $SANDBOX_PID -m -p -- test -e /usr/bin/authd && ! nsenter -t $SANDBOX_PID -m -p -- test -e /usr/bin/authctl && ! nsenter -t $SANDBOX_PID -m -p -- test -e /lib/systemd/system/authd.service"
check "and keeps the state" sandbox_run test -e /var/lib/private/authd/authd.sqlite3

# 11. The Debian package: installs, starts the socket, answers; purge removes the state.
deb=$("$HOST_REPO/scripts/build-deb.sh")
# A container image's /usr/sbin/policy-rc.d (exit 101) forbids packages to
# start services, and deb-systemd-invoke obeys it, as Debian's maintainer
# scripts do; a real host has none. Removed from the sandbox's /usr overlay
# only.
sandbox_run rm -f /usr/sbin/policy-rc.d
sandbox_run dpkg -i "$REPO/$deb" >/dev/null 2>&1
check "dpkg -i installs and starts authd.socket" test "$(sandbox_run systemctl is-active authd.socket)" = active
check "the packaged daemon answers, with the users kept from before" \
    test "$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}' | field result.user.email)" = ops@example.com
check "the packaged binary needs no Swift toolchain" \
    bash -c "! nsenter -t $SANDBOX_PID -m -p -- ldd /usr/bin/authd | grep -q swift"
check "the package holds authctl, its completions and the manual pages" \
    bash -c "contents=\$(dpkg -c '$HOST_REPO/$deb'); grep ' ./usr/bin/authctl\$' <<<\"\$contents\" >/dev/null && grep 'bash-completion/completions/authctl\$' <<<\"\$contents\" >/dev/null && grep 'man/man8/authd.8.gz\$' <<<\"\$contents\" >/dev/null"
lintian_out=$(lintian --fail-on error,warning "$HOST_REPO/$deb" 2>&1) && lintian_rc=0 || lintian_rc=$?
lintian_says=$(grep -v 'running with root privileges' <<<"$lintian_out" || true)
[ -z "$lintian_says" ] || echo "$lintian_says" >&2
check "lintian (Debian 12's, default profile) finds no error and no warning" \
    test "$lintian_rc" -eq 0 -a -z "$(grep -E '^(E|W):' <<<"$lintian_says")"
check "the package's Depends come from dpkg-shlibdeps, libc included" \
    bash -c "dpkg-deb -f '$HOST_REPO/$deb' Depends | grep 'libc6 (>=' >/dev/null"
check "and it carries its copyright and changelog" \
    bash -c "dpkg -c '$HOST_REPO/$deb' | grep 'doc/authd/copyright\$' >/dev/null && dpkg -c '$HOST_REPO/$deb' | grep 'doc/authd/changelog.gz\$' >/dev/null"

# 11b. An upgrade to a higher version: authd.service restarts on the new
# binary, authd.socket never stops listening (the same socket inode, never
# inactive), and the users are still there.
rpc sys.health >/dev/null
socket_inode=$(sandbox_run stat -c %i /run/authd/authd.sock)
socket_since=$(sandbox_run systemctl show -p ActiveEnterTimestampMonotonic --value authd.socket)
service_pid=$(sandbox_run systemctl show -p MainPID --value authd.service)
upgrade=$(AUTHD_DEB_VERSION=0.1.0+upgrade1 "$HOST_REPO/scripts/build-deb.sh")
sandbox_run dpkg -i "$REPO/$upgrade" >/dev/null 2>&1
check "dpkg -i of a higher version upgrades the package" \
    test "$(sandbox_run dpkg-query -W -f='${Version}' authd)" = 0.1.0+upgrade1
check "the upgrade restarts authd.service" \
    bash -c "pid=\$(nsenter -t $SANDBOX_PID -m -p -- systemctl show -p MainPID --value authd.service); [ \"\$pid\" != '$service_pid' ]"
check "and never stops authd.socket (same socket, same activation)" \
    bash -c "[ \"\$(nsenter -t $SANDBOX_PID -m -p -- stat -c %i /run/authd/authd.sock)\" = '$socket_inode' ] && [ \"\$(nsenter -t $SANDBOX_PID -m -p -- systemctl show -p ActiveEnterTimestampMonotonic --value authd.socket)\" = '$socket_since' ]"
check "the upgraded daemon answers, with the users kept" \
    test "$(rpc auth.login '{"email":"ops@example.com","password":"correct horse battery"}' | field result.user.email)" = ops@example.com
rm -f "$HOST_REPO/$upgrade"

sandbox_run dpkg -r authd >/dev/null 2>&1
check "dpkg -r removes the daemon" not sandbox_run test -e /usr/bin/authd
check "dpkg -r stops the socket" not sandbox_run systemctl is-active --quiet authd.socket
check "dpkg -r keeps the state" sandbox_run test -e /var/lib/private/authd/authd.sqlite3
sandbox_run dpkg --purge authd >/dev/null 2>&1
check "dpkg --purge removes the state" not sandbox_run test -e /var/lib/private/authd/authd.sqlite3

echo "first request (activation): ${activation_ms} ms; stop: ${stop_ms} ms; exposure: ${exposure}"
