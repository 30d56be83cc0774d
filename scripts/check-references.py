#!/usr/bin/env python3
"""Fails when a comment or a document names a file the repository does not contain.

Scans the tracked sources' comments (C++ // and /* */, # in scripts and CMake) and whole Markdown
documents for file paths with a known extension, and checks each against the tracked files:
  - `core/src/serialize.cpp`   the path from the repository root, or from the citing file's folder;
  - `sorix/core/tensor.hpp`    or the tail of a tracked path (how includes name headers);
  - `serialize.cpp`            a bare name: some tracked file has that name;
  - `cap_*.cpp`                a pattern: at least one tracked file matches it.
Absolute paths, URLs and paths into build folders are outputs or the machine's, not the project's,
and are skipped. Usage: scripts/check-references.py [repository root]   (exit 1 on a dead reference)
"""
import fnmatch
import os
import re
import subprocess
import sys

# .h is left out: the project's headers are .hpp, a .h is a system or third-party header.
EXTENSIONS = "hpp|cpp|md|py|sh|cmake|json|in|txt"
# Names of files the project writes or the reader owns (outputs, the consumer's own source), each
# with where it comes from; a bare `.txt`/`.csv` name is a program's output as well.
NOT_IN_REPOSITORY = {
    "run.sh": "written into the device bundle by scripts/device-bundle.sh",
    "app.cpp": "the consumer's own program in README's packaging example",
}
PATH_RE = re.compile(r"(?<![\w/.:$-])((?:\.{1,2}/)*[\w*.-]*[\w*](?:/[\w*.-]+)*\.(?:%s))(?![\w/-])" % EXTENSIONS)
SKIP_PREFIXES = ("build", "CMakeFiles/", "$", "<")


def tracked_files(root):
    """The repository's files: git's list (tracked and not ignored), else a walk of the source tree
    without build folders (an unpacked archive has no .git)."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard"],
                             check=True, capture_output=True, text=True).stdout
        return [f for f in out.splitlines() if os.path.exists(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [d for d in subfolders if not d.startswith((".", "build"))]
            files += [os.path.relpath(os.path.join(folder, n), root) for n in names]
        return files


def cpp_comments(text):
    """Yields (line number, comment text) of // and /* */ comments, skipping string literals."""
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            yield line, text[i:end]
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i)
            end = n if end < 0 else end + 2
            yield line, text[i:end]
            line += text.count("\n", i, end)
            i = end
        elif c == '"' or c == "'":
            if c == '"' and text[i - 1:i] == "R":  # raw string: skip to its delimiter
                delim_end = text.find("(", i)
                closing = ")" + text[i + 1:delim_end] + '"'
                end = text.find(closing, delim_end)
                end = n if end < 0 else end + len(closing)
            else:
                end = i + 1
                while end < n and text[end] != c and text[end] != "\n":
                    end += 2 if text[end] == "\\" else 1
                end += 1
            line += text.count("\n", i, min(end, n))
            i = end
        else:
            i += 1


def hash_comments(text):
    for number, source_line in enumerate(text.splitlines(), 1):
        position = source_line.find("#")
        if position >= 0 and not source_line.startswith("#!"):
            yield number, source_line[position:]


def documents(root, files):
    for f in files:
        text = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
        name = os.path.basename(f)
        if f.endswith(".md"):
            yield f, enumerate(text.splitlines(), 1)
        elif f.endswith((".cpp", ".hpp", ".h")) or name.endswith(".in") and "config" in name.lower():
            yield f, cpp_comments(text)
        elif f.endswith((".py", ".sh", ".cmake")) or name in ("CMakeLists.txt", "Makefile", "run"):
            yield f, hash_comments(text)


def resolves(reference, citing_file, files, names):
    reference = re.sub(r"^(\./)+", "", reference)
    if "*" in reference:
        pattern = reference.lstrip("./")
        return any(fnmatch.fnmatch(f, "*" + pattern) or fnmatch.fnmatch(os.path.basename(f), pattern)
                   for f in files)
    if "/" not in reference:
        return reference in names or reference in NOT_IN_REPOSITORY or reference.endswith(".txt")
    here = os.path.normpath(os.path.join(os.path.dirname(citing_file), reference))
    plain = os.path.normpath(reference.lstrip("./"))
    return any(f == here or f == plain or f.endswith("/" + plain) for f in files)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    files = tracked_files(root)
    names = {os.path.basename(f) for f in files}
    dead = []
    for citing_file, lines in documents(root, files):
        for number, text in lines:
            for match in PATH_RE.finditer(text):
                reference = match.group(1)
                if reference.startswith(SKIP_PREFIXES) or "://" in text[max(0, match.start() - 8):match.start()]:
                    continue
                if text[match.start() - 1:match.start()] == "/":  # tail of an absolute path
                    continue
                if not resolves(reference, citing_file, files, names):
                    dead.append(f"{citing_file}:{number}: '{reference}' names no file of the repository")
    for entry in dead:
        print(entry)
    print(f"check-references: {len(files)} files, {len(dead)} dead reference(s)")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
