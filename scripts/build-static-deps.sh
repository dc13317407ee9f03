#!/usr/bin/env bash
# Builds into build/static-deps/prefix the libraries the fully static kasm-bootstrap
# needs but Debian ships no usable .a for (docs/static-build.md "Linking by path"):
#
#   libcurl     from Debian's own source package, HTTP/HTTPS + unix sockets only,
#               the OpenSSL below, zlib, c-ares as resolver (no NSS at run time).
#               Debian's own libcurl.a needs Kerberos/LDAP/libpsl/... which ship no .a.
#   libsystemd  from Debian's systemd source package (libsystemd.a; link with -lcap).
#   OpenSSL     from Debian's openssl source package, lean (no engines, no legacy or
#               unused algorithms, split into sections): 1.3 MB less binary than
#               Debian's libssl.a + libcrypto.a (docs/static-build.md).
#
# Everything else (libcares.a, libz.a, libarchive.a, libacl.a,
# libcap.a, libyaml-cpp.a) comes straight from Debian -dev packages, which this script
# installs too, so `cmake --preset static` works right after it.
#
# Idempotent: a library whose stamp (source version + build options) matches is skipped.
# Needs root (or sudo) for apt-get. Safe to run concurrently (flock).
#
#   scripts/build-static-deps.sh                build what is missing (x86_64)
#   scripts/build-static-deps.sh --arch arm64   the same for aarch64, cross-compiled with
#                                               crossbuild-essential-arm64 and Debian's
#                                               :arm64 -dev packages (docs/static-build.md)
#   scripts/build-static-deps.sh --force        rebuild every library
#
# Environment: KB_STATIC_DEPS_DIR (default <repo>/build/static-deps, and
# <repo>/build/static-deps-arm64 for --arch arm64), KB_JOBS (default 2).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
readonly jobs="${KB_JOBS:-2}"
force=0
arch=amd64
while (($#)); do
  case "$1" in
    --force) force=1 ;;
    --arch)
      [[ $# -ge 2 ]] || { echo "build-static-deps: --arch needs a value (amd64 or arm64)" >&2; exit 2; }
      arch=$2
      shift
      ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "build-static-deps: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# What differs per target: Debian's multiarch triplet, OpenSSL's Configure target, the
# dpkg architecture suffix of the -dev packages. arm64 is a cross build: the compilers
# are aarch64-linux-gnu-*, curl gets --host, systemd a meson cross file.
case "$arch" in
  amd64)
    readonly triplet=x86_64-linux-gnu openssl_target=linux-x86_64 cross=0 pkg_suffix=""
    default_deps="$repo/build/static-deps"
    ;;
  arm64)
    readonly triplet=aarch64-linux-gnu openssl_target=linux-aarch64 cross=1 pkg_suffix=":arm64"
    default_deps="$repo/build/static-deps-arm64"
    ;;
  *) echo "build-static-deps: --arch '$arch' is not supported (amd64 or arm64)" >&2; exit 2 ;;
esac
# Resolved: build/static-deps may be a link into the machine's cache (scripts/test.sh), and
# curl's stamp holds --with-openssl=<prefix>, so each clone's own path through the link
# would make the cached curl look stale.
deps="$(realpath -m "${KB_STATIC_DEPS_DIR:-$default_deps}")"
readonly deps
readonly prefix="$deps/prefix"

t_start=$(date +%s)
log() { printf '[build-static-deps +%3ss] %s\n' "$(($(date +%s) - t_start))" "$*" >&2; }
die() { printf 'build-static-deps: ERROR: %s\n' "$*" >&2; exit 1; }
on_err() { printf 'build-static-deps: FAILED (exit %s) at line %s: %s\n' "$1" "$2" "$3" >&2; }
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot apt-get install"
  sudo_cmd=(sudo)
fi
apt_get() {
  # Other jobs on a CI machine may hold the dpkg lock briefly: wait instead of failing.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

# ---------------------------------------------------------------------------------------
# 1. Packages: toolchain, the Debian .a files we link as they are, and build deps of the
#    two source builds (curl uses its shipped configure; systemd needs meson/gperf/jinja2).
# ---------------------------------------------------------------------------------------
# Libraries linked into the binary (and libmount, which systemd's meson setup looks for)
# come in the target's architecture; the build tools and header-only libraries are the
# machine's own.
# libyaml-cpp-dev is not Multi-Arch: same (installing its :arm64 removes the machine's),
# so a cross build takes its .a out of the package file instead (build_yaml_cpp_cross).
target_libs=(zlib1g-dev libc-ares-dev libarchive-dev libacl1-dev libcap-dev libmount-dev)
pkgs=(
  build-essential dpkg-dev patch pkg-config cmake ninja-build file ca-certificates
  libssl-dev meson gperf python3-jinja2 libyaml-cpp-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev catch2
  "${target_libs[@]/%/$pkg_suffix}"
)
if ((cross)); then
  # qemu-user-static runs the aarch64 tests (the CTest emulator, binfmt for the e2e
  # suites); spdlog/fmt are header-only here (SPDLOG_FMT_EXTERNAL + fmt compiled in
  # src/util/fmt_library.cpp), so the machine's headers serve both architectures.
  pkgs+=(crossbuild-essential-arm64 qemu-user-static)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding the arm64 architecture to dpkg (dpkg --add-architecture arm64)"
    "${sudo_cmd[@]}" dpkg --add-architecture arm64
  fi
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing packages: ${missing[*]}"
  apt_get update || die "apt-get update failed"
  apt_get install -y --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
else
  log "all ${#pkgs[@]} packages present"
fi

# The aarch64 tests need a qemu-aarch64 that emulates openat2(2), the syscall behind the
# root boundary (src/system/root_fs.cpp): bookworm's QEMU 7.2 answers ENOSYS, the 10.0 of
# bookworm-backports implements it (both measured here: docs/static-build.md, "arm64").
qemu_major() { qemu-aarch64-static --version 2>/dev/null | sed -n 's/^qemu-aarch64 version \([0-9]*\)\..*/\1/p'; }
if ((cross)) && (($(qemu_major || echo 0) < 10)); then
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [[ "$codename" == bookworm ]] ||
    die "qemu-aarch64-static $(qemu_major) cannot emulate openat2; install QEMU 10 or newer (found on $codename)"
  log "qemu-aarch64-static $(qemu_major) lacks openat2: installing qemu-user-static from bookworm-backports"
  backports="$(mktemp)"
  printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$backports"
  "${sudo_cmd[@]}" install -m 0644 "$backports" /etc/apt/sources.list.d/kasm-bootstrap-backports.sources
  rm -f "$backports"
  apt_get update || die "apt-get update failed after adding bookworm-backports"
  apt_get install -y --no-install-recommends -t bookworm-backports qemu-user-static ||
    die "apt-get install -t bookworm-backports qemu-user-static failed"
  (($(qemu_major || echo 0) >= 10)) || die "qemu-aarch64-static is still $(qemu_major) after the backports install"
fi

mkdir -p "$deps/src" "$deps/build" "$prefix/lib" "$prefix/include"
exec 9>"$deps/.lock"
flock 9 || die "cannot lock $deps/.lock"

# ---------------------------------------------------------------------------------------
# 2. deb-src: `apt-get source` needs a deb-src entry. Mirror the existing deb entries of
#    this release (suites CODENAME, CODENAME-updates, CODENAME-security, ...) as deb-src,
#    both deb822 (*.sources) and one-line (*.list) styles. Third-party repositories are
#    left alone (they may carry no sources).
# ---------------------------------------------------------------------------------------
have_sources() { [[ -n "$(apt-cache showsrc "$1" 2>/dev/null)" ]]; }

ensure_deb_src() {
  if have_sources curl && have_sources systemd && have_sources openssl; then return 0; fi
  local codename
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [[ -n "$codename" ]] || die "no VERSION_CODENAME in /etc/os-release: cannot add deb-src entries"
  local tmp_sources tmp_list f
  tmp_sources="$(mktemp)"
  tmp_list="$(mktemp)"
  for f in /etc/apt/sources.list.d/*.sources; do
    # Not our own files: the deb-src entries themselves, and bookworm-backports (there only
    # for qemu-user-static, --arch arm64; its sources must not change what is built).
    case "$(basename "$f")" in kasm-bootstrap-deb-src.sources | kasm-bootstrap-backports.sources) continue ;; esac
    [[ -f "$f" ]] || continue
    awk -v codename="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/)  { types = $i;  sub(/^Types:[ \t]*/, "", types) }
          if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
          if ($i ~ /^Enabled:[ \t]*no/) next
        }
        nt = split(types, t, /[ \t]+/); hasdeb = 0; hassrc = 0
        for (i = 1; i <= nt; i++) { if (t[i] == "deb") hasdeb = 1; if (t[i] == "deb-src") hassrc = 1 }
        if (!hasdeb || hassrc) next
        ns = split(suites, s, /[ \t]+/)
        if (ns == 0) next
        for (i = 1; i <= ns; i++) if (s[i] !~ ("^" codename "(-[a-z]+)?$")) next
        for (i = 1; i <= NF; i++) { line = $i; if (line ~ /^Types:/) line = "Types: deb-src"; print line }
        print ""
      }' "$f" >>"$tmp_sources"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" && "$(basename "$f")" != kasm-bootstrap-deb-src.list ]] || continue
    # deb [opts] URI SUITE COMPONENTS...  ->  deb-src [opts] URI SUITE COMPONENTS...
    awk -v codename="$codename" '
      /^[ \t]*deb[ \t]/ {
        n = split($0, w, /[ \t]+/); i = 2
        if (w[1] == "") i = 3
        if (w[i] ~ /^\[/) { while (i <= n && w[i] !~ /\]$/) i++; i++ }
        suite = w[i + 1]
        if (suite ~ ("^" codename "(-[a-z]+)?$")) { sub(/deb[ \t]/, "deb-src "); print }
      }' "$f" >>"$tmp_list"
  done
  if [[ ! -s "$tmp_sources" && ! -s "$tmp_list" ]]; then
    rm -f "$tmp_sources" "$tmp_list"
    die "found no '$codename' deb entries to mirror as deb-src; add a deb-src line for $codename yourself"
  fi
  if [[ -s "$tmp_sources" ]]; then
    log "adding deb-src entries: /etc/apt/sources.list.d/kasm-bootstrap-deb-src.sources"
    "${sudo_cmd[@]}" install -m 0644 "$tmp_sources" /etc/apt/sources.list.d/kasm-bootstrap-deb-src.sources
  fi
  if [[ -s "$tmp_list" ]]; then
    log "adding deb-src entries: /etc/apt/sources.list.d/kasm-bootstrap-deb-src.list"
    "${sudo_cmd[@]}" install -m 0644 "$tmp_list" /etc/apt/sources.list.d/kasm-bootstrap-deb-src.list
  fi
  rm -f "$tmp_sources" "$tmp_list"
  apt_get update || die "apt-get update failed after adding deb-src entries"
  have_sources curl || die "still no source package for curl after adding deb-src entries"
  have_sources systemd || die "still no source package for systemd after adding deb-src entries"
  have_sources openssl || die "still no source package for openssl after adding deb-src entries"
}

# Every version of source package $1 that apt knows, newest first.
source_versions() {
  apt-cache showsrc "$1" 2>/dev/null | awk '/^Package: /{p=$2} /^Version: /{if (p=="'"$1"'") print $2}' |
    sort -V -r -u
}

# Unpacks source package $1 version $2 under $deps/src; prints the tree's path. Returns 1
# (after logging why) when apt cannot fetch that version.
fetch_source() {
  local pkg="$1" version="$2" upstream dir
  upstream="${version#*:}"
  upstream="${upstream%-*}"
  dir="$deps/src/$pkg-$version/$pkg-$upstream"
  if [[ ! -f "$dir/.kb-complete" ]]; then
    log "fetching source package $pkg=$version (apt-get source)"
    rm -rf "$deps/src/$pkg-$version"
    mkdir -p "$deps/src/$pkg-$version"
    if ! (cd "$deps/src/$pkg-$version" && apt-get -q source "$pkg=$version" >apt-source.log 2>&1); then
      tail -n 3 "$deps/src/$pkg-$version/apt-source.log" >&2
      rm -rf "$deps/src/$pkg-$version"
      log "apt-get source $pkg=$version failed"
      return 1
    fi
    [[ -d "$dir" ]] || die "apt-get source $pkg did not produce $dir"
    touch "$dir/.kb-complete"
  fi
  printf '%s\n' "$dir"
}

# Sets $src_version and $src_dir to the newest version of source package $1 that can be
# fetched. An index can list a version whose files its mirror no longer (or not yet)
# serves; the next older one is then taken, and the log says so.
pick_source() {
  local pkg="$1" v
  src_version="" src_dir=""
  for v in $(source_versions "$pkg"); do
    if src_dir="$(fetch_source "$pkg" "$v")"; then
      src_version="$v"
      return 0
    fi
    log "$pkg: trying the next older source version"
  done
  die "no source version of $pkg could be fetched (apt-cache showsrc $pkg lists: $(source_versions "$pkg" | tr '\n' ' '))"
}

stamp_ok() { # $1 stamp file, $2 expected content, $3... files that must exist
  local stamp="$1" want="$2"
  shift 2
  ((force)) && return 1
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] || return 1
  local f
  for f in "$@"; do [[ -f "$f" ]] || return 1; done
}

# ---------------------------------------------------------------------------------------
# 3. OpenSSL (libssl.a, libcrypto.a), lean. Debian's libcrypto.a carries every algorithm
#    and engine, and its objects are not split into sections: it was 3.4 MB of the 9.4 MB
#    binary. This build keeps what the binary uses (docs/static-build.md): TLS 1.2/1.3
#    client (AES-GCM, ChaCha20-Poly1305, ECDHE, RSA/ECDSA/Ed25519 signatures, X.509 chain
#    checks), SHA-2, PEM/X.509 parsing of the operator's pair, EC key generation for the
#    self-signed certificate. Same OPENSSLDIR as Debian's (/usr/lib/ssl), so the same
#    openssl.cnf is read. Assembly stays on (the SHA-256 and AES-GCM speed come from it).
# ---------------------------------------------------------------------------------------
openssl_options=(
  no-shared no-module no-dso no-engine no-legacy no-deprecated no-comp no-tests
  no-ui-console no-async no-filenames no-fips
  no-ssl3 no-tls1 no-tls1_1 no-dtls no-sctp no-srp no-srtp no-psk no-nextprotoneg
  no-ocsp no-ct no-cms no-ts no-rfc3779 no-gost no-ec2m
  no-aria no-bf no-blake2 no-camellia no-cast no-cmac no-des no-dsa no-idea no-md4 no-mdc2
  no-ocb no-rc2 no-rc4 no-rc5 no-rmd160 no-scrypt no-seed no-siphash no-siv no-sm2 no-sm3
  no-sm4 no-whirlpool
)

build_openssl() {
  local version dir want bdir
  pick_source openssl
  version="$src_version" dir="$src_dir"
  want="openssl $version ${openssl_options[*]}"
  if stamp_ok "$prefix/.openssl.stamp" "$want" "$prefix/lib/libssl.a" "$prefix/lib/libcrypto.a" \
    "$prefix/include/openssl/ssl.h"; then
    log "openssl $version: up to date (skipped)"
    return 0
  fi
  bdir="$deps/build/openssl"
  rm -rf "$bdir"
  mkdir -p "$bdir"
  log "openssl $version: Configure (lean: ${#openssl_options[@]} options)"
  local cross_opt=()
  ((cross)) && cross_opt=(--cross-compile-prefix="$triplet-")
  (cd "$bdir" && "$dir/Configure" "$openssl_target" "${cross_opt[@]}" --prefix="$prefix" --libdir=lib \
    --openssldir=/usr/lib/ssl "${openssl_options[@]}" -O2 -g0 -ffunction-sections -fdata-sections >configure.log 2>&1) ||
    { tail -n 30 "$bdir/configure.log" >&2; die "openssl Configure failed (log: $bdir/configure.log)"; }
  log "openssl: make -j$jobs build_libs"
  make -C "$bdir" -j"$jobs" build_libs >"$bdir/make.log" 2>&1 ||
    { tail -n 30 "$bdir/make.log" >&2; die "openssl build failed (log: $bdir/make.log)"; }
  rm -rf "$prefix/include/openssl" "$prefix/lib/libssl.a" "$prefix/lib/libcrypto.a"
  make -C "$bdir" install_dev >>"$bdir/make.log" 2>&1 || die "openssl install failed (log: $bdir/make.log)"
  printf '%s' "$want" >"$prefix/.openssl.stamp"
  log "openssl $version: installed $prefix/lib/libcrypto.a ($(du -k "$prefix/lib/libcrypto.a" | cut -f1) KiB)"
}

# ---------------------------------------------------------------------------------------
# 4. libcurl, against the OpenSSL of step 3
# ---------------------------------------------------------------------------------------
curl_options=(
  --disable-shared --enable-static --with-pic
  --with-openssl="$prefix" --enable-ares --with-zlib
  --enable-http --enable-proxy --enable-unix-sockets --enable-ipv6 --enable-cookies
  --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict
  --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp
  --disable-gopher --disable-mqtt --disable-manual --disable-ntlm --disable-ntlm-wb --disable-sspi
  # netrc would call getpwuid_r (glibc NSS) in the static binary; DoH is not wanted.
  --disable-netrc --disable-doh
  --disable-websockets --disable-alt-svc --disable-hsts
  --without-brotli --without-zstd --without-libidn2 --without-libpsl --without-nghttp2
  --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 --without-hyper
  --without-libssh2 --without-libssh --without-wolfssh --without-librtmp --without-gssapi
  --without-libgsasl --without-gnutls --without-nss --without-wolfssl --without-mbedtls
  --without-bearssl --without-rustls
  # The program sets CURLOPT_CAINFO itself (docs/static-build.md "The CA bundle"); this is
  # only the fallback.
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path
)

build_curl() {
  local version dir want bdir
  pick_source curl
  version="$src_version" dir="$src_dir"
  # The OpenSSL stamp is part of curl's: a new OpenSSL build means a new curl build.
  want="curl $version ${curl_options[*]} [$(cat "$prefix/.openssl.stamp" 2>/dev/null)]"
  if stamp_ok "$prefix/.curl.stamp" "$want" "$prefix/lib/libcurl.a" "$prefix/include/curl/curl.h"; then
    log "libcurl $version: up to date (skipped)"
    return 0
  fi

  # The unpacked tree has every Debian patch applied, including the last two that rename
  # the library for the GnuTLS/NSS flavours (debian/rules pops them for the OpenSSL
  # build). Pop them the same way. The shipped configure/Makefile.in are used as they
  # are: AM_MAINTAINER_MODE keeps automake from regenerating them, and the Debian
  # patches to configure.ac/Makefile.am only touch packaging and the test lists.
  local p
  for p in 99_nss 90_gnutls; do
    if grep -qx "$p.patch" "$dir/.pc/applied-patches" 2>/dev/null; then
      log "curl: reverting Debian flavour patch $p.patch"
      (cd "$dir" && patch -R -p1 -s --no-backup-if-mismatch <"debian/patches/$p.patch") ||
        die "could not revert $p.patch in $dir"
      sed -i "/^$p\.patch\$/d" "$dir/.pc/applied-patches"
    fi
  done
  grep -q '^lib_LTLIBRARIES = libcurl.la' "$dir/lib/Makefile.in" ||
    die "$dir/lib/Makefile.in does not build libcurl.la; unexpected source tree"

  bdir="$deps/build/curl"
  rm -rf "$bdir"
  mkdir -p "$bdir"
  log "curl $version: configure (HTTP/HTTPS + unix sockets, OpenSSL, c-ares, zlib)"
  local host_opt=()
  # Cross: the target's .pc files only (c-ares, zlib), never the machine's.
  ((cross)) && host_opt=(--host="$triplet" PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig")
  (cd "$bdir" && "$dir/configure" --prefix="$prefix" "${curl_options[@]}" "${host_opt[@]}" \
    CFLAGS="-O2 -g0 -ffunction-sections -fdata-sections" >configure.log 2>&1) ||
    { tail -n 30 "$bdir/config.log" >&2; die "curl configure failed (log: $bdir/config.log)"; }
  log "curl: make -j$jobs (library only)"
  make -C "$bdir/lib" -j"$jobs" >"$bdir/make.log" 2>&1 ||
    { tail -n 30 "$bdir/make.log" >&2; die "curl build failed (log: $bdir/make.log)"; }
  rm -rf "$prefix/include/curl" "$prefix/lib/libcurl".*
  make -C "$bdir/lib" install >>"$bdir/make.log" 2>&1 || die "curl lib install failed (log: $bdir/make.log)"
  make -C "$bdir/include" install >>"$bdir/make.log" 2>&1 || die "curl headers install failed (log: $bdir/make.log)"
  rm -f "$prefix/lib/libcurl.la"
  chmod +x "$bdir/curl-config"
  log "curl: features: $("$bdir/curl-config" --features | tr '\n' ' ')"
  log "curl: protocols: $("$bdir/curl-config" --protocols | tr '\n' ' ')"
  local protos
  protos="$("$bdir/curl-config" --protocols | tr '\n' ' ')"
  [[ "$protos" == "HTTP HTTPS " ]] || die "curl was built with unexpected protocols: $protos"
  # Captured first: `curl-config | grep -q` under pipefail fails at random when grep exits
  # at its match and curl-config's next echo gets SIGPIPE.
  local features
  features="$("$bdir/curl-config" --features)"
  grep -qx AsynchDNS <<<"$features" || die "curl was built without c-ares (AsynchDNS)"
  grep -qx SSL <<<"$features" || die "curl was built without TLS"
  printf '%s' "$want" >"$prefix/.curl.stamp"
  log "curl $version: installed $prefix/lib/libcurl.a ($(du -k "$prefix/lib/libcurl.a" | cut -f1) KiB)"
}

# ---------------------------------------------------------------------------------------
# 5. libsystemd.a — the recipe of docs/static-build.md "libsystemd".
# ---------------------------------------------------------------------------------------
systemd_options=(
  --buildtype=minsize -Dmode=release -Dstatic-libsystemd=true -Dskip-deps=true -Dtests=false -Dman=false
  -Dhtml=false -Dtranslations=false
)

build_systemd() {
  local version dir want bdir
  pick_source systemd
  version="$src_version" dir="$src_dir"
  want="systemd $version ${systemd_options[*]}"
  if stamp_ok "$prefix/.systemd.stamp" "$want" "$prefix/lib/libsystemd.a" "$prefix/include/systemd/sd-daemon.h"; then
    log "libsystemd $version: up to date (skipped)"
    return 0
  fi
  bdir="$deps/build/systemd"
  rm -rf "$bdir"
  local cross_file=()
  if ((cross)); then
    # meson's cross file: the target's compilers; the machine's pkg-config reading only
    # the target's .pc files (bookworm has no aarch64-linux-gnu-pkg-config wrapper).
    mkdir -p "$deps/build"
    cat >"$deps/build/meson-cross-$arch.ini" <<EOF_CROSS
[binaries]
c = '$triplet-gcc'
cpp = '$triplet-g++'
ar = '$triplet-ar'
strip = '$triplet-strip'
pkgconfig = 'pkg-config'

[properties]
pkg_config_libdir = ['/usr/lib/$triplet/pkgconfig', '/usr/share/pkgconfig']

[host_machine]
system = 'linux'
cpu_family = 'aarch64'
cpu = 'aarch64'
endian = 'little'
EOF_CROSS
    cross_file=(--cross-file "$deps/build/meson-cross-$arch.ini")
  fi
  log "systemd $version: meson setup ${systemd_options[*]} ${cross_file[*]}"
  meson setup "$bdir" "$dir" "${systemd_options[@]}" "${cross_file[@]}" >"$deps/build/systemd-meson.log" 2>&1 ||
    { tail -n 30 "$deps/build/systemd-meson.log" >&2; die "meson setup of systemd failed (log: $deps/build/systemd-meson.log)"; }
  # version.h must be named too, or the static target fails on a clean tree.
  log "systemd: ninja -j$jobs version.h libsystemd.a"
  ninja -C "$bdir" -j"$jobs" version.h libsystemd.a >"$deps/build/systemd-ninja.log" 2>&1 ||
    { tail -n 30 "$deps/build/systemd-ninja.log" >&2; die "ninja libsystemd.a failed (log: $deps/build/systemd-ninja.log)"; }
  install -m 0644 "$bdir/libsystemd.a" "$prefix/lib/libsystemd.a"
  rm -rf "$prefix/include/systemd"
  mkdir -p "$prefix/include/systemd"
  # The public headers (the same set libsystemd-dev installs).
  local h
  for h in _sd-common.h sd-bus.h sd-bus-protocol.h sd-bus-vtable.h sd-daemon.h sd-device.h \
    sd-event.h sd-hwdb.h sd-id128.h sd-journal.h sd-login.h sd-messages.h sd-path.h sd-gpt.h; do
    [[ -f "$dir/src/systemd/$h" ]] && install -m 0644 "$dir/src/systemd/$h" "$prefix/include/systemd/$h"
  done
  [[ -f "$prefix/include/systemd/sd-daemon.h" ]] || die "systemd headers missing in $dir/src/systemd"
  printf '%s' "$want" >"$prefix/.systemd.stamp"
  log "systemd $version: installed $prefix/lib/libsystemd.a ($(du -k "$prefix/lib/libsystemd.a" | cut -f1) KiB)"
}

# ---------------------------------------------------------------------------------------
# 6. Cross builds only: Debian's libyaml-cpp.a for the target, unpacked from its package
#    file into the prefix (apt-get download + dpkg-deb -x: nothing is installed, so the
#    machine's libyaml-cpp-dev stays). The version is the machine's own, so both
#    architectures link the same yaml-cpp and share its headers.
# ---------------------------------------------------------------------------------------
build_yaml_cpp_cross() {
  local version want work deb
  version="$(dpkg-query -W -f='${Version}' libyaml-cpp-dev)" || die "libyaml-cpp-dev is not installed"
  want="libyaml-cpp-dev$pkg_suffix $version"
  if stamp_ok "$prefix/.yaml-cpp.stamp" "$want" "$prefix/lib/libyaml-cpp.a"; then
    log "libyaml-cpp-dev$pkg_suffix $version: up to date (skipped)"
    return 0
  fi
  work="$deps/build/yaml-cpp"
  rm -rf "$work"
  mkdir -p "$work"
  log "libyaml-cpp-dev$pkg_suffix $version: apt-get download, unpack libyaml-cpp.a"
  (cd "$work" && apt-get -q download "libyaml-cpp-dev$pkg_suffix=$version" >download.log 2>&1) ||
    { tail -n 5 "$work/download.log" >&2; die "apt-get download libyaml-cpp-dev$pkg_suffix=$version failed"; }
  deb="$(find "$work" -maxdepth 1 -name 'libyaml-cpp-dev_*.deb' -print -quit)"
  [[ -n "$deb" ]] || die "apt-get download left no libyaml-cpp-dev .deb in $work"
  dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
  [[ -f "$work/root/usr/lib/$triplet/libyaml-cpp.a" ]] || die "$deb has no usr/lib/$triplet/libyaml-cpp.a"
  install -m 0644 "$work/root/usr/lib/$triplet/libyaml-cpp.a" "$prefix/lib/libyaml-cpp.a"
  printf '%s' "$want" >"$prefix/.yaml-cpp.stamp"
  log "libyaml-cpp-dev$pkg_suffix $version: installed $prefix/lib/libyaml-cpp.a"
}

ensure_deb_src
build_openssl
build_curl
build_systemd
((cross)) && build_yaml_cpp_cross

# The Debian archives the static link uses as they are: fail early if one is missing.
debian_archives=(libcares.a libz.a libarchive.a libacl.a libcap.a)
((cross)) || debian_archives+=(libyaml-cpp.a)
for a in "${debian_archives[@]}"; do
  [[ -f "/usr/lib/$triplet/$a" ]] || die "/usr/lib/$triplet/$a is missing (its -dev package should ship it)"
done
trap - ERR
log "done in $(($(date +%s) - t_start)) s: $prefix"
