#!/usr/bin/env bash
# The image test: builds the Dockerfile with podman on a local Debian base (no registry needed),
# runs it, waits for its health check, labels one image in chromium as a rater, restarts the
# container on the same data and finds the label again. Prints the build time, the image size,
# the health and the label found; exits non-zero on any failure.
#   bash scripts/test-image.sh      (as root, with podman, runc, debootstrap and chromium installed)
# Everything it makes (podman's storage and settings, the base, the data) lives under
# $SDAUDIT_IMAGE_SCRATCH (default /tmp/sdaudit-image), never in the repository. The base is made once
# and kept there; the test's containers and data are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=${SDAUDIT_IMAGE_SCRATCH:-/tmp/sdaudit-image}
base=localhost/sdaudit-debian-base
image=localhost/sdaudit-test
name=sdaudit-image-test-$$
rater=image-test-rater
python=${PYTHON:-python3}
step() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { echo "image test failed: $*" >&2; exit 1; }

for tool in podman runc debootstrap curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install podman runc debootstrap curl)"
done
[ "$(id -u)" = 0 ] || fail "run it as root (podman builds and runs rootful here)"

# podman's own settings, private to this test: runc (crun fails on hybrid cgroups), cgroupfs and a
# file for events (no systemd), and a nofile limit the host allows (podman's default is above it).
mkdir -p "$scratch"
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=1048576
cat >"$scratch/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$hard:$hard"]
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

cleanup() {
  podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
  rm -rf "$scratch/data-$$"
}
trap cleanup EXIT

# The base: Debian bookworm from the mirror the host's apt uses, with a user `ubuntu` of uid 1000 as
# Ubuntu 24.04 images have (so the build frees that uid here as it must on the CUDA image).
if ! podman image exists "$base"; then
  mirror=$(grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
    | head -n 1 | tr -d ' ') || true
  mirror=${mirror:-http://deb.debian.org/debian}
  step "making the base: debootstrap bookworm (minbase) from $mirror"
  rm -rf "$scratch/rootfs"
  debootstrap --variant=minbase bookworm "$scratch/rootfs" "$mirror" >"$scratch/debootstrap.log" 2>&1 \
    || fail "debootstrap failed; see $scratch/debootstrap.log"
  chroot "$scratch/rootfs" useradd -m -u 1000 ubuntu
  tar -C "$scratch/rootfs" -c . | podman import - "$base" >/dev/null
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
