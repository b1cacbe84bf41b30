# podman-env.sh -- sourced by scripts/containers-test.sh and
# scripts/packages-test.sh: podman with a private configuration, and the
# Debian base images made locally.
#
# Podman runs with configuration files of its own in the cache directory
# ($PA_CACHE, set by the caller), given through CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF: the cgroupfs manager, the runc runtime and no
# default ulimits (hosts with cgroups v1 and locked resource limits need
# all three), netavark networks (compose's service names resolve), and an
# image store in the cache directory, so nothing else on the machine is
# touched and the images survive between runs.
#
# pa_base_images makes docker.io/library/debian:bookworm and :bookworm-slim,
# the names docker/Dockerfile starts from, out of Debian's own packages with
# debootstrap (no registry needed), unless the store has them already.
# Callers define say() and fail().

pa_podman_env() {
  mkdir -p "$PA_CACHE"
  export CONTAINERS_CONF=$PA_CACHE/containers.conf CONTAINERS_STORAGE_CONF=$PA_CACHE/storage.conf
  cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
[network]
network_backend = "netavark"
CONF
  cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$PA_CACHE/storage"
runroot = "$PA_CACHE/run"
CONF
}

PA_BASE=docker.io/library/debian:bookworm
PA_SLIM=docker.io/library/debian:bookworm-slim

pa_base_images() {
  podman image exists "$PA_BASE" && podman image exists "$PA_SLIM" && return 0
  local rootfs=$PA_CACHE/rootfs slim=$PA_CACHE/rootfs-slim
  if [ ! -e "$rootfs/.complete" ]; then
    say "debootstrap --variant=minbase bookworm (once; about a minute)"
    rm -rf "$rootfs.tmp" "$rootfs"
    nice -n 19 debootstrap --variant=minbase bookworm "$rootfs.tmp" http://deb.debian.org/debian \
      >"$PA_CACHE/debootstrap.log" 2>&1 || fail "debootstrap failed; see $PA_CACHE/debootstrap.log"
    printf '%s\n' "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main" >"$rootfs.tmp/etc/apt/sources.list"
    rm -rf "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/cache/apt/*
    mv "$rootfs.tmp" "$rootfs"
    touch "$rootfs/.complete"
  fi
  tar -C "$rootfs" --exclude=./.complete -c . | podman import - "$PA_BASE" >"$PA_CACHE/import.log" 2>&1 \
    || fail "podman import failed; see $PA_CACHE/import.log"
  # The slim variant as Debian's own: no documentation, manuals or
  # translations, now or in packages installed later.
  rm -rf "$slim"; cp -a "$rootfs" "$slim"; rm -f "$slim/.complete"
  rm -rf "$slim"/usr/share/doc/* "$slim"/usr/share/man/* "$slim"/usr/share/info/* "$slim"/usr/share/locale/*
  printf '%s\n' "path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" \
    "path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" \
    "path-exclude /usr/share/locale/*" "path-include /usr/share/locale/locale.alias" \
    >"$slim/etc/dpkg/dpkg.cfg.d/slim"
  tar -C "$slim" -c . | podman import - "$PA_SLIM" >>"$PA_CACHE/import.log" 2>&1 \
    || fail "podman import failed; see $PA_CACHE/import.log"
  rm -rf "$slim"
}
