// The two demos of sorix's Dropout page, in C++: signal conservation and the backward pass.
// Each runs from the same seed at 1 thread and at every thread, and the outputs are compared
// bit for bit: Dropout's masks come from counter-based streams, not from the threads.
//
//   dropout_demo [--seed N]
// The default seed, 87, draws the same mask as the seed page's example run ([0, 40, 0, 80, 100]);
// any other seed gives another mask, identical at every thread count.
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>

#include <sorix/sorix.hpp>

namespace {

struct Run {
  double input_mean, train_mean, eval_mean;
  sorix::Tensor y, grad;
};

Run run_demos(std::uint64_t seed, bool print) {
  sorix::manual_seed(seed);
  Run r;
  // 1. Signal conservation: 100,000 ones, p = 0.3.
  auto x = sorix::ones({1, 100000});
  r.input_mean = x.mean().item<double>();
  sorix::nn::Dropout dropout(0.3);
  dropout.train();
  r.train_mean = dropout(x).mean().item<double>();
  dropout.eval();
  r.eval_mean = dropout(x).mean().item<double>();

  // 2. Backward: [10, 20, 30, 40, 50], p = 0.5.
  auto X = sorix::tensor({10.f, 20.f, 30.f, 40.f, 50.f}, /*requires_grad=*/true);
  sorix::nn::Dropout half(0.5);
  half.train();
  r.y = half(X);
  r.y.sum().backward();
  r.grad = X.grad();

  if (print) {
    std::cout << std::fixed << std::setprecision(4);
    std::cout << "Signal conservation (" << dropout << ")\n"
              << "  Average of input:           " << r.input_mean << "\n"
              << "  Average in TRAINING (p=0.3): " << r.train_mean << "\n"
              << "  Average in EVALUATION:       " << r.eval_mean << "\n";
    std::cout.unsetf(std::ios::floatfield);
    std::cout << "Backward pass (" << half << ")\n"
              << "  Input X:        " << X.detach() << "\n"
              << "  Output Y:       " << r.y.detach() << "\n"
              << "  Gradients of X: " << r.grad << "\n"
              << "  Scaling factor (1/(1-p)): " << std::fixed << std::setprecision(2) << 1.0 / (1.0 - 0.5) << "\n";
    std::cout.unsetf(std::ios::floatfield);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 87;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::cerr << "usage: dropout_demo [--seed N]\n";
      return 2;
    }
  }
  const int all = sorix::parallel::hardware_threads();
  sorix::parallel::set_num_threads(1);
  std::cout << "== 1 thread (seed " << seed << ")\n";
  Run one = run_demos(seed, true);
  sorix::parallel::set_num_threads(all);
  std::cout << "\n== " << all << " threads (seed " << seed << ")\n";
  Run many = run_demos(seed, true);

  // The 100,000-element mask is drawn in parallel chunks; compare it bit for bit as well.
  auto masks_at = [&](int threads) {
    sorix::parallel::set_num_threads(threads);
    sorix::manual_seed(seed);
    return sorix::nn::functional::dropout(sorix::ones({1, 1000003}), 0.3, true);
  };
  auto m1 = masks_at(1), mn = masks_at(all);
  const bool same = one.train_mean == many.train_mean && (one.y - many.y).abs().sum().item<double>() == 0.0 &&
                    (one.grad - many.grad).abs().sum().item<double>() == 0.0 &&
                    (m1 - mn).abs().sum().item<double>() == 0.0;
  std::cout << "\nSame outputs, gradients and a 1,000,003-element mask at 1 and " << all
            << " threads: " << (same ? "yes" : "NO") << "\n";
  return same ? 0 : 1;
}
