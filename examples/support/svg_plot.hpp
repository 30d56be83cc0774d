#pragma once
// A small SVG line chart: one panel per call, several named series, axes with min/max labels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace sorix::examples {

struct Series {
  std::string name;
  std::string color;
  std::vector<double> x, y;
};

/// An SVG <g> panel of size w x h at (ox, oy).
inline std::string svg_panel(const std::string& title, const std::vector<Series>& series, double ox, double oy,
                             double w, double h) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : series) {
    for (double v : s.x) xmin = std::min(xmin, v), xmax = std::max(xmax, v);
    for (double v : s.y) {
      if (std::isfinite(v)) ymin = std::min(ymin, v), ymax = std::max(ymax, v);
    }
  }
  if (!(xmax > xmin)) xmax = xmin + 1;
  if (!(ymax > ymin)) ymax = ymin + 1;
  const double pad = 45;
  auto px = [&](double v) { return ox + pad + (v - xmin) / (xmax - xmin) * (w - pad - 10); };
  auto py = [&](double v) { return oy + h - pad + (ymin - v) / (ymax - ymin) * (h - pad - 25); };
  std::ostringstream os;
  os << "<text x='" << ox + w / 2 << "' y='" << oy + 16 << "' text-anchor='middle' font-size='14'>" << title << "</text>\n";
  os << "<rect x='" << ox + pad << "' y='" << oy + 25 << "' width='" << w - pad - 10 << "' height='" << h - pad - 25
     << "' fill='none' stroke='#999'/>\n";
  os << "<text x='" << ox + pad - 4 << "' y='" << py(ymax) + 4 << "' text-anchor='end' font-size='10'>" << ymax << "</text>\n";
  os << "<text x='" << ox + pad - 4 << "' y='" << py(ymin) << "' text-anchor='end' font-size='10'>" << ymin << "</text>\n";
  os << "<text x='" << px(xmin) << "' y='" << oy + h - pad + 14 << "' font-size='10'>" << xmin << "</text>\n";
  os << "<text x='" << px(xmax) << "' y='" << oy + h - pad + 14 << "' text-anchor='end' font-size='10'>" << xmax << "</text>\n";
  double ly = oy + 40;
  for (const auto& s : series) {
    os << "<polyline fill='none' stroke='" << s.color << "' stroke-width='1.5' points='";
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (std::isfinite(s.y[i])) os << px(s.x[i]) << ',' << py(s.y[i]) << ' ';
    }
    os << "'/>\n";
    os << "<text x='" << ox + w - 20 << "' y='" << ly << "' text-anchor='end' font-size='11' fill='" << s.color << "'>"
       << s.name << "</text>\n";
    ly += 14;
  }
  return os.str();
}

inline std::string svg_document(double w, double h, const std::string& body) {
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
     << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n"
     << body << "</svg>\n";
  return os.str();
}

}  // namespace sorix::examples
