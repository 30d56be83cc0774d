// Built against the installed package (scripts/check-consumer.sh): trains a tiny model and checks
// what a user would, exiting non-zero on any mismatch.
#include <sorix/sorix.hpp>

#include <cstdio>

int main() {
  namespace nn = sorix::nn;
  sorix::manual_seed(42);
  sorix::parallel::set_num_threads(2);
  nn::Sequential model(nn::Linear(4, 16), nn::ReLU(), nn::Dropout(0.2), nn::Linear(16, 3));
  sorix::optim::Adam opt(model.parameters(), sorix::optim::AdamOptions(1e-2));
  nn::CrossEntropyLoss loss_fn;
  const sorix::Tensor x = sorix::randn({64, 4});
  const sorix::Tensor y = sorix::randint(0, 3, {64});
  model.train();
  float first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    sorix::Tensor loss = loss_fn(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  std::printf("consumer: cpu %s, loss %.4f -> %.4f\n", sorix::cpu_capability().c_str(), first, last);
  return last < first ? 0 : 1;
}
