#!/bin/bash
# run_vs_server.sh SERVER [SERVER_ARGS...] -- CLIENT [CLIENT_ARGS...]
#
# Runs CLIENT against a fresh SERVER on a free loopback port:
#  1. picks a free TCP port on 127.0.0.1 (bind to 0 in Python, then release);
#  2. starts SERVER with "--port N" appended (or with every "{PORT}" in
#     SERVER_ARGS replaced by N, if there is one), output to a log;
#  3. waits until 127.0.0.1:N accepts TCP connections (at most
#     $TW_INTEROP_START_TIMEOUT s, default 15; fails at once if the server exits);
#  4. runs CLIENT with every "{PORT}" in its arguments replaced by N
#     (also exported as TW_INTEROP_PORT);
#  5. sends SIGTERM to the server and waits: it must exit within 10 s with
#     status 0 (clean shutdown is a requirement) and its log must hold no
#     sanitizer report;
#  6. exits with the client's status, or 1 if step 3 or 5 failed.
# The server log is printed when anything failed.
set -u

die_usage() {
  echo "usage: $0 SERVER [SERVER_ARGS...] -- CLIENT [CLIENT_ARGS...]" >&2
  exit 2
}

server=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  server+=("$1")
  shift
done
[ $# -gt 0 ] || die_usage
shift
client=("$@")
[ ${#server[@]} -gt 0 ] && [ ${#client[@]} -gt 0 ] || die_usage

port=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || {
  echo "run_vs_server: cannot pick a free port" >&2
  exit 1
}

has_placeholder=0
for i in "${!server[@]}"; do
  case ${server[$i]} in *"{PORT}"*) has_placeholder=1 ;; esac
  server[$i]=${server[$i]//\{PORT\}/$port}
done
[ $has_placeholder = 1 ] || server+=(--port "$port")
for i in "${!client[@]}"; do
  client[$i]=${client[$i]//\{PORT\}/$port}
done
export TW_INTEROP_PORT=$port

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tw-interop.XXXXXX")
log=$workdir/server.log
spid=

# alive PID: the process exists and is not a zombie (an unreaped child still
# answers kill -0).
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case $st in Z*) return 1 ;; esac
  return 0
}

cleanup() {
  if [ -n "$spid" ] && alive "$spid"; then
    kill -KILL "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_log() {
  echo "---- server log (last 60 lines): ${server[*]}"
  tail -n 60 "$log"
  echo "---- end of server log"
}

"${server[@]}" >"$log" 2>&1 &
spid=$!
echo "run_vs_server: server pid $spid on 127.0.0.1:$port: ${server[*]}"

start_timeout=${TW_INTEROP_START_TIMEOUT:-15}
deadline=$((SECONDS + start_timeout))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  if ! alive "$spid"; then
    wait "$spid"
    echo "run_vs_server: FAIL: server exited with status $? before accepting connections"
    show_log
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "run_vs_server: FAIL: server not accepting on 127.0.0.1:$port after ${start_timeout} s"
    show_log
    exit 1
  fi
  sleep 0.1
done

"${client[@]}"
rc=$?

status=0
if ! alive "$spid"; then
  wait "$spid"
  echo "run_vs_server: FAIL: server died during the client run (exit status $?)"
  spid=
  status=1
fi
[ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null
for _ in $(seq 100); do
  [ -n "$spid" ] || break
  alive "$spid" || break
  sleep 0.1
done
if [ -z "$spid" ]; then
  :
elif alive "$spid"; then
  echo "run_vs_server: FAIL: server still running 10 s after SIGTERM (clean shutdown required)"
  kill -KILL "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  status=1
else
  wait "$spid"
  code=$?
  if [ $code -ne 0 ]; then
    echo "run_vs_server: FAIL: server exited with status $code after SIGTERM (want 0)"
    status=1
  fi
fi
spid=
if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$log"; then
  echo "run_vs_server: FAIL: sanitizer report in the server log:"
  grep -m3 -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY:' "$log"
  status=1
fi

if [ $rc -ne 0 ] || [ $status -ne 0 ]; then
  show_log
fi
[ $rc -ne 0 ] && exit $rc
exit $status
