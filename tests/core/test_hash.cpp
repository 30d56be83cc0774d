// SHA-256 digests used to compare runs bit for bit (determinism_check, tests/determinism).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include <sorix/sorix.hpp>

TEST_CASE("SHA-256 matches the FIPS 180-4 test vectors", "[hash]") {
  CHECK(sorix::sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sorix::sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(sorix::sha256_hex(two_blocks.data(), two_blocks.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  CHECK(sorix::sha256_hex(million.data(), million.size()) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("incremental updates give the same digest as one update", "[hash]") {
  const std::string text = "the quick brown fox jumps over the lazy dog, repeatedly, past one block boundary";
  sorix::Sha256 h;
  for (char c : text) h.update(&c, 1);
  CHECK(h.hex_digest() == sorix::sha256_hex(text.data(), text.size()));
}

TEST_CASE("tensor digests see every bit, the dtype and the shape", "[hash]") {
  sorix::Tensor a = sorix::arange(12.0).reshape({3, 4});
  sorix::Tensor b = a.clone();
  CHECK(sorix::sha256_hex(a) == sorix::sha256_hex(b));
  b.data_ptr<float>()[7] = std::nextafter(b.data_ptr<float>()[7], 100.0f);  // one ulp
  CHECK(sorix::sha256_hex(a) != sorix::sha256_hex(b));
  CHECK(sorix::sha256_hex(a) != sorix::sha256_hex(a.reshape({4, 3})));
  CHECK(sorix::sha256_hex(a) != sorix::sha256_hex(a.to(sorix::float64)));

  sorix::StateDict s1{{"w", a}, {"b", sorix::zeros({2})}};
  sorix::StateDict s2{{"w", a.clone()}, {"b", sorix::zeros({2})}};
  sorix::StateDict renamed{{"v", a}, {"b", sorix::zeros({2})}};
  CHECK(sorix::sha256_hex(s1) == sorix::sha256_hex(s2));
  CHECK(sorix::sha256_hex(s1) != sorix::sha256_hex(renamed));
}
