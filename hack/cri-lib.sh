# Shared by hack/critest.sh and bench/cri.sh (sourced, not run): the
# look-alike registry, the registry hosts configuration, and skiff and
# Debian's containerd 1.6 each serving the CRI on their own sockets, data
# and state directories, CNI conf dir and bridge; cri_cleanup (the EXIT
# trap) stops and removes all of it and gives the host back its
# ip_forward, network namespaces and System V shared memory segments.
# portmap's per-pod iptables rules go with each pod (CNI DEL), or at the
# end if a teardown left them (only those of this run's networks); its
# top-level CNI-HOSTPORT-* chains in the nat table are shared by every
# CNI user of the host (other tests may be using them) and stay.
#
# After cri_setup: $work, $crictl, $critest; cri_registry pushes the
# look-alikes; cri_skiff / cri_containerd start a runtime and set
# $skiff_ep / $ctrd_ep (unix://...), cri_stop_skiff / cri_stop_containerd
# remove its pods and stop it.

reg_addr=127.0.0.1:5000
skiff_pid= ctrd_pid= reg_pid=

cri_log() { echo "== $*" >&2; }

cri_need() { command -v "$1" >/dev/null || { echo "$0: $1 not found: $2" >&2; exit 1; }; }

# cri_setup [containerd]: checks tools, makes $work, installs the trap.
cri_setup() {
  export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
  cri_need docker-registry "apt-get install docker-registry (hack/deps.sh)"
  cri_need iptables "apt-get install iptables"
  cri_need ipcrm "apt-get install util-linux"
  [ -x /usr/lib/cni/portmap ] || { echo "$0: install containernetworking-plugins" >&2; exit 1; }
  if [ "${1:-}" = containerd ]; then
    cri_need containerd "apt-get install --no-install-recommends containerd (Debian's 1.6, for the comparison only)"
  fi
  if (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
    echo "$0: 127.0.0.1:5000 is taken; the look-alike registry needs it" >&2
    exit 1
  fi
  local tools
  tools=$(./hack/cri-tools.sh)
  critest=$tools/critest crictl=$tools/crictl
  work=$(mktemp -d /tmp/skiff-cri-XXXX)
  cg=/skiff-cri-$$
  fwd_was=$(cat /proc/sys/net/ipv4/ip_forward)
  had_run_containerd=$([ -d /run/containerd ] && echo 1 || echo 0)
  netns_before=$(ls /run/netns 2>/dev/null | sort)
  # critest's HostIpc specs make a shared memory segment on the host
  # (ipcmk) and leave it: the ones made during this run go at the end.
  shm_before=$(awk 'NR > 1 {print $2}' /proc/sysvipc/shm | sort)
  trap cri_cleanup EXIT INT TERM
}

# cri_pids_with ARG: processes whose command line contains ARG (a path
# unique to this run), by id.
cri_pids_with() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && echo "${p#/proc/}"
  done
  return 0
}

cri_stop_skiff() {
  [ -n "$skiff_pid" ] || return 0
  "$crictl" -r "$skiff_ep" rmp -fa >/dev/null 2>&1
  kill "$skiff_pid" 2>/dev/null; wait "$skiff_pid" 2>/dev/null
  skiff_pid=
}

cri_stop_containerd() {
  [ -n "$ctrd_pid" ] || return 0
  "$crictl" -r "$ctrd_ep" rmp -fa >/dev/null 2>&1
  kill "$ctrd_pid" 2>/dev/null; wait "$ctrd_pid" 2>/dev/null
  ctrd_pid=
  # Its shims outlive it.
  local p
  for p in $(cri_pids_with "$work/containerd"); do kill -9 "$p" 2>/dev/null; done
}

cri_cleanup() {
  local rc=$? p m id ns c ch
  set +e
  cri_stop_skiff
  cri_stop_containerd
  for p in $(cri_pids_with "$work"); do kill -9 "$p" 2>/dev/null; done
  [ -n "$reg_pid" ] && { kill "$reg_pid" 2>/dev/null; wait "$reg_pid" 2>/dev/null; }
  for ns in $(ls /run/netns 2>/dev/null | sort | comm -13 <(echo "$netns_before") -); do
    umount "/run/netns/$ns" 2>/dev/null; rm -f "/run/netns/$ns"
  done
  grep -F "$work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  for c in crits$$ critc$$; do ip link del "$c" 2>/dev/null; done
  for c in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/unified/"$cg"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # portmap rules of this run's networks that a teardown left behind
  # (they would send critest's host ports to dead pods in the next run).
  iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -E "dnat name: [^ ]*cri-(skiff|containerd)-$$[^0-9]" |
    while read -r r; do
      ch=${r##* }
      eval iptables -t nat "${r/#-A/-D}" && iptables -t nat -F "$ch" && iptables -t nat -X "$ch"
    done
  echo "$fwd_was" >/proc/sys/net/ipv4/ip_forward
  # (critest's are 1 MiB, from ipcmk -M 1048576, and attached to nothing)
  for id in $(awk 'NR > 1 && $4 == 1048576 && $7 == 0 {print $2}' /proc/sysvipc/shm | sort | comm -13 <(echo "$shm_before") -); do
    ipcrm -m "$id"
  done
  if [ "$had_run_containerd" = 0 ] && [ -d /run/containerd ]; then
    find /run/containerd -depth -type d -empty -delete 2>/dev/null
  fi
  [ -n "${out:-}" ] && cp -f "$work"/*.xml "$work"/*.log "$out"/ 2>/dev/null
  rm -rf "$work"
  exit $rc
}

# cri_registry: docker-registry on 127.0.0.1:5000 with the look-alikes,
# and certs.d hosts.toml files sending critest's registries to it.
cri_registry() {
  cri_log "look-alike registry on $reg_addr"
  mkdir -p "$work/registry" "$work/certs.d"
  cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/storage
  delete:
    enabled: true
http:
  addr: $reg_addr
EOF
  docker-registry serve "$work/registry/config.yml" >"$work/registry.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break; sleep 0.05; done
  # Debian's dynamic busybox (see hack/critest/images), extracted once
  # from its package: it conflicts with busybox-static, which the tests use.
  local bb=${SKIFF_TEST_CACHE:-$HOME/.cache/skiff-test}/busybox-deb
  if [ ! -x "$bb/bin/busybox" ]; then
    (cd "$work" && apt-get download busybox >/dev/null && dpkg-deb -x busybox_*.deb "$bb.tmp" && rm -f busybox_*.deb)
    rm -rf "$bb" && mv "$bb.tmp" "$bb"
  fi
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/lookalike" ./hack/critest/lookalike
  go run ./hack/critest/images "$reg_addr" "$bb/bin/busybox" "$work/lookalike" >"$work/images.log"
  cri_log "pushed $(wc -l <"$work/images.log") image tags"
  local r
  for r in registry.k8s.io k8s.gcr.io gcr.io; do
    mkdir -p "$work/certs.d/$r"
    # The local registry as the server too: never fall back to the real
    # one. (containerd 1.6 refuses a hosts.toml without a [host] table.)
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
      "$reg_addr" "$reg_addr" >"$work/certs.d/$r/hosts.toml"
  done
}

# cri_cni_conf DIR NAME BRIDGE SUBNET
cri_cni_conf() {
  mkdir -p "$1"
  cat >"$1/10-cri.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "$2", "plugins": [
  {"type": "bridge", "bridge": "$3", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$4"}]], "dataDir": "$1/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
EOF
}

# cri_skiff: bin/skiff daemon (built already) with the CRI on $skiff_ep.
cri_skiff() {
  local d=$work/skiff
  mkdir -p "$d"
  cri_cni_conf "$d/cni" "cri-skiff-$$" "crits$$" 10.231.0.0/16
  cat >"$d/daemon.json" <<EOF
{"cgroup-parent": "$cg", "bridge": "skc$$", "bip": "10.232.0.1/16", "nft-table": "skiff_cri_$$",
 "ip-forward": false, "cgroup-favordynmods": false,
 "cni-conf-dir": "$d/cni", "cni-bin-dir": "/usr/lib/cni", "certs-d": "$work/certs.d"}
EOF
  bin/skiff daemon -H "unix://$d/skiff.sock" --data-root "$d/data" --exec-root "$d/exec" \
    --config-file "$d/daemon.json" --cri-socket "$d/cri.sock" >"$work/skiff-daemon.log" 2>&1 &
  skiff_pid=$!
  skiff_ep=unix://$d/cri.sock
  for _ in $(seq 200); do "$crictl" -r "$skiff_ep" version >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "$0: skiff's CRI did not answer" >&2
  return 1
}

# cri_containerd: Debian's containerd with its CRI plugin on $ctrd_ep, the
# look-alike pause image as its sandbox image.
cri_containerd() {
  local d=$work/containerd
  mkdir -p "$d"
  cri_cni_conf "$d/cni" "cri-containerd-$$" "critc$$" 10.233.0.0/16
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
EOF
  containerd --config "$d/config.toml" >"$work/containerd.log" 2>&1 &
  ctrd_pid=$!
  ctrd_ep=unix://$d/containerd.sock
  for _ in $(seq 200); do "$crictl" -r "$ctrd_ep" info >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$0: containerd's CRI did not answer" >&2
  return 1
}
