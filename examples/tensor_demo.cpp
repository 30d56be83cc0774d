// A first look at sorix tensors and autograd: y = sum(tanh(a * b + 1)), dy/da and dy/db.
#include <iostream>

#include <sorix/sorix.hpp>

int main() {
  auto a = sorix::tensor({{1.f, 2.f}, {3.f, 4.f}}, /*requires_grad=*/true);
  auto b = sorix::tensor({0.5f, -0.25f}, /*requires_grad=*/true);
  auto y = (a * b + 1.0).tanh().sum();
  y.backward();
  std::cout << "threads: " << sorix::parallel::get_num_threads() << "\n"
            << "y = " << y << "\n"
            << "dy/da = " << a.grad() << "\n"
            << "dy/db = " << b.grad() << "\n";
}
