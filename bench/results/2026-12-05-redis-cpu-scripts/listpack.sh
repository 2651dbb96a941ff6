#!/bin/bash
# Redis CPU per call of HGETALL and a one-field HSET on a 10 x 100-byte hash: hashtable (default) against listpack (hash-max-listpack-value 1024).
for try in 1 2 3 4 5; do P=$(shuf -i 20000-60000 -n1); redis-server --port $P --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >/dev/null 2>&1; sleep 0.7; redis-cli -p $P ping >/dev/null 2>&1 && break; done
V=$(head -c 100 /dev/zero | tr '\0' y)
cpu() { redis-cli -p $P info cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2}END{print s}'; }
for lp in 64 1024; do
 redis-cli -p $P config set hash-max-listpack-value $lp >/dev/null; redis-cli -p $P del h >/dev/null
 redis-cli -p $P hset h '#' 1700000000000,0,1200000,28800000,1 @a0 $V @a1 $V @a2 $V @a3 $V @a4 $V @a5 $V @a6 $V @a7 $V @a8 $V @a9 $V >/dev/null
 enc=$(redis-cli -p $P object encoding h); mem=$(redis-cli -p $P memory usage h samples 0)
 for cmd in "hgetall h" "hset h @a5 $V"; do c0=$(cpu); redis-benchmark -p $P -c 32 -n 100000 -q $cmd >/dev/null; c1=$(cpu); echo "listpack-value $lp ($enc, $mem B) ${cmd:0:11}: cpu_us=$(python3 -c "print(round(($c1-$c0)*1e6/100000,2))")"; done
done
redis-cli -p $P shutdown nosave >/dev/null 2>&1; true
