// einsum for one or two operands: parsed into labels, then composed from views (diagonals as
// strided views, permute, reshape), sum and the batched product kernel (matmul), so values and
// gradients follow those ops' determinism.
//
// Two operands: every label is a batch label (in both and the output), a contracted label (in
// both, not the output), or belongs to one side (kept when in the output, summed away first when
// not). A is laid out [batch, left, contracted] and B [batch, contracted, right], one matmul of
// [Bt, L, K] x [Bt, K, R] gives [batch, left, right], which is permuted to the output's order.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix {
namespace {

using Labels = std::string;

bool is_label(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

[[noreturn]] void fail(const std::string& eq, const std::string& why) {
  throw std::invalid_argument("einsum: " + why + " in equation \"" + eq + "\"");
}

Labels parse_term(const std::string& eq, const std::string& term) {
  for (char c : term) {
    if (c == '.') fail(eq, "ellipsis ('...') is not supported");
    if (!is_label(c)) fail(eq, std::string("invalid subscript '") + c + "' (expected letters a-z, A-Z)");
  }
  return term;
}

std::string strip_spaces(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != ' ') out.push_back(c);
  }
  return out;
}

// The operand with repeated labels reduced to their diagonal (one label per dim), labels updated:
// "ii" on [n, n] becomes "i" on [n] (a strided view, sizes must agree).
Tensor take_diagonals(const Tensor& t, Labels& labels, const std::string& eq) {
  if (std::set<char>(labels.begin(), labels.end()).size() == labels.size()) return t;
  const Tensor c = t.contiguous();
  Shape sizes, strides;
  Labels kept;
  for (std::size_t k = 0; k < labels.size(); ++k) {
    const auto pos = kept.find(labels[k]);
    if (pos == std::string::npos) {
      kept.push_back(labels[k]);
      sizes.push_back(c.size(static_cast<std::int64_t>(k)));
      strides.push_back(c.stride(static_cast<std::int64_t>(k)));
    } else {
      if (sizes[pos] != c.size(static_cast<std::int64_t>(k))) {
        fail(eq, std::string("label '") + labels[k] + "' is repeated with different sizes " +
                     std::to_string(sizes[pos]) + " and " + std::to_string(c.size(static_cast<std::int64_t>(k))));
      }
      strides[pos] += c.stride(static_cast<std::int64_t>(k));
    }
  }
  labels = kept;
  if (c.numel() == 0) return zeros(sizes, c.dtype());
  return as_strided(c, sizes, strides, c.storage_offset());
}

// Sums away the labels of t not in `keep`.
Tensor sum_labels_not_in(const Tensor& t, Labels& labels, const std::string& keep) {
  std::vector<std::int64_t> dims;
  Labels rest;
  for (std::size_t k = 0; k < labels.size(); ++k) {
    if (keep.find(labels[k]) == std::string::npos) dims.push_back(static_cast<std::int64_t>(k));
    else rest.push_back(labels[k]);
  }
  if (dims.empty()) return t;
  labels = rest;
  return sum(t, dims, false);
}

// t (labelled `labels`) permuted to the order `order` (a permutation of labels).
Tensor to_order(const Tensor& t, const Labels& labels, const Labels& order) {
  std::vector<std::int64_t> perm;
  for (char c : order) perm.push_back(static_cast<std::int64_t>(labels.find(c)));
  return permute(t, perm);
}

std::int64_t size_of(const Tensor& t, const Labels& labels, char c) {
  return t.size(static_cast<std::int64_t>(labels.find(c)));
}

}  // namespace

Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands) {
  const std::string eq = strip_spaces(equation);
  const auto arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<Labels> terms;
  for (std::size_t b = 0;;) {
    const auto comma = lhs.find(',', b);
    terms.push_back(parse_term(equation, lhs.substr(b, comma == std::string::npos ? std::string::npos : comma - b)));
    if (comma == std::string::npos) break;
    b = comma + 1;
  }
  if (terms.size() > 2) fail(equation, "only one or two operands are supported, got " + std::to_string(terms.size()));
  if (terms.size() != operands.size()) {
    fail(equation, std::to_string(terms.size()) + " operand subscripts but " + std::to_string(operands.size()) +
                       " tensors were given");
  }
  for (std::size_t i = 0; i < terms.size(); ++i) {
    detail::check_defined(operands[i], "einsum");
    if (static_cast<std::int64_t>(terms[i].size()) != operands[i].dim()) {
      fail(equation, "operand " + std::to_string(i) + " has " + std::to_string(operands[i].dim()) +
                         " dims but subscripts \"" + terms[i] + "\" name " + std::to_string(terms[i].size()));
    }
  }
  Labels out;
  if (arrow != std::string::npos) {
    out = parse_term(equation, eq.substr(arrow + 2));
    if (std::set<char>(out.begin(), out.end()).size() != out.size()) fail(equation, "an output label is repeated");
    for (char c : out) {
      bool found = false;
      for (const Labels& t : terms) found = found || t.find(c) != std::string::npos;
      if (!found) fail(equation, std::string("output label '") + c + "' appears in no operand");
    }
  } else {  // implicit: the labels that appear exactly once, alphabetically (as NumPy)
    std::map<char, int> count;
    for (const Labels& t : terms) {
      for (char c : t) ++count[c];
    }
    for (const auto& [c, n] : count) {
      if (n == 1) out.push_back(c);
    }
  }

  std::vector<Tensor> ops;
  std::vector<Labels> labels = terms;
  for (std::size_t i = 0; i < terms.size(); ++i) ops.push_back(take_diagonals(operands[i], labels[i], equation));

  if (ops.size() == 1) {
    Tensor t = sum_labels_not_in(ops[0], labels[0], out);
    return to_order(t, labels[0], out).contiguous();
  }

  check(ops[0].dtype() == ops[1].dtype(), "einsum", "operand dtypes differ: ", dtype_name(ops[0].dtype()), " and ",
        dtype_name(ops[1].dtype()));
  // Labels only one side has and the output lacks are summed first.
  const std::string keep_a = out + labels[1], keep_b = out + labels[0];
  Tensor a = sum_labels_not_in(ops[0], labels[0], keep_a);
  Tensor b = sum_labels_not_in(ops[1], labels[1], keep_b);
  Labels batch, left, right, contracted;
  for (char c : labels[0]) {
    const bool in_b = labels[1].find(c) != std::string::npos, in_out = out.find(c) != std::string::npos;
    if (in_b && in_out) batch.push_back(c);
    else if (in_b) contracted.push_back(c);
    else left.push_back(c);
  }
  for (char c : labels[1]) {
    if (labels[0].find(c) == std::string::npos) right.push_back(c);
  }
  auto extent = [](const Tensor& t, const Labels& l, const Labels& group) {
    std::int64_t n = 1;
    for (char c : group) n *= size_of(t, l, c);
    return n;
  };
  for (char c : batch + contracted) {
    if (size_of(a, labels[0], c) != size_of(b, labels[1], c)) {
      fail(equation, std::string("label '") + c + "' has size " + std::to_string(size_of(a, labels[0], c)) +
                         " in operand 0 but " + std::to_string(size_of(b, labels[1], c)) + " in operand 1");
    }
  }
  const std::int64_t nb = extent(a, labels[0], batch), nl = extent(a, labels[0], left),
                     nk = extent(a, labels[0], contracted), nr = extent(b, labels[1], right);
  const Tensor a3 = reshape(to_order(a, labels[0], batch + left + contracted), {nb, nl, nk});
  const Tensor b3 = reshape(to_order(b, labels[1], batch + contracted + right), {nb, nk, nr});
  Shape full;
  for (char c : batch + left) full.push_back(size_of(a, labels[0], c));
  for (char c : right) full.push_back(size_of(b, labels[1], c));
  const Tensor prod = reshape(matmul(a3, b3), full);
  return to_order(prod, batch + left + right, out).contiguous();
}

}  // namespace sorix
