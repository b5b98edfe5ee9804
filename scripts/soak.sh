#!/usr/bin/env bash
# The soak run: 3 daemons on loopback, one mesh, a kv, a log and a chat
# store, mixed traffic from all three for MINUTES, and every minute one line
# per node of what would show a leak. A documented run, not CI.
#
#   scripts/soak.sh                          60 minutes, target/release/lattice
#   scripts/soak.sh 5 target/debug/lattice   a short check of the script
#
# Per node and minute: RSS (VmRSS), open fds, threads, and the daemon's
# runtime section of `node status --json` (open connections, request
# streams served, sync sessions started, pending syncs, gossip topics and
# neighbours, async tasks, kernel orphans, plugin slots in use), entries
# summed over the three stores, and the writes acknowledged / failed since
# the last line. Node c is restarted (SIGTERM, start again) every
# RESTART_EVERY minutes (default 20; 0 for never).
#
# At the end: traffic stops, every node syncs, and the log and state
# digests of each store must be equal on all three (exit 1 otherwise). Then
# the verdict on flatness: the mean of each figure over the last sixth of
# the run against minutes MIN/12..MIN/4 (5-15 of 60), per node (exit 3 if
# something grows). Every replica must also hold at least as many entries
# as writes were acknowledged (exit 1 otherwise). Data dirs are under a temp dir, removed at the end
# unless KEEP=1.
set -euo pipefail
minutes=${1:-60}
bin=$(realpath "${2:-target/release/lattice}")
restart_every=${RESTART_EVERY:-20}
[ -x "$bin" ] || { echo "soak: no binary at $bin" >&2; exit 2; }
root=$(mktemp -d /tmp/lattice-soak.XXXXXX)
nodes=(a b c)
declare -A pid
samples="$root/samples.tsv"

L() { local n=$1; shift; "$bin" --data-dir "$root/$n" "$@"; }

start() {
    local n=$1
    : >"$root/$n.out"
    # Not through `L`: $! must be the daemon itself, not a subshell.
    "$bin" --data-dir "$root/$n" daemon --sync-interval 10 >"$root/$n.out" 2>>"$root/$n.log" &
    pid[$n]=$!
    for _ in $(seq 300); do
        grep -q '^ready ' "$root/$n.out" && return 0
        kill -0 "${pid[$n]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "soak: daemon $n did not start; its log:" >&2
    tail -5 "$root/$n.log" >&2
    exit 2
}

stop() {
    kill -TERM "${pid[$1]}" 2>/dev/null || true
    wait "${pid[$1]}" 2>/dev/null || true
}

traffic_pids=()
cleanup() {
    for p in "${traffic_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for n in "${nodes[@]}"; do [ -n "${pid[$n]:-}" ] && stop "$n"; done
    if [ "${KEEP:-0}" = 1 ]; then echo "soak: data kept in $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT

# One node's writer and reader: ~8 commands a second, at nice 5. Counts
# acknowledged writes and failures in $root/$n.ok / .err (one char each).
# Pauses while $root/$n.pause exists (a restart), saying so in .paused.
traffic() {
    local n=$1 i=0
    while :; do
        if [ -e "$root/$n.pause" ]; then
            touch "$root/$n.paused"
            sleep 0.2
            continue
        fi
        rm -f "$root/$n.paused"
        i=$((i + 1))
        local r=$((RANDOM % 100)) write=1 rc=0
        if [ $r -lt 35 ]; then
            L "$n" general post --text "$n says $i at $(date +%s%N)" >/dev/null 2>&1 || rc=$?
        elif [ $r -lt 60 ]; then
            L "$n" settings put --key "k$((RANDOM % 500))" --value "$n-$i" >/dev/null 2>&1 || rc=$?
        elif [ $r -lt 80 ]; then
            L "$n" events append --text "$n line $i" >/dev/null 2>&1 || rc=$?
        else
            write=0
            case $((r % 5)) in
                0) L "$n" general messages --limit 20 >/dev/null 2>&1 || rc=$? ;;
                1) L "$n" settings get --key "k$((RANDOM % 500))" >/dev/null 2>&1 || rc=$? ;;
                2) L "$n" events tail --n 20 >/dev/null 2>&1 || rc=$? ;;
                3) L "$n" settings list --limit 50 >/dev/null 2>&1 || rc=$? ;;
                4) L "$n" store sync >/dev/null 2>&1 || rc=$? ;;
            esac
        fi
        if [ $rc -ne 0 ]; then
            printf x >>"$root/$n.err"
        elif [ $write = 1 ]; then
            printf . >>"$root/$n.ok"
        fi
        sleep 0.1
    done
}

size() { [ -e "$1" ] && stat -c %s "$1" || echo 0; }

# One line per node: the figures of `sample_header`.
sample() {
    local m=$1 n p st rt entries ok err
    for n in "${nodes[@]}"; do
        p=${pid[$n]}
        st=/proc/$p/status
        rt=$(L "$n" --json node status 2>/dev/null | jq -r '.runtime |
            [.connections, .tracked_connections, .streams_in, .sessions_out,
             .pending_syncs, .gossip_topics, .gossip_neighbors, .tasks,
             .orphans, .plugin_slots_used] | map(tostring) | join("\t")' 2>/dev/null) ||
            rt=$(printf '?\t?\t?\t?\t?\t?\t?\t?\t?\t?')
        entries=0
        for s in settings events general; do
            e=$(L "$n" --json store status "$s" 2>/dev/null | jq -r '.entries' 2>/dev/null || echo 0)
            entries=$((entries + ${e:-0}))
        done
        ok=$(size "$root/$n.ok"); err=$(size "$root/$n.err")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$n" \
            "$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "$st")" \
            "$(ls "/proc/$p/fd" | wc -l)" \
            "$(awk '/^Threads/ {print $2}' "$st")" \
            "$rt" "$entries" "$((ok - ${last_ok[$n]:-0}))" "$((err - ${last_err[$n]:-0}))" \
            "${pid[$n]}" | tee -a "$samples"
        last_ok[$n]=$ok; last_err[$n]=$err
    done
}
declare -A last_ok last_err
sample_header="min	node	rss_mib	fds	threads	conns	tracked	streams_in	sessions_out	pending	topics	neighbors	tasks	orphans	slots	entries	writes	errors	pid"

echo "soak: $minutes min, $bin, data in $root, started $(date -u +%FT%TZ)"
L a mesh create >/dev/null 2>&1
L a store create --type kv --name settings >/dev/null 2>&1
L a store create --type log --name events >/dev/null 2>&1
L a store create --type chat --name general >/dev/null 2>&1
for n in "${nodes[@]}"; do start "$n"; done
for n in b c; do
    token=$(L a mesh invite 2>/dev/null)
    L "$n" mesh join "$token" >/dev/null 2>&1
done
for n in b c; do
    for _ in $(seq 100); do
        [ "$(L "$n" --json store list 2>/dev/null | wc -l)" -ge 3 ] && break
        sleep 0.2
    done
done
for n in "${nodes[@]}"; do
    nice -n 5 bash -c "$(declare -f L traffic); root='$root' bin='$bin'; traffic $n" &
    traffic_pids+=($!)
done

echo "$sample_header" | tee "$samples"
t0=$(date +%s)
for m in $(seq "$minutes"); do
    # Sleep to the minute mark; sampling time does not drift the schedule.
    wait_s=$((t0 + 60 * m - $(date +%s)))
    [ "$wait_s" -gt 0 ] && sleep "$wait_s"
    sample "$m"
    if [ "$restart_every" -gt 0 ] && [ $((m % restart_every)) -eq 0 ] && [ "$m" -lt "$minutes" ]; then
        touch "$root/c.pause"
        for _ in $(seq 300); do [ -e "$root/c.paused" ] && break; sleep 0.1; done
        stop c
        start c
        rm -f "$root/c.pause"
        echo "# minute $m: restarted c (pid ${pid[c]})"
    fi
done

for p in "${traffic_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
traffic_pids=()

# Convergence: sync until every store's digests agree (2 minutes at most).
diverged=1
for _ in $(seq 24); do
    for n in "${nodes[@]}"; do L "$n" store sync >/dev/null 2>&1 || true; done
    diverged=0
    for s in settings events general; do
        d=$(for n in "${nodes[@]}"; do
            L "$n" --json store digest "$s" 2>/dev/null | jq -c '[.log_digest, .state_digest]' || echo "unreadable on $n"
        done | sort -u | wc -l)
        [ "$d" -eq 1 ] || diverged=1
    done
    [ $diverged = 0 ] && break
    sleep 5
done
echo "digests after the final sync:"
for s in settings events general; do
    for n in "${nodes[@]}"; do
        printf '  %-8s %s entries=%s %s\n' "$s" "$n" \
            "$(L "$n" --json store status "$s" | jq -r .entries || true)" \
            "$(L "$n" --json store digest "$s" | jq -r '"log " + .log_digest[0:16] + " state " + .state_digest[0:16]' || true)"
    done
done
total_ok=0; total_err=0
for n in "${nodes[@]}"; do
    total_ok=$((total_ok + $(size "$root/$n.ok"))); total_err=$((total_err + $(size "$root/$n.err")))
done
echo "writes acknowledged: $total_ok, commands failed: $total_err"
# Every acknowledged write is an entry of one of the three stores, so each
# replica holds at least that many.
lost=0
for n in "${nodes[@]}"; do
    held=0
    for s in settings events general; do
        held=$((held + $(L "$n" --json store status "$s" | jq -r .entries || echo 0)))
    done
    if [ "$held" -lt "$total_ok" ]; then
        echo "node $n holds $held entries, fewer than the $total_ok writes acknowledged"
        lost=1
    fi
done

# Flatness: last sixth of the run against minutes MIN/12..MIN/4.
base_lo=$(( minutes / 12 > 1 ? minutes / 12 : 1 ))
base_hi=$(( minutes / 4 > base_lo ? minutes / 4 : base_lo ))
last_lo=$(( minutes - minutes / 6 > base_hi ? minutes - minutes / 6 : minutes ))
echo "flatness: mean of minutes $last_lo-$minutes against $base_lo-$base_hi"
flat=0
awk -F'\t' -v bl="$base_lo" -v bh="$base_hi" -v ll="$last_lo" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
        split("rss_mib fds threads conns streams_in sessions_out pending tasks orphans slots", f, " ")
        for (k in f) {
            v = $col[f[k]]
            if ($1 >= bl && $1 <= bh) { b[$2, f[k]] += v; nb[$2, f[k]]++ }
            if ($1 >= ll) { l[$2, f[k]] += v; nl[$2, f[k]]++ }
        }
        nodes[$2] = 1
    }
    END {
        split("rss_mib fds threads conns streams_in sessions_out pending tasks orphans slots", f, " ")
        # Allowed growth: 20% plus a floor, so a count that moves 0 -> 1 or
        # RSS settling by a few MiB is not called a leak.
        slack["rss_mib"] = 16; slack["fds"] = 8; slack["threads"] = 4; slack["tasks"] = 32
        bad = 0
        for (n in nodes) {
            line = n ":"
            for (k = 1; k <= 10; k++) {
                m = f[k]; bv = b[n, m] / nb[n, m]; lv = l[n, m] / nl[n, m]
                s = (m in slack) ? slack[m] : 2
                ok = lv <= bv * 1.2 + s
                if (!ok) bad = 1
                line = line sprintf(" %s %.1f->%.1f%s", m, bv, lv, ok ? "" : " GROWS")
            }
            print "  " line
        }
        exit bad ? 3 : 0
    }' "$samples" | sort || flat=$?
if [ $diverged != 0 ] || [ $lost != 0 ]; then
    echo "verdict: DIVERGED or LOST (see above)"
    exit 1
fi
if [ $flat != 0 ]; then
    echo "verdict: converged, but something GROWS (see above)"
    exit 3
fi
echo "verdict: converged, and every figure flat"
