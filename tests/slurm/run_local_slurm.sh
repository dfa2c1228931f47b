#!/usr/bin/env bash
# A real test of the cluster path: a one-node SLURM cluster on this machine, the tiny profile run
# through `snakemake --profile workflow/profiles/slurm`, and its numbers compared with a local run.
#
#   sudo tests/slurm/run_local_slurm.sh          # as root: installs, starts and stops daemons
#
# What it does: installs Debian's slurm-wlm and munge if missing (apt-get) and the SLURM executor
# plugin if missing (pip); writes a fresh munge key and state folders into a temp folder and
# /etc/slurm/{slurm,cgroup}.conf (refusing to touch a configuration it did not write, removed at
# exit); starts munged (own socket), slurmctld and slurmd (free ports) and waits for the node to be
# idle; runs the tiny profile (LieGAN only, seeds 0 and 1) locally and through SLURM at the same
# time; checks that every SLURM job completed on its first try and that
# results/tables/discovery.csv holds the same numbers in both runs; stops what it started (trap).
#
# Environment: PYTHON (default .venv/bin/python), LIEGAN_SLURM_LIMIT (seconds per Snakemake run,
# default 300), LIEGAN_SLURM_KEEP=1 (keep the temp folder; it is always kept on failure).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
LIMIT=${LIEGAN_SLURM_LIMIT:-300}
KEEP=${LIEGAN_SLURM_KEEP:-0}
START=$SECONDS
export PATH="$(dirname "$PY"):$PATH"
unset SNAKEMAKE_PROFILE SLURM_CONF SBATCH_ACCOUNT SBATCH_PARTITION

log() { echo "[slurm-test +$((SECONDS - START))s] $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root: it installs packages and starts munged, slurmctld and slurmd"
[[ -x $PY ]] || die "no Python at $PY (set PYTHON)"

# --- software -----------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
if ! "$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    log "installing snakemake-executor-plugin-slurm==2.8.0 (pip)"
    "$PY" -m pip install -q --disable-pip-version-check "snakemake-executor-plugin-slurm==2.8.0"
fi
log "$(slurmctld -V), munge $(munged --version 2>&1 | awk '{print $2; exit}')"

# --- cluster configuration ----------------------------------------------------------------------
# one instance at a time: the configuration lives in /etc/slurm
exec 9>/run/lock/liegan-slurm-test.lock
flock -w 900 9 || die "another run of this test holds /run/lock/liegan-slurm-test.lock"
# The configuration must sit where every SLURM command looks by default: the plugin's job step
# drops SLURM_* variables (SLURM_CONF too) before its inner `srun`.
ETC=/etc/slurm
MARK="# written by liegan tests/slurm/run_local_slurm.sh"
for f in "$ETC/slurm.conf" "$ETC/cgroup.conf"; do
    if [[ -e $f ]] && ! grep -qxF "$MARK" "$f"; then
        die "$f exists and is not ours: this test needs a machine without a SLURM configuration"
    fi
done
mkdir -p "$ETC"
WORK=$(mktemp -d /tmp/liegan-slurm.XXXXXX)
chmod 700 "$WORK"
LOGS=$WORK/log
mkdir -p "$LOGS" "$WORK/munge" "$WORK/state" "$WORK/spool"
chmod 711 "$WORK/munge"      # munged wants others to reach its socket folder
DAEMONS=()     # munged, slurmctld, slurmd: stopped last, in reverse order
RUNS=()        # the two Snakemake runs, each in a session (process group) of its own
OK=0
WROTE_CONF=0

running() { kill -0 "$1" 2>/dev/null; }

cleanup() {
    local rc=$?
    set +e
    for pgid in "${RUNS[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null; done
    for pgid in "${RUNS[@]}"; do
        for _ in $(seq 150); do running "$pgid" || break; sleep 0.1; done
        kill -KILL -- "-$pgid" 2>/dev/null
    done
    if [[ ${#DAEMONS[@]} -gt 0 && -n $(squeue -h -t PD,R,CG 2>/dev/null) ]]; then
        scancel --quiet --full --user="$(id -un)" 2>/dev/null       # jobs left by an aborted run
        for _ in $(seq 30); do [[ -z $(squeue -h -t PD,R,CG 2>/dev/null) ]] && break; sleep 0.5; done
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do kill "${DAEMONS[i]}" 2>/dev/null; done
    for pid in "${DAEMONS[@]}"; do
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [[ $WROTE_CONF == 1 ]]; then
        cp "$ETC/slurm.conf" "$ETC/cgroup.conf" "$LOGS/" 2>/dev/null
        rm -f "$ETC/slurm.conf" "$ETC/cgroup.conf"
    fi
    if [[ $OK == 1 && $KEEP != 1 ]]; then
        rm -rf "$WORK"
    else
        if [[ $OK != 1 ]]; then
            for f in "$LOGS"/slurmctld.log "$LOGS"/slurmd.log "$LOGS"/jobcomp.log "$WORK"/slurm.out "$WORK"/local.out; do
                [[ -s $f ]] && { echo "----- tail of $f" >&2; tail -n 40 "$f" >&2; }
            done
        fi
        log "kept $WORK"
    fi
    log "total $((SECONDS - START)) s, exit $rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
HOST=$(hostname -s)
NODE=liegan0
# the node's memory as the node reports it (slurmd -C), so slurmctld does not drain it as too small
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ ${MEM:-0} -ge 4096 ]] || die "the node has ${MEM:-?} MB; the slurm profile asks up to 4000 MB per job"
FIRST_JOB_ID=$(( (RANDOM * 32768 + RANDOM) % 50000000 + 1000 ))
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then CGROUP=cgroup/v2; else CGROUP=cgroup/v1; fi

WROTE_CONF=1
cat >"$ETC/slurm.conf" <<EOF
$MARK
ClusterName=liegan
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=5
MailProg=/bin/true
# job ids differ from run to run: a Snakemake left over from an earlier run (it cancels its jobs by
# id when it stops) cannot hit this run's jobs
FirstJobId=$FIRST_JOB_ID
NodeName=$NODE NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=2 RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
printf '%s\nCgroupPlugin=%s\n' "$MARK" "$CGROUP" >"$ETC/cgroup.conf"

# --- daemons ------------------------------------------------------------------------------------
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.socket" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$LOGS/munged.log" --seed-file="$WORK/munge/seed" \
    >"$LOGS/munged.out" 2>&1 &
DAEMONS+=($!)
for _ in $(seq 50); do [[ -S $WORK/munge/munge.socket ]] && break; sleep 0.1; done
[[ -S $WORK/munge/munge.socket ]] || die "munged did not start (see $LOGS/munged.log)"

slurmctld -D -i -f "$ETC/slurm.conf" >"$LOGS/slurmctld.out" 2>&1 &
DAEMONS+=($!)
slurmd -D -N "$NODE" -f "$ETC/slurm.conf" >"$LOGS/slurmd.out" 2>&1 &
DAEMONS+=($!)
for _ in $(seq 120); do
    [[ $(sinfo -h -N -n "$NODE" -o %t 2>/dev/null) == idle ]] && break
    sleep 0.5
done
[[ $(sinfo -h -N -n "$NODE" -o %t 2>/dev/null) == idle ]] || die "node $NODE not idle: $(sinfo -N 2>&1)"
log "SLURM up: $(sinfo -h -o '%P %D %c CPUs %m MB %t')"

# --- the two runs -------------------------------------------------------------------------------
# The tiny profile, LieGAN only and without the downstream runs (they would add 14 jobs and
# minutes): task_config, generate, discover x 2 seeds, aggregate (+ `all`, run locally).
for run in local slurm; do
    mkdir -p "$WORK/$run"
    "$PY" - "$ROOT" "$WORK/$run/profile.yaml" <<'EOF'
import sys, yaml
root, out = sys.argv[1:]
prof = yaml.safe_load(open(f"{root}/benchmarks/profiles/tiny.yaml"))
prof.update(benchmarks_dir=f"{root}/benchmarks", methods=["liegan"])
for task in prof["tasks"]:
    prof["overrides"].setdefault(task, {})["downstream"] = {"models": None}
yaml.safe_dump(prof, open(out, "w"))
EOF
done

cd "$ROOT"
log "local run (--cores 2) and SLURM run (--profile workflow/profiles/slurm) start"
# each run in its own session (setsid), so that cleanup can stop it with everything it started;
# `timeout -k 10`: on SIGTERM Snakemake waits for its running jobs
T0=$SECONDS
setsid timeout -k 10 "$LIMIT" "$PY" -m snakemake -s "$ROOT/Snakefile" -d "$WORK/local" --cores 2 \
    --configfile "$WORK/local/profile.yaml" >"$WORK/local.out" 2>&1 &
LOCAL_PID=$!
RUNS+=($LOCAL_PID)
# squeue: there is no accounting database (sacct fails); a finished job stays visible to squeue
# for MinJobAge (300 s). Short status intervals: the jobs here take seconds, not hours.
setsid timeout -k 10 "$LIMIT" "$PY" -m snakemake --profile workflow/profiles/slurm -s "$ROOT/Snakefile" \
    -d "$WORK/slurm" --configfile "$WORK/slurm/profile.yaml" \
    --slurm-status-command squeue --slurm-init-seconds-before-status-checks 2 \
    --seconds-between-status-checks 2 --slurm-keep-successful-logs --latency-wait 10 \
    >"$WORK/slurm.out" 2>&1 &
SLURM_PID=$!
RUNS+=($SLURM_PID)
LOCAL_RC=0 SLURM_RC=0
wait "$LOCAL_PID" || LOCAL_RC=$?
LOCAL_S=$((SECONDS - T0))
wait "$SLURM_PID" || SLURM_RC=$?
SLURM_S=$((SECONDS - T0))
log "local run: exit $LOCAL_RC in $LOCAL_S s; SLURM run: exit $SLURM_RC in $SLURM_S s"
[[ $LOCAL_RC == 0 ]] || die "local run failed (tail of $WORK/local.out above)"
[[ $SLURM_RC == 0 ]] || die "SLURM run failed (tail of $WORK/slurm.out above)"

# --- checks -------------------------------------------------------------------------------------
# every job went through sbatch and finished COMPLETED on the first try
SUBMITTED=$(grep -c "has been submitted with SLURM jobid" "$WORK/slurm.out" || true)
STATES=$(sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p' "$LOGS/jobcomp.log" | sort | uniq -c | tr -s ' ' | paste -sd, -)
log "SLURM jobs submitted: $SUBMITTED; final states: $STATES"
[[ $SUBMITTED -ge 3 ]] || die "only $SUBMITTED jobs went through sbatch"
[[ $SUBMITTED -le 8 ]] || log "note: $SUBMITTED jobs, more than the 6 this test expects (has the workflow grown?)"
[[ $STATES == " $SUBMITTED COMPLETED" ]] || die "not every SLURM job COMPLETED: $STATES"
if grep -q "Trying to restart job" "$WORK/slurm.out"; then
    grep -B2 -A8 "Error in rule\|failed, SLURM status" "$WORK/slurm.out" >&2 || true
    die "a job failed and was retried (see the jobcomp states above and $LOGS)"
fi
for f in discovery.csv discovery.md discovery_summary.csv; do
    [[ -s $WORK/slurm/results/tables/$f ]] || die "missing results/tables/$f from the SLURM run"
done

"$PY" - "$WORK/local/results/tables/discovery.csv" "$WORK/slurm/results/tables/discovery.csv" <<'EOF'
import sys
import pandas as pd

keys = ["task", "method", "model", "symmetry", "seed", "split", "metric"]
local, slurm = (pd.read_csv(p, keep_default_na=False) for p in sys.argv[1:])
if len(local) == 0 or len(local) != len(slurm):
    sys.exit(f"row counts differ or are zero: local {len(local)}, SLURM {len(slurm)}")
both = local.merge(slurm, on=keys, how="outer", suffixes=("_local", "_slurm"), indicator=True)
if (both["_merge"] != "both").any():
    sys.exit(f"rows in only one run:\n{both[both._merge != 'both'][keys + ['_merge']]}")
diff = both[(both.value_local != both.value_slurm) | (both.config_hash_local != both.config_hash_slurm)]
if len(diff):
    sys.exit(f"{len(diff)} of {len(both)} numbers differ:\n{diff[keys + ['value_local', 'value_slurm']]}")
print(f"discovery.csv: {len(both)} values identical in the local and the SLURM run "
      f"(seeds {sorted(set(both.seed))}, metrics {sorted(set(both.metric))})")
EOF
OK=1
log "PASS"
