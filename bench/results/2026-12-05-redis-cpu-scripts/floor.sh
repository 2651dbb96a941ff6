#!/bin/bash
# Redis CPU and execution time per call of the save script and its parts, 32 clients, redis-benchmark.
for try in 1 2 3 4 5; do P=$(shuf -i 20000-60000 -n1); redis-server --port $P --bind 127.0.0.1 --save "" --appendonly no --daemonize yes  >/dev/null 2>&1; sleep 0.7; redis-cli -p $P ping >/dev/null 2>&1 && break; done
V=$(head -c 100 /dev/zero | tr '\0' y)
cpu() { redis-cli -p $P info cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2}END{print s}'; }
run() { local label=$1; shift; redis-cli -p $P hset s '#' "$(date +%s%3N),0,1200000,28800000,1" '@a' $V >/dev/null; redis-cli -p $P pexpire s 1200000 >/dev/null
 redis-cli -p $P config resetstat >/dev/null; local c0=$(cpu); timeout 120 redis-benchmark -p $P -c 32 -n 100000 -q "$@" >/dev/null; local c1=$(cpu)
 echo "$label cpu_us=$(python3 -c "print(round(($c1-$c0)*1e6/100000,2))") exec: $(redis-cli -p $P info commandstats | sed -n 's/cmdstat_\([a-z]*\):calls=\([0-9]*\),usec=[0-9]*,usec_per_call=\([0-9.]*\).*/\1 \3/p' | tr '\n' ' ')"; }
for f in A F K S; do SHA=$(redis-cli -p $P script load "$(cat $(dirname "$0")/$f.lua)"); run "script-$f" evalsha $SHA 1 s '' '' '' 5 256 '' '' '' 1 @a $V; done

redis-cli -p $P shutdown nosave >/dev/null 2>&1; true
