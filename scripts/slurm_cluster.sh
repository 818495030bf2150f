#!/usr/bin/env bash
# A SLURM cluster on this machine, for the tests marked `slurm` (make test-slurm):
#   scripts/slurm_cluster.sh start    install the Debian packages if missing, write slurm.conf, start
#                                     munged, slurmctld and two slurmd; waits until the nodes are idle
#   scripts/slurm_cluster.sh stop     cancel its jobs, stop its daemons by the PID files in the state dir
#   scripts/slurm_cluster.sh status   sinfo, or exit 1 when the cluster is not up
#   scripts/slurm_cluster.sh conf     print the slurm.conf path (clients need SLURM_CONF=<it>)
# One partition ($LITLAB_SLURM_PARTITION, default `cpu`) of two nodes on this host: `hostname -s`
# and `localhost`, each a slurmd of its own, so multi-node jobs (srun -N2, trainer.num_nodes=2) run
# here with SLURM's own node variables, and both node names resolve (Lightning's MASTER_ADDR is the
# first node's name). Everything (config, munge key and socket, spool, logs, PID files) lives in one
# state dir, $LITLAB_SLURM_DIR (default: $TMPDIR/litlab-slurm-<user>); no system file is touched.
# Runs as root (SlurmUser=root); start and stop are idempotent.
set -euo pipefail

STATE="${LITLAB_SLURM_DIR:-${TMPDIR:-/tmp}/litlab-slurm-$(id -un)}"
CONF="$STATE/slurm.conf"
PORT="${LITLAB_SLURM_PORT:-16817}"  # slurmctld; the slurmds take the next two
PARTITION="${LITLAB_SLURM_PARTITION:-cpu}"
HOST="$(hostname -s)"
NODES=("$HOST" localhost)
export SLURM_CONF="$CONF"

log() { echo "slurm_cluster: $*" >&2; }

alive() {  # alive <pid file> <name>: the process it names runs (not a zombie, not a reused PID)
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    ((${#missing[@]})) || return 0
    if [[ "$(id -u)" != 0 ]]; then
        log "missing ${missing[*]}: run as root, or apt-get install -y slurmctld slurmd slurm-client munge"
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
}

write_config() {
    if [[ "$HOST" == localhost ]]; then
        log "hostname -s is localhost: the second node needs that name; set a hostname first"
        exit 1
    fi
    mkdir -p "$STATE"/{munge,ctld,spool} && chmod 700 "$STATE/munge"
    local cpus memory_mb i
    cpus="$(nproc)"
    # SLURM counts a task as a CPU: each node declares at least 2, so a 2-task DDP job fits on one
    # node of a small host (config_overrides lets a node declare more CPUs than the hardware has)
    ((cpus >= 2)) || cpus=2
    memory_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 / ${#NODES[@]}))
    cat >"$CONF" <<EOF
# written by scripts/slurm_cluster.sh: two nodes on this host, for litlab's tests
ClusterName=litlab
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=10
KillWait=30
InactiveLimit=0
EOF
    for i in "${!NODES[@]}"; do
        echo "NodeName=${NODES[$i]} NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((PORT + 1 + i))" \
            "CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN" >>"$CONF"
    done
    echo "PartitionName=$PARTITION Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE" \
        "OverSubscribe=YES State=UP" >>"$CONF"
    if [[ ! -s "$STATE/munge/munge.key" ]]; then
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$STATE/munge/munge.key"
    fi
}

wait_idle() {
    local states=""
    for _ in $(seq 60); do
        states="$(sinfo -h -N -o %t 2>/dev/null | sort -u | tr '\n' ' ' || true)"
        [[ -n "$states" && ! "$states" =~ (down|drain|unk|fail|\*) ]] && return 0
        sleep 0.5
    done
    log "the nodes are not up after 30 s (sinfo: ${states:-unreachable}); see $STATE/*.log"
    return 1
}

start() {
    install_packages
    write_config
    local node
    if ! alive "$STATE/munged.pid" munged; then
        munged --force --socket="$STATE/munge/munge.socket" --key-file="$STATE/munge/munge.key" \
            --pid-file="$STATE/munged.pid" --log-file="$STATE/munged.log" --seed-file="$STATE/munge/seed"
    fi
    if ! alive "$STATE/slurmctld.pid" slurmctld; then
        slurmctld -f "$CONF" -i  # -i: forget the jobs and node states of an earlier start
    else
        scontrol reconfigure  # a rewritten slurm.conf takes effect
    fi
    for node in "${NODES[@]}"; do
        alive "$STATE/slurmd-$node.pid" slurmd || slurmd -f "$CONF" -N "$node"
    done
    wait_idle
    log "up: $(sinfo -h -o '%P: %D nodes (%N), %t, %c CPUs each') SLURM_CONF=$CONF"
}

stop() {
    local name pid
    # jobs first: a slurmd that stops leaves its running job steps behind
    if alive "$STATE/slurmctld.pid" slurmctld && [[ -n "$(squeue -h -o %i 2>/dev/null)" ]]; then
        scancel --full --quiet $(squeue -h -o %i) 2>/dev/null || true
        for _ in $(seq 40); do [[ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ]] && break; sleep 0.25; done
    fi
    for name in "${NODES[@]/#/slurmd-}" slurmctld munged; do
        alive "$STATE/$name.pid" "${name%%-*}" || continue
        pid="$(cat "$STATE/$name.pid")"
        kill "$pid"
        for _ in $(seq 50); do alive "$STATE/$name.pid" "${name%%-*}" || break; sleep 0.1; done
        alive "$STATE/$name.pid" "${name%%-*}" && kill -9 "$pid"
        rm -f "$STATE/$name.pid"
    done
    log "stopped"
}

status() {
    local node
    alive "$STATE/munged.pid" munged && alive "$STATE/slurmctld.pid" slurmctld || return 1
    for node in "${NODES[@]}"; do alive "$STATE/slurmd-$node.pid" slurmd || return 1; done
    sinfo -N
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
conf) echo "$CONF" ;;
*)
    echo "usage: $0 start|stop|status|conf" >&2
    exit 2
    ;;
esac
