#!/usr/bin/env bash
# End-to-end walkthrough: the README's tour of permit, driven through the real
# permitd and permitctl binaries as separate processes, asserting outputs and
# exit codes. Run by ctest (test e2e_walkthrough) as
#
#   bash walkthrough_test.sh PERMITD PERMITCTL EXAMPLES_DIR
#
# It starts `permitd --dev` on a free loopback port with a fresh data folder,
# files a case as exp-acme, takes it through review, approval (four-eyes),
# suspension and resumption, checks what other principals may and may not do,
# reads the history and the audit log, takes a second case to rejection and a
# third to withdrawal, passes global flags after the subcommand, follows the
# log with `audit tail` while a fourth case is filed, revokes the first
# licence, then restarts permitd on the same data folder and checks that the
# log and the cases survived.
#
# With WALKTHROUGH_TRANSCRIPT=FILE set, every permitctl command and its output
# is also written to FILE, in the form the README shows.
#
# Needs bash, python3 and GNU date. Prints `walkthrough: N passed, 0 failed`
# and exits 0 on success; on the first failed check it prints what was run,
# its exit code and output, and the end of permitd's log, and exits 1.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: bash $0 PERMITD PERMITCTL EXAMPLES_DIR" >&2
  exit 2
fi
PERMITD=$(realpath "$1")
PERMITCTL=$(realpath "$2")
EXAMPLES=$(realpath "$3")
for f in "$PERMITD" "$PERMITCTL"; do
  [[ -x "$f" ]] || { echo "walkthrough: $f is not an executable" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "walkthrough: python3 is required" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/permit-walkthrough.XXXXXX")
DATA="$WORK/data"
TRANSCRIPT=${WALKTHROUGH_TRANSCRIPT:-}
PERMITD_PID=""
TAIL_PID=""
PASSED=0

# Stops permitd if it still runs (SIGTERM, then SIGKILL after 10 s) and
# removes the scratch folder. Runs on every exit.
cleanup() {
  local rc=$?
  if [[ -n "$TAIL_PID" ]]; then
    kill "$TAIL_PID" 2>/dev/null || true
    wait "$TAIL_PID" 2>/dev/null || true
  fi
  if [[ -n "$PERMITD_PID" ]] && kill -0 "$PERMITD_PID" 2>/dev/null; then
    kill -TERM "$PERMITD_PID" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$PERMITD_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$PERMITD_PID" 2>/dev/null || true
    wait "$PERMITD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Reporting -------------------------------------------------------------

LAST_CMD=""
LAST_RC=""

# fail MESSAGE: reports the failed check with the last command's exit code and
# output and the end of permitd's log, then stops the test.
fail() {
  {
    echo "FAIL: $*"
    if [[ -n "$LAST_CMD" ]]; then
      echo "  last command: $LAST_CMD"
      echo "  exit code:    $LAST_RC"
      echo "  --- stdout"
      sed 's/^/  | /' "$WORK/out" 2>/dev/null || true
      echo "  --- stderr"
      sed 's/^/  | /' "$WORK/err" 2>/dev/null || true
    fi
    echo "  --- permitd log (last 20 lines)"
    tail -n 20 "$WORK/permitd.err" 2>/dev/null | sed 's/^/  | /' || true
    echo "walkthrough: $PASSED passed, 1 failed"
  } >&2
  exit 1
}

pass() { PASSED=$((PASSED + 1)); }

# --- Running permitctl -----------------------------------------------------

# Quotes an argument for the transcript only where a shell would need it.
show_arg() {
  local a=${1//"$EXAMPLES"/examples}
  a=${a//"$WORK/"/}
  if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$a"
  else
    printf '"%s"' "$a"
  fi
}

TRANSCRIPT_AS=""
# ctl PRINCIPAL ARGS...: runs permitctl as the dev principal PRINCIPAL.
ctl() {
  local who=$1
  shift
  if [[ -n "$TRANSCRIPT" ]]; then
    if [[ "$who" != "$TRANSCRIPT_AS" ]]; then
      # shellcheck disable=SC2016  # the $(...) is text for the reader
      printf '\n$ export PERMIT_TOKEN=$(cat data/dev/%s.token)\n' "$who" >>"$TRANSCRIPT"
      TRANSCRIPT_AS=$who
    fi
    {
      printf '$ permitctl'
      local a
      for a in "$@"; do printf ' %s' "$(show_arg "$a")"; done
      printf '\n'
    } >>"$TRANSCRIPT"
  fi
  local token
  token=$(cat "$DATA/dev/$who.token")
  PERMIT_SERVER="127.0.0.1:$PORT" PERMIT_CA="$DATA/dev/ca.pem" PERMIT_TOKEN="$token" \
    "$PERMITCTL" "$@"
}

# expect_exit CODE CMD...: runs CMD with stdout in $WORK/out and stderr in
# $WORK/err, and fails unless it exits with CODE.
expect_exit() {
  local want=$1
  shift
  LAST_CMD="$*"
  LAST_RC=0
  "$@" >"$WORK/out" 2>"$WORK/err" || LAST_RC=$?
  if [[ -n "$TRANSCRIPT" ]]; then
    cat "$WORK/out" "$WORK/err" | sed "s|$WORK/||g" >>"$TRANSCRIPT"
    [[ "$LAST_RC" == 0 ]] || echo "(exit $LAST_RC)" >>"$TRANSCRIPT"
  fi
  [[ "$LAST_RC" == "$want" ]] || fail "expected exit code $want, got $LAST_RC"
  pass
}

# out_has TEXT / err_has TEXT: the last command's stdout / stderr contains
# TEXT (a fixed string).
out_has() { grep -qF -- "$1" "$WORK/out" || fail "stdout lacks: $1"; pass; }
err_has() { grep -qF -- "$1" "$WORK/err" || fail "stderr lacks: $1"; pass; }
# out_line REGEX: some line of the last stdout matches the extended REGEX.
out_line() { grep -qE -- "$1" "$WORK/out" || fail "no stdout line matches: $1"; pass; }
out_lacks() { ! grep -qF -- "$1" "$WORK/out" || fail "stdout should not contain: $1"; pass; }

# py CODE: runs Python CODE on the last stdout (as sys.stdin); CODE asserts
# and prints a value, which py prints.
py() {
  python3 -c "$1" <"$WORK/out" || fail "python check failed: $1"
}

# --- permitd ---------------------------------------------------------------

free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# start_permitd: starts permitd --dev on a fresh free port with $DATA and
# waits (at most 60 s) until aud-1 can read the log head.
start_permitd() {
  PORT=$(free_port)
  "$PERMITD" --dev --listen "127.0.0.1:$PORT" --data "$DATA" \
    >"$WORK/permitd.out" 2>>"$WORK/permitd.err" &
  PERMITD_PID=$!
  local deadline=$((SECONDS + 60))
  LAST_CMD=""
  while :; do
    kill -0 "$PERMITD_PID" 2>/dev/null || fail "permitd exited during start-up"
    if [[ -f "$DATA/dev/aud-1.token" ]] &&
       PERMIT_SERVER="127.0.0.1:$PORT" PERMIT_TOKEN="$(cat "$DATA/dev/aud-1.token")" \
         PERMIT_CA="$DATA/dev/ca.pem" "$PERMITCTL" --timeout 2 audit head >/dev/null 2>&1; then
      break
    fi
    ((SECONDS < deadline)) || fail "permitd did not accept calls within 60 s"
    sleep 0.2
  done
  pass
}

# stop_permitd: SIGTERM, then expects a clean exit 0 within 30 s.
stop_permitd() {
  kill -TERM "$PERMITD_PID"
  local deadline=$((SECONDS + 30))
  while kill -0 "$PERMITD_PID" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "permitd did not stop within 30 s of SIGTERM"
    sleep 0.1
  done
  local rc=0
  wait "$PERMITD_PID" || rc=$?
  PERMITD_PID=""
  LAST_CMD=""
  [[ "$rc" == 0 ]] || fail "permitd exited with $rc after SIGTERM, expected 0"
  pass
  grep -qF "the audit log is closed" "$WORK/permitd.err" ||
    fail "permitd did not report closing the audit log"
  pass
}

# --- The walkthrough -------------------------------------------------------

VALID_UNTIL=$(date -u -d '+1 year' +%F)
[[ -n "$TRANSCRIPT" ]] && : >"$TRANSCRIPT"

# permitd refuses to start, saying why, when it is misconfigured (each of
# these exits before it opens the data folder or listens).
BAD="$WORK/bad-start"
expect_exit 1 "$PERMITD" --dev --listen 0.0.0.0:1 --data "$BAD"
err_has "loopback only"
expect_exit 1 "$PERMITD" --dev --principals /nonexistent --data "$BAD"
err_has "drop --principals"
expect_exit 1 "$PERMITD" --listen 127.0.0.1:1 --data "$BAD"
err_has "no principals"
printf '{"principals": [{"id": "a", "role": "auditor", "token_sha256": "%064d"}]}' 0 \
  >"$WORK/p.json"
expect_exit 1 "$PERMITD" --listen 127.0.0.1:1 --data "$BAD" --principals "$WORK/p.json"
err_has "no log signing key"
expect_exit 1 "$PERMITD" --listen 127.0.0.1:1 --data "$BAD" --principals "$WORK/p.json" \
  --signing_key "$WORK/p.json"
err_has "no log origin"
expect_exit 1 env PERMIT_DEV=maybe "$PERMITD"
err_has "PERMIT_DEV=maybe"
# --help groups every permitd flag by topic with its default and variable.
expect_exit 0 "$PERMITD" --help
out_has "Identity and transport security:"
out_has "--rate_limit  (default 200; env PERMIT_RATE_LIMIT)"
out_lacks "Other:"
# Plaintext beyond loopback is refused unless --insecure says so; half a TLS
# configuration is refused.
expect_exit 1 "$PERMITD" --listen 0.0.0.0:1 --data "$BAD" --principals "$WORK/p.json"
err_has "refusing to serve plaintext on 0.0.0.0:1"
expect_exit 1 "$PERMITD" --listen 127.0.0.1:1 --data "$BAD" --principals "$WORK/p.json" \
  --tls_cert "$WORK/p.json"
err_has "TLS needs both --tls_cert and --tls_key"
expect_exit 1 "$PERMITD" --listen 127.0.0.1:1 --data "$BAD" --principals "$WORK/p.json" \
  --signing_key "$WORK/p.json" --log_origin test.invalid/log \
  --tls_cert "$WORK/p.json" --tls_key "$WORK/p.json"
err_has "p.json: no PEM certificate"

start_permitd
grep -qF "0 events in the audit log" "$WORK/permitd.err" ||
  fail "a fresh permitd should report an empty audit log"
pass
grep -qF "(TLS;" "$WORK/permitd.err" || fail "permitd --dev should serve TLS"
pass
grep -qF "export PERMIT_CA=$(realpath "$DATA")/dev/ca.pem" "$WORK/permitd.out" ||
  fail "permitd --dev should print export PERMIT_CA=<its dev CA>"
pass

# TLS by default: the health check passes with the dev CA; a client that
# does not trust the dev CA, or speaks plaintext, gets nowhere (exit 1, with
# a hint).
expect_exit 0 env PERMIT_SERVER="127.0.0.1:$PORT" PERMIT_CA="$DATA/dev/ca.pem" \
  "$PERMITCTL" health
out_has "SERVING"
expect_exit 1 env -u PERMIT_CA PERMIT_SERVER="127.0.0.1:$PORT" \
  PERMIT_TOKEN="$(cat "$DATA/dev/aud-1.token")" "$PERMITCTL" --timeout 2 audit head
err_has "UNAVAILABLE"
err_has "--ca FILE"
expect_exit 1 env -u PERMIT_CA PERMIT_SERVER="127.0.0.1:$PORT" \
  PERMIT_TOKEN="$(cat "$DATA/dev/aud-1.token")" "$PERMITCTL" --timeout 2 --insecure audit head
err_has "UNAVAILABLE"
expect_exit 2 env PERMIT_CA="$DATA/dev/ca.pem" "$PERMITCTL" --insecure health
err_has "--insecure (plaintext) contradicts --ca"

# An empty log: size 0, root = SHA-256 of the empty string.
expect_exit 0 ctl aud-1 audit head
out_line '^events +0$'
out_line '^root \(sha256\) +e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$'

# exp-acme files a case; the id comes from the JSON output.
expect_exit 0 ctl exp-acme -o json case submit -f "$EXAMPLES/magnets-to-japan.json"
CASE_ID=$(py 'import json,sys
c = json.load(sys.stdin)
assert c["state"] == "CASE_STATE_SUBMITTED", c["state"]
assert c["version"] == "1", c["version"]
assert c["organisation"] == "acme" and c["submittedBy"] == "exp-acme"
assert c["lastSequence"] == "1"
print(c["id"])')
[[ "$CASE_ID" =~ ^PRM-[0-9]{4}-[0-9]{6}$ ]] || fail "unexpected case id '$CASE_ID'"
pass

expect_exit 0 ctl exp-acme case get "$CASE_ID"
out_line "^case +$CASE_ID\$"
out_line '^state +submitted$'
out_line '^version +1$'

# An application with mistakes is refused, every bad field named.
expect_exit 1 ctl exp-acme case submit -f "$EXAMPLES/application-with-mistakes.json"
err_has "INVALID_ARGUMENT"
err_has "application.goods[0].hs_code"
err_has "application.destination_country"
err_has "application.end_user.country"

# rev-1 reviews.
expect_exit 0 ctl rev-1 case review "$CASE_ID" --recommend approve \
  --findings "End user and end use verified; goods match 1C003"
out_line '^state +reviewed$'
out_line '^version +2$'
out_line '^reviewed by +rev-1: recommends approve; '

# Four-eyes: the reviewer of record may not approve.
expect_exit 1 ctl rev-1 case approve "$CASE_ID" --valid-until "$VALID_UNTIL"
err_has "PERMISSION_DENIED"
err_has "four-eyes"

# rev-2 approves.
expect_exit 0 ctl rev-2 case approve "$CASE_ID" --valid-until "$VALID_UNTIL"
out_line '^state +approved$'
out_line '^version +3$'
out_line '^decided by +rev-2$'
out_line "^valid +.* to ${VALID_UNTIL}T23:59:59Z\$"

# rev-2 suspends, rev-1 resumes: back to approved.
expect_exit 0 ctl rev-2 case suspend "$CASE_ID" --reason "Consignee under investigation"
out_line '^state +suspended \(from approved\)$'
out_line '^version +4$'
expect_exit 0 ctl rev-1 case resume "$CASE_ID" --reason "Consignee cleared"
out_line '^state +approved$'
out_line '^version +5$'
out_line '^last reason +Consignee cleared$'

# Another organisation's exporter cannot see the case at all.
expect_exit 1 ctl exp-globex case get "$CASE_ID"
err_has "NOT_FOUND"
expect_exit 0 ctl exp-globex case list
out_lacks "$CASE_ID"

# The auditor reads but cannot act.
expect_exit 1 ctl aud-1 case approve "$CASE_ID" --valid-until "$VALID_UNTIL"
err_has "PERMISSION_DENIED"

# Refused attempts are on record for auditors (outside the audit log), the
# newest first; others may not read the record.
expect_exit 0 ctl aud-1 audit denials --case "$CASE_ID" --limit 2
out_line "^ +[0-9]+  .* aud-1 +ApproveCase +$CASE_ID +PERMISSION_DENIED "
out_line "^ +[0-9]+  .* exp-globex +GetCase +$CASE_ID +NOT_FOUND "
out_line '^refused since start: [0-9]+ \(.*PERMISSION_DENIED [0-9]+'
expect_exit 0 ctl aud-1 -o json audit denials --code NOT_FOUND
py "import json,sys
d = json.load(sys.stdin)['denials']
assert d and all(x['code'] == 'NOT_FOUND' for x in d), d"
expect_exit 1 ctl rev-1 audit denials
err_has "for auditors"

# The exporter's view of the history: all five events, oldest first.
expect_exit 0 ctl exp-acme case history "$CASE_ID"
[[ "$(awk 'NR > 1 { printf "%s ", $5 }' "$WORK/out")" == \
   "submit review approve suspend resume " ]] || fail "history actions out of order"
pass

# The auditor's replay of the whole log: five events, in order, by whom.
expect_exit 0 ctl aud-1 audit replay
[[ "$(awk 'NR > 1 { printf "%s ", $1 }' "$WORK/out")" == "1 2 3 4 5 " ]] ||
  fail "replay should list sequences 1 to 5"
pass
[[ "$(awk 'NR > 1 { printf "%s ", $5 }' "$WORK/out")" == \
   "submit review approve suspend resume " ]] || fail "replay actions out of order"
pass
[[ "$(awk 'NR > 1 { printf "%s ", $6 }' "$WORK/out")" == \
   "exp-acme rev-1 rev-2 rev-2 rev-1 " ]] || fail "replay actors wrong"
pass

# JSON output parses: one event per line for replay, one object for history.
expect_exit 0 ctl aud-1 -o json audit replay
py 'import json,sys
events = [json.loads(line) for line in sys.stdin if line.strip()]
assert [e["sequence"] for e in events] == ["1", "2", "3", "4", "5"], events
assert [e["action"] for e in events] == ["ACTION_SUBMIT", "ACTION_REVIEW",
    "ACTION_APPROVE", "ACTION_SUSPEND", "ACTION_RESUME"]
assert [e["actor"]["principalId"] for e in events] == ["exp-acme", "rev-1",
    "rev-2", "rev-2", "rev-1"]
assert events[4]["toState"] == "CASE_STATE_APPROVED"'
pass
expect_exit 0 ctl exp-acme -o json case history "$CASE_ID"
py 'import json,sys
h = json.load(sys.stdin)
assert [e["caseVersion"] for e in h["events"]] == ["1", "2", "3", "4", "5"], h'
pass

# A stale expected version is ABORTED and changes nothing.
expect_exit 1 ctl rev-1 case suspend "$CASE_ID" --reason "Late check" --expected-version 1
err_has "ABORTED"

# Usage errors exit 2 before anything is sent.
expect_exit 2 ctl rev-1 case review "$CASE_ID" --findings "No recommendation given"
err_has "--recommend is required"
expect_exit 2 ctl exp-acme case submit -f "$WORK/no-such-file.json"
err_has "cannot read"

# The case is listed under its state.
expect_exit 0 ctl rev-1 case list --state approved
out_line "^$CASE_ID +approved +5 +acme +JP "
expect_exit 0 ctl rev-1 case list --state suspended
out_lacks "$CASE_ID"

# A second case: rev-1 recommends rejection, rev-2 rejects. Rejected is
# final: the exporter can no longer withdraw it.
expect_exit 0 ctl exp-acme -o json case submit -f "$EXAMPLES/magnets-to-japan.json"
CASE2_ID=$(py 'import json,sys; print(json.load(sys.stdin)["id"])')
[[ "$CASE2_ID" =~ ^PRM-[0-9]{4}-[0-9]{6}$ && "$CASE2_ID" != "$CASE_ID" ]] ||
  fail "unexpected second case id '$CASE2_ID'"
pass
expect_exit 0 ctl rev-1 case review "$CASE2_ID" --recommend reject \
  --findings "End user linked to a restricted military programme"
out_line '^state +reviewed$'
out_line '^reviewed by +rev-1: recommends reject; '
expect_exit 0 ctl rev-2 case reject "$CASE2_ID" --reason "End user on a restricted list"
out_line '^state +rejected$'
out_line '^version +3$'
out_line '^decided by +rev-2$'
expect_exit 1 ctl exp-acme case withdraw "$CASE2_ID"
err_has "FAILED_PRECONDITION"
expect_exit 0 ctl exp-acme case get "$CASE2_ID"
out_line '^state +rejected$'
out_line '^version +3$'

# A third case, withdrawn by the exporter before review.
expect_exit 0 ctl exp-acme -o json case submit -f "$EXAMPLES/magnets-to-japan.json"
CASE3_ID=$(py 'import json,sys; print(json.load(sys.stdin)["id"])')
[[ "$CASE3_ID" =~ ^PRM-[0-9]{4}-[0-9]{6}$ && "$CASE3_ID" != "$CASE2_ID" ]] ||
  fail "unexpected third case id '$CASE3_ID'"
pass
expect_exit 0 ctl exp-acme case withdraw "$CASE3_ID"
out_line '^state +withdrawn$'
out_line '^version +2$'

# Global flags may follow the subcommand: no PERMIT_SERVER or PERMIT_TOKEN in
# the environment, so the call only works if --server, --token and -o are
# taken from after `case get ID`.
expect_exit 0 env -u PERMIT_SERVER -u PERMIT_TOKEN -u PERMIT_CA "$PERMITCTL" case get "$CASE_ID" \
  --server "127.0.0.1:$PORT" --token "$(cat "$DATA/dev/exp-acme.token")" -o json \
  --ca "$DATA/dev/ca.pem"
py "import json,sys
c = json.load(sys.stdin)
assert c['id'] == '$CASE_ID', c['id']
assert c['state'] == 'CASE_STATE_APPROVED', c['state']
assert c['version'] == '5', c['version']"
pass

# audit tail follows the log live: started before a fourth case is filed, it
# prints that case's submit as it commits, and nothing from before it started.
TAIL_OUT="$WORK/tail.out"
: >"$TAIL_OUT"
PERMIT_SERVER="127.0.0.1:$PORT" PERMIT_TOKEN="$(cat "$DATA/dev/aud-1.token")" \
  PERMIT_CA="$DATA/dev/ca.pem" "$PERMITCTL" audit tail >"$TAIL_OUT" 2>"$WORK/tail.err" &
TAIL_PID=$!
# The header is printed once the tail has read the head it starts after.
deadline=$((SECONDS + 30))
until grep -q "^ *SEQ " "$TAIL_OUT"; do
  kill -0 "$TAIL_PID" 2>/dev/null ||
    fail "audit tail exited before it started: $(cat "$WORK/tail.err")"
  ((SECONDS < deadline)) || fail "audit tail printed no header within 30 s"
  sleep 0.1
done
pass
expect_exit 0 ctl exp-acme -o json case submit -f "$EXAMPLES/magnets-to-japan.json"
CASE4_ID=$(py 'import json,sys; print(json.load(sys.stdin)["id"])')
deadline=$((SECONDS + 30))
until grep -qE "^ +11 +.* $CASE4_ID +1 +submit +exp-acme " "$TAIL_OUT"; do
  kill -0 "$TAIL_PID" 2>/dev/null ||
    fail "audit tail exited: $(cat "$WORK/tail.err")"
  ((SECONDS < deadline)) ||
    fail "audit tail did not show $CASE4_ID within 30 s; it printed: $(cat "$TAIL_OUT")"
  sleep 0.1
done
pass
kill -0 "$TAIL_PID" 2>/dev/null || fail "audit tail should still be following the log"
pass
kill "$TAIL_PID"
wait "$TAIL_PID" 2>/dev/null || true
TAIL_PID=""
[[ "$(grep -c . "$TAIL_OUT")" == 2 ]] ||
  fail "audit tail should print its header and the one new event: $(cat "$TAIL_OUT")"
pass

# Finally rev-1 revokes the first licence: revoked is final.
expect_exit 0 ctl rev-1 case revoke "$CASE_ID" --reason "End-use assurances breached"
out_line '^state +revoked$'
out_line '^version +6$'
expect_exit 1 ctl rev-2 case resume "$CASE_ID" --reason "Second thoughts"
err_has "FAILED_PRECONDITION"

# The log head before the restart: 5 + 3 + 2 + 1 + 1 events.
expect_exit 0 ctl aud-1 audit head
out_line '^events +12$'
ROOT=$(sed -nE 's/^root \(sha256\) +([0-9a-f]{64})$/\1/p' "$WORK/out")
[[ -n "$ROOT" ]] || fail "no root hash in audit head output"
pass

# Restart on the same data folder: the log and the case survive.
stop_permitd
[[ -n "$TRANSCRIPT" ]] && printf '\n# permitd stopped with SIGTERM and started again on the same data folder\n' >>"$TRANSCRIPT"
TRANSCRIPT_AS=""
start_permitd
grep -qF "12 events in the audit log" "$WORK/permitd.err" ||
  fail "the restarted permitd should report 12 events"
pass
expect_exit 0 ctl aud-1 audit head
out_line '^events +12$'
out_line "^root \\(sha256\\) +$ROOT\$"
expect_exit 0 ctl exp-acme case get "$CASE_ID"
out_line '^state +revoked$'
out_line '^version +6$'
expect_exit 0 ctl exp-acme case get "$CASE2_ID"
out_line '^state +rejected$'
expect_exit 0 ctl exp-acme case get "$CASE3_ID"
out_line '^state +withdrawn$'
expect_exit 0 ctl aud-1 audit replay --from 6
[[ "$(awk 'NR > 1 { printf "%s ", $5 }' "$WORK/out")" == \
   "submit review reject submit withdraw submit revoke " ]] ||
  fail "replay of events 6 to 12 shows the wrong actions"
pass

# Backups: the admin (and only the admin) takes one online; it can do
# nothing else. Two backups with --keep 1 leave one in the folder.
expect_exit 1 ctl adm-1 case get "$CASE_ID"
err_has "admin principals may only take backups"
expect_exit 1 ctl aud-1 admin backup
err_has "PERMISSION_DENIED"
expect_exit 0 ctl adm-1 admin backup
out_line '^backup +1$'
out_line '^events +at least 12$'
expect_exit 0 ctl adm-1 -o json admin backup --keep 1
py "import json,sys
b = json.load(sys.stdin)
assert b['backupId'] == 2 and b['keptBackupIds'] == [2], b"
[[ -d "$DATA/backups" ]] || fail "no backup folder in $DATA/backups"
pass
stop_permitd

# permitd restore puts a backup into a fresh data folder only after it
# verifies; it refuses to overwrite a database, and a damaged backup.
RESTORED="$WORK/restored"
expect_exit 0 "$PERMITD" restore --from "$DATA/backups" --data "$RESTORED"
out_has "OK: restored the newest backup"
out_has "12 events"
out_has "root $ROOT"
expect_exit 0 "$PERMITD" verify --data "$RESTORED"
out_has "root $ROOT"
expect_exit 1 "$PERMITD" restore --from "$DATA/backups" --data "$RESTORED"
err_has "exists: restore into a data folder with no database"
expect_exit 1 "$PERMITD" restore --from "$WORK/no-such-backups" --data "$WORK/r2"
err_has "no backup folder"
DAMAGED="$WORK/damaged-backups"
cp -r "$DATA/backups" "$DAMAGED"
SST=$(find "$DAMAGED" -name '*.sst' | head -n 1)
[[ -n "$SST" ]] || SST=$(find "$DAMAGED" -name '*.log' | head -n 1)
[[ -n "$SST" ]] || fail "no data file in the backup to damage"
printf 'XXXX' | dd of="$SST" bs=1 seek=20 conv=notrunc status=none
expect_exit 1 "$PERMITD" restore --from "$DAMAGED" --data "$WORK/r3"
err_has "is damaged"
[[ ! -e "$WORK/r3/db" ]] || fail "a damaged backup must not be put in place"
pass

echo "walkthrough: $PASSED passed, 0 failed"
