#pragma once
// Saving and loading models, optimizers, generators and whole training runs.
//
//   sorix::save(model, "model.sorix");      sorix::load(model, "model.sorix");
//   sorix::save(optimizer, "opt.sorix");    sorix::load(optimizer, "opt.sorix");
//   sorix::save(sorix::default_generator(), "rng.sorix");
//
// Files use the checkpoint format of sorix/core/serialize.hpp (docs/checkpoint-format.md): atomic
// writes, fully validated reads. Every load reads and validates the whole file, then validates it
// against the target (names, shapes, dtypes) before changing anything: a missing, truncated,
// corrupt or mismatched file throws and leaves the target untouched.
//   std::runtime_error: I/O failures and malformed files (the message names the path).
//   std::invalid_argument: a well-formed file that does not match the target (names the path and
//   every missing, unexpected or mis-shaped entry).
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "sorix/core/generator.hpp"
#include "sorix/core/serialize.hpp"
#include "sorix/core/state_dict.hpp"
#include "sorix/nn/module.hpp"

namespace sorix {

// ---- models --------------------------------------------------------------------------------
/// Saves model.state_dict() (parameters and buffers: "0.weight", "1.running_mean", ...).
void save(const nn::Module& model, const std::string& path);
/// Loads a file written by save(model, ...) strictly (every entry present, none extra, same
/// shapes and dtypes); the model is changed only if everything matches.
void load(nn::Module& model, const std::string& path);

// ---- generators ----------------------------------------------------------------------------
/// A generator's state as a StateDict: "state" -> int64 [2] = {seed, offset} (bit-cast from
/// uint64). Restoring it replays the exact same random stream.
StateDict generator_state_dict(const Generator& gen);
/// Validates (one int64 [2] entry named "state"; std::invalid_argument otherwise) and restores.
void load_generator_state_dict(Generator& gen, const StateDict& state);
void save(const Generator& gen, const std::string& path);
void load(Generator& gen, const std::string& path);

// ---- raw state dicts -----------------------------------------------------------------------
void save(const StateDict& state, const std::string& path);
// StateDict load_state(const std::string& path) is declared in sorix/core/serialize.hpp.

// ---- anything with state_dict() / load_state_dict(): optimizers, Checkpoint, DataLoader ----
/// Satisfied by a type with `StateDict state_dict() const` and `load_state_dict(const StateDict&)`
/// (modules are excluded: they have their own overloads above).
template <class T>
concept StateDictSerializable = !std::derived_from<T, nn::Module> && requires(const T& c, T& m, const StateDict& s) {
  { c.state_dict() } -> std::convertible_to<StateDict>;
  m.load_state_dict(s);
};

template <StateDictSerializable T>
void save(const T& obj, const std::string& path) {
  save_state(obj.state_dict(), path);
}
/// The file is read and validated fully first; `obj.load_state_dict` decides whether the state
/// fits (optimizers check it before changing anything).
template <StateDictSerializable T>
void load(T& obj, const std::string& path) {
  obj.load_state_dict(load_state(path));
}

// ---- a whole training run ------------------------------------------------------------------
/// Everything needed to resume training exactly: the model ("model."), an optional optimizer
/// ("optim."), an optional generator ("rng."; e.g. the default generator, which drives dropout and
/// the shuffling of DataLoaders without their own seed), any further parts with state_dict() /
/// load_state_dict() under names of their own (a seeded DataLoader, a scheduler: "<name>."), and
/// the progress counters "meta.epoch" and "meta.step" (int64 scalars). The referenced objects must
/// outlive the Checkpoint.
///
///   sorix::Checkpoint ckpt(model);
///   ckpt.optimizer(opt).generator(sorix::default_generator()).add("loader", loader);
///   ckpt.epoch = epoch; ckpt.step = step; sorix::save(ckpt, "run.sorix");
///   ... later: sorix::load(ckpt, "run.sorix"); epoch = ckpt.epoch; step = ckpt.step;
///
/// load_state_dict is all or nothing: the generator and meta entries are validated first, the
/// model checks its entries before changing anything, and if the optimizer or an added part then
/// refuses its state, the parts already loaded are restored from snapshots before the error is
/// rethrown.
class Checkpoint {
 public:
  explicit Checkpoint(nn::Module& model) : model_(&model) {}

  template <class Optimizer>
    requires StateDictSerializable<Optimizer>
  Checkpoint& optimizer(Optimizer& opt) {
    return add("optim", opt);
  }
  Checkpoint& generator(Generator& gen) {
    gen_ = &gen;
    return *this;
  }
  /// Adds a part saved under "<name>."; the name must be non-empty, without '.', not "model",
  /// "rng" or "meta", and not used before (std::invalid_argument).
  template <class T>
    requires StateDictSerializable<T>
  Checkpoint& add(const std::string& name, T& part) {
    add_part(name, [&part] { return StateDict(part.state_dict()); },
             [&part](const StateDict& s) { part.load_state_dict(s); });
    return *this;
  }

  std::int64_t epoch = 0;
  std::int64_t step = 0;

  StateDict state_dict() const;
  /// Strict: the parts this Checkpoint holds must all be present, and nothing else.
  void load_state_dict(const StateDict& state);

 private:
  struct Part {
    std::string name;
    std::function<StateDict()> get;
    std::function<void(const StateDict&)> set;
  };
  void add_part(const std::string& name, std::function<StateDict()> get, std::function<void(const StateDict&)> set);

  nn::Module* model_;
  std::vector<Part> parts_;
  Generator* gen_ = nullptr;
};

}  // namespace sorix
