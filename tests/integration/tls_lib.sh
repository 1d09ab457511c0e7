# shellcheck shell=bash
# tls_lib.sh -- throwaway certificate authorities and certificates for the
# TLS tests (source it after lib.sh), made with openssl: a CA, and
# certificates it signs for a server (with the names a client checks) or a
# client. Keys are P-256; everything lives under the test's directory.

# make_ca DIR NAME -- DIR/NAME.key and the self-signed DIR/NAME.crt.
make_ca() {
    local dir=$1 name=$2
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$name" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null
}

# make_cert DIR CA NAME SAN [USAGE] -- DIR/NAME.key and DIR/NAME.crt signed
# by DIR/CA, with the subjectAltName SAN (e.g. "IP:127.0.0.1,DNS:localhost")
# and the extended key usage USAGE (serverAuth, the default, or clientAuth).
make_cert() {
    local dir=$1 ca=$2 name=$3 san=$4 usage=${5:-serverAuth}
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" \
        "$usage" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}
