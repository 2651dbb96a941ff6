#!/bin/bash
# What survives kill -9 of redis-server under three persistence settings: 1,000 session-like hashes with a 20-minute
# PEXPIRE and one list without TTL (the Data Protection key ring), written, then the server is killed 2 s later.
set -u
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
run() {
  name=$1; shift
  dir=$(mktemp -d /tmp/redis-persistence-$name.XXXX)
  redis-server --port $port --bind 127.0.0.1 --dir $dir --daemonize no --loglevel warning "$@" >/dev/null 2>&1 &
  pid=$!
  until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
  for i in $(seq 1 1000); do echo "HSET s:{$i} #c 1 #a 1 @a0 0123456789"; echo "PEXPIRE s:{$i} 1200000"; done | redis-cli -p $port >/dev/null
  redis-cli -p $port RPUSH dataprotection-keys "<key id='1'/>" >/dev/null
  sleep 2
  kill -9 $pid; wait $pid 2>/dev/null
  redis-server --port $port --bind 127.0.0.1 --dir $dir --daemonize no --loglevel warning "$@" >/dev/null 2>&1 &
  pid=$!
  until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
  sleep 0.5
  echo "$name: keys after kill -9 and restart: $(redis-cli -p $port DBSIZE), key ring list length: $(redis-cli -p $port LLEN dataprotection-keys), TTL of s:{1}: $(redis-cli -p $port PTTL 's:{1}') ms"
  redis-cli -p $port SHUTDOWN NOSAVE >/dev/null 2>&1; wait $pid 2>/dev/null
  rm -rf $dir
}
run none --save "" --appendonly no
run rdb-save-60-1 --save "60 1" --appendonly no
run aof-everysec --save "" --appendonly yes --appendfsync everysec
