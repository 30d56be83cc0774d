#pragma once
// Inverted dropout (sorix's Dropout page): in training, each element is zeroed with probability
// p and survivors are scaled by 1/(1-p), so E[y] = x; in eval mode (and for p == 0) it is the
// identity; p == 1 gives zeros and zero gradients. Backward: dx = dy * M / (1-p).
//
// Randomness: element i keeps iff its 32-bit Philox word u >= round(p * 2^32) (exact to 2^-32).
// The words come from the counters the call reserves on its generator (default: the one
// manual_seed seeds), so the mask is a pure function of (seed, offset, i): bit-identical for
// any thread count. The words are generated inside the loop that scales and stores (one pass).
//
// The mask is kept as bits (n/8 bytes) for backward by default: measured faster than
// regenerating it from the counters (docs/benchmarks.md); Regenerate keeps no mask at all.
// Dtypes: float32, float64. Threading: fixed chunks in the library arena.
#include <string>

#include "sorix/core/generator.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

enum class DropoutMask { Bits, Regenerate };

struct DropoutOptions {
  DropoutOptions(double p = 0.5) : p_(p) {}  // NOLINT: implicit, as PyTorch's
  DropoutOptions& p(double v) { p_ = v; return *this; }
  DropoutOptions& mask(DropoutMask m) { mask_ = m; return *this; }
  double p() const { return p_; }
  DropoutMask mask() const { return mask_; }

 private:
  double p_;
  DropoutMask mask_ = DropoutMask::Bits;
};

namespace functional {
/// Inverted dropout. p outside [0, 1] or NaN throws std::invalid_argument naming p.
/// training == false or p == 0 returns `input` itself.
Tensor dropout(const Tensor& input, double p = 0.5, bool training = true, Generator* generator = nullptr,
               DropoutMask mask = DropoutMask::Bits);
}  // namespace functional

class Dropout : public Module {
 public:
  explicit Dropout(DropoutOptions options = {});
  explicit Dropout(double p) : Dropout(DropoutOptions(p)) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  const DropoutOptions& options() const { return options_; }

 private:
  DropoutOptions options_;
};

}  // namespace sorix::nn
