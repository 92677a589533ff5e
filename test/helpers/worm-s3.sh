#!/bin/bash
# A real S3 server with Object Lock (WORM) for the tests: Ceph's RADOS Gateway
# (Debian 12's radosgw 16.2, "Pacific") on a one-node Ceph cluster (one
# monitor, one OSD on memstore, objects in RAM, no mgr, no cephx), bound to
# 127.0.0.1 only. test/helpers/worm-s3.ts runs it; scripts/test-servers.sh
# installs its packages (ceph-mon ceph-osd radosgw).
#
#   worm-s3.sh start DATA_DIR     start on a free port, print the endpoint
#   worm-s3.sh stop DATA_DIR      stop it (SIGTERM, then SIGKILL)
#
# Prints one key=value per line: endpoint= region= accessKeyId=
# secretAccessKey= data= pids= version=. Progress goes to stderr.
#
# What radosgw 16.2 enforces (measured; docs/drivers/s3.md has the table):
# Object Lock COMPLIANCE/GOVERNANCE and legal hold on versioned DELETE, on
# shortening retention and on COMPLIANCE->GOVERNANCE; If-None-Match: * on
# PutObject in UNVERSIONED buckets only. Ignored: If-None-Match on versioned
# (hence every Object Lock) bucket and on CompleteMultipartUpload, and the
# Object Lock headers of CreateMultipartUpload.
set -euo pipefail

say() { echo "worm-s3: $*" >&2; }
die() { say "$*"; exit 1; }

kill_pids() { # $1: data dir. Stops rgw, then osd, then mon: TERM, up to 60 s, then KILL. Fails if any needed KILL.
  local d=$1 n p clean=0
  for n in client.rgw.a osd.0 mon.a; do
    [ -f "$d/run/$n.pid" ] || continue
    p=$(cat "$d/run/$n.pid" 2>/dev/null || true); [ -n "$p" ] || continue
    # only a daemon of this data dir (a stale pid file may name a reused pid)
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-c $d/ceph.conf" || continue
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 1 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; clean=1; fi
  done
  return $clean
}
if [ "${1:-}" = stop ]; then
  D=${2:-}; [ -n "$D" ] && [ -d "$D" ] || die "usage: worm-s3.sh stop DATA_DIR"
  if kill_pids "$D"; then touch "$D/clean-stop"; else rm -f "$D/clean-stop"; fi
  rm -f "$D"/run/*.pid
  say "stopped"; exit 0
fi

[ "${1:-}" = start ] && [ -n "${2:-}" ] || die "usage: worm-s3.sh start DATA_DIR | stop DATA_DIR"
PORT=
D=$2
mkdir -p "$D"; D=$(cd "$D" && pwd)

# --- installed? (scripts/test-servers.sh installs them) ---------------------
for c in radosgw ceph-mon ceph-osd ceph monmaptool ceph-authtool radosgw-admin; do
  command -v "$c" >/dev/null || die "$c is missing: sudo apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw"
done

free_port() { # a free TCP port on 127.0.0.1
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
  die "no free port"
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/" 2>/dev/null; }

print_info() {
  # shellcheck disable=SC1091
  . "$D/creds"
  echo "endpoint=http://127.0.0.1:$(cat "$D/port")"
  echo "region=us-east-1"
  echo "accessKeyId=$ACCESS"
  echo "secretAccessKey=$SECRET"
  echo "data=$D"
  echo "pids=$(cat "$D/run/mon.a.pid") $(cat "$D/run/osd.0.pid") $(cat "$D/run/client.rgw.a.pid")"
  echo "version=$(radosgw --version 2>/dev/null | awk '{print $3}')"
}

# --- already running? ------------------------------------------------------
if [ -f "$D/port" ] && alive "$D/run/mon.a.pid" && alive "$D/run/osd.0.pid" && alive "$D/run/client.rgw.a.pid" && answers "$(cat "$D/port")"; then
  [ -z "$PORT" ] || [ "$PORT" = "$(cat "$D/port")" ] || die "already running in $D on port $(cat "$D/port"), not $PORT"
  print_info; exit 0
fi
[ -d "$D/run" ] && kill_pids "$D" >/dev/null 2>&1 || true

[ -n "$PORT" ] || PORT=$(cat "$D/port" 2>/dev/null || free_port)
(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && die "port $PORT is taken"
echo "$PORT" >"$D/port"
if [ ! -f "$D/creds" ]; then
  rnd() { head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c "$1"; }
  printf 'ACCESS=%s\nSECRET=%s\n' "WORM$(rnd 16 | tr a-f A-F)" "$(rnd 40)" >"$D/creds"; chmod 600 "$D/creds"
fi

FRESH=1
if [ -f "$D/clean-stop" ] && [ -f "$D/ceph.conf" ] && [ -d "$D/osd.0" ] && [ -d "$D/mon.a" ]; then FRESH=0; fi
rm -f "$D/clean-stop"
if [ $FRESH = 1 ]; then
  rm -rf "$D/mon.a" "$D/osd.0" "$D/run" "$D/log" "$D/rgw" "$D/monmap" "$D/keyring" "$D/ceph.conf" "$D/crash"
  MONPORT=$(free_port)
  FSID=$(cat /proc/sys/kernel/random/uuid)
else
  MONPORT=$(sed -n "s/^mon_host = v2:127.0.0.1:\([0-9]*\).*/\1/p" "$D/ceph.conf")
  FSID=$(sed -n "s/^fsid = //p" "$D/ceph.conf")
  (exec 3<>/dev/tcp/127.0.0.1/$MONPORT) 2>/dev/null && die "monitor port $MONPORT is taken; remove $D/clean-stop for a fresh cluster"
fi
mkdir -p "$D/run" "$D/log" "$D/rgw" "$D/crash"

cat >"$D/ceph.conf" <<EOF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MONPORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# auth none cannot do msgr2 "secure" mode, which radosgw asks of the monitor by default
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_service_mode = crc
ms_mon_cluster_mode = crc
ms_service_mode = crc
ms_cluster_mode = crc
keyring = $D/keyring
run_dir = $D/run
pid_file = $D/run/\$name.pid
admin_socket = $D/run/\$name.asok
log_file = $D/log/\$name.log
crash_dir = $D/crash
exec_dir = $D/run
log_to_stderr = false
err_to_stderr = false
mon_cluster_log_file = $D/log/cluster.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[mon.a]
mon_data = $D/mon.a
[osd.0]
osd_data = $D/osd.0
osd_objectstore = memstore
# save the RAM store to osd.0/ on a clean stop (TERM), so a restart finds the data
osd_fast_shutdown = false
memstore_device_bytes = 8589934592
osd_max_object_size = 134217728
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_data = $D/rgw
rgw_dynamic_resharding = false
rgw_enable_usage_log = false
rgw_thread_pool_size = 64
EOF
C=(-c "$D/ceph.conf")
ceph_() { timeout 60 ceph "${C[@]}" --connect-timeout 30 "$@"; }
wait_for() { # $1 seconds, $2.. command
  local n=$(($1 * 5)); shift
  for _ in $(seq 1 $n); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
t0=$(date +%s)
# A failed start leaves nothing running.
trap 'rc=$?; if [ $rc != 0 ]; then say "start failed; stopping what was started"; kill_pids "$D" >/dev/null 2>&1 || true; rm -f "$D"/run/*.pid; fi' EXIT

if [ $FRESH = 1 ]; then
  say "creating a one-node cluster in $D"
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$D/ceph.conf")" --addv a "[v2:127.0.0.1:$MONPORT]" "$D/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" || die "ceph-mon --mkfs failed"
fi
ceph-mon "${C[@]}" -i a || die "ceph-mon did not start (log: $D/log/mon.a.log)"
wait_for 60 ceph_ mon stat || die "the monitor does not answer (log: $D/log/mon.a.log)"

if [ $FRESH = 1 ]; then
  OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
  id=$(ceph_ osd new "$OSD_UUID") || die "ceph osd new failed"
  [ "$id" = 0 ] || die "expected osd.0, got osd.$id"
  mkdir -p "$D/osd.0"
  ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.out" 2>&1 || { cat "$D/log/osd-mkfs.out" >&2; die "ceph-osd --mkfs failed"; }
fi
ceph-osd "${C[@]}" -i 0 || die "ceph-osd did not start (log: $D/log/osd.0.log)"
osd_up() { ceph_ osd dump 2>/dev/null | grep -q '^osd.0 up'; }
wait_for 90 osd_up || die "osd.0 does not come up (log: $D/log/osd.0.log)"

radosgw "${C[@]}" -n client.rgw.a || die "radosgw did not start (log: $D/log/client.rgw.a.log)"
wait_for 120 answers "$PORT" || die "radosgw does not answer on $PORT (log: $D/log/client.rgw.a.log)"

# shellcheck disable=SC1091
. "$D/creds"
if ! radosgw-admin "${C[@]}" -n client.rgw.a user info --uid=depot-test >/dev/null 2>&1; then
  radosgw-admin "${C[@]}" -n client.rgw.a user create --uid=depot-test --display-name="depot test" \
    --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null 2>"$D/log/user-create.err" || { cat "$D/log/user-create.err" >&2; die "radosgw-admin user create failed"; }
fi
say "ready in $(( $(date +%s) - t0 ))s"
print_info
