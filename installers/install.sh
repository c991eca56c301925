#!/bin/sh
# Installs the AEGIS Edge CLI (`aegis`) from an aegis-controller's bootstrap URL, checked against
# the release's signed manifest, and optionally enrolls this host:
#
#   curl -fsSL https://controller.example.com/install.sh | sh
#   curl -fsSL https://controller.example.com/install.sh | AEGIS_TOKEN=<enrollment-token> sh
#   curl -fsSL https://controller.example.com/install.sh | sh -s -- --token-file ./token -- --local-tools shell
#
# `--token T` works too, but shows the token to every local user (ps) while the script runs.
#
# Arguments after a lone `--` go to `aegis edge enroll` unchanged.
#
# Overrides (environment variables):
#   AEGIS_BOOTSTRAP_URL   where the releases are (default: the controller that served this script)
#   AEGIS_VERSION         the release to install (default: the one the controller serves)
#   AEGIS_INSTALL_DIR     where `aegis` goes (default: /usr/local/bin as root, else ~/.local/bin)
#   AEGIS_RELEASE_PUBKEY  the release public key (the base64 line of release.pub), pinned out of
#                         band: without it the key is the one the controller put in this script
#   AEGIS_CA_FILE         PEM of a private CA for the downloads (and for enrollment)
#   AEGIS_TOKEN           an enrollment token (like --token)
#   AEGIS_TOKEN_FILE      a file holding one (like --token-file)
#   AEGIS_INSECURE_SHA256_ONLY=1  install without a signature check when neither minisign nor
#                         OpenSSL 3 is present; the SHA-256 then only proves what the controller sent
#
# The whole script is one function called on its last line: a download cut short runs nothing.
# A check that fails stops it before anything is installed, and it removes its temporary files.

aegis_install() {
	set -eu
	served_url='__AEGIS_BOOTSTRAP_URL__'
	served_version='__AEGIS_VERSION__'
	served_pubkey='__AEGIS_RELEASE_PUBKEY__'
	served_ca='__AEGIS_CA_PEM__'
	# An unrendered copy (e.g. read from the source tree) still has its placeholders.
	case $served_url in __AEGIS_*) served_url='' ;; esac
	case $served_version in __AEGIS_*) served_version='' ;; esac
	case $served_pubkey in __AEGIS_*) served_pubkey='' ;; esac
	case $served_ca in __AEGIS_*) served_ca='' ;; esac

	token=${AEGIS_TOKEN:-}
	token_file=${AEGIS_TOKEN_FILE:-}
	while [ $# -gt 0 ]; do
		case $1 in
		--token) [ $# -ge 2 ] || die "--token needs a value"; token=$2; shift 2 ;;
		--token=*) token=${1#--token=}; shift ;;
		--token-file) [ $# -ge 2 ] || die "--token-file needs a value"; token_file=$2; shift 2 ;;
		--token-file=*) token_file=${1#--token-file=}; shift ;;
		--) shift; break ;;
		-h | --help)
			echo "usage: install.sh [--token T | --token-file F] [-- <aegis edge enroll flags>]" >&2
			return 0
			;;
		*) die "unknown argument: $1 (arguments for \`aegis edge enroll\` go after --)" ;;
		esac
	done
	if [ -n "$token" ] && [ -n "$token_file" ]; then
		die "pass --token or --token-file, not both"
	fi

	base_url=${AEGIS_BOOTSTRAP_URL:-$served_url}
	base_url=${base_url%/}
	[ -n "$base_url" ] || die "no bootstrap URL: set AEGIS_BOOTSTRAP_URL (e.g. https://controller.example.com)"
	version=${AEGIS_VERSION:-${served_version:-latest}}
	printf '%s\n' "$version" | grep -Eq '^(latest|[0-9]{1,6}\.[0-9]{1,6}\.[0-9]{1,6}(-[0-9A-Za-z.-]{1,40})?)$' ||
		die "AEGIS_VERSION=$version is not a release version (1.2.3) or latest"
	pubkey=${AEGIS_RELEASE_PUBKEY:-$served_pubkey}

	os=$(detect_os)
	arch=$(detect_arch)
	install_dir=$(choose_install_dir)

	work=$(mktemp -d 2>/dev/null || mktemp -d -t aegis-install)
	staged=''
	# On any exit, the temporary directory and a half-installed file go.
	trap 'rm -rf "$work"; [ -z "$staged" ] || rm -f "$staged"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	ca_file=${AEGIS_CA_FILE:-}
	if [ -z "$ca_file" ] && [ -n "$served_ca" ]; then
		ca_file=$work/ca.pem
		printf '%s\n' "$served_ca" >"$ca_file"
	fi
	[ -z "$ca_file" ] || [ -r "$ca_file" ] || die "cannot read AEGIS_CA_FILE $ca_file"
	downloader=$(pick_downloader)

	release_url=$base_url/releases/$version
	say "release $version for $os/$arch from $base_url"
	fetch "$release_url/manifest.json" "$work/manifest.json" 65536
	fetch "$release_url/manifest.json.minisig" "$work/manifest.json.minisig" 4096
	check_max_size "$work/manifest.json" 65536
	check_max_size "$work/manifest.json.minisig" 4096
	verify_signature "$work/manifest.json" "$work/manifest.json.minisig"

	manifest_version=$(json_field "$(tr -d ' \t\r\n' <"$work/manifest.json")" version)
	if [ "$version" != latest ] && [ "$manifest_version" != "$version" ]; then
		die "asked for release $version, the signed manifest is for $manifest_version"
	fi
	entry=$(artifact_entry "$work/manifest.json" aegis "$os" "$arch")
	[ -n "$entry" ] || die "release $manifest_version has no aegis binary for $os/$arch"
	file=$(json_field "$entry" file)
	sha256=$(json_field "$entry" sha256)
	size=$(json_number "$entry" size)
	printf '%s\n' "$file" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' ||
		die "the manifest names a bad file: $file"
	printf '%s\n' "$sha256" | grep -Eq '^[0-9a-f]{64}$' || die "the manifest has a bad sha256 for $file"
	printf '%s\n' "$size" | grep -Eq '^[1-9][0-9]{0,9}$' || die "the manifest has a bad size for $file"
	printf '%s\n' "$manifest_version" | grep -Eq '^[0-9A-Za-z.-]{5,60}$' ||
		die "the manifest has a bad version: $manifest_version"

	fetch "$base_url/releases/$manifest_version/$file" "$work/aegis" "$size"
	check_size "$work/aegis" "$size"
	actual=$(sha256_of "$work/aegis")
	[ "$actual" = "$sha256" ] || die "SHA-256 mismatch for $file: expected $sha256, got $actual"
	say "SHA-256 of $file matches the manifest"

	# Atomic install: a temporary file beside the target, checked, then renamed over it.
	mkdir -p "$install_dir" || die "cannot create $install_dir"
	staged=$(mktemp "$install_dir/.aegis.XXXXXX") || die "cannot write to $install_dir"
	cp "$work/aegis" "$staged"
	chmod 755 "$staged"
	printed=$("$staged" --version 2>&1) || die "the new binary does not run: $printed"
	# `aegis --version` prints the version first (then, in a release build, its key).
	[ "${printed%% *}" = "$manifest_version" ] ||
		die "the new binary says \"$printed\", the manifest says $manifest_version"
	mv -f "$staged" "$install_dir/aegis"
	staged=''
	say "installed $install_dir/aegis: $("$install_dir/aegis" --version)"
	path_hint "$install_dir"

	if [ -n "$token" ] || [ -n "$token_file" ]; then
		enroll "$install_dir/aegis" "$@"
	elif [ $# -gt 0 ]; then
		die "arguments after -- are for enrollment: pass --token or --token-file too"
	fi
}

say() { printf 'aegis-install: %s\n' "$*" >&2; }
warn() { printf 'aegis-install: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'aegis-install: error: %s\n' "$*" >&2
	exit 1
}

detect_os() {
	case $(uname -s) in
	Linux) echo linux ;;
	Darwin) echo macos ;;
	*) die "unsupported OS $(uname -s): Linux and macOS only (Windows: install.ps1)" ;;
	esac
}

detect_arch() {
	m=$(uname -m)
	# Rosetta: a translated shell on Apple silicon still gets the native binary.
	if [ "$m" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
		m=arm64
	fi
	case $m in
	x86_64 | amd64) echo x86_64 ;;
	aarch64 | arm64) echo arm64 ;;
	*) die "unsupported architecture $m: x86_64 and arm64 only" ;;
	esac
}

choose_install_dir() {
	if [ -n "${AEGIS_INSTALL_DIR:-}" ]; then
		echo "$AEGIS_INSTALL_DIR"
	elif [ "$(id -u)" = 0 ]; then
		echo /usr/local/bin
	else
		[ -n "${HOME:-}" ] || die "HOME is not set: set AEGIS_INSTALL_DIR"
		echo "$HOME/.local/bin"
	fi
}

pick_downloader() {
	if command -v curl >/dev/null 2>&1; then
		echo curl
	elif command -v wget >/dev/null 2>&1; then
		echo wget
	else
		die "neither curl nor wget is installed"
	fi
}

# fetch URL FILE MAX: fails on any HTTP error; TLS is always verified (with the private CA if
# given). curl also stops a download past MAX bytes; every size is checked after it anyway. A
# stalled transfer fails instead of hanging the install: no connection in 20 s, or under 1 KB/s
# for 60 s (curl); 60 s without a byte, 3 tries (wget, whose default is 20 tries of 15 minutes).
fetch() {
	if [ "$downloader" = curl ]; then
		if [ -n "$ca_file" ]; then
			curl -fsSL --proto '=https,http' --retry 2 --connect-timeout 20 --speed-limit 1024 \
				--speed-time 60 --max-filesize "$3" --cacert "$ca_file" -o "$2" "$1" ||
				die "download failed: $1"
		else
			curl -fsSL --proto '=https,http' --retry 2 --connect-timeout 20 --speed-limit 1024 \
				--speed-time 60 --max-filesize "$3" -o "$2" "$1" || die "download failed: $1"
		fi
	elif [ -n "$ca_file" ]; then
		wget -q --timeout=60 --tries=3 --ca-certificate="$ca_file" -O "$2" "$1" ||
			die "download failed: $1"
	else
		wget -q --timeout=60 --tries=3 -O "$2" "$1" || die "download failed: $1"
	fi
}

size_of() { wc -c <"$1" | tr -d ' '; }

check_max_size() {
	[ "$(size_of "$1")" -le "$2" ] || die "$(basename "$1") is larger than $2 bytes"
}

check_size() {
	actual=$(size_of "$1")
	[ "$actual" = "$2" ] || die "$(basename "$1") is $actual bytes, expected $2"
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	else
		die "neither sha256sum nor shasum is installed"
	fi
}

# The manifest's minisign signature, by minisign itself or by OpenSSL 3 (Ed25519 over the
# manifest's BLAKE2b-512: minisign's prehashed "ED" signature, the only kind a release carries).
verify_signature() {
	if [ -z "$pubkey" ]; then
		die "no release public key: set AEGIS_RELEASE_PUBKEY to the base64 line of release.pub"
	fi
	printf '%s\n' "$pubkey" | grep -Eq '^[A-Za-z0-9+/]{56}$' || die "AEGIS_RELEASE_PUBKEY is not a minisign public key"
	if command -v minisign >/dev/null 2>&1; then
		minisign -V -q -P "$pubkey" -m "$1" -x "$2" >/dev/null 2>&1 ||
			die "the manifest's signature does not verify with key $pubkey (minisign)"
		check_signed_file "$2"
		say "manifest signature verified (minisign)"
	elif openssl_ok; then
		verify_with_openssl "$1" "$2"
		check_signed_file "$2"
		say "manifest signature verified (openssl)"
	elif [ "${AEGIS_INSECURE_SHA256_ONLY:-}" = 1 ]; then
		warn "NEITHER minisign NOR OpenSSL 3 IS INSTALLED: THE MANIFEST'S SIGNATURE IS NOT CHECKED."
		warn "AEGIS_INSECURE_SHA256_ONLY=1: the SHA-256 check below only proves the binary is what this controller sent."
	else
		die "cannot check the release signature: neither minisign nor OpenSSL >= 3 is installed.
  Install one (apt install minisign / brew install minisign / OpenSSL 3), or, accepting that only
  the SHA-256 from the controller is checked, rerun with AEGIS_INSECURE_SHA256_ONLY=1."
	fi
}

# The signed comment names the file it vouches for (`aegis update` checks the same), so another
# file signed with the release key cannot stand in for the manifest.
check_signed_file() {
	case "$(sed -n 3p "$1" | tr -d '\r' | tr '\t' ' ') " in
	*" file:manifest.json "*) ;;
	*) die "the signature is not for manifest.json (its trusted comment names another file)" ;;
	esac
}

openssl_ok() {
	command -v openssl >/dev/null 2>&1 || return 1
	# LibreSSL (macOS's /usr/bin/openssl) names itself and has no raw Ed25519 verify.
	case $(openssl version 2>/dev/null) in
	"OpenSSL "[3-9].*) ;;
	*) return 1 ;;
	esac
	printf '' | openssl dgst -blake2b512 -binary >/dev/null 2>&1
}

verify_with_openssl() {
	sig_dir=$work/sig
	mkdir "$sig_dir"
	printf '%s' "$pubkey" | openssl base64 -d -A >"$sig_dir/pub.bin" ||
		die "the release public key is not base64"
	sed -n 2p "$2" | tr -d '\r' | openssl base64 -d -A >"$sig_dir/sig.bin" ||
		die "the signature file is malformed"
	check_size "$sig_dir/pub.bin" 42
	check_size "$sig_dir/sig.bin" 74
	key_alg=$(slice_hex "$sig_dir/pub.bin" 0 2)
	key_id=$(slice_hex "$sig_dir/pub.bin" 2 8)
	sig_alg=$(slice_hex "$sig_dir/sig.bin" 0 2)
	sig_id=$(slice_hex "$sig_dir/sig.bin" 2 8)
	[ "$key_alg" = 4564 ] || die "the release public key is not an Ed25519 minisign key"
	[ "$sig_id" = "$key_id" ] ||
		die "the manifest was signed with key $sig_id, not the release key $key_id"
	# Ed25519 SubjectPublicKeyInfo (DER): a fixed 12-byte prefix, then the 32-byte key.
	printf '\060\052\060\005\006\003\053\145\160\003\041\000' >"$sig_dir/pub.der"
	dd if="$sig_dir/pub.bin" bs=1 skip=10 count=32 2>/dev/null >>"$sig_dir/pub.der"
	dd if="$sig_dir/sig.bin" bs=1 skip=10 count=64 of="$sig_dir/sig.raw" 2>/dev/null
	# Only prehashed "ED" signatures, as the build makes them and `aegis update` accepts them.
	[ "$sig_alg" = 4544 ] || die "the manifest's signature is not a prehashed (ED) minisign signature"
	openssl dgst -blake2b512 -binary "$1" >"$sig_dir/signed"
	ed25519_verify "$sig_dir/signed" "$sig_dir/sig.raw" ||
		die "the manifest's signature does not verify with the release key $key_id"
	# The trusted comment is signed too (signature || comment), as minisign checks it.
	sed -n 3p "$2" | tr -d '\r' | grep -q '^trusted comment: ' || die "the signature has no trusted comment"
	cp "$sig_dir/sig.raw" "$sig_dir/global"
	sed -n 3p "$2" | tr -d '\r\n' | sed 's/^trusted comment: //' | tr -d '\n' >>"$sig_dir/global"
	sed -n 4p "$2" | tr -d '\r' | openssl base64 -d -A >"$sig_dir/global.sig" ||
		die "the signature's comment signature is malformed"
	check_size "$sig_dir/global.sig" 64
	ed25519_verify "$sig_dir/global" "$sig_dir/global.sig" ||
		die "the signature's trusted comment does not verify with the release key $key_id"
}

ed25519_verify() {
	openssl pkeyutl -verify -pubin -keyform DER -inkey "$sig_dir/pub.der" -rawin \
		-in "$1" -sigfile "$2" >/dev/null 2>&1
}

# slice_hex FILE OFFSET COUNT: those bytes as lowercase hex.
slice_hex() {
	dd if="$1" bs=1 skip="$2" count="$3" 2>/dev/null | od -An -tx1 | tr -d ' \n'
}

# The manifest's artifact object for NAME/OS/ARCH, flattened to one line (its values never hold
# spaces or braces: they are enums, hex, numbers and file names).
artifact_entry() {
	tr -d ' \t\r\n' <"$1" | tr '{' '\n' | tr '}' '\n' |
		grep -F "\"name\":\"$2\"" | grep -F "\"os\":\"$3\"" | grep -F "\"arch\":\"$4\"" | head -n 1
}

json_field() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" | head -n 1
}

json_number() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p" | head -n 1
}

path_hint() {
	case ":$PATH:" in
	*":$1:"*) ;;
	*)
		say "$1 is not on your PATH; add it, e.g.:"
		say "  echo 'export PATH=\"$1:\$PATH\"' >> ~/.profile && . ~/.profile"
		;;
	esac
}

# The token goes to enroll on standard input, so it never shows in the process list.
enroll() {
	binary=$1
	shift
	enroll_ca=$ca_file
	if [ -n "$ca_file" ] && [ "$ca_file" = "$work/ca.pem" ]; then
		# enroll keeps the --ca-file path in the host's config for the daemon and `aegis update`;
		# the CA this script carries lives in $work, which goes when the script exits. Keep a copy
		# beside the config (created 0700 as enroll would: it holds the node key too).
		[ -n "${HOME:-}" ] || die "HOME is not set: set AEGIS_CA_FILE to a CA file that stays"
		keep_dir=$HOME/.aegis/edge
		(umask 077 && mkdir -p "$keep_dir") || die "cannot create $keep_dir"
		cp "$ca_file" "$keep_dir/.controller-ca.pem.tmp"
		mv -f "$keep_dir/.controller-ca.pem.tmp" "$keep_dir/controller-ca.pem"
		enroll_ca=$keep_dir/controller-ca.pem
	fi
	if [ -n "$enroll_ca" ]; then set -- --ca-file "$enroll_ca" "$@"; fi
	say "enrolling this host"
	if [ -n "$token_file" ]; then
		[ -r "$token_file" ] || die "cannot read the token file $token_file"
		"$binary" edge enroll --token-file - "$@" <"$token_file"
	else
		printf '%s\n' "$token" | "$binary" edge enroll --token-file - "$@"
	fi
}

aegis_install "$@"
