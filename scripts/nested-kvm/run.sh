#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs programs against a real KVM on a machine that has no /dev/kvm: boots a
# Debian kernel under QEMU with TCG (pure software emulation) and a CPU model
# that exposes AMD SVM, loads kvm_amd inside that guest, and runs the given
# programs there.  Developer tool; CI does not run it.  See README.md beside
# this file.
#
#   bash scripts/nested-kvm/run.sh [OPTIONS] PROGRAM [ARGS...] [:: PROGRAM [ARGS...]]...
#   bash scripts/nested-kvm/run.sh --self-test
#
# Exit status: 0 when every program exited 0; otherwise the status of the
# first program that did not; 77 when KVM could not be brought up (or the
# tools for it are missing); 124 on timeout; 125 on any other harness failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
me="nested-kvm"

cpu=${NESTED_KVM_CPU:-max}
npt=${NESTED_KVM_NPT:-1}
mem=${NESTED_KVM_MEM:-1024}
smp=${NESTED_KVM_SMP:-1}
timeout_s=${NESTED_KVM_TIMEOUT:-600}
kernel=${NESTED_KVM_KERNEL:-}
verbose=0
keep=0
install=1
self_test=0
workdir=$PWD
extra_paths=()
envs=()

usage() {
    cat <<EOF
usage: bash scripts/nested-kvm/run.sh [OPTIONS] PROGRAM [ARGS...] [:: PROGRAM [ARGS...]]...
       bash scripts/nested-kvm/run.sh [OPTIONS] --self-test

Boots a Linux guest under QEMU/TCG with AMD SVM, loads kvm_amd in it and runs
each PROGRAM (with its ARGS) there, one after another; '::' separates programs.
Program output is printed here; exit status is that of the first failing
program (0 if all pass), 77 if KVM could not be brought up, 124 on timeout,
125 on other harness errors.

Options (before the first PROGRAM):
  -c, --cpu MODEL       QEMU CPU model (default: max; e.g. EPYC, qemu64,+svm,+npt)
      --npt 0|1         kvm_amd nested paging (default: 1)
  -m, --mem MIB         guest memory in MiB (default: 1024)
      --smp N           guest vCPUs (default: 1)
  -t, --timeout SEC     limit for the whole boot-run-poweroff (default: 600)
  -w, --with PATH       also copy PATH (file or directory) into the guest at the
                        same absolute path; repeatable
  -e, --env NAME=VALUE  set in the programs' environment; repeatable
  -C, --cd DIR          working directory of the programs (default: current;
                        created empty in the guest unless given with --with)
  -k, --kernel VMLINUZ  kernel to boot (default: newest /boot/vmlinuz-* whose
                        /lib/modules/<version> has kvm-amd)
  -v, --verbose         also stream the guest's serial console to stderr
      --keep            keep the temporary directory (initramfs, logs)
      --no-install      never apt-get install missing packages
      --self-test       build kvm-smoke.c (beside this script) and run it
  -h, --help            this text

Environment: NESTED_KVM_CPU, NESTED_KVM_NPT, NESTED_KVM_MEM, NESTED_KVM_SMP,
NESTED_KVM_TIMEOUT, NESTED_KVM_KERNEL set the defaults of the options above.
EOF
}

say() { echo "[$me] $*" >&2; }
die() { say "error: $*"; exit "${2:-125}"; }

while [ $# -gt 0 ]; do
    case "$1" in
    -c|--cpu) cpu=$2; shift 2 ;;
    --npt) npt=$2; shift 2 ;;
    -m|--mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    -t|--timeout) timeout_s=$2; shift 2 ;;
    -w|--with) extra_paths+=("$2"); shift 2 ;;
    -e|--env) envs+=("$2"); shift 2 ;;
    -C|--cd) workdir=$2; shift 2 ;;
    -k|--kernel) kernel=$2; shift 2 ;;
    -v|--verbose) verbose=1; shift ;;
    --keep) keep=1; shift ;;
    --no-install) install=0; shift ;;
    --self-test) self_test=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) break ;;
    esac
done

case "$npt" in 0|1) ;; *) die "--npt takes 0 or 1" ;; esac
case "$mem$smp$timeout_s" in *[!0-9]*) die "--mem, --smp and --timeout take numbers" ;; esac
for e in ${envs[@]+"${envs[@]}"}; do
    [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env takes NAME=VALUE, got '$e'"
done

# ---------------------------------------------------------------- host tools
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v ldd >/dev/null || need_pkgs+=(libc-bin)
busybox_bin=""
for b in /bin/busybox /usr/bin/busybox; do
    [ -x "$b" ] && { busybox_bin=$b; break; }
done
[ -n "$busybox_bin" ] || need_pkgs+=(busybox-static)
if [ -z "$kernel" ] && ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
    need_pkgs+=(linux-image-amd64)
fi
if [ "$self_test" = 1 ] && ! command -v gcc >/dev/null; then
    need_pkgs+=(gcc libc6-dev)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 || {
            apt-get update >/dev/null 2>&1 || true
            apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null ||
                die "apt-get install ${need_pkgs[*]} failed" 77
        }
        [ -n "$busybox_bin" ] || busybox_bin=/bin/busybox
    else
        die "missing packages; run as root: apt-get install ${need_pkgs[*]}" 77
    fi
fi

# Kernel: the newest /boot/vmlinuz-* whose modules include kvm-amd.
find_mod() { # MODDIR NAME -> relative path from modules.dep
    awk -F: -v n="$2" '{ p = $1; sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p);
        gsub(/-/, "_", p); if (p == n) { print $1; exit } }' "$1/modules.dep"
}
if [ -z "$kernel" ]; then
    for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
        v=${k#/boot/vmlinuz-}
        if [ -f "/lib/modules/$v/modules.dep" ] &&
           [ -n "$(find_mod "/lib/modules/$v" kvm_amd)" ]; then
            kernel=$k
            break
        fi
    done
    [ -n "$kernel" ] || die "no /boot/vmlinuz-* with kvm-amd in /lib/modules/<version>; apt-get install linux-image-amd64" 77
fi
[ -r "$kernel" ] || die "cannot read $kernel (Debian installs it readable by root only)" 77
kver=${NESTED_KVM_KVER:-${kernel##*/vmlinuz-}}
moddir=/lib/modules/$kver
[ -f "$moddir/modules.dep" ] || die "no $moddir/modules.dep for kernel $kernel (set NESTED_KVM_KVER)" 77

# ------------------------------------------------------------- staging area
tmp=$(mktemp -d /tmp/nested-kvm.XXXXXX)
qpid=""
tails=()
cleanup() {
    if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
    for p in ${tails[@]+"${tails[@]}"}; do kill "$p" 2>/dev/null || true; done
    if [ "$keep" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$tmp/root
mkdir -p "$root"/{.nk/bin,.nk/mods,proc,sys,dev,tmp,run,root,bin,etc}

if [ "$self_test" = 1 ]; then
    [ $# -eq 0 ] || die "--self-test takes no PROGRAM"
    gcc -static -O2 -o "$tmp/kvm-smoke" "$here/kvm-smoke.c" ||
        die "cannot build kvm-smoke.c (static glibc: apt-get install libc6-dev)"
    set -- "$tmp/kvm-smoke" 1000000
fi
[ $# -gt 0 ] || { usage >&2; exit 125; }

# Copy one file to the same absolute path under $root (following symlinks).
put() {
    local src=$1 dst=${2:-$1}
    [ -e "$root$dst" ] && return 0
    mkdir -p "$root$(dirname "$dst")"
    cp -L "$src" "$root$dst"
}
# Copy an executable and, when it is dynamically linked, what ldd lists.
put_exe() {
    local exe=$1 out line lib
    put "$exe"
    if out=$(ldd "$exe" 2>&1); then
        if grep -q 'not found' <<<"$out"; then
            die "$exe: shared libraries not found:"$'\n'"$(grep 'not found' <<<"$out")"
        fi
        while read -r line; do
            case "$line" in
            *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
            /*) lib=${line%% (*} ;;
            *) continue ;;
            esac
            put "$lib"
        done <<<"$out"
    fi
    return 0
}
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

# busybox at /.nk/bin; /bin/sh for system()/popen() if nothing else provides it.
put_exe "$busybox_bin"
cp -L "$busybox_bin" "$root/.nk/bin/busybox"

# Programs: split at '::', resolve, copy, write the guest's run list.
runlist=$root/.nk/programs
: >"$runlist"
progs=()
cur=()
flush_prog() {
    [ ${#cur[@]} -gt 0 ] || die "empty program between '::'"
    local p=${cur[0]} path line a
    if [[ "$p" == */* ]]; then
        path=$(cd "$(dirname "$p")" && pwd)/$(basename "$p")
    else
        path=$(command -v -- "$p") || die "$p: not found in PATH"
    fi
    [ -f "$path" ] && [ -x "$path" ] || die "$p: not an executable file"
    put_exe "$path"
    line=$(shq "$path")
    for a in "${cur[@]:1}"; do line+=" $(shq "$a")"; done
    printf '%s\n' "$line" >>"$runlist"
    progs+=("${cur[*]}")
    cur=()
}
for a in "$@"; do
    if [ "$a" = "::" ]; then flush_prog; else cur+=("$a"); fi
done
flush_prog

for x in ${extra_paths[@]+"${extra_paths[@]}"}; do
    [ -e "$x" ] || die "--with $x: no such file or directory"
    ax=$(cd "$(dirname "$x")" && pwd)/$(basename "$x")
    mkdir -p "$root$(dirname "$ax")"
    cp -a -L "$ax" "$root$(dirname "$ax")/"
done
[[ "$workdir" == /* ]] || workdir=$(cd "$workdir" && pwd)
mkdir -p "$root$workdir"
[ -e "$root/bin/sh" ] || ln -s /.nk/bin/busybox "$root/bin/sh"

# Kernel modules kvm-amd needs, dependencies first, decompressed.
modrel=$(find_mod "$moddir" kvm_amd)
deps=$(awk -F': *' -v m="$modrel" '$1 == m { print $2 }' "$moddir/modules.dep")
order=()
for d in $deps; do order=("$d" ${order[@]+"${order[@]}"}); done
order+=("$modrel")
: >"$root/.nk/mods/order"
for rel in "${order[@]}"; do
    name=$(basename "$rel"); name=${name%%.ko*}
    case "$rel" in
    *.ko) cp "$moddir/$rel" "$root/.nk/mods/$name.ko" ;;
    *.ko.xz) xz -dc "$moddir/$rel" >"$root/.nk/mods/$name.ko" ;;
    *.ko.zst) zstd -qdc "$moddir/$rel" >"$root/.nk/mods/$name.ko" ;;
    *.ko.gz) gzip -dc "$moddir/$rel" >"$root/.nk/mods/$name.ko" ;;
    *) die "unknown module file $rel" ;;
    esac
    echo "$name" >>"$root/.nk/mods/order"
done

{
    printf 'NK_NPT=%s\n' "$npt"
    printf 'NK_WORKDIR=%s\n' "$(shq "$workdir")"
    printf 'NK_MULTI=%s\n' "$([ ${#progs[@]} -gt 1 ] && echo 1 || echo 0)"
    for e in ${envs[@]+"${envs[@]}"}; do
        printf 'export %s=%s\n' "${e%%=*}" "$(shq "${e#*=}")"
    done
} >"$root/.nk/config"

# The guest's /init.  Markers for this script go to the console (ttyS0);
# program output goes to ttyS1, which QEMU writes to output.log.
cat >"$root/init" <<'EOF'
#!/.nk/bin/busybox sh
/.nk/bin/busybox --install -s /.nk/bin
export PATH=/.nk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
chmod 1777 /tmp
. /.nk/config
mark() { echo "@@NK@@ $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
out=/dev/ttyS1
stty -F $out raw -echo 2>/dev/null
mark BOOTED "$(up)"
mark CPUFLAGS "$(grep -o -w -E 'svm|npt|nrip_save|vgif|avic' /proc/cpuinfo | sort -u | tr '\n' ' ')"
while read -r m; do
    if [ "$m" = kvm-amd ] || [ "$m" = kvm_amd ]; then p="npt=$NK_NPT"; else p=""; fi
    insmod /.nk/mods/$m.ko $p 2>&1 || mark INSMOD-FAILED "$m"
done < /.nk/mods/order
if [ ! -c /dev/kvm ]; then
    mark KVM-DOWN
    dmesg | grep -i -E 'kvm|svm' | sed 's/^/@@NK@@ DMESG /'
    poweroff -f
fi
chmod 666 /dev/kvm
mark KVM-UP "$(up)"
dmesg | grep -i -E 'kvm|svm' | sed 's/^/@@NK@@ DMESG /'
i=0
while read -r line; do
    i=$((i + 1))
    cd "$NK_WORKDIR" || cd /
    [ "$NK_MULTI" = 1 ] && echo "[nested-kvm] === $i: $line" >$out
    t0=$(up)
    mark START $i "$t0"
    eval "$line" </dev/null >$out 2>&1
    rc=$?
    t1=$(up)
    mark EXIT $i $rc "$t0" "$t1"
done </.nk/programs
mark DONE "$(up)"
sync
poweroff -f
EOF
chmod +x "$root/init"

initrd=$tmp/initrd.gz
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

# -------------------------------------------------------------------- boot
console=$tmp/console.log
output=$tmp/output.log
: >"$console"
: >"$output"
say "booting $(basename "$kernel") under QEMU/TCG, -cpu $cpu, npt=$npt, ${mem} MiB, smp $smp, timeout ${timeout_s}s"
start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -cpu "$cpu" -smp "$smp" -m "$mem" \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$console" -serial "file:$output" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 oops=panic" \
    </dev/null >"$tmp/qemu.log" 2>&1 &
qpid=$!
tail -n +1 -f --pid="$qpid" "$output" & tails+=($!)
if [ "$verbose" = 1 ]; then
    tail -n +1 -f --pid="$qpid" "$console" | tr -d '\r' >&2 & tails+=($!)
fi
timed_out=0
waited=0
while kill -0 "$qpid" 2>/dev/null; do
    if [ "$waited" -ge $((timeout_s * 10)) ]; then
        timed_out=1
        kill "$qpid" 2>/dev/null || true
        break
    fi
    sleep 0.1
    waited=$((waited + 1))
done
qrc=0
wait "$qpid" || qrc=$?
qpid=""
for p in "${tails[@]}"; do wait "$p" 2>/dev/null || true; done
tails=()
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

marks=$(tr -d '\r' <"$console" | grep -a '^@@NK@@ ' | sed 's/^@@NK@@ //' || true)
if [ "$verbose" = 0 ] && ! grep -q -E '^KVM-(UP|DOWN)' <<<"$marks"; then
    tr -d '\r' <"$console" | tail -n 40 >&2
fi
grep -a . "$tmp/qemu.log" | grep -v "TCG doesn't support requested feature" >&2 || true

if grep -q '^KVM-DOWN' <<<"$marks"; then
    say "KVM did not come up in the guest (cpu flags: $(sed -n 's/^CPUFLAGS //p' <<<"$marks"))"
    sed -n 's/^DMESG /  /p' <<<"$marks" >&2
    exit 77
fi
if ! grep -q '^KVM-UP' <<<"$marks"; then
    if [ "$timed_out" = 1 ]; then say "timeout after ${timeout_s}s before KVM came up"; exit 124; fi
    say "guest never reported KVM state (qemu exit $qrc)"
    exit 125
fi
kvm_at=$(sed -n 's/^KVM-UP //p' <<<"$marks")
[ "$verbose" = 1 ] || sed -n 's/^DMESG /  /p' <<<"$marks" | grep -i 'paging' >&2 || true
say "/dev/kvm up at ${kvm_at}s guest uptime"

status=0
n=${#progs[@]}
for ((i = 1; i <= n; i++)); do
    ex=$(grep "^EXIT $i " <<<"$marks" || true)
    if [ -z "$ex" ]; then
        if [ "$timed_out" = 1 ]; then
            say "program $i (${progs[i-1]}): timeout after ${timeout_s}s"
            [ "$status" != 0 ] || status=124
        else
            say "program $i (${progs[i-1]}): no exit status (guest crashed?)"
            [ "$status" != 0 ] || status=125
        fi
        break
    fi
    read -r _ _ rc t0 t1 <<<"$ex"
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    say "program $i (${progs[i-1]}): exit $rc in ${secs}s"
    if [ "$rc" != 0 ] && [ "$status" = 0 ]; then status=$rc; fi
done
say "total wall time ${wall}s"
exit "$status"
