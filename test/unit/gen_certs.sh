#!/bin/sh
# Throwaway certificates for test_tls.c, written into DIR (which must exist):
#   ca.pem / ca.key          a CA the tests trust
#   server.pem / server.key  "localhost" and 127.0.0.1 (subjectAltName), signed by the CA;
#                            also good for client authentication
#   self.pem / self.key      a self-signed "localhost" nobody trusts
# EC P-256 keys: generating them takes milliseconds, where RSA would slow every test.
# Valid from now for two days; nothing outside DIR is read or written.
set -eu
dir=$1
cd "$dir"

cat > openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = weft test
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[self_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
EOF

key="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
# OPENSSL_CONF: ignore the system's configuration, whatever it asks for.
export OPENSSL_CONF="$dir/openssl.cnf"

openssl req -x509 -config openssl.cnf -extensions ca_ext $key -days 2 \
    -subj "/CN=weft test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -new -config openssl.cnf $key -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 \
    -extfile openssl.cnf -extensions server_ext -out server.pem 2>/dev/null
openssl req -x509 -config openssl.cnf -extensions self_ext $key -days 2 \
    -subj "/CN=localhost" -keyout self.key -out self.pem 2>/dev/null
rm -f server.csr
