#!/bin/bash
# A small static GET (a 100 B file through serveStatic) before and after a change: BASE is another
# checkout (built), the branch is this one. Alternating rounds, proxyctl pinned to core 0, wrk
# (-t1 -c50, 3 s warm-up, 10 s measured) on core 1. Each checkout loads its own copy of
# static.config.mjs (so `proxyctl` resolves to its own packages).
#   BASE=/tmp/base bench/static/run.sh
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
BRANCH=$(cd "$HERE/../.." && pwd)
BASE=${BASE:?set BASE to a built checkout to compare with}
for dir in "$BASE" "$BRANCH"; do
  mkdir -p "$dir/test/.tmp/static-bench/www"
  cp "$HERE/static.config.mjs" "$dir/test/.tmp/static-bench/"
  head -c 100 /dev/zero | tr '\0' 'x' > "$dir/test/.tmp/static-bench/www/small.txt"
done
for round in 1 2 3 4 5 6; do
  for dir in "$BASE" "$BRANCH"; do
    taskset -c 0 node "$dir/packages/cli/dist/bin.js" start -c "$dir/test/.tmp/static-bench/static.config.mjs" > /dev/null 2>&1 &
    PID=$!
    for i in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:28080/small.txt && break; sleep 0.25; done
    taskset -c 1 wrk -t1 -c50 -d3s http://127.0.0.1:28080/small.txt > /dev/null 2>&1
    echo "round $round $dir: $(taskset -c 1 wrk -t1 -c50 -d10s http://127.0.0.1:28080/small.txt | grep -E 'Requests/sec|Non-2xx' | tr -s ' ')"
    kill $PID; wait $PID 2>/dev/null || true
  done
done
