// X.509 certificates made with OpenSSL's API (no shell-out): the local CA
// and server certificate of `permitd --dev`, and client certificates for
// tests. Keys are ECDSA P-256, signatures SHA-256. For development and
// tests only; production certificates come from the operator's own PKI.
//
// Thread-safety: the functions are thread-compatible (no shared state).
#ifndef PERMIT_SERVER_CERTS_H_
#define PERMIT_SERVER_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace permit::server {

// A certificate and its private key, both PEM.
struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign).
absl::StatusOr<CertAndKey> NewCertificateAuthority(absl::string_view common_name,
                                                   absl::Duration validity);

// What a leaf certificate is for.
struct LeafSpec {
  std::string common_name;
  // subjectAltName entries: DNS names and IP addresses (v4 or v6).
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  // extendedKeyUsage: serverAuth if true, clientAuth if false.
  bool server = true;
  absl::Duration validity = absl::Hours(24 * 365);
};

// A leaf certificate signed by `ca`. INVALID_ARGUMENT for an unparsable CA
// or IP address.
absl::StatusOr<CertAndKey> IssueCertificate(const CertAndKey& ca,
                                            const LeafSpec& spec);

// Checks that `cert_pem` holds a certificate (chain) and `key_pem` the
// private key of its first certificate. INVALID_ARGUMENT naming which is
// wrong; `cert_name`/`key_name` (e.g. the flags) are used in the message.
absl::Status CheckCertificateAndKey(absl::string_view cert_pem,
                                    absl::string_view key_pem,
                                    absl::string_view cert_name,
                                    absl::string_view key_name);
// Checks that `pem` holds at least one certificate.
absl::Status CheckCertificates(absl::string_view pem, absl::string_view name);

}  // namespace permit::server

#endif  // PERMIT_SERVER_CERTS_H_
