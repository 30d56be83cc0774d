// Checkpoint API: models, generators, state dicts and whole training runs (nn/checkpoint.hpp).
#include "sorix/nn/checkpoint.hpp"

#include <bit>
#include <stdexcept>
#include <vector>

#include "sorix/autograd/grad_mode.hpp"
#include "sorix/core/error.hpp"

namespace sorix {

namespace {

// Re-throws a mismatch error of a well-formed file with the path in front.
template <class F>
void with_path(const char* op, const std::string& path, F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(op) + ": '" + path + "': " + e.what());
  }
}

Tensor int64_scalar(std::int64_t v) {
  Tensor t = empty({}, Dtype::Int64);
  t.data_ptr<std::int64_t>()[0] = v;
  return t;
}

std::int64_t read_int64_scalar(const StateDict& state, const std::string& name) {
  const Tensor* t = state.find(name);
  check(t != nullptr, "Checkpoint::load_state_dict", "missing entry '", name, "'");
  check(t->dtype() == Dtype::Int64 && t->numel() == 1, "Checkpoint::load_state_dict", "entry '", name,
        "' must be a one-element int64 tensor, got ", dtype_name(t->dtype()), shape_string(t->shape()));
  return t->data_ptr<std::int64_t>()[0];
}

Generator::State parse_generator_state(const StateDict& state) {
  const char* op = "load_generator_state_dict";
  std::vector<std::string> names;
  for (const auto& [n, t] : state) names.push_back(n);
  check(state.size() == 1 && state.contains("state"), op, "expected exactly one entry named 'state', got ", names);
  const Tensor& t = state.at("state");
  check(t.dtype() == Dtype::Int64 && t.shape() == Shape{2}, op, "expected 'state' to be int64 [2] (seed, offset), got ",
        dtype_name(t.dtype()), shape_string(t.shape()));
  const std::int64_t* p = t.data_ptr<std::int64_t>();
  return Generator::State{std::bit_cast<std::uint64_t>(p[0]), std::bit_cast<std::uint64_t>(p[1])};
}

StateDict deep_copy(const StateDict& state) {
  NoGradGuard guard;
  StateDict out;
  for (const auto& [n, t] : state) out.insert(n, t.detach().clone());
  return out;
}

}  // namespace

void save(const nn::Module& model, const std::string& path) { save_state(model.state_dict(), path); }

void load(nn::Module& model, const std::string& path) {
  const StateDict state = load_state(path);
  with_path("load", path, [&] { model.load_state_dict(state); });
}

StateDict generator_state_dict(const Generator& gen) {
  const Generator::State s = gen.get_state();
  Tensor t = empty({2}, Dtype::Int64);
  t.data_ptr<std::int64_t>()[0] = std::bit_cast<std::int64_t>(s.seed);
  t.data_ptr<std::int64_t>()[1] = std::bit_cast<std::int64_t>(s.offset);
  StateDict out;
  out.insert("state", t);
  return out;
}

void load_generator_state_dict(Generator& gen, const StateDict& state) { gen.set_state(parse_generator_state(state)); }

void save(const Generator& gen, const std::string& path) { save_state(generator_state_dict(gen), path); }

void load(Generator& gen, const std::string& path) {
  const StateDict state = load_state(path);
  with_path("load", path, [&] { load_generator_state_dict(gen, state); });
}

void save(const StateDict& state, const std::string& path) { save_state(state, path); }

void Checkpoint::add_part(const std::string& name, std::function<StateDict()> get,
                          std::function<void(const StateDict&)> set) {
  const char* op = "Checkpoint::add";
  check(!name.empty() && name.find('.') == std::string::npos, op, "part name must be non-empty and without '.', got '",
        name, "'");
  check(name != "model" && name != "rng" && name != "meta", op, "part name '", name, "' is reserved");
  for (const Part& p : parts_) check(p.name != name, op, "a part named '", name, "' was already added");
  parts_.push_back(Part{name, std::move(get), std::move(set)});
}

StateDict Checkpoint::state_dict() const {
  StateDict out;
  out.merge(model_->state_dict(), "model.");
  for (const Part& p : parts_) out.merge(p.get(), p.name + ".");
  if (gen_ != nullptr) out.merge(generator_state_dict(*gen_), "rng.");
  out.insert("meta.epoch", int64_scalar(epoch));
  out.insert("meta.step", int64_scalar(step));
  return out;
}

void Checkpoint::load_state_dict(const StateDict& state) {
  const char* op = "Checkpoint::load_state_dict";
  // Every entry must belong to a part this checkpoint holds.
  auto starts = [](const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; };
  std::vector<std::string> unexpected;
  for (const auto& [n, t] : state) {
    bool known = starts(n, "model.") || (gen_ != nullptr && starts(n, "rng.")) || n == "meta.epoch" || n == "meta.step";
    for (const Part& p : parts_) known = known || starts(n, p.name + ".");
    if (!known) unexpected.push_back(n);
  }
  check(unexpected.empty(), op, "unexpected entries ", unexpected, " (nothing was changed)");

  // What cannot change anything is validated first.
  const std::int64_t new_epoch = read_int64_scalar(state, "meta.epoch");
  const std::int64_t new_step = read_int64_scalar(state, "meta.step");
  Generator::State gen_state{};
  if (gen_ != nullptr) gen_state = parse_generator_state(state.with_prefix_removed("rng."));

  // The model checks everything before changing anything. The other parts follow; if one refuses
  // its state, the model and the parts before it go back to their snapshots.
  StateDict model_before;
  std::vector<StateDict> parts_before;
  if (!parts_.empty()) {
    model_before = deep_copy(model_->state_dict());
    for (const Part& p : parts_) parts_before.push_back(deep_copy(p.get()));
  }
  model_->load_state_dict(state.with_prefix_removed("model."));
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    try {
      parts_[i].set(state.with_prefix_removed(parts_[i].name + "."));
    } catch (...) {
      for (std::size_t j = 0; j < i; ++j) parts_[j].set(parts_before[j]);
      model_->load_state_dict(model_before);
      throw;
    }
  }
  if (gen_ != nullptr) gen_->set_state(gen_state);
  epoch = new_epoch;
  step = new_step;
}

}  // namespace sorix
