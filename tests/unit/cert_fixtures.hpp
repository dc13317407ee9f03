#pragma once
// Certificates made by the tests with the openssl CLI (a different implementation from
// the code under test): self-signed pairs, a CA -> intermediate -> leaf chain, and a
// genuinely expired certificate signed with `openssl ca -startdate/-enddate`.

#include "test_support.hpp"

#include <fstream>
#include <string>
#include <vector>

namespace kb::test {

struct PemPair {
  std::string cert;
  std::string key;
};

class CertFactory {
public:
  explicit CertFactory(const TempDir& dir) : dir_(dir.path() / "pki") { std::filesystem::create_directories(dir_); }

  // Self-signed, RSA 2048, valid for `days`, with subjectAltName `san` ("DNS:a,IP:1.2.3.4").
  PemPair self_signed(const std::string& name, const std::string& cn, const std::string& san, int days = 365) {
    const auto key = path(name + ".key"), crt = path(name + ".crt");
    must_run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days",
              std::to_string(days), "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + san});
    return {read_file(crt), read_file(key)};
  }

  // Self-signed with a key of another kind, `newkey` being what `openssl req` takes after
  // -x509: {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"}.
  PemPair self_signed_with(const std::string& name, const std::string& cn, const std::vector<std::string>& newkey) {
    const auto key = path(name + ".key"), crt = path(name + ".crt");
    std::vector<std::string> argv = {"openssl", "req", "-x509"};
    argv.insert(argv.end(), newkey.begin(), newkey.end());
    argv.insert(argv.end(), {"-nodes", "-keyout", key, "-out", crt, "-days", "365", "-subj", "/CN=" + cn, "-addext",
                             "subjectAltName=DNS:" + cn});
    must_run(argv);
    return {read_file(crt), read_file(key)};
  }

  // A key of its own, with no certificate.
  std::string key(const std::string& name) {
    const auto k = path(name + ".key");
    must_run({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", k});
    return read_file(k);
  }

  // The same key, encrypted with a passphrase.
  std::string encrypted(const std::string& key_pem) {
    const auto in = path("plain-for-enc.key"), out = path("encrypted.key");
    write(in, key_pem);
    must_run({"openssl", "pkey", "-in", in, "-out", out, "-aes256", "-passout", "pass:secret-pass"});
    return read_file(out);
  }

  // CA (self-signed) -> intermediate -> leaf for `cn`; returns PEMs of each and the leaf key.
  struct Chain {
    std::string ca, intermediate, leaf, leaf_key;
  };
  Chain chain(const std::string& cn) {
    write(path("ca-ext.cnf"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
    write(path("leaf-ext.cnf"), "subjectAltName=DNS:" + cn + "\nbasicConstraints=CA:FALSE\n");
    must_run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("root.key"), "-out",
              path("root.crt"), "-days", "3650", "-subj", "/CN=Test Root CA", "-addext",
              "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    must_run({"openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path("int.key"), "-out",
              path("int.csr"), "-subj", "/CN=Test Intermediate CA"});
    must_run({"openssl", "x509", "-req", "-in", path("int.csr"), "-CA", path("root.crt"), "-CAkey", path("root.key"),
              "-CAcreateserial", "-out", path("int.crt"), "-days", "1000", "-extfile", path("ca-ext.cnf")});
    must_run({"openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path("leaf.key"), "-out",
              path("leaf.csr"), "-subj", "/CN=" + cn});
    must_run({"openssl", "x509", "-req", "-in", path("leaf.csr"), "-CA", path("int.crt"), "-CAkey", path("int.key"),
              "-CAcreateserial", "-out", path("leaf.crt"), "-days", "365", "-extfile", path("leaf-ext.cnf")});
    return {read_file(path("root.crt")), read_file(path("int.crt")), read_file(path("leaf.crt")),
            read_file(path("leaf.key"))};
  }

  // Valid only during January 2020: expired for real, not by a fake clock.
  PemPair expired(const std::string& cn) {
    const auto d = dir_ / "ca-db";
    std::filesystem::create_directories(d);
    write(d / "index.txt", "");
    write(d / "serial", "1000\n");
    write(d / "ca.cnf", "[ca]\ndefault_ca=d\n[d]\ndatabase=" + (d / "index.txt").string() +
                            "\nserial=" + (d / "serial").string() + "\nnew_certs_dir=" + d.string() +
                            "\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\ncommonName=supplied\n");
    const auto key = path("expired.key"), csr = path("expired.csr"), crt = path("expired.crt");
    must_run({"openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
              "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn});
    must_run({"openssl", "ca", "-batch", "-config", (d / "ca.cnf").string(), "-selfsign", "-keyfile", key, "-in", csr,
              "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-out", crt, "-notext"});
    return {read_file(crt), read_file(key)};
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

private:
  static void write(const std::filesystem::path& p, const std::string& content) {
    std::ofstream out(p, std::ios::binary);
    out << content;
  }
  std::filesystem::path dir_;
};

// "a\nb\n" -> "a\\nb\\n": how Kasm may render PEM into user-data (written for `echo -e`).
inline std::string with_literal_newlines(const std::string& pem) {
  std::string out;
  for (char c : pem)
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

} // namespace kb::test
