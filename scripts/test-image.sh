#!/usr/bin/env bash
# The image test: builds the Dockerfile with podman on a local Debian base (no registry needed),
# runs it with sign-in through a local OpenID Connect provider (oidc-provider-mock, from
# requirements-dev), waits for its health check, signs in in chromium and labels one image as the
# signed-in account, restarts the container on the same data, signs in again and finds the label
# (on the page, then in the store). Prints the build time, the image size, the health and the label
# found; exits non-zero on any failure.
#   bash scripts/test-image.sh [--fresh]   (as root, with podman, runc, debootstrap, chromium installed)
# --fresh removes the base, the image and its build cache first: a build from zero.
# Everything it makes (podman's storage and settings, the base, the data) lives under
# $SDAUDIT_IMAGE_SCRATCH (default /tmp/sdaudit-image), never in the repository. The base is made once
# and kept there; the test's containers and data are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=${SDAUDIT_IMAGE_SCRATCH:-/tmp/sdaudit-image}
base=localhost/sdaudit-debian-base
image=localhost/sdaudit-test
name=sdaudit-image-test-$$
account=bob  # a rater of the provider's (tests/oidc_sign_in.py); alice is made the admin
python=python3
step() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { echo "image test failed: $*" >&2; exit 1; }

for tool in podman runc debootstrap curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install podman runc debootstrap curl)"
done
[ "$(id -u)" = 0 ] || fail "run it as root (podman builds and runs rootful here)"
"$python" -c 'import oidc_provider_mock, playwright' 2>/dev/null \
  || fail "the sign-in provider or Playwright is missing (pip install -r requirements-dev.txt)"
# the app will serve on the host's network (see "Sign-in" below) at the image's port
"$python" -c 'import socket; socket.create_server(("0.0.0.0", 8501)).close()' 2>/dev/null \
  || fail "port 8501 is in use on this host; the container shares the host's network and serves on 8501"

# podman's own settings, private to this test: runc (crun fails on hybrid cgroups), cgroupfs and a
# file for events (no systemd), and limits runc may set: podman's defaults (over a million open
# files and processes) are above this host's hard limits, which runc cannot raise ("error setting
# rlimit type 7/6: operation not permitted"). The process limit runc's parent has here (32768) is
# below the shell's, so it is set well under both; the app needs few.
mkdir -p "$scratch"
files=$(ulimit -Hn); [ "$files" = unlimited ] && files=1048576
cat >"$scratch/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$files:$files", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$scratch/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$scratch/storage"
runroot = "$scratch/run"
CONF
export CONTAINERS_CONF="$scratch/containers.conf" CONTAINERS_STORAGE_CONF="$scratch/storage.conf"

if [ "${1:-}" = --fresh ]; then
  step "--fresh: removing the base, the image and the build cache"
  podman rmi -f "$image" "$base" >/dev/null 2>&1 || true
  podman image prune -a -f >/dev/null 2>&1 || true
fi

provider_pid=
cleanup() {
  podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
  [ -z "$provider_pid" ] || kill "$provider_pid" 2>/dev/null || true
  rm -rf "$scratch/data-$$"
}
trap cleanup EXIT

# The base: Debian bookworm from the mirror the host's apt uses, with a user `ubuntu` of uid 1000 as
# Ubuntu 24.04 images have (so the build frees that uid here as it must on the CUDA image).
if ! podman image exists "$base"; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -vE '^\s*#' \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ') || true
  mirror=${mirror:-http://deb.debian.org/debian}
  step "making the base: debootstrap bookworm (minbase) from $mirror"
  rm -rf "$scratch/rootfs"
  debootstrap --variant=minbase bookworm "$scratch/rootfs" "$mirror" >"$scratch/debootstrap.log" 2>&1 \
    || fail "debootstrap failed; see $scratch/debootstrap.log"
  chroot "$scratch/rootfs" useradd -m -u 1000 ubuntu
  tar -C "$scratch/rootfs" -c . | podman import - "$base" >/dev/null 2>>"$scratch/podman.log"
  rm -rf "$scratch/rootfs"
fi

# pip in the build uses this host's package configuration (its index, local wheels such as the
# pinned torch, constraints, CA bundle): one pip.conf, mounted read-only with the paths it names.
mapfile -t mounts < <("$python" - "$scratch/pip.conf" <<'PY'
import ast, os, subprocess, sys
lines = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                       check=True).stdout.splitlines()
settings = {}
for line in lines:
    key, _, value = line.partition("=")
    settings[key.rsplit(".", 1)[-1]] = ast.literal_eval(value)
paths = set()
if "cert" in settings:
    print(f"--volume={settings['cert']}:/etc/pip-host-ca.crt:ro")
    settings["cert"] = "/etc/pip-host-ca.crt"
for key in ("find-links", "index-url", "extra-index-url", "constraint", "requirement"):
    for item in settings.get(key, "").split():
        path = item.removeprefix("file://").rstrip("/")
        if path.startswith("/") and os.path.exists(path):
            # a local index's pages link to files beside it (../../files/...): mount its parent
            paths.add(os.path.dirname(path) if key.endswith("index-url") else path)
for path in sorted(paths):
    print(f"--volume={path}:{path}:ro")
with open(sys.argv[1], "w") as conf:
    conf.write("[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))
print(f"--volume={sys.argv[1]}:/etc/pip.conf:ro")
PY
)

step "building $image on $base"
started=$(date +%s)
podman build --format docker --runtime runc --network host --build-arg BASE_IMAGE="$base" \
  "${mounts[@]}" -t "$image" . >"$scratch/build.log" 2>&1 || { tail -n 40 "$scratch/build.log"; fail "build"; }
build_s=$(( $(date +%s) - started ))
size=$(podman image inspect "$image" --format '{{.Size}}')
echo "build time: ${build_s} s"
echo "image size: $(( size / 1000000 )) MB"
# the base had `ubuntu` with uid 1000, as Ubuntu 24.04 images do: the image's uid 1000 is `user`
who=$(podman run --rm --no-healthcheck --network none "$image" sh -c 'echo "$(id -un) $(id -u) $(getent passwd ubuntu || echo no-ubuntu)"' 2>>"$scratch/podman.log")
[ "$who" = "user 1000 no-ubuntu" ] || fail "the image runs as '$who', not as user with uid 1000 alone"
echo "runs as: user (uid 1000; the base's ubuntu user was removed)"

# One image on the data volume, made before the app starts (the app holds the store while it runs):
# the offline demo model, in a one-off container of the image with no network.
data="$scratch/data-$$"
mkdir -p "$data" && chown 1000:1000 "$data"
step "seeding one demo image into the data volume"
podman run --rm --no-healthcheck --network none -e HF_HUB_OFFLINE=1 -v "$data:/home/user/data" "$image" \
  python -m sdaudit generate --model demo --seeds 0-0 --steps 2 --height 64 --width 64 >"$scratch/seed.log" 2>&1 \
  || { cat "$scratch/seed.log"; fail "seeding a demo image"; }

# Sign-in: the provider runs on this host's loopback, and the container shares the host's network
# (--network host), so the app reaches the provider at the same address the browser does (the
# provider's metadata names its pages by the address it was asked at). The app then serves on the
# image's own port, 8501, on this host (checked free at the start).
url=http://127.0.0.1:8501
provider_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
provider=http://127.0.0.1:$provider_port
"$python" scripts/image_label.py provider "$provider_port" >"$scratch/provider.log" 2>&1 &
provider_pid=$!
for _ in $(seq 60); do curl -fsS "$provider/.well-known/openid-configuration" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS "$provider/.well-known/openid-configuration" >/dev/null 2>&1 \
  || { tail -n 20 "$scratch/provider.log"; fail "the sign-in provider did not answer at $provider within 60 s"; }
echo "sign-in provider: oidc-provider-mock at $provider"
healthy() {  # the app answers /_stcore/health within two minutes, and so does the image's HEALTHCHECK
  for _ in $(seq 120); do
    if curl -fsS "$url/_stcore/health" >/dev/null 2>&1; then
      podman healthcheck run "$name" >/dev/null || fail "the image's HEALTHCHECK fails while $url answers"
      echo "health OK ($1): $url/_stcore/health answers and the HEALTHCHECK passes"
      return 0
    fi
    sleep 1
  done
  podman logs "$name" | tail -n 30
  fail "no answer from $url/_stcore/health within 120 s ($1)"
}

step "starting the app"
# No systemd here to time the HEALTHCHECK (podman says so on stderr, kept in podman.log): healthy()
# runs it with `podman healthcheck run`.
podman run -d --name "$name" --network host -v "$data:/home/user/data" \
  -e SDAUDIT_OIDC_CLIENT_ID=sdaudit -e SDAUDIT_OIDC_CLIENT_SECRET=image-test -e SDAUDIT_OIDC_PROVIDER_URL="$provider" \
  -e SDAUDIT_PUBLIC_URL="$url" -e SDAUDIT_ADMINS=alice -e AUTHLIB_INSECURE_TRANSPORT=1 "$image" \
  >/dev/null 2>>"$scratch/podman.log" || { cat "$scratch/podman.log"; fail "starting the container"; }
started=$(date +%s)
healthy "first start"
echo "first start to health: $(( $(date +%s) - started )) s"

labelled=$("$python" scripts/image_label.py label "$url" "$account") || fail "signing in and labelling an image in chromium"
echo "signed in through the provider in chromium as $account (rater) and labelled: image $labelled"
secret_before=$(sha256sum <"$data/sign-in-cookie-secret")

step "restarting the container on the same data"
podman restart -t 10 "$name" >/dev/null 2>>"$scratch/podman.log" \
  || { cat "$scratch/podman.log"; fail "restarting the container"; }
healthy "after restart"
[ "$(sha256sum <"$data/sign-in-cookie-secret")" = "$secret_before" ] \
  || fail "the sign-in cookie secret in the data volume changed on restart"
found=$("$python" scripts/image_label.py find "$url" "$account") || fail "signing in again or finding the label after the restart"
[ "$found" = "$labelled" ] || fail "after the restart the page shows '$found', not '$labelled'"
echo "label found after restart, on the page (signed in again as $account): image $found"

# And in the store itself, read by the CLI in a one-off container once the app has stopped.
podman stop -t 10 "$name" >/dev/null 2>>"$scratch/podman.log" || fail "stopping the container"
podman run --rm --no-healthcheck --network none -v "$data:/home/user/data" "$image" \
  python -m sdaudit export --study default --out /home/user/data/export >"$scratch/export.log" 2>&1 \
  || { cat "$scratch/export.log"; fail "exporting the annotations"; }
sheet="$data/export/default-annotations.csv"
row=$("$python" - "$sheet" "$account" <<'PY'
import csv, sys
rows = [row for row in csv.DictReader(open(sys.argv[1])) if row["rater"] == sys.argv[2]]
print(*(f"seed {row['seed']}, rater {row['rater']}, person_present {row['person_present']}" for row in rows), sep="; ")
PY
) || fail "reading $sheet"
[ "$row" = "seed 0, rater $account, person_present True" ] || fail "the store holds '$row', not the label given"
echo "label found after restart, in the store (CLI export, app stopped): $row"
echo "image test passed"
