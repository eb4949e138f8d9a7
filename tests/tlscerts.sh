# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# tests/tlscerts.sh DIR: a throwaway PKI for the TLS cases, made with certtool
# (gnutls-bin). Sourced or run; writes into DIR:
#   ca.pem ca.key             the test CA
#   web.pem web.key           CN web.test, SAN web.test, 127.0.0.1, ::1
#   api.pem api.key           CN api.test, SAN api.test (the second SNI name)
#   backend.pem backend.key   CN backend.test, SAN backend.test, 127.0.0.1, ::1
#   expired.pem expired.key   backend.test again, expired a year ago
#   rogue.pem rogue.key       backend.test, self-signed (not from the CA)
set -eu
_tc_dir=$1
mkdir -p "$_tc_dir"
cd "$_tc_dir"
_tc_cert() {	# NAME CN "SANs" [extra template lines] : key and cert signed by the CA
	local name=$1 cn=$2 sans=$3 extra=${4:-} s
	certtool --generate-privkey --key-type=ecdsa --outfile "$name.key" 2>/dev/null
	{
		echo "cn = $cn"
		for s in $sans; do
			case $s in
			*[!0-9.:]*) echo "dns_name = $s" ;;
			*) echo "ip_address = $s" ;;
			esac
		done
		echo "tls_www_server"
		echo "signing_key"
		echo "encryption_key"
		[ -z "$extra" ] || printf '%s\n' "$extra"
	} >"$name.tmpl"
	certtool --generate-certificate --load-privkey "$name.key" --load-ca-certificate ca.pem \
		--load-ca-privkey ca.key --template "$name.tmpl" --outfile "$name.pem" 2>/dev/null
}
certtool --generate-privkey --key-type=ecdsa --outfile ca.key 2>/dev/null
printf 'cn = kproxy test CA\nca\ncert_signing_key\nexpiration_days = 30\n' >ca.tmpl
certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem 2>/dev/null
_tc_cert web web.test "web.test 127.0.0.1 ::1" "expiration_days = 30"
_tc_cert api api.test "api.test" "expiration_days = 30"
_tc_cert backend backend.test "backend.test 127.0.0.1 ::1" "expiration_days = 30"
_tc_cert expired backend.test "backend.test 127.0.0.1" \
	"$(printf 'activation_date = "%s"\nexpiration_date = "%s"' \
		"$(date -u -d '-2 years' '+%Y-%m-%d %H:%M:%S')" "$(date -u -d '-1 year' '+%Y-%m-%d %H:%M:%S')")"
certtool --generate-privkey --key-type=ecdsa --outfile rogue.key 2>/dev/null
printf 'cn = backend.test\ndns_name = backend.test\nip_address = 127.0.0.1\ntls_www_server\nsigning_key\nexpiration_days = 30\n' >rogue.tmpl
certtool --generate-self-signed --load-privkey rogue.key --template rogue.tmpl --outfile rogue.pem 2>/dev/null
cd - >/dev/null
