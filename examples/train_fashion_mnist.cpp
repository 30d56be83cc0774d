// The main job: sorix's own benchmark model on Fashion-MNIST.
//   --model mlp (default): 784 -> Linear(128, bias=false) -> BatchNorm1d(128) -> ReLU -> Linear(64)
//       -> ReLU -> Dropout(0.2) -> Linear(10); RMSprop(lr=1e-3, alpha=0.99).
//   --model cnn: conv-bn-relu-pool twice (32 and 64 channels), dropout, linear
//       (examples/support/fashion_model.hpp); Adam(lr=1e-3).
//   CrossEntropyLoss, batch 128, shuffled, 5 epochs, inputs scaled to [0, 1].
// Prints a progress bar per epoch, then test accuracy (eval mode) and time per epoch, the test
// set's confusion matrix and per-class precision, recall and F1 (sorix::metrics); writes a
// checkpoint, the curves as CSV and an SVG plot into the output folder, and prints the weights'
// SHA-256 digest.
//
//   train_fashion_mnist [--model mlp|cnn] [--epochs 5] [--batch-size 128] [--lr 1e-3] [--threads N] [--seed 0]
//                       [--data /usr/share/datasets/fashion-mnist] [--out out] [--distributed]
//
// --distributed: one rank of a data-parallel run (sorixrun --nproc N train_fashion_mnist --distributed
// ...; docs/distributed.md): the model in nn::DistributedDataParallel with SyncBatchNorm, each rank
// its rows of the same global batches (data::DistributedSampler, the DataLoader's order). It trains
// to the weights of the single-process run, bit for bit, at any number of ranks (mlp and cnn).
// Rank 0 prints and writes the outputs.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/fashion_model.hpp"
#include "examples/support/files.hpp"
#include "examples/support/progress.hpp"
#include "examples/support/svg_plot.hpp"
#include "sorix/nn/data/distributed_sampler.hpp"
#include "sorix/nn/distributed/data_parallel.hpp"
#include "sorix/nn/distributed/process_group.hpp"

namespace nn = sorix::nn;
using sorix::Tensor;

namespace {

struct Args {
  int epochs = 5;
  std::int64_t batch_size = 128;
  double lr = 1e-3;
  int threads = 0;  // 0: every core (or SORIX_NUM_THREADS)
  std::uint64_t seed = 0;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out = "out";
  std::string model = "mlp";
  bool distributed = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "train_fashion_mnist: " << why << "\n"
            << "usage: train_fashion_mnist [--model mlp|cnn] [--epochs N] [--batch-size N] [--lr X] [--threads N] [--seed N]\n"
            << "                           [--data DIR] [--out DIR] [--distributed]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("train the Fashion-MNIST benchmark model");
    if (flag == "--distributed") {
      a.distributed = true;
      continue;
    }
    if (i + 1 >= argc) usage("missing value after " + flag);
    const std::string v = argv[++i];
    try {
      if (flag == "--epochs") a.epochs = std::stoi(v);
      else if (flag == "--batch-size") a.batch_size = std::stoll(v);
      else if (flag == "--lr") a.lr = std::stod(v);
      else if (flag == "--threads") a.threads = std::stoi(v);
      else if (flag == "--seed") a.seed = std::stoull(v);
      else if (flag == "--data") a.data = v;
      else if (flag == "--out") a.out = v;
      else if (flag == "--model") a.model = v;
      else usage("unknown flag " + flag);
    } catch (const std::logic_error&) {
      usage("bad value '" + v + "' for " + flag);
    }
  }
  if (a.epochs < 1 || a.batch_size < 1 || !(a.lr > 0) || a.threads < 0) usage("values must be positive");
  if (a.model != "mlp" && a.model != "cnn") usage("--model must be mlp or cnn, got '" + a.model + "'");
  return a;
}

// Mean loss and accuracy of the model on a dataset, in eval mode, batches of 4096.
std::pair<double, double> evaluate(nn::Module& model, const Tensor& images, const Tensor& labels) {
  sorix::NoGradGuard no_grad;
  model.eval();
  nn::CrossEntropyLoss loss_sum(nn::CrossEntropyLossOptions().reduction(nn::Reduction::Sum));
  const std::int64_t n = images.size(0), step = 4096;
  double loss = 0, correct = 0;
  for (std::int64_t b = 0; b < n; b += step) {
    const std::int64_t e = std::min(n, b + step);
    Tensor x = images.slice(0, b, e), y = labels.slice(0, b, e);
    Tensor logits = model(x);
    loss += loss_sum(logits, y).item<double>();
    correct += logits.argmax(1).eq(y).sum().item<double>();
  }
  model.train();
  return {loss / static_cast<double>(n), correct / static_cast<double>(n)};
}

// The predicted class of every image (eval mode, batches of 4096): int64 [n].
Tensor predict_classes(nn::Module& model, const Tensor& images) {
  sorix::NoGradGuard no_grad;
  model.eval();
  std::vector<Tensor> parts;
  for (std::int64_t b = 0; b < images.size(0); b += 4096) {
    parts.push_back(model(images.slice(0, b, std::min(images.size(0), b + 4096))).argmax(1));
  }
  model.train();
  return sorix::cat(parts, 0);
}

const std::vector<std::string> kClassNames{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Rows: true class; columns: predicted class (numbered as the rows).
void print_confusion_matrix(const Tensor& cm) {
  std::printf("confusion matrix (rows: true class, columns: predicted class)\n%16s", "");
  for (std::int64_t j = 0; j < cm.size(1); ++j) std::printf(" %5lld", static_cast<long long>(j));
  std::printf("\n");
  for (std::int64_t i = 0; i < cm.size(0); ++i) {
    std::printf("%2lld %-13s", static_cast<long long>(i), kClassNames[static_cast<std::size_t>(i)].c_str());
    for (std::int64_t j = 0; j < cm.size(1); ++j)
      std::printf(" %5lld", static_cast<long long>(cm.data_ptr<std::int64_t>()[i * cm.size(1) + j]));
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (args.threads > 0) sorix::parallel::set_num_threads(args.threads);

  const std::string train_images = args.data + "/train-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(train_images)) {
    std::cerr << "train_fashion_mnist: no Fashion-MNIST data in " << args.data << "\n"
              << "  Install it with:  sudo apt-get install dataset-fashion-mnist   (or: make run, which does)\n"
              << "  or point --data at a folder holding train-images-idx3-ubyte.gz and friends.\n";
    return 1;
  }
  auto train = sorix::data::load_fashion_mnist(args.data, /*train=*/true);
  auto test = sorix::data::load_fashion_mnist(args.data, /*train=*/false);

  if (args.distributed) sorix::distributed::init_process_group();  // env:// (set by sorixrun)
  const int rank = sorix::distributed::get_rank(), world = sorix::distributed::get_world_size();
  const bool lead = rank == 0;  // prints and writes the outputs

  sorix::manual_seed(args.seed);
  const bool cnn = args.model == "cnn";
  auto model_ptr = std::make_shared<nn::Sequential>(cnn ? sorix::examples::make_fashion_cnn()
                                                        : sorix::examples::make_fashion_model());
  nn::Sequential& model = *model_ptr;
  std::shared_ptr<nn::DistributedDataParallel> ddp;
  if (args.distributed) ddp = std::make_shared<nn::DistributedDataParallel>(nn::convert_sync_batchnorm(model_ptr));
  nn::Module& net = ddp ? static_cast<nn::Module&>(*ddp) : model;
  std::unique_ptr<sorix::optim::Optimizer> optimizer;
  if (cnn) optimizer = std::make_unique<sorix::optim::Adam>(model.parameters(), sorix::optim::AdamOptions(args.lr));
  else optimizer = std::make_unique<sorix::optim::RMSprop>(model.parameters(), sorix::optim::RMSpropOptions(args.lr).alpha(0.99));
  sorix::optim::Optimizer& opt = *optimizer;
  nn::CrossEntropyLoss loss_fn;
  sorix::data::DataLoader loader(
      train, sorix::data::DataLoaderOptions().batch_size(args.batch_size).shuffle(true).seed(args.seed));
  std::unique_ptr<sorix::data::DistributedSampler> sampler;
  if (args.distributed) {
    sampler = std::make_unique<sorix::data::DistributedSampler>(
        train.size(), sorix::data::DistributedSamplerOptions(args.batch_size).seed(args.seed));
  }
  // The epoch's batches: this rank's rows of each global batch (distributed), or the loader's.
  auto for_each_batch = [&](int epoch, const std::function<void(const sorix::data::Batch&)>& body) {
    if (!sampler) {
      for (auto& batch : loader) body(batch);
      return;
    }
    sampler->set_epoch(epoch - 1);
    while (auto idx = sampler->next()) body(train.get_batch(idx->data_ptr<std::int64_t>(), idx->numel()));
  };

  if (!lead) std::cout.setstate(std::ios::failbit);  // one rank prints
  std::cout << "sorix: Fashion-MNIST, " << train.size() << " training / " << test.size() << " test images, "
            << sorix::parallel::get_num_threads() << " threads, CPU capability " << sorix::cpu_capability() << ", seed "
            << args.seed << (args.distributed ? ", " + std::to_string(world) + " ranks" : std::string()) << "\n"
            << model << "\n";

  std::vector<double> step_x, step_loss, epoch_x, train_loss, train_acc, test_loss, test_acc, epoch_secs;
  const std::size_t batches = static_cast<std::size_t>(loader.num_batches());
  std::int64_t global_step = 0;
  net.train();
  for (int epoch = 1; epoch <= args.epochs; ++epoch) {
    std::unique_ptr<sorix::examples::ProgressBar> bar;
    if (lead) bar = std::make_unique<sorix::examples::ProgressBar>("epoch " + std::to_string(epoch) + "/" + std::to_string(args.epochs), batches);
    double loss_total = 0, correct = 0;
    std::size_t seen = 0, done = 0;
    for_each_batch(epoch, [&](const sorix::data::Batch& batch) {
      Tensor logits = net.forward(batch.data);
      Tensor loss = loss_fn(logits, batch.target);
      opt.zero_grad();
      loss.backward();
      opt.step();
      const double l = loss.item<double>();  // the global batch's mean on every rank
      std::size_t bs = static_cast<std::size_t>(batch.data.size(0));
      {
        sorix::NoGradGuard no_grad;
        Tensor counts = sorix::tensor(std::vector<double>{logits.argmax(1).eq(batch.target).sum().item<double>(),
                                                          static_cast<double>(bs)}, {2}, sorix::float64);
        // Whole-batch counts (integers: exact in any order).
        if (args.distributed) sorix::distributed::all_reduce(counts);
        correct += counts.data_ptr<double>()[0];
        bs = static_cast<std::size_t>(counts.data_ptr<double>()[1]);
      }
      loss_total += l * static_cast<double>(bs);
      seen += bs;
      ++done;
      ++global_step;
      step_x.push_back(static_cast<double>(global_step));
      step_loss.push_back(l);
      if (bar) bar->update(done, loss_total / static_cast<double>(seen), seen);
    });
    const double secs = bar ? bar->elapsed() : 0.0;
    if (!lead) continue;
    auto [tl, ta] = evaluate(model, test.data(), test.targets());
    epoch_x.push_back(epoch);
    train_loss.push_back(loss_total / static_cast<double>(seen));
    train_acc.push_back(correct / static_cast<double>(seen));
    test_loss.push_back(tl);
    test_acc.push_back(ta);
    epoch_secs.push_back(secs);
    if (lead) {
      std::printf("epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.2f s\n", epoch,
                  train_loss.back(), train_acc.back(), tl, ta, secs);
    }
  }

  if (!lead) {
    sorix::distributed::destroy_process_group();
    return 0;
  }
  double total = 0;
  for (double s : epoch_secs) total += s;
  std::printf("test accuracy (eval mode): %.4f\ntime per epoch: %.2f s (total %.2f s)\n", test_acc.back(),
              total / static_cast<double>(epoch_secs.size()), total);

  {
    const Tensor predicted = predict_classes(model, test.data());
    const std::vector<std::int64_t> classes{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    print_confusion_matrix(sorix::metrics::confusion_matrix(
        test.targets(), predicted, sorix::metrics::ConfusionMatrixOptions().labels(classes)));
    std::cout << "\n"
              << sorix::metrics::classification_report(
                     test.targets(), predicted,
                     sorix::metrics::ClassificationReportOptions().labels(classes).target_names(kClassNames).digits(3));
  }

  std::filesystem::create_directories(args.out);
  const std::string checkpoint = cnn ? "/fashion_mnist_cnn.sorix" : "/fashion_mnist.sorix";
  sorix::save(model, args.out + checkpoint);
  std::ostringstream csv, steps;
  csv << "epoch,train_loss,train_acc,test_loss,test_acc,seconds\n";
  for (std::size_t i = 0; i < epoch_x.size(); ++i) {
    csv << epoch_x[i] << ',' << train_loss[i] << ',' << train_acc[i] << ',' << test_loss[i] << ',' << test_acc[i]
        << ',' << epoch_secs[i] << '\n';
  }
  steps << "step,loss\n";
  for (std::size_t i = 0; i < step_x.size(); ++i) steps << step_x[i] << ',' << step_loss[i] << '\n';
  sorix::examples::write_file_atomic(args.out + "/curves.csv", csv.str());
  sorix::examples::write_file_atomic(args.out + "/loss_per_step.csv", steps.str());
  std::vector<double> epoch_steps;
  for (double e : epoch_x) epoch_steps.push_back(e * static_cast<double>(batches));
  const std::string svg = sorix::examples::svg_document(
      900, 340,
      sorix::examples::svg_panel("loss", {{"train (per step)", "#4a90d9", step_x, step_loss},
                                          {"test (per epoch)", "#d9534f", epoch_steps, test_loss}},
                                 0, 0, 450, 340) +
          sorix::examples::svg_panel("accuracy", {{"train", "#4a90d9", epoch_x, train_acc},
                                                  {"test", "#d9534f", epoch_x, test_acc}},
                                     450, 0, 450, 340));
  sorix::examples::write_file_atomic(args.out + "/curves.svg", svg);
  std::cout << "wrote " << args.out << checkpoint << ", curves.csv, loss_per_step.csv, curves.svg\n";
  std::cout << "weights digest: " << sorix::sha256_hex(model.state_dict()) << "\n";
  if (args.distributed) sorix::distributed::destroy_process_group();
  return 0;
}
