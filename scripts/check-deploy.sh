#!/usr/bin/env bash
# Checks the files in deploy/ as far as this machine can, without a container
# runtime or a cluster (needs the Debian packages systemd and python3-yaml,
# which scripts/setup.sh installs):
#
#   systemd  `systemd-analyze verify` of deploy/permitd.service (any warning
#            fails), its sandboxing score (`systemd-analyze security`), and
#            TimeoutStopSec above permitd's shutdown grace.
#   YAML     every deploy/**/*.yml|yaml parses; the Kubernetes objects and the
#            Compose file have the shape this project relies on (one
#            replica, a volume claim, non-root and read-only, probes that
#            exist in the image, grace periods, secrets that are defined).
#            `kubectl kustomize` and `docker compose config` also run if
#            those tools happen to be installed (they are not Debian 12
#            packages this project installs).
#   Docker   the build stage of deploy/Dockerfile runs scripts/setup.sh and
#            installs no packages of its own (one install recipe); the
#            runtime stage installs no build packages, and does install
#            every package that owns a shared library of build/permitd and
#            build/permitctl (ldd + dpkg -S), so a new dependency is caught.
#   env      every PERMIT_<FLAG> variable the deploy files set names a flag
#            defined in server/main.cc (permitd ignores unknown variables,
#            so a typo there would be silent).
#
# Exit 0 when every check passes; each failure is printed with what to fix.
set -uo pipefail
cd "$(dirname "$0")/.."

failures=0
ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
note() { printf 'note  %s\n' "$*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- systemd ---------------------------------------------------------------
# `systemd-analyze verify` refuses a unit whose ExecStart= binary does not
# exist, and permitd is installed to /usr/local/bin only on a real server.
# So, unless it is installed here, verify a copy whose ExecStart= points at
# the built binary instead; everything else in the unit is checked as is.
# (verify exits 0 even on unknown keys or bad values, so any output fails.)
unit=deploy/permitd.service
if ! command -v systemd-analyze >/dev/null; then
  bad "systemd-analyze not found (Debian package systemd; scripts/setup.sh installs it)"
else
  installed=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
  mkdir -p "$tmp/unit"
  if [[ -x $installed ]]; then
    cp "$unit" "$tmp/unit/permitd.service"
    how="ExecStart=$installed"
  elif [[ -x build/permitd ]]; then
    sed "s#^ExecStart=$installed#ExecStart=$PWD/build/permitd#" "$unit" >"$tmp/unit/permitd.service"
    how="ExecStart pointed at build/permitd for the check, since $installed is not installed here"
  else
    cp "$unit" "$tmp/unit/permitd.service"
    how="neither $installed nor build/permitd exists: run scripts/setup.sh first"
  fi
  out=$(cd "$tmp/unit" && systemd-analyze verify ./permitd.service 2>&1)
  if [[ -z $out ]]; then
    ok "systemd-analyze verify $unit ($how)"
  else
    bad "systemd-analyze verify $unit ($how):"
    printf '        %s\n' "${out//$'\n'/$'\n'        }"
  fi
  # Exposure 0 (locked down) .. 10 (unprotected); the unit is at 1.5.
  score=$(cd "$tmp/unit" && systemd-analyze security --offline=yes ./permitd.service 2>&1 |
    sed -n 's/.*Overall exposure level for permitd.service: \([0-9.]*\).*/\1/p')
  if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    ok "systemd-analyze security: exposure $score (at most 2.0)"
  else
    bad "systemd-analyze security: exposure '${score:-?}' above 2.0; run 'systemd-analyze security --offline=yes $unit'"
  fi
fi

# --- YAML, Kubernetes, Compose, Dockerfile, environment ---------------------
# Debian's python3 (where python3-yaml is installed), not whatever python3 a
# virtualenv or pyenv puts first on PATH.
py=/usr/bin/python3
[[ -x $py ]] || py=python3
if ! "$py" -c 'import yaml' 2>/dev/null; then
  bad "$py cannot import yaml (Debian package python3-yaml; scripts/setup.sh installs it)"
else
  "$py" - "$tmp" <<'PY'
import glob, os, re, subprocess, sys

failures = 0
def ok(m): print("ok    " + m)
def bad(m):
    global failures
    failures += 1
    print("FAIL  " + m)
def note(m): print("note  " + m)

import yaml

# permitd's shutdown grace (server/server.h), which every stop timeout must exceed.
grace = None
m = re.search(r"shutdown_grace\s*=\s*absl::Seconds\((\d+)\)", open("server/server.h").read())
if m:
    grace = int(m.group(1))
else:
    note("shutdown_grace not found in server/server.h; stop timeouts not compared with it")

def seconds(v):
    """'30s', '1m30s', 30 -> seconds."""
    if isinstance(v, (int, float)):
        return v
    total, n = 0, 0
    for num, unit in re.findall(r"(\d+)(ms|s|m|h)?", str(v)):
        total += int(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}[unit]
        n += 1
    return total if n else None

def grace_ok(what, value):
    if grace is None:
        return
    s = seconds(value)
    if s is not None and s > grace:
        ok(f"{what} = {value} exceeds permitd's {grace} s shutdown grace")
    else:
        bad(f"{what} = {value} must exceed permitd's {grace} s shutdown grace")

# systemd TimeoutStopSec (the unit was verified above).
unit = open("deploy/permitd.service").read()
m = re.search(r"^TimeoutStopSec=(\S+)", unit, re.M)
grace_ok("permitd.service TimeoutStopSec", m.group(1) if m else "unset (90s default)")
if not re.search(r"^ExecReload=.*kill -HUP \$MAINPID", unit, re.M):
    bad("permitd.service: ExecReload= should send SIGHUP (kill -HUP $MAINPID): it reloads the principals")

# Every YAML file parses.
docs = {}
for path in sorted(glob.glob("deploy/**/*.y*ml", recursive=True)):
    try:
        with open(path) as f:
            docs[path] = [d for d in yaml.safe_load_all(f) if d is not None]
        ok(f"{path} parses ({len(docs[path])} document(s))")
    except yaml.YAMLError as e:
        bad(f"{path} does not parse: {' '.join(str(e).split())}")
if not docs:
    bad("no YAML files under deploy/")

# --- the Dockerfile ---
def instructions(path):
    """(KEYWORD, arguments) per instruction; continuations joined, comments dropped."""
    out, cur = [], ""
    for line in open(path):
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        kw, _, rest = cur.partition(" ")
        out.append((kw.upper(), rest.strip()))
        cur = ""
    return out

dockerfile = "deploy/Dockerfile"
ins = instructions(dockerfile)
stages, cur = [], None
for kw, rest in ins:
    if kw == "FROM":
        cur = {"from": rest, "ins": []}
        stages.append(cur)
    elif cur is not None:
        cur["ins"].append((kw, rest))
if len(stages) < 2:
    bad(f"{dockerfile}: expected a build stage and a runtime stage, found {len(stages)} FROM")
else:
    build, runtime = stages[0], stages[-1]
    for st in (build, runtime):
        if not st["from"].split()[0] == "debian:bookworm-slim":
            bad(f"{dockerfile}: FROM {st['from']}: expected debian:bookworm-slim")
    runs = [r for k, r in build["ins"] if k == "RUN"]
    if any(re.search(r"(^|[\s;&|])scripts/setup\.sh\b", r) for r in runs):
        ok(f"{dockerfile}: build stage runs scripts/setup.sh")
    else:
        bad(f"{dockerfile}: the build stage must RUN scripts/setup.sh (the one install recipe)")
    own = [r for r in runs if re.search(r"\b(apt-get|apt|aptitude|dpkg)\s+(-\S+\s+)*(install|-i)\b", r)]
    if own:
        bad(f"{dockerfile}: the build stage installs packages itself ({own[0][:80]}...); add them to scripts/setup.sh instead")
    else:
        ok(f"{dockerfile}: build stage installs no packages of its own")

    # Runtime packages: the words after `apt-get install` up to the next `&&`.
    rt = set()
    for k, r in runtime["ins"]:
        if k != "RUN":
            continue
        for seg in re.findall(r"apt-get\s+install\s+([^&;|]*)", r):
            rt |= {w for w in seg.split() if not w.startswith("-")}
    buildish = sorted(p for p in rt if p.endswith("-dev") or p in {
        "build-essential", "cmake", "pkg-config", "gcc", "g++", "make",
        "protobuf-compiler", "protobuf-compiler-grpc", "libgtest-dev", "libgmock-dev"})
    if buildish:
        bad(f"{dockerfile}: runtime stage installs build packages: {' '.join(buildish)}")
    else:
        ok(f"{dockerfile}: runtime stage installs {len(rt)} runtime packages, no build packages")

    # ... and every package that owns a shared library of the binaries.
    bins = [b for b in ("build/permitd", "build/permitctl") if os.access(b, os.X_OK)]
    if len(bins) < 2:
        bad("build/permitd or build/permitctl missing: run scripts/setup.sh, then check again "
            "(the runtime packages are compared with their ldd)")
    else:
        libs = set()
        for b in bins:
            out = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
            libs |= set(re.findall(r"=>\s+(/\S+)", out))
        # One dpkg -S for all (it is slow per call): by the resolved path,
        # then by the path as linked (usrmerge: /lib vs /usr/lib).
        owner = {}
        def dpkg_s(paths):
            r = subprocess.run(["dpkg", "-S", *sorted(paths)], capture_output=True, text=True)
            for l in r.stdout.splitlines():
                if l.startswith("diversion"):
                    continue
                pkgs, _, path = l.partition(": ")
                owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
        real = {lib: os.path.realpath(lib) for lib in libs}
        dpkg_s(set(real.values()))
        rest = {lib for lib in libs if real[lib] not in owner}
        if rest:
            dpkg_s(rest)
        needed, unknown = {}, []
        for lib in sorted(libs):
            pkg = owner.get(real[lib]) or owner.get(lib)
            if pkg:
                needed.setdefault(pkg, set()).add(os.path.basename(lib))
            else:
                unknown.append(lib)
        missing = sorted(set(needed) - rt)
        if missing:
            bad(f"{dockerfile}: runtime stage lacks packages the binaries link: " + "; ".join(
                f"{p} ({', '.join(sorted(needed[p]))})" for p in missing))
        else:
            ok(f"{dockerfile}: runtime packages cover all {len(needed)} packages "
               f"owning the shared libraries of permitd and permitctl")
        if unknown:
            bad(f"libraries owned by no Debian package (not installable in the image): {' '.join(unknown)}")
        extra = sorted(rt - set(needed))
        if extra:
            note(f"{dockerfile}: runtime packages not linked by the binaries: {' '.join(extra)}")

    rk = {k: [r for kk, r in runtime["ins"] if kk == k] for k in
          ("USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "COPY", "ENV")}
    user = rk["USER"][-1] if rk["USER"] else ""
    uid = user.split(":")[0]
    if uid.isdigit() and int(uid) != 0:
        ok(f"{dockerfile}: runs as uid {uid}")
    else:
        bad(f"{dockerfile}: the runtime stage must end with a numeric non-root USER (got '{user}')")
    if not any("/var/lib/permit" in v for v in rk["VOLUME"]):
        bad(f"{dockerfile}: no VOLUME /var/lib/permit")
    exposed = set(" ".join(rk["EXPOSE"]).split())
    if not {"7443", "9464"} <= exposed:
        bad(f"{dockerfile}: EXPOSE 7443 and 9464 (got {' '.join(sorted(exposed)) or 'none'})")
    if not any("permit-healthcheck" in h for h in rk["HEALTHCHECK"]):
        bad(f"{dockerfile}: HEALTHCHECK should run permit-healthcheck")
    if not any("deploy/permit-healthcheck" in c for c in rk["COPY"]):
        bad(f"{dockerfile}: permit-healthcheck is not copied into the image")
    hc = "deploy/permit-healthcheck"
    if not os.access(hc, os.X_OK):
        bad(f"{hc} is not executable (COPY keeps the mode)")
    elif subprocess.run(["sh", "-n", hc]).returncode != 0:
        bad(f"{hc}: sh -n reports a syntax error")
    else:
        ok(f"{hc} is executable and parses")

# --- Kubernetes ---
k8s = {p: d for p, d in docs.items() if p.startswith("deploy/k8s/")}
objs = []
for path, ds in k8s.items():
    for d in ds:
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") or \
                (d.get("kind") != "Kustomization" and not (d.get("metadata") or {}).get("name")):
            bad(f"{path}: a document without apiVersion, kind and metadata.name")
            continue
        objs.append((path, d))
kinds = {}
for path, d in objs:
    kinds.setdefault(d["kind"], []).append((path, d))
for want in ("StatefulSet", "Service", "Secret", "Kustomization"):
    if want not in kinds:
        bad(f"deploy/k8s: no {want}")
for path, kz in kinds.get("Kustomization", []):
    base = os.path.dirname(path)
    for r in kz.get("resources", []):
        if not os.path.exists(os.path.join(base, r)):
            bad(f"{path}: resource {r} does not exist")
    if any(k == "Secret" for r in kz.get("resources", [])
           for k in [d.get("kind") for d in docs.get(os.path.join(base, r), [])]):
        bad(f"{path}: lists a Secret template; applying it would overwrite the real secrets")
secret_names = {d["metadata"]["name"] for _, d in kinds.get("Secret", [])}
docker_uid = None
try:
    docker_uid = int(user.split(":")[0])
except Exception:
    pass
for path, ss in kinds.get("StatefulSet", []):
    spec = ss.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    psc = pod.get("securityContext", {})
    where = f"{path} ({ss['metadata']['name']})"
    before = failures
    if spec.get("replicas") != 1:
        bad(f"{where}: replicas must be 1 (single writer of the log), got {spec.get('replicas')}")
    if not spec.get("volumeClaimTemplates"):
        bad(f"{where}: no volumeClaimTemplates: the log needs a persistent volume")
    if psc.get("runAsNonRoot") is not True or not psc.get("fsGroup"):
        bad(f"{where}: pod securityContext needs runAsNonRoot: true and fsGroup")
    if docker_uid is not None and (psc.get("runAsUser") != docker_uid or psc.get("fsGroup") != docker_uid):
        bad(f"{where}: runAsUser/fsGroup {psc.get('runAsUser')}/{psc.get('fsGroup')} "
            f"differ from the image's uid {docker_uid}")
    if "terminationGracePeriodSeconds" in pod:
        grace_ok(f"{path} terminationGracePeriodSeconds", pod["terminationGracePeriodSeconds"])
    for v in pod.get("volumes", []):
        sn = (v.get("secret") or {}).get("secretName")
        if sn and sn not in secret_names:
            bad(f"{where}: volume {v['name']} uses Secret {sn}, which deploy/k8s does not describe")
    for c in pod.get("containers", []):
        csc = c.get("securityContext", {})
        if csc.get("readOnlyRootFilesystem") is not True or csc.get("allowPrivilegeEscalation") is not False:
            bad(f"{where}: container {c['name']}: readOnlyRootFilesystem: true and "
                f"allowPrivilegeEscalation: false expected")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe)
            if not p:
                bad(f"{where}: container {c['name']} has no {probe}")
                continue
            cmd = (p.get("exec") or {}).get("command") or []
            if cmd and cmd[0] != "/usr/local/bin/permit-healthcheck":
                bad(f"{where}: {probe} runs {cmd[0]}, which the image does not have")
        if not (c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits")):
            bad(f"{where}: container {c['name']} needs resource requests and limits")
    if failures == before:
        ok(f"{where}: replicas 1, volume claim, non-root read-only, probes, resources, grace")

# --- Compose ---
for path in ("deploy/docker-compose.yml",):
    if path not in docs or not docs[path]:
        bad(f"{path} missing or empty")
        continue
    c = docs[path][0]
    before = failures
    svc = (c.get("services") or {}).get("permitd")
    if not svc:
        bad(f"{path}: no service permitd")
        continue
    b = svc.get("build") or {}
    ctx = os.path.normpath(os.path.join(os.path.dirname(path), b.get("context", ".")))
    if not os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
        bad(f"{path}: build.dockerfile {b.get('dockerfile')} not found in context {ctx}")
    for s in svc.get("secrets", []):
        name = s if isinstance(s, str) else s.get("source")
        if name not in (c.get("secrets") or {}):
            bad(f"{path}: secret {name} is used but not defined")
    for v in svc.get("volumes", []):
        src = (v.split(":")[0] if isinstance(v, str) else v.get("source"))
        if src and not src.startswith((".", "/")) and src not in (c.get("volumes") or {}):
            bad(f"{path}: named volume {src} is used but not defined")
    if not any(str(v).endswith(":/var/lib/permit") or (isinstance(v, dict) and v.get("target") == "/var/lib/permit")
               for v in svc.get("volumes", [])):
        bad(f"{path}: /var/lib/permit is not on a volume")
    if "stop_grace_period" in svc:
        grace_ok(f"{path} stop_grace_period", svc["stop_grace_period"])
    if failures == before:
        ok(f"{path}: build context and Dockerfile, secrets, volume, grace")

# --- PERMIT_<FLAG> names ---
# permitd reads PERMIT_<FLAG> only for flags defined in server/main.cc.
flags = set(re.findall(r"ABSL_FLAG\(\s*[^,]+,\s*(\w+)\s*,", open("server/main.cc").read()))
not_permitd = {"PERMIT_HEALTH_CA",   # deploy/permit-healthcheck
               "PERMIT_SECRETS",     # docker-compose.yml: where the secret files are
               # permitctl's own (PERMIT_INSECURE is both permitd's and permitctl's)
               "PERMIT_SERVER", "PERMIT_TOKEN", "PERMIT_LOG_KEY", "PERMIT_CA",
               "PERMIT_CERT", "PERMIT_KEY"}
used = {}
for path in sorted(set(glob.glob("deploy/**/*", recursive=True))):
    if os.path.isfile(path) and not path.startswith("deploy/secrets/") and not path.endswith(".md"):
        for line in open(path, errors="replace"):
            for var in re.findall(r"\bPERMIT_[A-Z0-9_]+\b", line):
                used.setdefault(var, set()).add(path)
unknown = {v: p for v, p in used.items()
           if v not in not_permitd and v[len("PERMIT_"):].lower() not in flags}
if unknown:
    for v, p in sorted(unknown.items()):
        bad(f"{v} (in {', '.join(sorted(p))}) names no flag of server/main.cc "
            f"(--{v[len('PERMIT_'):].lower()}); permitd would ignore it")
else:
    ok(f"all {len(used)} PERMIT_* variables in deploy/ name permitd flags (or are documented non-flags)")

sys.exit(1 if failures else 0)
PY
  [[ $? -eq 0 ]] || failures=$((failures + 1))
fi

# --- optional tools, when present ----------------------------------------------
if command -v kubectl >/dev/null; then
  if out=$(kubectl kustomize deploy/k8s 2>&1 >/dev/null); then
    ok "kubectl kustomize deploy/k8s builds"
  else
    bad "kubectl kustomize deploy/k8s: $out"
  fi
else
  note "kubectl not installed: kustomization not built"
fi
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
fi
if ((${#compose[@]})); then
  if out=$(PERMIT_LOG_ORIGIN=check.invalid/log "${compose[@]}" -f deploy/docker-compose.yml config -q 2>&1); then
    ok "${compose[*]} config accepts deploy/docker-compose.yml"
  else
    bad "${compose[*]} config: $out"
  fi
else
  note "neither 'docker compose' nor docker-compose installed: compose schema not checked"
fi

if ((failures)); then
  echo "check-deploy: FAILED (the FAIL lines above say what to fix)" >&2
  exit 1
fi
echo "check-deploy: all checks passed"
