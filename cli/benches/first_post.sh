#!/usr/bin/env bash
# First-post latency of a freshly joined member (issue 8), by hand, release:
#   cargo build --release -p lattice-cli && cli/benches/first_post.sh [BIN] [JOINS]
# Two members A and B; then JOINS times: a new node starts its daemon, joins
# with an invite from A, and posts once as soon as `mesh join` returns. The
# time is from the start of that `post` command until the post is listed by
# both A and B (polled back to back, one `messages` process each, ~10 ms).
# Joined nodes stay up (a stopped member would make later joins dial it).
set -euo pipefail
BIN=$(realpath "${1:-target/release/lattice}")
N=${2:-20}
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT

l() { local d=$1; shift; "$BIN" --data-dir "$W/$d" "$@"; }
start() {
  mkdir -p "$W/$1"
  l "$1" daemon >"$W/$1.log" 2>&1 &
  until [ -S "$W/$1/lattice.sock" ] && l "$1" node status >/dev/null 2>&1; do sleep 0.02; done
}
has() { l "$1" general messages --limit 1000 | grep -q "text: $2\$"; }

mkdir -p "$W/a"
l a mesh create >/dev/null 2>&1
l a store create --type chat --name general >/dev/null 2>&1
start a
start b
l b mesh join "$(l a mesh invite 2>/dev/null)" >/dev/null 2>&1

for i in $(seq 1 "$N"); do
  start "c$i"
  l "c$i" mesh join "$(l a mesh invite 2>/dev/null)" >/dev/null 2>&1
  t0=$(date +%s%N)
  l "c$i" general post --text "first-$i" >/dev/null 2>&1
  for n in a b; do until has "$n" "first-$i"; do :; done; done
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000)) | tee -a "$W/ms" >&2
done
sort -n "$W/ms" | awk '{v[NR]=$1} END {
  p99 = int(NR * 0.99); if (p99 < 1) p99 = 1; if (NR * 0.99 > p99) p99++;
  printf "first post of a new member, %d joins: p50 %d ms, p99 %d ms, max %d ms\n",
    NR, v[int((NR + 1) / 2)], v[p99], v[NR] }'
