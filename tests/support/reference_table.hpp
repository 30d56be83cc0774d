#pragma once
// Reader of the reference-table files the generator scripts write (scripts/gen_parity_optim.py,
// scripts/gen_reference_toolbox.py): one tensor per line,
//   key dtype ndim dim_0 ... dim_{ndim-1} value_0 value_1 ...
// with dtype float64, float32 or int64, values as text (also "nan", "inf"); '#' lines are comments.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

namespace reference_table {

/// Every tensor of the file at `path`, by key; a missing file throws naming it and `regenerate_with`.
inline std::map<std::string, sorix::Tensor> read(const std::string& path, const std::string& regenerate_with) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path + " (regenerate with " + regenerate_with + ")");
  std::map<std::string, sorix::Tensor> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string key, dt;
    int nd = 0;
    ls >> key >> dt >> nd;
    sorix::Shape shape(static_cast<std::size_t>(nd));
    std::int64_t n = 1;
    for (auto& d : shape) {
      ls >> d;
      n *= d;
    }
    std::vector<double> v(static_cast<std::size_t>(n));
    for (auto& x : v) {
      std::string tok;
      ls >> tok;
      x = std::strtod(tok.c_str(), nullptr);  // strtod also reads "nan" and "inf"
    }
    const sorix::Dtype dtype = dt == "float64" ? sorix::float64 : dt == "float32" ? sorix::float32 : sorix::int64;
    out[key] = sorix::tensor(v, shape, dtype);
  }
  return out;
}

}  // namespace reference_table
