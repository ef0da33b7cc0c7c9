// Certificate making with OpenSSL 3; see certs.h.
#include "server/certs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace permit::server {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

absl::Status OpenSslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, " failed (OpenSSL)"));
}

absl::StatusOr<Key> NewKey() {
  Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslError("P-256 key generation");
  return key;
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("writing a private key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || !PEM_write_bio_X509(bio.get(), cert)) {
    return OpenSslError("writing a certificate");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

// Adds one extension given in OpenSSL's config syntax.
absl::Status AddExtension(X509* cert, X509* issuer, int nid,
                          const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (ext == nullptr || !X509_add_ext(cert, ext.get(), -1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate extension ", OBJ_nid2sn(nid), "=", value,
                     " is not valid"));
  }
  return absl::OkStatus();
}

// A certificate for `key` named `common_name`, valid from an hour ago (for
// clock skew) for `validity`, with a random 128-bit serial. Not yet signed.
absl::StatusOr<Cert> NewCert(EVP_PKEY* key, absl::string_view common_name,
                             absl::Duration validity) {
  Cert cert(X509_new());
  if (cert == nullptr || !X509_set_version(cert.get(), X509_VERSION_3)) {
    return OpenSslError("X509_new");
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpenSslError("RAND_bytes");
  serial[0] &= 0x7f;  // positive
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(
      BN_bin2bn(serial, sizeof serial, nullptr));
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) ==
                           nullptr) {
    return OpenSslError("setting the serial number");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      absl::ToInt64Seconds(validity)) == nullptr) {
    return OpenSslError("setting the validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn(common_name);
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>("permit"),
                                  -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()),
                                  -1, -1, 0) ||
      !X509_set_pubkey(cert.get(), key)) {
    return OpenSslError("setting the subject");
  }
  return cert;
}

}  // namespace

absl::StatusOr<CertAndKey> NewCertificateAuthority(absl::string_view common_name,
                                                   absl::Duration validity) {
  absl::StatusOr<Key> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<Cert> cert = NewCert(key->get(), common_name, validity);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  if (!X509_set_issuer_name(c, X509_get_subject_name(c))) {
    return OpenSslError("setting the issuer");
  }
  for (auto [nid, value] : {std::pair<int, const char*>{NID_basic_constraints,
                                                        "critical,CA:TRUE,pathlen:0"},
                            {NID_key_usage, "critical,keyCertSign,cRLSign"},
                            {NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = AddExtension(c, c, nid, value); !s.ok()) return s;
  }
  if (X509_sign(c, key->get(), EVP_sha256()) == 0) return OpenSslError("signing");
  CertAndKey out;
  absl::StatusOr<std::string> cert_pem = CertPem(c);
  absl::StatusOr<std::string> key_pem = KeyPem(key->get());
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  out.cert_pem = *std::move(cert_pem);
  out.key_pem = *std::move(key_pem);
  return out;
}

absl::StatusOr<CertAndKey> IssueCertificate(const CertAndKey& ca,
                                            const LeafSpec& spec) {
  Bio ca_cert_bio(BIO_new_mem_buf(ca.cert_pem.data(), static_cast<int>(ca.cert_pem.size())));
  Cert ca_cert(PEM_read_bio_X509(ca_cert_bio.get(), nullptr, nullptr, nullptr));
  Bio ca_key_bio(BIO_new_mem_buf(ca.key_pem.data(), static_cast<int>(ca.key_pem.size())));
  Key ca_key(PEM_read_bio_PrivateKey(ca_key_bio.get(), nullptr, nullptr, nullptr));
  if (ca_cert == nullptr || ca_key == nullptr) {
    return absl::InvalidArgumentError("the CA certificate or key is not valid PEM");
  }
  absl::StatusOr<Key> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<Cert> cert = NewCert(key->get(), spec.common_name, spec.validity);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  if (!X509_set_issuer_name(c, X509_get_subject_name(ca_cert.get()))) {
    return OpenSslError("setting the issuer");
  }
  std::vector<std::string> sans;
  for (const std::string& d : spec.dns_names) sans.push_back(absl::StrCat("DNS:", d));
  for (const std::string& ip : spec.ip_addresses) sans.push_back(absl::StrCat("IP:", ip));
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, spec.server ? "serverAuth" : "clientAuth"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  if (!sans.empty()) extensions.push_back({NID_subject_alt_name, absl::StrJoin(sans, ",")});
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(c, ca_cert.get(), nid, value); !s.ok()) return s;
  }
  if (X509_sign(c, ca_key.get(), EVP_sha256()) == 0) return OpenSslError("signing");
  CertAndKey out;
  absl::StatusOr<std::string> cert_pem = CertPem(c);
  absl::StatusOr<std::string> key_pem = KeyPem(key->get());
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  out.cert_pem = *std::move(cert_pem);
  out.key_pem = *std::move(key_pem);
  return out;
}

absl::Status CheckCertificates(absl::string_view pem, absl::string_view name) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
  }
  return absl::OkStatus();
}

absl::Status CheckCertificateAndKey(absl::string_view cert_pem,
                                    absl::string_view key_pem,
                                    absl::string_view cert_name,
                                    absl::string_view key_name) {
  Bio cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        cert_name, ": no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
  }
  Bio key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_name, ": no unencrypted PEM private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        key_name, " is not the private key of the certificate in ", cert_name));
  }
  return absl::OkStatus();
}

}  // namespace permit::server
