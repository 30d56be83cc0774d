#pragma once
// nn::Embedding, as torch::nn::Embedding: a lookup table of num_embeddings rows of embedding_dim.
//
// Shapes: indices int64 of any shape [...] -> output [..., embedding_dim]; weight is
// [num_embeddings, embedding_dim]. An index < 0 or >= num_embeddings throws std::out_of_range
// naming the index and num_embeddings (checked before any work starts).
// Backward: dweight[r] = sum of the output-gradient rows whose index is r, added in increasing
// position order (a stable counting sort groups the positions by row; rows are then reduced in
// parallel, each by one task): bit-identical for any thread count, no atomics. padding_idx's row
// gets no gradient. Under create_graph the backward is itself recorded (its gradient is the
// lookup again), so it differentiates again.
// Dtypes: weight float32 or float64. Threading: fixed chunks of positions / rows.
#include <cstdint>
#include <optional>
#include <string>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

struct EmbeddingOptions {
  EmbeddingOptions(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  EmbeddingOptions& num_embeddings(std::int64_t v) { num_embeddings_ = v; return *this; }
  EmbeddingOptions& embedding_dim(std::int64_t v) { embedding_dim_ = v; return *this; }
  /// A row that stays zero at init and gets no gradient (negative counts from the end).
  EmbeddingOptions& padding_idx(std::optional<std::int64_t> v) { padding_idx_ = v; return *this; }
  std::int64_t num_embeddings() const { return num_embeddings_; }
  std::int64_t embedding_dim() const { return embedding_dim_; }
  std::optional<std::int64_t> padding_idx() const { return padding_idx_; }

 private:
  std::int64_t num_embeddings_;
  std::int64_t embedding_dim_;
  std::optional<std::int64_t> padding_idx_;
};

namespace functional {
/// weight[indices] (see the file comment). padding_idx (in [-num, num), negative counts from the end):
/// that row gets no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight,
                 std::optional<std::int64_t> padding_idx = std::nullopt);
}  // namespace functional

class Embedding : public Module {
 public:
  /// weight ~ N(0, 1) from the default generator (padding_idx's row zeroed).
  explicit Embedding(const EmbeddingOptions& options, Dtype dtype = Dtype::Float32);
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : Embedding(EmbeddingOptions(num_embeddings, embedding_dim)) {}

  void reset_parameters();
  /// indices: int64 tensor of any shape.
  Tensor forward(const Tensor& indices) override;
  std::string name() const override { return "Embedding"; }
  /// "10, 3" (PyTorch's text; ", padding_idx=0" when set).
  std::string extra_repr() const override;
  const EmbeddingOptions& options() const { return options_; }

  /// [num_embeddings, embedding_dim]; registered as "weight".
  Tensor weight;

 private:
  EmbeddingOptions options_;
};

}  // namespace sorix::nn
