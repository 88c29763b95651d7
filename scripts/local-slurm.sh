#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages, for the
# cluster tests (tests/slurm.rs) and for trying `iq-tui sweep --slurm`.
#
#   scripts/local-slurm.sh up       install what is missing, configure, start,
#                                   and wait until the node takes jobs
#   scripts/local-slurm.sh down     stop the daemons (the configuration stays)
#   scripts/local-slurm.sh status   what sinfo says
#
# Needs root: it writes /etc/slurm/slurm.conf and starts munged, slurmctld
# and slurmd. It is a test cluster: no accounting database (so `sacct` is
# off and `iq-tui status` reads `squeue`), processes tracked by their parent
# (proctrack/linuxproc), no CPU binding (task/none), and CPUs as the only
# consumable, so jobs of one CPU each run side by side.
set -euo pipefail

conf=/etc/slurm/slurm.conf
state=/var/lib/slurm-local
logs=/var/log/slurm-local

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "local-slurm.sh: run as root (it configures and starts system daemons)" >&2
        exit 2
    fi
}

install() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        apt-get update -qq
        # Debian's packages start their daemons on install where they can;
        # `up` replaces them with its own.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

configure() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    # A little under what the machine has, or slurmd refuses to register.
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p /etc/slurm "$state/ctld" "$state/d" "$logs"
    cat >"$conf" <<EOF
# Written by scripts/local-slurm.sh: a one-node test cluster.
ClusterName=iqtui-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=/run/slurmctld-local.pid
SlurmdPidFile=/run/slurmd-local.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# Finished jobs stay in squeue for ten minutes.
MinJobAge=600
KillWait=30
SlurmdTimeout=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munge() {
    if munge_works; then
        return
    fi
    pkill -x munged || true
    sleep 0.5
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --force
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 20); do
        munge_works && return
        sleep 0.5
    done
    echo "local-slurm.sh: munged does not answer" >&2
    exit 1
}

# A live process of that name (not a zombie: where PID 1 does not reap, a
# daemon's first process stays behind as one).
alive() {
    pgrep -x "$1" -r R,S,D >/dev/null
}

stop_slurm() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
    for _ in $(seq 1 20); do
        alive slurmd || alive slurmctld || return 0
        sleep 0.5
    done
    # One that was left talking to a munged that is gone ignores SIGTERM.
    pkill -KILL -x slurmd || true
    pkill -KILL -x slurmctld || true
    sleep 0.5
}

up() {
    need_root
    install
    configure
    start_munge
    # Daemons that a package's scripts started, or an earlier `up`, may run
    # with another configuration: start ours afresh (jobs are kept).
    stop_slurm
    slurmctld
    slurmd
    local host
    host=$(hostname -s)
    for _ in $(seq 1 60); do
        if sinfo -h -n "$host" -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
            echo "local Slurm is up: $(sinfo -h -o '%P %D node, %c CPUs, %t')"
            return
        fi
        sleep 1
    done
    echo "local-slurm.sh: the node did not come up in a minute; see $logs/" >&2
    sinfo >&2 || true
    tail -n 20 "$logs/slurmctld.log" "$logs/slurmd.log" >&2 || true
    exit 1
}

down() {
    need_root
    stop_slurm
    pkill -x munged || true
    echo "local Slurm is down"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) sinfo ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
