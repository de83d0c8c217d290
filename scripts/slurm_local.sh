#!/usr/bin/env bash
# A one-node SLURM cluster on localhost (Debian packages, no systemd), to try and test the
# workflow's SLURM profile: `bash scripts/slurm_local.sh install|start|stop` (as root).
# Config /etc/slurm/slurm.conf; state /var/spool/slurmctld, /var/spool/slurmd; logs /var/log/slurm.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# Written by medslip scripts/slurm_local.sh"
RUN=/run/slurm_local  # pid files, and a note that this script started munged
LOGS=/var/log/slurm

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

# Install slurm-wlm and munge when slurmctld is missing.
install() {
  if command -v slurmctld >/dev/null; then echo "SLURM already installed"; return; fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge
}

# Is the daemon whose pid is in file $1 running (and not a zombie left unreaped)?
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && ps -o stat= -p "$pid" | grep -qv '^Z'
}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge
  chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
  touch "$RUN/munged.started"
}

# slurm.conf for this machine; never overwrites one this script did not write.
write_conf() {
  if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
    die "$CONF was not written by this script; refusing to replace it"
  fi
  local mem
  mem=$(free -m | awk '/^Mem:/ {print $2}')
  mkdir -p /etc/slurm
  cat >"$CONF" <<EOF
$MARK
ClusterName=local
SlurmctldHost=localhost
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=localhost NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$((mem - 512))
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

# Wait (up to 60 s) until the node accepts jobs.
wait_idle() {
  local state
  for _ in $(seq 60); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    case "$state" in idle | mixed | allocated) echo "SLURM node localhost: $state"; return ;; esac
    sleep 1
  done
  die "node not idle after 60 s (state '${state:-?}'); see $LOGS/"
}

start() {
  command -v slurmctld >/dev/null || die "SLURM is not installed (run: $0 install)"
  mkdir -p "$RUN" "$LOGS" /var/spool/slurmctld /var/spool/slurmd
  start_munge
  if ! alive "$RUN/slurmctld.pid" || ! alive "$RUN/slurmd.pid"; then write_conf; fi
  alive "$RUN/slurmctld.pid" || slurmctld
  alive "$RUN/slurmd.pid" || slurmd -N localhost
  wait_idle
}

# Stop the daemons started by `start` (munged only when `start` started it).
stop() {
  local pidfile
  local pidfiles=("$RUN/slurmd.pid" "$RUN/slurmctld.pid")
  if [ -e "$RUN/munged.started" ]; then pidfiles+=(/run/munge/munged.pid); fi
  for pidfile in "${pidfiles[@]}"; do
    if alive "$pidfile"; then kill "$(cat "$pidfile")" || true; fi
    for _ in $(seq 20); do alive "$pidfile" || break; sleep 0.5; done
  done
  rm -f "$RUN/munged.started"
}

case "${1:-}" in
  install | start | stop) "$1" ;;
  *) die "usage: $0 install|start|stop" ;;
esac
