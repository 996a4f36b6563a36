#!/bin/bash
# Usage: benches/startup.sh BINARY: ms until /healthz answers (fresh HOME, so the CA is made
# each time) and peak RSS (VmHWM, KiB) after one idle second. Needs curl.
bin=$1; d=$(mktemp -d); port=$((20000 + RANDOM % 20000)); admin=$((port+1))
start=$(date +%s%N)
HOME=$d $bin run --listen 127.0.0.1:$port --admin 127.0.0.1:$admin --calls off >/dev/null 2>&1 &
pid=$!
until curl -sf http://127.0.0.1:$admin/healthz >/dev/null; do sleep 0.005; done
ready=$(( ($(date +%s%N) - start) / 1000000 ))
sleep 1
hwm=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
kill $pid; wait $pid 2>/dev/null; rm -rf $d
echo "ready_ms=$ready peak_rss_kb=$hwm"
