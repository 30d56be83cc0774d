#pragma once
// The Python interpreter the benchmarks run PyTorch with: $SORIX_BENCH_PYTHON if set (a machine
// whose PyTorch lives elsewhere, e.g. a virtual environment), else Debian's /usr/bin/python3 with
// python3-torch, as the benchmark protocol (docs/benchmarks.md) says.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>

#include <unistd.h>

namespace sorix::examples {

inline std::string bench_python() {
  const char* env = std::getenv("SORIX_BENCH_PYTHON");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("/usr/bin/python3");
}

/// What a script run printed besides its tagged lines, and how it ended.
struct ScriptRun {
  std::string why;             // non-empty: the script could not be written or started
  int status = -1;             // pclose's status
  std::string last_untagged;  // the last line on_line did not take (a Python error's message, usually)
};

/// Runs `script` with bench_python() (`env` before the command, `args` after the script's path,
/// stderr into stdout) and hands each line's first word and the rest of the line to on_line,
/// which returns whether it took the line. The script goes to a temporary file, removed after.
inline ScriptRun run_python_script(const char* script, const std::string& env, const std::string& args,
                                   const std::function<bool(const std::string&, std::istringstream&)>& on_line) {
  ScriptRun run;
  char path[] = "/tmp/sorix_bench_XXXXXX.py";
  const int fd = mkstemps(path, 3);
  const std::size_t len = std::strlen(script);
  const bool wrote = fd >= 0 && write(fd, script, len) == static_cast<ssize_t>(len);
  if (fd >= 0) close(fd);
  if (!wrote) {
    run.why = "could not write the PyTorch script to /tmp";
    if (fd >= 0) std::remove(path);
    return run;
  }
  const std::string cmd = env + (env.empty() ? "" : " ") + bench_python() + " " + path + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    run.why = "could not start " + bench_python();
    std::remove(path);
    return run;
  }
  char line[512];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    std::istringstream rest(line);
    std::string tag;
    rest >> tag;
    if (!on_line(tag, rest)) {
      run.last_untagged = line;
      while (!run.last_untagged.empty() && (run.last_untagged.back() == '\n' || run.last_untagged.back() == '\r'))
        run.last_untagged.pop_back();
    }
  }
  run.status = pclose(pipe);
  std::remove(path);
  return run;
}

}  // namespace sorix::examples
