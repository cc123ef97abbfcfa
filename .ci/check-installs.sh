#!/usr/bin/env bash
# Static check (about a second, no network): every test script installs what it uses before the
# first use, so that it runs on a fresh Debian 12 machine (issue 13: test-all.sh ran
# mime_check.py, which imports authres, before anything had installed python3-authres).
#
#   bash .ci/check-installs.sh [-v]       (-v: print every first use and its install line)
#
# For each script users or CI run (ENTRY below), a heuristic reads the script, the files it
# sources, the functions of integration/lib.sh it calls and the Python files it runs (with their
# local imports and the commands they start), and finds the first line that uses each command a
# minimal Debian 12 may lack (COMMANDS) and each third-party Python module. Each needs, before
# that line, a `need_cmd CMD PKG` / `need_py MODULE PKG` line followed by `install_needed`
# (integration/lib.sh); a Python file may instead import the module through pydeps.need(),
# and every file under integration/ must. Exit status 1 with one FAIL line per problem.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'EOF'
import ast
import os
import re
import sys

VERBOSE = "-v" in sys.argv[1:]
ENTRY = ["integration/test-all.sh", "integration/run.sh", "integration/interop.sh",
         "integration/soak.sh", "integration/package.sh", "benches/run-milter-bench.sh"]
LIB = "integration/lib.sh"
PY = "/usr/bin/python3"
# Commands that a minimal Debian 12 (a container image) may lack. Essential packages
# (coreutils, grep, sed, dpkg, util-linux, ...) are always there.
COMMANDS = ["miltertest", "nsd", "nsd-checkzone", "nsd-checkconf", "dig", "dknewkey", "openssl",
            "postfix", "postqueue", "postsuper", "postcat", "sendmail", "smtp-sink", "swaks",
            "iptables", "ip", "opendkim", "opendmarc", "systemd-analyze", "man", "cargo-deb",
            "runuser", PY]
PY_DIRS = ["integration", "benches/milter-bench"]
STDLIB = set(sys.stdlib_module_names)

problems = []


def cmd_re(cmd):
    if cmd.startswith("/"):
        return re.compile(r"(?<![\w/])" + re.escape(cmd) + r"(?![\w.-])")
    return re.compile(r"(?<![\w$/.{=-])" + re.escape(cmd) + r"(?![\w=.-])")


CMD_RES = {c: cmd_re(c) for c in COMMANDS}


def shell_lines(path):
    """(line number, code) with $PY written out and without what runs nothing: comments,
    `command -v CMD` checks, and quoted prose (a string with a space and no `$(`)."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            code = re.sub(r"(^|\s)#.*$", "", line.rstrip("\n"))
            if re.match(r"\s*PY=", code):
                continue
            code = re.sub(r"\$\{?PY\}?\b", PY, code)
            code = re.sub(r"command -v \"?[^\"\s]+\"?", "", code)
            code = re.sub(r'"(?:[^"\\]|\\.)*"',
                          lambda m: '""' if " " in m.group(0) and "$(" not in m.group(0) else m.group(0),
                          code)
            out.append((n, code))
    return out


def commands_in(code):
    return {c for c, r in CMD_RES.items() if r.search(code)}


def lib_functions():
    """{function name in lib.sh: commands its body uses}."""
    funcs, name = {}, None
    for _, code in shell_lines(LIB):
        m = re.match(r"^(\w+)\(\) \{", code)
        if m:
            name = m.group(1)
            funcs[name] = set()
        elif code.startswith("}"):
            name = None
        elif name:
            funcs[name] |= commands_in(code)
    return funcs


# The install machinery itself, and netns_destroy, which runs at exit and ignores a missing
# `ip` (there is then no namespace to delete), use nothing that needs an install line.
LIB_FUNCS = {f: c for f, c in lib_functions().items()
             if f not in ("sg_have", "install_needed", "apt_install", "reexec_as_root",
                          "need_cmd", "need_py", "netns_destroy")}


def py_file(mention, caller_dir):
    base = os.path.basename(mention)
    dirs = [d for d in PY_DIRS if d in mention] or [caller_dir] + PY_DIRS
    for d in dirs:
        p = os.path.join(d, base)
        if os.path.isfile(p):
            return p
    return None


def py_uses(path, seen):
    """(commands, modules the file itself does not install) of a Python file and of the local
    modules and Python files it uses; adds a problem for every file under integration/ that
    imports a third-party module without pydeps.need() before it."""
    if path in seen:
        return set(), set()
    seen.add(path)
    here = os.path.dirname(path)
    tree = ast.parse(open(path).read(), path)
    needed = {}  # module -> line of its pydeps.need()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "need"
                and node.args and isinstance(node.args[0], ast.Constant)):
            needed.setdefault(node.args[0].value, node.lineno)
    cmds, mods = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        for m in names:
            if m in STDLIB:
                continue
            if os.path.isfile(os.path.join(here, m + ".py")):
                c, u = py_uses(os.path.join(here, m + ".py"), seen)
                cmds |= c
                mods |= u
            elif m in needed and needed[m] < node.lineno:
                pass
            else:
                mods.add(m)
                if path.startswith("integration/"):
                    problems.append("%s:%d: imports %s without pydeps.need(%r) before it"
                                    % (path, node.lineno, m, m))
        # a command: the first item of an argument list, as subprocess takes it
        if (isinstance(node, (ast.List, ast.Tuple)) and node.elts
                and isinstance(node.elts[0], ast.Constant) and node.elts[0].value in COMMANDS):
            cmds.add(node.elts[0].value)
        # a path or argument (not prose, such as a docstring naming other scripts)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            s = node.value
            if s == "nsd-exec":
                cmds |= LIB_FUNCS.get("nsd_conf", set()) | {"nsd"}
            for mention in re.findall(r"[\w/.-]+\.py\b", s):
                p = py_file(mention, here)
                if p:
                    c, u = py_uses(p, seen)
                    cmds |= c
                    mods |= u
    return cmds, mods


def check_pydeps():
    tree = ast.parse(open("integration/pydeps.py").read())
    known = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PACKAGES":
            known = {k.value for k in node.value.keys}
    for d in PY_DIRS:
        for name in sorted(os.listdir(d)):
            if not name.endswith(".py"):
                continue
            for m in re.findall(r"need\(\"(\w+)\"\)", open(os.path.join(d, name)).read()):
                if m not in known:
                    problems.append("%s/%s: pydeps.need(%r), but integration/pydeps.py has no "
                                    "package for it" % (d, name, m))


def uses_of(path, lines, first):
    """Fills first[(kind, name)] = line with the first use in the script `path`."""
    here = os.path.dirname(path)

    def use(key, n, why):
        if key not in first or n < first[key][0]:
            first[key] = (n, why)

    for n, code in lines:
        if re.match(r"\s*(need_cmd|need_py)\b", code) or "cargo install" in code:
            continue
        for c in commands_in(code):
            use(("cmd", c), n, c)
        for f, cmds in LIB_FUNCS.items():
            if re.search(r"(^|[\s;&|(!])" + f + r"\b(?!\(\))", code):
                for c in cmds:
                    use(("cmd", c), n, "%s (in %s)" % (c, f))
        m = re.search(r"^\s*(source|\.)\s.*?([\w.-]+\.sh)\b", code)
        if m and m.group(2) != "lib.sh":
            sourced = os.path.join(here, m.group(2))
            sub = {}
            uses_of(sourced, shell_lines(sourced), sub)
            for key, (_, why) in sub.items():
                use(key, n, "%s (in %s)" % (why, sourced))
        for mention in re.findall(r"[\w/.$-]+\.py\b", code):
            p = py_file(mention, here)
            if p is None:
                continue
            cmds, mods = py_uses(p, set())
            for c in cmds:
                use(("cmd", c), n, "%s (in %s)" % (c, p))
            for mod in mods:
                use(("py", mod), n, "import %s (in %s)" % (mod, p))


def check_script(path):
    lines = shell_lines(path)
    needs, installs = {}, []
    for n, code in lines:
        m = re.match(r"\s*need_(cmd|py)\s+\"?([^\"\s]+)\"?\s+\S+", code)
        if m:
            needs.setdefault((m.group(1), m.group(2)), n)
        m = re.search(r"cargo install\s+(\S+)", code)
        if m:
            needs.setdefault(("cmd", m.group(1)), n)
            installs.append(n)
        if re.search(r"(^|[\s!;&|(])install_needed\b(?!\(\))", code):
            installs.append(n)
    first = {}
    uses_of(path, lines, first)
    bad = 0
    for key, (n, why) in sorted(first.items(), key=lambda kv: kv[1][0]):
        kind, name = key
        need = needs.get(key)
        ok = need is not None and need < n and any(need <= i <= n for i in installs)
        if VERBOSE:
            print("  %s:%d %-45s %s" % (path, n, why,
                                        "installed (line %d)" % need if ok else "NOT INSTALLED"))
        if not ok:
            bad += 1
            hint = "need_cmd %s PKG" % name if kind == "cmd" else "need_py %s PKG" % name
            problems.append("%s:%d: uses %s with no `%s` and install_needed before it"
                            % (path, n, why, hint))
    print("check-installs: %s: %d commands and modules, %d without an install line before "
          "their first use" % (path, len(first), bad))


for script in ENTRY:
    check_script(script)
for d in ("integration",):
    for name in sorted(os.listdir(d)):
        if name.endswith(".py"):
            py_uses(os.path.join(d, name), set())
check_pydeps()
for p in sorted(set(problems)):
    print("FAIL", p)
if problems:
    print("check-installs: %d problems" % len(set(problems)))
    sys.exit(1)
print("check-installs: ok")
EOF
