#!/usr/bin/env python3
"""Every long option the binaries print in --help is documented and completed.

For meshd: each long option of `meshd --help` is in meshd(8)'s OPTIONS, with
its MESHD_* variable when --help names one, and `meshd --<TAB>` offers it.
For meshctl: each command of `meshctl --help` (and each keys subcommand) has
its own subsection in meshctl(8)'s COMMANDS and is offered by
`meshctl <TAB>` (`meshctl keys <TAB>`); each long option of
`meshctl <command> --help` is in that subsection (the global ones in GLOBAL
OPTIONS) and `meshctl <command> --<TAB>` offers it. An option whose --help
lists its values ("--group-by GROUPING:{workload,pgid,pid}") has each value
named in that subsection and offered by `meshctl <command> --opt <TAB>`.

Options the man page has and the binary lacks are not errors: the pages may
run ahead of the binary. The man pages are rendered with groff, so what is
checked is what a reader sees.

usage: check_flags.py MESHD MESHCTL PACKAGING_DIR
"""
import os
import re
import subprocess
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {p.returncode}: {p.stderr}")
    return p.stdout


def help_choices(text):
    """{long option: [values]} for the options whose --help lists them."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^  (?:-\w, ?)?(--[\w-]+) \S*:\{([^}]*)\}", line)
        if m:
            out[m.group(1)] = m.group(2).split(",")
    return out


def help_sections(text):
    """(long options, subcommands, env vars) from a CLI11 --help text."""
    opts, subs, envs = [], [], {}
    block = None
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            block = line[:-1]
            continue
        if not line.strip():
            continue
        if not line.startswith("  ") or line.startswith("   "):
            continue  # a wrapped description, or prose after the options
        first = line.split()[0]
        if block == "Options":
            for name in first.split(","):
                if name.startswith("--"):
                    opts.append(name)
                    m = re.search(r"\(Env:(\w+)\)", line)
                    if m:
                        envs[name] = m.group(1)
        elif block == "Subcommands":
            subs.append(first)
    return opts, subs, envs


def render(page):
    """The page as a reader sees it: {section or subsection heading: text}."""
    env = dict(os.environ, LC_ALL="C.UTF-8")
    out = run(["groff", "-man", "-Tutf8", "-rLL=250n", "-P-cbou", page], env=env)
    sections, sh, ss = {}, None, None
    for line in out.splitlines():
        if re.match(r"^[A-Z][A-Z ]*$", line):
            sh, ss = line.strip(), None
            sections.setdefault(sh, "")
            continue
        m = re.match(r"^   (\S.*)$", line)
        if m and sh is not None:
            ss = m.group(1).strip()
            sections.setdefault(sh + "/" + ss, "")
        if sh is not None:
            sections[sh] += line + "\n"
            if ss is not None:
                sections[sh + "/" + ss] += line + "\n"
    return sections


def mentions(text, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None


def complete(script, words):
    """COMPREPLY for the command line `words` (the last is the word at point)."""
    func = "_" + os.path.basename(script)
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    prog = (f"source '{script}' || exit 3\n"
            f"COMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n"
            f"COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n"
            f"{func} || exit 4\n"
            "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    return run(["bash", "--norc", "--noprofile", "-c", prog]).split()


def subsection(sections, parent, name):
    """The text of parent/<heading starting with `name `> (or the heading `name`)."""
    for key, text in sections.items():
        if key.startswith(parent + "/"):
            heading = key[len(parent) + 1:]
            if heading == name or heading.startswith(name + " "):
                return text
    return None


def check_meshd(meshd, pkg):
    opts, _, envs = help_sections(run([meshd, "--help"]))
    if len(opts) < 10:
        sys.exit(f"found only {opts} in meshd --help: has its format changed?")
    man = render(os.path.join(pkg, "man", "meshd.8"))
    options = man.get("OPTIONS")
    if options is None:
        fail("meshd.8 has no OPTIONS section")
        options = ""
    offered = complete(os.path.join(pkg, "bash-completion", "meshd"), ["meshd", "--"])
    for opt in opts:
        if not mentions(options, opt):
            fail(f"meshd.8: OPTIONS does not describe {opt} (in meshd --help)")
        if opt in envs and not mentions(options, envs[opt]):
            fail(f"meshd.8: OPTIONS does not name {envs[opt]}, the variable of {opt}")
        if opt not in offered:
            fail(f"bash-completion/meshd: `meshd --<TAB>` does not offer {opt}")
    print(f"meshd: {len(opts)} long options checked")


def check_meshctl(meshctl, pkg):
    script = os.path.join(pkg, "bash-completion", "meshctl")
    man = render(os.path.join(pkg, "man", "meshctl.8"))
    if "COMMANDS" not in man:
        fail("meshctl.8 has no COMMANDS section")

    glob_opts, subs, _ = help_sections(run([meshctl, "--help"]))
    if len(subs) < 5:
        sys.exit(f"found only {subs} in meshctl --help: has its format changed?")
    glob_text = man.get("GLOBAL OPTIONS", "")
    offered = complete(script, ["meshctl", "--"])
    for opt in glob_opts:
        if not mentions(glob_text, opt):
            fail(f"meshctl.8: GLOBAL OPTIONS does not describe {opt} (in meshctl --help)")
        if opt not in offered:
            fail(f"bash-completion/meshctl: `meshctl --<TAB>` does not offer {opt}")
    offered = complete(script, ["meshctl", ""])
    checked = len(glob_opts)

    for sub in subs:
        if sub not in offered:
            fail(f"bash-completion/meshctl: `meshctl <TAB>` does not offer {sub}")
        text = subsection(man, "COMMANDS", sub)
        if text is None:
            fail(f"meshctl.8: COMMANDS has no subsection for {sub}")
            text = ""
        sub_help = run([meshctl, sub, "--help"])
        opts, subsubs, _ = help_sections(sub_help)
        sub_offered = complete(script, ["meshctl", sub, "--"])
        for opt, values in help_choices(sub_help).items():
            value_offered = complete(script, ["meshctl", sub, opt, ""])
            for value in values:
                if value not in value_offered:
                    fail(f"bash-completion/meshctl: `meshctl {sub} {opt} <TAB>` does not "
                         f"offer {value}")
                if not mentions(text, value):
                    fail(f"meshctl.8: the {sub} subsection does not name {value}, "
                         f"a value of {opt}")
            checked += len(values)
        for opt in opts:
            if opt != "--help" and not mentions(text, opt):
                fail(f"meshctl.8: the {sub} subsection does not describe {opt} "
                     f"(in meshctl {sub} --help)")
            if opt not in sub_offered:
                fail(f"bash-completion/meshctl: `meshctl {sub} --<TAB>` does not offer {opt}")
        checked += len(opts)
        if subsubs:
            subsub_offered = complete(script, ["meshctl", sub, ""])
        for subsub in subsubs:
            if subsub not in subsub_offered:
                fail(f"bash-completion/meshctl: `meshctl {sub} <TAB>` does not offer {subsub}")
            # keys' subcommands are tags in the keys subsection.
            if not re.search(r"^       " + re.escape(subsub) + r"\b", text, re.M):
                fail(f"meshctl.8: the {sub} subsection does not describe {sub} {subsub}")
            opts, _, _ = help_sections(run([meshctl, sub, subsub, "--help"]))
            for opt in opts:
                if opt != "--help" and not mentions(text, opt):
                    fail(f"meshctl.8: the {sub} subsection does not describe {opt} "
                         f"(in meshctl {sub} {subsub} --help)")
            checked += len(opts)
    print(f"meshctl: {len(subs)} commands, {checked} long options checked")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    meshd, meshctl, pkg = sys.argv[1:]
    check_meshd(meshd, pkg)
    check_meshctl(meshctl, pkg)
    if failures:
        print(f"{len(failures)} problem(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
