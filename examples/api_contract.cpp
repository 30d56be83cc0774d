// The two programs of the API contract (the Dropout page's demos and a training loop), verbatim
// apart from the framing:
// they must compile against the library and run.
#include <sorix/sorix.hpp>

#include <filesystem>
#include <iostream>

static void dropout_contract() {
    sorix::manual_seed(42);                      // seeds the default generator
    sorix::parallel::set_num_threads(4);         // also SORIX_NUM_THREADS; default: all cores
    auto x = sorix::ones({1, 100000});           // float32 unless a dtype is given
    sorix::nn::Dropout dropout(0.3);             // invalid p (<0, >1, NaN) throws std::invalid_argument
    dropout.train();
    auto y = dropout(x);
    std::cout << y.mean().item<float>() << "\n"; // about 1.0
    dropout.eval();
    auto z = dropout(x);                         // identity: equal to x

    auto a = sorix::tensor({10.f, 20.f, 30.f, 40.f, 50.f}, /*requires_grad=*/true);
    sorix::nn::Dropout half(0.5);
    auto b = half(a);                            // modules start in training mode
    b.sum().backward();
    const xt::xarray<float>& g = a.grad().data<float>();   // each element 0 or 2
    const xt::xarray<float>& v = b.data<float>();          // each element 0 or 2*a
    auto w = sorix::nn::functional::dropout(a, 0.5, /*training=*/true);
    { sorix::NoGradGuard guard; auto c = a * 2.0f; }       // c.requires_grad() == false
    std::cout << g << v << w << z.numel() << "\n";
}

static void training_contract() {
    namespace nn = sorix::nn;
    nn::Sequential model(nn::Linear(nn::LinearOptions(784, 128).bias(false)), nn::BatchNorm1d(128),
                         nn::ReLU(), nn::Linear(128, 64), nn::ReLU(), nn::Dropout(0.2),
                         nn::Linear(64, 10));
    sorix::optim::RMSprop opt(model.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99));
    nn::CrossEntropyLoss loss_fn;
    auto x = sorix::rand({128, 784});
    auto y = sorix::randint(0, 10, {128});           // int64 class indices
    model.train();
    auto loss = loss_fn(model(x), y);
    opt.zero_grad(); loss.backward(); opt.step();
    for (const auto& [name, p] : model.named_parameters()) { std::cout << name << " "; /* "0.weight", "1.bias", ... */ }
    const auto path = (std::filesystem::temp_directory_path() / "model.sorix").string();
    sorix::save(model, path);                        // and sorix::load(model, "model.sorix")
    sorix::load(model, path);
    std::filesystem::remove(path);
    std::cout << "\nloss " << loss.item<float>() << "\n";
}

int main() {
    dropout_contract();
    training_contract();
}
